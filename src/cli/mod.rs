//! The command line: parsing, running a command, printing its result.
//! Results go to stdout (JSON with `--json`); messages and logs go to stderr.

mod approve;
mod color;
mod completions;
mod demo;
mod dispatch;
mod doctor;
mod help;
mod list;
mod ls;
mod memory;
mod output;
mod remote;
mod resume;
mod serve;
mod single;
mod wait;
mod watch;

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use cdp::Endpoint;

use crate::locate::{self, Source};
use crate::panel::Layout;
use crate::profile::Profile;
use crate::registry::Registry;
use crate::turn::WaitOptions;
use crate::{Error, exit};

#[derive(Debug, Clone, PartialEq)]
enum Command {
    /// The whole help, or one command's (its words).
    Help(Option<String>),
    Version,
    /// A completion script for this shell.
    Completions(String),
    /// `__complete WHAT`: the words a completion script offers (hidden).
    Complete(String),
    Schema,
    SessionsList,
    SessionsWait,
    SessionsFanout(Option<String>),
    SessionsRun,
    SessionsWatch,
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
    Doctor,
    AliasSet(String, String),
    AliasRm(String),
    AliasList,
    GroupSet(String, Vec<String>),
    GroupRm(String),
    GroupList,
    Log,
    Turns,
    Dispatch,
    Serve,
    /// `approve [CHOICE]`.
    Approve(Option<String>),
    Deny,
    Cancel,
    SessionsApprove(Option<String>),
    SessionsDeny,
    Quota,
}

#[derive(Debug)]
struct Args {
    command: Command,
    cdp: Vec<String>,
    sessions: Vec<String>,
    json: bool,
    raw: bool,
    selectors: Option<PathBuf>,
    wait: WaitOptions,
    timeout_given: bool,
    wait_answer: bool,
    /// `--approval ID`: the approval `approve` or `deny` answers.
    approval: Option<String>,
    replace_draft: bool,
    any: bool,
    all: bool,
    extract: bool,
    file: Option<PathBuf>,
    tasks: Vec<String>,
    lang: Option<String>,
    until_idle: bool,
    count: Option<u64>,
    windows: usize,
    layouts: Vec<Layout>,
    scenario: String,
    no_state: bool,
    groups: Vec<String>,
    since: Option<String>,
    kind: Option<String>,
    color: color::When,
    when_idle: bool,
    start_within: Duration,
    stall_after: Option<Duration>,
    per_session: usize,
    retries: u32,
    grace: Duration,
    /// `dispatch --resume [RUN]`: a run of the journal (default its last), not an input.
    resume: Option<resume::Which>,
    listen: String,
    allow_remote: bool,
    hooks: crate::hooks::Config,
    /// `--policy FILE`: the approval rules of a wait or a watch.
    policy: Option<PathBuf>,
    /// `--server [NAME=]URL` (repeatable, comma-separated): ask running `angrav serve`s
    /// (else `ANGRAV_SERVERS`, `ANGRAV_SERVER`).
    server: Vec<String>,
    /// `--upstream [NAME=]URL?token=TOKEN` (repeatable): serves a hub follows.
    upstreams: Vec<String>,
    /// `--ls URL`, `--ls-token T`: the language server (else `ANGRAV_LS`,
    /// `ANGRAV_LS_TOKEN`, else found per window).
    ls: Option<String>,
    ls_token: Option<String>,
    /// `--conversation ID`: a conversation of the LS, rendered in a window or not.
    conversation: Option<String>,
    /// `dispatch --model M`: chats on M are skipped while its quota is exhausted.
    model: Option<String>,
    /// The command's words in the command table, and the flags given, by the names
    /// the table knows them by (what `--server` checks).
    words: &'static str,
    given: Vec<&'static str>,
}

pub fn main() -> u8 {
    let argv: Vec<OsString> = std::env::args_os().skip(1).collect();
    // Known even when parsing fails: a script that asked for JSON gets its error so.
    let json = argv.iter().any(|a| a == "--json");
    match parse(argv).and_then(run) {
        Ok(code) => code,
        Err(e) => {
            report(&e, json);
            e.exit_code()
        }
    }
}

