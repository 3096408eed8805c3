//! The commands that ask the language server: `quota`, the commands on one
//! conversation (`--conversation ID`), and the conversations `sessions list --all`
//! adds.

use std::time::Duration;

use serde::Serialize;
use serde_json::{Value, json};

use super::output;
use super::single::print_history;
use super::{Args, Command, usage};
use crate::ls::conversation::{Reading, Waiting};
use crate::ls::model::{Answer, Quota};
use crate::ls::{Ls, LsError};
use crate::panel::{Deadline, Press, Role, State};
use crate::registry::Listed;
use crate::{Error, exit};

/// The LS named by `--ls` or `ANGRAV_LS`, with its token (`--ls-token`,
/// `ANGRAV_LS_TOKEN`); `None` when none is named.
pub(super) fn given(a: &Args) -> Result<Option<Ls>, Error> {
    let (url, by) = match (&a.ls, std::env::var("ANGRAV_LS")) {
        (Some(u), _) => (u.clone(), "--ls"),
        (None, Ok(u)) if !u.trim().is_empty() => (u, "ANGRAV_LS"),
        _ => return Ok(None),
    };
    let token = a
        .ls_token
        .clone()
        .or_else(|| std::env::var("ANGRAV_LS_TOKEN").ok())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            usage(format!(
                "{by} needs the language server's token: --ls-token TOKEN or ANGRAV_LS_TOKEN (its --csrf_token)"
            ))
        })?;
    let mut ls = Ls::given(&url, &token, by).map_err(|e| usage(e.to_string()))?;
    // An https:// LS is reached through a window's page (its certificate is its
    // own): the first window's, when an Antigravity answers.
    if ls.url.starts_with("https://") {
        ls.page = super::registry(a)
            .ok()
            .and_then(|r| r.sessions().first().map(|s| s.window.ws_url.clone()));
    }
    Ok(Some(ls))
}

/// The LS to ask: the one named, else the one found from the windows.
fn one(a: &Args, deadline: Deadline) -> Result<Ls, Error> {
    if let Some(ls) = given(a)? {
        return Ok(ls);
    }
    let registry = super::registry(a)?;
    Ok(crate::ls::find::first(registry.sessions(), deadline)?)
}

/// `angrav quota`: each model's remaining fraction and when it refills.
pub(super) fn quota(a: &Args) -> Result<u8, Error> {
    let deadline = Deadline::within(a.wait.timeout);
    let ls = one(a, deadline)?;
    let models = ls.quota(deadline)?;
    print_quota(&models, a.json);
    Ok(exit::OK)
}

pub(super) fn print_quota(models: &[Quota], json: bool) {
    if json {
        return output::json(&models);
    }
    if models.is_empty() {
        output::message("the language server lists no models");
        return;
    }
    let name = |q: &Quota| {
        q.label
            .clone()
            .or_else(|| q.model.clone())
            .unwrap_or_else(|| "-".into())
    };
    let w = models
        .iter()
        .map(|q| name(q).chars().count())
        .max()
        .unwrap_or(0)
        .max("MODEL".len());
    output::line(&format!("{:w$}  {:9}  RESETS", "MODEL", "REMAINING"));
    for q in models {
        let reset = q.reset.as_deref().unwrap_or("-");
        let note = if q.exhausted { "  (exhausted)" } else { "" };
        output::line(&format!("{:w$}  {:9}  {reset}{note}", name(q), left(q)));
    }
}

/// `60 %`, or `unknown` when the LS leaves the fraction out.
fn left(q: &Quota) -> String {
    match q.remaining {
        Some(r) => format!("{:.0} %", r * 100.0),
        None => "unknown".into(),
    }
}

/// `Gemini 3 Pro: 60 % left, resets 2026-...`, for `status`.
pub(super) fn quota_text(q: &Quota) -> String {
    format!(
        "{}: {} left{}, resets {}",
        q.label.as_deref().or(q.model.as_deref()).unwrap_or("-"),
        left(q),
        if q.exhausted { " (exhausted)" } else { "" },
        q.reset.as_deref().unwrap_or("-")
    )
}

/// The quota of the model a chat's panel shows, when a language server is named
/// (`--ls`; nothing is looked for otherwise, so `status` costs nothing more). A
/// language server that fails is said on stderr, and `status` goes on without it.
pub(super) fn quota_of(a: &Args, model: Option<&str>, deadline: Deadline) -> Option<Quota> {
    let ls = match given(a) {
        Ok(Some(ls)) => ls,
        _ => return None,
    };
    let model = model?;
    match ls.quota(deadline) {
        Ok(models) => models.into_iter().find(|q| q.is(model)),
        Err(e) => {
            output::message(&format!("no quota shown: {e}"));
            None
        }
    }
}

/// A conversation's `session` object: the vocabulary's `{id, target_id, workspace,
/// title, endpoint}`, with no window (`target_id` null), its summary as the title,
/// the LS as the endpoint, and the full `conversation_id`.
fn session_object(r: &Reading, id: &str, ls: &Ls) -> Value {
    json!({
        "id": id,
        "target_id": null,
        "workspace": r.workspace,
        "title": r.conversation.summary.clone().unwrap_or_default(),
        "endpoint": ls.url,
        "conversation_id": r.conversation.id,
    })
}

