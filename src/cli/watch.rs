//! `sessions watch`: every session's state, then one line per event, as it happens.

use std::collections::{BTreeSet, HashMap};
use std::io::IsTerminal;
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::{never, select};
use serde::Serialize;

use super::color;
use super::output::{self, Stream};
use super::{Args, registry};
use crate::event::Event;
use crate::journal;
use crate::monitor::Update;
use crate::panel::State;
use crate::policy::Autopilot;
use crate::sessions::Session;
use crate::show::{self, Block};
use crate::timestamp::rfc3339;
use crate::turn::{Tracker, Verdict};
use crate::{Error, exit};

/// One session as `sessions watch` follows it.
struct Watched {
    session: Session,
    /// Its title was read once its page loaded (see [`Watched::read_title`]).
    title_known: bool,
    snapshot: Option<crate::panel::Snapshot>,
    tracker: Tracker,
    wake: Option<Instant>,
    /// A `stalled` event was printed for the current turn.
    stalled: bool,
}

/// Wall-clock times for the monotonic instants monitors stamp their updates with.
struct Clock {
    instant: Instant,
    system: SystemTime,
}

impl Clock {
    fn now() -> Clock {
        Clock {
            instant: Instant::now(),
            system: SystemTime::now(),
        }
    }

    fn stamp(&self, at: Instant) -> String {
        let t = if at >= self.instant {
            self.system + (at - self.instant)
        } else {
            self.system - (self.instant - at)
        };
        rfc3339(t)
    }
}

/// How long `watch` waits for the first state of the sessions it starts with.
const FIRST_SNAPSHOT: Duration = Duration::from_secs(15);

/// `sessions watch`: a snapshot of every session, then one line per event.
pub(super) fn watch(a: &Args) -> Result<u8, Error> {
    let deadline = a.timeout_given.then(|| Instant::now() + a.wait.timeout);
    let registry = registry(a)?;
    let table = !a.json && std::io::stdout().is_terminal() && !color::dumb_terminal();
    // The live table redraws stdout whole: decisions go to stderr beside it.
    let to = if table {
        super::approve::decision_to_stderr
    } else {
        super::approve::decision_to_stdout
    };
    let autopilot = super::approve::autopilot(a, &registry, to)?;
    let chosen = registry.select(&a.sessions)?;
    let (monitors, rx) = crate::monitor::Monitors::new(registry.profile());
    let mut w = Watch {
        a,
        registry: &registry,
        clock: Clock::now(),
        monitors,
        order: Vec::new(),
        watched: HashMap::new(),
        gone: Gone::default(),
        // `--on`, `--webhook`, `--notify`: run off this thread, on settled transitions.
        hooks: crate::hooks::Hooks::start(a.hooks.clone(), a.wait.settle),
        autopilot: autopilot.as_ref(),
    };
    w.monitors.stall_after(a.stall_after);
    for s in &chosen {
        w.monitors.spawn(s, None);
        w.order.push(s.target_id.clone());
        w.watched
            .insert(s.target_id.clone(), new_watched(s.clone(), true, a));
    }
    // Also with --session: the endpoints' losses and returns are reported.
    w.monitors.watch_targets(registry.endpoints());
    // Read before anything of this run is recorded: the journal after SEQ, up to now.
    let replay = match &a.since {
        Some(_) => Some(super::memory::replay(a)?),
        None => None,
    };
    let mut printer = Printer {
        json: a.json,
        table,
        numbering: super::memory::Numbering::new(a),
        stopped: None,
        events: 0,
        block: Block::default(),
    };
    // Phase 1: the first state of every session, then the snapshot lines.
    let first_by = [Some(Instant::now() + FIRST_SNAPSHOT), deadline]
        .into_iter()
        .flatten()
        .min()
        .expect("one at least");
    while w.watched.values().any(|w| w.snapshot.is_none()) && Instant::now() < first_by {
        let Ok(update) = rx.recv_deadline(first_by) else {
            break;
        };
        let _ = apply_watch(&mut w, update, None);
    }
    for e in replay.iter().flatten() {
        printer.replayed(e);
    }
    printer.snapshot(&w.order, &w.watched);
    // Phase 2: events. ^C ends the watch the ordinary way: the journal writes what
    // it holds.
    let interrupt = crate::signals::signals();
    let ticker = if printer.table {
        crossbeam_channel::tick(Duration::from_secs(1))
    } else {
        never()
    };
    loop {
        if let Some(e) = printer.stopped.take() {
            return Err(e);
        }
        if a.until_idle && all_idle(&mut w.watched, &w.gone.lost) {
            // The decisions still being confirmed are printed first.
            if let Some(p) = w.autopilot {
                p.finish();
            }
            return Ok(w.gone.until_idle_code());
        }
        if a.count.is_some_and(|n| printer.events >= n) {
            return Ok(exit::OK);
        }
        let wake = w.watched.values().filter_map(|w| w.wake).min();
        let next = [wake, deadline].into_iter().flatten().min();
        let timer = next.map_or_else(never, crossbeam_channel::at);
        select! {
            recv(rx) -> update => {
                let Ok(update) = update else { return Ok(exit::OK) };
                apply_watch(&mut w, update, Some(&mut printer));
            }
            recv(timer) -> _ => {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    output::message(&format!("watch timed out after {}", show::duration(a.wait.timeout)));
                    return Ok(exit::TIMEOUT);
                }
            }
            recv(ticker) -> _ => printer.table(&w.order, &w.watched),
            recv(interrupt) -> _ => return Ok(exit::INTERRUPTED),
        }
    }
}