/// An error on stderr: its message, or with `--json` one JSON object (README: "Errors
/// as JSON").
fn report(e: &Error, json: bool) {
    if json {
        let error = serde_json::json!({
            "error": { "code": e.code(), "message": e.to_string(), "exit": e.exit_code() }
        });
        output::json_message(&error);
    } else {
        output::message(&e.to_string());
    }
}

fn usage(m: impl Into<String>) -> Error {
    Error::Usage(m.into())
}

/// A prompt to send (TEXT, `-` for stdin, or `-f FILE`), refused when empty before any
/// chat is attached: there is nothing to send.
fn read_prompt(a: &Args, arg: Option<&str>) -> Result<String, Error> {
    let text = single::read_input(arg, a.file.as_deref())?;
    if text.trim().is_empty() {
        return Err(Error::Misused {
            command: a.words,
            message: "the prompt is empty: give the text to send".into(),
        });
    }
    Ok(text)
}

fn parse(argv: impl IntoIterator<Item = OsString>) -> Result<Args, Error> {
    use lexopt::prelude::*;
    let mut p = lexopt::Parser::from_args(argv);
    let mut words: Vec<String> = Vec::new();
    let mut a = Args {
        command: Command::Help(None),
        cdp: Vec::new(),
        sessions: Vec::new(),
        json: false,
        raw: false,
        selectors: None,
        wait: WaitOptions::default(),
        timeout_given: false,
        wait_answer: false,
        approval: None,
        replace_draft: false,
        any: false,
        all: false,
        extract: true,
        file: None,
        tasks: Vec::new(),
        lang: None,
        until_idle: false,
        count: None,
        windows: 3,
        layouts: Layout::ALL.to_vec(),
        scenario: String::new(),
        no_state: false,
        groups: Vec::new(),
        since: None,
        kind: None,
        color: color::When::Auto,
        when_idle: false,
        start_within: crate::monitor::ACCEPT_WITHIN,
        stall_after: None,
        per_session: 1,
        retries: 1,
        grace: Duration::from_secs(30),
        resume: None,
        listen: "127.0.0.1:7878".into(),
        allow_remote: false,
        hooks: crate::hooks::Config::default(),
        policy: None,
        server: Vec::new(),
        upstreams: Vec::new(),
        ls: None,
        ls_token: None,
        conversation: None,
        model: None,
        words: "",
        given: Vec::new(),
    };
    let (mut help, mut version) = (false, false);
    // Every flag given, by the name the command table knows it by.
    let mut given: Vec<&'static str> = Vec::new();
    let text = |v: Result<OsString, lexopt::Error>| -> Result<String, Error> {
        v.map_err(|e| usage(e.to_string()))?
            .into_string()
            .map_err(|_| usage("arguments must be UTF-8"))
    };
    let number = |s: String, flag: &str| {
        s.parse::<u64>()
            .map_err(|_| usage(format!("{flag} takes a number")))
    };
    while let Some(arg) = p.next().map_err(|e| usage(e.to_string()))? {
        if let Some(name) = flag_name(&arg) {
            given.push(name);
        }
        match arg {
            Long("cdp") => a.cdp.push(text(p.value())?),
            Long("session") => {
                let s = text(p.value())?;
                if s.trim().is_empty() {
                    return Err(usage(
                        "--session needs an id (or a prefix of one) or a workspace name, not an empty string",
                    ));
                }
                a.sessions.push(s)
            }
            Long("color") => a.color = color::When::parse(&text(p.value())?)?,
            Long("json") => a.json = true,
            Long("raw") => a.raw = true,
            Long("selectors") => a.selectors = Some(text(p.value())?.into()),
            Long("timeout") => {
                a.wait.timeout = parse_duration(&text(p.value())?)?;
                a.timeout_given = true;
            }
            Long("settle") => a.wait.settle = parse_duration(&text(p.value())?)?,
            Long("wait") => a.wait_answer = true,
            Long("approval") => a.approval = Some(text(p.value())?),
            Long("replace-draft") => a.replace_draft = true,
            Long("any") => a.any = true,
            Long("all") => a.all = true,
            Long("no-extract") => a.extract = false,
            Short('f') | Long("file") => a.file = Some(text(p.value())?.into()),
            Long("task") => a.tasks.push(text(p.value())?),
            Long("lang") => a.lang = Some(text(p.value())?),
            Long("until-idle") => a.until_idle = true,
            Long("count") => a.count = Some(number(text(p.value())?, "--count")?),
            Long("windows") => a.windows = number(text(p.value())?, "--windows")? as usize,
            Long("layout") => {
                a.layouts = text(p.value())?
                    .split(',')
                    .map(|l| {
                        Layout::parse(l).ok_or_else(|| {
                            usage(format!(
                                "unknown layout '{l}' (current, legacy-frame, legacy-target, v2)"
                            ))
                        })
                    })
                    .collect::<Result<_, _>>()?
            }
            Long("scenario") => a.scenario = text(p.value())?,
            Long("no-state") => a.no_state = true,
            Long("group") => a.groups.push(text(p.value())?),
            Long("since") => a.since = Some(text(p.value())?),
            Long("kind") => a.kind = Some(text(p.value())?),
            Long("when-idle") => a.when_idle = true,
            Long("start-within") => a.start_within = parse_duration(&text(p.value())?)?,
            Long("stall-after") => a.stall_after = Some(parse_duration(&text(p.value())?)?),
            Long("per-session") => {
                a.per_session = number(text(p.value())?, "--per-session")?.max(1) as usize
            }
            Long("retries") => a.retries = number(text(p.value())?, "--retries")? as u32,
            Long("grace") => a.grace = parse_duration(&text(p.value())?)?,
            // `--resume=RUN`, or `--resume RUN` when the next word is a run id (hex).
            Long("resume") => {
                let run = match p.optional_value() {
                    Some(v) => Some(text(Ok(v))?),
                    None => p
                        .raw_args()
                        .ok()
                        .and_then(|mut r| r.next_if(|w| w.to_str().is_some_and(resume::is_run_id)))
                        .map(|w| w.to_string_lossy().into_owned()),
                };
                a.resume = Some(run.map_or(resume::Which::Last, resume::Which::Run));
            }
            Long("listen") => a.listen = text(p.value())?,
            Long("allow-remote") => a.allow_remote = true,
            Long("on") => {
                let (event, command) = (text(p.value())?, text(p.value())?);
                a.hooks.on(&event, &command)?;
            }
            Long("hook-timeout") => a.hooks.timeout = parse_duration(&text(p.value())?)?,
            Long("webhook") => a.hooks.webhook(&text(p.value())?)?,
            Long("notify") => a.hooks.notify = true,
            Long("policy") => a.policy = Some(text(p.value())?.into()),
            Long("server") => a.server.push(text(p.value())?),
            Long("upstream") => a.upstreams.push(text(p.value())?),
            Long("ls") => a.ls = Some(text(p.value())?),
            Long("ls-token") => a.ls_token = Some(text(p.value())?),
            Long("model") => a.model = Some(text(p.value())?),
            Long("conversation") => {
                let c = text(p.value())?;
                if c.trim().is_empty() {
                    return Err(usage("--conversation needs an id (or a prefix of one)"));
                }
                a.conversation = Some(c)
            }
            Short('h') | Long("help") => help = true,
            Short('V') | Long("version") => version = true,
            Value(v) => words.push(
                v.into_string()
                    .map_err(|_| usage("arguments must be UTF-8"))?,
            ),
            Long(flag) => return Err(unknown_flag(&format!("--{flag}"), &words)),
            Short(flag) => return Err(unknown_flag(&format!("-{flag}"), &words)),
        }
    }
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    if words.is_empty() || (version && !help) {
        a.command = if version {
            Command::Version
        } else {
            Command::Help(None)
        };
        return Ok(a);
    }
    // The completion scripts' listing: no command of the table, so no help of its own.
    if let ["__complete", what] = words.as_slice() {
        a.command = Command::Complete(what.to_string());
        return Ok(a);
    }
    let unknown = || {
        let typed = words.join(" ");
        match help::command_like(&words) {
            Some(meant) => Error::Misused {
                command: meant,
                message: format!("unknown command '{typed}' (did you mean '{meant}'?)"),
            },
            None => usage(format!("unknown command '{typed}'")),
        }
    };
    let (cmd, rest) = help::find(&words).ok_or_else(unknown)?;
    if help {
        // `sessions --help` is about the group, `prompt hi --help` about `prompt`.
        let topic = words.join(" ");
        let topic = if help::command(&topic).is_some() {
            topic
        } else {
            cmd.words.to_string()
        };
        a.command = Command::Help(Some(topic));
        return Ok(a);
    }
    let misused = |message: String| Error::Misused {
        command: cmd.words,
        message,
    };
    if let Some(flag) = given.iter().find(|f| !cmd.takes(f)) {
        return Err(misused(format!("{flag} does not apply to '{}'", cmd.words)));
    }
    a.words = cmd.words;
    a.given = given;
    // What follows the command's words, checked against what its table entry names.
    let operands = cmd.operands();
    let fits = rest.len() >= operands.min && rest.len() <= operands.max;
    if !fits && cmd.words != "help" {
        return Err(misused(if cmd.args == " TEXT" && rest.len() > 1 {
            format!(
                "'{}' takes one TEXT, not {} words; quote the prompt: angrav {} \"{}\"",
                cmd.words,
                rest.len(),
                cmd.words,
                rest.join(" ")
            )
        } else if rest.len() > operands.max {
            format!(
                "unexpected '{}' after '{}'",
                rest[operands.max..].join(" "),
                cmd.words
            )
        } else if cmd.words == "completions" {
            "which shell? bash, zsh or fish".to_string()
        } else {
            format!("'{}' needs{}", cmd.words, cmd.args)
        }));
    }
    let mut rest = rest.iter().map(|w| w.to_string());
    let operand = if cmd.words == "help" {
        Some(rest.by_ref().collect::<Vec<_>>().join(" ")).filter(|t| !t.is_empty())
    } else {
        rest.next()
    };
    a.command = match cmd.words {
        "help" => match operand {
            Some(topic) if help::command(&topic).is_none() => {
                return Err(usage(format!("no help on '{topic}': not a command")));
            }
            topic => Command::Help(topic),
        },
        "version" => Command::Version,
        "completions" => Command::Completions(operand.unwrap_or_default()),
        "schema" => Command::Schema,
        "sessions list" => Command::SessionsList,
        "sessions wait" => Command::SessionsWait,
        "sessions fanout" => Command::SessionsFanout(operand),
        "sessions run" => Command::SessionsRun,
        "sessions watch" => Command::SessionsWatch,
        "status" => Command::Status,
        "prompt" => Command::Prompt(operand),
        "wait" => Command::Wait,
        "output last" => Command::OutputLast,
        "output code" => Command::OutputCode,
        "history" => Command::History,
        "new" => Command::New,
        "simulate" => Command::Simulate,
        "demo" => Command::Demo,
        "profile" => Command::Profile,
        "doctor" => Command::Doctor,
        "alias set" => {
            Command::AliasSet(operand.unwrap_or_default(), rest.next().unwrap_or_default())
        }
        "alias rm" => Command::AliasRm(operand.unwrap_or_default()),
        "alias list" => Command::AliasList,
        "group set" => Command::GroupSet(operand.unwrap_or_default(), rest.by_ref().collect()),
        "group rm" => Command::GroupRm(operand.unwrap_or_default()),
        "group list" => Command::GroupList,
        "log" => Command::Log,
        "turns" => Command::Turns,
        "dispatch" => Command::Dispatch,
        "serve" => Command::Serve,
        "approve" => Command::Approve(operand),
        "deny" => Command::Deny,
        "cancel" => Command::Cancel,
        "sessions approve" => Command::SessionsApprove(operand),
        "sessions deny" => Command::SessionsDeny,
        "quota" => Command::Quota,
        other => unreachable!("'{other}' is in the command table but not parsed"),
    };
    if a.any && a.all {
        return Err(usage("--any and --all exclude each other"));
    }
    Ok(a)
}