/// The commands on one conversation, named by `--conversation`.
pub(super) fn conversation(a: &Args, query: &str) -> Result<u8, Error> {
    let deadline = Deadline::within(a.wait.timeout);
    let prompt_text = match &a.command {
        Command::Prompt(t) => Some(super::read_prompt(a, t.as_deref())?),
        _ => None,
    };
    let ls = one(a, deadline)?;
    let found = ls.find(query, deadline)?;
    let id = found.id.clone();
    let short = short_ids(&ls, deadline)?
        .into_iter()
        .find(|(full, _)| *full == id)
        .map_or_else(|| id.clone(), |(_, s)| s);
    match &a.command {
        Command::Status => {
            let (r, _) = ls.read(&id, deadline)?;
            print_status(&r, &short, &ls, a.json);
            Ok(exit::OK)
        }
        Command::History => {
            print_history(&ls.history(&id, deadline)?, a.json);
            Ok(exit::OK)
        }
        Command::Approve(choice) => {
            let press = choice.as_deref().map_or(Press::Allow, Press::Named);
            answered(a, &ls, &id, &short, press, deadline)
        }
        Command::Deny => answered(a, &ls, &id, &short, Press::Deny, deadline),
        Command::Cancel => {
            let r = ls.cancel(&id, deadline)?;
            let state = r.state;
            if a.json {
                output::json(&json!({
                    "session": session_object(&r, &short, &ls), "cancelled": true,
                    "state": state,
                }));
            } else {
                output::line(&format!(
                    "{short}: cancelled through the LS; now {}",
                    state.map_or("unknown", State::name)
                ));
            }
            Ok(exit::OK)
        }
        Command::Prompt(_) => {
            let text = prompt_text.unwrap_or_default();
            let sent = ls.send(&id, &text, deadline)?;
            let (r, _) = ls.read(&id, deadline)?;
            let session = session_object(&r, &short, &ls);
            if a.json && !a.wait_answer {
                output::json(&json!({
                    "session": session, "delivered": true,
                    "step_index": sent.step_index, "state": sent.state,
                }));
                return Ok(exit::OK);
            }
            let line = format!(
                "{short}: delivered (step {}); now {}",
                sent.step_index,
                sent.state.map_or("unknown", State::name)
            );
            if !a.wait_answer {
                output::line(&line);
                return Ok(exit::OK);
            }
            output::message(&line);
            waited(a, &ls, &id, &short, deadline)
        }
        Command::Wait => waited(a, &ls, &id, &short, deadline),
        other => Err(usage(format!(
            "--conversation does not apply to '{}'",
            super::help::find(&[a.words])
                .map_or(format!("{other:?}"), |(c, _)| c.words.to_string())
        ))),
    }
}

/// The short id of every conversation: the shortest unique prefix, at least 6.
fn short_ids(ls: &Ls, deadline: Deadline) -> Result<Vec<(String, String)>, Error> {
    let ids: Vec<String> = ls
        .conversations(deadline)?
        .into_iter()
        .map(|c| c.id)
        .collect();
    Ok(ids
        .iter()
        .map(|id| (id.clone(), crate::sessions::short_id(id, &ids)))
        .collect())
}

fn print_status(r: &Reading, short: &str, ls: &Ls, json: bool) {
    let approvals = r.approvals();
    if json {
        let first = r.first_waiting();
        return output::json(&json!({
            "session": session_object(r, short, ls),
            "kind": "conversation",
            "state": r.state,
            "run_status": r.run_status,
            "steps": r.conversation.steps,
            "last_change": r.conversation.last_change,
            "approval": first.map(|w| &w.approval),
            "approvals": approvals,
            "step_index": first.map(|w| w.step_index),
            "question": r.question,
            "ls": {"url": ls.url, "found_by": ls.found.name()},
        }));
    }
    output::line(&format!(
        "{short}  {}  {}",
        r.workspace.as_deref().unwrap_or("-"),
        r.described()
    ));
    output::line(&format!("  conversation: {}", r.conversation.id));
    output::line(&format!(
        "  summary:  {}",
        r.conversation.summary.as_deref().unwrap_or("-")
    ));
    output::line(&format!(
        "  run:      {}; {} steps; last change {}",
        r.run_status.as_deref().unwrap_or("unknown"),
        r.conversation.steps,
        r.conversation.last_change.as_deref().unwrap_or("-")
    ));
    for w in &r.waiting {
        output::line(&format!("  approval: {}", step_shown(w)));
    }
    output::line(&format!("  ls:       {} ({})", ls.url, ls.found));
}

/// `3fa2c1d0 command: cargo test (Run, Reject) (step 3)`: a waiting step on a line.
fn step_shown(w: &Waiting) -> String {
    format!(
        "{} (step {})",
        crate::approve::shown(&w.approval),
        w.step_index
    )
}

