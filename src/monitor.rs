//! One OS thread per session, each on its own WebSocket, reporting every change of
//! its session's state over a channel. The page tells the thread when something
//! changed (see [`Panel::watch`]); between changes the thread blocks in one awaited
//! call, waking for a heartbeat every few seconds at most.
//!
//! A monitor keeps its session as long as the window exists: a page that stops
//! answering is reported `unresponsive` and followed again when it answers; a lost
//! connection is re-made; only a window its endpoint no longer lists is closed. While
//! the endpoint itself does not answer, its sessions are `unresponsive` and retried
//! with backoff.

use std::collections::{BTreeSet, HashSet};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use cdp::methods::target::{SetDiscoverTargets, TargetDestroyed, TargetInfoEvent};
use cdp::{CloseGroup, Connection, Endpoint};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use crate::Error;
use crate::panel::{Deadline, PROBE_WITHIN, Panel, Snapshot, State, WindowRef};
use crate::profile::Profile;
use crate::sessions::Session;
use crate::turn::{self, Baseline, HEARTBEAT};

/// A monitor thread needs little stack: it parses JSON and waits.
const STACK: usize = 256 * 1024;
/// Retries of what did not answer: the first pause, doubled up to the last.
const FIRST_RETRY: Duration = Duration::from_millis(250);
const LAST_RETRY: Duration = Duration::from_secs(5);

/// What monitors report, each tagged with the session's full target id.
#[derive(Debug)]
pub enum Update {
    /// The session's state, first when the monitor starts and then on every change;
    /// `unresponsive` (with the reason in `error`) while the page does not answer.
    Changed {
        target_id: String,
        /// Boxed: a snapshot is large, and updates of other kinds are frequent.
        snapshot: Box<Snapshot>,
        at: Instant,
    },
    /// The prompt a monitor was given was delivered (its turn's baseline; the turn
    /// may not have started yet), or refused or not delivered (why).
    Prompted {
        target_id: String,
        result: Result<Baseline, String>,
    },
    /// The window closed: its endpoint no longer lists it.
    Closed {
        target_id: String,
        reason: String,
        at: Instant,
    },
    /// A new editor window appeared at an endpoint (see [`Monitors::watch_targets`]).
    Appeared {
        window: WindowRef,
        title: String,
        url: String,
    },
    /// A window's title changed (the workspace name comes from it).
    Retitled { target_id: String, title: String },
    /// An endpoint stopped answering (its browser exited, or the way to it broke); it
    /// is retried with backoff (see [`Monitors::watch_targets`]). Reported once, by
    /// the first thread to see it: before any session it makes `unresponsive`.
    EndpointLost {
        endpoint: Endpoint,
        reason: String,
        at: Instant,
    },
    /// A lost endpoint answers again; its windows follow as `Appeared`.
    EndpointBack { endpoint: Endpoint, at: Instant },
    /// The page has shown no change at all (no DOM mutation) for `after`, the stall
    /// time (see [`Monitors::stall_after`]); said once per still spell.
    Still {
        target_id: String,
        after: Duration,
        at: Instant,
    },
}

/// Monitor threads, the channel they report on, and the means to stop them all at once.
pub struct Monitors {
    stop: Stop,
    /// Dropped to wake every thread pausing between retries.
    halt: Option<Sender<()>>,
    threads: Vec<JoinHandle<()>>,
    tx: Sender<Update>,
    profile: Profile,
    heartbeat: Duration,
    stall_after: Option<Duration>,
    abandoned: Option<Receiver<()>>,
    lost: Lost,
}

/// The endpoints reported lost and not back yet, shared by every thread: a loss (and
/// a return) is reported once, by whichever thread sees it first, and a monitor
/// reports its endpoint lost before its session `unresponsive` for it.
#[derive(Clone, Default)]
struct Lost(Arc<Mutex<HashSet<String>>>);

