//! Shared by the integration tests: one headless Chromium per test binary (started
//! on first use, stopped by its watchdog when the binary exits), fresh windows per
//! test, closed when the test ends, and a way to run the `angrav` binary.
#![allow(dead_code)]

pub mod serve;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use angrav::panel::{Panel, WindowRef};
use angrav::profile::Profile;
use angrav::sim::{Simulator, Window};
use cdp::methods::runtime::Evaluate;
use cdp::{Connection, TargetInfo};
use serde_json::Value;

pub fn sim() -> &'static Simulator {
    static SIM: OnceLock<Simulator> = OnceLock::new();
    SIM.get_or_init(|| match Simulator::start() {
        Ok(s) => s,
        Err(e) => panic!("browser tests need Chromium: {e}"),
    })
}

/// The state directory of every angrav this test binary runs: a temp dir of its own,
/// removed when the binary exits, so no test reads or writes the user's real state.
pub fn state_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| own_dir("state"))
}

/// The TMPDIR of every angrav this test binary runs (created; removed at exit).
pub fn tmp_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = own_dir("tmp");
        std::fs::create_dir_all(&dir).expect("a temp dir");
        dir
    })
}

/// `angrav-WHAT-<test binary>-<pid>` in the system's temp dir, removed at exit.
fn own_dir(what: &str) -> PathBuf {
    static DIRS: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());
    unsafe extern "C" {
        fn atexit(f: extern "C" fn()) -> std::ffi::c_int;
    }
    extern "C" fn remove() {
        for d in DIRS.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            let _ = std::fs::remove_dir_all(d);
        }
    }
    let exe = std::env::current_exe().expect("test binary");
    let name = exe.file_stem().and_then(|n| n.to_str()).unwrap_or("test");
    let dir = std::env::temp_dir().join(format!("angrav-{what}-{name}-{}", std::process::id()));
    let mut dirs = DIRS.lock().unwrap_or_else(|e| e.into_inner());
    if dirs.is_empty() {
        // SAFETY: `remove` is a plain function that lives as long as the process.
        unsafe { atexit(remove) };
    }
    dirs.push(dir.clone());
    dir
}

/// `angrav` (the binary under test) with the test binary's own state directory and
/// TMPDIR.
pub fn angrav_bin() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_angrav"));
    command
        .env("ANGRAV_STATE_DIR", state_dir())
        .env("TMPDIR", tmp_dir());
    command
}

/// Windows opened for one test; closed when dropped.
pub struct Windows(pub Vec<TargetInfo>);

impl Windows {
    pub fn id(&self, i: usize) -> &str {
        &self.0[i].id
    }

    pub fn window_ref(&self, i: usize) -> WindowRef {
        let t = &self.0[i];
        let ws = t
            .web_socket_debugger_url
            .clone()
            .expect("a page has a ws URL");
        WindowRef::new(sim().endpoint().clone(), t.id.clone(), ws)
    }

    pub fn panel(&self, i: usize) -> Panel {
        Panel::attach(&self.window_ref(i), &Profile::default())
            .expect("attach")
            .0
    }

    /// The text in the editor of window `i`, as the page has it.
    pub fn editor_text(&self, i: usize) -> String {
        let v = self
            .panel(i)
            .call_function(
                "function () { return document.querySelector('[contenteditable]').textContent; }",
                &[],
            )
            .expect("read the editor");
        v.as_str().expect("text").to_string()
    }

    /// Types `text` into the editor of window `i`, as the user does a draft.
    pub fn type_draft(&self, i: usize, text: &str) {
        let mut panel = self.panel(i);
        panel
            .call_function(
                "function () { document.querySelector('[contenteditable]').focus(); }",
                &[],
            )
            .expect("focus the editor");
        panel.insert_text(text).expect("type the draft");
    }

    /// Runs `then` (JavaScript statements) in window `i`'s panel at every Enter in its
    /// editor, right after the page's own handler (it submits there): something
    /// else happening in the page at that very moment (see [`STEAL_CLAIM`],
    /// [`ANOTHER_MESSAGE`]).
    pub fn after_enter(&self, i: usize, then: &str) {
        let install = format!(
            "function () {{
               document.querySelector('[contenteditable]').addEventListener('keydown', (e) => {{
                 if (e.key === 'Enter') {{ {then} }}
               }});
             }}"
        );
        self.panel(i)
            .call_function(&install, &[])
            .expect("listen for Enter");
    }

    /// Every prompt the simulated agent of window `i` received.
    pub fn received(&self, i: usize) -> Vec<String> {
        let v = self
            .panel(i)
            .call_function(
                "function () { return document.getElementById('sim-received').textContent; }",
                &[],
            )
            .expect("read #sim-received");
        serde_json::from_str(v.as_str().expect("text")).expect("JSON list")
    }
}

