//! Pages that stop answering and browsers that go away: angrav keeps its deadlines,
//! calls such a page `unresponsive` (not closed), follows it again when it answers,
//! and follows a browser that is killed and restarted on the same port.

mod common;

use std::thread;
use std::time::{Duration, Instant};

use angrav::journal::{Journal, Kind};
use angrav::monitor::{Monitors, Update};
use angrav::panel::{Layout, State};
use angrav::sim::{Simulator, Window};
use angrav::state::StateDir;
use cdp::TargetInfo;
use common::{angrav, freeze, open, recovered, stderr, stdout};
use crossbeam_channel::Receiver;
use serde_json::{Value, json};

/// How long a test waits for what it expects before failing; never a pause.
const PATIENCE: Duration = Duration::from_secs(60);

/// The next JSON line from a child that satisfies `want`; every line read goes to `seen`.
fn next_line(
    rx: &Receiver<String>,
    seen: &mut Vec<Value>,
    mut want: impl FnMut(&Value) -> bool,
) -> Value {
    let by = Instant::now() + PATIENCE;
    loop {
        let line = rx
            .recv_deadline(by)
            .unwrap_or_else(|e| panic!("no line as expected ({e}); lines so far: {seen:#?}"));
        let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
        seen.push(v.clone());
        if want(&v) {
            return v;
        }
    }
}

/// The line in `seen` that satisfies `want`, or else the next such line.
fn find_line(rx: &Receiver<String>, seen: &mut Vec<Value>, want: impl Fn(&Value) -> bool) -> Value {
    match seen.iter().find(|v| want(v)) {
        Some(v) => v.clone(),
        None => next_line(rx, seen, want),
    }
}

/// The next line of text (stderr) containing `part`.
fn next_text(rx: &Receiver<String>, part: &str) -> String {
    let by = Instant::now() + PATIENCE;
    let mut seen = Vec::new();
    loop {
        match rx.recv_deadline(by) {
            Ok(line) if line.contains(part) => return line,
            Ok(line) => seen.push(line),
            Err(e) => panic!("no line with '{part}' ({e}); lines: {seen:#?}"),
        }
    }
}

/// A line about the session whose target id starts with its `session` field.
fn about(v: &Value, target_id: &str) -> bool {
    v["session"]["id"]
        .as_str()
        .is_some_and(|s| target_id.starts_with(s))
}

#[test]
fn a_frozen_page_is_unresponsive_and_every_command_keeps_its_timeout() {
    let w = open(&[
        Window::new(Layout::Current, "frozen"),
        Window::new(Layout::Current, "fr-wait"),
        Window::new(Layout::LegacyFrame, "fr-fanout"),
    ]);
    let frozen = w.id(0).to_string();
    // Long enough to outlast every command below; they run side by side.
    let mut stalled = freeze(&w.0[0], Duration::from_secs(12));
    let (watch, rx) = common::spawn_angrav(&["--json", "sessions", "watch", "--session", &frozen]);
    let run = |args: Vec<String>| {
        thread::spawn(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            angrav(&args)
        })
    };
    let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let status = run(strings(&[
        "--json",
        "status",
        "--session",
        &frozen,
        "--timeout",
        "5s",
    ]));
    let list = run(strings(&["--json", "sessions", "list", "--timeout", "5s"]));
    let short_list = run(strings(&["sessions", "list", "--timeout", "1s"]));
    let wait = run(strings(&[
        "wait",
        "--session",
        &frozen,
        "--timeout",
        "1500ms",
    ]));
    let sessions_wait = run(strings(&[
        "--json",
        "sessions",
        "wait",
        "--session",
        &frozen,
        "--session",
        w.id(1),
        "--timeout",
        "3s",
    ]));
    // doctor examines every window at once, the whole within --timeout: the frozen
    // one is named, the others read; output and new keep their --timeout too.
    let doctor = run(strings(&[
        "--json",
        "doctor",
        "--session",
        &frozen,
        "--session",
        w.id(1),
        "--timeout",
        "2s",
    ]));
    let output_last = run(strings(&[
        "output",
        "last",
        "--session",
        &frozen,
        "--timeout",
        "1500ms",
    ]));
    let new = run(strings(&[
        "new",
        "--session",
        &frozen,
        "--timeout",
        "1500ms",
    ]));
    let fanout = run(strings(&[
        "--json",
        "sessions",
        "fanout",
        "to the frozen and the other",
        "--session",
        &frozen,
        "--session",
        w.id(2),
        "--timeout",
        "3s",
    ]));

    let o = status.join().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let s: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(s["state"], "unresponsive", "{s}");
    assert_eq!(s["session"]["target_id"], frozen.as_str());

    let o = list.join().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let l: Value = serde_json::from_slice(&o.stdout).unwrap();
    let listed = |id: &str| common::by_target(&l, id).expect("listed").clone();
    assert_eq!(listed(&frozen)["state"], "unresponsive");
    assert_eq!(listed(w.id(1))["state"], "idle", "the rest is not held up");

    // A timeout shorter than the probe time: the list says so, with 124.
    let o = short_list.join().unwrap();
    assert_eq!(o.status.code(), Some(124), "{}", stderr(&o));
    assert!(stdout(&o).contains("unresponsive"), "{}", stdout(&o));

    let o = wait.join().unwrap();
    assert_eq!(o.status.code(), Some(124), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("timed out after 1500 ms; still waiting for the page to answer"),
        "{}",
        stderr(&o)
    );

    let o = doctor.join().unwrap();
    assert_eq!(o.status.code(), Some(124), "{}", stderr(&o));
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    let of = |id: &str| {
        common::by_target(&report["sessions"], id)
            .expect("examined")
            .clone()
    };
    let warnings = of(&frozen)["warnings"].to_string();
    assert!(
        warnings.contains("did not answer within --timeout"),
        "{warnings}"
    );
    assert_eq!(of(w.id(1))["status"]["state"], "idle", "{report}");
    for o in [output_last.join().unwrap(), new.join().unwrap()] {
        assert_eq!(o.status.code(), Some(124), "{}", stderr(&o));
        assert!(
            stderr(&o).contains("timed out after 1500 ms"),
            "{}",
            stderr(&o)
        );
    }

    // A wait over the frozen chat and `other` (exit 124): the frozen one still
    // pending, the other done; the other's row.
    let reported = |o: std::process::Output, other: &str| {
        assert_eq!(o.status.code(), Some(124), "{}", stderr(&o));
        let r: Value = serde_json::from_slice(&o.stdout).unwrap();
        let of = |id: &str| {
            common::by_target(&r["sessions"], id)
                .expect("reported")
                .clone()
        };
        assert_eq!(of(&frozen)["status"], "pending", "{r}");
        assert_eq!(of(&frozen)["state"], "unresponsive", "{r}");
        assert_eq!(of(other)["status"], "done", "{r}");
        of(other)
    };
    reported(sessions_wait.join().unwrap(), w.id(1));
    let other = reported(fanout.join().unwrap(), w.id(2));
    assert!(
        other["answer"]["content"]
            .as_str()
            .unwrap()
            .contains("to the frozen and the other")
    );

    // `watch` saw it unresponsive from the start, and idle once the stall was over.
    let mut seen = Vec::new();
    let first = next_line(&rx, &mut seen, |v| v["type"] == "snapshot");
    assert_eq!(first["current"], "unresponsive", "{first}");
    recovered(&mut stalled);
    let back = next_line(&rx, &mut seen, |v| v["type"] == "state_change");
    assert_eq!(back["previous"], "unresponsive", "{back}");
    assert_eq!(back["current"], "idle", "{back}");
    assert!(
        seen.iter().all(|v| v["type"] != "session_closed"),
        "{seen:#?}"
    );
    drop(watch);
    // The prompt to the frozen page was never typed: it was not idle when sent.
    assert!(w.received(0).is_empty());
}