impl Lost {
    fn set(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// [`Update::EndpointLost`] unless it was reported; false when nobody listens.
    fn lost(&self, endpoint: &Endpoint, reason: String, tx: &Sender<Update>) -> bool {
        let mut set = self.set();
        if !set.insert(endpoint.label().to_string()) {
            return true;
        }
        // Sent under the lock: no thread reports it back before it is lost.
        let at = Instant::now();
        let endpoint = endpoint.clone();
        tx.send(Update::EndpointLost {
            endpoint,
            reason,
            at,
        })
        .is_ok()
    }

    /// The endpoint answered: [`Update::EndpointBack`] if it was reported lost.
    fn back(&self, endpoint: &Endpoint, tx: &Sender<Update>) -> bool {
        let mut set = self.set();
        if !set.remove(endpoint.label()) {
            return true;
        }
        let (endpoint, at) = (endpoint.clone(), Instant::now());
        tx.send(Update::EndpointBack { endpoint, at }).is_ok()
    }
}

/// What `sessions watch` and serve say of an endpoint lost (and of an upstream serve a
/// hub lost).
pub fn lost_reason(endpoint: &str) -> String {
    format!("endpoint {endpoint} lost")
}

/// The `reason` of a session's change to `state`: its endpoint lost, when it turned
/// `unresponsive` with its endpoint among those reported `lost` (the loss came first).
pub fn change_reason(state: State, endpoint: &str, lost: &BTreeSet<String>) -> Option<String> {
    (state == State::Unresponsive && lost.contains(endpoint)).then(|| lost_reason(endpoint))
}

/// What a thread checks to know it must end.
#[derive(Clone)]
struct Stop {
    group: Arc<CloseGroup>,
    halt: Receiver<()>,
}

impl Stop {
    fn requested(&self) -> bool {
        self.group.is_closed()
    }

    /// Pauses for `d` unless stopped first; false when stopped.
    fn pause(&self, d: Duration) -> bool {
        matches!(self.halt.recv_timeout(d), Err(RecvTimeoutError::Timeout)) && !self.requested()
    }
}

/// Pauses between retries: `FIRST_RETRY`, doubling up to `LAST_RETRY`.
struct Backoff(Duration);

impl Backoff {
    fn new() -> Backoff {
        Backoff(FIRST_RETRY)
    }

    fn next(&mut self) -> Duration {
        let d = self.0;
        self.0 = (d * 2).min(LAST_RETRY);
        d
    }
}

impl Monitors {
    /// No monitors yet; their updates will arrive on the receiver.
    pub fn new(profile: &Profile) -> (Monitors, Receiver<Update>) {
        // Bounded: a consumer that falls behind slows the monitors, not memory.
        let (tx, rx) = crossbeam_channel::bounded(1024);
        let (halt, halted) = crossbeam_channel::bounded(0);
        (
            Monitors {
                stop: Stop {
                    group: Arc::default(),
                    halt: halted,
                },
                halt: Some(halt),
                threads: Vec::new(),
                tx,
                profile: profile.clone(),
                heartbeat: HEARTBEAT,
                stall_after: None,
                abandoned: None,
                lost: Lost::default(),
            },
            rx,
        )
    }

    /// How long a quiet page may go without reporting (default [`HEARTBEAT`]): a page
    /// that has not answered `PROBE_WITHIN` after it is reported `unresponsive`. For
    /// monitors spawned after this call.
    pub fn heartbeat(&mut self, every: Duration) {
        self.heartbeat = every;
    }

    /// Reports a page that shows no change at all for `d` ([`Update::Still`]). For
    /// monitors spawned after this call.
    pub fn stall_after(&mut self, d: Option<Duration>) {
        self.stall_after = d;
    }

    /// A prompt being typed stops before its Enter (the editor put back) once this
    /// disconnects: whoever asked for it has gone. For monitors spawned after this call.
    pub fn abandoned(&mut self, when: Option<Receiver<()>>) {
        self.abandoned = when;
    }

    /// Starts monitoring `session`; with a prompt, sends it first.
    pub fn spawn(&mut self, session: &Session, prompt: Option<String>) {
        // Threads of windows gone by are done: a long watch keeps no handle of theirs.
        self.threads.retain(|t| !t.is_finished());
        let follow = Follow {
            id: session.target_id.clone(),
            window: session.window.clone(),
            profile: self.profile.clone(),
            stop: self.stop.clone(),
            tx: self.tx.clone(),
            lost: self.lost.clone(),
        };
        let (heartbeat, stall) = (self.heartbeat, self.stall_after);
        // The turn's start is the tracker's to see: do not wait for it here.
        let opts = turn::SendOptions {
            claim_within: ACCEPT_WITHIN,
            start_within: Duration::ZERO,
            replace_draft: false,
            abandoned: self.abandoned.clone(),
        };
        let prompt = prompt.map(|text| (text, opts));
        let handle = std::thread::Builder::new()
            .name(format!("monitor {}", session.id))
            .stack_size(STACK)
            .spawn(move || monitor(follow, prompt, heartbeat, stall))
            .expect("spawn a monitor thread");
        self.threads.push(handle);
    }