/// A session to watch; `title_known` when its title was read from the endpoint's
/// list (at the start), not taken from the window's announcement (see
/// [`Watched::read_title`]).
fn new_watched(session: Session, title_known: bool, a: &Args) -> Watched {
    Watched {
        session,
        snapshot: None,
        tracker: Tracker::new(None, a.wait.settle),
        wake: None,
        stalled: false,
        title_known,
    }
}

impl Watched {
    /// A new window is announced before its page sets its title (Chromium sends no
    /// `targetInfoChanged` for a title set later), so once its page has loaded (a
    /// state other than `no_panel` or `unresponsive`), its title is read once from the
    /// endpoint's list. True when that changed its workspace.
    fn read_title(&mut self, profile: &crate::profile::Profile) -> bool {
        let loaded = self
            .snapshot
            .as_ref()
            .is_some_and(|s| !matches!(s.state, State::NoPanel | State::Unresponsive));
        if self.title_known || !loaded {
            return false;
        }
        self.title_known = true;
        let listed = self
            .session
            .window
            .endpoint
            .list()
            .ok()
            .and_then(|targets| targets.into_iter().find(|t| t.id == self.session.target_id));
        let Some(t) = listed.filter(|t| t.title != self.session.title) else {
            return false;
        };
        let before = self.session.workspace.clone();
        self.session.retitle(t.title, profile);
        self.session.workspace != before
    }
}

/// What `sessions watch` lost sight of: after it, `--until-idle` cannot end well.
#[derive(Default)]
struct Gone {
    /// Endpoints lost and not back yet, by label.
    lost: BTreeSet<String>,
    /// Sessions closed during the watch: `ID (reason)`.
    closed: Vec<String>,
}

impl Gone {
    /// 0 when nothing vanished; else 1, saying what did.
    fn until_idle_code(&self) -> u8 {
        if self.lost.is_empty() && self.closed.is_empty() {
            return exit::OK;
        }
        let mut what: Vec<String> = self
            .closed
            .iter()
            .map(|c| format!("session {c} closed"))
            .collect();
        what.extend(self.lost.iter().map(|e| crate::monitor::lost_reason(e)));
        output::message(&format!(
            "not every session ended idle: {}",
            what.join("; ")
        ));
        exit::FAILURE
    }

    /// A lost endpoint answered (its discovery saw it, or a window of it was found
    /// again or found closed): say so once.
    fn back(&mut self, endpoint: &str, printer: Option<&mut Printer>, timestamp: String) {
        if !self.lost.remove(endpoint) {
            return;
        }
        output::message(&format!("{endpoint} answers again"));
        if let Some(p) = printer {
            p.endpoint_event("endpoint_back", endpoint, None, timestamp);
        }
    }
}

/// Every session idle for the settle time (none at all counts as idle); sessions of
/// a lost endpoint are not waited for.
fn all_idle(watched: &mut HashMap<String, Watched>, lost: &BTreeSet<String>) -> bool {
    let now = Instant::now();
    let mut all = true;
    for w in watched
        .values_mut()
        .filter(|w| !lost.contains(&w.session.endpoint))
    {
        let Some(snap) = &w.snapshot else {
            all = false;
            continue;
        };
        match w.tracker.observe(snap, now) {
            Verdict::Stopped if snap.state == State::Idle => w.wake = None,
            Verdict::Stopped => {
                w.wake = None;
                all = false;
            }
            Verdict::Pending { wake } => {
                w.wake = wake;
                all = false;
            }
        }
    }
    all
}

