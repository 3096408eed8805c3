//! The demo, as a newcomer runs it with no Antigravity open: the simulated chats,
//! each answering in its own words, one stopping for approval and one in error, a
//! conversation only the language server knows and the quota, and nothing left in
//! its TMPDIR afterwards (Chromium's own temporary files included).

mod common;

use std::path::PathBuf;
use std::process::Stdio;

/// An empty directory of this test's own, for the demo's TMPDIR (short: Chromium's
/// socket path inside must fit in 107 bytes).
fn empty_tmpdir(run: usize) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("angrav-demo-{}-{run}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    dir
}

/// What is in `dir`.
fn left_in(dir: &PathBuf) -> Vec<String> {
    std::fs::read_dir(dir)
        .expect("the demo's TMPDIR")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect()
}

#[test]
fn the_demo_shows_every_outcome_and_leaves_nothing_behind() {
    // Its Chromium's helpers outlived it in about half the runs: a few runs in a row.
    for run in 0..3 {
        let tmp = empty_tmpdir(run);
        let child = common::angrav_bin()
            // Nothing answers there: the demo starts the simulated Antigravity.
            .args(["--cdp", "127.0.0.1:1", "demo"])
            // The last run for a script: one JSON document.
            .args((run == 2).then_some("--json"))
            .env("TMPDIR", &tmp)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run angrav");
        let o = child.wait_with_output().expect("the demo ends");
        let out = String::from_utf8(o.stdout).unwrap();
        assert_eq!(
            o.status.code(),
            Some(0),
            "run {run}: {out}\n{}",
            String::from_utf8_lossy(&o.stderr)
        );
        let left = left_in(&tmp);
        std::fs::remove_dir_all(&tmp).expect("remove the test's TMPDIR");
        assert_eq!(
            left,
            Vec::<String>::new(),
            "run {run} left these in its TMPDIR"
        );
        if run == 2 {
            let demo: serde_json::Value = serde_json::from_str(&out)
                .unwrap_or_else(|e| panic!("demo --json: not one JSON document ({e}): {out}"));
            assert_eq!(demo["simulated"], true, "{demo}");
            assert_eq!(demo["sessions"].as_array().map(Vec::len), Some(4), "{demo}");
            assert_eq!(
                demo["report"]["sessions"].as_array().map(Vec::len),
                Some(4),
                "{demo}"
            );
        }
        if run > 0 {
            continue;
        }
        let prompt = "Summarise what this workspace is for, with an example.";
        for ws in ["alpha", "beta"] {
            assert!(
                out.contains(&format!(
                    "You asked: `{prompt}`. Here is **the plan** for {ws} "
                )),
                "{ws}'s own answer, quoting the prompt whole: {out}"
            );
        }
        let row = |ws: &str| {
            out.lines()
                .find(|l| l.contains(&format!("  {ws} ")) && l.contains(" done "))
                .unwrap_or_else(|| panic!("no result for {ws}: {out}"))
                .to_string()
        };
        assert!(row("gamma").contains("awaiting_approval"), "{out}");
        assert!(row("delta").contains("error"), "{out}");
        assert!(
            row("alpha").contains("idle") && row("beta").contains("idle"),
            "{out}"
        );
        // The language server's side: a conversation no window shows, and the quota.
        let unrendered = out
            .lines()
            .find(|l| l.contains("  epsilon  "))
            .unwrap_or_else(|| panic!("no unrendered conversation: {out}"));
        assert!(unrendered.contains("awaiting_approval"), "{out}");
        assert!(
            out.lines()
                .any(|l| l.starts_with("Claude Sonnet 4.5") && l.contains("(exhausted)")),
            "{out}"
        );
    }
}