fn answered(
    a: &Args,
    ls: &Ls,
    id: &str,
    short: &str,
    press: Press,
    deadline: Deadline,
) -> Result<u8, Error> {
    // A window that shows this conversation shows its approval too, and its panel
    // tells the LS when a choice is pressed: pressed there, once, and never also here.
    if let Some((registry, session)) = shown_in(a, id, deadline) {
        output::message(&format!(
            "conversation {short} shows in window {}: answered there",
            session.id
        ));
        let group = std::sync::Arc::default();
        let (mut panel, snap) = crate::panel::Panel::attach_in(
            &session.window,
            registry.profile(),
            std::sync::Arc::clone(&group),
            Some(deadline),
        )?;
        // Pressed only as the card of the step the LS says waits: the window is
        // linked to the conversation by the requests its panel made, which may have
        // named another.
        let there = card_in_window(ls, id, a.approval.as_deref(), &snap, deadline)?;
        let chat = super::single::Waiting {
            session: &session,
            group: &group,
            deadline,
        };
        return super::approve::one(&mut panel, &chat, Some(&there), a);
    }
    let done = ls.answer(id, a.approval.as_deref(), press, deadline)?;
    let session = session_object(&done.now, short, ls);
    let line = format!(
        "{short}: answered step {} '{}' through the LS; now {}",
        done.step_index,
        done.pressed,
        done.now.state.map_or("unknown", State::name)
    );
    if !a.wait_answer {
        if a.json {
            output::json(&json!({
                "session": session, "pressed": done.pressed, "approval": done.approval,
                "step_index": done.step_index, "state": done.now.state, "via": "ls",
            }));
        } else {
            output::line(&line);
        }
        return Ok(exit::OK);
    }
    output::message(&line);
    waited(a, ls, id, short, deadline)
}

/// The id a window gives the approval the LS knows as `want` (without one, of the
/// only step waiting): the one card of the same kind and command that shows there,
/// else `approval_changed` naming what shows. A command is compared only where both
/// have one: the LS names a permission's file or description, its card shows none.
fn card_in_window(
    ls: &Ls,
    id: &str,
    want: Option<&str>,
    shown: &crate::panel::Snapshot,
    deadline: Deadline,
) -> Result<String, Error> {
    let step = ls.waiting_approval(id, want, deadline)?;
    let alike: Vec<&crate::panel::Approval> = shown
        .approvals
        .iter()
        .filter(|c| {
            c.kind == step.kind
                && match (&c.command, &step.command) {
                    (Some(card), Some(step)) => card == step,
                    _ => true,
                }
        })
        .collect();
    match alike.as_slice() {
        [one] => Ok(one.id.clone()),
        _ => Err(crate::approve::changed(
            &format!(
                "approval {} shows as {} cards alike in the window; nothing pressed",
                step.id,
                alike.len()
            ),
            &shown.approvals,
        )),
    }
}

/// The window that shows conversation `id` (its panel's requests name it), when an
/// Antigravity answers and one does.
fn shown_in(
    a: &Args,
    id: &str,
    deadline: Deadline,
) -> Option<(crate::registry::Registry, crate::sessions::Session)> {
    let registry = super::registry(a).ok()?;
    let session = crate::ls::find::for_windows(registry.sessions(), deadline)
        .into_iter()
        .find(|(_, f)| {
            f.as_ref()
                .is_ok_and(|w| w.conversation.as_deref() == Some(id))
        })?
        .0;
    Some((registry, session))
}

/// What `doctor` says of a window's language server.
#[derive(Debug, Default, Serialize)]
pub(super) struct Found {
    pub url: Option<String>,
    /// `given`, `panel_request`, `app_config`, `process`; null when none was found.
    pub found_by: Option<&'static str>,
    /// How it was found, or why none was.
    pub detail: String,
    /// The conversation the window shows, when its panel's requests said.
    pub conversation: Option<String>,
}

impl std::fmt::Display for Found {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.url {
            Some(url) => write!(f, "{url} ({})", self.detail)?,
            None => write!(f, "none: {}", self.detail)?,
        }
        if let Some(c) = &self.conversation {
            write!(f, "; shows conversation {c}")?;
        }
        Ok(())
    }
}

/// Each window's language server for `doctor`: the one named (`--ls`), else the one
/// found; with the conversation each window shows.
pub(super) fn per_window(
    a: &Args,
    sessions: &[crate::sessions::Session],
    deadline: Deadline,
) -> Result<Vec<Found>, Error> {
    let given = given(a)?;
    Ok(crate::ls::find::for_windows(sessions, deadline)
        .into_iter()
        .map(|(_, f)| {
            let conversation = f.as_ref().ok().and_then(|w| w.conversation.clone());
            let ls = given
                .clone()
                .or_else(|| f.as_ref().ok().map(|w| w.ls.clone()));
            match ls {
                Some(ls) => Found {
                    url: Some(ls.url),
                    found_by: Some(ls.found.name()),
                    detail: ls.found.to_string(),
                    conversation,
                },
                None => Found {
                    detail: f.err().unwrap_or_default(),
                    conversation,
                    ..Found::default()
                },
            }
        })
        .collect())
}