#[test]
fn a_page_stalled_mid_watch_is_unresponsive_then_followed_again() {
    let w = open(&[Window::new(Layout::Current, "stall")]);
    let session = common::registry().get(Some(w.id(0))).unwrap().clone();
    let (mut monitors, rx) = Monitors::new(&angrav::profile::Profile::default());
    // A short heartbeat, so that a short stall shows; the logic is the default one's.
    let heartbeat = Duration::from_millis(500);
    monitors.heartbeat(heartbeat);
    monitors.spawn(&session, None);
    let next = || loop {
        match rx
            .recv_deadline(Instant::now() + PATIENCE)
            .expect("an update")
        {
            Update::Changed { snapshot, .. } => return snapshot,
            Update::Closed { reason, .. } => panic!("reported closed: {reason}"),
            _ => continue,
        }
    };
    assert_eq!(next().state, State::Idle);
    // Longer than the heartbeat and the probe time together: it must show.
    let mut stalled = freeze(&w.0[0], heartbeat + Duration::from_secs(5));
    let during = next();
    assert_eq!(during.state, State::Unresponsive, "{during:?}");
    assert!(during.error.is_some());
    recovered(&mut stalled);
    assert_eq!(next().state, State::Idle, "followed again once it answers");
    // Still followed: a prompt's turn shows.
    let o = angrav(&["--session", w.id(0), "prompt", "after the stall"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    while next().state != State::Thinking {}
    monitors.stop();
}

/// A port free now, for a browser that must come back on the same one.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

#[test]
fn watch_follows_a_browser_killed_and_restarted_on_the_same_port() {
    let port = free_port();
    let first = Simulator::start_on(port).expect("a browser on a fixed port");
    let a = first
        .open(&Window::new(Layout::Current, "before"))
        .expect("a window");
    let busy = first
        .open(&Window::new(Layout::Current, "busy").start("thinking"))
        .expect("a window");
    let cdp = first.endpoint().label().to_string();
    let (watch, out, err) = common::spawn_angrav_at(&cdp, &["--json", "sessions", "watch"]);
    let (until_idle, idle_out, idle_err) =
        common::spawn_angrav_at(&cdp, &["--json", "sessions", "watch", "--until-idle"]);
    let mut seen = Vec::new();
    let mut snapshots = 0;
    next_line(&out, &mut seen, |v| {
        snapshots += usize::from(v["type"] == "snapshot");
        snapshots == 2
    });
    let mut idle_seen = Vec::new();
    let mut idle_snapshots = 0;
    next_line(&idle_out, &mut idle_seen, |v| {
        idle_snapshots += usize::from(v["type"] == "snapshot");
        idle_snapshots == 2
    });

    first.kill();
    let lost = next_line(&out, &mut seen, |v| v["type"] == "endpoint_lost");
    assert_eq!(lost["endpoint"], cdp.as_str());
    next_text(&err, &format!("lost {cdp}"));
    // The cause first: each window's state_change comes after endpoint_lost, and
    // says why.
    for id in [&a.id, &busy.id] {
        let frozen = find_line(&out, &mut seen, |v| {
            v["type"] == "state_change" && about(v, id)
        });
        assert_eq!(frozen["current"], "unresponsive", "not closed: {frozen}");
        assert_eq!(frozen["reason"], format!("endpoint {cdp} lost"), "{frozen}");
        assert!(frozen["seq"].as_u64() > lost["seq"].as_u64(), "{seen:#?}");
    }
    // So the journal reads them.
    let journal = angrav::journal::read(
        &StateDir::at(common::state_dir()),
        &angrav::journal::Filter::default(),
    )
    .unwrap()
    .entries;
    let seq_of = |want: &dyn Fn(&Value) -> bool| {
        journal
            .iter()
            .find(|e| want(&e.value))
            .map(|e| e.seq)
            .unwrap_or_else(|| panic!("not in the journal: {journal:#?}"))
    };
    let lost_at = seq_of(&|v| v["kind"] == "endpoint_lost" && v["endpoint"] == cdp.as_str());
    for id in [&a.id, &busy.id] {
        let frozen_at = seq_of(&|v| {
            v["kind"] == "state_change"
                && v["target_id"] == id.as_str()
                && v["current"] == "unresponsive"
        });
        assert!(lost_at < frozen_at, "{journal:#?}");
    }
    // --until-idle cannot end well: a browser went with a turn in it.
    let by = Instant::now() + PATIENCE;
    while idle_out.recv_deadline(by).is_ok() {}
    let mut until_idle = until_idle;
    assert_eq!(until_idle.0.wait().unwrap().code(), Some(1));
    next_text(&idle_err, &format!("endpoint {cdp} lost"));

    let second = Simulator::start_on(port).expect("the browser again, on the same port");
    let b = second
        .open(&Window::new(Layout::Current, "after"))
        .expect("a window");
    let back = find_line(&out, &mut seen, |v| v["type"] == "endpoint_back");
    assert_eq!(back["endpoint"], cdp.as_str());
    find_line(&out, &mut seen, |v| {
        v["type"] == "new_session" && about(v, &b.id)
    });
    // Found as soon as it opens: its panel may show a moment later.
    find_line(&out, &mut seen, |v| {
        about(v, &b.id) && v["current"] == "idle"
    });
    // The windows of the first browser are gone for good now that it answers.
    for old in [&a.id, &busy.id] {
        find_line(&out, &mut seen, |v| {
            v["type"] == "session_closed" && about(v, old)
        });
    }
    let at = |kind: &str, id: &str| {
        seen.iter()
            .position(|v| v["type"] == kind && (id.is_empty() || about(v, id)))
            .unwrap_or_else(|| panic!("no {kind}: {seen:#?}"))
    };
    assert!(at("endpoint_lost", "") < at("endpoint_back", ""));
    assert!(
        at("endpoint_back", "") < at("session_closed", &a.id),
        "{seen:#?}"
    );
    next_text(&err, &format!("{cdp} answers again"));
    drop(watch);
    drop(second);
}

#[test]
fn until_idle_does_not_end_well_when_a_session_closes() {
    let w = open(&[
        Window::new(Layout::Current, "ui-idle"),
        Window::new(Layout::Current, "ui-busy").start("thinking"),
    ]);
    let cdp = common::sim().endpoint().label().to_string();
    let mut args = vec!["--json", "sessions", "watch", "--until-idle"];
    let s = common::session_args(&w);
    args.extend(s.iter().map(String::as_str));
    let (mut child, out, err) = common::spawn_angrav_at(&cdp, &args);
    let mut seen = Vec::new();
    let mut snapshots = 0;
    next_line(&out, &mut seen, |v| {
        snapshots += usize::from(v["type"] == "snapshot");
        snapshots == 2
    });
    // The busy one goes mid-turn; the one left is idle.
    common::sim().close(w.id(1)).unwrap();
    let closed = next_line(&out, &mut seen, |v| v["type"] == "session_closed");
    assert!(about(&closed, w.id(1)), "{closed}");
    let by = Instant::now() + PATIENCE;
    while out.recv_deadline(by).is_ok() {}
    assert_eq!(child.0.wait().unwrap().code(), Some(1));
    let short = closed["session"]["id"].as_str().unwrap();
    let said = next_text(&err, "not every session ended idle");
    assert!(
        said.contains(&format!("session {short} (")) && said.contains("closed"),
        "{said}"
    );
}

/// `angrav --json dispatch -f FILE` over these browsers, with this state directory:
/// the child and its stdout lines.
fn dispatch(
    cdps: &[&str],
    prompts: &[String],
    state: &std::path::Path,
    extra: &[&str],
) -> (common::Reaped, Receiver<String>) {
    std::fs::create_dir_all(state).unwrap();
    let file = state.join("prompts.txt");
    std::fs::write(&file, prompts.join("\n")).unwrap();
    let mut command = common::angrav_bin();
    for cdp in cdps {
        command.args(["--cdp", cdp]);
    }
    let mut child = common::Reaped(
        command
            .args(["--json", "dispatch", "-f"])
            .arg(&file)
            .args(extra)
            .env("ANGRAV_STATE_DIR", state)
            .env_remove("ANGRAV_SELECTORS")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("run angrav"),
    );
    let out = common::lines(child.0.stdout.take().expect("piped"));
    (child, out)
}

/// A state directory of a test's own (removed when the test ends).
struct OwnState(std::path::PathBuf);

impl OwnState {
    fn new(test: &str) -> OwnState {
        let p = std::env::temp_dir().join(format!("angrav-res-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        OwnState(p)
    }
}

impl Drop for OwnState {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Result lines until the run's stdout ends.
fn results(out: &Receiver<String>, first: Vec<Value>) -> Vec<Value> {
    let mut all = first;
    let by = Instant::now() + 3 * PATIENCE;
    while let Ok(l) = out.recv_deadline(by) {
        all.push(serde_json::from_str(&l).expect("a JSON line"));
    }
    all
}

/// A result done with its answer not read.
fn unread(r: &Value) -> bool {
    r["reason"]
        .as_str()
        .is_some_and(|w| w.starts_with("answer not read"))
}

/// The exit code a dispatch with these results must end with: 0 only when every
/// prompt is done, its chat idle, its answer read.
fn exit_for(results: &[Value]) -> i32 {
    let ok = |r: &Value| r["status"] == "done" && r["state"] == "idle" && !unread(r);
    if results.iter().all(ok) { 0 } else { 1 }
}

/// Checks the results against the receipts the fixture server kept (outside the
/// browsers): no prompt reached two agents or one agent twice; a prompt reported
/// `done` was received once, by the chat its result names, whose answer quotes it
/// (unless it says the answer was not read); one reported `failed` (or unsent)
/// reached nobody. Returns how many were received.
fn received_once(prompts: &[String], workspaces: &[&str], results: &[Value]) -> usize {
    let receipts: Vec<(String, String)> = workspaces
        .iter()
        .flat_map(|w| {
            angrav::sim::receipts(w)
                .into_iter()
                .map(|t| (w.to_string(), t))
        })
        .collect();
    let mut received = 0;
    for (n, text) in prompts.iter().enumerate() {
        let got: Vec<&String> = receipts
            .iter()
            .filter(|(_, t)| t == text)
            .map(|(w, _)| w)
            .collect();
        assert!(
            got.len() <= 1,
            "{text} received {} times: {got:?}",
            got.len()
        );
        received += got.len();
        let id = (n + 1).to_string();
        let mine: Vec<&Value> = results.iter().filter(|r| r["id"] == id.as_str()).collect();
        assert!(mine.len() <= 1, "{id} reported twice: {mine:?}");
        let Some(r) = mine.first() else { continue };
        match r["status"].as_str().unwrap() {
            "done" => {
                assert_eq!(got.len(), 1, "{r}");
                assert_eq!(
                    r["session"]["workspace"].as_str(),
                    Some(got[0].as_str()),
                    "{r}"
                );
                // Its answer, unless the browser went away before it was read (said so).
                match r["answer"]["content"].as_str() {
                    Some(answer) => assert!(answer.contains(text.as_str()), "{r}"),
                    None => assert!(unread(r), "{r}"),
                }
            }
            "failed" | "unsent" => assert!(got.is_empty(), "{r} was received by {got:?}"),
            _ => {}
        }
    }
    received
}

#[test]
fn a_browser_killed_mid_dispatch_leaves_no_prompt_sent_twice_or_done_unseen() {
    let doomed = Simulator::start().expect("a browser to kill");
    let spaces = ["kd-a1", "kd-a2", "kd-b1", "kd-b2"];
    // The doomed browser's chats hold their first Enter at a gate: killed then, a
    // prompt is in flight there (typed, Enter pressed, its fate not seen).
    let _a: Vec<TargetInfo> = spaces[..2]
        .iter()
        .map(|w| {
            doomed
                .open(&Window::new(Layout::Current, w).scenario("slow,hold-enter"))
                .unwrap()
        })
        .collect();
    let _b = open(&[
        Window::new(Layout::Current, spaces[2]).scenario("slow"),
        Window::new(Layout::LegacyFrame, spaces[3]).scenario("slow"),
    ]);
    let prompts: Vec<String> = (1..=10).map(|i| format!("survive the crash {i}")).collect();
    let state = OwnState::new("kill-one");
    let mut sessions = Vec::new();
    for t in _a.iter().chain(&_b.0) {
        sessions.extend(["--session".to_string(), t.id.clone()]);
    }
    let extra: Vec<&str> = sessions.iter().map(String::as_str).collect();
    let cdps = [doomed.endpoint().label(), common::sim().endpoint().label()];
    let (mut child, out) = dispatch(&cdps, &prompts, &state.0, &extra);
    let held = format!("enter-{}", spaces[0]);
    assert!(
        angrav::sim::gate_reached(&held, PATIENCE),
        "no prompt reached its Enter in {}",
        spaces[0]
    );
    doomed.kill();
    for w in &spaces[..2] {
        angrav::sim::open_gate(&format!("enter-{w}"));
    }
    let all = results(&out, Vec::new());
    // Exit 1 when a prompt is not done (or its answer not read).
    assert_eq!(
        child.0.wait().unwrap().code(),
        Some(exit_for(&all)),
        "{all:#?}"
    );
    assert_eq!(all.len(), prompts.len(), "{all:#?}");
    let received = received_once(&prompts, &spaces, &all);
    // The prompt in flight when its browser died: its fate unseen, so neither done
    // nor sent to another chat (it reached nobody: the page never took the Enter).
    let in_flight: Vec<&Value> = all
        .iter()
        .filter(|r| r["session"]["workspace"] == spaces[0])
        .collect();
    assert_eq!(in_flight.len(), 1, "{all:#?}");
    let r = in_flight[0];
    assert!(
        ["unconfirmed", "closed"].contains(&r["status"].as_str().unwrap()),
        "{r}"
    );
    assert_eq!(r["attempts"], 1, "{r}");
    let text = &prompts[r["id"].as_str().unwrap().parse::<usize>().unwrap() - 1];
    for w in spaces {
        assert!(
            !angrav::sim::receipts(w).contains(text),
            "{text} reached {w}"
        );
    }
    let unread_ones = all.iter().filter(|r| unread(r)).count();
    eprintln!(
        "one of two browsers killed with a prompt in flight: {received} of {} prompts received, each once; statuses {:?}; {unread_ones} done with the answer not read",
        prompts.len(),
        all.iter()
            .map(|r| r["status"].as_str().unwrap())
            .collect::<Vec<_>>()
    );
}

#[test]
fn a_browser_restarted_mid_dispatch_then_the_failed_prompts_sent_again_reach_each_agent_once() {
    let port = free_port();
    let first = Simulator::start_on(port).expect("a browser on a fixed port");
    let spaces = ["kr-1", "kr-2", "kr-3", "kr-4"];
    for w in &spaces[..2] {
        first
            .open(&Window::new(Layout::Current, w).scenario("slow"))
            .unwrap();
    }
    let cdp = first.endpoint().label().to_string();
    let prompts: Vec<String> = (1..=8).map(|i| format!("restart around me {i}")).collect();
    let state = OwnState::new("restart");
    let (mut child, out) = dispatch(&[&cdp], &prompts, &state.0, &[]);
    let done: Vec<Value> =
        vec![serde_json::from_str(&out.recv_timeout(PATIENCE).expect("a result")).unwrap()];
    first.kill();
    let second = Simulator::start_on(port).expect("the browser again, on the same port");
    let all = results(&out, done);
    assert_eq!(child.0.wait().unwrap().code(), Some(1));
    received_once(&prompts, &spaces, &all);
    // What failed reached no agent: sent again, to the restarted browser's chats.
    for w in &spaces[2..] {
        second
            .open(&Window::new(Layout::Current, w).scenario("instant"))
            .unwrap();
    }
    let failed: Vec<String> = all
        .iter()
        .filter(|r| r["status"] == "failed")
        .map(|r| prompts[r["id"].as_str().unwrap().parse::<usize>().unwrap() - 1].clone())
        .collect();
    assert!(!failed.is_empty(), "{all:#?}");
    let again = OwnState::new("restart-again");
    let (mut child, out) = dispatch(&[&cdp], &failed, &again.0, &[]);
    let rerun = results(&out, Vec::new());
    assert_eq!(child.0.wait().unwrap().code(), Some(0), "{rerun:#?}");
    assert!(rerun.iter().all(|r| r["status"] == "done"), "{rerun:#?}");
    let received = received_once(&failed, &spaces, &rerun);
    eprintln!(
        "one browser restarted: {} prompts failed (never delivered), {received} received when sent again; statuses {:?}",
        failed.len(),
        all.iter()
            .map(|r| r["status"].as_str().unwrap())
            .collect::<Vec<_>>()
    );
    drop(second);
}

#[test]
fn angrav_killed_mid_dispatch_then_resumed_sends_every_prompt_once() {
    let spaces = ["kk-1", "kk-2"];
    let w = open(&[
        Window::new(Layout::Current, spaces[0]).scenario("slow"),
        Window::new(Layout::LegacyTarget, spaces[1]).scenario("slow"),
    ]);
    let prompts: Vec<String> = (1..=6).map(|i| format!("resume me {i}")).collect();
    let state = OwnState::new("resume");
    let sessions = common::session_args(&w);
    let extra: Vec<&str> = sessions.iter().map(String::as_str).collect();
    let cdp = [common::sim().endpoint().label()];
    let (mut child, out) = dispatch(&cdp, &prompts, &state.0, &extra);
    let before: Vec<Value> = (0..2)
        .map(|_| serde_json::from_str(&out.recv_timeout(PATIENCE).expect("a result")).unwrap())
        .collect();
    // SIGKILL: no chance to tidy up, two turns running.
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    let (code, after, said) = resume(&state, &extra);
    // Every prompt of the run, once: those reported before the kill again, as they were.
    assert_eq!(after.len(), prompts.len(), "{said}\n{after:#?}");
    for r in &before {
        assert!(after.contains(r), "{r} not reported again");
    }
    let received = received_once(&prompts, &spaces, &after);
    assert_eq!(received, prompts.len(), "{after:#?}");
    assert!(after.iter().all(|r| r["status"] == "done"), "{after:#?}");
    assert_eq!(code, Some(0), "{said}");
    eprintln!(
        "angrav killed then resumed: {received} of {} prompts received, each once",
        prompts.len()
    );
}

/// A file in `state` holding a prompt of 200 KB (it takes a while to type); its path.
fn long_prompt(state: &OwnState) -> String {
    std::fs::create_dir_all(&state.0).unwrap();
    let file = state.0.join("prompt.txt");
    std::fs::write(&file, format!("a long prompt {}", "x".repeat(200 * 1024))).unwrap();
    file.to_str().unwrap().to_string()
}

/// ^C to a running angrav.
fn interrupt(child: &common::Reaped) {
    signal(child, "INT");
}

/// Sends signal `name` (`INT`, `TERM`) to a running angrav.
fn signal(child: &common::Reaped, name: &str) {
    common::signal(child.0.id(), name);
}

#[test]
fn a_prompt_interrupted_before_its_page_takes_it_leaves_the_editor_as_it_was() {
    // ^C while the page holds the typing (the Enter, should it come, does nothing):
    // angrav sees it before the Enter. (After the Enter the send's verdict stands:
    // `a_prompt_interrupted_after_its_enter_keeps_the_verdict_of_its_send`.)
    let w = open(&[Window::new(Layout::Current, "interrupted").scenario("hold-typing,deaf")]);
    let state = OwnState::new("interrupted");
    let file = long_prompt(&state);
    let file = file.as_str();
    let (mut child, _out, err) = common::spawn_angrav_at(
        common::sim().endpoint().label(),
        &["--json", "--session", w.id(0), "prompt", "-f", file],
    );
    assert!(
        angrav::sim::gate_reached("typing-interrupted", PATIENCE),
        "the prompt was never typed"
    );
    interrupt(&child);
    angrav::sim::open_gate("typing-interrupted");
    assert_eq!(child.0.wait().unwrap().code(), Some(130));
    // Said last on stderr as the `interrupted` error, as --json says any error.
    let said: Vec<String> = err.iter().collect();
    let error: Value = serde_json::from_str(said.last().expect("a line on stderr"))
        .unwrap_or_else(|e| panic!("{e}: {said:?}"));
    assert_eq!(
        (&error["error"]["code"], &error["error"]["exit"]),
        (&json!("interrupted"), &json!(130)),
        "{said:?}"
    );
    let message = error["error"]["message"].as_str().unwrap();
    assert!(message.contains("not delivered"), "{message}");
    // Out of the editor again before angrav ended; never received.
    assert_eq!(w.editor_text(0).trim(), "");
    assert!(w.received(0).is_empty());
    assert!(angrav::sim::receipts("interrupted").is_empty());
}

#[test]
fn a_prompt_replacing_a_draft_interrupted_mid_typing_puts_the_draft_back() {
    draft_put_back_after("INT", ["redrafted-1", "redrafted-2"]);
}

#[test]
fn a_prompt_replacing_a_draft_terminated_mid_typing_puts_the_draft_back() {
    draft_put_back_after("TERM", ["terminated-1", "terminated-2"]);
}

/// `prompt --replace-draft` of a long prompt into a chat holding a draft, given
/// `signal` mid-typing (one chat of each layout, in these workspaces): exit 130, the
/// draft back in the editor, nothing received.
fn draft_put_back_after(signal_name: &str, spaces: [&str; 2]) {
    // Held mid-typing, and deaf to the Enter: whether the signal is seen before the
    // Enter or after it, the prompt never reaches the agent.
    let w = open(&[
        Window::new(Layout::Current, spaces[0]).scenario("hold-typing,deaf"),
        Window::new(Layout::LegacyFrame, spaces[1]).scenario("hold-typing,deaf"),
    ]);
    let state = OwnState::new(spaces[0]);
    let file = long_prompt(&state);
    let file = file.as_str();
    for (i, space) in spaces.iter().enumerate() {
        let draft = format!("the user's own draft {i}");
        w.type_draft(i, &draft);
        let args = [
            "--session",
            w.id(i),
            "prompt",
            "-f",
            file,
            "--replace-draft",
        ];
        let (mut child, _out) = common::spawn_angrav(&args);
        let gate = format!("typing-{space}");
        assert!(angrav::sim::gate_reached(&gate, PATIENCE), "never typed");
        signal(&child, signal_name);
        angrav::sim::open_gate(&gate);
        assert_eq!(
            child.0.wait().unwrap().code(),
            Some(130),
            "SIG{signal_name}"
        );
        // The draft it replaced is back before angrav ended; nothing was received.
        assert_eq!(w.editor_text(i), draft);
        assert!(w.received(i).is_empty());
        assert!(angrav::sim::receipts(space).is_empty());
    }
}

/// Records a dispatch run in the journal of `state` as dispatch records one: its
/// prompts (`(id, prompt)`), then each result line given.
fn journaled_run(state: &OwnState, run: &str, prompts: &[(&str, &str)], results: &[Value]) {
    std::fs::create_dir_all(&state.0).unwrap();
    let j = Journal::open(StateDir::at(&state.0));
    let lines: Vec<Value> = prompts
        .iter()
        .map(|(id, p)| json!({ "id": id, "prompt": p }))
        .collect();
    j.record_now(
        Kind::DispatchStarted,
        json!({ "run": run, "prompts": lines }),
    );
    for r in results {
        let mut r = r.clone();
        r["run"] = run.into();
        j.record_now(Kind::DispatchResult, r);
    }
}

/// `angrav --json dispatch --resume ARGS` with this state directory: exit code, the
/// result lines, stderr.
fn resume(state: &OwnState, args: &[&str]) -> (Option<i32>, Vec<Value>, String) {
    let o = common::angrav_bin()
        .args([
            "--cdp",
            common::sim().endpoint().label(),
            "--json",
            "dispatch",
            "--resume",
        ])
        .args(args)
        .env("ANGRAV_STATE_DIR", &state.0)
        .output()
        .expect("run angrav");
    let lines = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (o.status.code(), lines, stderr(&o))
}

#[test]
fn resume_takes_a_run_by_id_and_confirms_an_unconfirmed_prompt_its_chat_shows_once() {
    let spaces = ["rc-1", "rc-2"];
    let w = open(&[
        Window::new(Layout::Current, spaces[0]).scenario("instant"),
        Window::new(Layout::LegacyFrame, spaces[1]).scenario("instant"),
    ]);
    // What the chats received before angrav stopped: the first its prompt; the second
    // its prompt, then another one after it.
    let asked = [
        (0, "the lost prompt"),
        (1, "the other lost prompt"),
        (1, "a later prompt"),
    ];
    for (i, text) in asked {
        let o = angrav(&["--no-state", "--session", w.id(i), "prompt", "--wait", text]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    }
    let chats = common::registry()
        .select(&[w.id(0).to_string(), w.id(1).to_string()])
        .unwrap();
    let unconfirmed = |id: &str, chat: usize| {
        json!({ "id": id, "session": chats[chat], "status": "unconfirmed", "state": null,
            "reason": "submitted; then the browser went away", "attempts": 1, "duration_ms": 0 })
    };
    // Two runs: the older left both prompts unconfirmed; the newer, one done.
    let state = OwnState::new("resume-run");
    let (older, newer) = ("aaaa0000aaaa", "bbbb1111bbbb");
    journaled_run(
        &state,
        older,
        &[("1", "the lost prompt"), ("2", "the other lost prompt")],
        &[unconfirmed("1", 0), unconfirmed("2", 1)],
    );
    let done = json!({ "id": "x", "session": chats[0], "status": "done", "state": "idle",
        "attempts": 1, "duration_ms": 5 });
    journaled_run(
        &state,
        newer,
        &[("x", "never mind")],
        std::slice::from_ref(&done),
    );
    let sessions = common::session_args(&w);
    let chosen: Vec<&str> = sessions.iter().map(String::as_str).collect();

    // A run the journal does not know: refused, naming those it knows.
    let (code, lines, said) = resume(&state, &[&["ffff"][..], &chosen].concat());
    assert_eq!((code, lines.len()), (Some(2), 0), "{said}");
    assert!(said.contains(older) && said.contains(newer), "{said}");

    // The older run, by a prefix of its id: the first prompt is its chat's newest, shown
    // once: delivered, followed, done with its answer; the second is not the newest
    // there: unconfirmed still.
    let (code, lines, said) = resume(&state, &[&["aaaa"][..], &chosen].concat());
    assert_eq!(code, Some(1), "{said}");
    assert_eq!(lines.len(), 2, "{lines:#?}");
    let first = lines.iter().find(|l| l["id"] == "1").unwrap();
    assert_eq!(first["status"], "done", "{first}");
    assert_eq!(first["session"]["target_id"], w.id(0));
    let answer = first["answer"]["content"].as_str().unwrap();
    assert!(answer.contains("the lost prompt"), "{first}");
    let second = lines.iter().find(|l| l["id"] == "2").unwrap();
    assert_eq!(*second, unconfirmed("2", 1));
    // Nothing was sent again.
    assert_eq!(angrav::sim::receipts(spaces[0]), ["the lost prompt"]);
    assert_eq!(
        angrav::sim::receipts(spaces[1]),
        ["the other lost prompt", "a later prompt"]
    );
    // What it found is journaled: resumed again, the run reports it as it was.
    let (_, again, said) = resume(&state, &[&["aaaa0000aaaa"][..], &chosen].concat());
    assert!(again.contains(first), "{said}\n{again:#?}");

    // No RUN: the last run, as it was.
    let (code, lines, said) = resume(&state, &chosen);
    assert_eq!((code, lines), (Some(0), vec![done]), "{said}");
}

/// The JSON line on stdout, and the `interrupted` error said last on stderr, of a
/// child that ended; its exit code.
fn ended(
    child: &mut common::Reaped,
    out: &Receiver<String>,
    err: &Receiver<String>,
) -> (Option<i32>, Vec<String>, Vec<String>) {
    let code = child.0.wait().unwrap().code();
    (code, out.iter().collect(), err.iter().collect())
}

/// The last line of stderr as the JSON error angrav said: its code and exit.
fn said_error(said: &[String]) -> (Value, Value) {
    let error: Value = serde_json::from_str(said.last().expect("a line on stderr"))
        .unwrap_or_else(|e| panic!("{e}: {said:?}"));
    (
        error["error"]["code"].clone(),
        error["error"]["exit"].clone(),
    )
}

#[test]
fn a_prompt_interrupted_after_its_enter_is_delivered_and_says_so() {
    // The page holds the Enter: ^C comes after the submission, before its effect.
    let spaces = ["entered-1", "entered-2"];
    let w = open(&[
        Window::new(Layout::Current, spaces[0]).scenario("instant,hold-enter"),
        Window::new(Layout::LegacyFrame, spaces[1]).scenario("instant,hold-enter"),
    ]);
    for (i, space) in spaces.iter().enumerate() {
        let text = format!("entered before the signal {i}");
        let mut args = vec!["--session", w.id(i), "prompt", &text];
        if i == 0 {
            args.insert(0, "--json");
        }
        let (mut child, out, err) =
            common::spawn_angrav_at(common::sim().endpoint().label(), &args);
        let gate = format!("enter-{space}");
        assert!(
            angrav::sim::gate_reached(&gate, PATIENCE),
            "never submitted"
        );
        interrupt(&child);
        angrav::sim::open_gate(&gate);
        let (code, out, err) = ended(&mut child, &out, &err);
        // Delivered, and said so: a script that resent it on 130 would send it twice.
        assert_eq!(code, Some(0), "{out:?} {err:?}");
        if i == 0 {
            let result: Value = serde_json::from_str(&out[0]).unwrap();
            assert_eq!(result["delivered"], json!(true), "{out:?}");
        } else {
            assert!(out[0].ends_with(": delivered"), "{out:?}");
        }
        assert_eq!(w.received(i), vec![text]);
    }
}

#[test]
fn a_prompt_wait_interrupted_prints_the_chat_pending_then_the_interrupted_error() {
    // ^C while the page holds the Enter: the prompt is delivered, then the wait ends.
    let spaces = ["waited-int-1", "waited-int-2"];
    let w = open(&[
        Window::new(Layout::Current, spaces[0]).scenario("slow,hold-enter"),
        Window::new(Layout::LegacyFrame, spaces[1]).scenario("slow,hold-enter"),
    ]);
    for (i, space) in spaces.iter().enumerate() {
        let text = format!("waited on, then interrupted {i}");
        let mut args = vec!["--session", w.id(i), "prompt", &text, "--wait"];
        if i == 0 {
            args.insert(0, "--json");
        }
        let (mut child, out, err) =
            common::spawn_angrav_at(common::sim().endpoint().label(), &args);
        let gate = format!("enter-{space}");
        assert!(
            angrav::sim::gate_reached(&gate, PATIENCE),
            "never submitted"
        );
        interrupt(&child);
        angrav::sim::open_gate(&gate);
        let (code, out, err) = ended(&mut child, &out, &err);
        assert_eq!(code, Some(130), "{out:?} {err:?}");
        if i == 0 {
            // The result first, the chat still awaited; then the error.
            let result: Value = serde_json::from_str(&out[0]).unwrap();
            assert_eq!(result["status"], json!("pending"), "{out:?}");
            assert_eq!(result["session"]["target_id"], json!(w.id(i)), "{out:?}");
            assert_eq!(said_error(&err), (json!("interrupted"), json!(130)));
        } else {
            assert!(out.is_empty(), "{out:?}");
            let said = err.last().expect("a message");
            assert!(said.contains("interrupted; still waiting for"), "{err:?}");
        }
        assert_eq!(w.received(i), vec![text]);
    }
}

#[test]
fn a_prompt_interrupted_after_its_enter_keeps_the_verdict_of_its_send() {
    // The page holds the Enter and then ignores it: ^C after the submission does not
    // make the send's own verdict `interrupted` (exit 130 says: not sent, send again).
    let spaces = ["unheard-1", "unheard-2"];
    let w = open(&[
        Window::new(Layout::Current, spaces[0]).scenario("hold-enter,deaf"),
        Window::new(Layout::LegacyFrame, spaces[1]).scenario("hold-enter,deaf"),
    ]);
    for (i, space) in spaces.iter().enumerate() {
        let text = format!("never heard {i}");
        let args = ["--json", "--session", w.id(i), "prompt", &text];
        let (mut child, out, err) =
            common::spawn_angrav_at(common::sim().endpoint().label(), &args);
        let gate = format!("enter-{space}");
        assert!(
            angrav::sim::gate_reached(&gate, PATIENCE),
            "never submitted"
        );
        interrupt(&child);
        angrav::sim::open_gate(&gate);
        let (code, out, err) = ended(&mut child, &out, &err);
        assert_eq!(code, Some(1), "{out:?} {err:?}");
        // The page never took it: not delivered, the editor put back.
        assert_eq!(
            said_error(&err),
            (json!("not_delivered"), json!(1)),
            "{err:?}"
        );
        assert_eq!(w.editor_text(i).trim(), "");
        assert!(w.received(i).is_empty());
    }
}

/// Until `child` has its own handler for SIGINT (it no longer ends angrav there).
fn catches_sigint(child: &common::Reaped) {
    let status = format!("/proc/{}/status", child.0.id());
    let by = Instant::now() + PATIENCE;
    loop {
        let caught = std::fs::read_to_string(&status)
            .unwrap_or_default()
            .lines()
            .find_map(|l| {
                l.strip_prefix("SigCgt:")
                    .map(|m| u64::from_str_radix(m.trim(), 16).unwrap())
            })
            .unwrap_or(0);
        if caught & (1 << (2 - 1)) != 0 {
            return;
        }
        assert!(Instant::now() < by, "angrav never caught SIGINT");
    }
}

#[test]
fn a_wait_interrupted_prints_the_chat_pending_then_the_interrupted_error() {
    // Chats that think for ever.
    let w = open(&[
        Window::new(Layout::Current, "wait-int-1").start("thinking"),
        Window::new(Layout::LegacyFrame, "wait-int-2").start("thinking"),
    ]);
    for i in 0..2 {
        let mut args = vec!["--session", w.id(i), "wait"];
        if i == 0 {
            args.insert(0, "--json");
        }
        let (mut child, out, err) =
            common::spawn_angrav_at(common::sim().endpoint().label(), &args);
        catches_sigint(&child);
        interrupt(&child);
        let (code, out, err) = ended(&mut child, &out, &err);
        assert_eq!(code, Some(130), "{out:?} {err:?}");
        if i == 0 {
            let result: Value = serde_json::from_str(&out[0]).unwrap();
            assert_eq!(
                (&result["status"], &result["state"], &result["timed_out"]),
                (&json!("pending"), &json!("thinking"), &json!(false)),
                "{out:?}"
            );
            assert_eq!(said_error(&err), (json!("interrupted"), json!(130)));
        } else {
            assert!(out.is_empty(), "{out:?}");
            assert!(
                err.last().expect("a message").contains("still waiting for"),
                "{err:?}"
            );
        }
    }
}

/// A window given by its ws:// URL has no target list to be looked up in: when its
/// browser cannot be reached (killed) it is unresponsive, its endpoint lost, not
/// closed; it is closed when its browser says it has no such target (a window closed
/// while its browser runs).
#[test]
fn a_window_given_by_its_ws_url_is_closed_only_when_its_browser_says_so() {
    let doomed = Simulator::start().expect("a browser to kill");
    let ws = |t: &TargetInfo| t.web_socket_debugger_url.clone().expect("a ws URL");
    let killed = doomed
        .open(&Window::new(Layout::Current, "ws-killed"))
        .expect("a window");
    let closed = common::sim()
        .open(&Window::new(Layout::V2, "ws-closed"))
        .expect("a window");
    let (ws_killed, ws_closed) = (ws(&killed), ws(&closed));
    let (_watch, out, _err) = common::spawn_angrav_at(
        &ws_killed,
        &["--cdp", &ws_closed, "--json", "sessions", "watch"],
    );
    let mut seen = Vec::new();
    let mut snapshots = 0;
    next_line(&out, &mut seen, |v| {
        snapshots += usize::from(v["type"] == "snapshot");
        snapshots == 2
    });

    common::sim().close(&closed.id).expect("close a window");
    let gone = next_line(&out, &mut seen, |v| about(v, &closed.id));
    assert_eq!(gone["type"], "session_closed", "{gone}");

    doomed.kill();
    let lost = next_line(&out, &mut seen, |v| v["type"] == "endpoint_lost");
    assert_eq!(lost["endpoint"], ws_killed.as_str(), "{lost}");
    let frozen = next_line(&out, &mut seen, |v| about(v, &killed.id));
    assert_eq!(
        (&frozen["type"], &frozen["current"]),
        (&json!("state_change"), &json!("unresponsive")),
        "not closed: {frozen}"
    );
    assert_eq!(
        frozen["reason"],
        format!("endpoint {ws_killed} lost"),
        "{frozen}"
    );
}

#[test]
fn a_dispatch_whose_journal_cannot_be_written_sends_nothing_and_says_why() {
    let w = open(&[Window::new(Layout::Current, "no-journal").scenario("instant")]);
    // The journal's file is a directory: no line can be written to it.
    let state = OwnState::new("unwritable-journal");
    std::fs::create_dir_all(state.0.join("journal.ndjson")).unwrap();
    let mut dispatch = common::angrav_bin();
    dispatch
        .args(["--cdp", common::sim().endpoint().label(), "--json"])
        .args(["dispatch", "--session", w.id(0)])
        .env("ANGRAV_STATE_DIR", &state.0);
    let o = common::output_in(dispatch, "first\nsecond\n");
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let results: Vec<Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(results.len(), 2, "{results:?}");
    for r in &results {
        assert_eq!(r["status"], "failed", "{r}");
        let reason = r["reason"].as_str().unwrap();
        assert!(
            reason.contains("the journal cannot record its submission"),
            "{r}"
        );
        assert!(reason.contains("--no-state"), "{r}");
    }
    assert!(w.received(0).is_empty());
    assert_eq!(w.editor_text(0), "");
}
