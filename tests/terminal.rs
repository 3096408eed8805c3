//! What reaches the user's terminal: page text with escape sequences made visible on a
//! pseudo-terminal (unless `--raw`), exact in pipes and JSON; titles HTML-unescaped;
//! and a reader that goes away ends angrav at once, with exit code 0.

mod common;

use std::io::BufRead;
use std::process::{Command, ExitStatus, Output, Stdio};
use std::time::Duration;

use angrav::panel::Layout;
use angrav::sim::Window;
use common::{angrav, angrav_json, open, stderr, stdout};

/// OSC 52 (writes the clipboard), clear screen, a C1 CSI, a right-to-left override:
/// short enough for the simulated agent to quote whole in its answer.
const HOSTILE: &str = "\x1b]52;c;aGk=\x07\x1b[2J\u{9b}31m\u{202e}x";
/// How [`HOSTILE`] shows on a terminal.
const SHOWN: &str = "\\e]52;c;aGk=\\x07\\e[2J\\u{9b}31m\\u{202e}x";

/// Runs angrav on a pseudo-terminal (util-linux `script`): stdout and stderr are both
/// the terminal, and the output is what the terminal received.
fn on_terminal(args: &[&str]) -> Output {
    let quote = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
    let mut cmd = vec![
        quote(env!("CARGO_BIN_EXE_angrav")),
        "--cdp".into(),
        quote(common::sim().endpoint().label()),
    ];
    cmd.extend(args.iter().map(|a| quote(a)));
    Command::new("script")
        .env("ANGRAV_STATE_DIR", common::state_dir())
        .env("TMPDIR", common::tmp_dir())
        .args(["-qec", &cmd.join(" "), "/dev/null"])
        .env("SHELL", "/bin/sh")
        .env_remove("ANGRAV_SELECTORS")
        .stdin(Stdio::null())
        .output()
        .expect("these tests need `script` (util-linux; Debian: bsdutils)")
}

/// The terminal saw the hostile text only in its visible form.
fn assert_neutralised(o: &Output, what: &str) {
    let seen = stdout(o);
    for raw in ["\x1b]52", "\x1b[2J", "\u{9b}", "\u{202e}", "\x07"] {
        assert!(
            !seen.contains(raw),
            "{what}: {raw:?} reached the terminal: {seen:?}"
        );
    }
    assert!(
        seen.contains(SHOWN),
        "{what}: the text is not shown visibly: {seen:?}"
    );
}

#[test]
fn page_text_is_shown_visibly_on_a_terminal_and_exact_elsewhere() {
    let w = open(&[Window::new(Layout::Current, "term-answer").scenario("instant")]);
    let prompt = std::env::temp_dir().join(format!("angrav-hostile-{}", std::process::id()));
    std::fs::write(&prompt, HOSTILE).unwrap();
    let id = w.id(0);

    // The simulated agent quotes the prompt in its answer: the result lines and the
    // answer of a fan-out, on a terminal (with the live lines on stderr).
    let fanout = on_terminal(&[
        "sessions",
        "fanout",
        "--session",
        id,
        "-f",
        prompt.to_str().unwrap(),
    ]);
    std::fs::remove_file(&prompt).unwrap();
    assert_eq!(fanout.status.code(), Some(0), "{}", stdout(&fanout));
    assert_neutralised(&fanout, "sessions fanout");
    assert_eq!(w.received(0), [HOSTILE], "the prompt itself arrives exact");

    for command in [&["output", "last"][..], &["history"]] {
        let o = on_terminal(&[&["--session", id][..], command].concat());
        assert_eq!(o.status.code(), Some(0), "{command:?}: {}", stdout(&o));
        assert_neutralised(&o, &command.join(" "));
    }

    // --raw: the page's text as it is, escape sequences included.
    let raw = on_terminal(&["--raw", "--session", id, "history"]);
    assert!(stdout(&raw).contains(HOSTILE), "{:?}", stdout(&raw));

    // JSON on a terminal: every control character escaped, the text exact once parsed.
    let json = on_terminal(&["--json", "--session", id, "history"]);
    let seen = stdout(&json);
    assert!(
        !seen.contains(['\x1b', '\u{9b}', '\u{202e}']),
        "raw controls in JSON: {seen:?}"
    );
    let history: serde_json::Value = serde_json::from_str(&seen).expect("JSON");
    assert_eq!(history[0]["content"], HOSTILE);

    // Into a pipe, the text is written as it is: scripts get what the page holds.
    let piped = angrav(&["--session", id, "history"]);
    assert!(stdout(&piped).contains(HOSTILE), "{:?}", stdout(&piped));
}