/// How long a policy watch looks for a window showing a conversation before it
/// presses one of its steps (the windows listened to for `LISTEN_FOR`, at once): a
/// frozen window delays a press no longer, and counts as not showing it (its own
/// watch cannot press there either).
const LOOK_IN_WINDOWS: Duration = Duration::from_secs(5);

/// How long the reading after a timed-out wait may take.
const LAST_LOOK: Duration = Duration::from_secs(3);

/// Waits for the conversation to stop, then prints how, with its last answer.
fn waited(a: &Args, ls: &Ls, id: &str, short: &str, deadline: Deadline) -> Result<u8, Error> {
    let started = std::time::Instant::now();
    let end = ls.wait(id, a.wait.settle, deadline)?;
    let timed_out = end.is_none();
    // Timed out, the wait's deadline has passed: the reading that says where the
    // conversation stands gets a moment of its own.
    let look = if timed_out {
        Deadline::within(LAST_LOOK)
    } else {
        deadline
    };
    let (r, steps) = ls.read(id, look)?;
    let answer = steps
        .iter()
        .rev()
        .find_map(crate::ls::model::Step::message)
        .filter(|m| m.role == Role::Agent && !timed_out);
    let state = r.state;
    if a.json {
        output::json(&json!({
            "session": session_object(&r, short, ls),
            "timed_out": timed_out,
            "status": if timed_out { "pending" } else { "done" },
            "state": state,
            "approval": r.first_waiting().map(|w| &w.approval),
            "step_index": r.first_waiting().map(|w| w.step_index),
            "question": r.question,
            "duration_ms": started.elapsed().as_millis() as u64,
            "answer": answer,
        }));
    } else {
        if let Some(m) = &answer
            && state == Some(State::Idle)
        {
            output::line(&m.content);
        } else {
            output::line(&format!("{short}: {}", r.described()));
        }
    }
    if timed_out {
        output::message(&deadline.missed(format!("conversation {short}")).to_string());
        return Ok(exit::TIMEOUT);
    }
    Ok(if state == Some(State::Idle) {
        exit::OK
    } else {
        exit::FAILURE
    })
}

/// A conversation as a row of `sessions list --all`.
#[derive(Serialize)]
pub(super) struct ConversationRow {
    pub session: Value,
    pub kind: &'static str,
    pub state: Option<State>,
    pub layout: Option<()>,
    pub steps: u64,
    pub last_change: Option<String>,
    pub approval: Option<crate::panel::Approval>,
    pub step_index: Option<u64>,
    /// The question it waits at (`awaiting_input`), when a step asks one.
    pub question: Option<Box<crate::panel::Question>>,
    /// The id of the window that shows it, when one does.
    pub window: Option<String>,
    #[serde(skip)]
    pub short: String,
}

/// The LS's conversations for `sessions list --all`: every one, each joined to the
/// window that shows it (see [`crate::ls::find`]). No LS named and none found: none,
/// and a note on stderr saying why.
pub(super) fn rows(
    a: &Args,
    listed: &[Listed],
    deadline: Deadline,
) -> Result<Vec<ConversationRow>, Error> {
    let sessions: Vec<crate::sessions::Session> =
        listed.iter().map(|l| l.session.clone()).collect();
    let found = crate::ls::find::for_windows(&sessions, deadline);
    let ls = match given(a)? {
        Some(ls) => ls,
        None => match found.iter().find_map(|(_, f)| f.as_ref().ok()) {
            Some(w) => w.ls.clone(),
            None => {
                output::message(
                    "no language server found: only the windows are listed (give --ls URL --ls-token T)",
                );
                return Ok(Vec::new());
            }
        },
    };
    conversation_rows(&ls, &found, deadline)
}

/// Every conversation of `ls` as a row, joined to the window of `found` whose panel
/// named it.
pub(super) fn conversation_rows(
    ls: &Ls,
    found: &[(
        crate::sessions::Session,
        Result<crate::ls::find::WindowLs, String>,
    )],
    deadline: Deadline,
) -> Result<Vec<ConversationRow>, Error> {
    let readings = ls.readings(deadline)?;
    let ids: Vec<String> = readings.iter().map(|r| r.conversation.id.clone()).collect();
    let shown: Vec<(String, &str)> = found
        .iter()
        .filter_map(|(s, f)| Some((f.as_ref().ok()?.conversation.clone()?, s.id.as_str())))
        .collect();
    Ok(readings
        .into_iter()
        .map(|r| {
            let short = crate::sessions::short_id(&r.conversation.id, &ids);
            let window = shown
                .iter()
                .find(|(c, _)| *c == r.conversation.id)
                .map(|(_, w)| w.to_string());
            ConversationRow {
                session: session_object(&r, &short, ls),
                kind: "conversation",
                state: r.state,
                layout: None,
                steps: r.conversation.steps,
                last_change: r.conversation.last_change.clone(),
                approval: r.first_waiting().map(|w| w.approval.clone()),
                step_index: r.first_waiting().map(|w| w.step_index),
                question: r.question.clone(),
                window,
                short,
            }
        })
        .collect())
}

