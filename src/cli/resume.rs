//! `angrav dispatch --resume [RUN]`: a dispatch run (default the last), taken up again
//! from the journal after angrav stopped (killed, a crash, a reboot). Each prompt of
//! the run is where the journal and its chat show it: a result recorded is reported as
//! it was, but an `unconfirmed` one is looked for again in its chat's transcript; one
//! submitted with no result is looked for in its chat (its turn followed to the end
//! when the chat shows the prompt, `unconfirmed` when it does not: never sent again);
//! one never submitted is sent now.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use serde_json::Value;

use super::Args;
use crate::Error;
use crate::dispatch::{Finished, Prompt, Status};
use crate::journal::{self, Filter, Kind};
use crate::panel::{Panel, Role, Snapshot};
use crate::registry::Registry;
use crate::sessions::Session;
use crate::state::StateDir;
use crate::turn::{self, Until, Waited};

/// Which run `--resume` takes up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Which {
    Last,
    /// A run id, or a unique prefix of one.
    Run(String),
}

/// A word that may be a run id (hex, as dispatch makes them): `--resume RUN` takes it.
pub(super) fn is_run_id(word: &str) -> bool {
    (4..=32).contains(&word.len()) && word.bytes().all(|b| b.is_ascii_hexdigit())
}

/// At most this many runs are listed when the one asked for is not in the journal.
const RUNS_LISTED: usize = 10;

/// A dispatch run as the journal has it.
pub(super) struct Resumed {
    pub run: String,
    /// Every prompt of the run, in input order.
    pub prompts: Vec<Prompt>,
    /// Results recorded before the stop (as `--json` printed them).
    pub recorded: Vec<Value>,
    /// Submitted, with no result recorded: their chat is asked.
    pub unknown: Vec<Unknown>,
    /// Never submitted: to send now.
    pub unsent: Vec<Prompt>,
}

/// A prompt submitted to a chat before the stop, with no result.
pub(super) struct Unknown {
    pub prompt: Prompt,
    pub target_id: String,
    /// The page showed it delivered.
    pub delivered: bool,
}

impl Resumed {
    /// The dispatch run `which` names, as the journal has it.
    pub fn read(dir: &StateDir, which: &Which) -> Result<Resumed, Error> {
        let all = journal::read(dir, &Filter::default())?;
        let kind = |e: &journal::Entry| {
            e.value
                .get("kind")
                .and_then(Value::as_str)
                .and_then(Kind::parse)
        };
        let runs: Vec<&journal::Entry> = all
            .entries
            .iter()
            .filter(|e| kind(e) == Some(Kind::DispatchStarted))
            .collect();
        let start = chosen(&runs, which)?;
        let run = start.value["run"].as_str().unwrap_or_default().to_string();
        let prompts: Vec<Prompt> = start.value["prompts"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(super::dispatch::prompt_of_line)
            .collect();
        let (mut submitted, mut delivered, mut results) =
            (HashMap::new(), HashSet::new(), HashMap::new());
        for e in all.entries.iter().filter(|e| e.seq > start.seq) {
            if e.value["run"].as_str() != Some(run.as_str()) {
                continue;
            }
            let Some(id) = e.value["id"].as_str().map(str::to_string) else {
                continue;
            };
            match kind(e) {
                Some(Kind::PromptSubmitted) => {
                    let target = e.value["target_id"].as_str().unwrap_or_default();
                    submitted.insert(id, target.to_string());
                }
                Some(Kind::PromptSent) => {
                    delivered.insert(id);
                }
                Some(Kind::DispatchResult) => {
                    let mut result = e.event();
                    if let Some(o) = result.as_object_mut() {
                        for k in ["seq", "type", "timestamp", "run"] {
                            o.remove(k);
                        }
                    }
                    results.insert(id, result);
                }
                _ => {}
            }
        }
        let mut out = Resumed {
            run,
            prompts: prompts.clone(),
            recorded: Vec::new(),
            unknown: Vec::new(),
            unsent: Vec::new(),
        };
        for p in prompts {
            match (results.remove(&p.id), submitted.remove(&p.id)) {
                // Failed without ever being submitted: nothing reached an agent.
                (Some(r), None) if r["status"] == "failed" => out.unsent.push(p),
                (Some(r), _) => out.recorded.push(r),
                (None, Some(target_id)) => out.unknown.push(Unknown {
                    delivered: delivered.contains(&p.id),
                    prompt: p,
                    target_id,
                }),
                (None, None) => out.unsent.push(p),
            }
        }
        Ok(out)
    }
}

/// The start of the run `which` names, newest first among those that match; else
/// why not, listing the runs the journal knows.
fn chosen<'a>(runs: &[&'a journal::Entry], which: &Which) -> Result<&'a journal::Entry, Error> {
    let id = |e: &journal::Entry| e.value["run"].as_str().unwrap_or_default().to_string();
    let matching: Vec<&journal::Entry> = match which {
        Which::Last => runs.last().copied().into_iter().collect(),
        Which::Run(run) => runs
            .iter()
            .filter(|e| id(e).starts_with(run.as_str()))
            .copied()
            .collect(),
    };
    let distinct: HashSet<String> = matching.iter().map(|e| id(e)).collect();
    if distinct.len() == 1 {
        return Ok(matching.last().expect("one run"));
    }
    if runs.is_empty() {
        return Err(Error::Usage(
            "the journal holds no dispatch run to resume".into(),
        ));
    }
    let listed: Vec<String> = runs
        .iter()
        .rev()
        .take(RUNS_LISTED)
        .map(|e| {
            let prompts = e.value["prompts"].as_array().map_or(0, Vec::len);
            let at = e.value["timestamp"].as_str().unwrap_or("?");
            format!("{} (started {at}, {prompts} prompts)", id(e))
        })
        .collect();
    let more = runs.len().saturating_sub(RUNS_LISTED);
    let more = if more > 0 {
        format!(", and {more} older")
    } else {
        String::new()
    };
    let Which::Run(run) = which else {
        unreachable!("the last run is one run")
    };
    let what = if distinct.is_empty() {
        "no dispatch run"
    } else {
        "more than one dispatch run"
    };
    Err(Error::Usage(format!(
        "--resume {run}: the journal holds {what} of that id; it knows, newest first: {}{more}",
        listed.join(", ")
    )))
}

