//! Every single-session command on every layout and state, in a real Chromium.

mod common;

use std::time::Duration;

use angrav::panel::{Layout, State};
use angrav::sim::Window;
use common::{angrav, angrav_in, angrav_json, open, stderr, stdout};
use serde_json::json;

const LAYOUTS: [Layout; 4] = Layout::ALL;

#[test]
fn sessions_list_shows_windows_of_every_layout_but_not_the_agent_manager() {
    let w = open(&[
        Window::new(Layout::Current, "list-a"),
        Window::new(Layout::LegacyFrame, "list-b"),
        Window::new(Layout::LegacyTarget, "list-c"),
        Window::new(Layout::Current, "list-d").closed_panel(),
    ]);
    let manager = common::sim().open_manager().unwrap();
    let list = angrav_json(&["sessions", "list"], 0);
    let find = |id: &str| common::by_target(&list, id).cloned();
    for (i, (layout, ws)) in [
        ("current", "list-a"),
        ("legacy-frame", "list-b"),
        ("legacy-target", "list-c"),
    ]
    .iter()
    .enumerate()
    {
        let s = find(w.id(i)).unwrap_or_else(|| panic!("window {i} listed: {list}"));
        assert_eq!(s["layout"], *layout);
        assert_eq!(s["session"]["workspace"], *ws);
        assert_eq!(s["state"], "idle");
        assert!(w.id(i).starts_with(s["session"]["id"].as_str().unwrap()));
        assert!(s["session"]["id"].as_str().unwrap().len() >= 6);
    }
    assert_eq!(find(w.id(3)).unwrap()["state"], "no_panel");
    assert!(
        find(&manager.id).is_none(),
        "the Agent Manager is not a session"
    );
    common::sim().close(&manager.id).unwrap();
}

#[test]
fn status_reads_every_state_in_every_layout() {
    for layout in LAYOUTS {
        let w = open(&[
            Window::new(layout, "st-idle").history(2),
            Window::new(layout, "st-busy").start("thinking"),
            Window::new(layout, "st-approval").start("approval"),
            Window::new(layout, "st-error").start("error"),
            Window::new(layout, "st-quota").start("quota"),
        ]);
        let status = |i: usize| angrav_json(&["--session", w.id(i), "status"], 0);
        let idle = status(0);
        assert_eq!(idle["state"], "idle", "{layout:?}: {idle}");
        assert_eq!(idle["layout"], layout.name());
        assert_eq!(idle["user_messages"], 2);
        assert_eq!(idle["agent_messages"], 2);
        assert_eq!(idle["input_editable"], true);
        let busy = status(1);
        assert_eq!(busy["state"], "thinking", "{layout:?}: {busy}");
        assert_eq!(busy["input_editable"], false);
        let approval = status(2);
        assert_eq!(
            approval["state"], "awaiting_approval",
            "{layout:?}: {approval}"
        );
        assert_eq!(
            approval["approvals"][0]["choices"],
            serde_json::json!([{"label": "Run"}, {"label": "Reject"}])
        );
        let error = status(3);
        assert_eq!(error["state"], "error", "{layout:?}: {error}");
        assert_eq!(error["error"], "Agent terminated due to error");
        let quota = status(4);
        assert_eq!(quota["state"], "error", "{layout:?}: {quota}");
        assert_eq!(quota["quota_resume"], "5:42 PM");
        assert!(
            quota["error"]
                .as_str()
                .unwrap()
                .contains("Model quota limit exceeded")
        );
    }
}

#[test]
fn a_closed_panel_is_no_panel_and_commands_that_need_it_say_so() {
    let w = open(&[Window::new(Layout::Current, "closed").closed_panel()]);
    let s = angrav_json(&["--session", w.id(0), "status"], 0);
    assert_eq!(s["state"], "no_panel");
    for cmd in [
        &["prompt", "hello"][..],
        &["history"],
        &["output", "last"],
        &["new"],
        &["wait"],
    ] {
        let mut args = vec!["--session", w.id(0)];
        args.extend_from_slice(cmd);
        let o = angrav(&args);
        assert_eq!(o.status.code(), Some(1), "{cmd:?}");
        assert!(
            stderr(&o).contains("agent panel is not open"),
            "{cmd:?}: {}",
            stderr(&o)
        );
    }
}