/// The conversations after the windows: with `--json`, the whole list as one array
/// (windows, managers, conversations); else a table of their own.
pub(super) fn print_rows(
    listed: &[Listed],
    managers: &[crate::sessions::Manager],
    rows: &[ConversationRow],
    json: bool,
) {
    if rows.is_empty() {
        return;
    }
    if json {
        let mut all: Vec<Value> = crate::registry::ListRow::all(listed, managers)
            .iter()
            .map(|r| serde_json::to_value(r).expect("serialises"))
            .collect();
        all.extend(
            rows.iter()
                .map(|r| serde_json::to_value(r).expect("serialises")),
        );
        return output::json(&all);
    }
    let id_w = rows
        .iter()
        .map(|r| r.short.len())
        .max()
        .unwrap_or(0)
        .max("CONVERSATION".len());
    let workspace =
        |r: &ConversationRow| r.session["workspace"].as_str().unwrap_or("-").to_string();
    let w = rows
        .iter()
        .map(|r| workspace(r).len())
        .max()
        .unwrap_or(0)
        .max("WORKSPACE".len());
    if !listed.is_empty() || !managers.is_empty() {
        output::line("");
    }
    output::line(&format!(
        "{:id_w$}  {:w$}  {:17}  {:5}  {:8}  SUMMARY",
        "CONVERSATION", "WORKSPACE", "STATE", "STEPS", "WINDOW"
    ));
    for r in rows {
        let state = r.state.map_or("unknown", State::name);
        let left = format!("{:id_w$}  {:w$}  ", r.short, workspace(r));
        let right = format!(
            "  {:5}  {:8}  {}",
            r.steps,
            r.window.as_deref().unwrap_or("-"),
            r.session["title"].as_str().unwrap_or_default()
        );
        output::write_stdout(&format!(
            "{}{}{}\n",
            output::shown(&left, output::Stream::Stdout),
            super::color::paint(state, &format!("{state:17}")),
            output::shown(&right, output::Stream::Stdout)
        ));
    }
}

/// How often `sessions watch --conversation` reads the language server when it has
/// no stream (not every build has one; polling works on all).
const WATCH_EVERY: std::time::Duration = std::time::Duration::from_millis(500);

/// How often it reads the language server as well while a stream wakes it: a change
/// a build's stream does not tell of is still seen.
const STREAMED_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// The stream that tells of a change: `StreamAgentStateUpdates` for one
/// conversation, `StreamCascadeReactiveUpdates` for all; `None` (said on stderr)
/// when the language server has none.
fn updates(ls: &Ls, wanted: Option<&str>) -> Option<crossbeam_channel::Receiver<Value>> {
    let (method, body) = match wanted {
        Some(id) => (
            "StreamAgentStateUpdates",
            json!({"conversationId": id, "subscriberId": format!("angrav-{}", std::process::id())}),
        ),
        None => ("StreamCascadeReactiveUpdates", json!({})),
    };
    match ls.stream(method, &body, Deadline::within(WATCH_EVERY * 4)) {
        Ok(rx) => {
            output::message(&format!(
                "following the language server's {method} stream (and reading it every {} s)",
                STREAMED_EVERY.as_secs()
            ));
            Some(rx)
        }
        Err(e) => {
            let why = match e {
                Error::Ls(LsError::Unsupported { .. }) => format!("it has no {method}"),
                e => e.to_string(),
            };
            output::message(&format!(
                "no stream from the language server ({why}): reading it every {} ms",
                WATCH_EVERY.as_millis()
            ));
            None
        }
    }
}

