//! The markup of newer builds (2.x, and a window using the profile's other
//! alternatives), turn boundaries, approval kinds, and what `status` reads about the
//! chat (title, mode, model).

mod common;

use angrav::panel::Layout;
use angrav::sim::Window;
use common::{angrav, angrav_json, open, stderr, stdout};
use serde_json::{Value, json};

fn roles(history: &Value) -> Vec<&str> {
    history
        .as_array()
        .expect("a list")
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect()
}

/// Sends two prompts and checks that the turns stay apart: `output last` is the
/// second answer only, `history` is user, agent, user, agent.
fn two_turns(id: &str, what: &str) {
    for text in ["the first question", "the second question"] {
        let o = angrav(&["--session", id, "prompt", text, "--wait"]);
        assert_eq!(o.status.code(), Some(0), "{what}: {}", stderr(&o));
    }
    let last = stdout(&angrav(&["--session", id, "output", "last"]));
    assert!(last.starts_with("## Answer 2"), "{what}: {last}");
    assert!(!last.contains("Answer 1"), "{what}: {last}");
    let history = angrav_json(&["--session", id, "history"], 0);
    assert_eq!(
        roles(&history),
        ["user", "agent", "user", "agent"],
        "{what}"
    );
    assert_eq!(history[0]["content"], "the first question", "{what}");
    assert_eq!(history[2]["content"], "the second question", "{what}");
}

#[test]
fn after_two_prompts_the_turns_stay_apart_in_every_layout() {
    for layout in Layout::ALL {
        let w = open(&[Window::new(layout, "two-turns").scenario("instant")]);
        two_turns(w.id(0), layout.name());
        let s = angrav_json(&["--session", w.id(0), "status"], 0);
        assert_eq!(s["user_messages"], 2, "{layout:?}: {s}");
        assert_eq!(s["agent_messages"], 2, "{layout:?}: {s}");
    }
}

