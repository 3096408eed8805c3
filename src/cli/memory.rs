//! The commands on what angrav remembers: `alias`, `group`, `log`, `turns`; and the
//! aliases and groups every command's `--session` and `--group` may name.

use std::time::SystemTime;

use serde::Serialize;
use serde_json::Value;

use super::output;
use super::{Args, Command, parse_duration, registry, usage};
use crate::journal::{self, Filter, Journal, Since, Turn, Who};
use crate::names::{Aliases, Groups, Names, Remembered, check_name};
use crate::registry::Registry;
use crate::state::{StateDir, StateError};
use crate::timestamp::parse_rfc3339;
use crate::{Error, exit};

/// The state directory, for a command that cannot do without it.
pub(super) fn state(a: &Args, what: &str) -> Result<StateDir, Error> {
    if a.no_state {
        return Err(usage(format!(
            "{what} needs the state directory, which --no-state turns off"
        )));
    }
    Ok(StateDir::locate()?)
}

/// The aliases and groups, unless `--no-state`. Without a state directory to find,
/// only `--group` fails.
pub(super) fn names(a: &Args) -> Result<Option<Names>, Error> {
    if a.no_state {
        return Ok(None);
    }
    match StateDir::locate() {
        Ok(dir) => Ok(Some(Names::load(dir)?)),
        Err(StateError::NoDir) if a.groups.is_empty() => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The journal of this run: none with `--no-state`, or when there is no state
/// directory to find.
pub(super) fn journal(a: &Args) -> Option<Journal> {
    if a.no_state {
        return None;
    }
    StateDir::locate().ok().map(Journal::open)
}

/// Numbers the lines a watch prints: each the seq the journal gives it as it is
/// recorded (the journal writes it later, on its own thread); without a journal
/// (`--no-state`, no state directory), this run's count.
pub(super) struct Numbering {
    journal: Option<Journal>,
    last: u64,
}

impl Numbering {
    pub(super) fn new(a: &Args) -> Numbering {
        Numbering {
            journal: journal(a),
            last: 0,
        }
    }

    /// Records `line` (`type` its kind) and returns its seq. A journal that cannot
    /// record (its error said on stderr; a last seq of 2^64-1) ends the watch: a
    /// count of its own would repeat seqs the journal holds, and a consumer resuming
    /// `--since` one of them would miss events.
    pub(super) fn number(&mut self, line: &impl Serialize) -> Result<u64, Error> {
        let Some(journal) = &self.journal else {
            self.last += 1;
            return Ok(self.last);
        };
        journal.record_line(line).ok_or_else(|| {
            Error::Failed(
                "the watch stopped: its lines take their seq from the journal, which cannot record (said above); run with --no-state to watch without it".into(),
            )
        })
    }
}

/// What `sessions watch --since` replays: the journal's entries after the seq (or
/// time) given, of the chosen sessions.
pub(super) fn replay(a: &Args) -> Result<Vec<journal::Entry>, Error> {
    let dir = state(a, "watch --since")?;
    let read = journal::read(&dir, &filter(a, &dir)?)?;
    note_skipped(read.skipped, &dir);
    Ok(read.entries)
}

/// A registry whose queries know the aliases, narrowed to `--group` when given.
pub(super) fn named(registry: Registry, a: &Args) -> Result<Registry, Error> {
    let mut registry = match names(a)? {
        Some(n) => registry.with_names(n),
        None => registry,
    };
    if !a.no_state
        && let Ok(dir) = StateDir::locate()
    {
        registry = registry.with_places(dir);
    }
    registry.keep_groups(&a.groups)?;
    Ok(registry)
}

pub(super) fn run(a: &Args) -> Result<u8, Error> {
    match &a.command {
        Command::AliasSet(name, query) => {
            check_name(name)?;
            let dir = state(a, "alias")?;
            let registry = registry(a)?;
            let r = Remembered::of(registry.get(Some(query))?);
            let entry = r.clone();
            dir.update(|al: &mut Aliases| al.aliases.insert(name.clone(), entry))?;
            print_aliases(&[(name, &r)], a.json);
        }
        Command::AliasRm(name) => {
            let dir = state(a, "alias")?;
            if dir
                .update(|al: &mut Aliases| al.aliases.remove(name))?
                .is_none()
            {
                return Err(Error::Failed(format!(
                    "no alias named '{name}' (angrav alias list)"
                )));
            }
        }
        Command::AliasList => {
            let al: Aliases = state(a, "alias")?.read()?;
            let list: Vec<_> = al.aliases.iter().collect();
            print_aliases(&list, a.json);
        }
        Command::GroupSet(name, queries) => {
            check_name(name)?;
            let dir = state(a, "group")?;
            let registry = registry(a)?;
            let mut members: Vec<Remembered> = Vec::new();
            for q in queries {
                let r = Remembered::of(registry.get(Some(q))?);
                if !members.contains(&r) {
                    members.push(r);
                }
            }
            let stored = members.clone();
            dir.update(|g: &mut Groups| g.groups.insert(name.clone(), stored))?;
            print_groups(&[(name, &members)], a.json);
        }
        Command::GroupRm(name) => {
            let dir = state(a, "group")?;
            if dir
                .update(|g: &mut Groups| g.groups.remove(name))?
                .is_none()
            {
                return Err(Error::Failed(format!(
                    "no group named '{name}' (angrav group list)"
                )));
            }
        }
        Command::GroupList => {
            let g: Groups = state(a, "group")?.read()?;
            let list: Vec<_> = g.groups.iter().collect();
            print_groups(&list, a.json);
        }
        Command::Log => {
            let dir = state(a, "log")?;
            let f = filter(a, &dir)?;
            let read = journal::read(&dir, &f)?;
            note_skipped(read.skipped, &dir);
            known(&dir, &f, &read.entries)?;
            if a.json {
                for e in &read.entries {
                    output::json(&e.event());
                }
            } else if !read.entries.is_empty() {
                let rows: Vec<Vec<String>> =
                    read.entries.iter().map(|e| log_row(&e.value)).collect();
                output::print(&output::columns(LOG_HEADER, &rows));
            }
        }
        Command::Turns => {
            let dir = state(a, "turns")?;
            let mut f = filter(a, &dir)?;
            f.kind = None;
            let read = journal::read(&dir, &f)?;
            note_skipped(read.skipped, &dir);
            known(&dir, &f, &read.entries)?;
            let turns = journal::turns(&read.entries);
            if a.json {
                output::json(&turns);
            } else if !turns.is_empty() {
                let rows: Vec<Vec<String>> = turns.iter().map(turn_row).collect();
                output::print(&output::columns(TURNS_HEADER, &rows));
            }
        }
        _ => unreachable!("not a state command"),
    }
    Ok(exit::OK)
}

/// A `--session` query the journal knows no session of is not found (exit 3), as a
/// query no window matches is elsewhere: here the journal's sessions are the domain.
/// `read`: the entries the filter admitted (a query among them is known).
fn known(dir: &StateDir, filter: &Filter, read: &[journal::Entry]) -> Result<(), Error> {
    let unseen: Vec<&str> = filter
        .sessions
        .iter()
        .filter_map(|w| match w {
            Who::Query(q) if !read.iter().any(|e| w.matches(&e.value)) => Some(q.as_str()),
            _ => None,
        })
        .collect();
    if unseen.is_empty() {
        return Ok(());
    }
    // Outside --since and --kind too.
    let all = journal::read(dir, &Filter::default())?.entries;
    let Some(q) = unseen.into_iter().find(|q| {
        !all.iter()
            .any(|e| Who::Query(q.to_string()).matches(&e.value))
    }) else {
        return Ok(());
    };
    let mut known: Vec<String> = Vec::new();
    for e in &all {
        let field = |k: &str| e.value.get(k).and_then(Value::as_str);
        if let Some(id) = field("session") {
            let named = format!("{id} ({})", field("workspace").unwrap_or("-"));
            if !known.contains(&named) {
                known.push(named);
            }
        }
    }
    Err(Error::SessionNotFound {
        query: Some(q.to_string()),
        known,
    })
}

/// `--since`, `--kind`, `--session` and `--group` as a journal filter. Aliases and
/// groups stand for the windows they remember.
fn filter(a: &Args, dir: &StateDir) -> Result<Filter, Error> {
    let mut sessions = Vec::new();
    // Aliases and groups are read only when named: a bad file of theirs does not
    // keep the journal from being read.
    let names = if a.sessions.is_empty() && a.groups.is_empty() {
        None
    } else {
        Some(Names::load(dir.clone())?)
    };
    for q in &a.sessions {
        sessions.push(match names.as_ref().and_then(|n| n.alias_target(q)) {
            Some(t) => Who::Target(t.to_string()),
            None => Who::Query(q.clone()),
        });
    }
    for g in &a.groups {
        let targets = names
            .as_ref()
            .and_then(|n| n.group_targets(g))
            .ok_or_else(|| usage(format!("no group named '{g}' (angrav group list)")))?;
        sessions.extend(targets.into_iter().map(|t| Who::Target(t.to_string())));
    }
    let kind = match &a.kind {
        None => None,
        Some(k) => Some(journal::Kind::parse(k).ok_or_else(|| {
            let all: Vec<&str> = journal::Kind::ALL.iter().map(|k| k.name()).collect();
            usage(format!("unknown kind '{k}' ({})", all.join(", ")))
        })?),
    };
    let since = match &a.since {
        None => Since::Start,
        Some(s) => since(s)?,
    };
    Ok(Filter {
        since,
        sessions,
        kind,
    })
}

/// A seq (`120`), an RFC 3339 time, or a time ago (`90s`, `10m`, `2h`).
fn since(s: &str) -> Result<Since, Error> {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        let n = s
            .parse()
            .map_err(|_| usage(format!("--since {s}: too large")))?;
        return Ok(Since::Seq(n));
    }
    if let Some(t) = parse_rfc3339(s) {
        return Ok(Since::Time(t));
    }
    let ago = parse_duration(s).map_err(|_| {
        usage(format!(
            "--since takes a seq (120), an RFC 3339 time (2026-11-28T09:00:00Z) or a time ago (10m, 2h), not '{s}'"
        ))
    })?;
    Ok(Since::Time(
        SystemTime::now()
            .checked_sub(ago)
            .unwrap_or(SystemTime::UNIX_EPOCH),
    ))
}

fn note_skipped(skipped: usize, dir: &StateDir) {
    if skipped > 0 {
        output::message(&format!(
            "{} of the journal in {} {} no journal entries (damaged, or cut short by a crash); left out",
            output::count(skipped as u64, "line"),
            dir.path().display(),
            if skipped == 1 { "is" } else { "are" }
        ));
    }
}

fn print_aliases(list: &[(&String, &Remembered)], json: bool) {
    #[derive(Serialize)]
    struct Line<'a> {
        name: &'a str,
        #[serde(flatten)]
        window: &'a Remembered,
    }
    if json {
        let lines: Vec<Line> = list
            .iter()
            .map(|(name, window)| Line { name, window })
            .collect();
        output::json(&lines);
        return;
    }
    for (name, r) in list {
        output::line(&format!(
            "{name}  {}  {}  {}",
            r.target_id,
            r.workspace.as_deref().unwrap_or("-"),
            r.endpoint
        ));
    }
}

