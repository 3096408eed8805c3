//! Dispatch: a queue of prompts spread over idle chats, in a real Chromium against
//! simulated agents; `prompt --when-idle`; stalled turns.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use angrav::dispatch::{Dispatcher, Event, Finished, Options, Prompt, Recorder, Status};
use angrav::panel::{Layout, State};
use angrav::sessions::Session;
use angrav::sim::Window;
use angrav::turn::{self, SendOptions};
use common::{Windows, angrav, open, stderr, stdout};
use serde_json::Value;

/// The sessions of this test's windows, in window order.
fn sessions(w: &Windows) -> Vec<Session> {
    let ids: Vec<String> = w.0.iter().map(|t| t.id.clone()).collect();
    common::registry().select(&ids).expect("the test's windows")
}

/// A dispatcher of `prompts` over `chats`, with the default profile and options.
fn dispatcher(chats: &[Session], prompts: Vec<Prompt>) -> Dispatcher {
    Dispatcher::start(
        chats,
        &angrav::profile::Profile::default(),
        prompts,
        Options::default(),
    )
}

/// `n` prompts `TEXT 0`, `TEXT 1`, ..., their ids `0`, `1`, ...
fn numbered(n: usize, text: &str) -> Vec<Prompt> {
    (0..n)
        .map(|i| Prompt::new(i.to_string(), format!("{text} {i}")))
        .collect()
}

/// Every event of a dispatcher, up to and with `Ended`.
fn all_events(d: &Dispatcher) -> Vec<Event> {
    let mut events = Vec::new();
    for e in d.events() {
        let end = matches!(e, Event::Ended { .. });
        events.push(e);
        if end {
            break;
        }
    }
    events
}

fn finished(events: &[Event]) -> Vec<&Finished> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Finished(r) => Some(r.as_ref()),
            _ => None,
        })
        .collect()
}

#[test]
fn twelve_prompts_over_three_chats_run_once_each_and_no_chat_waits_while_prompts_do() {
    let w = open(&[
        Window::new(Layout::Current, "d-instant").scenario("instant"),
        Window::new(Layout::LegacyFrame, "d-default"),
        Window::new(Layout::LegacyTarget, "d-slow").scenario("slow"),
    ]);
    let chats = sessions(&w);
    let texts: Vec<String> = (0..12).map(|i| format!("task number {i}")).collect();
    let prompts = texts
        .iter()
        .enumerate()
        .map(|(i, t)| Prompt::new(format!("p{i}"), t.as_str()))
        .collect();
    let events = all_events(&dispatcher(&chats, prompts));
    let results = finished(&events);
    assert_eq!(results.len(), 12, "{events:#?}");
    let mut on: HashMap<String, Vec<String>> = HashMap::new();
    for r in &results {
        assert_eq!(
            (r.status, r.state, r.attempts),
            (Status::Done, Some(State::Idle), 1),
            "{r:?}"
        );
        let n: usize = r.id[1..].parse().unwrap();
        let answer = &r.answer.as_ref().expect("an answer").content;
        assert!(answer.contains(&format!("task number {n}")), "{answer}");
        on.entry(r.session.clone().unwrap().target_id)
            .or_default()
            .push(texts[n].clone());
    }
    // Each prompt reached exactly one agent, once: the one its result names.
    let mut all = Vec::new();
    for i in 0..3 {
        let mut got = w.received(i);
        let mut said = on.remove(w.id(i)).unwrap_or_default();
        got.sort();
        said.sort();
        assert_eq!(got, said, "window {i}");
        assert!(!got.is_empty(), "window {i} got no prompt at all");
        all.extend(got);
    }
    all.sort();
    let mut want = texts.clone();
    want.sort();
    assert_eq!(all, want);
    // No chat was left idle while prompts were queued: whenever a chat's turn ended
    // with prompts still waiting (fewer than 12 handed out so far), the very next
    // thing the dispatcher did was to give that chat another one.
    let mut handed = 0;
    for (k, e) in events.iter().enumerate() {
        match e {
            Event::Sent { .. } => handed += 1,
            Event::Finished(r) if handed < 12 => match &events[k + 1] {
                Event::Sent { session, .. } => assert_eq!(
                    Some(session),
                    r.session.as_ref().map(|s| &s.id),
                    "{} finished with prompts queued, but another chat got the next",
                    r.id
                ),
                other => panic!("{} finished with prompts queued, then {other:?}", r.id),
            },
            _ => {}
        }
    }
    assert!(matches!(events.last(), Some(Event::Ended { unsent }) if unsent.is_empty()));
}