/// Texts that break naive quoting, splicing or typing.
fn nasty_texts() -> Vec<String> {
    vec![
        r#"He said "hi" and 'bye'"#.into(),
        "back`ticks` and ${x} and `${y}`".into(),
        "</script><script>alert(1)</script>".into(),
        r"back\slashes \n \\ \u0041".into(),
        "line one\nline two\n\n  indented line\ttab".into(),
        "emoji 🎉👩‍💻 and right-to-left: שלום עולם مرحبا".into(),
    ]
}

#[test]
fn prompts_reach_the_agent_byte_exact_in_every_layout() {
    for layout in LAYOUTS {
        let w = open(&[Window::new(layout, "exact").scenario("instant")]);
        let mut sent = Vec::new();
        for text in nasty_texts() {
            let o = angrav(&["--session", w.id(0), "prompt", &text, "--wait"]);
            assert_eq!(
                o.status.code(),
                Some(0),
                "{layout:?} {text:?}: {}",
                stderr(&o)
            );
            sent.push(text);
        }
        // 100 KB, from stdin and from a file.
        let big: String = (0..100 * 1024)
            .map(|i| (b'a' + (i % 26) as u8) as char)
            .collect();
        let o = angrav_in(&["--session", w.id(0), "prompt", "-", "--wait"], &big);
        assert_eq!(o.status.code(), Some(0), "{layout:?} stdin: {}", stderr(&o));
        sent.push(big.clone());
        let file = std::env::temp_dir().join(format!(
            "angrav-prompt-{}-{}",
            std::process::id(),
            layout.name()
        ));
        let from_file = format!("{}\nfrom a file: \"quoted\" `x`", &big[..50_000]);
        std::fs::write(&file, &from_file).unwrap();
        let o = angrav(&[
            "--session",
            w.id(0),
            "prompt",
            "-f",
            file.to_str().unwrap(),
            "--wait",
        ]);
        std::fs::remove_file(&file).unwrap();
        assert_eq!(o.status.code(), Some(0), "{layout:?} file: {}", stderr(&o));
        sent.push(from_file);
        assert_eq!(w.received(0), sent, "{layout:?}");
    }
}

#[test]
fn prompt_wait_returns_only_once_its_own_answer_is_complete() {
    for layout in LAYOUTS {
        for (n, scenario) in ["", "late-busy", "flicker", "instant"].iter().enumerate() {
            let w = open(&[Window::new(layout, "turns").scenario(scenario).history(1)]);
            let o = angrav(&["--session", w.id(0), "prompt", "what now?", "--wait"]);
            assert_eq!(
                o.status.code(),
                Some(0),
                "{layout:?} {scenario}: {}",
                stderr(&o)
            );
            let answer = stdout(&o);
            // The answer to this prompt (turn 2), complete down to its last paragraph.
            assert!(
                answer.starts_with("## Answer 2"),
                "{layout:?} {scenario} ({n}): {answer}"
            );
            assert!(
                answer.trim_end().ends_with("Done."),
                "{layout:?} {scenario}: {answer}"
            );
            let s = angrav_json(&["--session", w.id(0), "status"], 0);
            assert_eq!(s["state"], "idle");
            assert_eq!(s["agent_messages"], 2);
        }
    }
}

