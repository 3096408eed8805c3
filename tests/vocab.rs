//! The JSON vocabulary: every command's `--json` output, in every outcome (ok, a chat
//! in error or awaiting approval, a timeout, a session not found), has the shape that
//! `angrav schema` prints; and every object that names a chat names it the same way.

mod common;

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use angrav::panel::Layout;
use angrav::sim::Window;
use common::{check, open, stderr, stdout};
use serde_json::Value;

/// What `angrav schema` prints.
fn schema() -> Value {
    let o = common::angrav_bin()
        .arg("schema")
        .output()
        .expect("run angrav");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    serde_json::from_slice(&o.stdout).expect("the schema is JSON")
}

/// The vocabulary, and a state directory of its own for the commands that keep state.
struct Vocab {
    schema: Value,
    state: PathBuf,
}

impl Vocab {
    fn new() -> Vocab {
        let state = std::env::temp_dir().join(format!("angrav-vocab-{}", std::process::id()));
        Vocab {
            schema: schema(),
            state,
        }
    }

    /// Runs `angrav --json ARGS` (`stdin` as its input), asserting its exit code.
    fn run(&self, args: &[&str], stdin: &str, code: i32) -> Output {
        use std::io::Write;
        // The commands that talk to no browser take no --cdp.
        let local = matches!(
            args,
            ["version"]
                | ["alias", "list"]
                | ["group", "list"]
                | ["help", ..]
                | ["completions", _]
                | ["profile"]
        );
        let cdp = if local {
            vec![]
        } else {
            vec!["--cdp", common::sim().endpoint().label()]
        };
        let mut child = Command::new(env!("CARGO_BIN_EXE_angrav"))
            .args(cdp)
            .arg("--json")
            .args(args)
            .env("ANGRAV_STATE_DIR", &self.state)
            .env("TMPDIR", common::tmp_dir())
            .env_remove("ANGRAV_SELECTORS")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run angrav");
        let mut input = child.stdin.take().expect("piped");
        input.write_all(stdin.as_bytes()).expect("write stdin");
        drop(input);
        let o = child.wait_with_output().expect("angrav exits");
        common::exited(&o, args, code);
        o
    }

    /// Runs `angrav --json ARGS` and checks its stdout against what the schema says
    /// `command` prints; returns the output (for NDJSON: the lines as a list).
    fn ok(&self, command: &str, args: &[&str], code: i32) -> Value {
        self.ok_in(command, args, "", code)
    }

    fn ok_in(&self, command: &str, args: &[&str], stdin: &str, code: i32) -> Value {
        let o = self.run(args, stdin, code);
        self.conforms(command, &stdout(&o))
    }

    fn conforms(&self, command: &str, out: &str) -> Value {
        let shape = &self.schema["commands"][command];
        assert!(!shape.is_null(), "the schema has no '{command}'");
        let (shape, value) = match shape.get("ndjson") {
            Some(line) => {
                let lines = out
                    .lines()
                    .filter(|l| !l.is_empty())
                    .map(|l| serde_json::from_str::<Value>(l).expect("NDJSON"))
                    .collect();
                (
                    &serde_json::json!({ "type": "array", "items": line }),
                    lines,
                )
            }
            None => (
                shape,
                serde_json::from_str(out)
                    .unwrap_or_else(|e| panic!("{command}: not one JSON document ({e}): {out}")),
            ),
        };
        if let Err(e) = check(&self.schema, shape, &value, command) {
            panic!("{command}: {e}\n{value:#}");
        }
        value
    }

    /// A failure: nothing on stdout, the error object on stderr.
    fn error(&self, args: &[&str], code: i32) {
        let o = self.run(args, "", code);
        assert_eq!(stdout(&o), "", "{args:?}");
        let e: Value = serde_json::from_str(&stderr(&o)).expect("one JSON object on stderr");
        if let Err(why) = check(&self.schema, &self.schema["error"], &e, "error") {
            panic!("{args:?}: {why}");
        }
        assert_eq!(e["error"]["exit"], code);
    }
}

impl Drop for Vocab {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.state);
    }
}

/// The session object names the chat of `target_id`, with its workspace.
fn names(v: &Value, target_id: &str, workspace: &str) {
    assert_eq!(v["session"]["target_id"], target_id, "{v}");
    assert!(
        target_id.starts_with(v["session"]["id"].as_str().unwrap()),
        "{v}"
    );
    assert_eq!(v["session"]["workspace"], workspace, "{v}");
}

