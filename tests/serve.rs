//! `angrav serve` in a real Chromium: the WebSocket API, its security, slow clients,
//! the dashboard in a browser page, and hooks.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use angrav::panel::Layout;
use angrav::sim::Window;
use common::serve::{
    Client, FLIP_BUSY, PATIENCE, Serve, dashboard, evaluate, row, rows_in_state, start,
};
use common::{Reaped, open, pressed, sim};
use crossbeam_channel::Receiver;
use serde_json::{Value, json};
use tungstenite::Message;

#[test]
fn a_client_lists_prompts_waits_and_receives_events() {
    let w = open(&[
        Window::new(Layout::Current, "api-a"),
        Window::new(Layout::LegacyFrame, "api-b").scenario("slow"),
    ]);
    let serve = start("api", &[], &[]);
    let mut c = serve.connect();
    let list = c.call("sessions.list", json!({}));
    for i in 0..2 {
        assert_eq!(row(&list, w.id(i))["state"], "idle", "{list}");
    }
    assert_eq!(row(&list, w.id(1))["session"]["workspace"], "api-b");
    let subscribed = c.call("subscribe", json!({}));
    let seq = subscribed["seq"].as_u64().unwrap();
    assert_eq!(row(&subscribed["sessions"], w.id(0))["state"], "idle");

    // A long call does not hold up the next one on the same connection.
    let long = c.send(
        "prompt",
        json!({ "session": w.id(1), "text": "the slow one", "wait": true }),
    );
    let quick = c.send("status", json!({ "session": w.id(0) }));
    let status = c.reply(quick);
    assert_eq!(status["result"]["state"], "idle", "{status}");
    assert_eq!(status["result"]["session"]["target_id"], w.id(0));
    let answered = c.reply(long);
    let at = |id: u64| c.replies.iter().position(|r| *r == json!(id)).unwrap();
    assert!(at(quick) < at(long), "{:?}", c.replies);
    let answer = answered["result"]["answer"]["content"].as_str().unwrap();
    assert!(
        answer.contains("the slow one") && answer.ends_with("Done."),
        "{answered}"
    );
    assert_eq!(answered["result"]["state"], "idle");

    // The prompt's turn came as events, in order.
    let busy = c.event(w.id(1), "thinking");
    let idle = c.event(w.id(1), "idle");
    assert_eq!(busy["type"], "state_change");
    assert_eq!(busy["previous"], "idle");
    assert_eq!(idle["previous"], "thinking");
    let (b, i) = (busy["seq"].as_u64().unwrap(), idle["seq"].as_u64().unwrap());
    assert!(seq < b && b < i, "{seq} {b} {i}");

    // A prompt without waiting, then a wait for it.
    let sent = c.call("prompt", json!({ "session": w.id(0), "text": "and you" }));
    assert_eq!(sent["delivered"], true);
    let report = c.call("wait", json!({ "sessions": [w.id(0)] }));
    let done = &report["sessions"][0];
    assert_eq!(done["status"], "done", "{report}");
    assert!(
        done["answer"]["content"]
            .as_str()
            .unwrap()
            .contains("and you")
    );

    let methods = c.call("schema", json!({}));
    let names: Vec<&str> = methods["methods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    for m in [
        "sessions.list",
        "status",
        "prompt",
        "wait",
        "fanout",
        "run",
        "output",
        "history",
        "new",
        "approve",
        "deny",
        "cancel",
        "subscribe",
        "unsubscribe",
        "schema",
    ] {
        assert!(names.contains(&m), "{m} in {names:?}");
    }
    let missing = c.send("status", json!({ "session": "no-such-session" }));
    assert_eq!(c.reply(missing)["error"]["code"], "session_not_found");
    let unknown = c.send("frobnicate", json!({}));
    assert_eq!(c.reply(unknown)["error"]["code"], "unknown_method");

    // SIGTERM: the client is told, the token file goes, and serve exits 0.
    let mut serve = serve;
    assert!(serve.state.join("serve.token").exists());
    common::signal(serve.child.0.id(), "TERM");
    let close = loop {
        match c.ws.read() {
            Ok(Message::Close(frame)) => break frame,
            Ok(_) => continue,
            Err(e) => panic!("no close frame: {e}"),
        }
    };
    assert_eq!(close.map(|f| u16::from(f.code)), Some(1001), "going away");
    let status = serve.child.0.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(!serve.state.join("serve.token").exists());
}