#[test]
fn a_prompt_whose_chat_closes_mid_turn_is_reported_closed_and_never_sent_again() {
    let w = open(&[
        Window::new(Layout::Current, "close-a").scenario("slow"),
        Window::new(Layout::Current, "close-b").scenario("slow"),
    ]);
    let chats = sessions(&w);
    let d = dispatcher(&chats, vec![Prompt::new("only", "survive a closed window")]);
    let first = loop {
        match d.events().recv().expect("events") {
            Event::Sent { session, .. } => break session,
            Event::Finished(r) => panic!("finished before its chat closed: {r:?}"),
            _ => {}
        }
    };
    let (gone, other) = if chats[0].id == first { (0, 1) } else { (1, 0) };
    // Close it once its agent has the prompt (its turn runs for seconds).
    let mut panel = w.panel(gone);
    let mut snap = panel.probe().unwrap();
    while !snap.busy {
        snap = panel.watch(&snap.key, Duration::from_secs(10)).unwrap();
    }
    assert_eq!(w.received(gone), ["survive a closed window"]);
    common::sim().close(w.id(gone)).unwrap();
    let events = all_events(&d);
    let results = finished(&events);
    assert_eq!(results.len(), 1, "{events:#?}");
    let r = results[0];
    // Its agent had it: another chat never gets it.
    assert_eq!((r.status, r.attempts), (Status::Closed, 1), "{r:?}");
    assert_eq!(
        r.session.as_ref().map(|s| s.target_id.as_str()),
        Some(w.id(gone))
    );
    assert!(w.received(other).is_empty());
}

#[test]
fn ctrl_c_stops_sending_and_prints_the_prompts_never_sent() {
    let w = open(&[Window::new(Layout::Current, "ctrl-c")]);
    let file = std::env::temp_dir().join(format!("angrav-dispatch-{}.txt", std::process::id()));
    let texts: Vec<String> = (1..=6).map(|i| format!("queued prompt {i}")).collect();
    std::fs::write(&file, texts.join("\n")).unwrap();
    let (mut child, lines, err) = common::spawn_angrav_at(
        common::sim().endpoint().label(),
        &[
            "--json",
            "dispatch",
            "--session",
            w.id(0),
            "-f",
            file.to_str().unwrap(),
        ],
    );
    // The first result: the next prompt is already on its way, the others wait.
    let first = lines
        .recv_timeout(Duration::from_secs(30))
        .expect("a first result");
    common::signal(child.0.id(), "INT");
    let code = child.0.wait().unwrap().code();
    let _ = std::fs::remove_file(&file);
    assert_eq!(code, Some(130));
    let out: Vec<Value> = std::iter::once(first)
        .chain(lines.iter())
        .map(|l| serde_json::from_str(&l).unwrap())
        .collect();
    let (unsent, results): (Vec<&Value>, Vec<&Value>) =
        out.iter().partition(|v| v["status"] == "unsent");
    assert!(!unsent.is_empty(), "{out:?}");
    assert_eq!(unsent.len() + results.len(), 6, "{out:?}");
    // Results first (a running turn is let finish), then the unsent prompts, in the
    // input format with the text they had.
    assert!(
        out[..results.len()].iter().all(|v| v["status"] != "unsent"),
        "{out:?}"
    );
    let received = w.received(0);
    for r in &results {
        assert_eq!(
            (&r["status"], &r["state"]),
            (&Value::from("done"), &Value::from("idle"))
        );
        let n: usize = r["id"].as_str().unwrap().parse().unwrap();
        assert_eq!(received.iter().filter(|t| **t == texts[n - 1]).count(), 1);
    }
    for u in &unsent {
        let n: usize = u["id"].as_str().unwrap().parse().unwrap();
        assert_eq!(u["prompt"], texts[n - 1].as_str());
        assert!(!received.contains(&texts[n - 1]), "{u} was sent");
    }
    assert_eq!(received.len(), results.len());
    // Last on stderr, the error as JSON, naming the prompts left.
    let error = common::json_error(&err.iter().collect::<Vec<_>>().join("\n"));
    assert_eq!(
        (&error["code"], &error["exit"]),
        (&Value::from("interrupted"), &Value::from(130)),
        "{error}"
    );
    for u in &unsent {
        let id = u["id"].as_str().unwrap();
        assert!(error["message"].as_str().unwrap().contains(id), "{error}");
    }
}

