//! Answering approvals and stopping agents in a real Chromium: `approve`, `deny`,
//! `cancel`, `sessions approve|deny`, and policies on waits and the watch. The
//! simulated agent records every control pressed (`#sim-pressed`), so each test
//! asserts exactly which one was.

mod common;

use angrav::panel::Layout;
use angrav::sim::Window;
use common::{TempFile, Windows, angrav, angrav_json, open, pressed, stderr, stdout};
use serde_json::{Value, json};

fn state(w: &Windows, i: usize) -> String {
    let s = angrav_json(&["--session", w.id(i), "status"], 0);
    s["state"].as_str().expect("a state").to_string()
}

#[test]
fn each_kind_is_approved_and_denied_by_name() {
    // (layout, start, command, CHOICE, what approve presses, what deny presses)
    let cases = [
        (Layout::V2, "approval", "run", &["Run"][..], &["Reject"][..]),
        (Layout::Current, "approval", "RUN", &["Run"], &["Reject"]),
        (
            Layout::V2,
            "file_edits",
            "accept-all",
            &["Accept all"],
            &["Reject all"],
        ),
        (
            Layout::V2,
            "permission",
            "conversation",
            &["Allow This Conversation"],
            &["Deny"],
        ),
        (Layout::V2, "plan", "proceed", &["Proceed"], &[]),
    ];
    let windows: Vec<Window> = cases
        .iter()
        .flat_map(|(layout, start, ..)| [0, 1].map(|_| Window::new(*layout, "kinds").start(start)))
        .collect();
    let w = open(&windows);
    for (n, (layout, start, choice, approved, denied)) in cases.iter().enumerate() {
        let (yes, no) = (2 * n, 2 * n + 1);
        let r = angrav_json(&["--session", w.id(yes), "approve", choice], 0);
        assert_eq!(
            r["pressed"],
            *approved.last().unwrap(),
            "{layout:?} {start}: {r}"
        );
        assert_eq!(pressed(&w, yes), *approved, "{layout:?} {start}");
        assert_ne!(state(&w, yes), "awaiting_approval", "{start}");
        let o = angrav(&["--session", w.id(no), "deny"]);
        if denied.is_empty() {
            // Planning mode offers nothing that denies: nothing is pressed.
            assert_eq!(o.status.code(), Some(1), "{start}: {}", stderr(&o));
            assert!(
                stderr(&o).contains("no denying choice among: Open, Proceed"),
                "{}",
                stderr(&o)
            );
        } else {
            assert_eq!(o.status.code(), Some(0), "{start}: {}", stderr(&o));
            let said = format!("pressed '{}'", denied.last().unwrap());
            assert!(stdout(&o).contains(&said), "{start}: {}", stdout(&o));
        }
        assert_eq!(pressed(&w, no), *denied, "{layout:?} {start}");
    }
}

/// A collapsed step hides what it asks: `approve` or `deny` on it only expands it and
/// refuses, naming the card that opened, which a press by that id then answers.
#[test]
fn a_collapsed_step_is_opened_and_shown_never_pressed() {
    let w = open(&[
        Window::new(Layout::V2, "collapsed").start("collapsed"),
        Window::new(Layout::V2, "collapsed")
            .start("collapsed")
            .scenario("command=rm -rf build"),
    ]);
    // (window, command: approve or deny, the step addressed by id or not, what it asks)
    for (i, command, by_id, asks) in [
        (0, "approve", false, "cargo test"),
        (1, "deny", true, "rm -rf build"),
    ] {
        let step = angrav_json(&["--session", w.id(i), "status"], 0)["approvals"][0].clone();
        assert_eq!(step["kind"], "collapsed", "{step}");
        let mut args = vec!["--json", "--session", w.id(i), command];
        if by_id {
            args.extend(["--approval", step["id"].as_str().unwrap()]);
        }
        let o = angrav(&args);
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        let err: Value = serde_json::from_str(&stderr(&o)).unwrap();
        assert_eq!(err["error"]["code"], "approval_changed", "{err}");
        // Only expanded: nothing in what opened was pressed.
        assert_eq!(pressed(&w, i), ["Expand"]);
        let s = angrav_json(&["--session", w.id(i), "status"], 0);
        let card = &s["approvals"][0];
        assert_eq!(card["command"], asks, "{s}");
        let id = card["id"].as_str().unwrap();
        let message = err["error"]["message"].as_str().unwrap();
        for named in [
            id,
            "command",
            asks,
            "(Run, Reject)",
            &format!("--approval {id}"),
        ] {
            assert!(message.contains(named), "{named} in {message}");
        }
        // By its own id, the opened card is answered as usual.
        let r = angrav_json(&["--session", w.id(i), command, "--approval", id], 0);
        let label = if command == "approve" {
            "Run"
        } else {
            "Reject"
        };
        assert_eq!(r["pressed"], label, "{r}");
        assert_eq!(pressed(&w, i), ["Expand", label]);
    }
}