#[test]
fn every_single_session_command_on_2x_markup_and_on_its_other_alternatives() {
    let w = open(&[
        Window::new(Layout::V2, "v2-main").scenario("instant"),
        Window::new(Layout::V2, "v2-alt").scenario("instant").alt(),
    ]);
    for (i, what) in [(0, "v2"), (1, "v2 alt")] {
        let id = w.id(i);
        let s = angrav_json(&["--session", id, "status"], 0);
        assert_eq!(s["state"], "idle", "{what}: {s}");
        assert_eq!(s["layout"], "v2", "{what}: {s}");
        assert_eq!(s["input_found"], true, "{what}: {s}");
        assert_eq!(s["input_editable"], true, "{what}: {s}");
        // The hidden cancel-button copy is not a busy agent.
        assert_eq!(s["busy"], false, "{what}: {s}");
        two_turns(id, what);
        assert_eq!(
            w.received(i),
            ["the first question", "the second question"],
            "{what}"
        );
        let code = angrav_json(&["--session", id, "output", "code", "--lang", "rust"], 0);
        assert_eq!(
            code,
            json!([{ "lang": "rust", "code": "fn answer() -> u32 {\n    2\n}" }]),
            "{what}"
        );
        let done = angrav_json(&["--session", id, "wait"], 0);
        assert_eq!(done["state"], "idle", "{what}");
        let new = angrav_json(&["--session", id, "new"], 0);
        assert_eq!(new["new_conversation"], true, "{what}");
        assert_eq!(
            angrav_json(&["--session", id, "history"], 0),
            json!([]),
            "{what}"
        );
    }
    // The second window did read through other alternatives of the same roles.
    let markers = |i: usize| {
        angrav_json(&["--session", w.id(i), "status"], 0)["markers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m.as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert!(
        markers(0).contains(
            &r#"input: div[role="combobox"][contenteditable="true"][aria-label="Message input"]"#
                .to_string()
        ),
        "{:?}",
        markers(0)
    );
    assert!(
        markers(1).contains(
            &r#"input: [data-testid="agent-input-box"] [contenteditable="true"]"#.to_string()
        ),
        "{:?}",
        markers(1)
    );
}

#[test]
fn turns_stay_apart_when_no_user_message_marker_matches() {
    let profile = std::env::temp_dir().join(format!("angrav-markup-{}.json", std::process::id()));
    std::fs::write(&profile, r#"{"user_message": [".no-such-marker"]}"#).unwrap();
    let selectors = profile.to_str().unwrap();
    for layout in Layout::ALL {
        let w = open(&[Window::new(layout, "no-user-marker").history(2)]);
        let last = angrav(&[
            "--selectors",
            selectors,
            "--session",
            w.id(0),
            "output",
            "last",
        ]);
        let last = stdout(&last);
        assert!(last.starts_with("## Answer 2"), "{layout:?}: {last}");
        assert!(!last.contains("Answer 1"), "{layout:?}: {last}");
        let history = angrav_json(
            &["--selectors", selectors, "--session", w.id(0), "history"],
            0,
        );
        assert_eq!(roles(&history), ["agent", "agent"], "{layout:?}");
        let s = angrav_json(
            &["--selectors", selectors, "--session", w.id(0), "status"],
            0,
        );
        assert_eq!(s["agent_messages"], 2, "{layout:?}: {s}");
        assert_eq!(s["user_messages"], 0, "{layout:?}: {s}");
    }
    // An error in a row of its own after the last answer is still this turn's.
    let foreign = common::sim()
        .open_path("/foreign/workbench.html?state=error")
        .unwrap();
    let s = angrav_json(
        &["--selectors", selectors, "--session", &foreign.id, "status"],
        0,
    );
    common::sim().close(&foreign.id).unwrap();
    assert_eq!(s["state"], "error", "{s}");
    assert_eq!(s["error"], "Something broke in the agent", "{s}");
    std::fs::remove_file(&profile).unwrap();
}

#[test]
fn each_approval_kind_is_read_with_its_choices() {
    let cases = [
        (
            Layout::V2,
            "approval",
            "command",
            Some("cargo test"),
            &["Run", "Reject"][..],
        ),
        (
            Layout::Current,
            "approval",
            "command",
            Some("cargo test"),
            &["Run", "Reject"],
        ),
        (
            Layout::V2,
            "file_edits",
            "file_edits",
            None,
            &["Accept all", "Reject all"],
        ),
        (
            Layout::V2,
            "permission",
            "permission",
            None,
            &[
                "Always Allow",
                "Allow This Conversation",
                "Allow Once",
                "Deny",
            ],
        ),
        (Layout::V2, "plan", "plan", None, &["Open", "Proceed"]),
        (Layout::V2, "collapsed", "collapsed", None, &["Expand"]),
    ];
    let w = open(
        &cases
            .iter()
            .map(|(layout, start, ..)| Window::new(*layout, "kinds").start(start))
            .collect::<Vec<_>>(),
    );
    for (i, (layout, start, kind, command, choices)) in cases.iter().enumerate() {
        let s = angrav_json(&["--session", w.id(i), "status"], 0);
        assert_eq!(s["state"], "awaiting_approval", "{layout:?} {start}: {s}");
        assert_eq!(s["approval"]["kind"], *kind, "{layout:?} {start}: {s}");
        assert_eq!(s["approval"]["command"], json!(command), "{start}: {s}");
        let labels: Vec<Value> = choices.iter().map(|c| json!({ "label": c })).collect();
        assert_eq!(s["approval"]["choices"], json!(labels), "{start}: {s}");
        assert_eq!(s["approvals"][0]["choices"], json!(labels), "{start}: {s}");
        assert_eq!(s["approvals"].as_array().unwrap().len(), 1, "{start}: {s}");
    }
    let text = stdout(&angrav(&["--session", w.id(0), "status"]));
    assert!(
        text.contains("approval: command: cargo test") && text.contains("mode Fast"),
        "{text}"
    );
    let idle = open(&[Window::new(Layout::V2, "kinds-idle")]);
    let s = angrav_json(&["--session", idle.id(0), "status"], 0);
    assert_eq!(s["approval"], Value::Null);
    assert_eq!(s["approvals"], json!([]));
}

/// Runs `function (text) {...}` in the page of window `i` (isolated world, same DOM).
fn page(w: &common::Windows, i: usize, function: &str, text: &str) {
    w.panel(i).call_function(function, &[text.into()]).unwrap();
}

const INTO_LAST_ANSWER: &str = "function (t) { const a = Array.from(document.querySelectorAll('.rendered-markdown')).pop(); const p = document.createElement('p'); p.textContent = t; a.appendChild(p); }";
const AFTER_LAST_ANSWER: &str = "function (t) { const c = document.getElementById('conversation'); const d = document.createElement('div'); d.textContent = t; c.lastElementChild.appendChild(d); }";

#[test]
fn quota_words_count_outside_answers_only_and_the_2x_error_variants_are_errors() {
    let w = open(&[
        Window::new(Layout::V2, "quota").history(1),
        Window::new(Layout::V2, "popup").history(1),
    ]);
    page(
        &w,
        0,
        INTO_LAST_ANSWER,
        "When you hit a rate limit (quota exceeded), wait.",
    );
    let s = angrav_json(&["--session", w.id(0), "status"], 0);
    assert_eq!(s["state"], "idle", "quoted in an answer: {s}");
    page(
        &w,
        0,
        AFTER_LAST_ANSWER,
        "You have exhausted your quota. You can resume using this model at 9:15 AM.",
    );
    let s = angrav_json(&["--session", w.id(0), "status"], 0);
    assert_eq!(s["state"], "error", "{s}");
    assert_eq!(s["quota_resume"], "9:15 AM", "{s}");
    page(&w, 1, AFTER_LAST_ANSWER, "Something went wrong");
    let s = angrav_json(&["--session", w.id(1), "status"], 0);
    assert_eq!(s["state"], "error", "{s}");
    assert_eq!(s["error"], "Something went wrong", "{s}");
}

#[test]
fn status_reads_the_title_mode_and_model_where_the_page_shows_them() {
    let w = open(&[
        Window::new(Layout::V2, "about").history(1),
        Window::new(Layout::V2, "about-empty"),
        Window::new(Layout::Current, "about-none").history(1),
    ]);
    let s = angrav_json(&["--session", w.id(0), "status"], 0);
    assert_eq!(s["title"], "earlier question 1", "{s}");
    assert_eq!(s["mode"], "Fast", "{s}");
    assert_eq!(s["model"], "Gemini 3 Pro (High)", "{s}");
    // `Agent` is the header of an empty chat, not a title.
    let s = angrav_json(&["--session", w.id(1), "status"], 0);
    assert_eq!(s["title"], Value::Null, "{s}");
    assert_eq!(s["model"], "Gemini 3 Pro (High)", "{s}");
    let s = angrav_json(&["--session", w.id(2), "status"], 0);
    assert_eq!(
        (&s["title"], &s["mode"], &s["model"]),
        (&Value::Null, &Value::Null, &Value::Null),
        "{s}"
    );
}

/// A watch reads each row once and keeps it until a change touches it: a change deep
/// in an old row must still be seen.
#[test]
fn a_watch_sees_a_change_deep_in_an_old_turn() {
    let w = open(&[Window::new(Layout::Current, "deep").history(3)]);
    let mut panel = w.panel(0);
    let before = panel.probe().unwrap();
    assert_eq!(before.answer_blocks, 3);
    // The page streams into the last answer, then adds an answer inside the first turn.
    panel
        .call_function(
            "function () {
              const answers = document.querySelectorAll('.rendered-markdown');
              setTimeout(() => { const p = document.createElement('p'); p.textContent = 'more'; answers[2].appendChild(p); }, 50);
              setTimeout(() => { const d = document.createElement('div'); d.className = 'prose'; d.textContent = 'late'; answers[0].parentElement.parentElement.appendChild(d); }, 100);
            }",
            &[],
        )
        .unwrap();
    let after = panel
        .watch(&before.key, std::time::Duration::from_secs(10))
        .unwrap();
    assert_eq!(after.answer_blocks, 4, "{after:?}");
}

/// The demo, with no Antigravity answering, runs the simulated one: a window of every
/// layout, the 2.x one included, each answering its prompt.
#[test]
fn the_demo_includes_a_2x_window() {
    let o = common::angrav_bin()
        .args(["--cdp", "127.0.0.1:1", "--json", "demo"])
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let demo: Value = serde_json::from_slice(&o.stdout).expect("one JSON document");
    let list = &demo["sessions"];
    let layouts: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["layout"].as_str().unwrap())
        .collect();
    assert!(layouts.contains(&"v2"), "{list}");
    let report = &demo["report"];
    for s in report["sessions"].as_array().unwrap() {
        assert_eq!(s["status"], "done", "{report}");
    }
}

