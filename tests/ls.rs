//! The language server as a second source: conversations no window renders, approvals
//! answered by step, quota, prompts through the LS; against the simulated LS, first
//! with no browser at all, then beside simulated windows.

mod common;

use std::process::Output;

use angrav::panel::Layout;
use angrav::sim::Window;
use angrav::sim::ls::{Conversation, Gate, Mode, SimLs};
use common::{angrav_bin, check, stderr, stdout};
use serde_json::{Value, json};

const TOKEN: &str = "t0ken-for-tests";

/// Runs angrav against `ls` only: `--cdp` names a port nothing listens on, so no
/// browser of anyone else's is found.
fn ls_angrav(ls: &SimLs, args: &[&str]) -> Output {
    angrav_bin()
        .args([
            "--cdp",
            "127.0.0.1:1",
            "--ls",
            &ls.url(),
            "--ls-token",
            ls.token(),
        ])
        .args(args)
        .output()
        .expect("run angrav")
}

/// Runs angrav with `--json` against `ls`, and checks its stdout against the shape
/// the schema gives `command`.
fn ls_json(ls: &SimLs, command: &str, args: &[&str], code: i32) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let v = common::json_exited(&ls_angrav(ls, &all), args, code);
    let schema = angrav::schema::cli();
    let shape = &schema["commands"][command];
    assert!(!shape.is_null(), "the schema has no '{command}'");
    if let Err(e) = check(&schema, shape, &v, command) {
        panic!("angrav {args:?}: {e}");
    }
    v
}

fn conversation<'a>(list: &'a Value, workspace: &str) -> &'a Value {
    list.as_array()
        .unwrap()
        .iter()
        .find(|r| r["kind"] == "conversation" && r["session"]["workspace"] == workspace)
        .unwrap_or_else(|| panic!("no conversation of {workspace} in {list}"))
}

fn two_waiting() -> SimLs {
    SimLs::start(TOKEN, seeds()).expect("simulated LS")
}

/// The conversations of [`two_waiting`].
fn seeds() -> Vec<Conversation> {
    vec![
        Conversation::new("aaaa1111-0000-4000-8000-000000000001", "alpha").history(2),
        Conversation::new("bbbb2222-0000-4000-8000-000000000002", "beta")
            .waiting(Gate::Command("cargo test --all".into())),
        Conversation::new("cccc3333-0000-4000-8000-000000000003", "gamma").running(),
        Conversation::new("dddd4444-0000-4000-8000-000000000004", "delta")
            .history(0)
            .waiting(Gate::File("file:///home/sim/delta/secrets.env".into())),
        Conversation::new("eeee5555-0000-4000-8000-000000000005", "epsilon")
            .waiting(Gate::Permission("read ~/.ssh".into())),
    ]
}