#[test]
fn a_dispatch_that_times_out_says_so_as_json_naming_the_prompts_left() {
    // Turns that start long after their prompt: still running when --timeout passes.
    let w = open(&[
        Window::new(Layout::Current, "dispatch-late-1").scenario("start-delay=600000"),
        Window::new(Layout::V2, "dispatch-late-2").scenario("start-delay=600000"),
    ]);
    let mut args = vec![
        "--json",
        "dispatch",
        "--timeout",
        "5s",
        "--start-within",
        "10m",
    ];
    let s = common::session_args(&w);
    args.extend(s.iter().map(String::as_str));
    let o = common::angrav_in(&args, "first\nsecond\nthird\n");
    assert_eq!(o.status.code(), Some(124), "{}", stderr(&o));
    let lines: Vec<Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    let said: Vec<String> = stderr(&o).lines().map(String::from).collect();
    let error = common::json_error(&said.join("\n"));
    assert_eq!(
        (&error["code"], &error["exit"]),
        (&Value::from("timeout"), &Value::from(124)),
        "{error}"
    );
    // Every prompt left (its turn pending, or never sent) is named.
    let message = error["message"].as_str().unwrap();
    for l in lines.iter().filter(|l| l["status"] != "done") {
        assert!(
            message.contains(l["id"].as_str().unwrap()),
            "{message}: {l}"
        );
    }
    assert!(lines.iter().any(|l| l["status"] == "pending"), "{lines:?}");
}

#[test]
fn a_pinned_prompt_whose_turn_never_starts_is_reported_stalled() {
    let w = open(&[
        Window::new(Layout::Current, "stall-a").scenario("start-delay=4000,instant"),
        Window::new(Layout::Current, "stall-b"),
    ]);
    let task = format!(
        "{{\"id\": \"late\", \"prompt\": \"wait for me\", \"session\": \"{}\"}}\n",
        w.id(0)
    );
    let mut args = vec!["--json", "dispatch", "--start-within", "500ms"];
    let s = common::session_args(&w);
    args.extend(s.iter().map(String::as_str));
    let o = common::angrav_in(&args, &task);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let r: Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(r["id"], "late");
    assert_eq!(r["status"], "stalled", "{r}");
    assert_eq!(r["session"]["target_id"], w.id(0));
    let reason = r["reason"].as_str().unwrap();
    assert!(reason.contains("no turn started within 500 ms"), "{reason}");
    // Delivered once, never to the other chat: a pin is not moved.
    assert_eq!(w.received(0), ["wait for me"]);
    assert!(w.received(1).is_empty());
}

/// A dispatcher of `prompts` over `chats` whose first prompt goes to the first chat:
/// the others are paused until it has been handed out.
fn first_chat_first(chats: &[Session], prompts: Vec<Prompt>, opts: Options) -> Vec<Event> {
    let later: Vec<String> = chats[1..].iter().map(|s| s.target_id.clone()).collect();
    let profile = angrav::profile::Profile::default();
    let d = Dispatcher::start_recorded(chats, &profile, prompts, opts, None, &later);
    let mut events: Vec<Event> = Vec::new();
    for e in d.events() {
        let first = !events.iter().any(|e| matches!(e, Event::Sent { .. }));
        if let (Event::Sent { session, .. }, true) = (&e, first) {
            assert_eq!(*session, chats[0].id, "the first prompt went elsewhere");
            for t in &later {
                d.resume(t);
            }
        }
        let end = matches!(e, Event::Ended { .. });
        events.push(e);
        if end {
            break;
        }
    }
    events
}

#[test]
fn a_stalled_prompt_is_never_sent_to_another_chat() {
    // The first chat's agent starts 4 s after the prompt: stalled at 500 ms, yet it
    // has the prompt; the other chat is idle and free to take one.
    let w = open(&[
        Window::new(Layout::Current, "stalls-late").scenario("start-delay=4000,instant"),
        Window::new(Layout::LegacyFrame, "stalls-free").scenario("instant"),
    ]);
    let chats = sessions(&w);
    let opts = Options {
        start_within: Duration::from_millis(500),
        ..Options::default()
    };
    let events = first_chat_first(&chats, vec![Prompt::new("late", "start on me later")], opts);
    let results = finished(&events);
    assert_eq!(results.len(), 1, "{events:#?}");
    let r = results[0];
    assert_eq!((r.status, r.attempts), (Status::Stalled, 1), "{r:?}");
    assert_eq!(
        r.session.as_ref().map(|s| s.target_id.as_str()),
        Some(w.id(0))
    );
    assert_eq!(w.received(0), ["start on me later"]);
    assert!(w.received(1).is_empty(), "sent twice: {events:#?}");
}