/// What `sessions watch` keeps while it runs: the chats it follows, in order, what
/// it knows of them, and what acts on their changes (hooks, a policy).
struct Watch<'a> {
    a: &'a Args,
    registry: &'a crate::registry::Registry,
    clock: Clock,
    monitors: crate::monitor::Monitors,
    order: Vec<String>,
    watched: HashMap<String, Watched>,
    gone: Gone,
    hooks: Option<crate::hooks::Hooks>,
    autopilot: Option<&'a Autopilot>,
}

/// One update into the watch; with a `printer` (after the snapshot lines), its event
/// line.
fn apply_watch(w: &mut Watch, update: Update, mut printer: Option<&mut Printer>) -> Option<()> {
    let Watch {
        a,
        registry,
        clock,
        monitors,
        order,
        watched,
        gone,
        hooks,
        autopilot,
    } = w;
    let (a, registry, hooks, autopilot) = (*a, *registry, hooks.as_ref(), *autopilot);
    match update {
        Update::Changed {
            target_id,
            snapshot,
            at,
        } => {
            let w = watched.get_mut(&target_id)?;
            if snapshot.state != State::Unresponsive {
                gone.back(&w.session.endpoint, printer.as_deref_mut(), clock.stamp(at));
            }
            let previous = w.snapshot.as_ref().map(|s| s.state);
            if let Some(h) = hooks {
                // New: a window first seen after the snapshot lines.
                h.state(
                    &w.session,
                    &snapshot,
                    previous.is_none() && printer.is_some(),
                );
            }
            let current = snapshot.state;
            if let Some(p) = autopilot {
                p.on_snapshot(&w.session, &snapshot);
            }
            let changes = crate::approve::changes(w.snapshot.as_ref(), &snapshot);
            let kind = crate::event::kind_of(w.snapshot.as_ref(), &snapshot, changes.changed);
            w.snapshot = Some(*snapshot);
            if previous != Some(current) {
                w.stalled = false;
            }
            let retitled = w.read_title(registry.profile());
            let p = printer?;
            if let (true, Some(prev)) = (retitled, previous) {
                p.event("retitled", w, Some(prev), Some(prev), None, clock.stamp(at));
            }
            let why = crate::monitor::change_reason(current, &w.session.endpoint, &gone.lost);
            if let Some(kind) = kind {
                let why = (kind == "state_change").then_some(why).flatten();
                p.event(kind, w, previous, Some(current), why, clock.stamp(at));
            }
            for (approval, noted) in &changes.resolved {
                p.resolved(w, previous, approval, noted.as_ref(), clock.stamp(at));
            }
            p.table(order, watched);
        }
        Update::Closed {
            target_id,
            reason,
            at,
        } => {
            // A closed window is forgotten: a long watch keeps no trace of it.
            let w = watched.remove(&target_id)?;
            order.retain(|id| *id != target_id);
            // Its endpoint answered: that is how the window was found gone.
            gone.back(&w.session.endpoint, printer.as_deref_mut(), clock.stamp(at));
            gone.closed.push(format!("{} ({reason})", w.session.id));
            if let Some(h) = hooks {
                h.closed(&w.session, &reason);
            }
            let previous = w.snapshot.as_ref().map(|s| s.state);
            let p = printer?;
            p.event(
                "session_closed",
                &w,
                previous,
                None,
                Some(reason),
                clock.stamp(at),
            );
            p.table(order, watched);
        }
        Update::Appeared { window, title, url } => {
            // With --session or --group, only the sessions chosen are followed.
            let target_id = window.target_id.clone();
            if watched.contains_key(&target_id) || !a.sessions.is_empty() || !a.groups.is_empty() {
                return None;
            }
            let session = Session::appeared(window, title, url, watched.keys(), registry.profile());
            monitors.spawn(&session, None);
            order.push(target_id.clone());
            watched.insert(target_id, new_watched(session, false, a));
        }
        Update::Retitled { target_id, title } => {
            let w = watched.get_mut(&target_id)?;
            let before = w.session.workspace.clone();
            w.session.retitle(title, registry.profile());
            // A session already announced is announced again when its workspace
            // changed with the title.
            let state = w.snapshot.as_ref()?.state;
            if w.session.workspace == before {
                return None;
            }
            let p = printer?;
            let stamp = rfc3339(SystemTime::now());
            p.event("retitled", w, Some(state), Some(state), None, stamp);
            p.table(order, watched);
        }
        Update::EndpointLost {
            endpoint,
            reason,
            at,
        } => {
            let label = endpoint.label().to_string();
            output::message(&format!("lost {label} ({reason}); retrying"));
            if gone.lost.insert(label.clone())
                && let Some(p) = printer
            {
                p.endpoint_event("endpoint_lost", &label, Some(&reason), clock.stamp(at));
            }
        }
        Update::EndpointBack { endpoint, at } => {
            gone.back(endpoint.label(), printer, clock.stamp(at));
        }
        Update::Still {
            target_id,
            after,
            at,
        } => {
            let w = watched.get_mut(&target_id)?;
            let snap = w.snapshot.as_ref()?;
            // Once a turn: one that works (busy), or a prompt not answered yet.
            let in_turn =
                snap.state == State::Thinking || (snap.state == State::Idle && snap.turn_open);
            if w.stalled || !in_turn {
                return None;
            }
            w.stalled = true;
            let reason = format!(
                "no change at all in the page for {} (seen: {})",
                show::duration(after),
                crate::show::seen(snap)
            );
            let current = Some(snap.state);
            printer?.event("stalled", w, None, current, Some(reason), clock.stamp(at));
        }
        Update::Prompted { .. } => {}
    }
    Some(())
}