/// `sessions watch --conversation ID|all`: a snapshot line per conversation, then a
/// line per change (`state_change`, `new_session`, `session_closed`), each recorded
/// in the journal as a window's are; read at each update of the language server's
/// stream, else every [`WATCH_EVERY`]. Ends as the window watch does: `--count`,
/// `--until-idle`, `--timeout` (124), ^C (130).
pub(super) fn watch(a: &Args, query: &str) -> Result<u8, Error> {
    use crossbeam_channel::{after, never, select, tick};
    let every_call = Deadline::within(a.wait.timeout);
    let ls = one(a, every_call)?;
    let wanted = if query == "all" {
        None
    } else {
        Some(ls.find(query, every_call)?.id)
    };
    let timeout = if a.timeout_given {
        after(a.wait.timeout)
    } else {
        never()
    };
    let policy = a
        .policy
        .as_deref()
        .map(crate::policy::Policy::load)
        .transpose()?;
    // A conversation a window shows is left to that window's watch, so that an
    // approval both see is pressed once. Looked up when a step is about to be
    // pressed (listening to each window costs up to `LISTEN_FOR`), not once at the
    // start: a window may open the conversation meanwhile.
    let shown_in = |conversation: &str| -> Option<String> {
        let registry = super::registry(a).ok()?;
        crate::ls::find::for_windows(registry.sessions(), Deadline::within(LOOK_IN_WINDOWS))
            .into_iter()
            .find_map(|(s, f)| (f.ok()?.conversation? == conversation).then_some(s.id))
    };
    let mut decided: Vec<(String, u64)> = Vec::new();
    let interrupt = crate::signals::signals();
    let mut numbering = super::memory::Numbering::new(a);
    let mut stream = updates(&ls, wanted.as_deref());
    let mut poll = tick(if stream.is_some() {
        STREAMED_EVERY
    } else {
        WATCH_EVERY
    });
    let mut known: Vec<Reading> = Vec::new();
    let (mut events, mut first) = (0u64, true);
    loop {
        let readings: Vec<Reading> = ls
            .readings(Deadline::within(WATCH_EVERY * 4))?
            .into_iter()
            .filter(|r| wanted.as_ref().is_none_or(|w| *w == r.conversation.id))
            .collect();
        let ids: Vec<String> = readings
            .iter()
            .chain(&known)
            .map(|r| r.conversation.id.clone())
            .collect();
        let mut lines: Vec<(&str, &Reading, Option<State>)> = Vec::new();
        for r in &readings {
            let before = known
                .iter()
                .find(|k| k.conversation.id == r.conversation.id);
            let kind = match before {
                _ if first => "snapshot",
                None => "new_session",
                Some(k) if k.state != r.state => "state_change",
                Some(_) => continue,
            };
            lines.push((kind, r, before.and_then(|k| k.state)));
        }
        for k in &known {
            if !readings
                .iter()
                .any(|r| r.conversation.id == k.conversation.id)
            {
                lines.push(("session_closed", k, k.state));
            }
        }
        for (kind, r, previous) in lines {
            events += u64::from(kind != "snapshot");
            let current = if kind == "session_closed" {
                None
            } else {
                r.state
            };
            let line = event(kind, r, (previous, current), &ids, &ls);
            print_event(numbering.number(&line)?, line, r, a.json);
        }
        known = readings;
        // Each waiting step decided once, on its own (several may wait at once).
        let waiting = known
            .iter()
            .filter(|_| policy.is_some())
            .flat_map(|r| r.waiting.iter().map(move |w| (r, w)));
        for (r, w) in waiting {
            let key = (r.conversation.id.clone(), w.step_index);
            if decided.contains(&key) {
                continue;
            }
            decided.push(key);
            events += 1;
            let policy = policy.as_ref().expect("a policy");
            let d = decide(policy, &ls, r, w, || shown_in(&r.conversation.id));
            let line = decision(r, w, &d, &ids, &ls);
            print_decision(numbering.number(&line)?, line, r, w, &d, a.json);
        }
        first = false;
        if a.count.is_some_and(|n| events >= n) {
            return Ok(exit::OK);
        }
        if a.until_idle && known.iter().all(|r| r.state == Some(State::Idle)) {
            return Ok(exit::OK);
        }
        let updated = stream.clone().unwrap_or_else(never);
        select! {
            recv(updated) -> got => match got {
                // Read once for a burst of updates.
                Ok(_) => while updated.try_recv().is_ok() {},
                Err(_) => {
                    output::message(&format!(
                        "the language server's stream ended: reading it every {} ms",
                        WATCH_EVERY.as_millis()
                    ));
                    stream = None;
                    poll = tick(WATCH_EVERY);
                }
            },
            recv(poll) -> _ => {}
            recv(timeout) -> _ => {
                output::message(&format!(
                    "watch timed out after {}",
                    crate::show::duration(a.wait.timeout)
                ));
                return Ok(exit::TIMEOUT);
            }
            recv(interrupt) -> _ => return Ok(exit::INTERRUPTED),
        }
    }
}

/// A watch line of a conversation, as `--json` prints it (without its seq).
fn event(
    kind: &str,
    r: &Reading,
    (previous, current): (Option<State>, Option<State>),
    ids: &[String],
    ls: &Ls,
) -> Value {
    let timestamp = crate::timestamp::rfc3339(std::time::SystemTime::now());
    let short = crate::sessions::short_id(&r.conversation.id, ids);
    json!({
        "type": kind, "session": session_object(r, &short, ls),
        "previous": previous, "current": current, "timestamp": timestamp,
        "steps": r.conversation.steps, "approval": r.first_waiting().map(|w| &w.approval),
        "step_index": r.first_waiting().map(|w| w.step_index), "question": r.question,
    })
}