#[test]
fn the_default_choice_is_the_narrowest() {
    let w = open(&[
        Window::new(Layout::V2, "narrow").start("permission"),
        Window::new(Layout::V2, "narrow").start("permission"),
        Window::new(Layout::V2, "narrow").start("file_edits"),
        Window::new(Layout::V2, "narrow").start("plan"),
        Window::new(Layout::Current, "narrow").start("approval"),
    ]);
    // `Always Allow` comes first on the card; the default never takes it.
    let r = angrav_json(&["--session", w.id(0), "approve"], 0);
    assert_eq!(r["pressed"], "Allow Once", "{r}");
    assert_eq!(r["approval"]["kind"], "permission", "{r}");
    assert_eq!(r["approval"]["choices"][0]["label"], "Always Allow", "{r}");
    assert_eq!(pressed(&w, 0), ["Allow Once"]);
    // Named, it is pressed.
    let r = angrav_json(&["--session", w.id(1), "approve", "always"], 0);
    assert_eq!(r["pressed"], "Always Allow", "{r}");
    assert_eq!(pressed(&w, 1), ["Always Allow"]);
    for (i, label) in [(2, "Accept all"), (3, "Proceed")] {
        angrav_json(&["--session", w.id(i), "approve"], 0);
        assert_eq!(pressed(&w, i), [label]);
    }
    // The plain line says what was approved: the approval's kind, id and command.
    let o = angrav(&["--session", w.id(4), "approve"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let said = stdout(&o);
    assert!(said.starts_with(&w.id(4)[..6]), "{said}");
    assert!(said.contains(": pressed 'Run' on command "), "{said}");
    assert!(said.contains(": cargo test; now "), "{said}");
    assert_eq!(pressed(&w, 4), ["Run"]);
}

#[test]
fn nothing_is_pressed_unless_exactly_one_approval_shows() {
    let w = open(&[
        Window::new(Layout::V2, "none").history(1),
        Window::new(Layout::V2, "none").start("thinking"),
        Window::new(Layout::V2, "two").start("approval"),
        Window::new(Layout::V2, "unknown").start("permission"),
    ]);
    for (i, state_name) in [(0, "idle"), (1, "thinking")] {
        for cmd in ["approve", "deny"] {
            let o = angrav(&["--session", w.id(i), cmd]);
            assert_eq!(o.status.code(), Some(1), "{cmd}: {}", stderr(&o));
            assert!(
                stderr(&o).contains(&format!("nothing pressed: the agent is {state_name}")),
                "{}",
                stderr(&o)
            );
        }
    }
    // A second command card in the same turn: which one to answer is not clear.
    w.panel(2)
        .call_function(
            "function () { const c = document.querySelector('.approval-card'); c.after(c.cloneNode(true)); }",
            &[],
        )
        .expect("add a second card");
    let o = angrav(&["--session", w.id(2), "approve", "run"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("2 approvals show; nothing pressed"),
        "{}",
        stderr(&o)
    );
    // A choice the approval does not offer, or names ambiguously.
    for choice in ["run", "allow"] {
        let o = angrav(&["--session", w.id(3), "approve", choice]);
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        assert!(
            stderr(&o).contains(&format!("no one choice \"{choice}\"")),
            "{}",
            stderr(&o)
        );
    }
    for i in 0..4 {
        assert!(
            pressed(&w, i).is_empty(),
            "window {i}: {:?}",
            pressed(&w, i)
        );
    }
    assert_eq!(state(&w, 2), "awaiting_approval");
}

#[test]
fn cancel_stops_a_turn() {
    let w = open(&[
        Window::new(Layout::V2, "cancel").start("thinking"),
        Window::new(Layout::Current, "cancel").scenario("slow"),
    ]);
    let r = angrav_json(&["--session", w.id(0), "cancel"], 0);
    assert_eq!(r["state"], "idle", "{r}");
    assert_eq!(pressed(&w, 0), ["cancel"]);
    // Nothing to stop now.
    let o = angrav(&["--session", w.id(0), "cancel"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("the agent is idle, not working"),
        "{}",
        stderr(&o)
    );
    assert_eq!(pressed(&w, 0), ["cancel"]);
    // A turn streaming its answer ends before the answer is complete.
    let o = angrav(&["--session", w.id(1), "prompt", "write a long answer"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    angrav_json(&["--session", w.id(1), "cancel"], 0);
    let o = angrav(&["--session", w.id(1), "wait"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let answer = stdout(&angrav(&["--session", w.id(1), "output", "last"]));
    assert!(!answer.contains("Done."), "{answer}");
}

#[test]
fn approve_wait_prints_the_turns_answer() {
    let w = open(&[Window::new(Layout::V2, "approve-wait").scenario("approval-kind=permission")]);
    let o = angrav(&["--session", w.id(0), "prompt", "read my ssh config"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = angrav(&["--session", w.id(0), "wait"]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "stops awaiting approval: {}",
        stdout(&o)
    );
    let o = angrav(&["--session", w.id(0), "approve", "once", "--wait"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("pressed 'Allow Once'"),
        "{}",
        stderr(&o)
    );
    assert!(
        stdout(&o).contains("You asked: `read my ssh config`"),
        "{}",
        stdout(&o)
    );
    assert_eq!(pressed(&w, 0), ["Allow Once"]);
}

#[test]
fn sessions_approve_answers_each_chat_with_a_row() {
    let w = open(&[
        Window::new(Layout::V2, "many").start("approval"),
        Window::new(Layout::Current, "many").start("permission"),
        Window::new(Layout::V2, "many").history(1),
    ]);
    let mut args = vec!["sessions", "approve"];
    for i in 0..3 {
        args.extend(["--session", w.id(i)]);
    }
    let r = angrav_json(&args, 1);
    let row = |i: usize| {
        common::by_target(&r["sessions"], w.id(i))
            .expect("a row")
            .clone()
    };
    assert_eq!(row(0)["status"], "done", "{r}");
    assert_eq!(row(0)["reason"], "pressed 'Run'", "{r}");
    assert_eq!(row(0)["approval"]["command"], "cargo test", "{r}");
    assert_eq!(row(1)["status"], "done", "{r}");
    assert_eq!(row(1)["reason"], "pressed 'Allow Once'", "{r}");
    assert_eq!(row(2)["status"], "failed", "{r}");
    assert_eq!(pressed(&w, 0), ["Run"]);
    assert_eq!(pressed(&w, 1), ["Allow Once"]);
    assert!(pressed(&w, 2).is_empty());
    let w2 = open(&[Window::new(Layout::V2, "many-deny").start("file_edits")]);
    let r = angrav_json(&["sessions", "deny", "--session", w2.id(0)], 0);
    assert_eq!(r["sessions"][0]["reason"], "pressed 'Reject all'", "{r}");
    assert_eq!(pressed(&w2, 0), ["Reject all"]);
    // A plain row names the approval it answered, as approve does.
    let w3 = open(&[Window::new(Layout::Current, "many-plain").start("approval")]);
    let o = angrav(&["sessions", "approve", "--session", w3.id(0)]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let row = stdout(&o);
    assert!(row.starts_with(&w3.id(0)[..6]), "{row}");
    assert!(row.contains("pressed 'Run' on command "), "{row}");
    assert!(row.contains(": cargo test"), "{row}");

    // Nothing to answer: an empty report (the same shape), said so, exit 1.
    let group = format!("idle-{}", std::process::id());
    let g = angrav(&["group", "set", &group, w2.id(0)]);
    assert_eq!(g.status.code(), Some(0), "{}", stderr(&g));
    let o = angrav(&["--json", "sessions", "approve", "--group", &group]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(stdout(&o), "{\"timed_out\":false,\"sessions\":[]}\n");
    assert_eq!(stderr(&o), "");
    let o = angrav(&["sessions", "approve", "--group", &group]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(stdout(&o), "");
    assert_eq!(
        stderr(&o),
        "angrav: no chat awaits approval; nothing pressed\n"
    );
}

/// A bulk press answers the card its listing read: a chat whose card changed by the
/// time it is pressed has its row `failed` (the approval changed), nothing pressed
/// there; the other chat is answered.
#[test]
fn sessions_approve_presses_only_the_card_its_listing_read() {
    let w = open(&[
        Window::new(Layout::Current, "listed").start("approval"),
        Window::new(Layout::V2, "listed").start("approval"),
    ]);
    // The first card's command is replaced once it has been read (as an agent's next
    // step would replace it): the listing reads `cargo test`, the press finds another.
    w.panel(0)
        .call_function(
            "function () {
               const pre = document.querySelector('.approval-card pre');
               const text = Object.getOwnPropertyDescriptor(Node.prototype, 'textContent');
               Object.defineProperty(pre, 'textContent', { configurable: true, get() {
                 delete pre.textContent;
                 setTimeout(() => { pre.textContent = 'rm -rf ~'; });
                 return text.get.call(pre);
               } });
             }",
            &[],
        )
        .unwrap();
    let group = format!("listed-{}", std::process::id());
    let g = angrav(&["group", "set", &group, w.id(0), w.id(1)]);
    assert_eq!(g.status.code(), Some(0), "{}", stderr(&g));
    let r = angrav_json(&["sessions", "approve", "--group", &group], 1);
    let row = |i: usize| {
        common::by_target(&r["sessions"], w.id(i))
            .expect("a row")
            .clone()
    };
    assert_eq!(row(0)["status"], "failed", "{r}");
    let why = row(0)["reason"].as_str().unwrap_or_default().to_string();
    assert!(
        why.contains("no longer shows") && why.contains("rm -rf ~"),
        "{r}"
    );
    assert!(pressed(&w, 0).is_empty());
    assert_eq!(row(1)["status"], "done", "{r}");
    assert_eq!(row(1)["approval"]["command"], "cargo test", "{r}");
    assert_eq!(pressed(&w, 1), ["Run"]);
    // What shows now is answered by a listing that read it.
    let r = angrav_json(&["sessions", "approve", "--group", &group], 0);
    assert_eq!(r["sessions"][0]["approval"]["command"], "rm -rf ~", "{r}");
    assert_eq!(pressed(&w, 0), ["Run"]);
}

const POLICY: &str = r#"[
  {"kind": "command", "command": "^cargo (test|check)( |$)", "action": "approve"},
  {"kind": "command", "command": "rm +-[a-z]*r", "action": "deny"},
  {"kind": "any", "action": "ask"}
]"#;

/// The `approval_decided` lines among `text`'s JSON lines.
fn decisions(text: &str) -> Vec<Value> {
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["type"] == "approval_decided")
        .collect()
}

/// `sessions watch --json --until-idle --policy` over every window of `w`.
fn watch_with_policy(policy: &TempFile, w: &Windows) -> std::process::Output {
    let mut args = vec![
        "--json",
        "sessions",
        "watch",
        "--until-idle",
        "--timeout",
        "60s",
    ];
    args.extend(["--policy", policy.path()]);
    let sessions = common::session_args(w);
    args.extend(sessions.iter().map(String::as_str));
    angrav(&args)
}

#[test]
fn a_policy_on_the_watch_approves_cargo_test_and_denies_rm_rf() {
    let w = open(&[
        Window::new(Layout::V2, "policy-watch").start("approval"),
        Window::new(Layout::V2, "policy-watch")
            .start("approval")
            .scenario("command=rm -rf build"),
        // Decided once expanded: the step asks to run `cargo test`.
        Window::new(Layout::V2, "policy-watch").start("collapsed"),
    ]);
    let policy = TempFile::new("policy-watch", POLICY);
    let o = watch_with_policy(&policy, &w);
    assert_eq!(o.status.code(), Some(0), "{}\n{}", stdout(&o), stderr(&o));
    // Per window: the rule, the action, the command and the choice pressed.
    let decided: Vec<Vec<Value>> = (0..3)
        .map(|i| {
            let of_window: Vec<Value> = decisions(&stdout(&o))
                .into_iter()
                .filter(|d| d["session"]["target_id"] == w.id(i))
                .flat_map(|d| {
                    [
                        d["rule"].clone(),
                        d["action"].clone(),
                        d["command"].clone(),
                        d["choice"].clone(),
                    ]
                })
                .collect();
            of_window
        })
        .collect();
    let approved = vec![
        json!(0),
        json!("approve"),
        json!("cargo test"),
        json!("Run"),
    ];
    let denied = vec![
        json!(1),
        json!("deny"),
        json!("rm -rf build"),
        json!("Reject"),
    ];
    assert_eq!(
        decided,
        [approved.clone(), denied, approved],
        "{}",
        stdout(&o)
    );
    assert_eq!(pressed(&w, 0), ["Run"]);
    assert_eq!(pressed(&w, 1), ["Reject"]);
    assert_eq!(pressed(&w, 2), ["Expand", "Run"]);
    // Every line carries its seq, the journal's: a decision's is its journal entry's,
    // and no two lines share one.
    let printed: Vec<Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut seqs: Vec<u64> = printed
        .iter()
        .map(|v| v["seq"].as_u64().unwrap_or_else(|| panic!("no seq: {v}")))
        .collect();
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(seqs.len(), printed.len(), "{}", stdout(&o));
    for i in 0..3 {
        let of = |lines: Vec<Value>| -> Vec<u64> {
            lines
                .iter()
                .filter(|d| d["session"]["target_id"] == w.id(i))
                .map(|d| d["seq"].as_u64().unwrap())
                .collect()
        };
        let log = angrav(&[
            "--json",
            "log",
            "--kind",
            "approval_decided",
            "--session",
            w.id(i),
        ]);
        assert_eq!(
            of(decisions(&stdout(&log))),
            of(decisions(&stdout(&o))),
            "{}",
            stdout(&log)
        );
    }
}

#[test]
fn a_policy_on_a_run_answers_the_approvals_its_turns_stop_at() {
    let w = open(&[
        Window::new(Layout::Current, "policy-run").scenario("instant,approval"),
        Window::new(Layout::V2, "policy-run").scenario("instant,approval,command=rm -rf /tmp/x"),
        Window::new(Layout::V2, "policy-run").scenario("instant,approval-kind=permission"),
    ]);
    let policy = TempFile::new("policy-run", POLICY);
    let tasks: Vec<String> = (0..3).map(|i| format!("{}=task {i}", w.id(i))).collect();
    let o = angrav(&[
        "--json",
        "sessions",
        "run",
        "--policy",
        policy.path(),
        "--timeout",
        "60s",
        "--task",
        &tasks[0],
        "--task",
        &tasks[1],
        "--task",
        &tasks[2],
    ]);
    // The permission is left to a person: that chat stops awaiting approval.
    assert_eq!(o.status.code(), Some(1), "{}\n{}", stdout(&o), stderr(&o));
    let report: Value = serde_json::from_str(&stdout(&o)).expect("a JSON report");
    let row = |i: usize| {
        common::by_target(&report["sessions"], w.id(i))
            .expect("a row")
            .clone()
    };
    assert_eq!(
        (row(0)["status"].clone(), row(0)["state"].clone()),
        (json!("done"), json!("idle")),
        "{report}"
    );
    assert_eq!(
        (row(1)["status"].clone(), row(1)["state"].clone()),
        (json!("done"), json!("idle")),
        "{report}"
    );
    assert_eq!(row(2)["state"], "awaiting_approval", "{report}");
    assert_eq!(row(2)["approval"]["kind"], "permission", "{report}");
    assert!(
        row(0)["answer"]["content"]
            .as_str()
            .is_some_and(|a| a.contains("task 0")),
        "{report}"
    );
    let mut d = decisions(&stderr(&o));
    d.sort_by_key(|v| v["rule"].as_u64());
    let summary: Vec<(Value, Value)> = d
        .iter()
        .map(|v| (v["action"].clone(), v["choice"].clone()))
        .collect();
    assert_eq!(
        summary,
        [
            (json!("approve"), json!("Run")),
            (json!("deny"), json!("Reject")),
            (json!("ask"), Value::Null)
        ],
        "{}",
        stderr(&o)
    );
    assert_eq!(pressed(&w, 0), ["Run"]);
    assert_eq!(pressed(&w, 1), ["Reject"]);
    assert!(pressed(&w, 2).is_empty());
}

#[test]
fn a_malformed_policy_is_a_usage_error_naming_the_line() {
    let policy = TempFile::new(
        "policy-bad",
        "[\n  {\"kind\": \"command\", \"action\": \"yes\"}\n]",
    );
    let o = angrav(&[
        "sessions",
        "wait",
        "--policy",
        policy.path(),
        "--session",
        "nothing-here",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("line 2"), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("unknown action 'yes'"),
        "{}",
        stderr(&o)
    );
}

/// Two approvals at once (a command card and a permission card; a command card and
/// a file-edits bar): without `--approval` nothing is pressed, naming each; with it,
/// exactly that card's control.
#[test]
fn two_cards_at_once_are_answered_only_by_id() {
    let w = open(&[
        Window::new(Layout::V2, "two-cards").start("two-cards"),
        Window::new(Layout::Current, "command-bar").start("command-bar"),
    ]);
    for (i, other) in [(0, "permission"), (1, "file_edits")] {
        let s = angrav_json(&["--session", w.id(i), "status"], 0);
        let cards = s["approvals"].as_array().unwrap().clone();
        assert_eq!(cards.len(), 2, "{s}");
        assert_eq!(cards[0]["kind"], "command", "{s}");
        assert_eq!(cards[1]["kind"], other, "{s}");
        // Choices never cross cards.
        assert_eq!(
            cards[0]["choices"],
            json!([{ "label": "Run" }, { "label": "Reject" }]),
            "{s}"
        );
        for cmd in ["approve", "deny"] {
            let o = angrav(&["--session", w.id(i), cmd]);
            assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
            let err = stderr(&o);
            assert!(err.contains("2 approvals show; nothing pressed"), "{err}");
            for c in &cards {
                assert!(err.contains(c["id"].as_str().unwrap()), "{err}");
            }
        }
        assert!(pressed(&w, i).is_empty(), "{:?}", pressed(&w, i));
        let command = cards[0]["id"].as_str().unwrap();
        let r = angrav_json(&["--session", w.id(i), "deny", "--approval", command], 0);
        assert_eq!(r["pressed"], "Reject", "{r}");
        assert_eq!(r["approval"]["id"], command, "{r}");
        assert_eq!(pressed(&w, i), ["Reject"]);
        // The other card still shows, alone now: answered without naming it.
        let s = angrav_json(&["--session", w.id(i), "status"], 0);
        assert_eq!(s["approvals"].as_array().unwrap().len(), 1, "{s}");
        assert_eq!(s["approvals"][0]["id"], cards[1]["id"], "{s}");
        let r = angrav_json(&["--session", w.id(i), "deny"], 0);
        let denied = if i == 0 { "Deny" } else { "Reject all" };
        assert_eq!(r["pressed"], denied, "{r}");
        assert_eq!(pressed(&w, i), ["Reject", denied]);
    }
}

/// `approve --approval ID` on the first window: refused, exit 1, `approval_changed`;
/// the error's message.
fn refused_as_changed(w: &Windows, id: &str) -> String {
    let o = angrav(&["--json", "--session", w.id(0), "approve", "--approval", id]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err: Value = serde_json::from_str(&stderr(&o)).unwrap();
    assert_eq!(err["error"]["code"], "approval_changed", "{err}");
    err["error"]["message"].as_str().unwrap().to_string()
}

/// A press names the approval it answers: once the card's command changed, the old
/// id presses nothing and says what shows now.
#[test]
fn a_press_for_an_approval_that_changed_presses_nothing() {
    let w = open(&[Window::new(Layout::Current, "flip").start("approval")]);
    let s = angrav_json(&["--session", w.id(0), "status"], 0);
    let old = s["approvals"][0]["id"].as_str().unwrap().to_string();
    w.panel(0)
        .call_function(
            "function () { document.querySelector('.approval-card pre').textContent = 'rm -rf ~'; }",
            &[],
        )
        .unwrap();
    let s = angrav_json(&["--session", w.id(0), "status"], 0);
    let new = s["approvals"][0]["id"].as_str().unwrap();
    assert_ne!(new, old, "{s}");
    assert_eq!(s["approvals"][0]["command"], "rm -rf ~", "{s}");
    let message = refused_as_changed(&w, &old);
    assert!(
        message.contains("rm -rf ~") && message.contains(new),
        "{message}"
    );
    assert!(pressed(&w, 0).is_empty());
}

/// An id names the card that was shown: the same command asked again in a later
/// turn, or in another chat, is another card with another id, and an id kept from
/// the answered one presses nothing.
#[test]
fn an_id_kept_from_an_earlier_card_alike_presses_nothing() {
    let w = open(&[
        Window::new(Layout::Current, "again-1").scenario("approval"),
        Window::new(Layout::V2, "again-2").scenario("approval"),
    ]);
    let card = |i: usize| {
        let s = angrav_json(&["--session", w.id(i), "status"], 0);
        assert_eq!(s["state"], "awaiting_approval", "{s}");
        s["approvals"][0].clone()
    };
    for i in 0..2 {
        angrav_json(&["--session", w.id(i), "prompt", "first task"], 0);
        // A wait that ends at an approval exits 1.
        angrav_json(&["--session", w.id(i), "wait", "--timeout", "30s"], 1);
    }
    let (one, two) = (card(0), card(1));
    assert_eq!(one["command"], two["command"], "{one} {two}");
    assert_ne!(one["id"], two["id"], "two chats' cards alike share an id");
    let old = one["id"].as_str().unwrap().to_string();
    angrav_json(&["--session", w.id(0), "approve", "--approval", &old], 0);
    angrav_json(&["--session", w.id(0), "wait", "--timeout", "30s"], 0);
    angrav_json(&["--session", w.id(0), "prompt", "second task"], 0);
    angrav_json(&["--session", w.id(0), "wait", "--timeout", "30s"], 1);
    let again = card(0);
    assert_eq!(again["command"], one["command"], "{again}");
    assert_ne!(
        again["id"], one["id"],
        "a later turn's card took the old id"
    );
    refused_as_changed(&w, &old);
    assert_eq!(pressed(&w, 0), ["Run"], "only the first card was answered");
}

/// A list of choices plus one Submit button: the choice is selected, then Submit
/// pressed, by name; a question form is `awaiting_input`, never submitted.
#[test]
fn a_choice_list_is_submitted_and_a_question_never_is() {
    let w = open(&[
        Window::new(Layout::V2, "form-yes").start("submit-form"),
        Window::new(Layout::Current, "form-no").start("submit-form"),
        Window::new(Layout::V2, "question").start("question"),
    ]);
    let s = angrav_json(&["--session", w.id(0), "status"], 0);
    assert_eq!(s["approvals"][0]["kind"], "command", "{s}");
    assert_eq!(s["approvals"][0]["command"], "cargo test", "{s}");
    let r = angrav_json(&["--session", w.id(0), "approve", "run"], 0);
    assert_eq!(r["pressed"], "Run", "{r}");
    assert_eq!(pressed(&w, 0), ["Submit:Run"]);
    let r = angrav_json(&["--session", w.id(1), "deny"], 0);
    assert_eq!(r["pressed"], "Reject", "{r}");
    assert_eq!(pressed(&w, 1), ["Submit:Reject"]);

    let s = angrav_json(&["--session", w.id(2), "status"], 0);
    assert_eq!(s["state"], "awaiting_input", "{s}");
    assert_eq!(
        s["question"],
        json!({ "text": "Which database should the service use?", "options": ["Postgres", "SQLite"] }),
        "{s}"
    );
    assert_eq!(s["approvals"], json!([]), "{s}");
    for cmd in [&["approve"][..], &["approve", "postgres"], &["deny"]] {
        let mut args = vec!["--session", w.id(2)];
        args.extend_from_slice(cmd);
        let o = angrav(&args);
        assert_eq!(o.status.code(), Some(1), "{cmd:?}: {}", stderr(&o));
    }
    assert!(pressed(&w, 2).is_empty(), "{:?}", pressed(&w, 2));
}

/// A question form that asks something else in the same state is a `question_changed`
/// line with the question it asks now, for the chat asked, in either layout.
#[test]
fn the_watch_says_when_a_question_changes() {
    let w = open(&[
        Window::new(Layout::Current, "quiz-now").start("question"),
        Window::new(Layout::V2, "quiz-v2").start("question"),
    ]);
    let (_watch, rx) = common::spawn_angrav(&[
        "--json",
        "--session",
        w.id(0),
        "--session",
        w.id(1),
        "sessions",
        "watch",
    ]);
    // A plain watch beside it: its line says what is asked now, too.
    let (_plain, plain_rx) = common::spawn_angrav(&["--session", w.id(0), "sessions", "watch"]);
    let next = || -> Value {
        let line = rx
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("a watch line in time");
        serde_json::from_str(&line).unwrap()
    };
    let plain_line = |kind: &str| -> String {
        loop {
            let line = plain_rx
                .recv_timeout(std::time::Duration::from_secs(60))
                .expect("a plain watch line in time");
            if line.contains(kind) {
                return line;
            }
        }
    };
    let first = plain_line("Which database");
    assert!(first.contains("awaiting_input (question: "), "{first}");
    for _ in 0..2 {
        let s = next();
        assert_eq!(s["type"], "snapshot", "{s}");
        assert_eq!(
            s["question"]["text"], "Which database should the service use?",
            "{s}"
        );
    }
    for (i, asked) in [(1, "Which cache?"), (0, "Which queue?")] {
        w.panel(i)
            .call_function(
                "function (t) { document.querySelector('.question-form p').textContent = t; }",
                &[json!(asked)],
            )
            .unwrap();
        let e = next();
        assert_eq!(e["type"], "question_changed", "{e}");
        assert_eq!(e["session"]["target_id"], w.id(i), "{e}");
        assert_eq!(
            (&e["previous"], &e["current"]),
            (&json!("awaiting_input"), &json!("awaiting_input")),
            "{e}"
        );
        assert_eq!(
            e["question"],
            json!({ "text": asked, "options": ["Postgres", "SQLite"] }),
            "{e}"
        );
    }
    let line = plain_line("question_changed");
    assert!(
        line.contains(
            "awaiting_input -> awaiting_input (question: Which queue? options: Postgres, SQLite)"
        ),
        "{line}"
    );
}

/// The watch says what became of each approval: a card the page answered itself (a
/// person in the IDE) is `approval_resolved` by `elsewhere`; a command that changes is
/// `approval_changed`; a card angrav answered is resolved by `angrav`, naming the
/// client and the choice.
#[test]
fn the_watch_says_who_answered_each_approval() {
    let w = open(&[Window::new(Layout::Current, "resolved").start("two-cards")]);
    let (_watch, rx) = common::spawn_angrav(&["--json", "--session", w.id(0), "sessions", "watch"]);
    let (_plain, plain_rx) = common::spawn_angrav(&["--session", w.id(0), "sessions", "watch"]);
    let next = |kind: &str| -> Value {
        loop {
            let line = rx
                .recv_timeout(std::time::Duration::from_secs(60))
                .expect("a watch line in time");
            let v: Value = serde_json::from_str(&line).unwrap();
            if v["type"] == kind {
                return v;
            }
        }
    };
    let snapshot = next("snapshot");
    let cards = snapshot["approvals"].as_array().unwrap().clone();
    assert_eq!(cards.len(), 2, "{snapshot}");
    w.panel(0)
        .call_function(
            "function () { Array.from(document.querySelectorAll('button')).find((b) => b.textContent === 'Deny').click(); }",
            &[],
        )
        .unwrap();
    let e = next("approval_resolved");
    assert_eq!(e["by"], "elsewhere", "{e}");
    assert_eq!(e["approval"]["id"], cards[1]["id"], "{e}");
    w.panel(0)
        .call_function(
            "function () { document.querySelector('.approval-card pre').textContent = 'cargo build'; }",
            &[],
        )
        .unwrap();
    let e = next("approval_changed");
    assert_eq!(e["approvals"][0]["command"], "cargo build", "{e}");
    let id = e["approvals"][0]["id"].as_str().unwrap().to_string();
    // The plain line names the card asked now, by its id.
    let line = loop {
        let line = plain_rx
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("a plain watch line in time");
        if line.contains("approval_changed") {
            break line;
        }
    };
    assert!(
        line.contains(&format!("({id} command: cargo build (")),
        "{line}"
    );
    assert_ne!(id, cards[0]["id"].as_str().unwrap());
    let r = angrav_json(&["--session", w.id(0), "approve", "--approval", &id], 0);
    assert_eq!(r["pressed"], "Run", "{r}");
    let e = next("approval_resolved");
    assert_eq!(
        (&e["by"], &e["client"], &e["pressed"], &e["approval"]["id"]),
        (
            &json!("angrav"),
            &json!("angrav approve"),
            &json!("Run"),
            &json!(id)
        ),
        "{e}"
    );
}

/// A policy decides each of two cards showing at once on its own: one decision line
/// per card, naming its id, and one press of that card's own control.
#[test]
fn a_policy_on_two_cards_decides_and_presses_each_once() {
    let w = open(&[
        Window::new(Layout::V2, "policy-two").start("two-cards"),
        Window::new(Layout::Current, "policy-two").start("command-bar"),
    ]);
    let ids: Vec<Vec<Value>> = (0..2)
        .map(|i| {
            let s = angrav_json(&["--session", w.id(i), "status"], 0);
            let cards = s["approvals"].as_array().unwrap();
            assert_eq!(cards.len(), 2, "{s}");
            cards.iter().map(|c| c["id"].clone()).collect()
        })
        .collect();
    let policy = TempFile::new(
        "policy-two",
        r#"[
  {"kind": "command", "command": "^cargo test( |$)", "action": "approve"},
  {"kind": "permission", "action": "deny"},
  {"kind": "file_edits", "action": "approve"}
]"#,
    );
    let o = watch_with_policy(&policy, &w);
    assert_eq!(o.status.code(), Some(0), "{}\n{}", stdout(&o), stderr(&o));
    // Per window, sorted by rule: the approval's id, its kind and the choice pressed
    // (the two presses run side by side, in either order).
    let decided = |i: usize| {
        let mut d: Vec<Value> = decisions(&stdout(&o))
            .into_iter()
            .filter(|d| d["session"]["target_id"] == w.id(i))
            .collect();
        d.sort_by_key(|d| d["rule"].as_u64());
        d.iter()
            .map(|d| {
                json!([
                    d["rule"],
                    d["approval"]["id"],
                    d["approval"]["kind"],
                    d["choice"]
                ])
            })
            .collect::<Vec<Value>>()
    };
    assert_eq!(
        decided(0),
        [
            json!([0, ids[0][0], "command", "Run"]),
            json!([1, ids[0][1], "permission", "Deny"])
        ],
        "{}",
        stdout(&o)
    );
    assert_eq!(
        decided(1),
        [
            json!([0, ids[1][0], "command", "Run"]),
            json!([2, ids[1][1], "file_edits", "Accept all"])
        ],
        "{}",
        stdout(&o)
    );
    let sorted = |i: usize| {
        let mut p = pressed(&w, i);
        p.sort();
        p
    };
    assert_eq!(sorted(0), ["Deny", "Run"]);
    assert_eq!(sorted(1), ["Accept all", "Run"]);
}

/// Every angrav shares one world per window: a run with another selector profile
/// installs its own library there, and a process attached before still presses with
/// its own (here, whose allowing choices the other profile does not have). The press
/// is noted in the page for all: a watch with the other profile says angrav made it,
/// also when that profile tells other choices on the card, so gives it another id.
#[test]
fn a_press_uses_its_own_profile_whatever_another_run_installed() {
    let w = open(&[
        Window::new(Layout::V2, "own-library").start("permission"),
        Window::new(Layout::LegacyFrame, "own-library").start("approval"),
        Window::new(Layout::Current, "own-library").start("permission"),
        Window::new(Layout::V2, "own-library").start("approval"),
    ]);
    let allow = TempFile::new(
        "other-allow",
        r#"{"approval_allow_labels": ["Accept all"]}"#,
    );
    // Without `Always Allow` and `Reject`: the permission card shows three choices
    // to this profile, the command card one.
    let labels = TempFile::new(
        "other-labels",
        r#"{"approval_labels": ["Allow This Conversation", "Allow Once", "Accept", "Deny", "Run"],
            "approval_permission_labels": ["Allow This Conversation", "Allow Once", "Deny"]}"#,
    );
    for (i, label, other) in [
        (0, "Allow Once", &allow),
        (1, "Run", &allow),
        (2, "Allow Once", &labels),
        (3, "Run", &labels),
    ] {
        let mut panel = w.panel(i);
        let (_watch, rx) = common::spawn_angrav(&[
            "--json",
            "--session",
            w.id(i),
            "--selectors",
            other.path(),
            "sessions",
            "watch",
        ]);
        let next = |kind: &str| -> Value {
            loop {
                let line = rx
                    .recv_timeout(std::time::Duration::from_secs(60))
                    .expect("a watch line in time");
                let v: Value = serde_json::from_str(&line).unwrap();
                if v["type"] == kind {
                    return v;
                }
            }
        };
        let s = next("snapshot");
        assert_eq!(s["current"], "awaiting_approval", "{s}");
        let id = match panel
            .press_approval(
                None,
                angrav::panel::Press::Allow,
                &json!({"client": "test"}),
            )
            .unwrap()
        {
            angrav::panel::Pressing::Pressed {
                label: l, approval, ..
            } => {
                assert_eq!(l, label);
                approval.id
            }
            other => panic!("{other:?}"),
        };
        assert_eq!(pressed(&w, i), [label]);
        let e = next("approval_resolved");
        assert_eq!(
            (&e["by"], &e["client"], &e["pressed"]),
            (&json!("angrav"), &json!("test"), &json!(label)),
            "{e}"
        );
        // The watch named the card by its own profile's id.
        assert_eq!(e["approval"]["id"] == json!(id), i < 2, "{e}");
    }
}