#[test]
fn every_command_prints_the_shape_the_schema_gives_in_every_outcome() {
    let v = Vocab::new();
    let w = open(&[
        Window::new(Layout::Current, "vocab-ok")
            .scenario("instant")
            .history(1),
        Window::new(Layout::LegacyFrame, "vocab-approval").scenario("approval"),
        Window::new(Layout::V2, "vocab-error").scenario("error"),
        Window::new(Layout::Current, "vocab-never").scenario("start-delay=600000"),
        Window::new(Layout::Current, "vocab-busy").start("thinking"),
        Window::new(Layout::LegacyTarget, "vocab-failed").start("error"),
    ]);
    let id = |i: usize| w.id(i);

    // Reading.
    let list = v.ok("sessions list", &["sessions", "list", "--all"], 0);
    names(common::by_target(&list, id(0)).unwrap(), id(0), "vocab-ok");
    let s = v.ok("status", &["--session", id(0), "status"], 0);
    names(&s, id(0), "vocab-ok");
    let s = v.ok("status", &["--session", id(5), "status"], 0);
    assert_eq!(s["state"], "error");
    v.ok("output last", &["--session", id(0), "output", "last"], 0);
    v.ok("output code", &["--session", id(0), "output", "code"], 0);
    v.ok("history", &["--session", id(0), "history"], 0);
    v.ok("doctor", &["--session", id(0), "doctor"], 0);
    v.ok("version", &["version"], 0);
    v.ok("help", &["help"], 0);
    v.ok("help", &["help", "sessions"], 0);
    v.ok("help", &["help", "prompt"], 0);
    v.ok("completions", &["completions", "fish"], 0);
    v.ok("profile", &["profile"], 0);
    // `simulate` runs until stopped: its first line is its result.
    let mut simulator = common::Reaped(
        common::angrav_bin()
            .args(["simulate", "--json", "--windows", "1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run angrav simulate"),
    );
    let first = common::lines(simulator.0.stdout.take().expect("piped"))
        .recv_timeout(Duration::from_secs(60))
        .expect("simulate prints its endpoint");
    let started = v.conforms("simulate", &first);
    assert_eq!(started["windows"], 1, "{started}");
    // It says what to paste into another shell; pasted, `quota` (which needs the
    // language server) runs against the simulator without a flag.
    let said = common::lines(simulator.0.stderr.take().expect("piped"));
    let export = loop {
        let line = said
            .recv_timeout(Duration::from_secs(60))
            .expect("simulate says what to paste");
        if let Some(rest) = line.trim().strip_prefix("export ") {
            break rest.to_string();
        }
    };
    let pasted: Vec<(&str, &str)> = export
        .split_whitespace()
        .map(|kv| kv.split_once('=').expect("NAME=VALUE"))
        .collect();
    let keys: Vec<&str> = pasted.iter().map(|(k, _)| *k).collect();
    assert_eq!(
        keys,
        ["ANGRAV_CDP", "ANGRAV_LS", "ANGRAV_LS_TOKEN"],
        "{export}"
    );
    assert_eq!(pasted[0].1, started["endpoint"], "{export}");
    let quota = common::angrav_bin()
        .args(["--json", "quota"])
        .envs(pasted.iter().copied())
        .output()
        .expect("run angrav quota");
    assert_eq!(quota.status.code(), Some(0), "{quota:?}");
    let models: Value = serde_json::from_slice(&quota.stdout).expect("JSON");
    assert!(!models.as_array().expect("a list").is_empty(), "{models}");
    drop(simulator);
    let read_only = v.ok("demo", &["demo"], 0);
    assert_eq!(
        (&read_only["simulated"], &read_only["report"]),
        (&false.into(), &Value::Null),
        "against an Antigravity that answers, the demo only lists: {read_only}"
    );

    // `prompt --wait` and `wait`: one shape, ended idle, awaiting approval, in error,
    // or timed out.
    let done = v.ok(
        "prompt --wait",
        &["--session", id(0), "prompt", "a b c", "--wait"],
        0,
    );
    names(&done, id(0), "vocab-ok");
    assert_eq!(
        (&done["status"], &done["state"], &done["timed_out"]),
        (&"done".into(), &"idle".into(), &false.into())
    );
    assert!(
        done["answer"]["content"]
            .as_str()
            .unwrap()
            .contains("You asked: `a b c`"),
        "{done}"
    );
    let a = v.ok(
        "prompt --wait",
        &["--session", id(1), "prompt", "run it", "--wait"],
        1,
    );
    assert_eq!(
        (&a["state"], &a["approvals"][0]["choices"][0]["label"]),
        (&"awaiting_approval".into(), &"Run".into()),
        "{a}"
    );
    // Answering it: the control pressed and the approval it answered.
    let pressed = v.ok("approve", &["--session", id(1), "approve"], 0);
    // None of these awaits approval now: still the report, with no rows.
    let none = &[
        "sessions",
        "approve",
        "--session",
        id(0),
        "--session",
        id(1),
    ];
    let report = v.ok("sessions approve", none, 1);
    assert_eq!(
        report["sessions"].as_array().map(Vec::len),
        Some(2),
        "{report}"
    );
    names(&pressed, id(1), "vocab-approval");
    assert_eq!(pressed["pressed"], "Run", "{pressed}");
    assert_eq!(pressed["approval"]["kind"], "command", "{pressed}");
    let e = v.ok(
        "prompt --wait",
        &["--session", id(2), "prompt", "fail", "--wait"],
        1,
    );
    assert_eq!(e["state"], "error", "{e}");
    assert!(e["error"].is_string(), "{e}");
    let t = v.ok(
        "prompt --wait",
        &[
            "--session",
            id(3),
            "prompt",
            "never",
            "--wait",
            "--timeout",
            "3s",
            "--start-within",
            "100ms",
        ],
        124,
    );
    assert_eq!(
        (&t["timed_out"], &t["status"]),
        (&true.into(), &"pending".into()),
        "{t}"
    );
    let t = v.ok(
        "wait",
        &["--session", id(4), "wait", "--timeout", "300ms"],
        124,
    );
    assert_eq!(
        (&t["timed_out"], &t["state"]),
        (&true.into(), &"thinking".into()),
        "{t}"
    );
    names(&t, id(4), "vocab-busy");
    let f = v.ok("wait", &["--session", id(5), "wait"], 1);
    assert_eq!(
        (&f["timed_out"], &f["status"], &f["state"]),
        (&false.into(), &"done".into(), &"error".into())
    );
    let i = v.ok("wait", &["--session", id(0), "wait"], 0);
    assert_eq!(i["state"], "idle");
    assert!(i["answer"]["content"].is_string(), "{i}");
    let p = v.ok("prompt", &["--session", id(0), "prompt", "no wait"], 0);
    names(&p, id(0), "vocab-ok");
    v.ok("wait", &["--session", id(0), "wait"], 0);

    // Many at once: the same rows in every outcome.
    let r = v.ok(
        "sessions wait",
        &["sessions", "wait", "--session", id(0), "--session", id(5)],
        1,
    );
    names(
        common::by_target(&r["sessions"], id(5)).unwrap(),
        id(5),
        "vocab-failed",
    );
    let r = v.ok(
        "sessions wait",
        &["sessions", "wait", "--session", id(4), "--timeout", "300ms"],
        124,
    );
    assert_eq!(r["timed_out"], true);
    v.ok(
        "sessions fanout",
        &["sessions", "fanout", "fan", "--session", id(0)],
        0,
    );
    let task = format!("{}=run", id(0));
    v.ok("sessions run", &["sessions", "run", "--task", &task], 0);
    let lines = v.ok_in(
        "dispatch",
        &["dispatch", "--session", id(0)],
        "one\ntwo\n",
        0,
    );
    names(&lines[0], id(0), "vocab-ok");
    let snapshot = v.ok(
        "sessions watch",
        &[
            "sessions",
            "watch",
            "--count",
            "0",
            "--session",
            id(1),
            "--session",
            id(5),
        ],
        0,
    );
    names(
        common::by_target(&snapshot, id(5)).unwrap(),
        id(5),
        "vocab-failed",
    );

    // Kept state.
    v.ok("alias set", &["alias", "set", "vocab-alias", id(0)], 0);
    v.ok(
        "group set",
        &["group", "set", "vocab-group", id(0), id(1)],
        0,
    );
    // No chat of the group awaits approval (the one that did was answered above):
    // still the report, with no rows, and exit 1.
    let none = v.ok(
        "sessions approve",
        &["sessions", "approve", "--group", "vocab-group"],
        1,
    );
    assert_eq!(none["sessions"], serde_json::json!([]), "{none}");
    v.ok("alias list", &["alias", "list"], 0);
    v.ok("group list", &["group", "list"], 0);
    let log = v.ok("log", &["log"], 0);
    let kinds: Vec<&str> = log
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l["type"].as_str())
        .collect();
    for kind in ["snapshot", "prompt_sent", "turn_finished"] {
        assert!(kinds.contains(&kind), "no {kind} in {log}");
    }
    // Every line a watch replays from the journal is in the vocabulary.
    let replayed = v.ok(
        "sessions watch",
        &["sessions", "watch", "--since", "0", "--count", "0"],
        0,
    );
    assert!(
        replayed.as_array().unwrap().len() > log.as_array().unwrap().len(),
        "{replayed}"
    );
    v.ok("turns", &["turns"], 0);

    let n = v.ok("new", &["--session", id(0), "new"], 0);
    names(&n, id(0), "vocab-ok");

    // Not found: the error object, for every command that takes a session.
    for args in [
        &["status"][..],
        &["wait"],
        &["prompt", "x", "--wait"],
        &["output", "last"],
        &["history"],
        &["new"],
        &["sessions", "wait"],
    ] {
        v.error(&[&["--session", "no-such-vocab"][..], args].concat(), 3);
    }
}