#[test]
fn requests_without_the_token_or_from_another_origin_are_refused() {
    let serve = start("security", &[], &[]);
    let upgrade = |extra: &[String]| {
        let mut h = vec![
            "Upgrade: websocket".to_string(),
            "Connection: Upgrade".into(),
            "Sec-WebSocket-Version: 13".into(),
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==".into(),
        ];
        h.extend_from_slice(extra);
        h
    };
    let token = &serve.token;
    let bearer = format!("Authorization: Bearer {token}");
    let mut wrong = token.clone();
    wrong.replace_range(0..1, if token.starts_with('0') { "1" } else { "0" });
    assert!(serve.status_of("/ws", &upgrade(&[])).contains(" 401 "));
    let wrong_bearer = format!("Authorization: Bearer {wrong}");
    assert!(
        serve
            .status_of("/ws", &upgrade(&[wrong_bearer]))
            .contains(" 401 ")
    );
    assert!(
        serve
            .status_of(&format!("/ws?token={wrong}"), &upgrade(&[]))
            .contains(" 401 ")
    );
    let foreign = "Origin: http://evil.example".to_string();
    assert!(
        serve
            .status_of("/ws", &upgrade(&[bearer.clone(), foreign]))
            .contains(" 403 ")
    );
    // A host name is not this server's origin even when it names our port.
    let rebound = format!("Origin: http://evil.example:{}", serve.port);
    let host_name = format!("Host: evil.example:{}", serve.port);
    assert!(
        serve
            .status_of("/ws", &upgrade(&[bearer.clone(), rebound, host_name]))
            .contains(" 403 ")
    );
    let own = format!("Origin: http://127.0.0.1:{}", serve.port);
    assert!(
        serve
            .status_of(&format!("/ws?token={token}"), &upgrade(&[own]))
            .contains(" 101 ")
    );
    assert!(serve.status_of("/", &[]).contains(" 401 "));
    assert!(
        serve
            .status_of(&format!("/?token={token}"), &[])
            .contains(" 200 ")
    );

    let file = serve.state.join("serve.token");
    assert_eq!(std::fs::read_to_string(&file).unwrap().trim(), *token);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn a_non_loopback_address_needs_allow_remote() {
    let o = common::angrav(&["serve", "--listen", "0.0.0.0:0"]);
    assert_eq!(o.status.code(), Some(2), "{}", common::stderr(&o));
    assert!(common::stderr(&o).contains("--allow-remote"));
}

#[test]
fn a_client_that_stops_reading_is_dropped_while_fifty_others_get_events() {
    let w = open(&[Window::new(Layout::Current, "slow-client")]);
    let serve = start("slow", &[], &[]);
    // Fifty clients at once, and one that stops reading.
    let mut readers: Vec<Client> = (0..50).map(|_| serve.connect()).collect();
    for r in &mut readers {
        r.call("subscribe", json!({}));
    }
    let mut stuck = serve.connect();
    stuck.call("subscribe", json!({}));
    // Ask for far more than the socket buffers and the queue hold, and read none of it.
    let asked = 20_000;
    for _ in 0..asked {
        stuck.next += 1;
        let req = json!({ "id": stuck.next, "method": "schema" }).to_string();
        if stuck.ws.send(Message::text(req)).is_err() {
            break;
        }
    }
    let line = serve.stderr_line("dropped");
    assert!(line.contains("messages waited for it"), "{line}");
    // The others still get every event.
    let mut panel = w.panel(0);
    panel.call_function(FLIP_BUSY, &[]).unwrap();
    for r in &mut readers {
        r.event(w.id(0), "thinking");
    }
    panel.call_function(FLIP_BUSY, &[]).unwrap();
    for r in &mut readers {
        r.event(w.id(0), "idle");
    }
    // The stuck one gets what was already on its way, then the connection ends.
    let mut got = 0;
    while let Ok(m) = stuck.ws.read() {
        got += usize::from(m.is_text());
    }
    assert!(got < asked, "{got} replies of {asked}");
}

#[test]
fn the_dashboard_shows_every_session_and_follows_state_changes() {
    let w = open(&[
        Window::new(Layout::Current, "dash-a"),
        Window::new(Layout::LegacyFrame, "dash-b"),
        Window::new(Layout::LegacyTarget, "<b>dash-c</b>"),
    ]);
    let serve = start("dashboard", &[], &[]);
    let (_tab, mut page) = dashboard(&serve);
    let ids: Vec<&str> = (0..3).map(|i| w.id(i)).collect();
    let rows = rows_in_state(&mut page, &ids, "idle");
    assert_eq!(rows[0]["workspace"], "dash-a");
    // Page text is shown as the text it is, never as markup: a title holding
    // `<b>` shows those characters, not a bold element.
    let listed = serve.connect().call("sessions.list", json!({}));
    let workspace = &row(&listed, w.id(2))["session"]["workspace"];
    assert_eq!(workspace, "<b>dash-c</b>");
    assert_eq!(rows[2]["workspace"], *workspace);
    assert_eq!(rows[2]["elements"], 0);
    let mut panel = w.panel(1);
    panel.call_function(FLIP_BUSY, &[]).unwrap();
    rows_in_state(&mut page, &[w.id(1)], "thinking");
    panel.call_function(FLIP_BUSY, &[]).unwrap();
    rows_in_state(&mut page, &[w.id(1)], "idle");
}

#[test]
fn approve_in_the_dashboard_presses_that_choice_for_that_row() {
    let w = open(&[
        Window::new(Layout::Current, "ask-a").start("approval"),
        Window::new(Layout::Current, "ask-b").start("approval"),
    ]);
    let serve = start("dashboard-approve", &[], &[]);
    let (_tab, mut page) = dashboard(&serve);
    rows_in_state(&mut page, &[w.id(0), w.id(1)], "awaiting_approval");
    let table = serve.connect().call("subscribe", json!({}));
    let approval = &row(&table["sessions"], w.id(0))["approval"];
    assert_eq!(approval["kind"], "command", "{table}");
    // The card shows the whole command and a button per choice; Run is pressed.
    let expression = format!(
        "(function (id) {{ return new Promise((resolve) => {{
          const row = document.querySelector('.row[data-target=\"' + id + '\"]');
          const asked = row.querySelector('.asked').textContent;
          const choices = Array.from(row.querySelectorAll('.choices button')).map((b) => b.textContent);
          const note = row.querySelector('.said');
          const obs = new MutationObserver(() => {{
            if (note.textContent.startsWith('pressed')) {{ obs.disconnect(); resolve({{ asked, choices, said: note.textContent }}); }}
          }});
          obs.observe(note, {{ subtree: true, childList: true, characterData: true }});
          row.querySelector('button[data-choice=\"Run\"]').click();
        }}); }})({})",
        json!(w.id(0))
    );
    let got = evaluate(&mut page, &expression);
    let command = approval["command"].as_str().expect("a command");
    assert_eq!(got["asked"], command, "{got}");
    let labels: Vec<Value> = approval["choices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["label"].clone())
        .collect();
    assert_eq!(got["choices"], json!(labels), "{got}");
    assert_eq!(got["said"], "pressed 'Run'", "{got}");
    // Exactly that choice, on that window only.
    assert_eq!(pressed(&w, 0), ["Run"]);
    assert_eq!(pressed(&w, 1), Vec::<String>::new());
    rows_in_state(&mut page, &[w.id(0)], "idle");
}

/// A chat at a question form has the question and its options on its card, as the
/// text they are (markup in them stays text), with no button to answer it: the card
/// of one already asking when the page opened, and of one that comes to ask; the
/// question goes once the form is answered in the IDE.
#[test]
fn the_dashboard_shows_a_question_and_its_options_as_text() {
    let markup = "Use <img src=x onerror=\"document.title='pwned'\"> or <b>SQLite</b>?";
    let w = open(&[
        Window::new(Layout::Current, "quiz-a").start("question"),
        Window::new(Layout::Current, "quiz-b")
            .scenario(&format!("question,instant,question={markup}")),
    ]);
    let serve = start("dashboard-question", &[], &[]);
    let (_tab, mut page) = dashboard(&serve);
    rows_in_state(&mut page, &[w.id(0)], "awaiting_input");
    rows_in_state(&mut page, &[w.id(1)], "idle");
    serve.connect().call(
        "prompt",
        json!({ "session": w.id(1), "text": "pick a database" }),
    );
    rows_in_state(&mut page, &[w.id(1)], "awaiting_input");
    let cards = |page: &mut cdp::Connection| {
        let expression = format!(
            "(function (ids) {{ return {{ title: document.title, cards: ids.map((id) => {{
              const row = document.querySelector('.row[data-target=\"' + id + '\"]');
              const q = row.querySelector('.question');
              const text = q.querySelector('.question-text');
              return {{ hidden: q.hidden, text: text.textContent, elements: text.children.length,
                options: Array.from(q.querySelectorAll('.options li')).map((li) => li.textContent),
                buttons: row.querySelectorAll('.choices button').length,
                images: row.querySelectorAll('img').length }};
            }}) }}; }})({})",
            json!([w.id(0), w.id(1)])
        );
        evaluate(page, &expression)
    };
    let got = cards(&mut page);
    let options = json!(["Postgres", "SQLite"]);
    let asking = &got["cards"][0];
    assert_eq!(asking["hidden"], false, "{got}");
    assert_eq!(
        asking["text"], "Which database should the service use?",
        "{got}"
    );
    assert_eq!(asking["options"], options, "{got}");
    let came = &got["cards"][1];
    assert_eq!(came["hidden"], false, "{got}");
    assert_eq!(came["text"], markup, "{got}");
    assert_eq!(came["options"], options, "{got}");
    for card in [asking, came] {
        assert_eq!(
            (&card["elements"], &card["buttons"], &card["images"]),
            (&json!(0), &json!(0), &json!(0)),
            "{got}"
        );
    }
    assert_ne!(got["title"], "pwned", "{got}");

    // Asked something else in the same state: a `question_changed` event, and the card
    // shows the new question at once.
    let mut subscribed = serve.connect();
    subscribed.call("subscribe", json!({}));
    let other = "Which cache should the service use?";
    w.panel(0)
        .call_function(
            "function (t) { document.querySelector('.question-form p').textContent = t; }",
            &[json!(other)],
        )
        .unwrap();
    let changed = loop {
        let v = subscribed.read();
        if v["event"]["session"]["target_id"] == w.id(0) {
            break v["event"].clone();
        }
    };
    assert_eq!(changed["type"], "question_changed", "{changed}");
    assert_eq!(changed["current"], "awaiting_input", "{changed}");
    assert_eq!(changed["question"]["text"], other, "{changed}");
    assert_eq!(changed["question"]["options"], options, "{changed}");
    let shown = format!(
        "(function (id, want) {{ return new Promise((resolve) => {{
          const text = document.querySelector('.row[data-target=\"' + id + '\"] .question-text');
          const done = () => text.textContent === want && resolve(text.textContent);
          if (done()) return;
          new MutationObserver(done).observe(text, {{ subtree: true, childList: true, characterData: true }});
        }}); }})({}, {})",
        json!(w.id(0)),
        json!(other)
    );
    assert_eq!(evaluate(&mut page, &shown), other);
    assert_eq!(cards(&mut page)["cards"][1]["text"], markup);

    // Answered in the IDE: the turn goes on, and its card no longer shows the question.
    let skip = "function () { Array.from(document.querySelectorAll('button')).find((b) => b.textContent === 'Skip').click(); }";
    w.panel(1).call_function(skip, &[]).unwrap();
    rows_in_state(&mut page, &[w.id(1)], "idle");
    let got = cards(&mut page);
    assert_eq!(got["cards"][1]["hidden"], true, "{got}");
    assert_eq!(got["cards"][0]["hidden"], false, "{got}");
}