/// A line whose seq is given once it is numbered.
trait Numbered {
    fn set_seq(&mut self, seq: u64);
}

impl Numbered for Event<'_> {
    fn set_seq(&mut self, seq: u64) {
        self.seq = seq;
    }
}

impl Numbered for EndpointLine<'_> {
    fn set_seq(&mut self, seq: u64) {
        self.seq = seq;
    }
}

/// `endpoint_lost` and `endpoint_back` in `sessions watch --json`.
#[derive(Serialize)]
struct EndpointLine<'a> {
    seq: u64,
    #[serde(rename = "type")]
    kind: &'a str,
    endpoint: &'a str,
    timestamp: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
}

/// Prints watch output: NDJSON, a live table (stdout a terminal), or plain lines;
/// and records every line in the journal.
struct Printer {
    json: bool,
    table: bool,
    numbering: super::memory::Numbering,
    /// Why the numbering stopped (the journal cannot record): the watch ends with it.
    stopped: Option<Error>,
    events: u64,
    /// The table's lines on the screen.
    block: Block,
}

impl Printer {
    /// An entry of the journal, replayed (`--since`): as it is stored, with `type`
    /// for `kind` as in the live lines; plain, as `angrav log` shows it.
    fn replayed(&mut self, e: &journal::Entry) {
        if self.json {
            self.emit(&e.event());
        } else {
            self.emit_text(&super::memory::log_line(&e.value));
        }
    }

    fn snapshot(&mut self, order: &[String], watched: &HashMap<String, Watched>) {
        for w in order.iter().filter_map(|id| watched.get(id)) {
            let snap = w.snapshot.as_ref();
            let mut line = Event::new(
                "snapshot",
                &w.session,
                snap,
                None,
                rfc3339(SystemTime::now()),
                None,
            );
            line.layout = snap.and_then(|s| s.layout);
            let Some(seq) = self.seq(&line) else { return };
            line.seq = seq;
            if self.table {
                continue;
            }
            if self.json {
                self.emit(&line);
            } else {
                // The state as status describes it: its error, approvals or question.
                let state = snap.map_or_else(
                    || "unknown".to_string(),
                    |s| {
                        crate::show::state(
                            s.state.name(),
                            s.error.as_deref(),
                            s.quota_resume.as_deref(),
                            &s.approvals,
                            s.question.as_deref(),
                        )
                    },
                );
                self.emit_text(&format!(
                    "{}  {:10}  {state}",
                    w.session.id,
                    w.session.workspace.as_deref().unwrap_or("-")
                ));
            }
        }
        self.table(order, watched);
    }

    /// `approval_resolved`: `approval` went away, answered by angrav as `noted` says
    /// (none: elsewhere).
    fn resolved(
        &mut self,
        w: &Watched,
        previous: Option<State>,
        approval: &crate::panel::Approval,
        noted: Option<&crate::panel::Answered>,
        timestamp: String,
    ) {
        let snap = w.snapshot.as_ref();
        let mut line = Event::new(
            "approval_resolved",
            &w.session,
            snap,
            previous,
            timestamp.clone(),
            None,
        )
        .resolved(approval, noted);
        let who = noted.map_or_else(|| "elsewhere".to_string(), |n| format!("angrav ({})", n.by));
        self.publish(&mut line, || {
            format!(
                "{timestamp}  {}  {:10}  approval_resolved: {} by {who}",
                w.session.id,
                w.session.workspace.as_deref().unwrap_or("-"),
                crate::approve::shown(approval)
            )
        });
    }