/// For [`Windows::after_enter`]: another sender claims the editor (for a minute).
pub const STEAL_CLAIM: &str = "document.documentElement.setAttribute('data-angrav-claim', 'intruder ' + (Date.now() + 60000));";

/// For [`Windows::after_enter`] (the current layout): a user message that is not the
/// prompt shows after it, as if someone sent one at once.
pub const ANOTHER_MESSAGE: &str = "const texts = document.querySelectorAll('.whitespace-pre-wrap');
     const mine = texts[texts.length - 1].closest('.justify-end');
     const other = mine.cloneNode(true);
     other.querySelector('.whitespace-pre-wrap').textContent = 'a message from someone else';
     mine.parentNode.appendChild(other);";

impl Drop for Windows {
    fn drop(&mut self) {
        for t in &self.0 {
            let _ = sim().close(&t.id);
        }
    }
}

pub fn open(windows: &[Window]) -> Windows {
    Windows(
        windows
            .iter()
            .map(|w| sim().open(w).expect("open a simulated window"))
            .collect(),
    )
}

/// Runs `angrav --cdp <the test browser> ARGS`, with `stdin` as its input.
pub fn angrav_in(args: &[&str], stdin: &str) -> Output {
    let mut command = angrav_bin();
    command
        .arg("--cdp")
        .arg(sim().endpoint().label())
        .args(args)
        .env_remove("ANGRAV_SELECTORS");
    output_in(command, stdin)
}

/// Runs `command` with `stdin` as its input; its output.
pub fn output_in(mut command: Command, stdin: &str) -> Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run angrav");
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("angrav exits")
}

pub fn angrav(args: &[&str]) -> Output {
    angrav_in(args, "")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).expect("UTF-8 stdout")
}

/// A JSON file (a policy), removed when dropped.
pub struct TempFile(std::path::PathBuf);

impl TempFile {
    pub fn new(name: &str, text: &str) -> TempFile {
        let path = std::env::temp_dir().join(format!("angrav-{name}-{}.json", std::process::id()));
        std::fs::write(&path, text).expect("write the file");
        TempFile(path)
    }

    pub fn path(&self) -> &str {
        self.0.to_str().expect("UTF-8 path")
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Sends signal `name` (`INT`, `TERM`, `STOP`, `CONT`) to process `pid`.
pub fn signal(pid: u32, name: &str) {
    let sent = Command::new("kill")
        .args([format!("-{name}"), pid.to_string()])
        .status()
        .expect("run kill");
    assert!(sent.success(), "kill -{name} {pid}");
}

/// The error a `--json` command printed last on `stderr`: `{code, message, exit}` of
/// its `{"error": ...}`.
pub fn json_error(stderr: &str) -> Value {
    let last = stderr
        .lines()
        .last()
        .unwrap_or_else(|| panic!("nothing on stderr"));
    let v: Value = serde_json::from_str(last).unwrap_or_else(|e| panic!("{e}: {stderr}"));
    v["error"].clone()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).expect("UTF-8 stderr")
}

/// Runs angrav with `--json` and parses its stdout, asserting the exit code.
pub fn angrav_json(args: &[&str], code: i32) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    json_exited(&angrav(&all), args, code)
}

/// Asserts that angrav, run with `args`, exited with `code` (else shows what it printed).
pub fn exited(o: &Output, args: &[&str], code: i32) {
    assert_eq!(
        o.status.code(),
        Some(code),
        "angrav {args:?}\nstdout: {}\nstderr: {}",
        stdout(o),
        stderr(o)
    );
}

/// [`exited`], and its stdout parsed as JSON.
pub fn json_exited(o: &Output, args: &[&str], code: i32) -> Value {
    exited(o, args, code);
    serde_json::from_str(&stdout(o))
        .unwrap_or_else(|e| panic!("angrav {args:?}: stdout is not JSON ({e}): {}", stdout(o)))
}

