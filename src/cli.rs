//! The command line: parsing, running a command, printing its result.
//! Results go to stdout (JSON with `--json`); messages and logs go to stderr.

use std::ffi::OsString;
use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::time::Duration;

use cdp::Endpoint;
use serde::Serialize;
use serde_json::json;

use crate::panel::{Layout, Message, Panel, Role, Snapshot, State};
use crate::profile::Profile;
use crate::sessions::{self, Session};
use crate::sim::{Simulator, Window};
use crate::turn::{self, WaitOptions};
use crate::{Error, exit};

const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:9222";
const ACCEPT_WITHIN: Duration = Duration::from_secs(10);

pub const HELP: &str = "\
angrav: watch and drive Antigravity agent chats over the Chrome DevTools Protocol

Usage: angrav [OPTIONS] <COMMAND>

Commands:
  sessions list         every agent chat: id, workspace, title, state, layout, endpoint
  status                the state of one chat (idle, thinking, awaiting_approval, error, no_panel)
  prompt TEXT           send a prompt (TEXT, -f FILE, or - for stdin); --wait for its answer
  wait                  wait until the agent has stopped (idle for the settle time,
                        awaiting approval, or in error)
  output last           the last answer as Markdown (--json: with thoughts and code blocks)
  output code           the last answer's code blocks (--lang L: only that language)
  history               every message of the conversation
  new                   start a new conversation
  simulate              start a simulated Antigravity and print its endpoint; runs until stopped
                        (--windows N, --layout L[,L...], --scenario S)
  demo                  the main job against Antigravity, or against the simulator when none runs
  profile               print the built-in selector profile (a starting point for --selectors)

Options:
  --cdp URL             DevTools endpoint: http://HOST:PORT, HOST:PORT, :PORT or a ws:// target URL;
                        repeatable [env: ANGRAV_CDP (comma-separated), BROWSER_CDP_ENDPOINT]
                        [default: http://127.0.0.1:9222]
  --session ID          the chat to act on: any unique prefix of its id, or its workspace name
                        (implied when only one chat is open)
  --json                machine-readable output on stdout
  --selectors FILE      selector profile over the built-in one [env: ANGRAV_SELECTORS]
  --timeout D           how long waits may take [default: 120s]; D is milliseconds (120000)
                        or has a unit: 500ms, 90s, 2m
  --settle D            how long idle must hold before a turn counts as finished [default: 400ms]
  --wait                with prompt: wait for the answer and print it
  -f FILE               with prompt: read the prompt from FILE
  --lang L              with output code: only blocks in language L
  -h, --help            this help
  -V, --version         version and the CDP features angrav relies on

Exit codes:
  0    ok
  1    failure (the message says what failed; a wait that ended in error or awaiting approval)
  2    usage error (including a malformed selector profile)
  3    session not found, or ambiguous
  124  timeout
";

#[derive(Debug, Clone, PartialEq)]
enum Command {
    Help,
    Version,
    SessionsList,
    Status,
    Prompt(Option<String>),
    Wait,
    OutputLast,
    OutputCode,
    History,
    New,
    Simulate,
    Demo,
    Profile,
}

#[derive(Debug)]
struct Args {
    command: Command,
    cdp: Vec<String>,
    session: Option<String>,
    json: bool,
    selectors: Option<PathBuf>,
    wait: WaitOptions,
    wait_answer: bool,
    file: Option<PathBuf>,
    lang: Option<String>,
    windows: usize,
    layouts: Vec<Layout>,
    scenario: String,
}

pub fn main() -> u8 {
    let result = parse(std::env::args_os().skip(1)).and_then(run);
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("angrav: {e}");
            e.exit_code()
        }
    }
}

fn usage(m: impl Into<String>) -> Error {
    Error::Usage(m.into())
}