#[test]
fn error_texts_titles_and_messages_are_shown_visibly_on_a_terminal() {
    // Chromium turns the C0 controls of a title into spaces, but keeps bidi overrides.
    let workspace = "term-\u{202e}gnp.exe";
    let w = open(&[Window::new(Layout::Current, workspace).start("quota")]);
    let id = w.id(0);
    // The page's error text carries the hostile sequences.
    w.panel(0)
        .call_function(
            "function (t) { document.querySelector('.quota').textContent = \
             'Model quota limit exceeded ' + t + '. You can resume using this model at 5:42 PM.'; }",
            &[serde_json::json!(HOSTILE)],
        )
        .expect("edit the error text");
    let status = angrav_json(&["--session", id, "status"], 0);
    assert_eq!(status["session"]["workspace"], workspace, "{status}");
    assert!(
        status["error"].as_str().unwrap().contains(HOSTILE),
        "{status}"
    );

    let cases: [(&[&str], i32); 3] = [(&["status"], 0), (&["wait"], 1), (&["sessions", "wait"], 1)];
    for (command, code) in cases {
        let o = on_terminal(&[&["--session", id][..], command].concat());
        assert_eq!(o.status.code(), Some(code), "{command:?}: {}", stdout(&o));
        assert_neutralised(&o, &command.join(" "));
    }
    // The title, in the list and in an error message on stderr (an unknown session
    // lists the sessions there are).
    let list = on_terminal(&["sessions", "list"]);
    let table = on_terminal(&["--session", id, "sessions", "watch", "--count", "0"]);
    assert!(
        stdout(&table).starts_with("\x1b[2KID ") && !stdout(&table).contains("\x1b[2J"),
        "the watch table keeps its own codes, and clears no screen: {:?}",
        stdout(&table)
    );
    // Its columns line up as shown: the hostile workspace measured made visible.
    let drawn = stdout(&table);
    let rows: Vec<&str> = drawn
        .split("\r\n")
        .map(|l| l.trim_start_matches("\x1b[2K"))
        .collect();
    let at = rows[0].find("STATE").expect("a STATE column");
    assert_eq!(rows[1].get(at..at + 5), Some("error"), "{drawn:?}");
    let unknown = on_terminal(&["--session", "no-such-session-term", "status"]);
    assert_eq!(unknown.status.code(), Some(3), "{}", stdout(&unknown));
    assert!(stdout(&unknown).contains("no session matches"));
    for o in [&list, &table, &unknown] {
        assert!(stdout(o).contains("term-\\u{202e}gnp.exe"), "{}", stdout(o));
        assert!(!stdout(o).contains('\u{202e}'), "{}", stdout(o));
    }

    let raw = on_terminal(&["--raw", "--session", id, "status"]);
    assert!(stdout(&raw).contains(HOSTILE), "{:?}", stdout(&raw));
    assert!(stdout(&raw).contains(workspace), "{:?}", stdout(&raw));
}

#[test]
fn titles_with_html_characters_are_shown_and_selected_as_they_are() {
    let workspace = "t&1 <x> \"q\" 's' &amp;";
    let w = open(&[Window::new(Layout::Current, workspace)]);
    let title = format!("main.rs - {workspace} - Antigravity");
    let list = angrav_json(&["sessions", "list"], 0);
    let listed = common::by_target(&list, w.id(0)).expect("listed");
    assert_eq!(listed["session"]["title"], title.as_str());
    assert_eq!(listed["session"]["workspace"], workspace);

    let status = angrav(&["--session", workspace, "status"]);
    assert_eq!(status.status.code(), Some(0), "{}", stderr(&status));
    assert!(
        stdout(&status).contains(&format!("title:    {title}\n")),
        "{}",
        stdout(&status)
    );
}