/// The words of a command of `help --json` (`sessions watch`), without its operands.
pub fn command_words(command: &Value) -> Vec<&str> {
    command["name"]
        .as_str()
        .expect("a command's name")
        .split(' ')
        .take_while(|w| w.chars().all(|c| c.is_ascii_lowercase()))
        .collect()
}

/// A registry of the test browser (all its windows: tests select their own).
pub fn registry() -> angrav::registry::Registry {
    angrav::registry::Registry::with(vec![sim().endpoint().clone()], Profile::default())
        .expect("registry")
}

/// `--session ID` for each window, to keep a command to this test's windows.
pub fn session_args(w: &Windows) -> Vec<String> {
    w.0.iter()
        .flat_map(|t| ["--session".to_string(), t.id.clone()])
        .collect()
}

/// Reads a child's stdout (or stderr) lines on a thread, so a test can wait for each
/// with a deadline; the channel disconnects when the child closes it (exits).
pub fn lines(stdout: impl std::io::Read + Send + 'static) -> crossbeam_channel::Receiver<String> {
    let (tx, rx) = crossbeam_channel::unbounded();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// A child process that is killed and reaped when dropped, even when a test fails.
pub struct Reaped(pub std::process::Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The entry of a JSON list (`sessions list`, a report's `sessions`) for a target id.
pub fn by_target<'a>(list: &'a Value, target_id: &str) -> Option<&'a Value> {
    list.as_array()
        .expect("a JSON list")
        .iter()
        .find(|s| s["session"]["target_id"] == target_id)
}

/// Starts `angrav --cdp <the test browser> ARGS` and reads its stdout line by line.
pub fn spawn_angrav(args: &[&str]) -> (Reaped, crossbeam_channel::Receiver<String>) {
    let mut child = Reaped(
        angrav_command(sim().endpoint().label(), args)
            .stderr(Stdio::null())
            .spawn()
            .expect("run angrav"),
    );
    let rx = lines(child.0.stdout.take().expect("piped"));
    (child, rx)
}

/// Starts `angrav --cdp CDP ARGS` and reads its stdout and its stderr line by line
/// (keep both receivers while it runs: a closed stderr would fail its messages).
pub fn spawn_angrav_at(
    cdp: &str,
    args: &[&str],
) -> (
    Reaped,
    crossbeam_channel::Receiver<String>,
    crossbeam_channel::Receiver<String>,
) {
    let mut child = Reaped(
        angrav_command(cdp, args)
            .stderr(Stdio::piped())
            .spawn()
            .expect("run angrav"),
    );
    let out = lines(child.0.stdout.take().expect("piped"));
    let err = lines(child.0.stderr.take().expect("piped"));
    (child, out, err)
}

fn angrav_command(cdp: &str, args: &[&str]) -> Command {
    let mut command = angrav_bin();
    command
        .arg("--cdp")
        .arg(cdp)
        .args(args)
        .env_remove("ANGRAV_SELECTORS")
        .stdout(Stdio::piped());
    command
}

/// What a terminal shows after receiving `text`: its lines, with angrav's cursor codes
/// applied (`\r`, cursor up `ESC[nA`, erase line `ESC[2K`, erase below `ESC[J`, home
/// and clear `ESC[H`, `ESC[2J`); colour codes are dropped.
pub fn screen(text: &str) -> Vec<String> {
    let mut rows: Vec<Vec<char>> = vec![Vec::new()];
    let (mut r, mut c) = (0usize, 0usize);
    let mut chars = text.chars().peekable();
    while let Some(ch) = chars.next() {
        match ch {
            '\r' => c = 0,
            '\n' => {
                r += 1;
                c = 0;
                if rows.len() <= r {
                    rows.push(Vec::new());
                }
            }
            '\x1b' if chars.peek() == Some(&'[') => {
                chars.next();
                let mut param = String::new();
                let mut last = ' ';
                for p in chars.by_ref() {
                    if p.is_ascii_alphabetic() {
                        last = p;
                        break;
                    }
                    param.push(p);
                }
                let n: usize = param.parse().unwrap_or(1);
                match (last, param.as_str()) {
                    ('A', _) => r = r.saturating_sub(n),
                    ('K', _) => rows[r].clear(),
                    ('J', "2") => {
                        rows = vec![Vec::new()];
                        (r, c) = (0, 0);
                    }
                    ('J', _) => {
                        rows.truncate(r + 1);
                        rows[r].truncate(c);
                    }
                    ('H', _) => (r, c) = (0, 0),
                    _ => {}
                }
            }
            ch => {
                let row = &mut rows[r];
                if row.len() <= c {
                    row.resize(c, ' ');
                    row.push(ch);
                } else {
                    row[c] = ch;
                }
                c += 1;
            }
        }
    }
    rows.into_iter()
        .map(|r| r.into_iter().collect::<String>().trim_end().to_string())
        .collect()
}

/// Every control of an approval (and the cancel button) the simulated agent of window
/// `i` saw pressed, by label (`#sim-pressed`).
pub fn pressed(w: &Windows, i: usize) -> Vec<String> {
    let v = w
        .panel(i)
        .call_function(
            "function () { return document.getElementById('sim-pressed').textContent; }",
            &[],
        )
        .expect("read #sim-pressed");
    serde_json::from_str(v.as_str().expect("text")).expect("JSON list")
}

/// Checks `v` against `shape`, a description in the subset of JSON Schema the
/// schema uses; the error says where `v` differs.
pub fn check(root: &Value, shape: &Value, v: &Value, at: &str) -> Result<(), String> {
    if let Some(r) = shape.get("$ref").and_then(Value::as_str) {
        let name = r.strip_prefix("#/$defs/").expect("a local reference");
        let def = &root["$defs"][name];
        assert!(!def.is_null(), "the schema defines {name}");
        return check(root, def, v, at);
    }
    if let Some(any) = shape.get("anyOf").and_then(Value::as_array) {
        let errors: Vec<String> = any
            .iter()
            .filter_map(|s| check(root, s, v, at).err())
            .collect();
        return if errors.len() < any.len() {
            Ok(())
        } else {
            Err(errors.join("; or "))
        };
    }
    if let Some(c) = shape.get("const")
        && v != c
    {
        return Err(format!("{at}: {v} is not {c}"));
    }
    if let Some(e) = shape.get("enum").and_then(Value::as_array)
        && !e.contains(v)
    {
        return Err(format!("{at}: {v} is none of {e:?}"));
    }
    if let Some(t) = shape.get("type") {
        let types: Vec<&str> = match t {
            Value::String(s) => vec![s.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            _ => panic!("a type is a name or a list of names: {t}"),
        };
        let is = |t: &str| match t {
            "object" => v.is_object(),
            "array" => v.is_array(),
            "string" => v.is_string(),
            "integer" => v.is_u64() || v.is_i64(),
            "number" => v.is_number(),
            "boolean" => v.is_boolean(),
            "null" => v.is_null(),
            other => panic!("unknown type {other}"),
        };
        if !types.iter().any(|t| is(t)) {
            return Err(format!("{at}: {v} is not {types:?}"));
        }
    }
    if let Some(o) = v.as_object() {
        for r in shape["required"].as_array().into_iter().flatten() {
            let name = r.as_str().expect("a field name");
            if !o.contains_key(name) {
                return Err(format!("{at}: no {name} in {v}"));
            }
        }
        for (k, field) in o {
            match shape["properties"].get(k) {
                Some(s) => check(root, s, field, &format!("{at}.{k}"))?,
                None if shape["additionalProperties"] == false => {
                    return Err(format!("{at}: {k} is not in the schema"));
                }
                None => {}
            }
        }
    }
    if let (Some(items), Some(a)) = (shape.get("items"), v.as_array()) {
        for (i, item) in a.iter().enumerate() {
            check(root, items, item, &format!("{at}[{i}]"))?;
        }
    }
    Ok(())
}

/// Runs `while (Date.now() < end) {}` in the page's main world, without waiting for
/// it: the page answers nothing for `stall`. Returns the connection it was sent on;
/// [`recovered`] waits on it for the page to answer again.
pub fn freeze(target: &TargetInfo, stall: Duration) -> Connection {
    let ws = target.web_socket_debugger_url.as_deref().expect("a ws URL");
    let mut conn = Connection::open(ws).expect("connect to the page");
    let expression = format!(
        "{{ const end = Date.now() + {}; while (Date.now() < end) {{}} }}",
        stall.as_millis()
    );
    let _ = conn
        .send(&Evaluate {
            expression: &expression,
            ..Default::default()
        })
        .expect("send the stall");
    conn
}

/// Waits until the page answers again (the stall is over).
pub fn recovered(conn: &mut Connection) {
    let one = Evaluate {
        expression: "1",
        ..Default::default()
    };
    conn.call(&one, Duration::from_secs(60))
        .expect("the page answers after its stall");
}
