//! `doctor`, finding the endpoint without `--cdp`, and the Agent Manager in
//! `sessions list --all`.

mod common;

use std::net::{SocketAddr, TcpStream};

use std::time::Duration;

use angrav::panel::Layout;
use angrav::sim::Window;
use common::{angrav, angrav_json, stderr, stdout};
use serde_json::Value;

fn role<'a>(session: &'a Value, name: &str) -> &'a Value {
    session["roles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["role"] == name)
        .unwrap_or_else(|| panic!("no role {name} in {session}"))
}

#[test]
fn doctor_names_the_role_whose_marker_is_gone() {
    let w = common::open(&[Window::new(Layout::Current, "healthy").history(1)]);
    let id = w.id(0);
    let report = angrav_json(&["doctor", "--session", id], 0);
    assert_eq!(report["clean"], true, "{report}");
    let session = &report["sessions"][0];
    assert_eq!(session["status"]["state"], "idle");
    assert_eq!(session["status"]["layout"], "current");
    assert_eq!(role(session, "input")["count"], 1);
    assert_eq!(role(session, "user_message")["count"], 1);

    // The editor loses the markers the input role knows it by.
    w.panel(0)
        .call_function(
            "function () { for (const e of document.querySelectorAll('[data-lexical-editor]')) { \
             e.removeAttribute('data-lexical-editor'); e.removeAttribute('role'); } }",
            &[],
        )
        .unwrap();
    let report = angrav_json(&["doctor", "--session", id], 1);
    let session = &report["sessions"][0];
    assert_eq!(role(session, "input")["matched"], Value::Null, "{session}");
    assert_eq!(role(session, "panel_root")["count"], 1);
    assert_eq!(session["status"]["state"], "unreadable", "{session}");
    let warnings = session["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0]
            .as_str()
            .unwrap()
            .starts_with("input cannot be read"),
        "{warnings:?}"
    );
    let o = angrav(&["doctor", "--session", id]);
    assert_eq!(o.status.code(), Some(1));
    let text = stdout(&o);
    assert!(
        text.lines()
            .any(|l| l.trim_start().starts_with("input ") && l.ends_with("none matched")),
        "{text}"
    );
    assert!(text.contains("warning: input cannot be read"), "{text}");

    // The user's fix: the editor's new marker laid over the built-in profile.
    let file = std::env::temp_dir().join(format!("angrav-fix-{}.json", std::process::id()));
    std::fs::write(
        &file,
        r##"{"extends": "default", "input": ["#antigravity\\.agentSidePanelInputBox [contenteditable=\"true\"]"]}"##,
    )
    .unwrap();
    let report = angrav_json(
        &[
            "--selectors",
            file.to_str().unwrap(),
            "doctor",
            "--session",
            id,
        ],
        0,
    );
    std::fs::remove_file(&file).unwrap();
    assert_eq!(role(&report["sessions"][0], "input")["count"], 1);
}

