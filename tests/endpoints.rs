//! Two browsers (two endpoints) in one registry.

mod common;

use angrav::panel::Layout;
use angrav::sim::{Simulator, Window};
use common::{stderr, stdout};
use serde_json::Value;

#[test]
fn two_endpoints_in_one_registry() {
    let second = Simulator::start().expect("a second Chromium");
    let a = common::open(&[
        Window::new(Layout::Current, "ep-one"),
        Window::new(Layout::LegacyTarget, "ep-two"),
    ]);
    let b = second
        .open(&Window::new(Layout::LegacyFrame, "ep-three").scenario("flicker"))
        .unwrap();
    let b2 = second
        .open(&Window::new(Layout::Current, "ep-four"))
        .unwrap();
    let cdp_b = second.endpoint().label().to_string();
    let run = |args: &[&str]| {
        let mut all = vec!["--cdp", &cdp_b];
        all.extend_from_slice(args);
        common::angrav(&all)
    };
    let o = run(&["--json", "sessions", "list"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let list: Value = serde_json::from_slice(&o.stdout).unwrap();
    let find = |id: &str| common::by_target(&list, id).cloned().expect("listed");
    assert_eq!(
        find(a.id(0))["session"]["endpoint"],
        common::sim().endpoint().label()
    );
    assert_eq!(find(&b.id)["session"]["endpoint"], cdp_b.as_str());
    assert_eq!(find(&b.id)["layout"], "legacy-frame");
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["session"]["id"].as_str().unwrap())
        .collect();
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(ids.len(), unique.len(), "ids are unique across endpoints");
    // A fan-out across both browsers, by workspace name and id.
    let o = run(&[
        "--json",
        "sessions",
        "fanout",
        "both browsers",
        "--session",
        "ep-one",
        "--session",
        "ep-three",
        "--session",
        a.id(1),
        "--session",
        &b2.id,
    ]);
    assert_eq!(o.status.code(), Some(0), "{}\n{}", stdout(&o), stderr(&o));
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    for s in report["sessions"].as_array().unwrap() {
        assert_eq!(s["status"], "done", "{s}");
        assert!(
            s["answer"]["content"]
                .as_str()
                .unwrap()
                .contains("both browsers")
        );
    }
    assert_eq!(report["sessions"].as_array().unwrap().len(), 4);
}
