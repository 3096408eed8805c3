//! Delivery: every prompt reaches the agent exactly once, as typed, or is refused;
//! concurrent senders never merge; a draft is never lost; a query never picks a
//! window silently. In a real Chromium, against the simulated agent.

mod common;

use std::collections::HashSet;
use std::process::Stdio;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use angrav::panel::{Layout, Panel};
use angrav::profile::Profile;
use angrav::sim::Window;
use angrav::turn::{self, SendOptions};
use common::{Windows, angrav, angrav_json, open, stderr, stdout};
use serde_json::Value;

const ROUNDS: usize = 20;

/// A prompt to window `i` that was not delivered (`why`, exit 1): its editor put back
/// as it was (empty), and nothing reached the agent.
fn undelivered(o: &std::process::Output, why: &str, w: &Windows, i: usize) {
    assert_eq!(o.status.code(), Some(1), "{}", stderr(o));
    let said = stderr(o);
    assert!(
        said.contains(&format!("prompt not delivered: {why}")),
        "{said}"
    );
    assert!(said.contains("the editor is as it was"), "{said}");
    assert_eq!(w.editor_text(i), "");
    assert!(w.received(i).is_empty());
}

/// What the agent received, once every send the page has scheduled has happened
/// (`data-pending` on `#sim-received`: sends a page that acts on Enter later owes).
fn received_settled(w: &Windows, i: usize) -> Vec<String> {
    let v = w
        .panel(i)
        .call_function(
            "function () {
               const r = document.getElementById('sim-received');
               const owed = () => Number(r.getAttribute('data-pending') || 0) > 0;
               return new Promise((resolve) => {
                 const done = () => resolve(r.textContent);
                 if (!owed()) return done();
                 const obs = new MutationObserver(() => { if (!owed()) { obs.disconnect(); done(); } });
                 obs.observe(r, { attributes: true, childList: true, characterData: true, subtree: true });
               });
             }",
            &[],
        )
        .expect("read #sim-received");
    serde_json::from_str(v.as_str().expect("text")).expect("JSON list")
}

/// Checks one round: every delivered text arrived exactly once, nothing else arrived
/// (no merged or partial text), and nothing refused arrived. The page answers at once,
/// so a sender that waits for the others' claims finds it idle: none is refused.
fn check_round(round: usize, sent: &[(String, Result<(), String>)], arrived: &[String]) {
    let refused: Vec<_> = sent.iter().filter(|(_, r)| r.is_err()).collect();
    assert!(refused.is_empty(), "round {round}: refused: {refused:?}");
    for (text, result) in sent {
        let times = arrived.iter().filter(|a| *a == text).count();
        match result {
            Ok(()) => assert_eq!(
                times, 1,
                "round {round}: {text:?} delivered, arrived {times}x: {arrived:?}"
            ),
            Err(why) => {
                assert_eq!(
                    times, 0,
                    "round {round}: {text:?} refused ({why}) but arrived: {arrived:?}"
                );
                assert!(
                    why.contains("prompt not"),
                    "round {round}: unclear refusal: {why}"
                );
            }
        }
    }
    let texts: HashSet<&String> = sent.iter().map(|(t, _)| t).collect();
    for a in arrived {
        assert!(
            texts.contains(a),
            "round {round}: the agent received {a:?}, which nobody sent: {arrived:?}"
        );
    }
}

#[test]
fn concurrent_senders_in_one_process_never_merge() {
    for senders in [2, 4] {
        let w = open(&[Window::new(Layout::Current, "threads").scenario("instant")]);
        let window = w.window_ref(0);
        let mut seen = 0;
        for round in 0..ROUNDS {
            let barrier = Arc::new(Barrier::new(senders));
            let handles: Vec<_> = (0..senders)
                .map(|s| {
                    let (window, barrier) = (window.clone(), barrier.clone());
                    std::thread::spawn(move || {
                        let text = format!("round {round} sender {s} says {}", "x".repeat(s * 7));
                        let (mut panel, _) = Panel::attach(&window, &Profile::default()).unwrap();
                        let opts = SendOptions {
                            claim_within: Duration::from_secs(30),
                            start_within: Duration::ZERO,
                            replace_draft: false,
                            abandoned: None,
                        };
                        barrier.wait();
                        let result = turn::send_prompt(&mut panel, &text, opts)
                            .map(|_| ())
                            .map_err(|e| e.to_string());
                        (text, result)
                    })
                })
                .collect();
            let sent: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
            let all = received_settled(&w, 0);
            check_round(round, &sent, &all[seen..]);
            seen = all.len();
        }
    }
}