/// A test HTTP server: each POST's body, parsed, on the receiver.
fn webhook_server() -> (u16, Receiver<Value>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = crossbeam_channel::unbounded();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let _ = conn
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            if tx.send(serde_json::from_slice(&body).unwrap()).is_err() {
                return;
            }
        }
    });
    (port, rx)
}

/// A FIFO the command hook writes its lines to; each line on the receiver.
fn hook_fifo(name: &str) -> (PathBuf, Receiver<String>) {
    let path = std::env::temp_dir().join(format!("angrav-hook-{}-{name}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    assert!(
        Command::new("mkfifo")
            .arg(&path)
            .status()
            .unwrap()
            .success()
    );
    // Opened for writing too, so it never reads as ended between two hooks.
    let fifo = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    let (tx, rx) = crossbeam_channel::unbounded();
    std::thread::spawn(move || {
        for line in BufReader::new(fifo).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    (path, rx)
}

#[test]
fn hooks_and_webhooks_get_one_event_per_approval() {
    let w = open(&[Window::new(Layout::Current, "hooked").scenario("approval,flicker")]);
    let target = w.id(0).to_string();
    let (port, posted) = webhook_server();
    let (fifo, lines) = hook_fifo("approval");
    // Page text reaches the hook on stdin and in the environment only.
    let hook = r#"printf '%s %s %s\n' "$ANGRAV_EVENT" "$ANGRAV_STATE" "$(cat)" > "$HOOK_FIFO""#;
    let webhook = format!("http://127.0.0.1:{port}/hook");
    let serve = start(
        "hooks",
        &["--on", "state_change", hook, "--webhook", &webhook],
        &[("HOOK_FIFO", fifo.to_str().unwrap())],
    );
    let mut c = serve.connect();
    c.call("subscribe", json!({}));
    let mut hooked: Vec<Value> = Vec::new();
    let mut webhooked: Vec<Value> = Vec::new();
    let mine = |e: &Value| e["session"]["target_id"] == target.as_str();
    for round in 0..2 {
        c.call(
            "prompt",
            json!({ "session": target, "text": format!("approval round {round}") }),
        );
        c.event(&target, "awaiting_approval");
        let mut panel = w.panel(0);
        panel
            .call_function(
                "function () { Array.from(document.querySelectorAll('.approval-card button')).find((b) => b.textContent.startsWith('Run')).click(); }",
                &[],
            )
            .unwrap();
        // The turn's settled end reaches both hooks.
        let idle_seen = |list: &[Value]| {
            list.iter()
                .filter(|e| mine(e) && e["current"] == "idle")
                .count()
                > round
        };
        while !idle_seen(&hooked) {
            let line = lines.recv_timeout(PATIENCE).expect("a hook line");
            let mut parts = line.splitn(3, ' ');
            let (event, state) = (parts.next().unwrap(), parts.next().unwrap());
            let json: Value = serde_json::from_str(parts.next().unwrap()).unwrap();
            assert_eq!(json["type"], event);
            assert_eq!(json["current"].as_str().unwrap_or(""), state);
            hooked.push(json);
        }
        while !idle_seen(&webhooked) {
            webhooked.push(posted.recv_timeout(PATIENCE).expect("a webhook POST"));
        }
    }
    for (name, got) in [("command hook", &hooked), ("webhook", &webhooked)] {
        let count = |state: &str| {
            got.iter()
                .filter(|e| mine(e) && e["current"] == state)
                .count()
        };
        assert_eq!(count("awaiting_approval"), 2, "{name}: {got:?}");
        // The busy marker flickers mid-turn: no idle fired before each turn's end.
        assert_eq!(count("idle"), 2, "{name}: {got:?}");
    }
    let _ = std::fs::remove_file(fifo);
}

/// `sessions watch` of chat `target` running `hook` on each awaiting_approval, with
/// `HOOK_FIFO` set to `fifo`; returned once its snapshot line says it follows the chat,
/// with its stdout (kept open: a watch whose reader is gone ends).
fn watch_hooked(
    target: &str,
    hook: &str,
    fifo: &std::path::Path,
) -> (Reaped, BufReader<std::process::ChildStdout>) {
    let mut watch = Reaped(
        common::angrav_bin()
            .args(["--cdp", sim().endpoint().label()])
            .args(["sessions", "watch", "--json", "--session", target])
            .args(["--on", "state_change:awaiting_approval", hook])
            .env("HOOK_FIFO", fifo)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("run angrav"),
    );
    let mut out = BufReader::new(watch.0.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    assert!(first.contains("snapshot"), "{first}");
    (watch, out)
}

#[test]
fn sessions_watch_runs_the_same_hooks() {
    let w = open(&[Window::new(Layout::Current, "watch-hooked").scenario("approval,flicker")]);
    let target = w.id(0).to_string();
    let (fifo, lines) = hook_fifo("watch");
    let hook =
        r#"printf '%s %s %s\n' "$ANGRAV_EVENT" "$ANGRAV_STATE" "$ANGRAV_SESSION" > "$HOOK_FIFO""#;
    let (watch, _out) = watch_hooked(&target, hook, &fifo);
    let o = common::angrav(&["--session", &target, "prompt", "hooked from watch"]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let line = lines.recv_timeout(PATIENCE).expect("a hook line");
    let session = line
        .strip_prefix("state_change awaiting_approval ")
        .unwrap_or_else(|| panic!("{line}"));
    assert!(target.starts_with(session), "{line}");
    drop(watch);
    let _ = std::fs::remove_file(fifo);
}

/// Whether process `pid` is gone (a zombie waiting for its reaper counts as gone),
/// looking until `PATIENCE` has passed: a SIGKILL takes effect a moment after it is
/// sent.
fn gone(pid: &str) -> bool {
    let dead = || {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |stat| {
            stat.rsplit(") ").next().is_some_and(|s| s.starts_with('Z'))
        })
    };
    let by = Instant::now() + PATIENCE;
    while !dead() {
        if Instant::now() >= by {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    true
}

#[test]
fn a_hook_still_running_ends_with_the_watch() {
    let w = open(&[Window::new(Layout::Current, "watch-hook-ends").scenario("approval")]);
    let target = w.id(0).to_string();
    let (fifo, lines) = hook_fifo("ends");
    // A hook that would run ten minutes, with a child of its own; it says both pids
    // first. It ignores SIGTERM: only the SIGKILL after the grace ends it.
    let hook = r#"trap '' TERM; sleep 600 & echo "$$ $!" > "$HOOK_FIFO"; wait"#;
    let (mut watch, _out) = watch_hooked(&target, hook, &fifo);
    let o = common::angrav(&["--session", &target, "prompt", "a hook to outlive"]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let line = lines.recv_timeout(PATIENCE).expect("the hook's pids");
    let pids: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(pids.len(), 2, "{line}");
    // ^C ends the watch; the hook and its child end with it.
    common::signal(watch.0.id(), "INT");
    assert_eq!(watch.0.wait().unwrap().code(), Some(130));
    for pid in pids {
        assert!(
            gone(pid),
            "the hook's process {pid} outlived the watch ({line})"
        );
    }
    let _ = std::fs::remove_file(fifo);
}

/// One command's result: exit code and stdout.
type Ran = (Option<i32>, String);

/// Runs `angrav ARGS` attached to the test browser itself.
fn local(args: &[&str]) -> Ran {
    let o = common::angrav(args);
    (o.status.code(), common::stdout(&o))
}

/// Runs `angrav --server URL ARGS`: asked of `serve` (its token from its state
/// directory), or with `by_env`, named by ANGRAV_SERVER and ANGRAV_TOKEN.
fn remote(serve: &Serve, args: &[&str], by_env: bool) -> Ran {
    let url = format!("http://127.0.0.1:{}", serve.port);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_angrav"));
    cmd.env("TMPDIR", common::tmp_dir());
    if by_env {
        cmd.env("ANGRAV_SERVER", &url)
            .env("ANGRAV_TOKEN", &serve.token)
            .env("ANGRAV_STATE_DIR", common::state_dir());
    } else {
        cmd.args(["--server", &url])
            .env("ANGRAV_STATE_DIR", &serve.state);
    }
    let o = cmd
        .args(args)
        .env_remove("ANGRAV_CDP")
        .output()
        .expect("run angrav --server");
    (o.status.code(), common::stdout(&o))
}

/// `out` with every `duration_ms` of a JSON result 0: how long a wait took differs
/// from run to run.
fn timeless(out: &str) -> String {
    let Ok(mut v) = serde_json::from_str::<Value>(out) else {
        return out.to_string();
    };
    let zero = |o: &mut Value| {
        if o.get("duration_ms").is_some() {
            o["duration_ms"] = json!(0);
        }
    };
    zero(&mut v);
    if let Some(rows) = v.get_mut("sessions").and_then(Value::as_array_mut) {
        rows.iter_mut().for_each(zero);
    }
    format!("{v}\n")
}

/// Runs `args` (`SESSION` standing for `session`) here and through serve, and asserts
/// the same exit code and stdout, without and with --json. `twin`: the session the
/// run through serve acts on instead (for a command that changes its chat), its id
/// and its approvals' ids read back as `session`'s.
fn same(serve: &Serve, args: &[&str], session: &str, twin: Option<&str>) -> Ran {
    // The twin's approval cards have ids of their own (an id names one card).
    let cards = |id: &str| {
        let (_, out) = local(&["--json", "status", "--session", id]);
        let v: Value = serde_json::from_str(&out).unwrap_or_default();
        v["approvals"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| a["id"].as_str().map(String::from))
            .collect::<Vec<String>>()
    };
    let ids: Vec<(String, String)> = twin
        .map(|t| cards(t).into_iter().zip(cards(session)).collect())
        .unwrap_or_default();
    let mut first = None;
    for json in [false, true] {
        let with = |id: &str| {
            let mut all: Vec<&str> = args.to_vec();
            let at = all.iter().position(|a| *a == "SESSION");
            if let Some(i) = at {
                all[i] = id;
            }
            if json {
                all.insert(0, "--json");
            }
            all.iter().map(|s| s.to_string()).collect::<Vec<String>>()
        };
        let here = with(session);
        let there = with(twin.unwrap_or(session));
        let here: Vec<&str> = here.iter().map(String::as_str).collect();
        let there: Vec<&str> = there.iter().map(String::as_str).collect();
        let mine = local(&here);
        let mine = (mine.0, timeless(&mine.1));
        let (code, mut out) = remote(serve, &there, json);
        if let Some(t) = twin {
            out = out.replace(t, session).replace(&t[..6], &session[..6]);
            for (theirs, mine) in &ids {
                out = out.replace(theirs, mine);
            }
        }
        let out = timeless(&out);
        assert_eq!(
            (code, &out),
            (mine.0, &mine.1),
            "angrav {here:?} here and through serve"
        );
        first.get_or_insert(mine);
        if twin.is_some() && !json {
            // A command that changes the chat runs once, in the form `args` give.
            return first.unwrap();
        }
    }
    first.unwrap()
}

#[test]
fn commands_through_serve_print_what_they_print_themselves() {
    let w = open(&[
        Window::new(Layout::Current, "remote-twin"),
        Window::new(Layout::Current, "remote-twin"),
        Window::new(Layout::Current, "remote-ask").start("approval"),
        Window::new(Layout::Current, "remote-ask").start("approval"),
        Window::new(Layout::Current, "remote-ask").start("approval"),
        Window::new(Layout::Current, "remote-ask").start("approval"),
        Window::new(Layout::Current, "remote-twin"),
        Window::new(Layout::Current, "remote-twin"),
    ]);
    let serve = start("remote", &[], &[]);
    let id = |i: usize| w.id(i);
    // A turn on each twin, asked here and through serve: the same answer printed.
    let (code, answer) = same(
        &serve,
        &["prompt", "--session", "SESSION", "--wait", "hello"],
        id(0),
        Some(id(1)),
    );
    assert_eq!(code, Some(0));
    assert!(answer.contains("hello"), "{answer}");
    same(
        &serve,
        &[
            "--json",
            "prompt",
            "--session",
            "SESSION",
            "--wait",
            "again",
        ],
        id(6),
        Some(id(7)),
    );
    same(
        &serve,
        &["prompt", "--session", "SESSION", "and on"],
        id(0),
        Some(id(1)),
    );
    same(
        &serve,
        &["--json", "prompt", "--session", "SESSION", "and on"],
        id(6),
        Some(id(7)),
    );
    // Reading a chat, here and through serve.
    for args in [
        &["wait", "--session", "SESSION"][..],
        &["output", "last", "--session", "SESSION"],
        &["output", "code", "--session", "SESSION", "--lang", "rust"],
        &["history", "--session", "SESSION"],
        &["status", "--session", "SESSION"],
    ] {
        let (code, out) = same(&serve, args, id(0), None);
        assert_eq!(code, Some(0), "{args:?}: {out}");
        assert!(!out.is_empty(), "{args:?}");
    }
    // A chat awaiting approval: wait ends on it with exit 1.
    let (code, out) = same(&serve, &["wait", "--session", "SESSION"], id(2), None);
    assert_eq!(code, Some(1));
    assert!(out.contains("awaiting_approval"), "{out}");
    // Answered here and through serve: the same choice pressed, the same result.
    let (code, out) = same(
        &serve,
        &["approve", "--session", "SESSION"],
        id(2),
        Some(id(3)),
    );
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(common::pressed(&w, 2), ["Run"]);
    assert_eq!(common::pressed(&w, 3), ["Run"]);
    same(
        &serve,
        &["--json", "deny", "--session", "SESSION"],
        id(4),
        Some(id(5)),
    );
    assert_eq!(common::pressed(&w, 4), ["Reject"]);
    assert_eq!(common::pressed(&w, 5), ["Reject"]);
    same(&serve, &["new", "--session", "SESSION"], id(0), Some(id(1)));
    // Errors exit alike: no such session (3), several sessions and none chosen (3),
    // a usage error (2), nothing to cancel (1).
    for (args, code) in [
        (&["status", "--session", "no-such-chat"][..], 3),
        (&["output", "last"], 3),
        (
            &[
                "prompt",
                "--session",
                "SESSION",
                "--session",
                "SESSION",
                "hi",
            ],
            2,
        ),
        (&["cancel", "--session", "SESSION"], 1),
    ] {
        let (got, out) = same(&serve, args, id(0), None);
        assert_eq!((got, out.as_str()), (Some(code), ""), "{args:?}");
    }
    // The list: this test's rows are the same.
    for json in [false, true] {
        let args: &[&str] = if json {
            &["--json", "sessions", "list"]
        } else {
            &["sessions", "list"]
        };
        let mine = |out: &str| -> Vec<String> {
            if json {
                let rows: Value = serde_json::from_str(out).unwrap();
                (0..8)
                    .map(|i| common::by_target(&rows, id(i)).unwrap().to_string())
                    .collect()
            } else {
                (0..8)
                    .map(|i| {
                        out.lines()
                            .find(|l| l.starts_with(&id(i)[..6]))
                            .unwrap()
                            .split_whitespace()
                            .collect::<Vec<_>>()
                            .join(" ")
                    })
                    .collect()
            }
        };
        let (code, here) = local(args);
        let (got, there) = remote(&serve, args, false);
        assert_eq!((got, mine(&there)), (code, mine(&here)));
    }
    // The reports of the waits, but for how long each took.
    let args = [
        "--json",
        "sessions",
        "wait",
        "--session",
        id(0),
        "--session",
        id(2),
    ];
    let (code, here) = local(&args);
    let (got, there) = remote(&serve, &args, false);
    assert_eq!((got, timeless(&there)), (code, timeless(&here)));
    // What serve does not run is refused, said so.
    let (code, out) = remote(&serve, &["sessions", "list", "--all"], false);
    assert_eq!((code, out.as_str()), (Some(2), ""));
}

#[test]
fn strangers_still_sending_their_head_are_capped_and_the_rest_refused_at_once() {
    let serve = start("heads", &[], &[]);
    // Connections that never finish their request head hold their place...
    let silent: Vec<std::net::TcpStream> = (0..angrav::serve::HEADS_AT_ONCE)
        .map(|_| std::net::TcpStream::connect(("127.0.0.1", serve.port)).unwrap())
        .collect();
    // ...and the next is refused at once, before any token is looked at.
    let mut next = std::net::TcpStream::connect(("127.0.0.1", serve.port)).unwrap();
    next.set_read_timeout(Some(common::serve::PATIENCE))
        .unwrap();
    let mut reply = String::new();
    BufReader::new(&mut next).read_line(&mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 503"), "{reply}");
    // Gone, they make room again: a request with the token is answered.
    drop(silent);
    let auth = format!("Authorization: Bearer {}", serve.token);
    let by = std::time::Instant::now() + common::serve::PATIENCE;
    loop {
        let status = serve.status_of("/", std::slice::from_ref(&auth));
        if status.contains("200") {
            break;
        }
        assert!(
            status.contains("503") && std::time::Instant::now() < by,
            "{status}"
        );
    }
}

/// The dashboard follows the approval it shows: a command that changes under its row
/// shows at once, and an Approve click for the approval it showed before presses
/// nothing.
#[test]
fn the_dashboard_row_follows_a_changed_command_and_an_old_id_presses_nothing() {
    let w = open(&[Window::new(Layout::Current, "flip-row").start("approval")]);
    let serve = start("dashboard-flip", &[], &[]);
    let (_tab, mut page) = dashboard(&serve);
    rows_in_state(&mut page, &[w.id(0)], "awaiting_approval");
    let read_row = format!(
        "(function (id) {{ const r = document.querySelector('.row[data-target=\"' + id + '\"]');
          return {{ id: r.dataset.approval, asked: r.querySelector('.asked').textContent }}; }})({})",
        json!(w.id(0))
    );
    let before = evaluate(&mut page, &read_row);
    assert_eq!(before["asked"], "cargo test", "{before}");
    w.panel(0)
        .call_function(
            "function () { document.querySelector('.approval-card pre').textContent = 'rm -rf ~'; }",
            &[],
        )
        .unwrap();
    let expression = format!(
        "(function (id, old) {{ return new Promise((resolve) => {{
          const row = document.querySelector('.row[data-target=\"' + id + '\"]');
          const asked = () => row.querySelector('.asked').textContent;
          const press = () => {{
            const shown = {{ asked: asked(), id: row.dataset.approval }};
            // An Approve click made for the approval shown before.
            row.dataset.approval = old;
            const note = row.querySelector('.said');
            const obs = new MutationObserver(() => {{
              if (note.textContent && note.textContent !== 'pressing…') {{ obs.disconnect(); resolve(Object.assign(shown, {{ said: note.textContent }})); }}
            }});
            obs.observe(note, {{ subtree: true, childList: true, characterData: true }});
            row.querySelector('button[data-choice=\"Run\"]').click();
          }};
          if (asked() === 'rm -rf ~') return press();
          const watch = new MutationObserver(() => {{ if (asked() === 'rm -rf ~') {{ watch.disconnect(); press(); }} }});
          watch.observe(row, {{ subtree: true, childList: true, characterData: true }});
        }}); }})({}, {})",
        json!(w.id(0)),
        before["id"]
    );
    let got = evaluate(&mut page, &expression);
    assert_eq!(got["asked"], "rm -rf ~", "{got}");
    assert_ne!(got["id"], before["id"], "{got}");
    assert!(
        got["said"].as_str().unwrap().contains("no longer shows"),
        "{got}"
    );
    assert!(pressed(&w, 0).is_empty(), "{:?}", pressed(&w, 0));
}