#[test]
fn watch_events_name_the_session_as_every_result_does() {
    let v = Vocab::new();
    let w = open(&[Window::new(Layout::Current, "vocab-watch")]);
    let (_child, rx) = common::spawn_angrav(&[
        "--json",
        "sessions",
        "watch",
        "--count",
        "2",
        "--session",
        w.id(0),
    ]);
    let first = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the snapshot line");
    let o = common::angrav(&["--session", w.id(0), "prompt", "events", "--wait"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let rest: Vec<String> = rx.iter().collect();
    let lines = v.conforms("sessions watch", &[first, rest.join("\n")].join("\n"));
    let lines = lines.as_array().unwrap();
    assert_eq!(lines.len(), 3, "{lines:?}");
    for l in lines {
        names(l, w.id(0), "vocab-watch");
    }
    assert_eq!(lines[1]["type"], "state_change");
    // The journal has each line as the watch printed it: `log --json` prints the same.
    logged_as_watched(&v, lines);
}

#[test]
fn log_json_prints_the_approval_lines_as_the_watch_printed_them() {
    let v = Vocab::new();
    let w = open(&[Window::new(Layout::Current, "vocab-approvals").start("two-cards")]);
    let (child, rx) = common::spawn_angrav(&["--json", "sessions", "watch", "--session", w.id(0)]);
    let mut lines: Vec<Value> = Vec::new();
    let mut until = |kind: &str| loop {
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("a watch line in time");
        lines.push(serde_json::from_str(&line).expect("a JSON line"));
        if lines.last().unwrap()["type"] == kind {
            return;
        }
    };
    until("snapshot");
    // One card answered in the page (`approval_resolved`), the other's command changed
    // (`approval_changed`), then answered by angrav (`approval_resolved`).
    let click = |script: &str| {
        w.panel(0)
            .call_function(&format!("function () {{ {script} }}"), &[])
            .unwrap();
    };
    click(
        "Array.from(document.querySelectorAll('button')).find((b) => b.textContent === 'Deny').click();",
    );
    until("approval_resolved");
    click("document.querySelector('.approval-card pre').textContent = 'cargo build';");
    until("approval_changed");
    let o = common::angrav(&["--session", w.id(0), "approve"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    until("approval_resolved");
    // ^C: the watch ends the ordinary way, its journal written.
    common::signal(child.0.id(), "INT");
    lines.extend(
        rx.iter()
            .map(|l| serde_json::from_str(&l).expect("a JSON line")),
    );
    let text: Vec<String> = lines.iter().map(Value::to_string).collect();
    v.conforms("sessions watch", &text.join("\n"));
    logged_as_watched(&v, &lines);
}

/// `log --json` prints each of the watch's `lines` as the watch printed it.
fn logged_as_watched(v: &Vocab, lines: &[Value]) {
    let since = lines[0]["seq"].as_u64().unwrap() - 1;
    let log = common::angrav(&["--json", "log", "--since", &since.to_string()]);
    let log = v.conforms("log", &stdout(&log));
    for l in lines {
        let same = log
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["seq"] == l["seq"]);
        assert_eq!(same, Some(l), "{log}");
    }
}

/// What prints no result on stdout: no shape for it in the schema.
const PRINTS_NOTHING: &[&str] = &["alias rm", "group rm", "serve", "schema"];

#[test]
fn every_command_that_prints_takes_json_and_has_its_shape_in_the_schema() {
    let schema = schema();
    let help = |args: &[&str]| -> Value {
        let o = common::angrav_bin()
            .args(args)
            .output()
            .expect("run angrav");
        serde_json::from_slice(&o.stdout).expect("help --json")
    };
    for c in help(&["help", "--json"])["commands"].as_array().unwrap() {
        let words = common::command_words(c);
        let command = words.join(" ");
        if PRINTS_NOTHING.contains(&command.as_str()) {
            continue;
        }
        assert!(
            !schema["commands"][&command].is_null(),
            "'{command}' prints a result: give its --json shape in src/schema.json \
             (\"commands\"), or name it in PRINTS_NOTHING here if it prints none"
        );
        let own = help(&[&["help"][..], &words, &["--json"]].concat());
        let takes_json = own["global_flags"]
            .as_array()
            .unwrap()
            .iter()
            .chain(own["flags"].as_array().unwrap())
            .any(|f| f == "--json" || f["name"] == "--json");
        assert!(takes_json, "'{command}' prints a result but refuses --json");
    }
}