fn parse(argv: impl IntoIterator<Item = OsString>) -> Result<Args, Error> {
    use lexopt::prelude::*;
    let mut p = lexopt::Parser::from_args(argv);
    let mut words: Vec<String> = Vec::new();
    let mut a = Args {
        command: Command::Help,
        cdp: Vec::new(),
        session: None,
        json: false,
        selectors: None,
        wait: WaitOptions::default(),
        wait_answer: false,
        file: None,
        lang: None,
        windows: 3,
        layouts: Layout::ALL.to_vec(),
        scenario: String::new(),
    };
    let mut help = false;
    let mut version = false;
    let text = |v: Result<OsString, lexopt::Error>| -> Result<String, Error> {
        v.map_err(|e| usage(e.to_string()))?
            .into_string()
            .map_err(|_| usage("arguments must be UTF-8"))
    };
    while let Some(arg) = p.next().map_err(|e| usage(e.to_string()))? {
        match arg {
            Long("cdp") => a.cdp.push(text(p.value())?),
            Long("session") => a.session = Some(text(p.value())?),
            Long("json") => a.json = true,
            Long("selectors") => a.selectors = Some(text(p.value())?.into()),
            Long("timeout") => a.wait.timeout = parse_duration(&text(p.value())?)?,
            Long("settle") => a.wait.settle = parse_duration(&text(p.value())?)?,
            Long("wait") => a.wait_answer = true,
            Short('f') | Long("file") => a.file = Some(text(p.value())?.into()),
            Long("lang") => a.lang = Some(text(p.value())?),
            Long("windows") => {
                a.windows = text(p.value())?
                    .parse()
                    .map_err(|_| usage("--windows takes a number"))?
            }
            Long("layout") => {
                a.layouts = text(p.value())?
                    .split(',')
                    .map(|l| {
                        Layout::parse(l).ok_or_else(|| {
                            usage(format!(
                                "unknown layout '{l}' (current, legacy-frame, legacy-target)"
                            ))
                        })
                    })
                    .collect::<Result<_, _>>()?
            }
            Long("scenario") => a.scenario = text(p.value())?,
            Short('h') | Long("help") => help = true,
            Short('V') | Long("version") => version = true,
            Value(v) => words.push(
                v.into_string()
                    .map_err(|_| usage("arguments must be UTF-8"))?,
            ),
            Short('-') => {}
            _ => return Err(usage(arg.unexpected().to_string())),
        }
    }
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    a.command = match words.as_slice() {
        _ if help => Command::Help,
        _ if version => Command::Version,
        [] => Command::Help,
        ["sessions", "list"] | ["sessions"] => Command::SessionsList,
        ["status"] => Command::Status,
        ["prompt"] => Command::Prompt(None),
        ["prompt", t] => Command::Prompt(Some(t.to_string())),
        ["wait"] => Command::Wait,
        ["output"] | ["output", "last"] => Command::OutputLast,
        ["output", "code"] => Command::OutputCode,
        ["history"] => Command::History,
        ["new"] => Command::New,
        ["simulate"] => Command::Simulate,
        ["demo"] => Command::Demo,
        ["profile"] => Command::Profile,
        other => return Err(usage(format!("unknown command '{}'", other.join(" ")))),
    };
    Ok(a)
}

/// `120000` (milliseconds, as the spec writes them), `500ms`, `90s`, `2m`, `1h`.
pub fn parse_duration(s: &str) -> Result<Duration, Error> {
    let bad = || usage(format!("'{s}' is not a duration (120000, 500ms, 90s, 2m)"));
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().map_err(|_| bad())?;
    let ms = match unit.trim() {
        "" | "ms" => n,
        "s" => n * 1e3,
        "m" | "min" => n * 60e3,
        "h" => n * 3600e3,
        _ => return Err(bad()),
    };
    if !ms.is_finite() || ms < 0.0 {
        return Err(bad());
    }
    Ok(Duration::from_micros((ms * 1e3) as u64))
}

pub fn show_duration(d: Duration) -> String {
    if d.as_millis() < 10_000 {
        format!("{} ms", d.as_millis())
    } else {
        format!("{} s", d.as_secs())
    }
}

fn endpoints(a: &Args) -> Result<Vec<Endpoint>, Error> {
    let mut given = a.cdp.clone();
    if given.is_empty()
        && let Ok(v) = std::env::var("ANGRAV_CDP")
    {
        given.extend(
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from),
        );
    }
    if given.is_empty()
        && let Ok(v) = std::env::var("BROWSER_CDP_ENDPOINT")
    {
        given.push(v);
    }
    if given.is_empty() {
        given.push(DEFAULT_ENDPOINT.into());
    }
    given
        .iter()
        .map(|g| Endpoint::parse(g).map_err(|e| usage(e.to_string())))
        .collect()
}

fn profile(a: &Args) -> Result<Profile, Error> {
    let path = a
        .selectors
        .clone()
        .or_else(|| std::env::var_os("ANGRAV_SELECTORS").map(PathBuf::from));
    match path {
        Some(p) => Ok(Profile::load(&p)?),
        None => Ok(Profile::default()),
    }
}