#[test]
fn every_conversation_is_listed_with_its_state_without_a_browser() {
    let ls = two_waiting();
    let list = ls_json(&ls, "sessions list", &["sessions", "list", "--all"], 0);
    assert_eq!(list.as_array().unwrap().len(), 5, "{list}");
    let alpha = conversation(&list, "alpha");
    assert_eq!(alpha["state"], "idle");
    assert_eq!(alpha["steps"], 4);
    assert_eq!(alpha["session"]["id"], "aaaa11");
    assert_eq!(
        alpha["session"]["conversation_id"],
        "aaaa1111-0000-4000-8000-000000000001"
    );
    assert_eq!(alpha["session"]["target_id"], Value::Null);
    assert_eq!(alpha["window"], Value::Null);
    let beta = conversation(&list, "beta");
    assert_eq!(beta["state"], "awaiting_approval");
    assert_eq!(beta["approval"]["kind"], "command");
    assert_eq!(beta["approval"]["command"], "cargo test --all");
    assert_eq!(beta["step_index"], 3);
    assert_eq!(conversation(&list, "gamma")["state"], "thinking");
    assert_eq!(
        conversation(&list, "delta")["approval"]["kind"],
        "permission"
    );
    assert!(conversation(&list, "alpha")["last_change"].is_string());

    let o = ls_angrav(&ls, &["sessions", "list", "--all"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("CONVERSATION"), "{text}");
    let beta_line = text.lines().find(|l| l.starts_with("bbbb22")).unwrap();
    assert!(beta_line.contains("awaiting_approval"), "{text}");
    assert!(stderr(&o).contains("listing the language server's conversations only"));
}

#[test]
fn history_and_status_come_from_the_steps() {
    let ls = two_waiting();
    let history = ls_json(&ls, "history", &["history", "--conversation", "aaaa"], 0);
    let messages = history.as_array().unwrap();
    assert_eq!(messages.len(), 4, "{history}");
    assert_eq!(messages[0]["role"], "user");
    assert_eq!(messages[0]["content"], "Step 1 of the plan for alpha");
    assert_eq!(messages[3]["role"], "agent");
    assert!(
        messages[3]["content"]
            .as_str()
            .unwrap()
            .contains("Step 2 of the plan")
    );

    // By workspace name too.
    let status = ls_json(
        &ls,
        "status --conversation",
        &["status", "--conversation", "beta"],
        0,
    );
    assert_eq!(status["state"], "awaiting_approval");
    assert_eq!(status["run_status"], "waiting_for_user");
    assert_eq!(status["step_index"], 3);
    assert_eq!(
        status["approvals"][0]["choices"],
        json!([{"label": "Run"}, {"label": "Reject"}])
    );

    let o = ls_angrav(&ls, &["status", "--conversation", "zzz"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
}

/// The interactions the LS received for `cascade`.
fn interactions(ls: &SimLs, cascade: &str) -> Vec<Value> {
    ls.interactions()
        .into_iter()
        .filter(|i| i["cascadeId"] == cascade)
        .collect()
}

#[test]
fn approve_and_deny_answer_the_waiting_step_once() {
    let ls = two_waiting();
    let beta = "bbbb2222-0000-4000-8000-000000000002";
    let done = ls_json(
        &ls,
        "approve --conversation",
        &["approve", "--conversation", "bbbb"],
        0,
    );
    assert_eq!(done["pressed"], "Run");
    assert_eq!(done["step_index"], 3);
    assert_eq!(done["via"], "ls");
    let sent = interactions(&ls, beta);
    assert_eq!(sent.len(), 1, "{sent:?}");
    let i = &sent[0]["interaction"];
    assert_eq!(i["stepIndex"], 3);
    assert_eq!(i["trajectoryId"], format!("traj-{beta}"));
    assert_eq!(i["runCommand"]["confirm"], true);
    assert_eq!(i["runCommand"]["proposedCommandLine"], "cargo test --all");

    // Answered: a second approve finds nothing waiting and sends nothing.
    let o = ls_angrav(&ls, &["approve", "--conversation", "bbbb"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("nothing answered"), "{}", stderr(&o));
    assert_eq!(interactions(&ls, beta).len(), 1);

    let delta = "dddd4444-0000-4000-8000-000000000004";
    let denied = ls_json(
        &ls,
        "approve --conversation",
        &["deny", "--conversation", "delta"],
        0,
    );
    assert_eq!(denied["pressed"], "Deny");
    let sent = interactions(&ls, delta);
    assert_eq!(sent.len(), 1, "{sent:?}");
    let i = &sent[0]["interaction"];
    assert_eq!(i["stepIndex"], 1);
    assert_eq!(i["filePermission"]["allow"], false);
    assert_eq!(i["filePermission"]["scope"], "PERMISSION_SCOPE_ONCE");

    // The 2.x permission gate.
    let epsilon = "eeee5555-0000-4000-8000-000000000005";
    let o = ls_angrav(&ls, &["approve", "--conversation", "eeee"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("answered step 3 'Allow Once'"),
        "{}",
        stdout(&o)
    );
    let sent = interactions(&ls, epsilon);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["interaction"]["permission"]["allow"], true);
    assert_eq!(ls.interactions().len(), 3);
}

/// The id of the approval `status --conversation` shows for `query`.
fn approval_id(ls: &SimLs, query: &str) -> String {
    let status = ls_json(
        ls,
        "status --conversation",
        &["status", "--conversation", query],
        0,
    );
    status["approval"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no approval in {status}"))
        .to_string()
}

#[test]
fn an_approval_named_by_id_is_answered_only_while_it_waits() {
    let ls = two_waiting();
    let beta = "bbbb2222-0000-4000-8000-000000000002";
    let beta_id = approval_id(&ls, "beta");
    let delta_id = approval_id(&ls, "delta");
    assert_ne!(beta_id, delta_id);

    // Another conversation's approval: nothing sent, and what waits here is named.
    let o = ls_angrav(
        &ls,
        &[
            "--json",
            "approve",
            "--conversation",
            "beta",
            "--approval",
            &delta_id,
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let error: Value = serde_json::from_str(&stderr(&o)).unwrap();
    assert_eq!(error["error"]["code"], "approval_changed", "{error}");
    let message = error["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("approval {delta_id} no longer shows"))
            && message.contains(&format!(
                "showing now: {beta_id} command: cargo test --all (Run, Reject)"
            )),
        "{message}"
    );
    assert!(ls.interactions().is_empty());

    // Its own: answered once, at its step.
    let done = ls_json(
        &ls,
        "approve --conversation",
        &["approve", "--conversation", "beta", "--approval", &beta_id],
        0,
    );
    assert_eq!(done["approval"]["id"], beta_id.as_str());
    assert_eq!(done["pressed"], "Run");
    let sent = interactions(&ls, beta);
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0]["interaction"]["stepIndex"], 3);
    assert_eq!(sent[0]["interaction"]["runCommand"]["confirm"], true);

    // Answered: the same id again is stale, for deny too.
    let o = ls_angrav(
        &ls,
        &["deny", "--conversation", "beta", "--approval", &beta_id],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!(
            "approval {beta_id} no longer shows; nothing pressed; showing now: none"
        )),
        "{}",
        stderr(&o)
    );
    assert_eq!(ls.interactions().len(), 1);

    // A choice by a word of its label, on the 2.x gate.
    let epsilon_id = approval_id(&ls, "epsilon");
    let done = ls_json(
        &ls,
        "approve --conversation",
        &[
            "approve",
            "once",
            "--conversation",
            "epsilon",
            "--approval",
            &epsilon_id,
        ],
        0,
    );
    assert_eq!(done["pressed"], "Allow Once");
    let o = ls_angrav(&ls, &["approve", "always", "--conversation", "delta"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("no choice 'always'"), "{}", stderr(&o));
    assert_eq!(ls.interactions().len(), 2);
}

#[test]
fn quota_is_printed_per_model() {
    let ls = two_waiting();
    let o = ls_angrav(&ls, &["quota"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = stdout(&o);
    let gemini = text
        .lines()
        .find(|l| l.starts_with("Gemini 3 Pro"))
        .unwrap();
    assert!(gemini.contains("60 %"), "{text}");
    let claude = text.lines().find(|l| l.starts_with("Claude")).unwrap();
    assert!(
        claude.contains("0 %") && claude.contains("(exhausted)"),
        "{text}"
    );

    ls.set_quota("Gemini 3 Pro", None);
    let quota = ls_json(&ls, "quota", &["quota"], 0);
    let gemini = &quota[0];
    assert_eq!(gemini["label"], "Gemini 3 Pro");
    assert_eq!(gemini["remaining"], Value::Null);
    assert_eq!(gemini["exhausted"], false);
    assert!(gemini["reset"].is_string());
    assert_eq!(quota[1]["remaining"], 0.0);
    assert_eq!(quota[1]["exhausted"], true);
}

#[test]
fn a_prompt_is_delivered_once_and_its_turn_awaited() {
    let ls = two_waiting();
    let alpha = "aaaa1111-0000-4000-8000-000000000001";
    let sent = ls_json(
        &ls,
        "prompt --conversation",
        &["prompt", "Tidy `src/` \"now\"", "--conversation", "alpha"],
        0,
    );
    assert_eq!(sent["delivered"], true);
    assert_eq!(sent["step_index"], 4);
    let messages = ls.messages();
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(messages[0]["cascadeId"], alpha);
    assert_eq!(
        messages[0]["items"],
        json!([{"text": "Tidy `src/` \"now\""}])
    );

    let waited = ls_json(
        &ls,
        "wait --conversation",
        &["wait", "--conversation", "alpha"],
        0,
    );
    assert_eq!(waited["state"], "idle");
    assert_eq!(waited["timed_out"], false);
    assert!(
        waited["answer"]["content"]
            .as_str()
            .unwrap()
            .contains("You asked: `Tidy `src/` \"now\"`"),
        "{waited}"
    );

    // A conversation at work is refused before anything is sent.
    let o = ls_angrav(&ls, &["prompt", "more", "--conversation", "beta"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("not accepted"), "{}", stderr(&o));
    assert_eq!(ls.messages().len(), 1);

    // A long turn is stopped; an idle conversation is left alone.
    let slow = SimLs::start(
        TOKEN,
        vec![
            Conversation::new("5104aaaa-0000-4000-8000-00000000000d", "slow")
                .turn(std::time::Duration::from_secs(600)),
        ],
    )
    .unwrap();
    ls_json(
        &slow,
        "prompt --conversation",
        &["prompt", "go", "--conversation", "slow"],
        0,
    );
    // A wait that times out still says where the conversation is (pending, exit 124),
    // as a window's does.
    let pending = ls_json(
        &slow,
        "wait --conversation",
        &["--timeout", "300ms", "wait", "--conversation", "slow"],
        124,
    );
    assert_eq!(
        (&pending["timed_out"], &pending["status"], &pending["state"]),
        (&json!(true), &json!("pending"), &json!("thinking")),
        "{pending}"
    );

    let stopped = ls_json(
        &slow,
        "cancel --conversation",
        &["cancel", "--conversation", "slow"],
        0,
    );
    assert_eq!(stopped["state"], "idle");
    let o = ls_angrav(&slow, &["cancel", "--conversation", "slow"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("nothing cancelled"), "{}", stderr(&o));
}

#[test]
fn a_wrong_token_garbage_and_a_hang_are_clear_errors() {
    let ls = two_waiting();
    let o = angrav_bin()
        .args(["--ls", &ls.url(), "--ls-token", "wrong", "--json", "quota"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let error: Value = serde_json::from_str(&stderr(&o)).unwrap();
    assert_eq!(error["error"]["code"], "ls");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("refused the token"),
        "{error}"
    );

    let o = angrav_bin()
        .args(["--ls", &ls.url(), "quota"])
        .env_remove("ANGRAV_LS_TOKEN")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--ls-token"));

    ls.set_mode(Mode::Garbage);
    let o = ls_angrav(&ls, &["status", "--conversation", "alpha"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("not its JSON"), "{}", stderr(&o));

    ls.set_mode(Mode::Hang);
    let o = ls_angrav(&ls, &["quota", "--timeout", "700ms"]);
    assert_eq!(o.status.code(), Some(124), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("the language server at"),
        "{}",
        stderr(&o)
    );
}

fn refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// The LS's interactions once at least one has come (the panel sends its own a
/// moment after the press it answers), within 10 s.
fn first_interactions(ls: &SimLs, cascade: &str) -> Vec<Value> {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let got = interactions(ls, cascade);
        if !got.is_empty() || std::time::Instant::now() > until {
            return got;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn with_a_browser_a_rendered_and_an_unrendered_conversation_are_joined_and_pressed_once() {
    const SHOWN: &str = "f00d0001-0000-4000-8000-00000000000a";
    const HIDDEN: &str = "f00d0002-0000-4000-8000-00000000000b";
    // Shown in a panel that is an out-of-process iframe: a target of its own.
    const FRAMED: &str = "f00d0003-0000-4000-8000-00000000000c";
    let ls = SimLs::start(
        TOKEN,
        vec![
            Conversation::new(SHOWN, "ls-shown").waiting(Gate::Command("cargo test".into())),
            Conversation::new(HIDDEN, "ls-hidden").history(3),
            Conversation::new(FRAMED, "ls-framed").history(2),
        ],
    )
    .unwrap();
    let w = common::open(&[
        Window::new(Layout::Current, "ls-shown")
            .start("approval")
            .ls(&ls, SHOWN),
        Window::new(Layout::V2, "ls-plain"),
        Window::new(Layout::LegacyTarget, "ls-framed").ls(&ls, FRAMED),
    ]);
    let url = ls.url();
    let with = |args: &[&str]| -> Vec<String> {
        let mut all: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        all.extend(["--ls", &url, "--ls-token", TOKEN].map(String::from));
        all
    };

    let list = common::angrav_json(&refs(&with(&["sessions", "list", "--all"])), 0);
    let window = common::by_target(&list, w.id(0)).unwrap();
    assert_eq!(window["state"], "awaiting_approval");
    let shown = conversation(&list, "ls-shown");
    assert_eq!(shown["window"], window["session"]["id"], "{list}");
    assert_eq!(shown["state"], "awaiting_approval");
    let hidden = conversation(&list, "ls-hidden");
    assert_eq!(hidden["window"], Value::Null);
    assert_eq!(hidden["steps"], 6);
    assert_eq!(hidden["state"], "idle");
    let framed = conversation(&list, "ls-framed");
    let framed_window = common::by_target(&list, w.id(2)).unwrap();
    assert_eq!(framed["window"], framed_window["session"]["id"], "{list}");

    // doctor, with no --ls: found from the panel's own requests, or said why not.
    let sessions = common::session_args(&w);
    let mut doctor = vec!["doctor"];
    doctor.extend(sessions.iter().map(String::as_str));
    let report = common::angrav_json(&doctor, 0);
    let found = &report["sessions"][0]["ls"];
    assert_eq!(found["found_by"], "panel_request", "{report}");
    assert_eq!(found["url"], ls.url().as_str());
    assert_eq!(found["conversation"], SHOWN);
    let none = &report["sessions"][1]["ls"];
    assert_eq!(none["url"], Value::Null, "{report}");
    assert!(
        none["detail"]
            .as_str()
            .unwrap()
            .contains("no language_server process"),
        "{report}"
    );
    let framed = &report["sessions"][2]["ls"];
    assert_eq!(framed["found_by"], "panel_request", "{report}");
    assert_eq!(framed["conversation"], FRAMED);
    let o = common::angrav(&["doctor", "--session", w.id(0)]);
    assert!(
        stdout(&o).contains(&format!(
            "ls:     {} (the panel's own requests); shows conversation {SHOWN}",
            ls.url()
        )),
        "{}",
        stdout(&o)
    );

    // The conversation's approval shows in its window: pressed there, once, and the
    // LS hears of it once, from the panel; named by the id the LS gives it (a stale
    // id presses nothing).
    let status = ls_json(
        &ls,
        "status --conversation",
        &["status", "--conversation", SHOWN],
        0,
    );
    let step_id = status["approval"]["id"].as_str().expect("an approval id");
    let o = common::angrav(&refs(&with(&[
        "--json",
        "approve",
        "--conversation",
        "f00d0001",
        "--approval",
        "0000beef",
    ])));
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("approval_changed"), "{}", stderr(&o));
    assert!(common::pressed(&w, 0).is_empty());
    let o = common::angrav(&refs(&with(&[
        "approve",
        "--conversation",
        "f00d0001",
        "--approval",
        step_id,
    ])));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains("answered there"), "{}", stderr(&o));
    assert_eq!(common::pressed(&w, 0), ["Run"]);
    let sent = first_interactions(&ls, SHOWN);
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0]["interaction"]["stepIndex"], 3);
    assert_eq!(sent[0]["interaction"]["runCommand"]["confirm"], true);
    let status = ls_json(
        &ls,
        "status --conversation",
        &["status", "--conversation", SHOWN],
        0,
    );
    assert_ne!(status["state"], "awaiting_approval", "{status}");
    assert_eq!(ls.interactions().len(), 1);
}

/// A window is linked to a conversation by the requests its panel made, which may
/// have named another: without `--approval`, its card is pressed only when it is the
/// step the LS says waits. A permission card shows no command where the LS names a
/// file or a description: it is the step all the same.
#[test]
fn a_window_card_is_pressed_for_a_conversation_only_when_the_ls_waits_on_it() {
    const OTHER: &str = "0dd10001-0000-4000-8000-00000000000a";
    const IDLE: &str = "0dd10002-0000-4000-8000-00000000000b";
    const SAME: &str = "0dd10003-0000-4000-8000-00000000000c";
    const FILE: &str = "0dd10004-0000-4000-8000-00000000000d";
    const PERMISSION: &str = "0dd10005-0000-4000-8000-00000000000e";
    let ls = SimLs::start(
        TOKEN,
        vec![
            Conversation::new(OTHER, "ls-other").waiting(Gate::Command("make deploy".into())),
            Conversation::new(IDLE, "ls-idle").history(2),
            Conversation::new(SAME, "ls-same").waiting(Gate::Command("cargo test".into())),
            Conversation::new(FILE, "ls-file")
                .waiting(Gate::File("file:///home/dev/.ssh/config".into())),
            Conversation::new(PERMISSION, "ls-permission")
                .waiting(Gate::Permission("read ~/.ssh/config".into())),
        ],
    )
    .unwrap();
    // The first three windows show a `cargo test` card, the others a permission card.
    let w = common::open(&[
        Window::new(Layout::Current, "ls-other")
            .start("approval")
            .ls(&ls, OTHER),
        Window::new(Layout::V2, "ls-idle")
            .start("approval")
            .ls(&ls, IDLE),
        Window::new(Layout::Current, "ls-same")
            .start("approval")
            .ls(&ls, SAME),
        Window::new(Layout::V2, "ls-file")
            .start("permission")
            .ls(&ls, FILE),
        Window::new(Layout::Current, "ls-permission")
            .start("permission")
            .ls(&ls, PERMISSION),
    ]);
    let url = ls.url();
    let run = |args: &[&str]| {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--ls", &url, "--ls-token", TOKEN]);
        common::angrav(&all)
    };

    // The LS waits on another command: the card is not its step.
    let o = run(&["--json", "approve", "--conversation", "0dd10001"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("approval_changed"), "{}", stderr(&o));
    assert!(common::pressed(&w, 0).is_empty());
    // The LS waits on nothing: refused, whatever the window shows.
    let o = run(&["deny", "--conversation", "0dd10002"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("not awaiting approval"),
        "{}",
        stderr(&o)
    );
    assert!(common::pressed(&w, 1).is_empty());
    assert!(ls.interactions().is_empty(), "{:?}", ls.interactions());

    // The card is the step the LS waits on: pressed there, once.
    let o = run(&["approve", "--conversation", "0dd10003"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains("answered there"), "{}", stderr(&o));
    assert_eq!(common::pressed(&w, 2), ["Run"]);
    let sent = first_interactions(&ls, SAME);
    assert_eq!(sent.len(), 1, "{sent:?}");

    // Permission steps: each pressed in its window, once.
    let o = run(&["approve", "--conversation", "0dd10004"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains("answered there"), "{}", stderr(&o));
    assert_eq!(common::pressed(&w, 3), ["Allow Once"]);
    let sent = first_interactions(&ls, FILE);
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0]["interaction"]["filePermission"]["allow"], true);
    let o = run(&["deny", "--conversation", "0dd10005"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains("answered there"), "{}", stderr(&o));
    assert_eq!(common::pressed(&w, 4), ["Deny"]);
    let sent = first_interactions(&ls, PERMISSION);
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0]["interaction"]["permission"]["allow"], false);
}

/// Watches one conversation from its approval to idle, answered meanwhile; the
/// language server with its stream or without. Returns angrav's stderr lines and
/// the watch's lines.
fn watched_from_approval_to_idle(ls: &SimLs, workspace: &str) -> (Vec<String>, Vec<Value>) {
    let (mut child, lines, errors) = common::spawn_angrav_at(
        "127.0.0.1:1",
        &[
            "--ls",
            &ls.url(),
            "--ls-token",
            ls.token(),
            "--json",
            "sessions",
            "watch",
            "--conversation",
            workspace,
            "--until-idle",
        ],
    );
    let schema = angrav::schema::cli();
    let next = || -> Value {
        let line = lines
            .recv_timeout(std::time::Duration::from_secs(20))
            .expect("a watch line");
        let v = serde_json::from_str(&line).unwrap();
        let shape = &schema["commands"]["sessions watch"]["ndjson"];
        check(&schema, shape, &v, "sessions watch").unwrap();
        v
    };
    let first = next();
    assert_eq!(first["type"], "snapshot");
    assert_eq!(first["current"], "awaiting_approval");
    assert_eq!(first["step_index"], 3);
    assert_eq!(first["session"]["workspace"], workspace);
    // Answered meanwhile: the watch sees it leave the approval, then go idle.
    ls_json(
        ls,
        "approve --conversation",
        &["approve", "--conversation", workspace],
        0,
    );
    let mut seen = vec![first];
    while seen.last().unwrap()["current"] != "idle" {
        let e = next();
        assert_eq!(e["type"], "state_change", "{e}");
        assert_eq!(e["previous"], seen.last().unwrap()["current"], "{e}");
        seen.push(e);
    }
    assert_eq!(child.0.wait().unwrap().code(), Some(0));
    (errors.iter().collect(), seen)
}

/// The journal's entries of conversation `id`, as `angrav log --json` gives them.
fn journaled(id: &str) -> Vec<Value> {
    let o = angrav_bin().args(["log", "--json"]).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    stdout(&o)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["session"]["conversation_id"] == id || e["conversation_id"] == id)
        .collect()
}

#[test]
fn a_conversation_is_watched_from_its_stream_and_journaled() {
    const ID: &str = "57e4aaaa-0000-4000-8000-00000000000e";
    let ls = SimLs::start(
        TOKEN,
        vec![
            Conversation::new(ID, "streamed")
                .history(1)
                .waiting(Gate::Command("make lint".into())),
        ],
    )
    .unwrap();
    let (errors, seen) = watched_from_approval_to_idle(&ls, "streamed");
    assert!(
        errors
            .iter()
            .any(|l| l.contains("following the language server's StreamAgentStateUpdates stream")),
        "{errors:?}"
    );
    let streams = ls.streams();
    assert_eq!(streams.len(), 1, "{streams:?}");
    assert_eq!(streams[0]["method"], "StreamAgentStateUpdates");
    assert_eq!(streams[0]["body"]["conversationId"], ID);
    assert!(streams[0]["body"]["subscriberId"].is_string());

    // Each line is in the journal, with the seq it was printed with.
    let journal = journaled(ID);
    let kinds: Vec<&str> = journal
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.len(), seen.len(), "{journal:?}");
    for (entry, line) in journal.iter().zip(&seen) {
        assert_eq!(entry["seq"], line["seq"], "{entry} {line}");
        assert_eq!(entry["type"], line["type"]);
        assert_eq!(entry["current"], line["current"]);
    }
}

#[test]
fn without_a_stream_a_conversation_is_watched_by_reading_it() {
    let ls = SimLs::start(
        TOKEN,
        vec![
            Conversation::new("90110000-0000-4000-8000-00000000000f", "polled")
                .waiting(Gate::Command("make check".into())),
        ],
    )
    .unwrap();
    ls.set_streams(false);
    let (errors, seen) = watched_from_approval_to_idle(&ls, "polled");
    assert!(
        errors.iter().any(|l| l.contains(
            "no stream from the language server (it has no StreamAgentStateUpdates): reading it every 500 ms"
        )),
        "{errors:?}"
    );
    assert!(ls.streams().is_empty());
    assert_eq!(seen.first().unwrap()["current"], "awaiting_approval");
}

#[test]
fn status_shows_the_models_quota_and_dispatch_skips_chats_on_an_exhausted_model_until_its_reset() {
    let ls = SimLs::start(
        TOKEN,
        vec![Conversation::new(
            "abcd0001-0000-4000-8000-00000000000c",
            "q",
        )],
    )
    .unwrap();
    // v2 panels show their model (`Gemini 3 Pro (High)`); this build's other layout does not.
    let w = common::open(&[
        Window::new(Layout::V2, "quota-gemini").scenario("instant"),
        Window::new(Layout::Current, "quota-other").scenario("instant"),
    ]);
    let url = ls.url();
    let named = ["--ls", url.as_str(), "--ls-token", TOKEN];
    let status = common::angrav_json(&[&["status", "--session", w.id(0)][..], &named].concat(), 0);
    assert_eq!(status["model"], "Gemini 3 Pro (High)");
    assert_eq!(status["quota"]["label"], "Gemini 3 Pro", "{status}");
    assert_eq!(status["quota"]["remaining"], 0.6);
    let o = common::angrav(&[&["status", "--session", w.id(0)][..], &named].concat());
    assert!(
        stdout(&o).contains("  quota:    Gemini 3 Pro: 60 % left, resets "),
        "{}",
        stdout(&o)
    );

    ls.set_quota("Gemini 3 Pro", Some(0.0));
    let args = [
        &[
            "dispatch",
            "--model",
            "gemini 3 pro",
            "--session",
            w.id(0),
            "--session",
            w.id(1),
        ][..],
        &named,
    ]
    .concat();
    let o = common::angrav_in(&args, "one prompt for whoever may\n");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("quota is exhausted until"),
        "{}",
        stderr(&o)
    );
    assert!(w.received(0).is_empty());
    assert_eq!(w.received(1), ["one prompt for whoever may"]);

    // Its quota refills during the run: read again just after the reset time, the
    // chat takes prompts again. A prompt pinned to it waits for that.
    let reset = std::time::SystemTime::now() + std::time::Duration::from_secs(1);
    ls.set_reset("Gemini 3 Pro", reset);
    let pinned = format!(
        "{}\n{}\n",
        json!({"id": "p", "prompt": "for gemini when it may", "session": w.id(0)}),
        json!({"id": "q", "prompt": "for anyone"})
    );
    let o = common::angrav_in(&args, &pinned);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let said = stderr(&o);
    let skipped = said.find("its quota is exhausted until").expect(&said);
    let back = said
        .find("the quota of gemini 3 pro is back (100 %)")
        .expect(&said);
    assert!(skipped < back, "{said}");
    assert_eq!(w.received(0), ["for gemini when it may"]);
    assert_eq!(w.received(1), ["one prompt for whoever may", "for anyone"]);
}

/// `dispatch --model M` reads the quota again beside the run: a language server slow
/// to answer holds up nothing of it (here: ^C is heard while that read waits, and
/// the run ends, the prompt pinned to the waiting chat unsent).
#[test]
fn dispatch_reads_the_quota_again_beside_the_run() {
    let ls = SimLs::start(
        TOKEN,
        vec![Conversation::new(
            "abcd0001-0000-4000-8000-00000000000d",
            "r",
        )],
    )
    .unwrap();
    let w = common::open(&[
        Window::new(Layout::V2, "requota-gemini").scenario("instant"),
        Window::new(Layout::Current, "requota-other").scenario("instant"),
    ]);
    ls.set_quota("Gemini 3 Pro", Some(0.0));
    // Refilled shortly: read again just after; that read, the second, is held.
    let reset = std::time::SystemTime::now() + std::time::Duration::from_secs(5);
    ls.set_reset("Gemini 3 Pro", reset);
    ls.hold("GetUserStatus", 1, "requota-held");
    let file = std::env::temp_dir().join(format!("angrav-requota-{}.jsonl", std::process::id()));
    let prompts = format!(
        "{}\n{}\n",
        json!({"id": "p", "prompt": "for gemini when it may", "session": w.id(0)}),
        json!({"id": "q", "prompt": "for anyone"})
    );
    std::fs::write(&file, prompts).unwrap();
    let url = ls.url();
    let args = [
        "dispatch",
        "--model",
        "gemini 3 pro",
        "--session",
        w.id(0),
        "--session",
        w.id(1),
        "--ls",
        url.as_str(),
        "--ls-token",
        TOKEN,
        "-f",
        file.to_str().unwrap(),
    ];
    let (mut child, out, err) = common::spawn_angrav_at(common::sim().endpoint().label(), &args);
    let patience = std::time::Duration::from_secs(60);
    assert!(
        angrav::sim::gate_reached("requota-held", patience),
        "the quota was never read again"
    );
    common::signal(child.0.id(), "INT");
    let mut said = Vec::new();
    while !said
        .last()
        .is_some_and(|l: &String| l.contains("interrupted"))
    {
        said.push(err.recv_timeout(patience).expect("a line on stderr"));
    }
    // Heard while the read waits: nothing said of the quota before.
    assert!(!said.iter().any(|l| l.contains("not read")), "{said:?}");
    angrav::sim::open_gate("requota-held");
    let code = child.0.wait().unwrap().code();
    let _ = std::fs::remove_file(&file);
    assert_eq!(code, Some(130), "{said:?}");
    let unsent: Vec<String> = out.iter().collect();
    assert!(
        unsent.iter().any(|l| l.contains("for gemini when it may")),
        "{unsent:?}"
    );
    assert!(w.received(0).is_empty());
}

#[test]
fn a_policy_answers_each_waiting_step_once_through_the_ls() {
    // zeta: two steps wait at once, each decided on its own.
    let zeta = Conversation::new("ffff6666-0000-4000-8000-000000000006", "zeta")
        .waiting(Gate::Command("cargo test".into()))
        .waiting(Gate::Permission("read ~/.ssh".into()));
    let ls = SimLs::start(TOKEN, seeds().into_iter().chain([zeta]).collect()).unwrap();
    let policy = common::TempFile::new(
        "ls-policy",
        r#"[{"kind": "command", "command": "^cargo test( |$)", "action": "approve"},
            {"kind": "permission", "action": "deny"}]"#,
    );
    let policy_arg = policy.path();
    let o = ls_angrav(
        &ls,
        &[
            "--json",
            "sessions",
            "watch",
            "--conversation",
            "all",
            "--policy",
            policy_arg,
            "--until-idle",
            "--timeout",
            "60s",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let schema = angrav::schema::cli();
    let lines: Vec<Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for l in &lines {
        let shape = &schema["commands"]["sessions watch"]["ndjson"];
        check(&schema, shape, l, "sessions watch").unwrap();
    }
    let decisions: Vec<&Value> = lines
        .iter()
        .filter(|l| l["type"] == "approval_decided")
        .collect();
    assert_eq!(decisions.len(), 5, "{}", stdout(&o));
    let by = |ws: &str| {
        decisions
            .iter()
            .find(|d| d["session"]["workspace"] == ws)
            .unwrap_or_else(|| panic!("no decision for {ws}"))
    };
    assert_eq!(by("beta")["choice"], "Run");
    assert_eq!(by("beta")["rule"], 0);
    assert_eq!(by("delta")["choice"], "Deny");
    assert_eq!(by("epsilon")["action"], "deny");
    let zeta: Vec<(&Value, &Value)> = decisions
        .iter()
        .filter(|d| d["session"]["workspace"] == "zeta")
        .map(|d| (&d["step_index"], &d["choice"]))
        .collect();
    assert_eq!(
        zeta,
        [(&json!(3), &json!("Run")), (&json!(4), &json!("Deny"))],
        "{}",
        stdout(&o)
    );

    let all = ls.interactions();
    assert_eq!(all.len(), 5, "{all:?}");
    let sent = |id: &str| interactions(&ls, id);
    let beta = sent("bbbb2222-0000-4000-8000-000000000002");
    assert_eq!(beta.len(), 1);
    assert_eq!(beta[0]["interaction"]["runCommand"]["confirm"], true);
    let delta = sent("dddd4444-0000-4000-8000-000000000004");
    assert_eq!(delta[0]["interaction"]["filePermission"]["allow"], false);
    let epsilon = sent("eeee5555-0000-4000-8000-000000000005");
    assert_eq!(epsilon[0]["interaction"]["permission"]["allow"], false);
}

/// Which window shows a conversation is looked up when its step is about to be
/// pressed: one a window opened after the watch started is left to that window.
#[test]
fn a_policy_leaves_a_conversation_a_window_opened_later_to_that_window() {
    const LATER: &str = "f00d0009-0000-4000-8000-00000000000f";
    let ls = SimLs::start(
        TOKEN,
        vec![Conversation::new(LATER, "ls-later").asks(Gate::Command("cargo test".into()))],
    )
    .unwrap();
    let policy = common::TempFile::new(
        "ls-later-policy",
        r#"[{"kind": "command", "command": "^cargo test", "action": "approve"}]"#,
    );
    let url = ls.url();
    let (_watch, lines) = common::spawn_angrav(&[
        "--ls",
        &url,
        "--ls-token",
        TOKEN,
        "--json",
        "sessions",
        "watch",
        "--conversation",
        "all",
        "--policy",
        policy.path(),
        "--timeout",
        "120s",
    ]);
    let patience = std::time::Duration::from_secs(60);
    let next = |kind: &str| loop {
        let l: Value = serde_json::from_str(&lines.recv_timeout(patience).unwrap()).unwrap();
        if l["type"] == kind && l["session"]["conversation_id"] == LATER {
            return l;
        }
    };
    // Watching, with no window showing the conversation yet.
    assert_eq!(next("snapshot")["current"], "idle");
    let w = common::open(&[Window::new(Layout::Current, "ls-later").ls(&ls, LATER)]);
    ls_json(
        &ls,
        "prompt --conversation",
        &["prompt", "Test it", "--conversation", LATER],
        0,
    );
    let decided = next("approval_decided");
    assert_eq!(decided["choice"], Value::Null, "{decided}");
    let error = decided["error"].as_str().expect("left to the window");
    assert!(
        error.contains(&format!("shown in window {}", &w.id(0)[..6])),
        "{decided}"
    );
    assert_eq!(interactions(&ls, LATER), Vec::<Value>::new());
}

/// The quota rows of serve's dashboard once `want` models show, and the note.
fn dashboard_quota(page: &mut cdp::Connection, want: usize, left_of_first: &str) -> Value {
    let expression = format!(
        "(function (want, first) {{ return new Promise((resolve) => {{
          const rows = () => Array.from(document.querySelectorAll('#models li'));
          const ready = () => !document.getElementById('quota').hidden && rows().length === want &&
            rows()[0].querySelector('.left').textContent === first;
          const done = () => resolve({{ note: document.getElementById('quota-note').textContent,
            models: rows().map((r) => ({{ model: r.dataset.model, reset: r.dataset.reset,
              left: r.querySelector('.left').textContent, exhausted: r.classList.contains('exhausted') }})) }});
          if (ready()) return done();
          const obs = new MutationObserver(() => {{ if (ready()) {{ obs.disconnect(); done(); }} }});
          obs.observe(document.body, {{ subtree: true, childList: true, characterData: true, attributes: true }});
        }}); }})({want}, {})",
        json!(left_of_first)
    );
    common::serve::evaluate(page, &expression)
}

#[test]
fn the_dashboard_shows_each_models_quota_and_reads_it_again() {
    let ls = two_waiting();
    let url = ls.url();
    let serve = common::serve::start("ls-quota", &["--ls", &url, "--ls-token", TOKEN], &[]);
    let api = serve.connect().call("quota", json!({}));
    assert_eq!(api["ls"]["url"], url.as_str(), "{api}");
    assert_eq!(api["ls"]["found_by"], "given");
    assert_eq!(api["models"][0]["remaining"], 0.6);
    assert_eq!(api["models"][1]["exhausted"], true);

    let (_tab, mut page) = common::serve::dashboard(&serve);
    let shown = dashboard_quota(&mut page, 2, "60 % left");
    assert_eq!(shown["models"][0]["model"], "Gemini 3 Pro", "{shown}");
    assert_eq!(shown["models"][0]["reset"], api["models"][0]["reset"]);
    assert_eq!(shown["models"][0]["exhausted"], false);
    assert_eq!(shown["models"][1]["model"], "Claude Sonnet 4.5");
    assert_eq!(shown["models"][1]["left"], "0 % left (exhausted)");
    assert_eq!(shown["models"][1]["exhausted"], true);
    assert!(shown["note"].as_str().unwrap().contains(&url), "{shown}");

    // Read again on asking: the fraction the language server says now.
    ls.set_quota("Gemini 3 Pro", None);
    common::serve::evaluate(&mut page, "document.getElementById('quota-read').click()");
    let shown = dashboard_quota(&mut page, 2, "unknown");
    assert_eq!(shown["models"][0]["model"], "Gemini 3 Pro", "{shown}");
}

/// The path an `https://` language server is reached by: a `fetch` in a window's
/// page. The simulator cannot serve TLS with angrav's crates, so an `http://` one
/// is called the same way.
#[test]
fn a_language_server_is_called_through_a_windows_page() {
    use angrav::Error;
    use angrav::ls::model::Quota;
    use angrav::panel::Deadline;
    let ls = two_waiting();
    let w = common::open(&[Window::new(Layout::Current, "ls-through-page")]);
    let ws = w.0[0].web_socket_debugger_url.clone().unwrap();
    let page_origin = w.0[0].url.split('/').take(3).collect::<Vec<_>>().join("/");
    let given = angrav::ls::Ls::given(&ls.url(), TOKEN, "--ls").unwrap();
    let within = || Deadline::within(std::time::Duration::from_secs(20));

    let reply = given
        .call_in_page(&ws, "GetUserStatus", &json!({}), within())
        .unwrap();
    let models = Quota::all(&reply);
    assert_eq!(models.len(), 2, "{reply}");
    assert_eq!(models[0].remaining, Some(0.6));
    // The page made the call: it came with the page's origin.
    assert_eq!(ls.origins(), [page_origin]);
    given.quota(within()).unwrap();
    assert_eq!(ls.origins().len(), 1, "a direct call has no origin");
    // Named https:// on the command line, it is called through the window's page (here
    // its fetch fails: nothing listens there, the simulator has no TLS), not refused
    // for want of a page.
    let o = angrav_bin()
        .args([
            "--cdp",
            &ws,
            "--ls",
            "https://127.0.0.1:1",
            "--ls-token",
            TOKEN,
        ])
        .arg("quota")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("the page's fetch failed"),
        "{}",
        stderr(&o)
    );

    // The same errors as a direct call: a refused token, garbage, a hang.
    let wrong = angrav::ls::Ls::given(&ls.url(), "wrong", "--ls").unwrap();
    let e = wrong
        .call_in_page(&ws, "GetUserStatus", &json!({}), within())
        .unwrap_err();
    assert_eq!(e.code(), "ls");
    assert!(e.to_string().contains("refused the token"), "{e}");
    ls.set_mode(Mode::Garbage);
    let e = given
        .call_in_page(&ws, "GetUserStatus", &json!({}), within())
        .unwrap_err();
    assert!(e.to_string().contains("not its JSON"), "{e}");
    ls.set_mode(Mode::Hang);
    let short = Deadline::within(std::time::Duration::from_millis(700));
    let e = given
        .call_in_page(&ws, "GetUserStatus", &json!({}), short)
        .unwrap_err();
    assert!(matches!(e, Error::Timeout { .. }), "{e:?}");
    assert!(e.to_string().contains("the language server at"), "{e}");

    // Nothing there: the page's fetch fails, and that is said.
    let gone = angrav::ls::Ls::given("http://127.0.0.1:1", TOKEN, "--ls").unwrap();
    let e = gone
        .call_in_page(&ws, "GetUserStatus", &json!({}), within())
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("no language server answers at http://127.0.0.1:1 (the page's fetch failed"),
        "{e}"
    );
}

