//! Hooks: what angrav runs when a session's state settles somewhere new. A command
//! (`--on EVENT[:STATE] CMD`, through `sh -c`, the event's JSON on its stdin), a
//! webhook (`--webhook URL`, the JSON POSTed), a desktop notification (`--notify`).
//!
//! Hooks fire once per settled transition, never on a flicker: `thinking` when the
//! busy marker shows, `awaiting_approval` and `error` at once, `idle` only once the
//! agent has stayed idle for the settle time (see [`Tracker`]). They run off the
//! event path: the caller hands over what it saw and goes on; a thread of its own
//! decides what settled, and a pool of four runs the hooks. Page text never reaches a
//! command line: it travels on stdin and in the environment, and notifications get
//! it as separate arguments, never through a shell.
//!
//! A hook is bounded: a command runs in a process group of its own, its stdin is
//! written by a thread of its own (a hook that never reads a large event blocks only
//! that writer), and when its timeout passes the whole group is killed, so a stuck
//! hook holds its runner no longer than its timeout. Hooks still running when angrav
//! ends ([`Hooks`] dropped) get SIGTERM, then SIGKILL after [`END_GRACE`].

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::{Receiver, Sender, never, select};

use crate::Error;
use crate::event::Event;
use crate::panel::{Snapshot, State};
use crate::sessions::Session;
use crate::timestamp::rfc3339;
use crate::turn::{Tracker, Verdict};

/// Hooks running at once, at most.
const RUNNERS: usize = 4;
/// Hook runs waiting for a runner; past this, events are dropped (said on stderr).
const BACKLOG: usize = 1024;
/// How long a hook command may run before it is killed, unless `--hook-timeout`.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the hooks still running when angrav ends have after SIGTERM, before
/// SIGKILL.
pub const END_GRACE: Duration = Duration::from_secs(2);
/// One webhook attempt's limit, and the waits before the second and third attempts.
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);
const WEBHOOK_BACKOFF: [Duration; 2] = [Duration::from_secs(1), Duration::from_secs(3)];

/// The event kinds a hook can name.
const EVENTS: [&str; 3] = ["state_change", "new_session", "session_closed"];

/// The hooks given on the command line.
#[derive(Debug, Clone)]
pub struct Config {
    pub commands: Vec<CommandHook>,
    pub webhooks: Vec<String>,
    pub notify: bool,
    /// How long a command may run before its process group is killed.
    pub timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            commands: Vec::new(),
            webhooks: Vec::new(),
            notify: false,
            timeout: COMMAND_TIMEOUT,
        }
    }
}

/// `--on EVENT[:STATE] CMD`.
#[derive(Debug, Clone)]
pub struct CommandHook {
    event: &'static str,
    state: Option<State>,
    command: String,
}

impl Config {
    pub fn is_empty(&self) -> bool {
        self.commands.is_empty() && self.webhooks.is_empty() && !self.notify
    }

    /// Adds `--on EVENT[:STATE] CMD`.
    pub fn on(&mut self, spec: &str, command: &str) -> Result<(), Error> {
        let (event, state) = match spec.split_once(':') {
            Some((e, s)) => (e, Some(s)),
            None => (spec, None),
        };
        let event = EVENTS.into_iter().find(|e| *e == event).ok_or_else(|| {
            Error::Usage(format!(
                "--on: unknown event '{event}' (state_change, new_session, session_closed)"
            ))
        })?;
        let state = state
            .map(|s| {
                serde_json::from_value::<State>(s.into()).map_err(|_| {
                    Error::Usage(format!(
                        "--on: unknown state '{s}' (idle, thinking, awaiting_approval, awaiting_input, error, no_panel, unreadable, unresponsive)"
                    ))
                })
            })
            .transpose()?;
        if command.trim().is_empty() {
            return Err(Error::Usage("--on: the command is empty".into()));
        }
        self.commands.push(CommandHook {
            event,
            state,
            command: command.to_string(),
        });
        Ok(())
    }

    /// Adds `--webhook URL` (plain `http://`: this build has no TLS).
    pub fn webhook(&mut self, url: &str) -> Result<(), Error> {
        if !url.starts_with("http://") {
            return Err(Error::Usage(format!(
                "--webhook {url}: only http:// URLs (angrav has no TLS); put a local relay in front of an https endpoint"
            )));
        }
        self.webhooks.push(url.to_string());
        Ok(())
    }
}