#[test]
fn doctor_names_an_invalid_selector_of_a_user_profile() {
    let w = common::open(&[Window::new(Layout::LegacyFrame, "profiled")]);
    let file = std::env::temp_dir().join(format!("angrav-doctor-{}.json", std::process::id()));
    std::fs::write(
        &file,
        r#"{"extends": "default", "busy": ["button:has-text(Stop)"]}"#,
    )
    .unwrap();
    let path = file.to_str().unwrap();
    // Every other command skips the selector the browser refuses...
    let status = angrav_json(&["--selectors", path, "status", "--session", w.id(0)], 0);
    assert_eq!(status["state"], "idle");
    // ...doctor names it, with its role.
    let o = angrav(&["--selectors", path, "doctor", "--session", w.id(0)]);
    std::fs::remove_file(&file).unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("warning: busy: invalid alternative 'button:has-text(Stop)'"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn without_cdp_the_endpoint_is_found_through_devtools_active_port() {
    let default = SocketAddr::from(([127, 0, 0, 1], 9222));
    if TcpStream::connect_timeout(&default, Duration::from_secs(1)).is_ok() {
        panic!(
            "something listens on 127.0.0.1:9222 on this machine, which angrav rightly \
             prefers; this test needs the port closed to show the DevToolsActivePort search"
        );
    }
    let w = common::open(&[Window::new(Layout::Current, "found")]);
    let sim = common::sim();
    // The test Chromium runs with --remote-debugging-port=0 and writes its port there.
    let dir = sim.chromium().user_data_dir();
    let o = common::angrav_bin()
        .args(["--json", "doctor", "--session", w.id(0)])
        .env("ANGRAV_USER_DATA_DIR", dir)
        .env_remove("ANGRAV_CDP")
        .env_remove("BROWSER_CDP_ENDPOINT")
        .env_remove("ANGRAV_SELECTORS")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    let endpoint = sim.endpoint().label();
    assert_eq!(report["endpoint"]["found_by"], "devtools_active_port");
    assert_eq!(report["endpoint"]["urls"], serde_json::json!([endpoint]));
    assert_eq!(report["sessions"][0]["session"]["target_id"], w.id(0));
    assert!(
        stderr(&o).contains(&format!(
            "angrav: using {endpoint} (DevToolsActivePort in {})",
            dir.display()
        )),
        "{}",
        stderr(&o)
    );
}

#[test]
fn sessions_list_all_shows_the_agent_manager_as_a_manager() {
    let w = common::open(&[Window::new(Layout::LegacyTarget, "beside-manager")]);
    let manager = common::sim().open_manager().unwrap();
    let closer = common::Windows(vec![manager.clone()]);
    let list = angrav_json(&["sessions", "list"], 0);
    assert!(common::by_target(&list, &manager.id).is_none());
    assert_eq!(
        common::by_target(&list, w.id(0)).unwrap()["kind"],
        "session"
    );

    let list = angrav_json(&["sessions", "list", "--all"], 0);
    let m = common::by_target(&list, &manager.id).expect("the manager is listed");
    assert_eq!(m["kind"], "manager");
    assert_eq!(m["state"], Value::Null);
    assert_eq!(m["session"]["title"], "Agent Manager");
    let s = common::by_target(&list, w.id(0)).unwrap();
    assert_eq!(
        (&s["kind"], &s["state"]),
        (&"session".into(), &"idle".into())
    );

    // Listed, but never taken for a session.
    let o = angrav(&["status", "--session", &manager.id]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    drop(closer);
}

/// A panel that shows but whose editor is gone is `unreadable` (naming the editor) in
/// `status`, `sessions list`, `sessions watch` and `doctor` (exit 1), never `idle`;
/// `prompt` refuses before typing anything.
#[test]
fn a_panel_without_its_editor_is_unreadable_everywhere_and_takes_no_prompt() {
    let w = common::open(&[
        Window::new(Layout::Current, "no-editor").history(1),
        Window::new(Layout::LegacyFrame, "no-editor-legacy").history(1),
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
    let line = || -> Value {
        serde_json::from_str(&rx.recv_timeout(Duration::from_secs(60)).expect("a line")).unwrap()
    };
    for _ in 0..2 {
        assert_eq!(line()["type"], "snapshot");
    }
    for i in 0..2 {
        w.panel(i)
            .call_function(
                "function () { document.querySelector('[contenteditable]').remove(); }",
                &[],
            )
            .unwrap();
    }
    let mut changed: Vec<Value> = (0..2).map(|_| line()).collect();
    changed.sort_by_key(|e| e["session"]["target_id"] != w.id(0));
    for (i, e) in changed.iter().enumerate() {
        assert_eq!(e["session"]["target_id"], w.id(i), "{e}");
        assert_eq!(
            (&e["previous"], &e["current"]),
            (&"idle".into(), &"unreadable".into()),
            "{e}"
        );
    }
    let list = angrav_json(&["sessions", "list"], 0);
    for i in 0..2 {
        let what = format!("window {i}");
        let s = angrav_json(&["--session", w.id(i), "status"], 0);
        assert_eq!(s["state"], "unreadable", "{what}: {s}");
        assert_eq!(s["unreadable"], serde_json::json!(["input"]), "{what}: {s}");
        let listed = common::by_target(&list, w.id(i)).unwrap();
        assert_eq!(listed["state"], "unreadable", "{what}: {listed}");
        let report = angrav_json(&["doctor", "--session", w.id(i)], 1);
        assert_eq!(report["sessions"][0]["status"]["state"], "unreadable");
        let o = angrav(&["--json", "--session", w.id(i), "prompt", "never typed"]);
        assert_eq!(o.status.code(), Some(1), "{what}");
        let err: Value = serde_json::from_str(&stderr(&o)).unwrap();
        assert_eq!(err["error"]["code"], "unreadable", "{what}: {err}");
        assert!(
            err["error"]["message"].as_str().unwrap().contains("input"),
            "{err}"
        );
        assert!(w.received(i).is_empty(), "{what}");
    }
}