/// What became of a prompt submitted before the stop, as its chat shows it now: its
/// turn followed to the end when the chat shows the prompt (or the page had shown it
/// delivered), else `unconfirmed`.
pub(super) fn settle(registry: &Registry, u: &Unknown, a: &Args) -> Finished {
    let result = |session, status, reason: String| {
        Finished::unfollowed(u.prompt.id.clone(), session, status, reason, 1)
    };
    let Some(session) = registry
        .sessions()
        .iter()
        .find(|s| s.target_id == u.target_id)
        .cloned()
    else {
        return if u.delivered {
            result(
                None,
                Status::Closed,
                format!(
                    "delivered to {} before angrav stopped; that chat is gone",
                    short(&u.target_id)
                ),
            )
        } else {
            result(
                None,
                Status::Unconfirmed,
                format!(
                    "submitted to {} before angrav stopped; that chat is gone, so what became of it is not known",
                    short(&u.target_id)
                ),
            )
        };
    };
    let unseen = |why: String| {
        result(
            Some(session.clone()),
            Status::Unconfirmed,
            format!("submitted before angrav stopped; {why}; not sent again"),
        )
    };
    let (mut panel, first) = match Panel::attach(&session.window, registry.profile()) {
        Ok(found) => found,
        Err(e) => return unseen(format!("its chat cannot be read: {e}")),
    };
    let shown = |panel: &mut Panel| -> Option<usize> {
        let history = panel.history().ok()?;
        history
            .iter()
            .rposition(|m| m.role == Role::User && turn::same_text(&m.content, &u.prompt.text))
    };
    if shown(&mut panel).is_none() && !u.delivered {
        return unseen("its chat's transcript does not show it".into());
    }
    follow(&mut panel, first, session, &u.prompt, a)
}

/// A prompt recorded `unconfirmed` before the stop, looked for again in its chat's
/// transcript: when the newest user message there is the prompt, and the transcript
/// shows it once, it was delivered: its turn is followed as [`settle`] follows one.
/// Otherwise `None`: it stays as recorded, and is never sent again.
pub(super) fn recheck(
    registry: &Registry,
    recorded: &Value,
    prompts: &[Prompt],
    a: &Args,
) -> Option<Finished> {
    let id = recorded["id"].as_str()?;
    let prompt = prompts.iter().find(|p| p.id == id)?;
    let target = recorded["session"]["target_id"].as_str()?;
    let session = registry
        .sessions()
        .iter()
        .find(|s| s.target_id == target)?
        .clone();
    let (mut panel, first) = Panel::attach(&session.window, registry.profile()).ok()?;
    let history = panel.history().ok()?;
    let users: Vec<&str> = history
        .iter()
        .filter(|m| m.role == Role::User)
        .map(|m| m.content.as_str())
        .collect();
    let this = |m: &&&str| turn::same_text(m, &prompt.text);
    if users.iter().filter(this).count() != 1 || !users.last().is_some_and(|m| this(&m)) {
        return None;
    }
    let mut found = follow(&mut panel, first, session, prompt, a);
    found.attempts = recorded["attempts"].as_u64().map_or(1, |n| n as u32);
    Some(found)
}

/// A prompt its chat shows delivered before the stop: its turn followed to the end,
/// and its answer.
fn follow(
    panel: &mut Panel,
    first: Snapshot,
    session: Session,
    prompt: &Prompt,
    a: &Args,
) -> Finished {
    let started = Instant::now();
    let result = |status, reason: String| {
        Finished::unfollowed(prompt.id.clone(), Some(session.clone()), status, reason, 1)
    };
    let until = Until {
        turn: None,
        settle: a.wait.settle,
        accept: |_| true,
        deadline: a.timeout_given.then(|| started + a.wait.timeout),
        stall_after: None,
    };
    let end = match turn::wait_until(panel, first, until) {
        Ok(Waited::Stopped(end)) => end,
        Ok(Waited::TimedOut(end) | Waited::Stalled(end)) => {
            let mut r = result(
                Status::Pending,
                "delivered before angrav stopped; still running".into(),
            );
            r.state = Some(end.state);
            return r;
        }
        Err(e) => {
            return result(
                Status::Closed,
                format!("delivered before angrav stopped; then {e}"),
            );
        }
    };
    // The answer: the first agent message after the prompt, as the chat shows it.
    let history = panel.history().unwrap_or_default();
    let asked = history
        .iter()
        .rposition(|m| m.role == Role::User && turn::same_text(&m.content, &prompt.text));
    let answer = asked
        .and_then(|i| history[i + 1..].iter().find(|m| m.role == Role::Agent))
        .cloned();
    Finished {
        state: Some(end.state),
        reason: Some("sent before angrav stopped; its chat shows it, and its turn ended".into()),
        status: Status::Done,
        answer: if a.extract { answer } else { None },
        error: end.error.clone(),
        approvals: end.approvals.clone(),
        question: end.question.clone(),
        duration_ms: started.elapsed().as_millis() as u64,
        ..result(Status::Done, String::new())
    }
}

/// A target id as a reason names it.
fn short(target_id: &str) -> &str {
    &target_id[..target_id.len().min(6)]
}