/// A panel re-rendered as a whole (its root replaced) is followed by a running watch:
/// it reports the new panel's state when it shows, not only at its timeout.
#[test]
fn a_watch_follows_a_panel_replaced_by_a_new_one() {
    let w = open(&[Window::new(Layout::V2, "rerender").history(1)]);
    let mut panel = w.panel(0);
    let before = panel.probe().unwrap();
    assert_eq!(before.state, angrav::panel::State::Idle);
    panel
        .call_function(
            "function () {
              setTimeout(() => {
                const old = document.querySelector('.antigravity-agent-side-panel');
                const fresh = old.cloneNode(true);
                fresh.querySelector('button.hidden[data-tooltip-id=\"input-send-button-cancel-tooltip\"]').classList.remove('hidden');
                old.replaceWith(fresh);
                // Idle again later: a watch that missed the new panel ends idle.
                setTimeout(() => fresh.querySelector('[data-tooltip-id=\"input-send-button-cancel-tooltip\"]:not(.invisible)').classList.add('hidden'), 5000);
              }, 500);
            }",
            &[],
        )
        .unwrap();
    let after = panel
        .watch(&before.key, std::time::Duration::from_secs(10))
        .unwrap();
    assert_eq!(after.state, angrav::panel::State::Thinking, "{after:?}");
}

