//! The command line itself: strict parsing, help, version, completions, endpoints
//! given by hand, errors as JSON, colour on a terminal, and ^C during a fan-out.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use angrav::panel::Layout;
use angrav::sim::Window;
use common::{angrav, open, stderr, stdout};
use serde_json::Value;

/// Runs angrav with exactly `args` (no `--cdp`: these need no browser).
fn bare(args: &[&str]) -> Output {
    common::angrav_bin()
        .args(args)
        .env_remove("ANGRAV_CDP")
        .env_remove("BROWSER_CDP_ENDPOINT")
        .env_remove("ANGRAV_SELECTORS")
        .output()
        .expect("run angrav")
}

#[test]
fn a_flag_that_does_not_apply_is_a_usage_error_naming_the_command() {
    for (args, flag, command) in [
        (&["status", "--wait"][..], "--wait", "status"),
        (
            &["output", "last", "--lang", "rust"],
            "--lang",
            "output last",
        ),
        (
            &["sessions", "fanout", "hi", "--task", "a=b"],
            "--task",
            "sessions fanout",
        ),
        (
            &["sessions", "list", "--session", "a"],
            "--session",
            "sessions list",
        ),
        (&["--any", "sessions", "watch"], "--any", "sessions watch"),
        (&["history", "--until-idle"], "--until-idle", "history"),
        (&["simulate", "--session", "a"], "--session", "simulate"),
        (&["profile", "--session", "a"], "--session", "profile"),
        (
            &["completions", "bash", "--timeout", "1s"],
            "--timeout",
            "completions",
        ),
        (&["version", "--settle", "1s"], "--settle", "version"),
    ] {
        let o = bare(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        let want =
            format!("angrav: {flag} does not apply to '{command}'; see 'angrav help {command}'\n");
        assert_eq!(stderr(&o), want, "{args:?}");
        assert!(o.stdout.is_empty(), "{args:?}");
    }
}

/// A shell alias with `--cdp` (or `--json`, `--color`...) in it works for the
/// commands that do not talk to Antigravity too: they take the global flags and
/// ignore those that cannot matter to them.
#[test]
fn commands_that_talk_to_no_browser_take_the_global_flags() {
    for args in [
        &["--cdp", ":9222", "help", "status"][..],
        &["--color", "never", "help"],
        &["--no-state", "version"],
        &["--cdp", ":9222", "--raw", "alias", "list"],
        &["--cdp", ":9222", "group", "list"],
        &["--cdp", ":9222", "--ls", "http://127.0.0.1:1", "profile"],
        &["--cdp", ":1", "--selectors", "x.json", "schema"],
        &["--cdp", ":1", "--no-state", "completions", "bash"],
    ] {
        let o = bare(args);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
    }
    // The help is the same as without them.
    let plain = bare(&["help", "status"]);
    let with = bare(&["--cdp", ":9222", "--no-state", "help", "status"]);
    assert_eq!(stdout(&with), stdout(&plain));
    assert!(
        stdout(&plain).contains("angrav status"),
        "{}",
        stdout(&plain)
    );
}

/// `--server` and `--conversation` together: the conversation is read from the
/// language server, so the serve would be ignored; refused as any flag serve does
/// not act on is.
#[test]
fn server_with_conversation_is_a_usage_error() {
    let o = bare(&[
        "--server",
        "http://127.0.0.1:1",
        "status",
        "--conversation",
        "X",
        "--ls",
        "http://127.0.0.1:1",
        "--ls-token",
        "t",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("--server does not apply with --conversation"),
        "{}",
        stderr(&o)
    );
    assert!(o.stdout.is_empty());
}

/// `bare` with `stdin`.
fn bare_in(args: &[&str], stdin: &str) -> Output {
    let mut command = common::angrav_bin();
    command
        .args(args)
        .env_remove("ANGRAV_CDP")
        .env_remove("BROWSER_CDP_ENDPOINT");
    common::output_in(command, stdin)
}

/// An empty prompt is refused (exit 2) before any chat is attached: the endpoint
/// named here does not answer, which would be exit 1 had angrav gone on.
#[test]
fn an_empty_prompt_is_refused_before_attaching() {
    let dead = format!(":{}", dead_port());
    for (args, stdin) in [
        (&["prompt", ""][..], ""),
        (&["prompt", "-"], "\n"),
        (&["sessions", "fanout", ""], ""),
        (&["sessions", "fanout", "  "], ""),
        (&["sessions", "fanout", "-"], ""),
        (&["sessions", "run", "--task", "beta="], ""),
        (&["sessions", "run", "--task", "a=hi", "--task", "b= "], ""),
        (&["dispatch"], ""),
    ] {
        let mut all = vec!["--cdp", dead.as_str()];
        all.extend(args);
        let o = bare_in(&all, stdin);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(o.stdout.is_empty(), "{args:?}");
    }
    let o = bare(&["--cdp", &dead, "sessions", "fanout", ""]);
    assert_eq!(
        stderr(&o),
        "angrav: the prompt is empty: give the text to send; see 'angrav help sessions fanout'\n"
    );
    // Through --server too, before asking it; and to a conversation, before asking the
    // language server.
    let o = bare(&["--server", "http://127.0.0.1:1", "prompt", ""]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let o = bare(&[
        "--ls",
        "http://127.0.0.1:1",
        "--ls-token",
        "t",
        "prompt",
        "--conversation",
        "c",
        " ",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("the prompt is empty"), "{}", stderr(&o));
}

/// With no endpoint named and none answering, the error says how to go on
/// (Antigravity's debugging port, --cdp, or `angrav simulate`), with code
/// `endpoint`; doctor --json says so on stderr as a JSON error, nothing else.
#[test]
fn nothing_found_says_how_to_start_one() {
    for port in 9222..=9229 {
        let at = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        if std::net::TcpStream::connect_timeout(&at, Duration::from_secs(1)).is_ok() {
            panic!(
                "something listens on 127.0.0.1:{port}, where angrav looks for Antigravity; \
                 this test needs 9222-9229 closed"
            );
        }
    }
    let empty = common::tmp_dir().join("no-antigravity-here");
    std::fs::create_dir_all(&empty).unwrap();
    let run = |args: &[&str]| {
        common::angrav_bin()
            .args(args)
            .env("ANGRAV_USER_DATA_DIR", &empty)
            .env_remove("ANGRAV_CDP")
            .env_remove("BROWSER_CDP_ENDPOINT")
            .env_remove("ANGRAV_SERVER")
            .env_remove("ANGRAV_SERVERS")
            .output()
            .unwrap()
    };
    let o = run(&["--json", "status"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let e: Value = serde_json::from_slice(&o.stderr).expect("a JSON error");
    assert_eq!(e["error"]["code"], "endpoint", "{e}");
    let message = e["error"]["message"].as_str().unwrap();
    assert!(message.contains("no Antigravity found"), "{message}");
    assert!(
        message.contains("--remote-debugging-port=9222"),
        "{message}"
    );
    assert!(message.contains("angrav simulate"), "{message}");
    let o = run(&["--json", "doctor"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let report: Value = serde_json::from_slice(&o.stdout).expect("the report");
    assert_eq!(
        report["endpoint"]["found_by"], "nothing_answered",
        "{report}"
    );
    let e: Value = serde_json::from_slice(&o.stderr).expect("only a JSON error on stderr");
    assert_eq!(e["error"]["code"], "endpoint", "{e}");
}

#[test]
fn words_after_a_prompt_ask_for_quotes_and_an_empty_session_is_a_usage_error() {
    let o = bare(&["prompt", "--session", "alpha", "one", "two"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("quote the prompt: angrav prompt \"one two\""),
        "{}",
        stderr(&o)
    );
    let o = bare(&["sessions", "fanout", "one", "two"]);
    assert!(stderr(&o).contains("quote the prompt"), "{}", stderr(&o));
    let o = bare(&["status", "extra"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("unexpected 'extra'"), "{}", stderr(&o));
    let o = bare(&["--session", "", "status"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("--session needs") && !stderr(&o).contains("several"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn help_in_every_form() {
    let whole = stdout(&bare(&["--help"]));
    assert_eq!(stdout(&bare(&["help"])), whole);
    assert_eq!(stdout(&bare(&[])), whole);
    for word in ["sessions wait", "completions SHELL", "--color WHEN", "130"] {
        assert!(whole.contains(word), "{word}");
    }
    // `help COMMAND` and `COMMAND --help` are the same page.
    let prompt = stdout(&bare(&["help", "prompt"]));
    assert!(
        prompt.starts_with("Usage: angrav prompt TEXT [OPTIONS]\n"),
        "{prompt}"
    );
    assert_eq!(stdout(&bare(&["prompt", "--help"])), prompt);
    assert_eq!(
        stdout(&bare(&["help", "sessions", "wait"])),
        stdout(&bare(&["sessions", "wait", "--help"]))
    );
    // A one-chat command's --session has no default; a many-chat one's has.
    assert!(
        !prompt.contains("[default: every chat]") && prompt.contains("--session ID"),
        "{prompt}"
    );
    let status = stdout(&bare(&["status", "--help"]));
    assert!(
        !status.contains("[default: every chat]") && !status.contains("--wait"),
        "{status}"
    );
    let wait = stdout(&bare(&["sessions", "wait", "--help"]));
    assert!(wait.contains("[default: every chat]"), "{wait}");
    // Each command's own --timeout: dispatch has none unless given.
    let dispatch = stdout(&bare(&["dispatch", "--help"]));
    assert!(dispatch.contains("[default: none]"), "{dispatch}");
    assert!(!dispatch.contains("120s"), "{dispatch}");
    // A group: its commands, not the whole help.
    let sessions = stdout(&bare(&["sessions", "--help"]));
    for sub in [
        "sessions list",
        "sessions wait",
        "sessions fanout",
        "sessions run",
        "sessions watch",
    ] {
        assert!(sessions.contains(sub), "{sub}: {sessions}");
    }
    assert!(!sessions.contains("simulate"), "{sessions}");
    assert_eq!(stdout(&bare(&["help", "sessions"])), sessions);
    let o = bare(&["help", "frobnicate"]);
    assert_eq!(o.status.code(), Some(2));
}

/// The global flags, which `angrav help` describes once and no command's help repeats;
/// --cdp and --json at least.
fn global_flags() -> Vec<String> {
    let whole: Value = serde_json::from_slice(&bare(&["help", "--json"]).stdout).expect("JSON");
    let names: Vec<String> = whole["flags"]
        .as_array()
        .expect("flags")
        .iter()
        .map(|f| {
            f["name"]
                .as_str()
                .unwrap()
                .split(' ')
                .next()
                .unwrap()
                .to_string()
        })
        .filter(|n| n.starts_with("--") && n != "--help" && n != "--version")
        .collect();
    assert!(names.iter().any(|n| n == "--cdp") && names.iter().any(|n| n == "--json"));
    names
}

/// Every command, as the whole help (`angrav help --json`) lists it: its words.
fn every_command() -> Vec<String> {
    let whole: Value = serde_json::from_slice(&bare(&["help", "--json"]).stdout).expect("JSON");
    whole["commands"]
        .as_array()
        .expect("commands")
        .iter()
        .map(|c| {
            let usage = c["name"].as_str().unwrap();
            // `sessions fanout TEXT` -> `sessions fanout`: the words are lower case.
            usage
                .split(' ')
                .take_while(|w| w.chars().all(|c| c.is_ascii_lowercase()))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

#[test]
fn every_commands_help_is_its_own() {
    let commands = every_command();
    assert!(commands.len() > 30, "{commands:?}");
    let whole = stdout(&bare(&["help"]));
    let global_flags = global_flags();
    for flag in &global_flags {
        assert_eq!(
            whole.matches(&format!("\n  {flag} ")).count(),
            1,
            "the whole help describes {flag} once:\n{whole}"
        );
    }
    for words in &commands {
        let argv: Vec<&str> = words.split(' ').collect();
        let text = bare(&[&argv[..], &["--help"]].concat());
        assert_eq!(text.status.code(), Some(0), "{words} --help");
        let text = stdout(&text);
        assert_eq!(
            stdout(&bare(&[&["help"][..], &argv].concat())),
            text,
            "'angrav help {words}' and 'angrav {words} --help' differ"
        );
        let json = bare(&[&["help"][..], &argv, &["--json"]].concat());
        let help: Value = serde_json::from_slice(&json.stdout)
            .unwrap_or_else(|e| panic!("help {words} --json: {e}"));
        assert!(
            help["usage"]
                .as_str()
                .unwrap()
                .starts_with(&format!("angrav {words}")),
            "{words}: {help}"
        );
        // Its own flags only: the global ones are named, not described again.
        let own: Vec<&str> = help["flags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["name"].as_str().unwrap().split(' ').next().unwrap())
            .collect();
        let global: Vec<&str> = help["global_flags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f.as_str().unwrap())
            .collect();
        for g in &global {
            assert!(
                global_flags.iter().any(|f| f == g),
                "{words}: {g} is no global flag"
            );
            assert!(!own.contains(g), "{words}: describes the global {g} again");
            assert!(!text.contains(&format!("\n  {g} ")), "{words}:\n{text}");
        }
        // The exit codes it can return, each explained, 0 and 2 always.
        let codes: Vec<u64> = help["exit_codes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["code"].as_u64().unwrap())
            .collect();
        assert!(
            codes.contains(&0) && codes.contains(&2),
            "{words}: {codes:?}"
        );
        let shown = text
            .split("Exit codes:\n")
            .nth(1)
            .expect("an exit code table");
        for code in [0, 1, 2, 3, 124, 130] {
            assert_eq!(
                shown.contains(&format!("\n  {code:<5}"))
                    || shown.starts_with(&format!("  {code:<5}")),
                codes.contains(&code),
                "{words}: exit {code}:\n{shown}"
            );
        }
    }
}

#[test]
fn a_slip_gets_the_nearest_command_or_flag() {
    for (args, want) in [
        (
            &["sesions", "list"][..],
            "angrav: unknown command 'sesions list' (did you mean 'sessions list'?); see 'angrav help sessions list'\n",
        ),
        (
            &["stauts"],
            "angrav: unknown command 'stauts' (did you mean 'status'?); see 'angrav help status'\n",
        ),
        (
            &["prompt", "hi", "--wiat"],
            "angrav: unknown option '--wiat' (did you mean '--wait'?); see 'angrav help prompt'\n",
        ),
        (
            &["status", "--sesion", "a"],
            "angrav: unknown option '--sesion' (did you mean '--session'?); see 'angrav help status'\n",
        ),
        (
            &["--jsno", "status"],
            "angrav: unknown option '--jsno' (did you mean '--json'?); see 'angrav help'\n",
        ),
        (
            &["frobnicate"],
            "angrav: unknown command 'frobnicate'; see 'angrav help'\n",
        ),
        (
            &["status", "--frobnicate"],
            "angrav: unknown option '--frobnicate'; see 'angrav help status'\n",
        ),
    ] {
        let o = bare(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert_eq!(stderr(&o), want, "{args:?}");
        assert!(o.stdout.is_empty(), "{args:?}");
    }
}

#[test]
fn prompt_says_it_delivered_and_stdin_loses_one_trailing_newline() {
    let w = open(&[Window::new(Layout::Current, "said").scenario("instant")]);
    let o = common::angrav_in(&["--session", w.id(0), "prompt", "-"], "from stdin\n");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let id = stdout(&o).split(' ').next().unwrap().to_string();
    assert!(w.id(0).starts_with(&id), "{}", stdout(&o));
    assert_eq!(stdout(&o), format!("{id} (said): delivered\n"));
    let o = common::angrav_in(&["--session", w.id(0), "prompt", "-", "--wait"], "two\n\n");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(w.received(0), ["from stdin", "two\n"]);
}

#[test]
fn version_is_one_line_and_its_details_are_json() {
    let want = format!("angrav {}\n", env!("CARGO_PKG_VERSION"));
    for args in [&["--version"][..], &["-V"], &["version"]] {
        let o = bare(args);
        assert_eq!(o.status.code(), Some(0));
        assert_eq!(stdout(&o), want, "{args:?}");
    }
    let o = bare(&["version", "--json"]);
    let v: Value = serde_json::from_slice(&o.stdout).expect("JSON");
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    let cdp: Vec<&str> = v["cdp"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        cdp.iter().any(|f| f.starts_with("Runtime.callFunctionOn")),
        "{v}"
    );
}

#[test]
fn completions_from_the_command_table() {
    let bin = env!("CARGO_BIN_EXE_angrav");
    // Bash can source it, and it completes commands, subcommands and each one's flags.
    let script = format!(
        "source <('{bin}' completions bash) && complete -p angrav && \
         COMP_WORDS=(angrav sessions w); COMP_CWORD=2; _angrav; echo \"${{COMPREPLY[*]}}\"; \
         COMP_WORDS=(angrav --cdp :1 status --); COMP_CWORD=4; _angrav; echo \"${{COMPREPLY[*]}}\""
    );
    let o = Command::new("bash")
        .env("ANGRAV_STATE_DIR", common::state_dir())
        .env("TMPDIR", common::tmp_dir())
        .args(["-c", &script])
        .output()
        .expect("bash");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "complete -F _angrav angrav");
    assert_eq!(lines[1], "wait watch");
    let status_flags: Vec<&str> = lines[2].split(' ').collect();
    assert!(status_flags.contains(&"--session"), "{out}");
    assert!(!status_flags.contains(&"--wait"), "{out}");
    let zsh = stdout(&bare(&["completions", "zsh"]));
    assert!(zsh.contains("bashcompinit") && zsh.contains("complete -F _angrav angrav"));
    let fish = stdout(&bare(&["completions", "fish"]));
    assert!(
        fish.contains(
            "__fish_seen_subcommand_from output; and __fish_seen_subcommand_from code' -l lang"
        ),
        "{fish}"
    );
    assert_eq!(bare(&["completions", "tcsh"]).status.code(), Some(2));
}

#[test]
fn completions_offer_values_files_sessions_aliases_and_groups() {
    let w = open(&[Window::new(Layout::Current, "compl-ws")]);
    for args in [
        &["alias", "set", "compl-alias", w.id(0)][..],
        &["group", "set", "compl-group", w.id(0)],
    ] {
        let o = angrav(args);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
    }
    let files = std::env::temp_dir().join(format!("angrav-compl-{}", std::process::id()));
    std::fs::create_dir_all(&files).unwrap();
    std::fs::write(files.join("rules.json"), "[]").unwrap();
    let bin = env!("CARGO_BIN_EXE_angrav");
    let bin_dir = std::path::Path::new(bin).parent().unwrap();
    // Each: the words typed (the last being completed), and what must be offered.
    let complete = |line: &str| -> Vec<String> {
        let script = format!(
            "source <(angrav completions bash) && COMP_WORDS=({line}); \
             COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1)); _angrav; printf '%s\\n' \"${{COMPREPLY[@]}}\""
        );
        let o = Command::new("bash")
            .current_dir(&files)
            .env(
                "PATH",
                format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap()),
            )
            .env("ANGRAV_STATE_DIR", common::state_dir())
            .env("TMPDIR", common::tmp_dir())
            .env("ANGRAV_CDP", common::sim().endpoint().label())
            .args(["-c", &script])
            .output()
            .expect("bash");
        assert_eq!(o.status.code(), Some(0), "{line}: {}", stderr(&o));
        stdout(&o).lines().map(String::from).collect()
    };
    let cases: [(&str, &[&str]); 7] = [
        ("angrav sessions list --color a", &["auto", "always"]),
        (
            "angrav simulate --layout legacy",
            &["legacy-frame", "legacy-target"],
        ),
        ("angrav log --kind sta", &["state_change", "stalled"]),
        ("angrav sessions watch --policy ru", &["rules.json"]),
        (
            "angrav status --session compl",
            &["compl-alias", "compl-ws"],
        ),
        ("angrav sessions wait --group compl", &["compl-group"]),
        ("angrav alias rm compl", &["compl-alias"]),
    ];
    for (line, want) in cases {
        let got = complete(line);
        assert_eq!(got, want, "{line}");
    }
    let id = complete(&format!("angrav status --session {}", &w.id(0)[..4]));
    assert!(
        id.len() == 1 && w.id(0).starts_with(&id[0]),
        "the session's id: {id:?}"
    );
    std::fs::remove_dir_all(&files).unwrap();
}

#[test]
fn profile_with_selectors_prints_the_merged_profile() {
    let file = std::env::temp_dir().join(format!("angrav-cli-profile-{}.json", std::process::id()));
    std::fs::write(&file, r#"{"extends": "default", "busy": [".my-spinner"]}"#).unwrap();
    let o = bare(&["profile", "--selectors", file.to_str().unwrap()]);
    std::fs::remove_file(&file).unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let merged: Value = serde_json::from_slice(&o.stdout).expect("JSON");
    let builtin: Value = serde_json::from_slice(&bare(&["profile"]).stdout).expect("JSON");
    assert_eq!(merged["busy"][0], ".my-spinner");
    assert_eq!(merged["busy"][1], builtin["busy"][0]);
    assert_eq!(merged["input"], builtin["input"]);
}

#[test]
fn endpoint_usage_errors_and_runtime_failures_differ() {
    let o = bare(&["--cdp", ":99999", "sessions", "list"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("out of range"), "{}", stderr(&o));
    assert!(!stderr(&o).contains("not a number"), "{}", stderr(&o));
    let o = bare(&["--cdp", "no-such-host.invalid:9222", "sessions", "list"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let o = bare(&["--cdp", &format!(":{}", dead_port()), "sessions", "list"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
}

/// A port nothing listens on (bound, then released).
fn dead_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn a_plain_http_server_gives_one_line() {
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = server.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut conn in server.incoming().map_while(Result::ok) {
            let mut request = [0; 4096];
            let _ = conn.read(&mut request);
            let page = "<html><body>\n<h1>Not Found</h1>\n<p>Nothing here.</p>\n</body></html>\n";
            let _ = write!(
                conn,
                "HTTP/1.1 404 Not Found\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{page}",
                page.len()
            );
        }
    });
    let o = bare(&["--cdp", &format!(":{port}"), "sessions", "list"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        format!("angrav: 127.0.0.1:{port} answered HTTP 404: not a DevTools endpoint\n")
    );
}

#[test]
fn the_same_endpoint_twice_counts_once_and_a_dead_one_is_a_warning() {
    let w = open(&[Window::new(Layout::Current, "cli-endpoints")]);
    let port = common::sim().chromium().port();
    // `--cdp <the browser>` comes first from common::angrav; the same again by name.
    let o = angrav(&[
        "--cdp",
        &format!("localhost:{port}"),
        "--json",
        "sessions",
        "list",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let list: Value = serde_json::from_slice(&o.stdout).unwrap();
    let ours = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["session"]["target_id"] == w.id(0))
        .count();
    assert_eq!(ours, 1, "{list}");
    // One dead endpoint of two: a warning; the live one is served.
    let dead = format!("127.0.0.1:{}", dead_port());
    let o = angrav(&["--cdp", &dead, "--json", "sessions", "list"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let list: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(common::by_target(&list, w.id(0)).is_some(), "{list}");
    assert!(
        stderr(&o).starts_with("angrav: warning: nothing answers at http://")
            && stderr(&o).contains(&dead),
        "{}",
        stderr(&o)
    );
    // Every endpoint dead: a failure.
    let o = bare(&[
        "--cdp",
        &dead,
        "--cdp",
        &format!(":{}", dead_port()),
        "sessions",
        "list",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
}

#[test]
fn errors_are_json_with_json() {
    let _w = open(&[Window::new(Layout::Current, "cli-json-error")]);
    let o = angrav(&["--json", "--session", "no-such-chat", "status"]);
    assert_eq!(o.status.code(), Some(3));
    assert!(o.stdout.is_empty());
    let e: Value = serde_json::from_str(stderr(&o).trim()).expect("one JSON object");
    assert_eq!(e["error"]["code"], "session_not_found");
    assert_eq!(e["error"]["exit"], 3);
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no-such-chat")
    );
    let o = bare(&["--json", "status", "--wait"]);
    assert_eq!(o.status.code(), Some(2));
    let e: Value = serde_json::from_str(stderr(&o).trim()).expect("one JSON object");
    assert_eq!(e["error"]["code"], "usage");
    assert_eq!(e["error"]["exit"], 2);
}

/// Runs `angrav --cdp <the test browser> ARGS` on a terminal (`script` gives it one),
/// with `env` set; returns everything it wrote there.
fn on_terminal(args: &[&str], env: &[(&str, &str)]) -> String {
    let mut line = format!(
        "'{}' --cdp {}",
        env!("CARGO_BIN_EXE_angrav"),
        common::sim().endpoint().label()
    );
    for a in args {
        line += &format!(" '{a}'");
    }
    let mut cmd = Command::new("script");
    cmd.env("ANGRAV_STATE_DIR", common::state_dir());
    cmd.env("TMPDIR", common::tmp_dir());
    cmd.args(["-qec", &line, "/dev/null"])
        .stdin(Stdio::null())
        .env_remove("NO_COLOR");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let o = cmd.output().expect("script (util-linux) runs");
    assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stdout(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn colours_on_a_terminal_unless_no_color_never_or_a_dumb_terminal() {
    let w = open(&[Window::new(Layout::Current, "cli-colour")]);
    let list = ["sessions", "list"];
    let coloured = on_terminal(&list, &[("TERM", "xterm")]);
    assert!(coloured.contains("\x1b[32midle"), "{coloured:?}");
    let header = coloured.lines().next().unwrap_or_default();
    assert!(
        header.starts_with("ID ") && header.contains("STATE"),
        "{coloured:?}"
    );
    for env in [
        &[("TERM", "xterm"), ("NO_COLOR", "1")][..],
        &[("TERM", "dumb")],
    ] {
        let plain = on_terminal(&list, env);
        assert!(
            plain.contains("cli-colour") && !plain.contains('\x1b'),
            "{env:?}: {plain:?}"
        );
    }
    let never = on_terminal(
        &["--color", "never", "sessions", "list"],
        &[("TERM", "xterm")],
    );
    assert!(!never.contains('\x1b'), "{never:?}");
    // Without a terminal, `always` still colours.
    let o = angrav(&["--color", "always", "sessions", "list"]);
    assert!(stdout(&o).contains("\x1b[32m"), "{}", stdout(&o));
    // A wait on a dumb terminal: no live lines with cursor codes either.
    let waited = on_terminal(
        &["sessions", "wait", "--session", w.id(0)],
        &[("TERM", "dumb")],
    );
    assert!(
        waited.contains("done") && !waited.contains('\x1b'),
        "{waited:?}"
    );
}

#[test]
fn interrupting_a_fanout_prints_what_was_collected_and_exits_130() {
    let w = open(&[
        Window::new(Layout::Current, "cli-int-quick").scenario("instant"),
        Window::new(Layout::LegacyFrame, "cli-int-slow").scenario("slow"),
    ]);
    // On a terminal (`script`), where a fan-out keeps a live line per chat and ^C
    // typed on the terminal reaches angrav as SIGINT.
    let mut line = format!(
        "'{}' --cdp {} sessions fanout 'collect this' --settle 0 --timeout 60s",
        env!("CARGO_BIN_EXE_angrav"),
        common::sim().endpoint().label()
    );
    for arg in common::session_args(&w) {
        line += &format!(" {arg}");
    }
    let mut child = common::Reaped(
        Command::new("script")
            .env("ANGRAV_STATE_DIR", common::state_dir())
            .env("TMPDIR", common::tmp_dir())
            .args(["-qec", &line, "/dev/null"])
            .env("TERM", "xterm")
            .env("NO_COLOR", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("script (util-linux) runs"),
    );
    let terminal = common::lines(child.0.stdout.take().expect("piped"));
    // The quick chat's live line says it is done (angrav has collected it), and the
    // slow one's that its agent is thinking (its prompt delivered: a ^C while it is
    // still typed would take it out, and the chat would be failed, not pending).
    let (quick, slow) = (&w.id(0)[..6], &w.id(1)[..6]);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = Vec::new();
    let (mut collected, mut thinking) = (false, false);
    while !(collected && thinking) {
        let l = terminal.recv_deadline(deadline).unwrap_or_else(|_| {
            panic!("no live lines with {quick} done and {slow} thinking: {seen:?}")
        });
        collected |= l.contains(quick) && l.contains(" done ");
        thinking |= l.contains(slow) && l.contains("thinking");
        seen.push(l);
    }
    let mut stdin = child.0.stdin.take().expect("piped");
    stdin.write_all(b"\x03").unwrap();
    stdin.flush().unwrap();
    let rest: Vec<String> = terminal.iter().collect();
    let status = child.0.wait().unwrap();
    let out = rest.join("\n");
    assert_eq!(status.code(), Some(130), "{out}");
    // The final report, in the live lines' place (each chat's row once on the
    // screen): every chat, the quick one done with its answer, the slow one pending;
    // the message names the pending one.
    let shown = common::screen(&[seen, rest].concat().join("\n"));
    let row = |i: usize| {
        let rows: Vec<&String> = shown
            .iter()
            .filter(|l| l.starts_with(&w.id(i)[..6]))
            .collect();
        assert_eq!(rows.len(), 1, "window {i}, once: {shown:#?}");
        rows[0]
    };
    assert!(row(0).contains("done") && row(0).contains("idle"), "{out}");
    assert!(row(1).contains("pending"), "{out}");
    assert!(
        out.contains("You asked: `collect this`"),
        "the quick chat's answer: {out}"
    );
    assert!(out.contains("interrupted; still waiting for"), "{out}");
}