    /// Watches every endpoint for new editor windows (`Target.setDiscoverTargets` on
    /// the browser's own connection): no polling of `/json/list`. An endpoint whose
    /// connection ends is reported lost, retried with backoff, and reported back when
    /// it answers; its windows then come as new.
    pub fn watch_targets(&mut self, endpoints: &[Endpoint]) {
        for endpoint in endpoints {
            let Endpoint::Http { .. } = endpoint else {
                continue;
            };
            let (endpoint, profile, stop, tx, lost) = (
                endpoint.clone(),
                self.profile.clone(),
                self.stop.clone(),
                self.tx.clone(),
                self.lost.clone(),
            );
            let handle = std::thread::Builder::new()
                .name("target discovery".into())
                .stack_size(STACK)
                .spawn(move || discover(endpoint, profile, stop, tx, lost))
                .expect("spawn a discovery thread");
            self.threads.push(handle);
        }
    }

    /// Stops every thread now (they are blocked on sockets this closes, or pausing
    /// on the halt channel this drops) and joins them.
    pub fn stop(&mut self) {
        self.stop.group.close();
        self.halt = None;
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for Monitors {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One monitor's session and its ways to report.
struct Follow {
    id: String,
    window: WindowRef,
    profile: Profile,
    stop: Stop,
    tx: Sender<Update>,
    lost: Lost,
}

impl Follow {
    /// False when nobody listens any more.
    fn send(&self, update: Update) -> bool {
        self.tx.send(update).is_ok()
    }

    fn changed(&self, snapshot: Snapshot) -> bool {
        self.send(Update::Changed {
            target_id: self.id.clone(),
            snapshot: Box::new(snapshot),
            at: Instant::now(),
        })
    }

    fn unresponsive(&self, last: Option<&Snapshot>, why: String) -> bool {
        self.changed(Snapshot::unresponsive(last, why))
    }

    /// Attaches to the panel, for as long as the window exists: a page that does not
    /// answer (or an endpoint that does not) is reported unresponsive once and tried
    /// again; `None` when the window is gone (reported closed) or the monitor stops.
    fn reach(&self, last: Option<&Snapshot>) -> Option<(Panel, Snapshot)> {
        let mut reported = false;
        let mut report = |why: String| {
            let first = !reported;
            reported = true;
            !first || self.unresponsive(last, why)
        };
        let mut bound = PROBE_WITHIN;
        let mut backoff = Backoff::new();
        // A window reloading may fail an attach once: retried before it counts.
        let mut once = true;
        loop {
            if self.stop.requested() {
                return None;
            }
            let deadline = Some(Deadline::within(bound));
            let e = match Panel::attach_in(
                &self.window,
                &self.profile,
                self.stop.group.clone(),
                deadline,
            ) {
                Ok((mut panel, snap)) => {
                    panel.set_deadline(None);
                    if !self.lost.back(&self.window.endpoint, &self.tx) {
                        return None;
                    }
                    return Some((panel, snap));
                }
                Err(e) => e,
            };
            if self.stop.requested() {
                return None;
            }
            if e.is_unanswered() {
                // The attempt itself took its time: try again at once, more patiently.
                bound = HEARTBEAT;
                if !report("the page does not answer (busy or frozen)".into()) {
                    return None;
                }
                continue;
            }
            let presence = presence(&self.window, &e);
            // A list read: the endpoint answers.
            if !matches!(presence, Presence::Unreachable(_))
                && !self.lost.back(&self.window.endpoint, &self.tx)
            {
                return None;
            }
            match presence {
                Presence::Gone => {
                    self.send(Update::Closed {
                        target_id: self.id.clone(),
                        reason: e.to_string(),
                        at: Instant::now(),
                    });
                    return None;
                }
                Presence::Listed if once => once = false,
                Presence::Listed => {
                    if !report(format!("the window is listed but cannot be reached: {e}")) {
                        return None;
                    }
                }
                Presence::Unreachable(why) => {
                    // The cause first: the endpoint lost, then its session.
                    if !self.lost.lost(&self.window.endpoint, why.clone(), &self.tx)
                        || !report(format!("endpoint lost: {why}"))
                    {
                        return None;
                    }
                }
            }
            if !self.stop.pause(backoff.next()) {
                return None;
            }
        }
    }
}

fn monitor(
    follow: Follow,
    prompt: Option<(String, turn::SendOptions)>,
    heartbeat: Duration,
    stall: Option<Duration>,
) {
    let Some((mut panel, mut snap)) = follow.reach(None) else {
        return;
    };
    let (id, tx) = (follow.id.clone(), follow.tx.clone());
    if let Some((text, opts)) = prompt {
        let sent = turn::send_prompt(&mut panel, &text, opts).map_err(|e| e.to_string());
        let result = sent.as_ref().map(|s| s.baseline).map_err(Clone::clone);
        if tx
            .send(Update::Prompted {
                target_id: id.clone(),
                result,
            })
            .is_err()
        {
            return;
        }
        match sent {
            Ok(sent) => snap = sent.snapshot,
            Err(_) => return,
        }
    }
    if !follow.changed(snap.clone()) {
        return;
    }
    let mut still = Stillness::new();
    loop {
        // A page that has not answered `PROBE_WITHIN` after its heartbeat is unresponsive.
        panel.set_deadline(Some(Deadline::within(heartbeat + PROBE_WITHIN)));
        let watched = match still.left(stall) {
            Some(quiet) => panel.watch_quiet(&snap.key, heartbeat, quiet),
            None => panel.watch(&snap.key, heartbeat),
        };
        panel.set_deadline(None);
        let e = match watched {
            Ok(next) => {
                if next.key != snap.key && !follow.changed(next.clone()) {
                    return;
                }
                still.saw(&next, next.key != snap.key);
                snap = next;
                if let Some(after) = still.due(stall) {
                    let at = Instant::now();
                    let target_id = follow.id.clone();
                    if !follow.send(Update::Still {
                        target_id,
                        after,
                        at,
                    }) {
                        return;
                    }
                }
                continue;
            }
            Err(e) => e,
        };
        if follow.stop.requested() {
            return;
        }
        let found = if e.is_unanswered() {
            // Frozen or busy: keep the connection, and report the state once the page
            // answers a probe again.
            let why = "the page stopped answering (busy or frozen)";
            if !follow.unresponsive(Some(&snap), why.into()) {
                return;
            }
            loop {
                match panel.probe() {
                    Ok(now) => break Some((panel, now)),
                    Err(e) if e.is_unanswered() && !follow.stop.requested() => continue,
                    Err(_) => break follow.reach(Some(&snap)),
                }
            }
        } else {
            // The connection ended: the window closed, or its endpoint went.
            follow.reach(Some(&snap))
        };
        let Some((fresh, now)) = found else {
            return;
        };
        panel = fresh;
        snap = now;
        still = Stillness::new();
        // Always: the last state reported may have been `unresponsive`.
        if !follow.changed(snap.clone()) {
            return;
        }
    }
}

/// When a page last changed at all (any DOM mutation), and whether its still spell
/// was reported.
struct Stillness {
    changed_at: Instant,
    reported: bool,
}

impl Stillness {
    fn new() -> Stillness {
        Stillness {
            changed_at: Instant::now(),
            reported: false,
        }
    }

    /// After a watch: the page says how long ago it last changed, if it did.
    fn saw(&mut self, snap: &Snapshot, key_changed: bool) {
        let now = Instant::now();
        let changed = match snap.quiet_ms {
            Some(ago) => Some(now - Duration::from_millis(ago)),
            None if key_changed => Some(now),
            None => None,
        };
        if let Some(at) = changed.filter(|at| *at > self.changed_at) {
            self.changed_at = at;
            self.reported = false;
        }
    }

    /// What is left of the stall time, while the spell is not reported yet.
    fn left(&self, stall: Option<Duration>) -> Option<Duration> {
        let stall = stall.filter(|_| !self.reported)?;
        Some(stall.saturating_sub(self.changed_at.elapsed()))
    }

    /// The stall time, once a still spell has lasted it (once a spell).
    fn due(&mut self, stall: Option<Duration>) -> Option<Duration> {
        let stall = stall?;
        if self.reported || self.changed_at.elapsed() < stall {
            return None;
        }
        self.reported = true;
        Some(stall)
    }
}

/// Whether a window is still there, by its endpoint's target list.
enum Presence {
    Listed,
    Gone,
    /// The endpoint does not answer.
    Unreachable(String),
}

/// Whether a window is still there, after attaching to it failed with `e`.
fn presence(window: &WindowRef, e: &Error) -> Presence {
    // A window given by its own ws:// URL has no list to be found in: it is gone only
    // when its browser says it has no such target; else the browser is not reached.
    if let Endpoint::Target { .. } = window.endpoint {
        return match e {
            Error::Cdp(cdp::Error::NoTarget { .. }) => Presence::Gone,
            e => Presence::Unreachable(e.to_string()),
        };
    }
    match window.endpoint.list() {
        Ok(targets) if targets.iter().any(|t| t.id == window.target_id) => Presence::Listed,
        Ok(_) => Presence::Gone,
        Err(e) => Presence::Unreachable(e.to_string()),
    }
}

/// How long a delivered prompt's turn may take to show it started before `prompt`
/// returns without it; also how long a sender waits for another's claim on the editor.
pub const ACCEPT_WITHIN: Duration = Duration::from_secs(10);

/// Follows an endpoint's windows as long as the monitors run: when its connection
/// ends, reports it lost, retries (a bounded `/json/version` each time) with backoff,
/// reports it back, and follows it again.
fn discover(endpoint: Endpoint, profile: Profile, stop: Stop, tx: Sender<Update>, lost: Lost) {
    // Retries of a browser connection that fails while the endpoint answers.
    let mut reconnect = Backoff::new();
    loop {
        let why = match follow_targets(&endpoint, &profile, &stop, &tx) {
            Ok(()) => return,
            Err(why) => why,
        };
        if stop.requested() {
            return;
        }
        // Only the browser connection failed: the endpoint (and its windows) is there.
        if endpoint.version().is_ok() {
            if !stop.pause(reconnect.next()) {
                return;
            }
            continue;
        }
        reconnect = Backoff::new();
        if !lost.lost(&endpoint, why, &tx) {
            return;
        }
        let mut backoff = Backoff::new();
        loop {
            if !stop.pause(backoff.next()) {
                return;
            }
            if endpoint.version().is_ok() {
                break;
            }
        }
        if !lost.back(&endpoint, &tx) {
            return;
        }
    }
}

/// Reports the endpoint's windows (those there now come first: the browser lists
/// every target when discovery starts) until its connection ends: `Err` says why.
/// `Ok` when the monitors stop or nobody listens.
fn follow_targets(
    endpoint: &Endpoint,
    profile: &Profile,
    stop: &Stop,
    tx: &Sender<Update>,
) -> Result<(), String> {
    let ws = endpoint
        .version()
        .map_err(|e| e.to_string())?
        .web_socket_debugger_url
        .ok_or("the endpoint names no browser connection")?;
    let mut conn = Connection::open(&ws).map_err(|e| e.to_string())?;
    stop.group.add(conn.close_handle());
    conn.call(
        &SetDiscoverTargets { discover: true },
        Duration::from_secs(10),
    )
    .map_err(|e| e.to_string())?;
    // Windows seen, with their titles.
    let mut seen = std::collections::HashMap::new();
    loop {
        let event = match conn.next_event(None) {
            Ok(Some(event)) => event,
            Ok(None) => continue,
            Err(_) if stop.requested() => return Ok(()),
            Err(e) => return Err(e.to_string()),
        };
        let update = match event.method.as_str() {
            "Target.targetCreated" | "Target.targetInfoChanged" => {
                let Ok(TargetInfoEvent { target_info: t }) = event.decode() else {
                    continue;
                };
                if !profile.is_window(&t.kind, &t.url) {
                    continue;
                }
                if let Some(title) = seen.get_mut(&t.target_id) {
                    if *title == t.title {
                        continue;
                    }
                    *title = t.title.clone();
                    Update::Retitled {
                        target_id: t.target_id,
                        title: t.title,
                    }
                } else {
                    seen.insert(t.target_id.clone(), t.title.clone());
                    let ws_url = endpoint.page_ws_url(&t.target_id);
                    Update::Appeared {
                        window: WindowRef::new(endpoint.clone(), t.target_id, ws_url),
                        title: t.title,
                        url: t.url,
                    }
                }
            }
            "Target.targetDestroyed" => {
                if let Ok(TargetDestroyed { target_id }) = event.decode() {
                    seen.remove(&target_id);
                }
                continue;
            }
            _ => continue,
        };
        if tx.send(update).is_err() {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_from_a_quarter_second_to_five_seconds() {
        let mut b = Backoff::new();
        let ms: Vec<u128> = (0..7).map(|_| b.next().as_millis()).collect();
        assert_eq!(ms, [250, 500, 1000, 2000, 4000, 5000, 5000]);
    }
}
