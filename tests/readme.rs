//! The README's shell examples, run as a newcomer would copy them.
//!
//! Every ```` ```sh ```` block, and every ```` ```text ```` block that starts with a
//! `$ ` line (a transcript), is an example. By default it runs against the simulated
//! Antigravity: a `sh` block as one bash script (`set -e`, in an empty directory of its
//! own, with `angrav` on the PATH and `ANGRAV_CDP` naming the simulator's three chats
//! `alpha`, `beta` and `gamma`, as `angrav simulate` opens them), which must exit 0; a
//! transcript's `$ ` lines one by one, each output (stderr and stdout) having the shape
//! shown: the same lines, ids, numbers and runs of spaces aside, `...` standing for any
//! lines. `angrav demo` runs where nothing answers, as the demo is about.
//!
//! An example that cannot run here is marked in the README's source, on the line just
//! before its block, with why:
//!
//! ```text
//! <!-- readme-test: not run (it needs a real Antigravity) -->
//! ```
//!
//! Its `angrav` command lines are then checked against the command table instead:
//! each names a command, and each flag it gives is one that command takes.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use angrav::panel::Layout;
use angrav::sim::{Simulator, Window};
use serde_json::Value;

/// The marker of an example that is not run.
const NOT_RUN: &str = "<!-- readme-test: not run (";

struct Example {
    /// The line of README.md the block starts on.
    line: usize,
    kind: Kind,
    body: Vec<String>,
}

#[derive(PartialEq)]
enum Kind {
    Script,
    Transcript,
    /// Marked not run, with why.
    NotRun(String),
}

fn readme() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README.md")
}

fn examples(text: &str) -> Vec<Example> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let info = lines[i].strip_prefix("```").map(str::trim);
        let Some(info) = info.filter(|i| !i.is_empty()) else {
            i += 1;
            continue;
        };
        let start = i;
        let end = (i + 1..lines.len())
            .find(|&j| lines[j].starts_with("```"))
            .expect("a closed block");
        let body: Vec<String> = lines[i + 1..end].iter().map(|l| l.to_string()).collect();
        i = end + 1;
        let transcript = info == "text" && body.first().is_some_and(|l| l.starts_with("$ "));
        if info != "sh" && !transcript {
            continue;
        }
        let before = lines[..start].iter().rev().find(|l| !l.trim().is_empty());
        let kind = match before.and_then(|l| l.trim().strip_prefix(NOT_RUN)) {
            Some(why) => Kind::NotRun(why.trim_end_matches(") -->").to_string()),
            None if transcript => Kind::Transcript,
            None => Kind::Script,
        };
        out.push(Example {
            line: start + 1,
            kind,
            body,
        });
    }
    out
}

/// Where the examples run: the simulated chats, an empty directory, a state directory
/// and a TMPDIR of their own.
struct Place {
    _sim: Simulator,
    cdp: String,
    dir: PathBuf,
}

impl Place {
    fn new() -> Place {
        let sim = Simulator::start().expect("the simulator needs Chromium");
        for (i, ws) in ["alpha", "beta", "gamma"].iter().enumerate() {
            sim.open(&Window::new(Layout::ALL[i], ws))
                .expect("a simulated window");
        }
        let cdp = sim.endpoint().label().to_string();
        let dir = std::env::temp_dir().join(format!("angrav-readme-{}", std::process::id()));
        Place {
            _sim: sim,
            cdp,
            dir,
        }
    }

