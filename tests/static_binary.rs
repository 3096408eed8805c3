//! The release build as users get it: one statically linked executable, run against
//! the simulated Antigravity.

mod common;

use std::path::PathBuf;
use std::process::Command;

use angrav::panel::Layout;
use angrav::sim::Window;
use serde_json::Value;

const TARGET: &str = "x86_64-unknown-linux-gnu";
/// The budget: 2.5 MiB held until `serve`, the dashboard, dispatch and the journal
/// came in; 3 MiB until the language server (its client and simulated server); 3.25 MiB
/// until approvals became objects with ids and events of their own.
const MAX_SIZE: u64 = 3_670_016; // 3.5 MiB

/// Builds it exactly as the README says, in a target directory of its own.
fn build_static() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let target_dir = root.join("target").join("static");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(&root)
        .env("RUSTFLAGS", "-C target-feature=+crt-static")
        .args([
            "build",
            "--release",
            "--bin",
            "angrav",
            "--target",
            TARGET,
            "--target-dir",
        ])
        .arg(&target_dir)
        .output()
        .expect("run cargo");
    assert!(
        out.status.success(),
        "static build failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    target_dir.join(TARGET).join("release").join("angrav")
}

#[test]
fn the_static_release_binary_is_small_and_works() {
    let bin = build_static();
    let ldd = Command::new("ldd").arg(&bin).output().expect("ldd");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&ldd.stdout),
        String::from_utf8_lossy(&ldd.stderr)
    );
    assert!(
        said.contains("not a dynamic executable") || said.contains("statically linked"),
        "ldd: {said}"
    );
    let size = std::fs::metadata(&bin).unwrap().len();
    assert!(size <= MAX_SIZE, "{size} bytes");

    let w = common::open(&[
        Window::new(Layout::Current, "static-a"),
        Window::new(Layout::LegacyTarget, "static-b"),
    ]);
    let port = common::sim().chromium().port();
    // Both an IP address and `localhost` resolve without the system's resolver libraries.
    for endpoint in [format!("127.0.0.1:{port}"), format!("localhost:{port}")] {
        let run = |args: &[&str]| {
            let o = Command::new(&bin)
                .env("ANGRAV_STATE_DIR", common::state_dir())
                .arg("--cdp")
                .arg(&endpoint)
                .args(args)
                .output()
                .unwrap();
            assert!(
                o.status.success(),
                "{args:?}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            serde_json::from_slice::<Value>(&o.stdout).unwrap()
        };
        let list = run(&["--json", "sessions", "list"]);
        assert!(
            list.as_array()
                .unwrap()
                .iter()
                .any(|s| s["session"]["target_id"] == w.id(1) && s["layout"] == "legacy-target")
        );
        let report = run(&[
            "--json",
            "sessions",
            "fanout",
            "from the static binary",
            "--session",
            w.id(0),
            "--session",
            w.id(1),
        ]);
        for s in report["sessions"].as_array().unwrap() {
            assert_eq!(s["status"], "done", "{s}");
        }
    }
    assert_eq!(
        w.received(0),
        ["from the static binary", "from the static binary"]
    );
    let v = Command::new(&bin)
        .env("ANGRAV_STATE_DIR", common::state_dir())
        .arg("--version")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&v.stdout).starts_with("angrav "));
}