/// What one watch read is handed to the next: a change between the two, deep in an
/// old turn, must still be seen.
#[test]
fn a_change_between_two_watches_is_seen_by_the_second() {
    let w = open(&[Window::new(Layout::Current, "between").history(3)]);
    let mut panel = w.panel(0);
    let s0 = panel.probe().unwrap();
    panel
        .call_function(
            "function () { setTimeout(() => document.querySelector('[data-tooltip-id=\"input-send-button-cancel-tooltip\"]').classList.remove('hidden'), 300); }",
            &[],
        )
        .unwrap();
    let s1 = panel
        .watch(&s0.key, std::time::Duration::from_secs(10))
        .unwrap();
    assert_eq!(s1.state, angrav::panel::State::Thinking, "{s1:?}");
    panel
        .call_function(
            "function () { const a = document.querySelector('.rendered-markdown'); const d = document.createElement('div'); d.className = 'prose'; d.textContent = 'late'; a.parentElement.parentElement.appendChild(d); }",
            &[],
        )
        .unwrap();
    let s2 = panel
        .watch(&s1.key, std::time::Duration::from_secs(10))
        .unwrap();
    assert_eq!(s2.answer_blocks, 4, "{s2:?}");
}

/// The same script on every layout in every arrangement of its markup (wrapped once
/// more, a container holding the whole panel, no container id, cards in a popup
/// outside the panel): the same results everywhere.
#[test]
fn every_layout_in_every_arrangement_reads_and_acts_alike() {
    use angrav::sim::Arrangement;
    std::thread::scope(|scope| {
        for layout in Layout::ALL {
            scope.spawn(move || {
                for arrange in Arrangement::ALL {
                    arrangement_script(layout, arrange);
                }
            });
        }
    });
}

fn arrangement_script(layout: Layout, arrange: angrav::sim::Arrangement) {
    let what = format!("{} {}", layout.name(), arrange.name());
    let win = |start: &str| {
        Window::new(layout, "arranged")
            .arrange(arrange)
            .scenario("instant")
            .start(start)
    };
    let w = open(&[win("idle"), win("approval"), win("error"), win("quota")]);
    let s = angrav_json(&["--session", w.id(0), "status"], 0);
    assert_eq!(s["state"], "idle", "{what}: {s}");
    two_turns(w.id(0), &what);
    let s = angrav_json(&["--session", w.id(0), "status"], 0);
    assert_eq!(
        (&s["state"], &s["user_messages"], &s["agent_messages"]),
        (&json!("idle"), &json!(2), &json!(2)),
        "{what}: {s}"
    );
    assert_eq!(s["unreadable"], json!([]), "{what}: {s}");

    let s = angrav_json(&["--session", w.id(1), "status"], 0);
    assert_eq!(s["state"], "awaiting_approval", "{what}: {s}");
    assert_eq!(s["approval"]["kind"], "command", "{what}: {s}");
    assert_eq!(s["approval"]["command"], "cargo test", "{what}: {s}");
    assert_eq!(
        s["approvals"][0]["choices"],
        json!([{ "label": "Run" }, { "label": "Reject" }]),
        "{what}: {s}"
    );
    let place = if arrange == angrav::sim::Arrangement::Popup {
        "popup"
    } else {
        "conversation"
    };
    assert_eq!(s["approvals"][0]["where"], place, "{what}: {s}");
    let r = angrav_json(&["--session", w.id(1), "approve"], 0);
    assert_eq!(r["pressed"], "Run", "{what}: {r}");
    assert_eq!(common::pressed(&w, 1), ["Run"], "{what}");
    assert_eq!(r["state"], "idle", "{what}: {r}");

    let s = angrav_json(&["--session", w.id(2), "status"], 0);
    assert_eq!(s["state"], "error", "{what}: {s}");
    assert_eq!(s["error"], "Agent terminated due to error", "{what}: {s}");
    let s = angrav_json(&["--session", w.id(3), "status"], 0);
    assert_eq!(s["state"], "error", "{what}: {s}");
    assert_eq!(s["quota_resume"], "5:42 PM", "{what}: {s}");
}
