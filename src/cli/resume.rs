//! `angrav dispatch --resume`: the last dispatch run, taken up again from the journal
//! after angrav stopped (killed, a crash, a reboot). Each prompt of the run is where
//! the journal and its chat show it: a result recorded is reported as it was; one
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
use crate::panel::{Panel, Role};
use crate::registry::Registry;
use crate::state::StateDir;
use crate::turn::{self, Until, Waited};

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
    /// The last dispatch run of the journal.
    pub fn read(dir: &StateDir) -> Result<Resumed, Error> {
        let all = journal::read(dir, &Filter::default())?;
        let kind = |e: &journal::Entry| {
            e.value
                .get("kind")
                .and_then(Value::as_str)
                .and_then(Kind::parse)
        };
        let start = all
            .entries
            .iter()
            .rev()
            .find(|e| kind(e) == Some(Kind::DispatchStarted))
            .ok_or_else(|| Error::Usage("the journal holds no dispatch run to resume".into()))?;
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

/// What became of a prompt submitted before the stop, as its chat shows it now: its
/// turn followed to the end when the chat shows the prompt (or the page had shown it
/// delivered), else `unconfirmed`.
pub(super) fn settle(registry: &Registry, u: &Unknown, a: &Args) -> Finished {
    let started = Instant::now();
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
    let until = Until {
        turn: None,
        settle: a.wait.settle,
        accept: |_| true,
        deadline: a.timeout_given.then(|| started + a.wait.timeout),
        stall_after: None,
    };
    let end = match turn::wait_until(&mut panel, first, until) {
        Ok(Waited::Stopped(end)) => end,
        Ok(Waited::TimedOut(end) | Waited::Stalled(end)) => {
            let mut r = result(
                Some(session.clone()),
                Status::Pending,
                "delivered before angrav stopped; still running".into(),
            );
            r.state = Some(end.state);
            return r;
        }
        Err(e) => {
            return result(
                Some(session.clone()),
                Status::Closed,
                format!("delivered before angrav stopped; then {e}"),
            );
        }
    };
    // The answer: the first agent message after the prompt, as the chat shows it.
    let history = panel.history().unwrap_or_default();
    let asked = history
        .iter()
        .rposition(|m| m.role == Role::User && turn::same_text(&m.content, &u.prompt.text));
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
        duration_ms: started.elapsed().as_millis() as u64,
        ..result(Some(session), Status::Done, String::new())
    }
}

/// A target id as a reason names it.
fn short(target_id: &str) -> &str {
    &target_id[..target_id.len().min(6)]
}