/// The session an event is about.
type Who = Session;

/// What the event path saw, as it hands it to the hooks.
#[derive(Debug)]
pub enum Seen {
    /// A session's state as its monitor reported it; `new`: a window that appeared
    /// after the start (it fires `new_session`).
    State {
        who: Who,
        snapshot: Box<Snapshot>,
        new: bool,
    },
    Closed {
        who: Who,
        reason: String,
    },
}

/// The hooks' side of the event path: cheap to call, never blocks. Dropped, it ends
/// the hook commands still running (see [`END_GRACE`]) and starts no more.
pub struct Hooks {
    tx: Option<Sender<Seen>>,
    running: Arc<Running>,
}

/// The hook commands running now, by process group; and whether angrav is ending.
#[derive(Default)]
struct Running {
    groups: Mutex<HashSet<u32>>,
    ending: AtomicBool,
}

impl Running {
    fn groups(&self) -> MutexGuard<'_, HashSet<u32>> {
        self.groups.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Hooks {
    /// Starts the hook threads; `None` when no hook is configured.
    pub fn start(config: Config, settle: Duration) -> Option<Hooks> {
        if config.is_empty() {
            return None;
        }
        let notifier = if config.notify {
            let n = Notifier::find();
            if n.is_none() {
                warn!(
                    "angrav: --notify: neither notify-send nor osascript found; no notifications"
                );
            }
            n
        } else {
            None
        };
        let running = Arc::new(Running::default());
        let (jobs_tx, _) = runners(config.timeout, &running);
        let (tx, rx) = crossbeam_channel::unbounded();
        let mut settler = Settler {
            config,
            notifier,
            settle,
            sessions: HashMap::new(),
            seq: 0,
            jobs: jobs_tx,
        };
        std::thread::Builder::new()
            .name("hooks".into())
            .stack_size(256 * 1024)
            .spawn(move || settler.run(rx))
            .expect("spawn the hook thread");
        Some(Hooks {
            tx: Some(tx),
            running,
        })
    }

    fn send(&self, seen: Seen) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(seen);
        }
    }

    /// Call for every state a monitor reports (`sessions watch`: each
    /// `Update::Changed`; `new` for a window that appeared after the start).
    pub fn state(&self, session: &Session, snapshot: &Snapshot, new: bool) {
        self.send(Seen::State {
            who: session.clone(),
            snapshot: Box::new(snapshot.clone()),
            new,
        });
    }

    /// Call when a session's window closed (`Update::Closed`).
    pub fn closed(&self, session: &Session, reason: &str) {
        self.send(Seen::Closed {
            who: session.clone(),
            reason: reason.to_string(),
        });
    }
}

/// The pool of [`RUNNERS`] threads that run the hooks handed to the sender.
fn runners(
    timeout: Duration,
    running: &Arc<Running>,
) -> (Sender<Job>, Vec<std::thread::JoinHandle<()>>) {
    let (jobs_tx, jobs_rx) = crossbeam_channel::bounded::<Job>(BACKLOG);
    let threads = (0..RUNNERS)
        .map(|i| {
            let (jobs, running) = (jobs_rx.clone(), running.clone());
            std::thread::Builder::new()
                .name(format!("hook runner {i}"))
                .stack_size(256 * 1024)
                .spawn(move || {
                    for job in jobs {
                        if running.ending.load(Ordering::SeqCst) {
                            return;
                        }
                        job.run(timeout, &running);
                    }
                })
                .expect("spawn a hook runner")
        })
        .collect();
    (jobs_tx, threads)
}