    /// `bash -c SCRIPT` there, with stderr joined to stdout; its exit code and output.
    fn bash(&self, name: &str, script: &str) -> (Option<i32>, String) {
        let cwd = self.dir.join(name);
        let tmp = self.dir.join(format!("{name}.tmp"));
        std::fs::create_dir_all(&cwd).unwrap();
        std::fs::create_dir_all(&tmp).unwrap();
        let bin = Path::new(env!("CARGO_BIN_EXE_angrav")).parent().unwrap();
        let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
        // The demo is about a machine where no Antigravity answers.
        let cdp = if script.contains("angrav demo") {
            "127.0.0.1:9".to_string()
        } else {
            self.cdp.clone()
        };
        let o = Command::new("bash")
            .args(["-c", &format!("set -e\nexec 2>&1\n{script}")])
            .current_dir(&cwd)
            .env("PATH", path)
            .env("ANGRAV_CDP", cdp)
            .env("ANGRAV_STATE_DIR", self.dir.join(format!("{name}.state")))
            .env("TMPDIR", &tmp)
            .env_remove("ANGRAV_SELECTORS")
            .env_remove("ANGRAV_SERVER")
            .stdin(Stdio::null())
            .output()
            .expect("bash");
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
        )
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A line as its shape: ids and numbers as placeholders, runs of spaces as one.
fn shape(line: &str) -> String {
    let mut out = String::new();
    for word in line.split_whitespace() {
        // A session id (6 or more upper-case hex digits), or an approval id (8 lower-case
        // hex digits). Ids are random: one may be all letters or all digits.
        let id = (word.len() >= 6 && word.chars().all(|c| matches!(c, '0'..='9' | 'A'..='F')))
            || (word.len() == 8 && word.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')));
        let mut w = String::new();
        if id {
            w.push_str("<id>");
        } else {
            let mut in_number = false;
            for c in word.chars() {
                if c.is_ascii_digit() || (in_number && c == '.') {
                    if !in_number {
                        w.push('#');
                    }
                    in_number = true;
                } else {
                    in_number = false;
                    w.push(c);
                }
            }
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out += &w;
    }
    out
}

/// Whether `actual` has the lines `expected` shows, in order: each the next line (blank
/// lines aside), but after a `...` anywhere further on.
fn has_shape(expected: &[String], actual: &str) -> Result<(), String> {
    let actual: Vec<String> = actual
        .lines()
        .map(shape)
        .filter(|l| !l.is_empty())
        .collect();
    let mut at = 0;
    let mut anywhere = false;
    for e in expected.iter().map(|l| shape(l)).filter(|l| !l.is_empty()) {
        if e == "..." {
            anywhere = true;
            continue;
        }
        let found = if anywhere {
            actual[at..].iter().position(|a| *a == e).map(|p| at + p)
        } else {
            (actual.get(at) == Some(&e)).then_some(at)
        };
        match found {
            Some(p) => at = p + 1,
            None => {
                return Err(format!(
                    "expected the line `{e}` (as a shape), got `{}`",
                    actual.get(at).map_or("the end", String::as_str)
                ));
            }
        }
        anywhere = false;
    }
    Ok(())
}

/// The `angrav` command lines of a block (of a transcript, its `$ ` lines): `angrav
/// ...` up to a `#` comment, a pipe or a redirection.
fn command_lines(body: &[String]) -> Vec<Vec<String>> {
    let transcript = body.first().is_some_and(|l| l.starts_with("$ "));
    body.iter()
        .filter(|l| !transcript || l.starts_with("$ "))
        .filter_map(|l| {
            let l = l.trim().trim_start_matches("$ ");
            let start = l.find("angrav ")?;
            let l = &l[start..];
            let end = [" #", " |", " >", " &", ")"]
                .iter()
                .filter_map(|m| l.find(m))
                .min()
                .unwrap_or(l.len());
            Some(words(&l[..end]))
        })
        .collect()
}

/// Shell words, with '...' and "..." quotes.
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let mut started = false;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                started = true;
            }
            (None, c) if c.is_whitespace() => {
                if started || !word.is_empty() {
                    out.push(std::mem::take(&mut word));
                }
                started = false;
            }
            (None, c) => word.push(c),
        }
    }
    if started || !word.is_empty() {
        out.push(word);
    }
    out
}

/// `angrav ARGS --json`, parsed.
fn json_of(args: &[&str]) -> Option<Value> {
    let o = common::angrav_bin()
        .args(args)
        .arg("--json")
        .output()
        .expect("angrav");
    serde_json::from_slice(&o.stdout).ok()
}

/// The command table as the help gives it: each command's words, and the flags it
/// takes (global ones included), each with whether it takes a value.
fn table() -> Vec<(String, Vec<(String, bool)>)> {
    let flag = |f: &Value| {
        let shown = f["name"].as_str().unwrap();
        let name = shown.split(' ').next().unwrap().to_string();
        // `--resume [RUN]`: its value may be left out, so it is never taken from the
        // next word.
        let optional = |v: &str| v.starts_with('[') && v.ends_with(']');
        (
            name,
            shown.split_once(' ').is_some_and(|(_, v)| !optional(v)),
        )
    };
    let whole = json_of(&["help"]).expect("help --json");
    let global: Vec<(String, bool)> = whole["flags"]
        .as_array()
        .unwrap()
        .iter()
        .map(flag)
        .collect();
    whole["commands"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let words = common::command_words(c);
            let help = json_of(&[&["help"][..], &words].concat()).expect("help CMD --json");
            let takes = help["global_flags"].as_array().unwrap();
            let mut flags: Vec<(String, bool)> =
                help["flags"].as_array().unwrap().iter().map(flag).collect();
            flags.extend(
                global
                    .iter()
                    .filter(|(n, _)| takes.iter().any(|t| t == n.as_str()))
                    .cloned(),
            );
            flags.push(("--help".into(), false));
            (words.join(" "), flags)
        })
        .collect()
}