fn run(a: Args) -> Result<u8, Error> {
    match &a.command {
        Command::Help => {
            print!("{HELP}");
            Ok(exit::OK)
        }
        Command::Version => {
            println!(
                "angrav {}\nCDP: /json/version, /json/list, Page.getFrameTree, Page.createIsolatedWorld, Runtime.callFunctionOn, Input.insertText, Input.dispatchKeyEvent",
                env!("CARGO_PKG_VERSION")
            );
            Ok(exit::OK)
        }
        Command::Profile => {
            print!("{}", Profile::default_json());
            Ok(exit::OK)
        }
        Command::Simulate => simulate(&a),
        Command::Demo => demo(&a),
        Command::SessionsList => {
            let (profile, endpoints) = (profile(&a)?, endpoints(&a)?);
            let list = list_sessions(&endpoints, &profile)?;
            print_list(&list, a.json);
            Ok(exit::OK)
        }
        _ => one_session(&a),
    }
}

/// The commands that act on one session.
fn one_session(a: &Args) -> Result<u8, Error> {
    let profile = profile(a)?;
    // Read the prompt before touching the browser: a bad -f fails fast.
    let prompt_text = match &a.command {
        Command::Prompt(t) => Some(prompt_text(t.as_deref(), a.file.as_deref())?),
        _ => None,
    };
    let all = sessions::discover(&endpoints(a)?, &profile)?;
    let session = sessions::select(&all, a.session.as_deref())?;
    let (mut panel, snap) = Panel::attach(&session.window, &profile)?;
    match &a.command {
        Command::Status => {
            print_status(session, &snap, a.json);
            Ok(exit::OK)
        }
        Command::Prompt(_) => {
            let text = prompt_text.unwrap_or_default();
            let baseline = turn::send_prompt(&mut panel, &text, ACCEPT_WITHIN)?;
            if !a.wait_answer {
                if a.json {
                    println!("{}", json!({ "session": session.id, "accepted": true }));
                }
                return Ok(exit::OK);
            }
            let first = panel.probe()?;
            let end = turn::wait_stopped(&mut panel, first, Some(baseline), a.wait)?;
            finish_turn(&mut panel, session, &end, a.json)
        }
        Command::Wait => {
            let end = turn::wait_stopped(&mut panel, snap, None, a.wait)?;
            if a.json {
                println!(
                    "{}",
                    json!({ "session": session.id, "state": end.state, "error": end.error, "approvals": end.approvals })
                );
            } else {
                println!("{} {}", session.id, describe_state(&end));
            }
            Ok(stopped_code(&end))
        }
        Command::OutputLast | Command::OutputCode => {
            if snap.state == State::NoPanel {
                return Err(Error::NoPanel);
            }
            let last = last_answer(&mut panel)?;
            if a.command == Command::OutputLast {
                print_answer(&last, a.json);
            } else {
                let blocks: Vec<_> = last
                    .code_blocks
                    .iter()
                    .filter(|b| {
                        a.lang
                            .as_deref()
                            .is_none_or(|l| b.lang.eq_ignore_ascii_case(l))
                    })
                    .collect();
                if a.json {
                    println!("{}", serde_json::to_string(&blocks).expect("serialises"));
                } else {
                    let texts: Vec<&str> = blocks.iter().map(|b| b.code.as_str()).collect();
                    println!("{}", texts.join("\n\n"));
                }
            }
            Ok(exit::OK)
        }
        Command::History => {
            if snap.state == State::NoPanel {
                return Err(Error::NoPanel);
            }
            let messages = panel.history()?;
            if a.json {
                println!("{}", serde_json::to_string(&messages).expect("serialises"));
            } else {
                for m in &messages {
                    let who = if m.role == Role::User {
                        "user"
                    } else {
                        "agent"
                    };
                    println!("## {who}\n\n{}\n", m.content);
                }
            }
            Ok(exit::OK)
        }
        Command::New => {
            if snap.state == State::NoPanel {
                return Err(Error::NoPanel);
            }
            if matches!(snap.state, State::Thinking | State::AwaitingApproval) {
                return Err(Error::Failed(format!(
                    "the agent is busy ({}); wait for it before starting a new conversation",
                    snap.state.name()
                )));
            }
            let clicked = panel.new_conversation()?;
            if a.json {
                println!(
                    "{}",
                    json!({ "session": session.id, "new_conversation": clicked })
                );
            } else if clicked {
                println!("{}: new conversation", session.id);
            } else {
                println!("{}: the conversation is already empty", session.id);
            }
            Ok(exit::OK)
        }
        _ => unreachable!("handled in run"),
    }
}