/// Window `i` received `text` and nothing else (said in short: a prompt may be long).
fn received_only(w: &common::Windows, i: usize, text: &str) {
    let got = w.received(i);
    let short: Vec<String> = got.iter().map(|t| t.chars().take(40).collect()).collect();
    assert!(got == [text], "window {i} received {short:?}");
}

/// Drops a client without a goodbye (its connection simply ends), then waits until
/// serve says it saw it leave with its call running.
fn leave(serve: &Serve, client: Client) {
    drop(client);
    serve.stderr_line("left with 1 call(s) running");
}

#[test]
fn a_client_gone_mid_typing_leaves_the_editor_as_it_was_and_serve_goes_on() {
    let w = open(&[
        Window::new(Layout::Current, "gone-typing-1").scenario("instant,hold-typing"),
        Window::new(Layout::LegacyFrame, "gone-typing-2").scenario("instant,hold-typing"),
        Window::new(Layout::LegacyTarget, "gone-typing-3").scenario("instant,hold-typing"),
    ]);
    let spaces = ["gone-typing-1", "gone-typing-2", "gone-typing-3"];
    // The second editor holds a draft of the user's, which the prompt is to replace.
    w.type_draft(1, "my own draft");
    let serve = start("gone-typing", &[], &[]);
    let long = format!("a long prompt {}", "x".repeat(200 * 1024));
    let calls = [
        (
            "prompt",
            json!({ "session": w.id(0), "text": long, "wait": true }),
        ),
        (
            "prompt",
            json!({ "session": w.id(1), "text": long, "replace_draft": true }),
        ),
        ("fanout", json!({ "sessions": [w.id(2)], "text": long })),
    ];
    for ((method, params), workspace) in calls.into_iter().zip(spaces) {
        let mut c = serve.connect();
        c.send(method, params);
        // The page is held mid-typing while the client goes away.
        let gate = format!("typing-{workspace}");
        assert!(angrav::sim::gate_reached(&gate, PATIENCE), "never typed");
        leave(&serve, c);
        angrav::sim::open_gate(&gate);
    }
    // serve goes on: the next prompt waits for the editor, finds it as it was (empty:
    // delivered; the draft put back: refused, the draft left alone) and is answered.
    let mut c = serve.connect();
    let done = c.call(
        "prompt",
        json!({ "session": w.id(0), "text": "short and sweet", "wait": true }),
    );
    assert_eq!(done["state"], "idle", "{done}");
    received_only(&w, 0, "short and sweet");
    let fanned = c.call(
        "fanout",
        json!({ "sessions": [w.id(2)], "text": "short and sweet" }),
    );
    assert_eq!(fanned["sessions"][0]["status"], "done", "{fanned}");
    received_only(&w, 2, "short and sweet");
    let id = c.send(
        "prompt",
        json!({ "session": w.id(1), "text": "short and sweet" }),
    );
    let refused = c.reply(id);
    assert_eq!(refused["error"]["code"], "not_accepted", "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("the editor holds a draft (\"my own draft\")"),
        "{refused}"
    );
    assert_eq!(w.editor_text(1), "my own draft");
    assert!(w.received(1).is_empty());
    for workspace in spaces {
        let got = angrav::sim::receipts(workspace);
        assert!(
            got.iter().all(|t| t != &long),
            "{workspace} got the long prompt"
        );
    }
}