/// Two steps of one conversation waiting at once: `status` shows both (plain and
/// `--json`), each answered by its own id, the other still shown until it is too.
#[test]
fn two_steps_waiting_at_once_are_both_shown_and_each_answered_by_its_id() {
    const ID: &str = "ffff6666-0000-4000-8000-000000000006";
    let ls = SimLs::start(
        TOKEN,
        vec![
            Conversation::new(ID, "zeta")
                .waiting(Gate::Command("cargo test".into()))
                .waiting(Gate::Permission("read ~/.ssh".into())),
        ],
    )
    .expect("simulated LS");
    let status = |code| {
        ls_json(
            &ls,
            "status --conversation",
            &["status", "--conversation", "zeta"],
            code,
        )
    };
    let s = status(0);
    assert_eq!(s["state"], "awaiting_approval", "{s}");
    let approvals = s["approvals"].as_array().expect("approvals");
    let kinds: Vec<&Value> = approvals.iter().map(|a| &a["kind"]).collect();
    assert_eq!(kinds, [&json!("command"), &json!("permission")], "{s}");
    assert_eq!(
        (&s["approval"], &s["step_index"]),
        (&approvals[0], &json!(3)),
        "{s}"
    );
    let (first, second) = (
        approvals[0]["id"].as_str().unwrap().to_string(),
        approvals[1]["id"].as_str().unwrap().to_string(),
    );
    assert_ne!(first, second);
    let o = ls_angrav(&ls, &["status", "--conversation", "zeta"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    for (id, what) in [
        (&first, "command: cargo test (Run, Reject) (step 3)"),
        (&second, "permission"),
    ] {
        assert!(
            stdout(&o).contains(&format!("  approval: {id} {what}")),
            "{}",
            stdout(&o)
        );
    }

    // The second by its id: that step answered, the first still shown.
    let done = ls_json(
        &ls,
        "approve --conversation",
        &["deny", "--conversation", "zeta", "--approval", &second],
        0,
    );
    assert_eq!(
        (&done["pressed"], &done["step_index"]),
        (&json!("Deny"), &json!(4)),
        "{done}"
    );
    assert_eq!(done["state"], "awaiting_approval", "{done}");
    let s = status(0);
    assert_eq!(s["approvals"].as_array().unwrap().len(), 1, "{s}");
    assert_eq!(s["approvals"][0]["id"], first.as_str(), "{s}");
    let done = ls_json(
        &ls,
        "approve --conversation",
        &["approve", "--conversation", "zeta", "--approval", &first],
        0,
    );
    assert_eq!(
        (&done["pressed"], &done["step_index"]),
        (&json!("Run"), &json!(3)),
        "{done}"
    );
    let sent: Vec<u64> = interactions(&ls, ID)
        .iter()
        .map(|i| i["interaction"]["stepIndex"].as_u64().unwrap())
        .collect();
    assert_eq!(sent, [4, 3]);
    assert_eq!(status(0)["approvals"], json!([]));
}

/// A step that asks the user a question, or waits for what angrav does not know, is
/// `awaiting_input`: shown with its question, ended on by a wait, and never an
/// approval that `approve` presses.
#[test]
fn a_question_or_an_unknown_wait_is_awaiting_input_never_an_approval() {
    let ask = |text: &str, options: &[&str]| {
        Gate::Question(text.into(), options.iter().map(|o| o.to_string()).collect())
    };
    let ls = SimLs::start(
        TOKEN,
        vec![
            Conversation::new("ffff6666-0000-4000-8000-000000000006", "zeta").waiting(ask(
                "Which database should the service use?",
                &["Postgres", "SQLite"],
            )),
            Conversation::new("abab7777-0000-4000-8000-000000000007", "eta").waiting(Gate::Unknown),
            Conversation::new("cdcd8888-0000-4000-8000-000000000008", "theta")
                .asks(ask("Ship it now?", &["Yes", "Not yet"])),
        ],
    )
    .unwrap();
    let database = json!({"text": "Which database should the service use?",
                          "options": ["Postgres", "SQLite"]});

    let list = ls_json(&ls, "sessions list", &["sessions", "list", "--all"], 0);
    let zeta = conversation(&list, "zeta");
    assert_eq!(zeta["state"], "awaiting_input", "{list}");
    assert_eq!(zeta["approval"], Value::Null);
    assert_eq!(zeta["question"], database);
    let eta = conversation(&list, "eta");
    assert_eq!(eta["state"], "awaiting_input", "{list}");
    assert_eq!(
        (&eta["approval"], &eta["question"]),
        (&Value::Null, &Value::Null)
    );
    let o = ls_angrav(&ls, &["sessions", "list", "--all"]);
    let text = stdout(&o);
    let zeta_line = text.lines().find(|l| l.starts_with("ffff66")).unwrap();
    assert!(zeta_line.contains("awaiting_input"), "{text}");

    let status = ls_json(
        &ls,
        "status --conversation",
        &["status", "--conversation", "zeta"],
        0,
    );
    assert_eq!(status["state"], "awaiting_input");
    assert_eq!(status["run_status"], "waiting_for_user");
    assert_eq!(status["approvals"], json!([]));
    assert_eq!(status["question"], database);
    let o = ls_angrav(&ls, &["status", "--conversation", "zeta"]);
    assert!(
        stdout(&o).contains(
            "awaiting_input (question: Which database should the service use? options: Postgres, SQLite)"
        ),
        "{}",
        stdout(&o)
    );

    // A watch names the question too: its line, and its JSON.
    let o = ls_angrav(
        &ls,
        &["sessions", "watch", "--conversation", "all", "--count", "0"],
    );
    let text = stdout(&o);
    let zeta_line = text.lines().find(|l| l.contains("ffff66")).unwrap();
    assert!(
        zeta_line.contains(
            "awaiting_input (question: Which database should the service use? options: Postgres, SQLite)"
        ),
        "{text}"
    );
    let o = ls_angrav(
        &ls,
        &[
            "--json",
            "sessions",
            "watch",
            "--conversation",
            "zeta",
            "--count",
            "0",
        ],
    );
    let line: Value = serde_json::from_str(stdout(&o).lines().next().unwrap()).unwrap();
    let schema = angrav::schema::cli();
    let shape = &schema["commands"]["sessions watch"]["ndjson"];
    check(&schema, shape, &line, "sessions watch").unwrap();
    assert_eq!(line["question"], database, "{line}");

    // Nothing to press: approve and deny send nothing, and say what it waits for.
    for (args, said) in [
        (
            ["approve", "--conversation", "zeta"],
            "question: Which database",
        ),
        (["deny", "--conversation", "eta"], "awaiting_input"),
    ] {
        let o = ls_angrav(&ls, &args);
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        assert!(stderr(&o).contains("nothing answered"), "{}", stderr(&o));
        assert!(stderr(&o).contains(said), "{}", stderr(&o));
    }
    assert_eq!(ls.interactions(), Vec::<Value>::new());

    // A turn that stops at a question ends the wait: exit 1, with the question.
    ls_json(
        &ls,
        "prompt --conversation",
        &["prompt", "Ready?", "--conversation", "theta"],
        0,
    );
    let waited = ls_json(
        &ls,
        "wait --conversation",
        &["wait", "--conversation", "theta"],
        1,
    );
    assert_eq!(waited["state"], "awaiting_input", "{waited}");
    assert_eq!(
        waited["question"],
        json!({"text": "Ship it now?", "options": ["Yes", "Not yet"]})
    );
    assert_eq!(waited["approval"], Value::Null);
    let o = ls_angrav(&ls, &["wait", "--conversation", "theta"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stdout(&o)
            .contains("cdcd88: awaiting_input (question: Ship it now? options: Yes, Not yet)"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn a_state_directory_angrav_cannot_read_is_an_error_not_a_list_without_windows() {
    let ls = two_waiting();
    let w = common::open(&[Window::new(Layout::Current, "unread-state")]);
    // Not a directory; a directory whose aliases.json is a directory.
    let odd = std::env::temp_dir().join(format!("angrav-ls-{}-odd-state", std::process::id()));
    std::fs::create_dir_all(odd.join("aliases.json")).unwrap();
    let list = |dir: &std::path::Path, more: &[&str]| {
        angrav_bin()
            .env("ANGRAV_STATE_DIR", dir)
            .args(["--cdp", common::sim().endpoint().label()])
            .args(["--ls", &ls.url(), "--ls-token", ls.token()])
            .args(more)
            .args(["sessions", "list"])
            .output()
            .expect("run angrav")
    };
    for dir in [std::path::Path::new("/dev/null"), &odd] {
        let o = list(dir, &[]);
        let said = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{said}");
        assert!(stdout(&o).is_empty(), "{}", stdout(&o));
        assert!(
            said.contains("aliases.json") && said.contains("--no-state"),
            "{said}"
        );
        assert!(
            !said.contains("no Antigravity editor windows found"),
            "{said}"
        );
        // As it says: without the state directory, the window is listed.
        let o = list(dir, &["--no-state"]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        assert!(stdout(&o).contains("unread-state"), "{}", stdout(&o));
        assert!(stdout(&o).contains(&w.id(0)[..6]), "{}", stdout(&o));
    }
    let _ = std::fs::remove_dir_all(&odd);
}