fn print_groups(list: &[(&String, &Vec<Remembered>)], json: bool) {
    #[derive(Serialize)]
    struct Line<'a> {
        name: &'a str,
        members: &'a [Remembered],
    }
    if json {
        let lines: Vec<Line> = list
            .iter()
            .map(|(name, members)| Line { name, members })
            .collect();
        output::json(&lines);
        return;
    }
    for (name, members) in list {
        let shown: Vec<String> = members
            .iter()
            .map(|r| {
                format!(
                    "{} ({})",
                    r.target_id,
                    r.workspace.as_deref().unwrap_or("-")
                )
            })
            .collect();
        output::line(&format!("{name}  {}", shown.join(", ")));
    }
}

const LOG_HEADER: &[&str] = &["SEQ", "TIME", "KIND", "SESSION", "WORKSPACE", "DETAILS"];

/// A journal entry as one line (a replay in `sessions watch --since`).
pub(super) fn log_line(v: &Value) -> String {
    log_row(v).join("  ").trim_end().to_string()
}

/// A journal entry's cells under [`LOG_HEADER`].
fn log_row(v: &Value) -> Vec<String> {
    let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("-").to_string();
    let mut details = Vec::new();
    if v.get("previous").is_some() || v.get("current").is_some() {
        details.push(format!("{} -> {}", s("previous"), s("current")));
    }
    const SHOWN: &[&str] = &[
        "seq",
        "timestamp",
        "kind",
        "session",
        "workspace",
        "target_id",
        "previous",
        "current",
        "answer",
        "started",
        "finished",
    ];
    for (k, val) in v.as_object().into_iter().flatten() {
        if SHOWN.contains(&k.as_str()) || val.is_null() {
            continue;
        }
        let shown = match val {
            Value::String(t) => crate::show::first_line(t, 60),
            other => other.to_string(),
        };
        details.push(format!("{k}={shown}"));
    }
    vec![
        v.get("seq")
            .and_then(Value::as_u64)
            .unwrap_or(0)
            .to_string(),
        s("timestamp"),
        s("kind"),
        s("session"),
        s("workspace"),
        details.join("  "),
    ]
}

const TURNS_HEADER: &[&str] = &[
    "STARTED",
    "SESSION",
    "WORKSPACE",
    "OUTCOME",
    "DURATION",
    "PROMPT",
    "ANSWER",
];

/// A turn's cells under [`TURNS_HEADER`].
fn turn_row(t: &Turn) -> Vec<String> {
    let (outcome, duration, answer) = match &t.ended {
        Some(e) => (
            e.outcome.name(),
            format!("{:.1}s", e.duration_ms as f64 / 1e3),
            crate::show::first_line(&e.answer, 60),
        ),
        None => ("-", "-".into(), String::new()),
    };
    vec![
        t.sent.started.clone(),
        t.sent.session.clone(),
        t.sent.workspace.clone().unwrap_or_else(|| "-".into()),
        outcome.to_string(),
        duration,
        crate::show::first_line(&t.sent.prompt, 40),
        answer,
    ]
}