fn prompt_text(arg: Option<&str>, file: Option<&std::path::Path>) -> Result<String, Error> {
    let read_stdin = || {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| Error::Failed(format!("reading stdin: {e}")))?;
        Ok::<_, Error>(s)
    };
    match (arg, file) {
        (Some(_), Some(_)) => Err(usage("give the prompt as TEXT or with -f FILE, not both")),
        (Some("-"), None) => read_stdin(),
        (Some(t), None) => Ok(t.to_string()),
        (None, Some(p)) if p.as_os_str() == "-" => read_stdin(),
        (None, Some(p)) => std::fs::read_to_string(p).map_err(|e| {
            Error::Failed(format!("cannot read the prompt from {}: {e}", p.display()))
        }),
        (None, None) => Err(usage("prompt needs TEXT, -f FILE, or - for stdin")),
    }
}

fn last_answer(panel: &mut Panel) -> Result<Message, Error> {
    panel
        .history()?
        .into_iter()
        .rev()
        .find(|m| m.role == Role::Agent)
        .ok_or_else(|| Error::Failed("there is no answer in this conversation yet".into()))
}

/// After a turn: print its answer; the exit code says whether the agent finished.
fn finish_turn(
    panel: &mut Panel,
    session: &Session,
    end: &Snapshot,
    json: bool,
) -> Result<u8, Error> {
    if end.state != State::Idle {
        if json {
            println!(
                "{}",
                json!({ "session": session.id, "state": end.state, "error": end.error, "approvals": end.approvals })
            );
        }
        eprintln!("angrav: {} stopped: {}", session.id, describe_state(end));
        return Ok(exit::FAILURE);
    }
    let last = last_answer(panel)?;
    print_answer(&last, json);
    Ok(exit::OK)
}

fn stopped_code(end: &Snapshot) -> u8 {
    if end.state == State::Idle {
        exit::OK
    } else {
        exit::FAILURE
    }
}

fn describe_state(s: &Snapshot) -> String {
    let mut out = s.state.name().to_string();
    if let Some(e) = &s.error {
        out += &format!(": {e}");
    }
    if let Some(q) = &s.quota_resume {
        out += &format!(" (resumes at {q})");
    }
    if !s.approvals.is_empty() {
        out += &format!(" (choices: {})", s.approvals.join(", "));
    }
    out
}

fn print_answer(m: &Message, json: bool) {
    if json {
        println!("{}", serde_json::to_string(m).expect("serialises"));
    } else {
        println!("{}", m.content);
    }
}

#[derive(Serialize)]
struct Status<'a> {
    session: &'a Session,
    #[serde(flatten)]
    snapshot: &'a Snapshot,
}

fn print_status(session: &Session, snap: &Snapshot, json: bool) {
    if json {
        println!(
            "{}",
            serde_json::to_string(&Status {
                session,
                snapshot: snap
            })
            .expect("serialises")
        );
        return;
    }
    let layout = snap.layout.map_or("none", Layout::name);
    println!(
        "{}  {}  {}",
        session.id,
        session.workspace.as_deref().unwrap_or("-"),
        describe_state(snap)
    );
    println!("  title:    {}", session.title);
    println!("  layout:   {layout}");
    println!(
        "  messages: {} user, {} agent; input {}",
        snap.user_messages,
        snap.agent_messages,
        match (snap.input_found, snap.input_editable) {
            (false, _) => "not found",
            (true, true) => "editable",
            (true, false) => "read-only",
        }
    );
    println!("  markers:  {}", snap.markers.join("; "));
}