impl Drop for Hooks {
    /// Ends with angrav: no more hooks start; those running get SIGTERM, and SIGKILL
    /// when they outlive [`END_GRACE`].
    fn drop(&mut self) {
        drop(self.tx.take());
        self.running.ending.store(true, Ordering::SeqCst);
        for &group in self.running.groups().iter() {
            crate::signals::signal_group(group, crate::signals::SIGTERM);
        }
        let deadline = Instant::now() + END_GRACE;
        // The runners reap them; std has no wait on another thread's child.
        while !self.running.groups().is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        for &group in self.running.groups().iter() {
            crate::signals::signal_group(group, crate::signals::SIGKILL);
        }
        // Reaped a moment later.
        let deadline = Instant::now() + Duration::from_secs(1);
        while !self.running.groups().is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// One session as the hooks follow it: the state it last settled in.
#[derive(Clone)]
struct Followed {
    who: Who,
    settled: State,
    tracker: Tracker,
    last: Snapshot,
    wake: Option<Instant>,
}

/// Decides which transitions settled, and queues their hooks.
struct Settler {
    config: Config,
    notifier: Option<Notifier>,
    settle: Duration,
    sessions: HashMap<String, Followed>,
    seq: u64,
    jobs: Sender<Job>,
}

impl Settler {
    fn run(&mut self, rx: Receiver<Seen>) {
        loop {
            let next = self.sessions.values().filter_map(|f| f.wake).min();
            let timer = next.map_or_else(never, crossbeam_channel::at);
            select! {
                recv(rx) -> seen => match seen {
                    Ok(seen) => self.seen(seen),
                    Err(_) => return,
                },
                recv(timer) -> _ => {
                    let now = Instant::now();
                    let due: Vec<String> = self
                        .sessions
                        .iter()
                        .filter(|(_, f)| f.wake.is_some_and(|w| w <= now))
                        .map(|(id, _)| id.clone())
                        .collect();
                    for id in due {
                        let last = self.sessions[&id].last.clone();
                        self.observe(&id, last, now);
                    }
                }
            }
        }
    }

    fn seen(&mut self, seen: Seen) {
        match seen {
            Seen::State { who, snapshot, new } => {
                let snapshot = *snapshot;
                let id = who.target_id.clone();
                if self.sessions.contains_key(&id) {
                    return self.observe(&id, snapshot, Instant::now());
                }
                // First sight: where the session is now is no transition.
                let mut tracker = Tracker::new(None, self.settle);
                let _ = tracker.observe(&snapshot, Instant::now());
                let f = Followed {
                    who,
                    settled: snapshot.state,
                    tracker,
                    last: snapshot,
                    wake: None,
                };
                if new {
                    self.fire("new_session", &f, None, Some(f.settled), None);
                }
                self.sessions.insert(id, f);
            }
            Seen::Closed { who, reason } => {
                if let Some(f) = self.sessions.remove(&who.target_id) {
                    self.fire("session_closed", &f, Some(f.settled), None, Some(&reason));
                }
            }
        }
    }

    fn observe(&mut self, id: &str, snap: Snapshot, now: Instant) {
        let settle = self.settle;
        let Some(f) = self.sessions.get_mut(id) else {
            return;
        };
        let previous = f.settled;
        f.wake = None;
        let settled = match snap.state {
            // Busy shows: a turn (re)starts at once; its tracker starts with it.
            State::Thinking => {
                if previous != State::Thinking {
                    f.tracker = Tracker::new(None, settle);
                }
                let _ = f.tracker.observe(&snap, now);
                Some(State::Thinking)
            }
            // A reload, most likely: no transition until the panel is back.
            State::NoPanel => None,
            _ => match f.tracker.observe(&snap, now) {
                Verdict::Stopped => Some(snap.state),
                Verdict::Pending { wake } => {
                    f.wake = wake;
                    None
                }
            },
        };
        f.last = snap;
        if let Some(current) = settled.filter(|s| *s != previous) {
            f.settled = current;
            let f = f.clone();
            self.fire("state_change", &f, Some(previous), Some(current), None);
        }
    }

    fn fire(
        &mut self,
        kind: &'static str,
        f: &Followed,
        previous: Option<State>,
        current: Option<State>,
        reason: Option<&str>,
    ) {
        self.seq += 1;
        let snap = current.map(|_| &f.last);
        // As hooks get it: the JSON on a command's stdin, a webhook's body.
        let mut event = Event::new(
            kind,
            &f.who,
            snap,
            previous,
            rfc3339(SystemTime::now()),
            reason,
        );
        (event.seq, event.current) = (self.seq, current);
        let json = serde_json::to_string(&event).expect("an event serialises");
        let mut jobs = Vec::new();
        for hook in &self.config.commands {
            let state_matches = hook.state.is_none() || hook.state == current;
            if hook.event == kind && state_matches {
                jobs.push(Job::Command {
                    command: hook.command.clone(),
                    env: [
                        ("ANGRAV_EVENT", kind.to_string()),
                        ("ANGRAV_SESSION", f.who.id.clone()),
                        (
                            "ANGRAV_WORKSPACE",
                            f.who.workspace.clone().unwrap_or_default(),
                        ),
                        (
                            "ANGRAV_STATE",
                            current.map(State::name).unwrap_or_default().into(),
                        ),
                    ],
                    stdin: json.clone(),
                });
            }
        }
        for url in &self.config.webhooks {
            jobs.push(Job::Webhook {
                url: url.clone(),
                body: json.clone(),
            });
        }
        if let Some(n) = self.notifier
            && let Some(text) = notification(&event)
        {
            jobs.push(Job::Notify(n, text));
        }
        for job in jobs {
            if self.jobs.try_send(job).is_err() {
                warn!(
                    "angrav: hooks: {BACKLOG} hook runs already wait; event {} of {} not handed to its hooks",
                    event.seq, event.session.id
                );
            }
        }
    }
}

/// The transitions worth a desktop notification: the agent needs the user, or is done.
fn notification(e: &Event) -> Option<(String, String)> {
    let body = match e.current? {
        State::AwaitingApproval if e.approvals.is_empty() => "awaiting approval".to_string(),
        State::AwaitingApproval => {
            format!("awaiting approval: {}", crate::approve::listed(e.approvals))
        }
        State::AwaitingInput => "asks a question: awaiting your answer".to_string(),
        State::Error => format!("error: {}", e.error.unwrap_or("")),
        State::Idle if e.previous == Some(State::Thinking) => "finished".into(),
        _ => return None,
    };
    let title = format!(
        "angrav: {}",
        e.session.workspace.as_deref().unwrap_or(&e.session.id)
    );
    Some((sanitize(&title), sanitize(&body)))
}

/// Page text made fit for a notification: no control characters, not too long.
fn sanitize(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(200)
        .collect()
}

/// The desktop's notification tool.
#[derive(Debug, Clone, Copy)]
enum Notifier {
    NotifySend,
    Osascript,
}

impl Notifier {
    fn find() -> Option<Notifier> {
        let on_path = |name: &str| {
            std::env::var_os("PATH")
                .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
        };
        if cfg!(target_os = "macos") && on_path("osascript") {
            Some(Notifier::Osascript)
        } else if on_path("notify-send") {
            Some(Notifier::NotifySend)
        } else {
            None
        }
    }

    /// The command, with the title and body as arguments of their own.
    fn command(self, title: &str, body: &str) -> Command {
        match self {
            Notifier::NotifySend => {
                // The body is markup to notification servers (the title is not): page
                // text in it, a command's `<file` or `&&`, is shown as it reads.
                let body = body
                    .replace('&', "&amp;")
                    .replace('<', "&lt;")
                    .replace('>', "&gt;");
                let mut c = Command::new("notify-send");
                c.arg("--").arg(title).arg(body);
                c
            }
            Notifier::Osascript => {
                // The script is fixed; the texts arrive as its run handler's argv.
                let mut c = Command::new("osascript");
                c.args([
                    "-e",
                    "on run argv",
                    "-e",
                    "display notification (item 2 of argv) with title (item 1 of argv)",
                    "-e",
                    "end run",
                ])
                .arg(title)
                .arg(body);
                c
            }
        }
    }
}

/// One hook run.
enum Job {
    Command {
        command: String,
        env: [(&'static str, String); 4],
        stdin: String,
    },
    Webhook {
        url: String,
        body: String,
    },
    Notify(Notifier, (String, String)),
}

impl Job {
    fn run(self, timeout: Duration, running: &Running) {
        let result = match &self {
            Job::Command {
                command,
                env,
                stdin,
            } => run_command(command, env, stdin, timeout, running),
            Job::Webhook { url, body } => post(url, body),
            Job::Notify(n, (title, body)) => n
                .command(title, body)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .status()
                .map_err(|e| e.to_string())
                .and_then(exited),
        };
        if let Err(why) = result {
            let what = match &self {
                Job::Command { command, .. } => format!("hook '{command}'"),
                Job::Webhook { url, .. } => format!("webhook {url}"),
                Job::Notify(..) => "notification".into(),
            };
            warn!("angrav: {what} failed: {why}");
        }
    }
}

fn exited(status: std::process::ExitStatus) -> Result<(), String> {
    if status.success() {
        Ok(())
    } else {
        Err(format!("it exited with {status}"))
    }
}

/// `sh -c CMD` in a process group of its own, the event on stdin (written by a thread
/// of its own); its stdout is discarded, its stderr is angrav's. Past `timeout` the
/// group is killed.
fn run_command(
    command: &str,
    env: &[(&str, String)],
    stdin: &str,
    timeout: Duration,
    running: &Running,
) -> Result<(), String> {
    let mut sh = Command::new("sh");
    sh.arg("-c")
        .arg(command)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::null());
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut sh, 0);
    let mut child = {
        // Registered as it starts: angrav ending now ends it too.
        let mut groups = running.groups();
        let child = sh.spawn().map_err(|e| format!("cannot start sh: {e}"))?;
        groups.insert(child.id());
        child
    };
    let deadline = Instant::now() + timeout;
    if let Some(mut input) = child.stdin.take() {
        let event = stdin.to_string();
        // A hook that does not read its stdin is fine; one that never does holds
        // this writer (until its group is killed), never the runner.
        let _ = std::thread::Builder::new()
            .name("hook stdin".into())
            .stack_size(64 * 1024)
            .spawn(move || {
                let _ = input.write_all(event.as_bytes());
            });
    }
    loop {
        match reap(&mut child, running) {
            Ok(Some(status)) => return exited(status),
            Ok(None) if Instant::now() >= deadline => {
                crate::signals::signal_group(child.id(), crate::signals::SIGKILL);
                let _ = reap_blocking(&mut child, running);
                return Err(format!(
                    "still running after {}: its process group was killed",
                    crate::show::duration(timeout)
                ));
            }
            // std has no wait with a timeout: look again shortly.
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => {
                crate::signals::signal_group(child.id(), crate::signals::SIGKILL);
                let _ = reap_blocking(&mut child, running);
                return Err(e.to_string());
            }
        }
    }
}

/// `try_wait`, and the group forgotten in the same step as the reap: a group id is
/// never signalled after its leader's pid may be reused.
fn reap(child: &mut Child, running: &Running) -> std::io::Result<Option<std::process::ExitStatus>> {
    let mut groups = running.groups();
    let status = child.try_wait()?;
    if status.is_some() {
        groups.remove(&child.id());
    }
    Ok(status)
}

/// `wait` for a child just killed (its exit is a moment away).
fn reap_blocking(
    child: &mut Child,
    running: &Running,
) -> std::io::Result<std::process::ExitStatus> {
    let mut groups = running.groups();
    let status = child.wait();
    groups.remove(&child.id());
    status
}

/// POSTs the event; retried twice with a growing wait when it does not get a 2xx.
fn post(url: &str, body: &str) -> Result<(), String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(WEBHOOK_TIMEOUT))
        .http_status_as_error(false)
        .build()
        .into();
    let mut last = String::new();
    for attempt in 0..=WEBHOOK_BACKOFF.len() {
        if attempt > 0 {
            std::thread::sleep(WEBHOOK_BACKOFF[attempt - 1]);
        }
        match agent
            .post(url)
            .header("Content-Type", "application/json")
            .send(body)
        {
            Ok(reply) if reply.status().is_success() => return Ok(()),
            Ok(reply) => last = format!("HTTP {}", reply.status().as_u16()),
            Err(e) => last = e.to_string(),
        }
    }
    Err(format!(
        "{last} (after {} attempts)",
        WEBHOOK_BACKOFF.len() + 1
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notify_send_shows_a_commands_markup_characters_as_text() {
        let c = Notifier::NotifySend.command("a <b>", "make <in && b>out");
        let args: Vec<&std::ffi::OsStr> = c.get_args().collect();
        assert_eq!(args, ["--", "a <b>", "make &lt;in &amp;&amp; b&gt;out"]);
        let c = Notifier::Osascript.command("t", "a && b");
        assert_eq!(c.get_args().last().unwrap(), "a && b");
    }

    #[test]
    fn hook_specs_name_an_event_and_maybe_a_state() {
        let mut c = Config::default();
        c.on("state_change:awaiting_approval", "true").unwrap();
        c.on("session_closed", "true").unwrap();
        assert_eq!(c.commands[0].state, Some(State::AwaitingApproval));
        assert_eq!(c.commands[1].state, None);
        assert!(c.on("changed", "true").is_err());
        assert!(c.on("state_change:asleep", "true").is_err());
        assert!(c.webhook("https://example.com/x").is_err());
        assert!(c.webhook("http://127.0.0.1:9/x").is_ok());
    }

    /// A directory of its own for one test, with FIFOs of these names in it.
    fn with_fifos<const N: usize>(
        test: &str,
        names: [&str; N],
    ) -> (std::path::PathBuf, [std::path::PathBuf; N]) {
        let dir = std::env::temp_dir().join(format!("angrav-hooks-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let fifos = names.map(|n| dir.join(n));
        for f in &fifos {
            assert!(Command::new("mkfifo").arg(f).status().unwrap().success());
        }
        (dir, fifos)
    }

    fn command(command: String, stdin: String) -> Job {
        let env = [
            "ANGRAV_EVENT",
            "ANGRAV_SESSION",
            "ANGRAV_WORKSPACE",
            "ANGRAV_STATE",
        ]
        .map(|k| (k, String::new()));
        Job::Command {
            command,
            env,
            stdin,
        }
    }

    /// The FIFO's content, once a writer opened and closed it (none: not in a minute).
    fn read_fifo(fifo: &std::path::Path) -> Option<String> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        let path = fifo.to_path_buf();
        std::thread::spawn(move || tx.send(std::fs::read_to_string(path).unwrap()));
        rx.recv_timeout(Duration::from_secs(60)).ok()
    }

    /// Whether a process is gone (a zombie waiting for its reaper counts as gone),
    /// looking for up to 10 s: a SIGKILL takes effect a moment after it is sent.
    fn gone(pid: &str) -> bool {
        let dead = || {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |stat| {
                stat.rsplit(") ").next().is_some_and(|s| s.starts_with('Z'))
            })
        };
        let until = Instant::now() + Duration::from_secs(10);
        while !dead() {
            if Instant::now() >= until {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        true
    }

    #[test]
    fn a_hook_that_never_reads_a_big_event_is_killed_with_its_group_and_later_hooks_run() {
        let (dir, [fifo]) = with_fifos("stuck", ["later"]);
        let pids = dir.join("pids");
        let running = Arc::new(Running::default());
        let (jobs, threads) = runners(Duration::from_millis(300), &running);
        // More stuck hooks than runners, each given a 200 KB event it never reads,
        // each with a child of its own in its group; then one that answers.
        let stuck = format!("sleep 600 & echo $! >> '{}'; wait", pids.display());
        let event = "x".repeat(200 * 1024);
        for _ in 0..=RUNNERS {
            jobs.send(command(stuck.clone(), event.clone())).unwrap();
        }
        jobs.send(command(
            format!("cat > '{}'", fifo.display()),
            "later".into(),
        ))
        .unwrap();
        assert_eq!(read_fifo(&fifo).as_deref(), Some("later"));
        drop(jobs);
        for t in threads {
            t.join().unwrap();
        }
        let pids = std::fs::read_to_string(&pids).unwrap();
        assert_eq!(pids.lines().count(), RUNNERS + 1, "{pids}");
        for pid in pids.lines() {
            assert!(gone(pid), "the stuck hook's child {pid} still runs");
        }
        assert!(running.groups().is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn hooks_still_running_end_with_angrav() {
        let (dir, [fifo, fifo2]) = with_fifos("end", ["started", "started2"]);
        let running = Arc::new(Running::default());
        let (jobs, _) = runners(COMMAND_TIMEOUT, &running);
        let hooks = Hooks {
            tx: None,
            running: running.clone(),
        };
        // One that ends on SIGTERM, one that ignores it: both are gone after the drop.
        for (trap, fifo) in [("", &fifo), ("trap '' TERM; ", &fifo2)] {
            let hook = format!("{trap}sleep 600 & echo $! > '{}'; wait", fifo.display());
            jobs.send(command(hook, String::new())).unwrap();
        }
        let children = [read_fifo(&fifo).unwrap(), read_fifo(&fifo2).unwrap()];
        drop(hooks);
        for pid in &children {
            assert!(gone(pid.trim()), "the hook's child {pid} outlived angrav");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn notifications_carry_no_control_characters() {
        assert_eq!(sanitize("a\nb\x1b[31mc"), "a b [31mc");
        assert_eq!(sanitize(&"x".repeat(300)).len(), 200);
    }
}