    fn event(
        &mut self,
        kind: &str,
        w: &Watched,
        previous: Option<State>,
        current: Option<State>,
        reason: Option<String>,
        timestamp: String,
    ) {
        let snap = w.snapshot.as_ref().filter(|_| current.is_some());
        let mut line = Event::new(
            kind,
            &w.session,
            snap,
            previous,
            timestamp.clone(),
            reason.as_deref(),
        );
        line.current = current;
        let name = |s: Option<State>| s.map_or("-", State::name);
        // A change within a state says what is asked now, as the JSON line does.
        let asked = match (kind, snap) {
            ("approval_changed", Some(s)) => {
                format!(" ({})", crate::approve::listed(&s.approvals))
            }
            ("question_changed", Some(s)) => s
                .question
                .as_deref()
                .map_or_else(String::new, |q| format!(" ({})", crate::show::asked(q))),
            _ => String::new(),
        };
        self.publish(&mut line, || {
            format!(
                "{timestamp}  {}  {:10}  {kind}: {} -> {}{asked}",
                w.session.id,
                w.session.workspace.as_deref().unwrap_or("-"),
                name(previous),
                name(current)
            )
        });
    }

    /// An event: numbered (and journaled), counted, then printed unless the live table
    /// shows it: as JSON, or as the readable `text`.
    fn publish<L: Serialize + Numbered>(&mut self, line: &mut L, text: impl FnOnce() -> String) {
        let Some(seq) = self.seq(&*line) else { return };
        line.set_seq(seq);
        self.events += 1;
        if self.table {
            return;
        }
        if self.json {
            self.emit(&*line);
        } else {
            self.emit_text(&text());
        }
    }

    /// `line`'s seq; none once the numbering stopped (nothing more is printed).
    fn seq(&mut self, line: &impl Serialize) -> Option<u64> {
        if self.stopped.is_some() {
            return None;
        }
        self.numbering
            .number(line)
            .map_err(|e| self.stopped = Some(e))
            .ok()
    }

    fn endpoint_event(
        &mut self,
        kind: &str,
        endpoint: &str,
        reason: Option<&str>,
        timestamp: String,
    ) {
        let mut line = EndpointLine {
            seq: 0,
            kind,
            endpoint,
            timestamp: timestamp.clone(),
            reason,
        };
        let reason = reason.map(|r| format!(": {r}")).unwrap_or_default();
        self.publish(&mut line, || {
            format!("{timestamp}  {endpoint}  {kind}{reason}")
        });
    }

    fn emit(&self, line: &impl Serialize) {
        output::json(line);
    }

    fn emit_text(&self, line: &str) {
        output::line(line);
    }

    /// Redraws the table in place of its last drawing (stdout a terminal, no
    /// `--json`); what was on the screen before the watch stays.
    fn table(&mut self, order: &[String], watched: &HashMap<String, Watched>) {
        if !self.table {
            return;
        }
        let rows: Vec<Vec<String>> = order
            .iter()
            .filter_map(|id| watched.get(id))
            .map(|w| {
                let state = w.snapshot.as_ref().map_or("…", |s| s.state.name());
                let layout = w
                    .snapshot
                    .as_ref()
                    .and_then(|s| s.layout)
                    .map_or("-", |l| l.name());
                vec![
                    w.session.id.clone(),
                    w.session.workspace.clone().unwrap_or_else(|| "-".into()),
                    state.to_string(),
                    layout.to_string(),
                    w.session.title.clone(),
                ]
            })
            .collect();
        let mut out = output::columns(&["ID", "WORKSPACE", "STATE", "LAYOUT", "TITLE"], &rows);
        out += &format!("\n{}. Ctrl-C stops.\n", output::count(self.events, "event"));
        // angrav's own cursor codes, written around the neutralised lines.
        let lines: Vec<String> = output::shown(&out, Stream::Stdout)
            .split_inclusive('\n')
            .map(String::from)
            .collect();
        output::write_stdout(&self.block.redraw(&lines));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_795_632_294_123);
        assert_eq!(rfc3339(t), "2026-11-25T18:44:54.123Z");
        assert_eq!(rfc3339(SystemTime::UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
    }
}