fn print_event(seq: u64, mut line: Value, r: &Reading, json: bool) {
    line["seq"] = json!(seq);
    if json {
        return output::json(&line);
    }
    let name = |s: &Value| s.as_str().unwrap_or("unknown").to_string();
    let (kind, current) = (name(&line["type"]), &line["current"]);
    let mut each: Vec<String> = r.waiting.iter().map(step_shown).collect();
    each.extend(r.question.as_deref().map(crate::show::asked));
    let what = if each.is_empty() || current.is_null() {
        String::new()
    } else {
        format!(" ({})", each.join("; "))
    };
    let change = match kind.as_str() {
        "snapshot" => name(current),
        "session_closed" => "gone from the language server".to_string(),
        _ => format!("{kind}: {} -> {}", name(&line["previous"]), name(current)),
    };
    let timestamp = line["timestamp"].as_str().unwrap_or_default();
    output::line(&format!(
        "{}  {}  {}  {change}{what}",
        &timestamp[11..19],
        line["session"]["id"].as_str().unwrap_or_default(),
        r.workspace.as_deref().unwrap_or("-")
    ));
}

/// The chats a `dispatch --model M` keeps from prompts while the language server
/// says M's quota is exhausted, and when it reads the quota again.
pub(super) struct Paused {
    ls: Ls,
    model: String,
    pub sessions: Vec<crate::sessions::Session>,
    /// When to read the quota again: just after its reset time.
    pub next: Option<std::time::Instant>,
}

/// After a reset time, the quota is read this much later (the LS may refill late),
/// and read again no sooner than [`REREAD_AFTER`] if it still says exhausted.
const AFTER_RESET: std::time::Duration = std::time::Duration::from_secs(1);
const REREAD_AFTER: std::time::Duration = std::time::Duration::from_secs(10);

/// The instant just after `reset` (RFC 3339), no sooner than `earliest` from now; a
/// reset not said is read again a minute from now.
fn after_reset(reset: Option<&str>, earliest: std::time::Duration) -> std::time::Instant {
    let now = std::time::Instant::now();
    let wait = reset.and_then(crate::timestamp::parse_rfc3339).map_or(
        std::time::Duration::from_secs(60),
        |r| {
            r.duration_since(std::time::SystemTime::now())
                .unwrap_or_default()
                + AFTER_RESET
        },
    );
    now + wait.max(earliest)
}

/// `dispatch --model M`: of the chosen chats, those whose panel shows model M while
/// the language server says M's quota is exhausted take no prompt until its reset
/// time (said on stderr); then the quota is read again. `None`: none is kept back.
/// Every chosen chat on M is an error: nothing would be dispatched until then.
pub(super) fn with_quota_left(
    a: &Args,
    chosen: &[crate::sessions::Session],
    model: &str,
    registry: &crate::registry::Registry,
) -> Result<Option<Paused>, Error> {
    let deadline = Deadline::within(a.wait.timeout);
    let ls = one(a, deadline)?;
    let models = ls.quota(deadline)?;
    let Some(quota) = models.iter().find(|q| q.is(model)) else {
        let known: Vec<String> = models.iter().filter_map(|q| q.label.clone()).collect();
        return Err(usage(format!(
            "--model '{model}' is none of the language server's models: {}",
            known.join(", ")
        )));
    };
    if !quota.exhausted {
        return Ok(None);
    }
    let skipped: Vec<crate::sessions::Session> = chosen
        .iter()
        .filter(|s| {
            crate::panel::Panel::attach(&s.window, registry.profile())
                .ok()
                .and_then(|(_, snap)| snap.model)
                .is_some_and(|m| quota.is(&m))
        })
        .cloned()
        .collect();
    let until = quota.reset.as_deref().unwrap_or("an unknown time");
    if skipped.len() == chosen.len() {
        return Err(Error::Failed(format!(
            "every chosen chat runs {model}, whose quota is exhausted until {until}; nothing dispatched"
        )));
    }
    if skipped.is_empty() {
        return Ok(None);
    }
    output::message(&format!(
        "skipping {} (model {model}): its quota is exhausted until {until} (read again then)",
        ids(&skipped)
    ));
    Ok(Some(Paused {
        next: Some(after_reset(quota.reset.as_deref(), Duration::ZERO)),
        ls,
        model: model.to_string(),
        sessions: skipped,
    }))
}

