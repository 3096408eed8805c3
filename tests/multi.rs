//! Multi-session monitoring in a real Chromium: waits, fan-out, watch.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use angrav::monitor::Update;
use angrav::panel::{Layout, State};
use angrav::sim::Window;
use angrav::waiter::{Status, Strategy, WaitSpec};
use common::{angrav, angrav_json, open, session_args, stderr};
use serde_json::Value;

fn with_sessions<'a>(w: &'a [String], rest: &[&'a str]) -> Vec<&'a str> {
    let mut v: Vec<&str> = rest.to_vec();
    v.extend(w.iter().map(String::as_str));
    v
}

fn outcome<'a>(report: &'a Value, target: &str) -> &'a Value {
    common::by_target(&report["sessions"], target).expect("session in report")
}

#[test]
fn wait_any_returns_the_first_session_to_finish() {
    let w = open(&[
        Window::new(Layout::Current, "any-1").start("thinking"),
        Window::new(Layout::LegacyFrame, "any-2").start("thinking"),
        Window::new(Layout::LegacyTarget, "any-3").start("thinking"),
        Window::new(Layout::Current, "any-4").start("thinking"),
        Window::new(Layout::LegacyTarget, "any-5").scenario("late-busy"),
    ]);
    // Sent without waiting: right after it the window still reads idle, which must
    // not count as finished.
    let o = angrav(&["--session", w.id(4), "prompt", "the only one that finishes"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let s = session_args(&w);
    let report = angrav_json(&with_sessions(&s, &["sessions", "wait", "--any"]), 0);
    let done: Vec<&Value> = report["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["status"] == "done")
        .collect();
    assert_eq!(done.len(), 1, "{report}");
    assert_eq!(done[0]["session"]["target_id"], w.id(4));
    let answer = done[0]["answer"]["content"].as_str().unwrap();
    assert!(
        answer.starts_with("## Answer 1") && answer.ends_with("Done."),
        "{answer}"
    );
    for i in 0..4 {
        assert_eq!(outcome(&report, w.id(i))["status"], "pending");
        assert_eq!(outcome(&report, w.id(i))["state"], "thinking");
    }
}

#[test]
fn wait_all_returns_when_each_has_finished() {
    let scenarios = ["", "late-busy", "flicker", "slow", "instant"];
    let layouts = [
        Layout::Current,
        Layout::LegacyFrame,
        Layout::LegacyTarget,
        Layout::Current,
        Layout::LegacyFrame,
    ];
    let windows: Vec<Window> = scenarios
        .iter()
        .zip(layouts)
        .map(|(s, l)| Window::new(l, "all").scenario(s))
        .collect();
    let w = open(&windows);
    for i in 0..w.0.len() {
        let o = angrav(&["--session", w.id(i), "prompt", &format!("task {i}")]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    }
    let s = session_args(&w);
    let report = angrav_json(&with_sessions(&s, &["sessions", "wait", "--all"]), 0);
    for (i, scenario) in scenarios.iter().enumerate() {
        let o = outcome(&report, w.id(i));
        assert_eq!(o["status"], "done", "{scenario}: {report}");
        assert_eq!(o["state"], "idle");
        let answer = o["answer"]["content"].as_str().unwrap();
        assert!(
            answer.contains(&format!("task {i}")) && answer.ends_with("Done."),
            "{scenario}: {answer}"
        );
    }
    assert_eq!(report["timed_out"], false);
}

#[test]
fn a_timeout_exits_124_and_names_what_was_done_and_pending() {
    let w = open(&[
        Window::new(Layout::Current, "to-idle"),
        Window::new(Layout::LegacyTarget, "to-busy").start("thinking"),
    ]);
    let s = session_args(&w);
    let args = with_sessions(
        &s,
        &[
            "--json",
            "sessions",
            "wait",
            "--all",
            "--timeout",
            "3s",
            "--settle",
            "100ms",
        ],
    );
    let o = angrav(&args);
    assert_eq!(o.status.code(), Some(124), "{}", stderr(&o));
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["timed_out"], true);
    assert_eq!(outcome(&report, w.id(0))["status"], "done");
    assert_eq!(outcome(&report, w.id(1))["status"], "pending");
    let short = outcome(&report, w.id(1))["session"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    // With --json, stderr says it as any error: one JSON object.
    let error = json_error(&stderr(&o));
    assert_eq!(error["code"], "timeout", "{error}");
    assert_eq!(error["exit"], 124, "{error}");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .ends_with(&format!("still waiting for {short}")),
        "{error}"
    );
}

/// The error a `--json` command printed on stderr: its only line, `{"error": ...}`.
fn json_error(stderr: &str) -> Value {
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    common::json_error(stderr)
}

#[test]
fn an_interrupted_wait_says_so_as_json_with_json() {
    let w = open(&[
        Window::new(Layout::Current, "int-idle"),
        Window::new(Layout::V2, "int-busy").start("thinking"),
    ]);
    let s = session_args(&w);
    let args = with_sessions(&s, &["--json", "sessions", "wait", "--all"]);
    let mut child = common::Reaped(
        common::angrav_bin()
            .arg("--cdp")
            .arg(common::sim().endpoint().label())
            .args(&args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let out = common::lines(child.0.stdout.take().unwrap());
    let err = common::lines(child.0.stderr.take().unwrap());
    // Waiting: its monitors follow the chats (^C is heard from before they start).
    let pid = child.0.id();
    let by = Instant::now() + Duration::from_secs(60);
    while !monitoring(pid) {
        assert!(Instant::now() < by, "no monitor thread");
        std::thread::sleep(Duration::from_millis(50));
    }
    common::signal(pid, "INT");
    let code = child.0.wait().unwrap().code();
    let said: Vec<String> = err.iter().collect();
    let said = said.join("\n");
    assert_eq!(code, Some(130), "{said}");
    let report: Value = serde_json::from_str(&out.iter().collect::<String>()).unwrap();
    assert_eq!(outcome(&report, w.id(1))["status"], "pending");
    let short = outcome(&report, w.id(1))["session"]["id"].as_str().unwrap();
    let error = json_error(&said);
    assert_eq!(error["code"], "interrupted", "{error}");
    assert_eq!(error["exit"], 130, "{error}");
    assert!(
        error["message"].as_str().unwrap().contains(short),
        "{error}"
    );
}

/// Process `pid` has a monitor thread.
fn monitoring(pid: u32) -> bool {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|tasks| {
            tasks
                .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
                .any(|comm| comm.starts_with("monitor "))
        })
        .unwrap_or(false)
}

#[test]
fn fanout_reports_each_session_on_its_own() {
    let w = open(&[
        Window::new(Layout::Current, "fan-ok"),
        Window::new(Layout::LegacyFrame, "fan-error").scenario("error"),
        Window::new(Layout::LegacyTarget, "fan-approval").scenario("approval"),
        Window::new(Layout::Current, "fan-busy").start("thinking"),
        Window::new(Layout::LegacyTarget, "fan-ok2").scenario("flicker"),
    ]);
    let s = session_args(&w);
    let report = angrav_json(
        &with_sessions(&s, &["sessions", "fanout", "review this"]),
        1,
    );
    let ok = outcome(&report, w.id(0));
    assert_eq!(
        (ok["status"].as_str(), ok["state"].as_str()),
        (Some("done"), Some("idle"))
    );
    assert!(
        ok["answer"]["content"]
            .as_str()
            .unwrap()
            .contains("review this")
    );
    let err = outcome(&report, w.id(1));
    assert_eq!(
        (err["status"].as_str(), err["state"].as_str()),
        (Some("done"), Some("error"))
    );
    assert_eq!(err["error"], "Agent terminated due to error");
    let appr = outcome(&report, w.id(2));
    assert_eq!(
        (appr["status"].as_str(), appr["state"].as_str()),
        (Some("done"), Some("awaiting_approval"))
    );
    assert_eq!(
        appr["approvals"][0]["choices"],
        serde_json::json!([{"label": "Run"}, {"label": "Reject"}])
    );
    let busy = outcome(&report, w.id(3));
    assert_eq!(busy["status"], "failed");
    assert!(busy["reason"].as_str().unwrap().contains("busy"), "{busy}");
    let ok2 = outcome(&report, w.id(4));
    assert_eq!(
        (ok2["status"].as_str(), ok2["state"].as_str()),
        (Some("done"), Some("idle"))
    );
    for i in [0, 1, 2, 4] {
        assert_eq!(w.received(i), ["review this"], "window {i}");
    }
    assert!(w.received(3).is_empty(), "a busy agent is not interrupted");
}

#[test]
fn sessions_run_gives_each_session_its_own_prompt() {
    let w = open(&[
        Window::new(Layout::Current, "run-a"),
        Window::new(Layout::LegacyFrame, "run-b"),
        Window::new(Layout::LegacyTarget, "run-c"),
    ]);
    let task_a = format!("{}=first \"task\"", w.id(0));
    let report = angrav_json(
        &[
            "sessions",
            "run",
            "--task",
            &task_a,
            "--task",
            "run-b=second task",
        ],
        0,
    );
    assert_eq!(outcome(&report, w.id(0))["status"], "done");
    assert_eq!(w.received(0), ["first \"task\""]);
    assert_eq!(w.received(1), ["second task"]);
    let list = serde_json::json!([{ "session": w.id(2), "prompt": "third\ntask" }]).to_string();
    let o = common::angrav_in(&["--json", "sessions", "run", "-f", "-"], &list);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(w.received(2), ["third\ntask"]);
}

#[test]
fn a_window_closed_mid_wait_is_reported_closed_and_no_longer_awaited() {
    let w = open(&[
        Window::new(Layout::Current, "close-idle").history(1),
        Window::new(Layout::LegacyTarget, "close-busy").start("thinking"),
        Window::new(Layout::LegacyFrame, "close-busy2").start("thinking"),
    ]);
    let registry = common::registry();
    let sessions = registry
        .select(&w.0.iter().map(|t| t.id.clone()).collect::<Vec<_>>())
        .unwrap();
    let spec = WaitSpec {
        strategy: Strategy::All,
        timeout: Duration::from_secs(60),
        settle: Duration::from_millis(300),
        extract: true,
        start_within: Duration::from_secs(10),
        stall_after: None,
    };
    let mut closed = false;
    // Once every session has reported its state, the waiter is watching them: close two.
    let mut progress = |outcomes: &[angrav::waiter::Outcome], _: Duration| {
        if !closed && outcomes.iter().all(|o| o.state.is_some()) {
            closed = true;
            common::sim().close(w.id(1)).unwrap();
            common::sim().close(w.id(2)).unwrap();
        }
    };
    let started = Instant::now();
    let report = registry.wait(&sessions, &HashMap::new(), spec, Some(&mut progress));
    assert!(closed, "the waiter reported progress");
    assert!(!report.timed_out, "finished in {:?}", started.elapsed());
    let by_id = |id: &str| {
        report
            .sessions
            .iter()
            .find(|o| o.session.target_id == id)
            .unwrap()
    };
    assert_eq!(by_id(w.id(0)).status, Status::Done);
    assert!(
        by_id(w.id(0))
            .answer
            .as_ref()
            .unwrap()
            .content
            .contains("Answer 1")
    );
    assert_eq!(by_id(w.id(1)).status, Status::Closed);
    assert_eq!(by_id(w.id(2)).status, Status::Closed);
}

#[test]
fn monitors_follow_a_reload_and_report_new_windows() {
    let w = open(&[
        Window::new(Layout::LegacyTarget, "mon-reload"),
        Window::new(Layout::Current, "mon-other"),
    ]);
    let registry = common::registry();
    let (mut monitors, rx) = registry.monitor();
    let deadline = || Instant::now() + Duration::from_secs(60);
    let next_for = |id: &str| loop {
        match rx.recv_deadline(deadline()).expect("an update in time") {
            Update::Changed {
                target_id,
                snapshot,
                ..
            } if target_id == id => return Ok(snapshot),
            Update::Closed {
                target_id, reason, ..
            } if target_id == id => return Err(reason),
            _ => continue,
        }
    };
    assert_eq!(next_for(w.id(0)).unwrap().state, State::Idle);
    // Reload: the monitor finds the panel again, without reporting the window closed.
    let mut page =
        cdp::Connection::open(w.0[0].web_socket_debugger_url.as_deref().unwrap()).unwrap();
    page.call(&cdp::methods::page::Reload {}, Duration::from_secs(10))
        .unwrap();
    angrav::sim::wait_loaded(&mut page).unwrap();
    let o = angrav(&["--session", w.id(0), "prompt", "after the reload", "--wait"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let mut saw_busy = false;
    while !saw_busy {
        let snap = next_for(w.id(0)).expect("not closed by a reload");
        saw_busy = snap.state == State::Thinking;
    }
    // A new window appears as such, with its state.
    let new = common::open(&[Window::new(Layout::LegacyFrame, "mon-new")]);
    loop {
        match rx
            .recv_deadline(deadline())
            .expect("the new window in time")
        {
            Update::Appeared { window, .. } if window.target_id == new.id(0) => break,
            _ => continue,
        }
    }
    monitors.stop();
}

#[test]
fn watch_prints_a_snapshot_then_one_line_per_event() {
    let w = open(&[
        Window::new(Layout::Current, "watch-a"),
        Window::new(Layout::LegacyTarget, "watch-b"),
    ]);
    let (child, rx) = common::spawn_angrav(&["--json", "sessions", "watch"]);
    let ours = |line: &Value, i: usize| {
        line["session"]["id"]
            .as_str()
            .is_some_and(|s| w.id(i).starts_with(s) && !s.is_empty())
    };
    let next = |pred: &dyn Fn(&Value) -> bool| -> Value {
        loop {
            let line = rx
                .recv_timeout(Duration::from_secs(60))
                .expect("a watch line in time");
            let v: Value = serde_json::from_str(&line).expect("NDJSON");
            if pred(&v) {
                return v;
            }
        }
    };
    // The snapshot comes first: once both lines are out, angrav is watching.
    let a = next(&|v| v["type"] == "snapshot" && ours(v, 0));
    assert_eq!(
        (&a["previous"], &a["current"]),
        (&Value::Null, &"idle".into())
    );
    assert_eq!(a["layout"], "current");
    assert_eq!(a["session"]["workspace"], "watch-a", "{a}");
    next(&|v| v["type"] == "snapshot" && ours(v, 1));
    let o = angrav(&["--session", w.id(1), "prompt", "watch me", "--wait"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let e1 = next(&|v| v["type"] == "state_change" && ours(v, 1));
    assert_eq!(
        (e1["previous"].as_str(), e1["current"].as_str()),
        (Some("idle"), Some("thinking"))
    );
    let e2 = next(&|v| v["type"] == "state_change" && ours(v, 1));
    assert_eq!(
        (e2["previous"].as_str(), e2["current"].as_str()),
        (Some("thinking"), Some("idle"))
    );
    assert!(e2["seq"].as_u64() > e1["seq"].as_u64());
    assert!(e2["timestamp"].as_str().unwrap().ends_with('Z'));
    // A new window, then a closed one.
    let new = open(&[Window::new(Layout::LegacyFrame, "watch-new")]);
    let n = next(&|v| {
        v["type"] == "new_session"
            && v["session"]["id"]
                .as_str()
                .is_some_and(|s| new.id(0).starts_with(s))
    });
    assert!(n["current"].is_string(), "{n}");
    // Its workspace: in the event itself when the window's title was known by then,
    // else in a `retitled` event that follows.
    if n["session"]["workspace"] != "watch-new" {
        let r = next(&|v| v["type"] == "retitled" && v["session"]["id"] == n["session"]["id"]);
        assert_eq!(r["session"]["workspace"], "watch-new", "{r}");
        assert_eq!(r["previous"], r["current"], "{r}");
    }
    common::sim().close(w.id(0)).unwrap();
    let c = next(&|v| v["type"] == "session_closed" && ours(v, 0));
    assert_eq!(c["previous"], "idle");
    drop(child);
}

#[test]
fn watch_until_idle_and_count_end_by_themselves() {
    let w = open(&[Window::new(Layout::LegacyFrame, "until").scenario("slow")]);
    let o = angrav(&["--session", w.id(0), "prompt", "take your time"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = angrav(&[
        "--json",
        "--session",
        w.id(0),
        "sessions",
        "watch",
        "--until-idle",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let lines: Vec<Value> = o
        .stdout
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    assert_eq!(lines[0]["type"], "snapshot");
    assert_eq!(lines.last().unwrap()["current"], "idle", "{lines:?}");
    let s = angrav_json(&["--session", w.id(0), "status"], 0);
    assert_eq!(s["state"], "idle");
    assert_eq!(s["agent_messages"], 1, "until-idle waited for the answer");
    // --count 2: the snapshot, two events (thinking, then idle), and it ends by itself.
    let (mut child, rx) = common::spawn_angrav(&[
        "--json",
        "--session",
        w.id(0),
        "sessions",
        "watch",
        "--count",
        "2",
    ]);
    let line = |rx: &crossbeam_channel::Receiver<String>| -> Value {
        serde_json::from_str(
            &rx.recv_timeout(Duration::from_secs(60))
                .expect("a line in time"),
        )
        .unwrap()
    };
    assert_eq!(line(&rx)["type"], "snapshot");
    let o = angrav(&["--session", w.id(0), "prompt", "once more", "--wait"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(line(&rx)["current"], "thinking");
    assert_eq!(line(&rx)["current"], "idle");
    let ended = rx.recv_timeout(Duration::from_secs(60));
    assert!(
        matches!(
            ended,
            Err(crossbeam_channel::RecvTimeoutError::Disconnected)
        ),
        "{ended:?}"
    );
    assert!(child.0.wait().unwrap().success());
}

#[test]
fn the_library_runs_tasks_in_parallel() {
    let w = open(&[
        Window::new(Layout::Current, "lib-a"),
        Window::new(Layout::LegacyTarget, "lib-b").scenario("late-busy"),
    ]);
    let registry = common::registry();
    let tasks = vec![
        (w.id(0).to_string(), "alpha task".to_string()),
        (w.id(1).to_string(), "beta task".to_string()),
    ];
    let report = registry
        .execute_parallel(&tasks, angrav::turn::WaitOptions::default())
        .unwrap();
    assert!(!report.timed_out);
    for (i, o) in report.sessions.iter().enumerate() {
        assert_eq!(o.status, Status::Done);
        assert_eq!(o.state, Some(State::Idle));
        assert!(o.answer.as_ref().unwrap().content.contains(&tasks[i].1));
    }
}

/// The journal entries of this test binary's runs about one window.
fn journaled(target_id: &str) -> Vec<Value> {
    let filter = angrav::journal::Filter {
        sessions: vec![angrav::journal::Who::Target(target_id.to_string())],
        ..Default::default()
    };
    let dir = angrav::state::StateDir::at(common::state_dir());
    angrav::journal::read(&dir, &filter)
        .expect("read the journal")
        .entries
        .into_iter()
        .map(|e| e.value)
        .collect()
}

#[test]
fn a_fanout_prompt_whose_turn_does_not_start_in_time_is_stalled_and_journaled() {
    let w = open(&[
        Window::new(Layout::Current, "start-late").scenario("start-delay=4000"),
        Window::new(Layout::LegacyFrame, "start-now").scenario("instant"),
    ]);
    let ids = session_args(&w);
    let args = with_sessions(
        &ids,
        &["sessions", "fanout", "go", "--start-within", "500ms"],
    );
    let report = angrav_json(&args, 1);
    let late = outcome(&report, w.id(0));
    assert_eq!(late["status"], "stalled", "{late}");
    let reason = late["reason"].as_str().unwrap();
    assert!(
        reason.contains("no turn started within 500 ms") && reason.contains("idle"),
        "{reason}"
    );
    assert_eq!(outcome(&report, w.id(1))["status"], "done");
    // Each chat's prompt and how its turn ended are in the journal.
    for (i, ended) in [(0, "stalled"), (1, "idle")] {
        let kinds: Vec<(Value, Value)> = journaled(w.id(i))
            .into_iter()
            .map(|e| (e["kind"].clone(), e["outcome"].clone()))
            .collect();
        assert_eq!(
            kinds,
            [
                (Value::from("prompt_sent"), Value::Null),
                (Value::from("turn_finished"), Value::from(ended))
            ],
            "window {i}"
        );
    }
}

#[test]
fn a_turn_whose_page_never_changes_is_stalled_in_sessions_wait_and_watch() {
    let w = open(&[
        Window::new(Layout::Current, "frozen-wait").start("thinking"),
        Window::new(Layout::LegacyFrame, "idle-wait"),
    ]);
    let ids = session_args(&w);
    let report = angrav_json(
        &with_sessions(&ids, &["sessions", "wait", "--stall-after", "1s"]),
        1,
    );
    let frozen = outcome(&report, w.id(0));
    assert_eq!(frozen["status"], "stalled", "{frozen}");
    assert_eq!(frozen["state"], "thinking");
    let reason = frozen["reason"].as_str().unwrap();
    assert!(
        reason.contains("no change at all in the page for 1000 ms"),
        "{reason}"
    );
    // An idle chat is done, not stalled, however still its page.
    assert_eq!(outcome(&report, w.id(1))["status"], "done");
    // `watch` says it once, as an event, and journals it.
    let (_child, rx) = common::spawn_angrav(&with_sessions(
        &ids,
        &[
            "--json",
            "sessions",
            "watch",
            "--stall-after",
            "1s",
            "--count",
            "1",
        ],
    ));
    let lines: Vec<Value> = rx
        .iter()
        .map(|l| serde_json::from_str(&l).unwrap())
        .collect();
    let events: Vec<&Value> = lines.iter().filter(|l| l["type"] != "snapshot").collect();
    assert_eq!(events.len(), 1, "{lines:?}");
    assert_eq!(events[0]["type"], "stalled");
    assert_eq!(events[0]["session"]["target_id"], w.id(0));
    assert_eq!(events[0]["current"], "thinking");
    let stalled: Vec<Value> = journaled(w.id(0))
        .into_iter()
        .filter(|e| e["kind"] == "stalled")
        .collect();
    assert_eq!(stalled.len(), 1);
    assert_eq!(stalled[0]["seq"], events[0]["seq"]);
}

/// Every angrav shares one world per window: a run with another selector profile
/// (here, one that sees no busy marker) installs its own library there, and a watch
/// started before goes on reading with its own: `thinking` for the whole turn, `idle`
/// only once the turn is over.
#[test]
fn a_watch_keeps_its_profile_while_another_profile_lists_and_prompts() {
    let w = open(&[
        Window::new(Layout::Current, "two-profiles").scenario("slow"),
        Window::new(Layout::LegacyFrame, "two-profiles").scenario("slow"),
    ]);
    let other = std::env::temp_dir().join(format!("angrav-nobusy-{}.json", std::process::id()));
    std::fs::write(
        &other,
        r#"{"busy": [".not-a-busy-marker"], "busy_text": []}"#,
    )
    .unwrap();
    let other = other.to_str().unwrap();
    let (child, rx) = common::spawn_angrav(&["--json", "sessions", "watch"]);
    let ours = |line: &Value, i: usize| {
        line["session"]["id"]
            .as_str()
            .is_some_and(|s| w.id(i).starts_with(s) && !s.is_empty())
    };
    let next = |pred: &dyn Fn(&Value) -> bool| -> Value {
        loop {
            let line = rx
                .recv_timeout(Duration::from_secs(60))
                .expect("a watch line in time");
            let v: Value = serde_json::from_str(&line).expect("NDJSON");
            if pred(&v) {
                return v;
            }
        }
    };
    // Both snapshots, in either order: the watch is reading both windows.
    let a = next(&|v| v["type"] == "snapshot" && (ours(v, 0) || ours(v, 1)));
    let rest = if ours(&a, 0) { 1 } else { 0 };
    next(&|v| v["type"] == "snapshot" && ours(v, rest));
    let o = angrav(&["--selectors", other, "sessions", "list"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    for i in 0..2 {
        let o = angrav(&[
            "--session",
            w.id(i),
            "--selectors",
            other,
            "prompt",
            "slowly",
        ]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let e = next(&|v| v["type"] == "state_change" && ours(v, i));
        assert_eq!(
            (&e["previous"], &e["current"]),
            (&"idle".into(), &"thinking".into()),
            "{e}"
        );
        let e = next(&|v| v["type"] == "state_change" && ours(v, i));
        assert_eq!(
            (&e["previous"], &e["current"]),
            (&"thinking".into(), &"idle".into()),
            "{e}"
        );
        // Idle as the watch said: the turn is over (its busy marker gone).
        let s = angrav_json(&["--session", w.id(i), "status"], 0);
        assert_eq!(
            (&s["state"], &s["busy"]),
            (&"idle".into(), &false.into()),
            "{s}"
        );
    }
    std::fs::remove_file(other).unwrap();
    drop(child);
}