/// What the command table says of `argv` (`angrav` and its arguments): `Ok` when it
/// names a command and every flag it gives is one that command takes.
fn fits_the_table(table: &[(String, Vec<(String, bool)>)], argv: &[String]) -> Result<(), String> {
    // Any flag's value-ness will do to find the words: the names agree on it.
    let takes_value = |f: &str| {
        table
            .iter()
            .flat_map(|(_, flags)| flags)
            .any(|(n, v)| n == f && *v)
    };
    let (mut words, mut flags) = (Vec::new(), Vec::new());
    let mut args = argv[1..].iter();
    while let Some(a) = args.next() {
        if a.starts_with('-') && a.len() > 1 {
            let name = a.split('=').next().unwrap();
            flags.push(name.to_string());
            if takes_value(name) && !a.contains('=') {
                args.next();
                if name == "--on" {
                    args.next();
                }
            }
        } else {
            words.push(a.as_str());
        }
    }
    let known = (1..=words.len().min(2)).rev().find_map(|n| {
        let typed = words[..n].join(" ");
        table.iter().find(|(w, _)| *w == typed)
    });
    let Some((command, takes)) = known else {
        return Err(format!("names no command ({})", words.join(" ")));
    };
    match flags.iter().find(|f| !takes.iter().any(|(n, _)| n == *f)) {
        Some(f) => Err(format!(
            "{f} is no flag of '{command}' (angrav help {command})"
        )),
        None => Ok(()),
    }
}

#[test]
fn every_shell_example_in_the_readme_runs_or_is_marked() {
    let text = readme();
    let examples = examples(&text);
    assert!(examples.len() >= 10, "found {} examples", examples.len());
    let place = Place::new();
    let table = table();
    let mut failures = Vec::new();
    let mut ran = 0;
    for ex in &examples {
        let at = format!("README.md line {}", ex.line);
        match &ex.kind {
            Kind::NotRun(why) => {
                assert!(!why.trim().is_empty(), "{at}: say why it is not run");
                for argv in command_lines(&ex.body) {
                    if let Err(e) = fits_the_table(&table, &argv) {
                        failures.push(format!("{at}: `{}` {e}", argv.join(" ")));
                    }
                }
            }
            Kind::Script => {
                ran += 1;
                let (code, out) = place.bash(&format!("l{}", ex.line), &ex.body.join("\n"));
                if code != Some(0) {
                    failures.push(format!(
                        "{at}: the block exited {code:?}:\n{out}\n(fix the example, or mark it \
                         `{NOT_RUN}why) -->` on the line before it)"
                    ));
                }
            }
            Kind::Transcript => {
                ran += 1;
                // Each `$ ` line with the lines shown after it.
                let mut steps: Vec<(String, Vec<String>)> = Vec::new();
                for l in &ex.body {
                    match l.strip_prefix("$ ") {
                        Some(cmd) => steps.push((cmd.to_string(), Vec::new())),
                        None => steps.last_mut().unwrap().1.push(l.clone()),
                    }
                }
                for (n, (cmd, shown)) in steps.iter().enumerate() {
                    let (_, out) = place.bash(&format!("l{}-{n}", ex.line), cmd);
                    if let Err(e) = has_shape(shown, &out) {
                        failures.push(format!(
                            "{at}: `$ {cmd}` does not print what the README shows: {e}\n\
                             it printed:\n{out}"
                        ));
                    }
                }
            }
        }
    }
    assert!(ran >= 4, "only {ran} examples ran");
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn shapes_tell_ids_numbers_and_gaps_apart() {
    assert_eq!(
        shape("F92453  alpha   done  idle   1.3s"),
        "<id> alpha done idle #s"
    );
    // Random ids with no digit, or no letter, are ids all the same.
    assert_eq!(
        shape("FFCFAA delta 123456 abcdefab"),
        "<id> delta <id> <id>"
    );
    assert_eq!(shape("WORKSPACE 12345"), "WORKSPACE #");
    let shown: Vec<String> = ["a 1", "...", "c"].map(String::from).to_vec();
    assert!(has_shape(&shown, "a 2\nb\nb\nc\n").is_ok());
    assert!(has_shape(&shown, "a 2\nb\n").is_err());
    let strict: Vec<String> = ["a", "c"].map(String::from).to_vec();
    assert!(has_shape(&strict, "a\nb\nc\n").is_err());
    assert_eq!(
        words("angrav prompt \"Fix it\" --wait"),
        ["angrav", "prompt", "Fix it", "--wait"]
    );
}

#[test]
fn serve_listen_0_picks_a_free_port() {
    let (_serve, _out, err) = common::spawn_angrav_at(
        common::sim().endpoint().label(),
        &["--no-state", "serve", "--listen", ":0"],
    );
    let line = err
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("serve says where it serves");
    let port: u16 = line
        .split("http://127.0.0.1:")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no dashboard URL: {line}"));
    assert_ne!(port, 0, "{line}");
}