#[test]
fn serve_stopped_mid_typing_leaves_every_editor_as_it_was() {
    let spaces = ["stopped-typing-1", "stopped-typing-2"];
    let w = open(&[
        Window::new(Layout::Current, spaces[0]).scenario("instant,hold-typing"),
        Window::new(Layout::LegacyFrame, spaces[1]).scenario("instant,hold-typing"),
    ]);
    // The second editor holds a draft of the user's, which the prompt is to replace.
    w.type_draft(1, "my own draft");
    let mut serve = start("stopped-typing", &[], &[]);
    let long = format!("a long prompt {}", "x".repeat(200 * 1024));
    let calls = [
        json!({ "session": w.id(0), "text": long, "wait": true }),
        json!({ "session": w.id(1), "text": long, "replace_draft": true }),
    ];
    // Both pages held mid-typing when serve gets SIGTERM.
    let mut clients = Vec::new();
    for (params, workspace) in calls.into_iter().zip(spaces) {
        let mut c = serve.connect();
        c.send("prompt", params);
        clients.push(c);
        let gate = format!("typing-{workspace}");
        assert!(angrav::sim::gate_reached(&gate, PATIENCE), "never typed");
    }
    common::signal(serve.child.0.id(), "TERM");
    // Serve saw the signal before the typing goes on.
    serve.stderr_line("angrav: stopping");
    for workspace in spaces {
        angrav::sim::open_gate(&format!("typing-{workspace}"));
    }
    assert_eq!(serve.child.0.wait().unwrap().code(), Some(0));
    // The typed text taken out, the draft put back; nothing received.
    assert_eq!(w.editor_text(0).trim(), "");
    assert_eq!(w.editor_text(1), "my own draft");
    for (i, workspace) in spaces.into_iter().enumerate() {
        assert!(w.received(i).is_empty(), "{workspace} received a prompt");
        assert!(angrav::sim::receipts(workspace).is_empty());
    }
}