/// A session with its state, for `sessions list`.
#[derive(Serialize)]
pub struct Listed {
    #[serde(flatten)]
    pub session: Session,
    pub state: Option<State>,
    pub layout: Option<Layout>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// Every session with its state: the windows are probed in parallel.
pub fn list_sessions(endpoints: &[Endpoint], profile: &Profile) -> Result<Vec<Listed>, Error> {
    let found = sessions::discover(endpoints, profile)?;
    Ok(std::thread::scope(|scope| {
        let handles: Vec<_> = found
            .into_iter()
            .map(|session| {
                scope.spawn(move || match Panel::attach(&session.window, profile) {
                    Ok((_, snap)) => Listed {
                        session,
                        state: Some(snap.state),
                        layout: snap.layout,
                        problem: None,
                    },
                    Err(e) => Listed {
                        session,
                        state: None,
                        layout: None,
                        problem: Some(e.to_string()),
                    },
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("probe thread"))
            .collect()
    }))
}

fn print_list(list: &[Listed], json: bool) {
    if json {
        println!("{}", serde_json::to_string(list).expect("serialises"));
        return;
    }
    if list.is_empty() {
        eprintln!("angrav: no Antigravity editor windows found");
        return;
    }
    let w = list
        .iter()
        .map(|l| l.session.workspace.as_deref().unwrap_or("-").len())
        .max()
        .unwrap_or(1);
    for l in list {
        let state = l.state.map_or("unknown", State::name);
        let layout = l.layout.map_or("-", Layout::name);
        let ws = l.session.workspace.as_deref().unwrap_or("-");
        println!(
            "{}  {ws:w$}  {state:17}  {layout:13}  {}",
            l.session.id, l.session.title
        );
        if let Some(p) = &l.problem {
            println!("    {p}");
        }
    }
}

fn simulate(a: &Args) -> Result<u8, Error> {
    let sim = Simulator::start()?;
    for i in 0..a.windows {
        let layout = a.layouts[i % a.layouts.len()];
        sim.open(&Window::new(layout, &workspace_name(i)).scenario(&a.scenario))?;
    }
    println!("{}", sim.endpoint().label());
    eprintln!(
        "angrav: simulated Antigravity with {} window(s) at {}; try: angrav --cdp {} sessions list. Ctrl-C stops it.",
        a.windows,
        sim.endpoint().label(),
        sim.endpoint().label()
    );
    loop {
        std::thread::park();
    }
}

fn workspace_name(i: usize) -> String {
    const NAMES: [&str; 8] = [
        "alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta",
    ];
    match NAMES.get(i) {
        Some(n) => n.to_string(),
        None => format!("ws{i}"),
    }
}

/// The main job: every chat and its state; with the simulator, also a prompt to each
/// chat, awaited in parallel, and the answers. A real Antigravity is only read.
fn demo(a: &Args) -> Result<u8, Error> {
    let profile = profile(a)?;
    let endpoints = endpoints(a)?;
    let real = endpoints.iter().all(|e| e.version().is_ok());
    let sim;
    let endpoints = if real {
        eprintln!("angrav: using the Antigravity at {}", endpoints[0].label());
        endpoints
    } else {
        eprintln!(
            "angrav: no Antigravity answers at {}; starting the simulated one",
            endpoints[0].label()
        );
        sim = Simulator::start()?;
        for (i, layout) in Layout::ALL.into_iter().enumerate() {
            sim.open(&Window::new(layout, &workspace_name(i)))?;
        }
        vec![sim.endpoint().clone()]
    };
    let list = list_sessions(&endpoints, &profile)?;
    print_list(&list, a.json);
    if real {
        return Ok(exit::OK);
    }
    let prompt = "Summarise what this workspace is for, with an example.";
    if !a.json {
        println!("\nprompt to every chat: {prompt}\n");
    }
    let results = std::thread::scope(|scope| {
        let handles: Vec<_> = list
            .iter()
            .map(|l| {
                let profile = &profile;
                let wait = a.wait;
                scope.spawn(move || -> Result<Message, Error> {
                    let (mut panel, _) = Panel::attach(&l.session.window, profile)?;
                    let base = turn::send_prompt(&mut panel, prompt, ACCEPT_WITHIN)?;
                    let first = panel.probe()?;
                    turn::wait_stopped(&mut panel, first, Some(base), wait)?;
                    last_answer(&mut panel)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("session thread"))
            .collect::<Vec<_>>()
    });
    let mut code = exit::OK;
    for (l, r) in list.iter().zip(results) {
        match r {
            Ok(m) if a.json => println!("{}", json!({ "session": l.session.id, "answer": m })),
            Ok(m) => println!(
                "### {} ({})\n\n{}\n",
                l.session.id,
                l.session.workspace.as_deref().unwrap_or("-"),
                m.content
            ),
            Err(e) => {
                eprintln!("angrav: {}: {e}", l.session.id);
                code = exit::FAILURE;
            }
        }
    }
    let _ = std::io::stderr().is_terminal();
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("120000").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5 parsecs").is_err());
    }

    #[test]
    fn commands_and_options_in_any_order() {
        let args = |s: &str| parse(s.split_whitespace().map(OsString::from)).unwrap();
        let a = args("--json prompt hello --session abc --wait --timeout 5s");
        assert_eq!(a.command, Command::Prompt(Some("hello".into())));
        assert!(a.json && a.wait_answer);
        assert_eq!(a.session.as_deref(), Some("abc"));
        assert_eq!(a.wait.timeout, Duration::from_secs(5));
        assert_eq!(args("output code --lang rust").command, Command::OutputCode);
        let bad = parse(["frobnicate"].map(OsString::from)).unwrap_err();
        assert_eq!(bad.exit_code(), exit::USAGE);
    }
}