#[test]
fn a_prompt_followed_at_once_by_another_message_is_unconfirmed_and_never_sent_again() {
    let w = open(&[
        Window::new(Layout::Current, "followed").scenario("instant"),
        Window::new(Layout::Current, "spare").scenario("instant"),
    ]);
    // The page shows someone else's message right after ours: ours may be with the
    // agent (it is), so it goes nowhere else.
    w.after_enter(0, common::ANOTHER_MESSAGE);
    let chats = sessions(&w);
    let prompts = vec![Prompt::new("once", "only here")];
    let events = first_chat_first(&chats, prompts, Options::default());
    let results = finished(&events);
    assert_eq!(results.len(), 1, "{events:#?}");
    let r = results[0];
    assert_eq!((r.status, r.attempts), (Status::Unconfirmed, 1), "{r:?}");
    assert_eq!(w.received(0), ["only here"]);
    assert!(w.received(1).is_empty(), "sent twice: {events:#?}");
}

/// Records the first `n` submissions; refuses the rest.
struct RecordsOnly(std::sync::atomic::AtomicUsize);

impl Recorder for RecordsOnly {
    fn submitting(&self, _: &Prompt, _: &Session) -> Result<(), String> {
        let left = self.0.load(std::sync::atomic::Ordering::SeqCst);
        if left == 0 {
            return Err("the record is full".into());
        }
        self.0.store(left - 1, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }
}

#[test]
fn a_submission_that_cannot_be_recorded_is_not_made_and_no_prompt_is_sent_after_it() {
    let w = open(&[Window::new(Layout::Current, "unrecorded").scenario("instant")]);
    let chats = sessions(&w);
    let recorder = std::sync::Arc::new(RecordsOnly(1.into()));
    let d = Dispatcher::start_recorded(
        &chats,
        &angrav::profile::Profile::default(),
        numbered(3, "recorded"),
        Options::default(),
        Some(recorder),
        &[],
    );
    let events = all_events(&d);
    let results = finished(&events);
    let got: Vec<(&str, Status)> = results.iter().map(|r| (r.id.as_str(), r.status)).collect();
    assert_eq!(
        got,
        [
            ("0", Status::Done),
            ("1", Status::Failed),
            ("2", Status::Failed)
        ],
        "{events:#?}"
    );
    for r in &results[1..] {
        let reason = r.reason.as_deref().unwrap_or_default();
        assert!(reason.contains("the record is full"), "{r:?}");
    }
    // The refused one was typed, then taken out again: never submitted.
    assert!(
        results[1]
            .reason
            .as_deref()
            .unwrap()
            .contains("the editor is as it was")
    );
    assert_eq!(w.received(0), ["recorded 0"]);
    assert_eq!(w.editor_text(0), "");
    assert!(matches!(events.last(), Some(Event::Ended { unsent }) if unsent.is_empty()));
}

#[test]
fn prompt_when_idle_waits_for_the_running_turn_then_sends() {
    let w = open(&[Window::new(Layout::Current, "when-idle").scenario("slow")]);
    let mut panel = w.panel(0);
    let opts = SendOptions {
        claim_within: Duration::from_secs(10),
        start_within: Duration::from_secs(10),
        replace_draft: false,
        abandoned: None,
    };
    let sent = turn::send_prompt(&mut panel, "the first task", opts).unwrap();
    assert!(sent.started);
    let o = angrav(&[
        "--session",
        w.id(0),
        "prompt",
        "--when-idle",
        "--wait",
        "the second task",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("You asked: `the second task`"),
        "{}",
        stdout(&o)
    );
    assert_eq!(w.received(0), ["the first task", "the second task"]);
}

#[test]
fn a_turn_whose_page_never_changes_is_stalled_and_a_streaming_one_is_not() {
    let w = open(&[
        Window::new(Layout::Current, "frozen").start("thinking"),
        Window::new(Layout::LegacyFrame, "streaming").scenario("slow"),
    ]);
    let until = turn::Until {
        turn: None,
        settle: Duration::from_millis(400),
        accept: |_| true,
        deadline: None,
        stall_after: Some(Duration::from_secs(3)),
    };
    // Busy, and nothing in the page moves.
    let mut frozen = w.panel(0);
    let first = frozen.probe().unwrap();
    assert_eq!(first.state, State::Thinking);
    match turn::wait_until(&mut frozen, first, until).unwrap() {
        turn::Waited::Stalled(s) => assert_eq!(s.state, State::Thinking),
        other => panic!("not stalled: {other:?}"),
    }
    // `wait` says so too.
    let o = angrav(&["--session", w.id(0), "wait", "--stall-after", "1s"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(
            "stalled: the page showed no change at all for 1000 ms (the agent: thinking)"
        ),
        "{}",
        stderr(&o)
    );
    // A slow answer streams a part every 600 ms: never still for 3 s, so it ends.
    let mut streaming = w.panel(1);
    let opts = SendOptions {
        claim_within: Duration::from_secs(10),
        start_within: Duration::from_secs(10),
        replace_draft: false,
        abandoned: None,
    };
    let sent = turn::send_prompt(&mut streaming, "take your time", opts).unwrap();
    let until = turn::Until {
        turn: Some(sent.baseline),
        ..until
    };
    match turn::wait_until(&mut streaming, sent.snapshot, until).unwrap() {
        turn::Waited::Stopped(s) => assert_eq!(s.state, State::Idle),
        other => panic!("a streaming turn did not end: {other:?}"),
    }
}

/// A chat that stops for the user, at an approval or a question form, is reported as
/// such, set aside and given no more prompts; the others take them.
#[test]
fn a_chat_that_stops_for_approval_or_a_question_is_reported_and_given_no_more_prompts() {
    for (scenario, state) in [
        ("approval,instant", State::AwaitingApproval),
        ("question,instant", State::AwaitingInput),
    ] {
        let w = open(&[
            Window::new(Layout::Current, "asks").scenario(scenario),
            Window::new(Layout::LegacyTarget, "works").scenario("instant"),
        ]);
        let chats = sessions(&w);
        // A bound, so that a chat waited on forever shows as `pending`, not a hang.
        let prompts = numbered(4, "job")
            .into_iter()
            .map(|p| Prompt {
                timeout: Some(Duration::from_secs(60)),
                ..p
            })
            .collect();
        let events = all_events(&dispatcher(&chats, prompts));
        let results = finished(&events);
        assert_eq!(results.len(), 4, "{events:#?}");
        let asked: Vec<&&Finished> = results
            .iter()
            .filter(|r| r.session.as_ref().map(|s| s.target_id.as_str()) == Some(w.id(0)))
            .collect();
        // One prompt reached the chat that asks; it stopped there, reported, not retried.
        assert_eq!(asked.len(), 1, "{events:#?}");
        assert_eq!(
            (asked[0].status, asked[0].state, asked[0].attempts),
            (Status::Done, Some(state), 1),
            "{scenario}"
        );
        if state == State::AwaitingApproval {
            let labels: Vec<&str> = asked[0].approvals[0]
                .choices
                .iter()
                .map(|c| c.label.as_str())
                .collect();
            assert_eq!(labels, ["Run", "Reject"]);
        } else {
            let q = asked[0].question.as_ref().expect("the question");
            assert_eq!(q.options, ["Postgres", "SQLite"]);
        }
        // The reason names what it waits for: the approval's command, or the question.
        let said = if state == State::AwaitingApproval {
            "awaiting_approval (approvals: "
        } else {
            "awaiting_input (question: Which database should the service use? options: Postgres, SQLite)"
        };
        assert!(events.iter().any(|e| matches!(e,
            Event::SetAside { session, reason } if *session == chats[0].id && reason.contains(said))),
            "{events:#?}");
        assert_eq!(w.received(0).len(), 1, "{scenario}");
        assert_eq!(w.received(1).len(), 3, "{scenario}");
    }
}

#[test]
fn a_prompt_whose_turn_ends_in_error_is_retried_on_another_chat() {
    let w = open(&[
        Window::new(Layout::Current, "fails").scenario("error,instant"),
        Window::new(Layout::LegacyFrame, "answers"),
    ]);
    let chats = sessions(&w);
    let events = all_events(&dispatcher(&chats, numbered(2, "try")));
    let results = finished(&events);
    assert_eq!(results.len(), 2, "{events:#?}");
    for r in &results {
        assert_eq!(
            (r.status, r.state),
            (Status::Done, Some(State::Idle)),
            "{r:?}"
        );
        assert_eq!(
            r.session.as_ref().map(|s| s.target_id.as_str()),
            Some(w.id(1))
        );
    }
    let failed_once: Vec<&str> = results
        .iter()
        .filter(|r| r.attempts == 2)
        .map(|r| r.id.as_str())
        .collect();
    assert_eq!(failed_once.len(), 1, "{events:#?}");
    let n: usize = failed_once[0].parse().unwrap();
    assert_eq!(w.received(0), [format!("try {n}")]);
    let mut got = w.received(1);
    got.sort();
    assert_eq!(got, ["try 0", "try 1"]);
}