#[test]
fn a_busy_agent_is_refused_not_interrupted() {
    let w = open(&[Window::new(Layout::Current, "busy").start("thinking")]);
    let o = angrav(&["--session", w.id(0), "prompt", "hello"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("prompt not accepted: the agent is busy (thinking)"),
        "{}",
        stderr(&o)
    );
    assert!(w.received(0).is_empty());
}

#[test]
fn wait_times_out_with_124_and_stops_on_approval_or_error() {
    let w = open(&[
        Window::new(Layout::LegacyFrame, "w-busy").start("thinking"),
        Window::new(Layout::LegacyTarget, "w-approval").start("approval"),
        Window::new(Layout::Current, "w-error").start("error"),
        Window::new(Layout::Current, "w-idle"),
    ]);
    let o = angrav(&["--session", w.id(0), "wait", "--timeout", "300ms"]);
    assert_eq!(o.status.code(), Some(124), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("still waiting for the agent (thinking)"),
        "{}",
        stderr(&o)
    );
    // With --json: the result on stdout, then the error on stderr as JSON, as any.
    let o = angrav(&["--json", "--session", w.id(0), "wait", "--timeout", "300ms"]);
    assert_eq!(o.status.code(), Some(124), "{}", stderr(&o));
    let result: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(result["timed_out"], true, "{result}");
    let error: serde_json::Value =
        serde_json::from_str(stderr(&o).trim()).unwrap_or_else(|e| panic!("{e}: {}", stderr(&o)));
    assert_eq!(error["error"]["code"], "timeout", "{error}");
    assert_eq!(error["error"]["exit"], 124, "{error}");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .ends_with("still waiting for the agent (thinking)"),
        "{error}"
    );
    let a = angrav_json(&["--session", w.id(1), "wait"], 1);
    assert_eq!(a["state"], "awaiting_approval");
    let e = angrav_json(&["--session", w.id(2), "wait"], 1);
    assert_eq!(e["state"], "error");
    let i = angrav_json(&["--session", w.id(3), "wait"], 0);
    assert_eq!(i["state"], "idle");
}

#[test]
fn a_prompt_that_ends_in_approval_or_error_is_reported_as_such() {
    for layout in LAYOUTS {
        let w = open(&[
            Window::new(layout, "p-approval").scenario("approval"),
            Window::new(layout, "p-error").scenario("error"),
        ]);
        let a = angrav_json(
            &["--session", w.id(0), "prompt", "run the tests", "--wait"],
            1,
        );
        assert_eq!(a["state"], "awaiting_approval", "{layout:?}");
        let e = angrav_json(&["--session", w.id(1), "prompt", "do it", "--wait"], 1);
        assert_eq!(e["state"], "error", "{layout:?}");
    }
}

/// A question form stops the agent for the user, as an approval does: a wait ends
/// there (exit 1, `awaiting_input` with the question; the turn's outcome `input`),
/// and the agent is never taken as idle: nothing is sent, read as its answer, or
/// started meanwhile.
#[test]
fn a_question_form_ends_a_wait_and_is_never_taken_as_idle() {
    let w = open(&[
        Window::new(Layout::V2, "q-prompted").scenario("question"),
        Window::new(Layout::V2, "q-shown").start("question"),
    ]);
    let asks = json!({ "text": "Which database should the service use?", "options": ["Postgres", "SQLite"] });
    let q = angrav_json(
        &[
            "--session",
            w.id(0),
            "prompt",
            "pick a database",
            "--wait",
            "--timeout",
            "30s",
        ],
        1,
    );
    assert_eq!(
        (&q["status"], &q["state"]),
        (&json!("done"), &json!("awaiting_input")),
        "{q}"
    );
    assert_eq!(q["question"], asks, "{q}");
    let o = angrav(&["--session", w.id(1), "wait", "--timeout", "30s"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("awaiting_input (question: Which database should the service use? options: Postgres, SQLite)"),
        "{}",
        stdout(&o)
    );
    let turns = angrav_json(&["turns", "--session", w.id(0)], 0);
    assert_eq!(turns[0]["outcome"], "input", "{turns}");
    for i in [0, 1] {
        let o = angrav(&["--session", w.id(i), "new"]);
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        assert!(
            stderr(&o).contains("busy (awaiting_input)"),
            "{}",
            stderr(&o)
        );
        let o = angrav(&["--session", w.id(i), "output", "last"]);
        assert_eq!(
            (o.status.code(), stdout(&o)),
            (Some(1), String::new()),
            "{}",
            stderr(&o)
        );
        assert!(
            stderr(&o).contains("the agent is awaiting_input"),
            "{}",
            stderr(&o)
        );
    }
    // Sent once the question is answered and the agent idle, not before.
    let o = angrav(&[
        "--session",
        w.id(1),
        "prompt",
        "next",
        "--when-idle",
        "--timeout",
        "1s",
    ]);
    assert_eq!(o.status.code(), Some(124), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("idle (awaiting_input)"),
        "{}",
        stderr(&o)
    );
    assert!(w.received(1).is_empty(), "{:?}", w.received(1));
}

#[test]
fn output_history_and_new_conversation_in_every_layout() {
    for layout in LAYOUTS {
        let w = open(&[Window::new(layout, "out").history(2)]);
        let id = w.id(0);
        let last = angrav(&["--session", id, "output", "last"]);
        let want = "## Answer 2\n\nYou asked: `earlier question 2`. Here is **the plan** for out and [the docs](https://example.com/docs).\n\n- read the code\n- write the test\n\n```rust\nfn answer() -> u32 {\n    2\n}\n```\n\n```sh\ncargo test\n```\n\nDone.\n";
        assert_eq!(stdout(&last), want, "{layout:?}");
        let full = angrav_json(&["--session", id, "output", "last"], 0);
        assert_eq!(full["thoughts"], "Earlier thoughts 2");
        assert_eq!(full["code_blocks"][0]["lang"], "rust");
        let code = angrav_json(&["--session", id, "output", "code", "--lang", "sh"], 0);
        assert_eq!(
            code,
            serde_json::json!([{ "lang": "sh", "code": "cargo test" }])
        );
        let history = angrav_json(&["--session", id, "history"], 0);
        let roles: Vec<&str> = history
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["role"].as_str().unwrap())
            .collect();
        assert_eq!(roles, ["user", "agent", "user", "agent"], "{layout:?}");
        assert_eq!(history[2]["content"], "earlier question 2");
        let new = angrav_json(&["--session", id, "new"], 0);
        assert_eq!(new["new_conversation"], true);
        assert_eq!(
            angrav_json(&["--session", id, "history"], 0),
            serde_json::json!([])
        );
        let again = angrav_json(&["--session", id, "new"], 0);
        assert_eq!(
            again["new_conversation"], false,
            "an empty chat needs no new conversation"
        );
        let o = angrav(&["--session", id, "output", "last"]);
        assert_eq!(o.status.code(), Some(1));
        assert!(stderr(&o).contains("no answer"), "{}", stderr(&o));
    }
}

