//! What commands do when no session is named. This binary has its browser to itself,
//! so "every session" means the windows this test opens.

mod common;

use angrav::panel::Layout;
use angrav::sim::Window;
use common::{angrav, angrav_json, open, stderr};

#[test]
fn without_session_one_window_is_implied_and_fanout_takes_every_idle_one() {
    let one = open(&[Window::new(Layout::LegacyTarget, "only").history(1)]);
    let s = angrav_json(&["status"], 0);
    assert_eq!(s["session"]["target_id"], one.id(0));

    let more = open(&[
        Window::new(Layout::Current, "second"),
        Window::new(Layout::LegacyFrame, "busy").start("thinking"),
    ]);
    let o = angrav(&["status"]);
    assert_eq!(o.status.code(), Some(3));
    assert!(
        stderr(&o).contains("several sessions are open; choose one with --session"),
        "{}",
        stderr(&o)
    );

    let report = angrav_json(&["sessions", "fanout", "to every idle chat"], 0);
    let sessions = report["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2, "the busy chat is not chosen: {report}");
    assert!(
        sessions
            .iter()
            .all(|s| s["status"] == "done" && s["state"] == "idle"),
        "{report}"
    );
    assert_eq!(one.received(0), ["to every idle chat"]);
    assert_eq!(more.received(0), ["to every idle chat"]);
    assert!(more.received(1).is_empty());

    // sessions wait with no --session: all of them, the busy one still pending.
    let report = angrav_json(
        &["sessions", "wait", "--timeout", "2s", "--settle", "100ms"],
        124,
    );
    let pending: Vec<&str> = report["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["status"] == "pending")
        .map(|s| s["session"]["target_id"].as_str().unwrap())
        .collect();
    assert_eq!(pending, [more.id(1)]);
}
