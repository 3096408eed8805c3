//! A page angrav's fixtures did not shape: another build's markup, built only from the
//! markers in shared/antigravity-dom.md (`fixtures/foreign/`), with a plain
//! contenteditable editor instead of a Lexical-like one.

mod common;

use common::{angrav, angrav_json, stderr, stdout};

struct Page(cdp::TargetInfo);

impl Page {
    fn open(state: &str) -> Page {
        Page(
            common::sim()
                .open_path(&format!("/foreign/workbench.html?state={state}"))
                .unwrap(),
        )
    }
}

impl Drop for Page {
    fn drop(&mut self) {
        let _ = common::sim().close(&self.0.id);
    }
}

#[test]
fn states_of_a_foreign_page() {
    let cases = [
        ("idle", "idle"),
        ("busy", "thinking"),
        ("approval", "awaiting_approval"),
        ("error", "error"),
        ("quota", "error"),
    ];
    let pages: Vec<Page> = cases.iter().map(|(s, _)| Page::open(s)).collect();
    for ((given, want), page) in cases.iter().zip(&pages) {
        let s = angrav_json(&["--session", &page.0.id, "status"], 0);
        assert_eq!(s["state"], *want, "{given}: {s}");
        assert_eq!(s["layout"], "current");
        assert_eq!(s["session"]["workspace"], "foreign");
    }
    let approval = angrav_json(&["--session", &pages[2].0.id, "status"], 0);
    assert_eq!(
        approval["approvals"][0]["choices"],
        serde_json::json!([{"label": "Allow Once"}, {"label": "Deny"}])
    );
    let error = angrav_json(&["--session", &pages[3].0.id, "status"], 0);
    assert_eq!(error["error"], "Something broke in the agent");
    let quota = angrav_json(&["--session", &pages[4].0.id, "status"], 0);
    assert_eq!(quota["quota_resume"], "9:00 AM");
}

#[test]
fn output_and_prompt_on_a_foreign_page() {
    let page = Page::open("idle");
    let id = page.0.id.as_str();
    let o = angrav(&["--session", id, "output", "last"]);
    assert_eq!(
        stdout(&o),
        "First answer, with *emphasis* and `inline`.\n\n1. one\n2. two\n\n```python\nprint(\"hi\")\n```\n"
    );
    let text = r#"a "quoted" `tick` ${x} \ prompt 🎉"#;
    let o = angrav(&["--session", id, "prompt", text, "--wait"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), format!("Reply to: {text}\n"));
    let history = angrav_json(&["--session", id, "history"], 0);
    assert_eq!(history[2]["role"], "user");
    assert_eq!(history[2]["content"], text);
}

#[test]
fn a_page_that_sends_only_with_its_button() {
    let page = Page::open("idle&enter=off");
    let text = "sent with the button";
    let o = angrav(&["--session", &page.0.id, "prompt", text, "--wait"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), format!("Reply to: {text}\n"));
    let history = angrav_json(&["--session", &page.0.id, "history"], 0);
    assert_eq!(history[2]["content"], text);
}