#[test]
fn concurrent_angrav_processes_never_merge() {
    for senders in [2, 4] {
        let w = open(&[Window::new(Layout::Current, "procs").scenario("instant")]);
        let mut seen = 0;
        for round in 0..ROUNDS {
            let children: Vec<_> = (0..senders)
                .map(|s| {
                    let text = format!("process {s} of round {round}{}", "!".repeat(s * 5));
                    let child = common::angrav_bin()
                        .args(["--cdp", common::sim().endpoint().label()])
                        .args(["--session", w.id(0), "prompt", &text])
                        .stdout(Stdio::piped())
                        .stderr(Stdio::piped())
                        .spawn()
                        .expect("run angrav");
                    (text, child)
                })
                .collect();
            let sent: Vec<_> = children
                .into_iter()
                .map(|(text, child)| {
                    let o = child.wait_with_output().unwrap();
                    let result = if o.status.success() {
                        Ok(())
                    } else {
                        assert_eq!(o.status.code(), Some(1), "{text}: {}", stderr(&o));
                        Err(stderr(&o))
                    };
                    (text, result)
                })
                .collect();
            let all = received_settled(&w, 0);
            check_round(round, &sent, &all[seen..]);
            seen = all.len();
        }
    }
}

#[test]
fn a_draft_in_the_editor_is_refused_unless_replaced() {
    let w = open(&[Window::new(Layout::Current, "draft")]);
    w.type_draft(0, "half-written thought");
    let o = angrav(&["--session", w.id(0), "prompt", "the real prompt"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("the editor holds a draft (\"half-written thought\")"),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("--replace-draft"), "{}", stderr(&o));
    assert_eq!(w.editor_text(0), "half-written thought");
    assert!(w.received(0).is_empty());
    let sent = angrav_json(
        &[
            "--session",
            w.id(0),
            "prompt",
            "the real prompt",
            "--replace-draft",
        ],
        0,
    );
    assert_eq!(sent["delivered"], true);
    assert_eq!(w.received(0), ["the real prompt"]);
}

#[test]
fn a_page_acting_on_enter_3s_later_gets_the_prompt_once() {
    let w = open(&[
        Window::new(Layout::Current, "slow-enter").scenario("enter-delay=3000"),
        Window::new(Layout::LegacyFrame, "slow-enter").scenario("enter-delay=3000"),
    ]);
    for i in 0..2 {
        let text = format!("once only, window {i}");
        let sent = angrav_json(&["--session", w.id(i), "prompt", &text], 0);
        assert_eq!(sent["delivered"], true, "{sent}");
        assert_eq!(received_settled(&w, i), [text]);
    }
}

#[test]
fn a_busy_flip_before_enter_delivers_nothing_and_says_so() {
    let w = open(&[
        Window::new(Layout::Current, "flip")
            .scenario("busy-on-focus")
            .history(1),
        Window::new(Layout::Current, "flip").scenario("busy-on-focus"),
    ]);
    // `prompt --wait` after an earlier turn: not the earlier answer, but a failure.
    let o = angrav(&["--session", w.id(0), "prompt", "--wait", "are you there?"]);
    undelivered(&o, "the agent became busy (thinking)", &w, 0);
    assert_eq!(stdout(&o), "", "no answer is this prompt's");
    // The same in a fan-out: that chat failed, with the reason, and exit 1.
    let mut args = vec![
        "--json",
        "sessions",
        "fanout",
        "hello",
        "--session",
        w.id(1),
    ];
    args.extend(["--timeout", "30s"]);
    let o = angrav(&args);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let report: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let s = &report["sessions"][0];
    assert_eq!(s["status"], "failed", "{report}");
    assert!(
        s["reason"].as_str().unwrap().contains("became busy"),
        "{report}"
    );
    assert!(w.received(1).is_empty());
    assert_eq!(w.editor_text(1), "");
}

#[test]
fn a_turn_starting_after_11s_is_delivered_not_refused() {
    let w = open(&[
        Window::new(Layout::Current, "late").scenario("start-delay=11000,instant"),
        Window::new(Layout::Current, "late").scenario("start-delay=11000,instant"),
    ]);
    let o = angrav(&["--json", "--session", w.id(0), "prompt", "take your time"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let sent: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(sent["delivered"], true, "{sent}");
    assert_eq!(sent["started"], false, "{sent}");
    assert!(
        stderr(&o).contains("prompt delivered; the agent has not started on it"),
        "{}",
        stderr(&o)
    );
    assert_eq!(w.received(0), ["take your time"]);
    // `--wait` waits on for that turn and prints its answer.
    let o = angrav(&["--session", w.id(1), "prompt", "--wait", "slow start"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("You asked: `slow start`"),
        "{}",
        stdout(&o)
    );
    assert_eq!(w.received(1), ["slow start"]);
}

#[test]
fn a_claim_left_by_a_killed_sender_lapses_and_a_live_one_is_waited_for() {
    let w = open(&[Window::new(Layout::Current, "claimed")]);
    let claim = |ms: u64| {
        w.panel(0)
            .call_function(
                "function (ms) { document.documentElement.setAttribute('data-angrav-claim', 'gone ' + (Date.now() + ms)); }",
                &[ms.into()],
            )
            .unwrap();
    };
    // Held for a minute: a sender with a 1 s timeout gives up, saying why.
    claim(60_000);
    let o = angrav(&["--session", w.id(0), "--timeout", "1s", "prompt", "blocked"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("another sender kept the editor"),
        "{}",
        stderr(&o)
    );
    assert!(w.received(0).is_empty());
    // Left by a sender that died: it lapses, and the prompt goes through.
    claim(1_500);
    let sent = angrav_json(&["--session", w.id(0), "prompt", "after the lapse"], 0);
    assert_eq!(sent["delivered"], true);
    assert_eq!(w.received(0), ["after the lapse"]);
}

#[test]
fn a_workspace_named_like_another_windows_id_prefix_is_ambiguous() {
    let first = open(&[Window::new(Layout::Current, "plain")]);
    let prefix = first.id(0)[..8].to_ascii_lowercase();
    let second = open(&[Window::new(Layout::Current, &prefix)]);
    let o = angrav(&["--session", &prefix, "prompt", "which one?"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("matches several sessions"), "{err}");
    for w in [&first, &second] {
        assert!(err.contains(&w.id(0)[..6]), "{err}");
        assert!(w.received(0).is_empty());
    }
    // The full id still names its window.
    angrav_json(&["--session", first.id(0), "prompt", "this one"], 0);
    assert_eq!(first.received(0), ["this one"]);
}

#[test]
fn concurrent_fanouts_report_done_only_for_prompts_received_once() {
    let w = open(&[
        Window::new(Layout::Current, "fan-a").scenario("instant"),
        Window::new(Layout::LegacyFrame, "fan-b").scenario("instant"),
        Window::new(Layout::LegacyTarget, "fan-c"),
    ]);
    let mut seen = [0; 3];
    for round in 0..5 {
        let children: Vec<_> = (0..2)
            .map(|f| {
                let text = format!("fan-out {f} of round {round}");
                let child = common::angrav_bin()
                    .args(["--cdp", common::sim().endpoint().label(), "--json"])
                    .args(["sessions", "fanout", &text])
                    .args(common::session_args(&w))
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("run angrav");
                (text, child)
            })
            .collect();
        let reports: Vec<(String, Value)> = children
            .into_iter()
            .map(|(text, child)| {
                let o = child.wait_with_output().unwrap();
                let report = serde_json::from_str(&stdout(&o))
                    .unwrap_or_else(|e| panic!("{e}: {}", stderr(&o)));
                (text, report)
            })
            .collect();
        for (i, seen) in seen.iter_mut().enumerate() {
            let all = w.received(i);
            let arrived = &all[*seen..];
            *seen = all.len();
            for (text, report) in &reports {
                let outcome = common::by_target(&report["sessions"], w.id(i)).unwrap();
                let times = arrived.iter().filter(|a| *a == text).count();
                match outcome["status"].as_str().unwrap() {
                    "done" => assert_eq!(times, 1, "{outcome}: {arrived:?}"),
                    "failed" => {
                        assert_eq!(times, 0, "{outcome}: {arrived:?}");
                        assert!(outcome["reason"].as_str().unwrap().contains("prompt not"));
                    }
                    other => panic!("round {round}: {other}: {outcome}"),
                }
            }
            for a in arrived {
                assert!(
                    reports.iter().any(|(t, _)| t == a),
                    "window {i} received {a:?}, which nobody sent"
                );
            }
        }
    }
}

#[test]
fn a_prompt_the_page_never_takes_is_taken_out_of_the_editor_again() {
    let w = open(&[Window::new(Layout::Current, "deaf").scenario("deaf")]);
    let o = angrav(&["--session", w.id(0), "prompt", "anyone?"]);
    undelivered(&o, "the page did not take it within", &w, 0);
}

#[test]
fn what_happens_in_the_page_right_after_the_enter_never_makes_a_sent_prompt_not_delivered() {
    let w = open(&[
        Window::new(Layout::Current, "claim-taken").scenario("instant"),
        Window::new(Layout::Current, "another-message").scenario("instant"),
    ]);
    // Another sender claims the editor as the page takes the prompt: the page shows
    // it sent, so it is delivered.
    w.after_enter(0, common::STEAL_CLAIM);
    let o = angrav(&[
        "--json",
        "--session",
        w.id(0),
        "prompt",
        "mine, then theirs",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let sent: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(sent["delivered"], true, "{sent}");
    assert_eq!(w.received(0), ["mine, then theirs"]);
    // Someone else's message shows after ours, ours gone from the editor: ours may
    // have been sent (it was), so it is unconfirmed, never not delivered.
    w.after_enter(1, common::ANOTHER_MESSAGE);
    let o = angrav(&["--json", "--session", w.id(1), "prompt", "followed at once"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let error = common::json_error(&stderr(&o));
    assert_eq!(error["code"], "unconfirmed", "{error}");
    let message = error["message"].as_str().unwrap();
    let says = "the newest user message is not this prompt but \"a message from someone else\"";
    assert!(message.contains(says), "{message}");
    assert_eq!(w.received(1), ["followed at once"]);
}