fn ids(sessions: &[crate::sessions::Session]) -> String {
    sessions
        .iter()
        .map(|s| s.id.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// What a read of the quota again found of the model: `None`, not listed.
pub(super) type Reread = Result<Option<Quota>, Error>;

impl Paused {
    /// Reads the quota again, on a thread of its own (a language server slow to
    /// answer holds up nothing of the run): what it finds comes on the channel, for
    /// [`Paused::check`]. No other read is due until then.
    pub fn reread(&mut self) -> crossbeam_channel::Receiver<Reread> {
        self.next = None;
        let (tx, rx) = crossbeam_channel::bounded(1);
        let (ls, model) = (self.ls.clone(), self.model.clone());
        std::thread::spawn(move || {
            let quota = ls
                .quota(Deadline::within(Duration::from_secs(10)))
                .map(|models| models.into_iter().find(|q| q.is(&model)));
            let _ = tx.send(quota);
        });
        rx
    }

    /// The chats to take prompts again once the quota read again is not exhausted
    /// (said on stderr); else when to read it next. A quota not read, or a model the
    /// language server no longer lists, is not known to be back: the chats wait.
    pub fn check(&mut self, quota: Reread) -> Vec<crate::sessions::Session> {
        match quota {
            Ok(Some(q)) if !q.exhausted => {
                output::message(&format!(
                    "the quota of {} is back ({}): {} take prompts again",
                    self.model,
                    left(&q),
                    ids(&self.sessions)
                ));
                self.next = None;
                std::mem::take(&mut self.sessions)
            }
            Ok(Some(q)) => {
                let reset = q.reset;
                output::message(&format!(
                    "the quota of {} is still exhausted (until {}): {} wait",
                    self.model,
                    reset.as_deref().unwrap_or("an unknown time"),
                    ids(&self.sessions)
                ));
                self.next = Some(after_reset(reset.as_deref(), REREAD_AFTER));
                Vec::new()
            }
            quota => {
                let why = match quota {
                    Err(e) => e.to_string(),
                    _ => "the language server no longer lists it".into(),
                };
                output::message(&format!(
                    "the quota of {} is not read ({why}): {} wait",
                    self.model,
                    ids(&self.sessions)
                ));
                self.next = Some(std::time::Instant::now() + REREAD_AFTER);
                Vec::new()
            }
        }
    }
}

/// What a policy did with a conversation's waiting step.
struct Decided {
    rule: Option<usize>,
    action: String,
    choice: Option<String>,
    error: Option<String>,
}

/// Applies `policy` to a conversation's waiting step, answering it through the LS
/// (confirmed as `approve --conversation` confirms it). The LS answers once only: a
/// rule naming an `Always ...` choice leaves it to a person. `window` names the
/// window that shows the conversation, if any, asked only when a step would be
/// pressed: such a step is left to that window.
fn decide(
    policy: &crate::policy::Policy,
    ls: &Ls,
    r: &Reading,
    step: &Waiting,
    window: impl FnOnce() -> Option<String>,
) -> Decided {
    use crate::policy::Action;
    let (approval, index, gate) = (&step.approval, step.step_index, &step.gate);
    let (rule, action) = match policy.decide(approval) {
        Some((i, action)) => (Some(i), action.clone()),
        None => (None, Action::Ask),
    };
    let mut d = Decided {
        rule,
        action: action.name(),
        choice: None,
        error: None,
    };
    if let Action::Ask = action {
        return d;
    }
    if let Some(w) = window() {
        d.error = Some(format!(
            "shown in window {w}: left to that window (sessions watch --policy), so that it is pressed once"
        ));
        return d;
    }
    let press = match &action {
        Action::Ask => return d,
        Action::Deny => Press::Deny,
        Action::Approve(None) => Press::Allow,
        Action::Approve(Some(c)) => match gate.answer_for(Press::Named(c)) {
            Ok(Answer::Allow) => Press::Allow,
            _ => {
                d.error = Some(format!(
                    "the language server answers '{}' (once) only, not '{c}': left to a person",
                    gate.label(Answer::Allow)
                ));
                return d;
            }
        },
    };
    // Only the approval decided on: one that changed meanwhile is left alone.
    match ls.answer(
        &r.conversation.id,
        Some(&approval.id),
        press,
        Deadline::within(std::time::Duration::from_secs(10)),
    ) {
        Ok(done) if done.step_index == index => d.choice = Some(done.pressed),
        Ok(done) => d.error = Some(format!("answered step {}, not {index}", done.step_index)),
        Err(e) => d.error = Some(e.to_string()),
    }
    d
}

/// A policy's decision as a watch line (without its seq).
fn decision(r: &Reading, step: &Waiting, d: &Decided, ids: &[String], ls: &Ls) -> Value {
    let timestamp = crate::timestamp::rfc3339(std::time::SystemTime::now());
    let short = crate::sessions::short_id(&r.conversation.id, ids);
    let approval = &step.approval;
    let mut line = json!({
        "type": "approval_decided", "session": session_object(r, &short, ls),
        "rule": d.rule, "action": d.action, "approval": approval,
        "command": approval.command, "choice": d.choice, "timestamp": timestamp,
        "step_index": step.step_index,
    });
    if let Some(e) = &d.error {
        line["error"] = json!(e);
    }
    line
}

fn print_decision(seq: u64, mut line: Value, r: &Reading, step: &Waiting, d: &Decided, json: bool) {
    line["seq"] = json!(seq);
    if json {
        return output::json(&line);
    }
    let rule = d.rule.map_or("no rule".into(), |i| format!("rule {i}"));
    let outcome = match (&d.choice, &d.error) {
        (Some(c), _) => format!("pressed '{c}'"),
        (None, Some(e)) => format!("not pressed: {e}"),
        (None, None) => "left to a person".into(),
    };
    let timestamp = line["timestamp"].as_str().unwrap_or_default();
    output::line(&format!(
        "{}  {}  {}  approval_decided: {} ({rule}) on step {}: {outcome}",
        &timestamp[11..19],
        line["session"]["id"].as_str().unwrap_or_default(),
        r.workspace.as_deref().unwrap_or("-"),
        d.action,
        step.step_index
    ));
}