/// A flag no command takes, with the nearest one `words` (the command so far) takes,
/// else any command does.
fn unknown_flag(typed: &str, words: &[String]) -> Error {
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    let cmd = help::find(&words).map(|(c, _)| c);
    let names: Vec<&str> = match cmd {
        Some(c) => c.flags().map(|f| f.name).collect(),
        None => help::every_flag(),
    };
    let message = match help::nearest(typed, names.iter().copied()) {
        Some(meant) => format!("unknown option '{typed}' (did you mean '{meant}'?)"),
        None => format!("unknown option '{typed}'"),
    };
    match cmd {
        Some(c) => Error::Misused {
            command: c.words,
            message,
        },
        None => usage(message),
    }
}

/// The name a flag has in the command table (`-f` for `--file`); `None` for what is
/// not a flag, and for `--help` and `--version`, which every command takes.
fn flag_name(arg: &lexopt::Arg) -> Option<&'static str> {
    use lexopt::Arg::{Long, Short};
    let name = match arg {
        Short('f') | Long("file") => "-f",
        Long(long) => help::COMMANDS
            .iter()
            .flat_map(help::Cmd::flags)
            .map(|f| f.name)
            .find(|n| n.strip_prefix("--") == Some(long))?,
        _ => return None,
    };
    Some(name)
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