/// How many threads of process `pid` have this name (as `ps -T` shows them).
fn threads_named(pid: u32, name: &str) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|comm| comm.trim_end() == name)
        .count()
}

/// Waits until process `pid` has `n` threads named `name`.
fn until_threads(pid: u32, name: &str, n: usize) {
    let by = std::time::Instant::now() + PATIENCE;
    while threads_named(pid, name) != n {
        assert!(
            std::time::Instant::now() < by,
            "{} threads named {name}, not {n}",
            threads_named(pid, name)
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn a_client_gone_mid_wait_has_its_wait_ended_and_no_other() {
    let w = open(&[
        Window::new(Layout::Current, "gone-wait-1").start("thinking"),
        Window::new(Layout::LegacyFrame, "gone-wait-2").start("thinking"),
    ]);
    let serve = start("gone-wait", &[], &[]);
    let pid = serve.child.0.id();
    // Two clients wait, for ten minutes at most, on agents that keep working.
    let mut leaving = serve.connect();
    leaving.send(
        "wait",
        json!({ "sessions": [w.id(0), w.id(1)], "timeout_ms": 600_000 }),
    );
    let mut staying = serve.connect();
    let kept = staying.send(
        "wait",
        json!({ "sessions": [w.id(1)], "timeout_ms": 600_000 }),
    );
    until_threads(pid, "serve wait", 2);
    // One leaves: its wait ends now, not in ten minutes; the other's goes on.
    leave(&serve, leaving);
    until_threads(pid, "serve wait", 1);
    let mut panel = w.panel(1);
    panel
        .call_function(common::serve::FLIP_BUSY, &[])
        .expect("the agent stops");
    let report = staying.reply(kept);
    assert_eq!(report["result"]["timed_out"], false, "{report}");
    assert_eq!(
        report["result"]["sessions"][0]["status"], "done",
        "{report}"
    );
    until_threads(pid, "serve wait", 0);
}

/// Waits until window `i` has received `text`.
fn until_received(w: &common::Windows, i: usize, text: &str) {
    let by = Instant::now() + PATIENCE;
    while !w.received(i).iter().any(|t| t == text) {
        assert!(Instant::now() < by, "window {i} never received {text:?}");
    }
}

/// Reloads window `i`, its agent working when it is back (as Antigravity shows a
/// turn still running after a reload of its window).
fn reload_working(w: &common::Windows, i: usize) {
    let mut page =
        cdp::Connection::open(w.0[i].web_socket_debugger_url.as_deref().unwrap()).unwrap();
    evaluate(
        &mut page,
        "setTimeout(() => location.replace(location.href.replace('start=idle', 'start=thinking'))), true",
    );
}

#[test]
fn a_client_gone_after_a_reload_has_its_prompt_wait_ended() {
    let scenario = "instant,start-delay=600000";
    let w = open(&[
        Window::new(Layout::Current, "gone-reload-1").scenario(scenario),
        Window::new(Layout::LegacyTarget, "gone-reload-2").scenario(scenario),
    ]);
    let serve = start("gone-reload", &[], &[]);
    let pid = serve.child.0.id();
    let mut watching = serve.connect();
    for i in 0..2 {
        let mut c = serve.connect();
        c.send(
            "prompt",
            json!({ "session": w.id(i), "text": "outlive the page", "wait": true, "timeout_ms": 600_000 }),
        );
        // Delivered (seen so by serve: journaled), its turn not started yet; then the
        // window reloads, the agent working, and the prompt's wait finds the panel
        // again. (A reload before serve saw the delivery makes it unconfirmed.)
        until_received(&w, i, "outlive the page");
        until_journaled(&serve, w.id(i), "prompt_sent");
        reload_working(&w, i);
        until_state(&mut watching, w.id(i), "thinking");
        // The client leaves: its wait ends now, not in ten minutes.
        leave(&serve, c);
        until_threads(pid, "serve prompt", 0);
    }
    let lines = logged(&serve);
    for i in 0..2 {
        assert_eq!(
            of_type(&lines, w.id(i), "prompt_sent").len(),
            1,
            "{lines:#?}"
        );
        // Its wait ended with the client: the turn was not seen to end.
        assert!(
            of_type(&lines, w.id(i), "turn_finished").is_empty(),
            "{lines:#?}"
        );
    }
}

/// `angrav log --json` of serve's state directory.
fn logged(serve: &Serve) -> Vec<Value> {
    let o = Command::new(env!("CARGO_BIN_EXE_angrav"))
        .args(["--json", "log"])
        .env("ANGRAV_STATE_DIR", &serve.state)
        .env("TMPDIR", common::tmp_dir())
        .output()
        .expect("run angrav log");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Serve's journal once it has a line of this type about window `target`.
fn until_journaled(serve: &Serve, target: &str, kind: &str) -> Vec<Value> {
    let by = std::time::Instant::now() + PATIENCE;
    loop {
        let lines = logged(serve);
        if !of_type(&lines, target, kind).is_empty() {
            return lines;
        }
        assert!(
            std::time::Instant::now() < by,
            "never journaled a {kind}: {lines:#?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// The journal's lines about window `target` of this type.
fn of_type<'a>(lines: &'a [Value], target: &str, kind: &str) -> Vec<&'a Value> {
    lines
        .iter()
        .filter(|l| l["type"] == kind && l["session"]["target_id"] == target)
        .collect()
}

#[test]
fn a_serve_prompt_is_journaled_as_the_cli_journals_it_client_or_no_client() {
    let w = open(&[
        Window::new(Layout::Current, "kept-1").scenario("instant"),
        Window::new(Layout::LegacyFrame, "kept-2").scenario("instant,hold-enter"),
    ]);
    let serve = start("kept", &[], &[]);
    // A client that stays: the prompt, then how its turn ended, with the answer.
    let mut c = serve.connect();
    let done = c.call(
        "prompt",
        json!({ "session": w.id(0), "text": "keep me", "wait": true }),
    );
    assert_eq!(done["state"], "idle", "{done}");
    // A client that leaves once its prompt is submitted (the page holds the Enter):
    // the delivery is still followed, and the prompt journaled.
    let mut gone = serve.connect();
    gone.send(
        "prompt",
        json!({ "session": w.id(1), "text": "keep me too", "wait": true }),
    );
    assert!(angrav::sim::gate_reached("enter-kept-2", PATIENCE));
    leave(&serve, gone);
    angrav::sim::open_gate("enter-kept-2");
    let lines = until_journaled(&serve, w.id(1), "prompt_sent");
    assert_eq!(w.received(1), ["keep me too"]);
    let sent = of_type(&lines, w.id(0), "prompt_sent");
    assert_eq!(sent.len(), 1, "{lines:#?}");
    assert_eq!(sent[0]["prompt"], "keep me");
    let ended = of_type(&lines, w.id(0), "turn_finished");
    assert_eq!(ended.len(), 1, "{lines:#?}");
    assert_eq!(ended[0]["prompt"], "keep me");
    assert_eq!(ended[0]["outcome"], "idle");
    assert_eq!(ended[0]["answer"], done["answer"]["content"], "{lines:#?}");
    assert_eq!(
        of_type(&lines, w.id(1), "prompt_sent")[0]["prompt"],
        "keep me too"
    );
    // Its wait ended with the client: the turn was not seen to end.
    assert!(
        of_type(&lines, w.id(1), "turn_finished").is_empty(),
        "{lines:#?}"
    );
}

/// A session's state as serve's `status` gives it (none: not read yet).
fn state_of(client: &mut Client, session: &str) -> Option<String> {
    let id = client.send("status", json!({ "session": session }));
    client.reply(id)["result"]["state"]
        .as_str()
        .map(String::from)
}

/// Asks serve's `status` until `session` is `want`.
fn until_state(client: &mut Client, session: &str, want: &str) {
    let by = Instant::now() + PATIENCE;
    while state_of(client, session).as_deref() != Some(want) {
        assert!(Instant::now() < by, "{session} never {want}");
    }
}

/// serve answers from memory, but never shows a page that stopped answering as it
/// was: while a page is frozen, status and the list say `unresponsive`, and the
/// other window is still read; once it answers again, it is idle again.
#[test]
fn a_frozen_page_is_unresponsive_through_serve_while_it_is_frozen() {
    let w = open(&[
        Window::new(Layout::Current, "frozen-serve-1"),
        Window::new(Layout::V2, "frozen-serve-2"),
    ]);
    let serve = start("frozen", &[], &[]);
    let mut client = serve.connect();
    until_state(&mut client, w.id(0), "idle");
    let mut stalled = common::freeze(&w.0[0], Duration::from_secs(6));
    let (back, answered) = crossbeam_channel::bounded(1);
    let waiting = std::thread::spawn(move || {
        common::recovered(&mut stalled);
        let _ = back.send(());
    });
    let mut seen = Vec::new();
    loop {
        let now = state_of(&mut client, w.id(0));
        if now.as_deref() == Some("unresponsive") {
            break;
        }
        seen.push(now);
        // Paced by the page's own recovery, which must not come first.
        if answered.recv_timeout(Duration::from_millis(50)).is_ok() {
            panic!("serve showed {seen:?} throughout the freeze");
        }
    }
    let id = client.send("sessions.list", json!({}));
    let list = client.reply(id);
    let rows = list["result"].as_array().expect("rows");
    let row = |i: usize| {
        rows.iter()
            .find(|r| r["session"]["target_id"] == w.id(i))
            .expect("a row per window")
    };
    assert_eq!(row(0)["state"], "unresponsive", "{list}");
    assert_eq!(row(1)["state"], "idle", "{list}");
    waiting.join().unwrap();
    until_state(&mut client, w.id(0), "idle");
}

/// `sessions approve` with nothing awaiting approval prints through `--server`
/// exactly what it prints attached: an empty report, exit 1 (a serve whose only
/// upstream is gone has no chats at all).
#[test]
fn sessions_approve_with_nothing_to_answer_prints_the_same_through_serve() {
    let serve = common::serve::start_at(
        "",
        "nothing-awaits",
        &["--upstream", "http://127.0.0.1:9/?token=x"],
        &[],
    );
    let (code, out) = remote(&serve, &["--json", "sessions", "approve"], false);
    assert_eq!(
        (code, out.as_str()),
        (Some(1), "{\"timed_out\":false,\"sessions\":[]}\n")
    );
    let (code, out) = remote(&serve, &["sessions", "deny"], false);
    assert_eq!((code, out.as_str()), (Some(1), ""));
}

/// `sessions approve --server` with a chat named that has closed: as attached, a
/// chat named that is not there is an error before anything is pressed, never a
/// press made and then left out of the answer.
#[test]
fn sessions_approve_through_serve_with_a_chat_named_closed_presses_nothing() {
    let w = open(&[
        Window::new(Layout::Current, "named-gone").start("approval"),
        Window::new(Layout::V2, "named-gone").start("approval"),
    ]);
    let serve = start("named-gone", &[], &[]);
    let mut client = serve.connect();
    until_state(&mut client, w.id(0), "awaiting_approval");
    sim().close(w.id(1)).unwrap();
    let by = Instant::now() + PATIENCE;
    loop {
        let id = client.send("status", json!({ "session": w.id(1) }));
        if client.reply(id)["error"]["code"] == "session_not_found" {
            break;
        }
        assert!(Instant::now() < by, "serve never saw the window close");
    }
    let args = [
        "--json",
        "sessions",
        "approve",
        "--session",
        w.id(0),
        "--session",
        w.id(1),
    ];
    let (code, out) = remote(&serve, &args, false);
    assert_eq!((code, out.as_str()), (Some(3), ""));
    assert!(pressed(&w, 0).is_empty());
    // The chat still there is answered once named alone.
    let (code, out) = remote(&serve, &args[..5], false);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(pressed(&w, 0), ["Run"]);
}

/// A watch's snapshot lines through `--server` are those of a watch attached: the
/// same fields, and none that the attached one leaves out (an idle chat's empty
/// `approvals`), but for when and in what order they were printed.
#[test]
fn watch_snapshots_through_serve_are_the_attached_ones() {
    let w = open(&[
        Window::new(Layout::Current, "watch-same"),
        Window::new(Layout::Current, "watch-same").start("approval"),
    ]);
    let serve = start("watch-same", &[], &[]);
    for i in 0..2 {
        let args = [
            "--json",
            "sessions",
            "watch",
            "--session",
            w.id(i),
            "--count",
            "0",
        ];
        let snapshot = |(code, out): Ran| -> Value {
            assert_eq!(code, Some(0), "{out}");
            let mut v: Value = serde_json::from_str(out.lines().next().expect("a line"))
                .unwrap_or_else(|e| panic!("{e}: {out}"));
            let o = v.as_object_mut().unwrap();
            o.remove("seq");
            o.remove("timestamp");
            v
        };
        let here = snapshot(local(&args));
        let there = snapshot(remote(&serve, &args, false));
        assert_eq!(there, here);
    }
}

/// serve's `quota` without `--ls`: the language server of the first window whose one
/// answers; one that stops answering (garbage, then a hang: its wait is not taken
/// from the search) is dropped and another found in its place; with none answering,
/// the answer says so of each (never "no reply within 0 ms"), and the search stands a
/// while; but when the one dropped is the only one, the next call asks it again.
/// One after the other: serve looks in every window of the browser.
#[test]
fn quota_drops_a_language_server_that_stops_answering_and_finds_another() {
    use angrav::sim::ls::Mode;
    quota_drops_and_finds(Mode::Garbage, "quota-ls");
    quota_drops_and_finds(Mode::Hang, "quota-hang");
    quota_asks_the_only_one_again(Mode::Garbage, "quota-only");
    quota_asks_the_only_one_again(Mode::Hang, "quota-only-hang");
}

/// Two windows of one language server, which fails one call.
fn quota_asks_the_only_one_again(mode: angrav::sim::ls::Mode, name: &str) {
    use angrav::sim::ls::{Conversation, Mode, SimLs};
    let (one, two) = (
        "abcd0002-0000-4000-8000-0000000000b1",
        "abcd0002-0000-4000-8000-0000000000b2",
    );
    let ls = SimLs::start(
        "t0ken-only",
        vec![
            Conversation::new(one, "quota"),
            Conversation::new(two, "quota"),
        ],
    )
    .unwrap();
    let _w = open(&[
        Window::new(Layout::Current, &format!("{name}-1")).ls(&ls, one),
        Window::new(Layout::V2, &format!("{name}-2")).ls(&ls, two),
    ]);
    let serve = start(name, &[], &[]);
    let mut c = serve.connect();
    let first = c.call("quota", json!({}));
    assert_eq!(first["ls"]["url"], ls.url(), "{first}");
    ls.set_mode(mode);
    let none = c.call("quota", json!({}));
    assert!(none["ls"].is_null(), "{none}");
    let why = none["reason"].as_str().unwrap();
    assert!(why.contains("no other language server found"), "{why}");
    // It answers again: the next call asks it.
    ls.set_mode(Mode::Normal);
    let again = c.call("quota", json!({}));
    assert_eq!(again["ls"]["url"], ls.url(), "{again}");
    assert_eq!(again["models"][0]["remaining"], 0.6, "{again}");
}

fn quota_drops_and_finds(mode: angrav::sim::ls::Mode, name: &str) {
    use angrav::sim::ls::{Conversation, SimLs};
    let conversation = |id: &str| vec![Conversation::new(id, "quota")];
    let (one, two) = (
        "abcd0001-0000-4000-8000-0000000000a1",
        "abcd0001-0000-4000-8000-0000000000a2",
    );
    let lss = [
        SimLs::start("t0ken-one", conversation(one)).unwrap(),
        SimLs::start("t0ken-two", conversation(two)).unwrap(),
    ];
    let _w = open(&[
        Window::new(Layout::Current, &format!("{name}-1")).ls(&lss[0], one),
        Window::new(Layout::LegacyTarget, &format!("{name}-2")).ls(&lss[1], two),
    ]);
    let serve = start(name, &[], &[]);
    let mut c = serve.connect();
    let first = c.call("quota", json!({}));
    assert_eq!(first["ls"]["found_by"], "panel_request", "{first}");
    assert_eq!(first["models"][0]["remaining"], 0.6, "{first}");
    let used = lss
        .iter()
        .position(|ls| first["ls"]["url"] == ls.url())
        .expect("one of the two");
    let (used, other) = (&lss[used], &lss[1 - used]);
    // The one found stops answering: the next call finds the other.
    used.set_mode(mode);
    let second = c.call("quota", json!({}));
    assert_eq!(second["ls"]["url"], other.url(), "{second}");
    assert_eq!(second["models"][0]["remaining"], 0.6, "{second}");
    // Neither answers: no language server, and why.
    other.set_mode(mode);
    let none = c.call("quota", json!({}));
    assert!(none["ls"].is_null(), "{none}");
    assert_eq!(none["models"], json!([]), "{none}");
    let why = none["reason"].as_str().unwrap();
    assert!(
        why.contains(&format!("the language server at {}", other.url())),
        "{why}"
    );
    assert!(why.contains("no language server answers"), "{why}");
    assert!(!why.contains("within 0 ms"), "{why}");
    assert!(
        why.contains(&format!("{} does not answer", used.url())),
        "{why}"
    );
    // Asked again at once: that search stands, and the answer says until when.
    let again = c.call("quota", json!({}));
    assert!(again["ls"].is_null(), "{again}");
    let why = again["reason"].as_str().unwrap();
    assert!(why.contains("looked for again in"), "{why}");
}

/// A browser of serve's own killed: `endpoint_lost`, then each of its chats'
/// `state_change` to `unresponsive` saying why, as `sessions watch` says it.
#[test]
fn a_lost_browser_makes_its_chats_unresponsive_saying_why() {
    let browser = angrav::sim::Simulator::start().expect("a browser of its own");
    for (layout, name) in [(Layout::Current, "lost-1"), (Layout::V2, "lost-2")] {
        browser.open(&Window::new(layout, name)).expect("a window");
    }
    let cdp = browser.endpoint().label().to_string();
    let serve = common::serve::start_at(&cdp, "lost", &[], &[]);
    let mut client = serve.connect();
    let table = client.call("subscribe", json!({}));
    let chats: Vec<String> = table["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["session"]["target_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(chats.len(), 2, "{table}");

    browser.kill();
    let lost = loop {
        let v = client.read();
        if v["event"]["type"] == "endpoint_lost" {
            break v["event"].clone();
        }
    };
    assert_eq!(lost["endpoint"], cdp.as_str(), "{lost}");
    for id in &chats {
        let frozen = client.event(id, "unresponsive");
        assert_eq!(frozen["type"], "state_change", "{frozen}");
        assert_eq!(frozen["reason"], format!("endpoint {cdp} lost"), "{frozen}");
        assert!(frozen["seq"].as_u64() > lost["seq"].as_u64(), "{frozen}");
    }
}