/// `output last` gives the last turn's answer only once it has one, never an earlier
/// turn's; `new` says a new conversation only when the chat shows one.
#[test]
fn output_last_waits_for_its_turn_and_new_is_seen_to_empty_the_chat() {
    let w = open(&[
        Window::new(Layout::Current, "late-turn")
            .history(1)
            .scenario("start-delay=60000"),
        Window::new(Layout::V2, "slow-turn")
            .history(1)
            .scenario("slow"),
    ]);
    for (i, prompt, why) in [
        (0, "third", "its prompt is not answered"),
        (1, "fourth", "the agent is thinking"),
    ] {
        let o = angrav(&[
            "--session",
            w.id(i),
            "prompt",
            prompt,
            "--start-within",
            "1ms",
        ]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let o = angrav(&["--session", w.id(i), "output", "last"]);
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        assert_eq!(stdout(&o), "", "an earlier turn's answer was printed");
        assert!(stderr(&o).contains(why), "{}", stderr(&o));
    }
    // A new-conversation button that does nothing: nothing is claimed.
    w.panel(0)
        .call_function(
            "function () { const b = document.querySelector('[data-tooltip-id=\"new-conversation-tooltip\"]'); b.replaceWith(b.cloneNode(true)); }",
            &[],
        )
        .unwrap();
    let o = angrav(&["--json", "--session", w.id(0), "new"]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert_eq!(stdout(&o), "");
    assert!(stderr(&o).contains("still shows"), "{}", stderr(&o));
}

#[test]
fn unknown_and_ambiguous_sessions_exit_3_and_list_what_there_is() {
    let w = open(&[
        Window::new(Layout::Current, "pick-a"),
        Window::new(Layout::Current, "pick-b"),
    ]);
    let o = angrav(&["--session", "zzzzzzzz", "status"]);
    assert_eq!(o.status.code(), Some(3));
    let msg = stderr(&o);
    assert!(msg.contains("no session matches 'zzzzzzzz'"), "{msg}");
    assert!(
        msg.contains("(pick-a)") && msg.contains("(pick-b)"),
        "{msg}"
    );
    // No --session with several chats open (this test's two at least): ambiguous.
    let o = angrav(&["status"]);
    assert_eq!(o.status.code(), Some(3));
    assert!(
        stderr(&o).contains("several sessions are open"),
        "{}",
        stderr(&o)
    );
    // An empty --session names nothing: a usage error, not a match of every chat.
    let o = angrav(&["--session", "", "status"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    // A workspace name picks its window; any unique id prefix does too.
    let s = angrav_json(&["--session", "pick-b", "status"], 0);
    assert_eq!(s["session"]["target_id"], w.id(1));
    let s = angrav_json(&["--session", &w.id(0)[..12].to_lowercase(), "status"], 0);
    assert_eq!(s["session"]["target_id"], w.id(0));
}

#[test]
fn the_selector_profile_is_data_the_user_can_replace() {
    let w = open(&[Window::new(Layout::Current, "profile")]);
    let dir = std::env::temp_dir();
    let custom = dir.join(format!("angrav-profile-{}.json", std::process::id()));
    std::fs::write(&custom, r#"{"panel_root": [".not-this-build"]}"#).unwrap();
    let status = |profile: Option<&std::path::Path>| {
        let mut args = vec!["--session", w.id(0)];
        if let Some(p) = profile {
            args.extend(["--selectors", p.to_str().unwrap()]);
        }
        args.push("status");
        angrav_json(&args, 0)["state"].clone()
    };
    // The window's world holds the library of the built-in profile from the first
    // call; each profile is read with its own, in either order.
    assert_eq!(status(None), "idle");
    assert_eq!(status(Some(&custom)), "no_panel");
    assert_eq!(status(None), "idle");
    std::fs::write(&custom, r#"{"busy": 3}"#).unwrap();
    let o = angrav(&[
        "--session",
        w.id(0),
        "--selectors",
        custom.to_str().unwrap(),
        "status",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains(custom.to_str().unwrap()) && stderr(&o).contains("list of strings"),
        "{}",
        stderr(&o)
    );
    std::fs::remove_file(&custom).unwrap();
}

#[test]
fn a_reloaded_window_is_found_again() {
    for layout in LAYOUTS {
        let w = open(&[Window::new(layout, "reload").history(1)]);
        let mut panel = w.panel(0);
        let mark = "function (v) { if (v) document.body.dataset.angravTest = v; return document.body.dataset.angravTest || null; }";
        assert_eq!(
            panel.call_function(mark, &["before".into()]).unwrap(),
            "before"
        );
        let mut page =
            cdp::Connection::open(w.0[0].web_socket_debugger_url.as_deref().unwrap()).unwrap();
        page.call(
            &cdp::methods::page::Reload {},
            std::time::Duration::from_secs(10),
        )
        .unwrap();
        angrav::sim::wait_loaded(&mut page).unwrap();
        // The old world went with the old document; the probe finds the panel again.
        let snap = panel.probe().unwrap();
        assert_eq!(snap.layout, Some(layout));
        assert_eq!(snap.agent_messages, 1);
        assert_eq!(
            panel
                .call_function(mark, &[serde_json::Value::Null])
                .unwrap(),
            serde_json::Value::Null
        );
    }
}

#[test]
fn the_probe_library_is_installed_once_per_window() {
    for layout in LAYOUTS {
        let w = open(&[Window::new(layout, "kept").history(1)]);
        let mut panel = w.panel(0);
        let mark = "function (v) { const [a] = globalThis.__angravLibraries.values(); if (v) a.mark = v; return a.mark || null; }";
        assert_eq!(panel.call_function(mark, &["kept".into()]).unwrap(), "kept");
        // Later commands, in their own connections, find it there and keep it: a list
        // during a prompt's delivery leaves that delivery's library as it was.
        angrav_json(&["sessions", "list"], 0);
        assert_eq!(
            angrav_json(&["--session", w.id(0), "status"], 0)["state"],
            "idle"
        );
        assert_eq!(
            panel
                .call_function(mark, &[serde_json::Value::Null])
                .unwrap(),
            "kept",
            "{layout:?}"
        );
    }
}

/// Each build and profile installs its own library in a window's world; the world
/// keeps the eight used last, and one let go is installed again when next used.
#[test]
fn a_window_keeps_the_libraries_of_the_profiles_used_last() {
    for layout in [Layout::Current, Layout::LegacyTarget] {
        let w = open(&[Window::new(layout, "kept-few").history(1)]);
        // Profiles of their own: a list another test runs uses the default one.
        let attach = |n: usize| {
            let mut p = angrav::profile::Profile::default();
            p.noise.push(format!("^not noise {n}$"));
            angrav::panel::Panel::attach(&w.window_ref(0), &p)
                .expect("attach")
                .0
        };
        let mut first = attach(0);
        // The library used last.
        let mark =
            "function () { [...globalThis.__angravLibraries.values()].pop().mark = 'first'; }";
        first.call_function(mark, &[]).unwrap();
        let marked = "function () { return [...globalThis.__angravLibraries.values()].some((a) => a.mark === 'first'); }";
        let size = "function () { return globalThis.__angravLibraries.size; }";
        let mut others: Vec<angrav::panel::Panel> = (1..=9).map(attach).collect();
        assert_eq!(first.call_function(size, &[]).unwrap(), 8, "{layout:?}");
        assert_eq!(first.call_function(marked, &[]).unwrap(), false);
        // Let go, installed again: a library without the mark, and still eight.
        assert_eq!(first.probe().unwrap().agent_messages, 1, "{layout:?}");
        assert_eq!(first.call_function(marked, &[]).unwrap(), false);
        assert_eq!(first.call_function(size, &[]).unwrap(), 8);
        for p in &mut others {
            assert_eq!(p.probe().unwrap().agent_messages, 1, "{layout:?}");
        }
    }
}

#[test]
fn a_ws_url_names_one_window_directly() {
    let w = open(&[Window::new(Layout::LegacyFrame, "direct").history(1)]);
    let ws = w.0[0].web_socket_debugger_url.clone().unwrap();
    let o = common::angrav_bin()
        .args(["--cdp", &ws, "--json", "status"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let s: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(s["session"]["target_id"], w.id(0));
    assert_eq!(s["state"], "idle");
    assert_eq!(s["layout"], "legacy-frame");
}

/// `new` never cuts off an agent at work: the page checks the state as it clicks, so
/// a chat that started thinking after angrav looked keeps its conversation. Nor is a
/// chat angrav cannot read taken for an idle one.
#[test]
fn new_leaves_a_working_or_unreadable_agent_alone() {
    let w = open(&[
        Window::new(Layout::Current, "new-busy")
            .history(1)
            .scenario("slow"),
        Window::new(Layout::LegacyFrame, "new-busy")
            .history(1)
            .scenario("slow"),
    ]);
    let blind = std::env::temp_dir().join(format!("angrav-noinput-{}.json", std::process::id()));
    std::fs::write(&blind, r#"{"input": [".not-an-editor"]}"#).unwrap();
    let blind = blind.to_str().unwrap();
    for i in 0..2 {
        let o = angrav(&["--session", w.id(i), "--selectors", blind, "new"]);
        assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
        assert!(
            stderr(&o).contains("nothing pressed: the agent is unreadable"),
            "{}",
            stderr(&o)
        );
        let mut panel = w.panel(i);
        let idle = panel.probe().unwrap();
        assert_eq!((idle.state, idle.user_messages), (State::Idle, 1));
        let o = angrav(&["--session", w.id(i), "prompt", "keep at it"]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let mut now = idle.clone();
        for _ in 0..100 {
            if now.state == State::Thinking {
                break;
            }
            now = panel.watch(&now.key, Duration::from_secs(10)).unwrap();
        }
        assert_eq!(now.state, State::Thinking, "{now:?}");
        // Asked with what it saw before the prompt: idle.
        let e = angrav::approve::new_conversation(&mut panel, &idle).unwrap_err();
        assert!(
            e.to_string()
                .contains("nothing pressed: the agent is busy (thinking)"),
            "{e}"
        );
        assert_eq!(panel.probe().unwrap().user_messages, 2);
    }
    std::fs::remove_file(blind).unwrap();
}