fn endpoints(a: &Args) -> Result<Vec<Endpoint>, Error> {
    Ok(found_endpoints(a)?.0)
}

/// The endpoints named (`--cdp`, then the environment), else the one angrav finds by
/// itself (see `locate`), with how they were found. An endpoint found off the default
/// port is named on stderr, since the user did not name it.
fn found_endpoints(a: &Args) -> Result<(Vec<Endpoint>, Source), Error> {
    let mut given = a.cdp.clone();
    let mut by = "--cdp";
    if given.is_empty()
        && let Ok(v) = std::env::var("ANGRAV_CDP")
    {
        by = "ANGRAV_CDP";
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
        by = "BROWSER_CDP_ENDPOINT";
        given.push(v);
    }
    if given.is_empty() {
        let (endpoint, source) = locate::locate();
        if source.is_discovered() {
            output::message(&format!("using {} ({source})", endpoint.label()));
        }
        return Ok((vec![endpoint], source));
    }
    let mut endpoints: Vec<Endpoint> = Vec::new();
    for g in &given {
        // A malformed endpoint is a usage error; one that does not resolve is not.
        let endpoint = Endpoint::parse(g).map_err(|e| match e {
            cdp::Error::BadEndpoint { .. } => usage(e.to_string()),
            e => Error::Cdp(e),
        })?;
        // The same endpoint given twice (`:9222`, `localhost:9222`) counts once.
        if !endpoints.iter().any(|known| known.same_as(&endpoint)) {
            endpoints.push(endpoint);
        }
    }
    Ok((endpoints, Source::Given(by)))
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

fn registry(a: &Args) -> Result<Registry, Error> {
    let (endpoints, source) = found_endpoints(a)?;
    if let Source::NothingAnswered { .. } = source {
        return Err(nothing_found(&source));
    }
    memory::named(Registry::with(endpoints, profile(a)?)?, a)
}

/// No endpoint named and none found: where angrav looked, and what to do.
fn nothing_found(source: &Source) -> Error {
    Error::NoEndpoint(format!(
        "no Antigravity found ({source}); start Antigravity with its DevTools port open \
         (antigravity --remote-debugging-port=9222), give its endpoint with --cdp, or run \
         `angrav simulate` for a simulated one and paste the lines it prints"
    ))
}

/// What `version --json` names: the parts of CDP angrav relies on.
const CDP_FEATURES: &[&str] = &[
    "/json/version",
    "/json/list",
    "Target.setDiscoverTargets",
    "Page.getFrameTree",
    "Page.createIsolatedWorld",
    "Runtime.callFunctionOn (awaitPromise)",
    "Input.insertText",
    "Input.dispatchKeyEvent",
];

fn run(a: Args) -> Result<u8, Error> {
    color::init(a.color);
    output::set_raw(a.raw);
    if !matches!(
        a.command,
        Command::Help(_)
            | Command::Version
            | Command::Profile
            | Command::Completions(_)
            | Command::Schema
            | Command::SessionsList
    ) {
        // These may wait long: a reader that goes away must not leave them running.
        // (A list's probes end within PROBE_WITHIN: it watches only when it asks the
        // language server too.)
        output::exit_when_stdout_closes();
    }
    if let Some(query) = &a.conversation {
        // A conversation is read from the language server, never through a serve:
        // a --server given with it would be ignored, so it is refused as serve
        // refuses the flags it does not act on.
        if a.given.contains(&"--server") {
            return Err(Error::Misused {
                command: a.words,
                message: "--server does not apply with --conversation (a conversation is \
                          read from the language server); leave out one of them"
                    .into(),
            });
        }
        if a.command == Command::SessionsWatch {
            return ls::watch(&a, query);
        }
        return ls::conversation(&a, query);
    }
    if let Some(servers) = remote::servers(&a)? {
        return remote::run(&a, servers);
    }
    match &a.command {
        Command::Help(topic) => {
            let help = topic
                .as_deref()
                .and_then(help::command)
                .unwrap_or_else(help::global);
            if a.json {
                output::json(&help);
            } else {
                output::print(&help.text());
            }
            Ok(exit::OK)
        }
        Command::Version if a.json => {
            let details = serde_json::json!({
                "version": env!("CARGO_PKG_VERSION"),
                "cdp": CDP_FEATURES,
            });
            output::line(&details.to_string());
            Ok(exit::OK)
        }
        Command::Version => {
            output::line(&format!("angrav {}", env!("CARGO_PKG_VERSION")));
            Ok(exit::OK)
        }
        Command::Completions(shell) => {
            let script = completions::script(shell)?;
            if a.json {
                output::json(&serde_json::json!({ "shell": shell, "script": script }));
            } else {
                output::print(&script);
            }
            Ok(exit::OK)
        }
        Command::Complete(what) => completions::listing(&a, what),
        Command::Schema => {
            pretty_or_json(&crate::schema::cli(), a.json);
            Ok(exit::OK)
        }
        Command::Profile if a.selectors.is_some() => {
            pretty_or_json(&profile(&a)?.to_json(), a.json);
            Ok(exit::OK)
        }
        Command::Profile if a.json => {
            let built_in: serde_json::Value =
                serde_json::from_str(Profile::default_json()).expect("profile.json is JSON");
            output::json(&built_in);
            Ok(exit::OK)
        }
        Command::Profile => {
            output::print(Profile::default_json());
            Ok(exit::OK)
        }
        Command::Simulate => demo::simulate(&a),
        Command::Demo => demo::demo(&a),
        Command::Doctor => doctor::run(&a),
        Command::SessionsList => list::list(&a),
        Command::SessionsWait | Command::SessionsFanout(_) | Command::SessionsRun => wait::wait(&a),
        Command::SessionsWatch => watch::watch(&a),
        Command::Serve => serve::run(&a),
        Command::SessionsApprove(_) | Command::SessionsDeny => approve::many(&a),
        Command::AliasSet(..)
        | Command::AliasRm(_)
        | Command::AliasList
        | Command::GroupSet(..)
        | Command::GroupRm(_)
        | Command::GroupList
        | Command::Log
        | Command::Turns => memory::run(&a),
        Command::Dispatch => dispatch::run(&a),
        Command::Quota => ls::quota(&a),
        _ => single::run(&a),
    }
}

/// A JSON document for a person (indented), or with `--json` on one line.
fn pretty_or_json(v: &serde_json::Value, json: bool) {
    if json {
        output::json(v);
    } else {
        output::line(&serde_json::to_string_pretty(v).expect("serialises"));
    }
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
    fn every_command_in_the_table_parses_with_each_of_its_flags() {
        for c in help::COMMANDS {
            let mut argv: Vec<&str> = c.words.split(' ').collect();
            // Words for the operands it needs.
            let needs = c.operands().min;
            argv.extend(["bash", "x", "y"].iter().take(needs));
            for f in c.flags() {
                let mut with = argv.clone();
                with.push(f.name);
                if f.name == "--on" {
                    with.push("state_change:idle");
                }
                if f.takes_value() {
                    with.push(match f.name {
                        "--color" => "never",
                        "--layout" => "current",
                        "--task" => "a=b",
                        "--webhook" => "http://127.0.0.1:9/",
                        _ => "1",
                    });
                }
                let parsed = parse(with.iter().map(OsString::from));
                assert!(parsed.is_ok(), "{with:?}: {:?}", parsed.err());
            }
        }
    }

    /// What `parse` made of `argv`, without the record of which flags were given.
    fn parsed(argv: &[&str]) -> String {
        let mut a =
            parse(argv.iter().map(OsString::from)).unwrap_or_else(|e| panic!("{argv:?}: {e}"));
        a.given.clear();
        a.timeout_given = false;
        format!("{a:?}")
    }

    #[test]
    fn the_defaults_the_help_shows_are_the_parsers() {
        for c in help::COMMANDS {
            let mut argv: Vec<&str> = c.words.split(' ').collect();
            argv.extend(["bash", "x", "y"].iter().take(c.operands().min));
            for f in c.flags() {
                if let help::Preset::Value(v) = f.preset {
                    let with: Vec<&str> = argv.iter().copied().chain([f.name, v]).collect();
                    assert_eq!(
                        parsed(&argv),
                        parsed(&with),
                        "'angrav {} --help' says {} defaults to {v}, but the parser's \
                         default differs: fix the flag's preset in cli/help.rs or the \
                         parser's default in cli/mod.rs",
                        c.words,
                        f.name
                    );
                }
            }
        }
    }

    #[test]
    fn commands_and_options_in_any_order() {
        let args = |s: &str| parse(s.split_whitespace().map(OsString::from)).unwrap();
        let a = args("--json prompt hello --session abc --wait --timeout 5s");
        assert_eq!(a.command, Command::Prompt(Some("hello".into())));
        assert!(a.json && a.wait_answer);
        assert_eq!(a.sessions, ["abc"]);
        assert_eq!(a.wait.timeout, Duration::from_secs(5));
        assert_eq!(args("output code --lang rust").command, Command::OutputCode);
        assert!(args("prompt hi --replace-draft").replace_draft);
        assert!(!a.replace_draft);
        let w = args("sessions wait --any --session a --session b");
        assert_eq!(w.command, Command::SessionsWait);
        assert!(w.any && w.sessions.len() == 2);
        let bad = parse(["frobnicate"].map(OsString::from)).unwrap_err();
        assert_eq!(bad.exit_code(), exit::USAGE);
        let both = parse(["sessions", "wait", "--any", "--all"].map(OsString::from)).unwrap_err();
        assert_eq!(both.exit_code(), exit::USAGE);
    }

    #[test]
    fn resume_takes_a_run_id_when_one_follows() {
        let args = |s: &str| parse(s.split_whitespace().map(OsString::from)).unwrap();
        let run = |r: &str| Some(resume::Which::Run(r.into()));
        assert_eq!(args("dispatch --resume").resume, Some(resume::Which::Last));
        assert_eq!(
            args("dispatch --resume 0a1b2c3d4e5f").resume,
            run("0a1b2c3d4e5f")
        );
        assert_eq!(args("dispatch --resume=0a1b").resume, run("0a1b"));
        assert_eq!(args("--resume dispatch").command, Command::Dispatch);
        let a = args("dispatch --resume --session abc");
        assert_eq!(
            (a.resume, a.sessions),
            (Some(resume::Which::Last), vec!["abc".into()])
        );
        assert_eq!(args("dispatch").resume, None);
    }
}