/// Waits for `child` to exit; a child still running after a minute is killed (by its
/// id) and the test fails: it would never have ended.
fn exit_of(child: std::process::Child) -> ExitStatus {
    let pid = child.id();
    let (tx, rx) = crossbeam_channel::bounded(1);
    let mut child = child;
    std::thread::spawn(move || tx.send(child.wait()));
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(status) => status.expect("wait"),
        Err(_) => {
            let _ = Command::new("kill").arg(pid.to_string()).status();
            panic!("angrav kept running after its reader had gone");
        }
    }
}

#[test]
fn watch_ends_when_its_reader_goes_although_no_event_comes() {
    let w = open(&[Window::new(Layout::Current, "term-head")]);
    let mut child = common::angrav_bin()
        .args(["--cdp", common::sim().endpoint().label()])
        .args(["--json", "sessions", "watch", "--session", w.id(0)])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run angrav");
    // `| head -1`: one line read, then the reader is gone. The idle chat sends no event.
    let mut reader = std::io::BufReader::new(child.stdout.take().expect("piped"));
    let mut first = String::new();
    reader.read_line(&mut first).expect("the snapshot line");
    assert!(first.contains("\"snapshot\""), "{first}");
    drop(reader);
    assert_eq!(exit_of(child).code(), Some(0));
}

#[test]
fn every_command_exits_0_when_its_stdout_is_closed() {
    let w = open(&[Window::new(Layout::Current, "term-closed").history(40)]);
    let id = w.id(0);
    for args in [
        &["--help"][..],
        &["profile"],
        &["--session", id, "history"],
        &["--session", id, "status"],
        &["sessions", "list"],
        &["--session", id, "sessions", "wait"],
    ] {
        let (reader, writer) = std::io::pipe().expect("a pipe");
        drop(reader);
        // `--help` and `profile` talk to no browser, and take no --cdp.
        let local = matches!(args, ["--help"] | ["profile"]);
        let cdp = if local {
            vec![]
        } else {
            vec!["--cdp", common::sim().endpoint().label()]
        };
        let child = common::angrav_bin()
            .args(cdp)
            .args(args)
            .stdout(writer)
            .stderr(Stdio::null())
            .spawn()
            .expect("run angrav");
        assert_eq!(exit_of(child).code(), Some(0), "{args:?}");
    }
}

#[test]
fn the_watch_table_redraws_only_its_own_lines() {
    let w = open(&[Window::new(Layout::Current, "term-watch")]);
    // On a terminal: a line written before the watch, then the watch's table, which a
    // prompt to the chat makes redraw.
    let line = format!(
        "echo before-the-watch; '{}' --cdp {} --session {} sessions watch --count 1",
        env!("CARGO_BIN_EXE_angrav"),
        common::sim().endpoint().label(),
        w.id(0)
    );
    let mut child = common::Reaped(
        Command::new("script")
            .args(["-qec", &line, "/dev/null"])
            .env("ANGRAV_STATE_DIR", common::state_dir())
            .env("TMPDIR", common::tmp_dir())
            .env("TERM", "xterm")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("script (util-linux) runs"),
    );
    let terminal = common::lines(child.0.stdout.take().expect("piped"));
    let mut seen = Vec::new();
    while !seen.iter().any(|l: &String| l.contains("0 events")) {
        let l = terminal
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("no watch table: {seen:?}"));
        seen.push(l);
    }
    let o = angrav(&["--session", w.id(0), "prompt", "redraw", "--wait"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    seen.extend(terminal.iter());
    assert_eq!(child.0.wait().unwrap().code(), Some(0), "{seen:?}");
    let shown = common::screen(&seen.join("\n"));
    assert!(
        shown.iter().any(|l| l == "before-the-watch"),
        "what was on the screen stays: {shown:#?}"
    );
    let headers = shown.iter().filter(|l| l.starts_with("ID ")).count();
    assert_eq!(headers, 1, "one table, redrawn in place: {shown:#?}");
    assert!(
        shown.iter().any(|l| l.contains("1 event."))
            && !shown.iter().any(|l| l.contains("0 events")),
        "{shown:#?}"
    );
}
