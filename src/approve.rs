//! Answering an approval, stopping a working agent, starting a new conversation: one
//! control pressed, then the page watched until it shows the press took effect.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::Error;
use crate::panel::{
    Answered as Noted, Approval, Deadline, Panel, Press, Pressing, Renewing, Snapshot, State,
};
use crate::sessions::Session;

/// How long the page may take to show that a press took effect.
pub const CONFIRM_WITHIN: Duration = Duration::from_secs(5);

/// A press that took effect: the choice pressed, on which approval, and the state
/// the page then showed.
#[derive(Debug, Clone)]
pub struct Answered {
    pub pressed: String,
    pub approval: Approval,
    pub snapshot: Snapshot,
}

/// What `approve`, `deny` and `cancel` report (`--json`, and serve's result): the
/// control pressed, the approval it answered (none for cancel), and the agent after
/// the press: its state, error and the choices offered.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pressed {
    pub session: Session,
    pub pressed: String,
    pub approval: Option<Approval>,
    pub state: State,
    pub error: Option<String>,
    pub approvals: Vec<Approval>,
    /// When a quota error says work resumes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota_resume: Option<String>,
}

impl Pressed {
    pub fn of(session: &Session, done: Answered) -> Pressed {
        Pressed::after(session, done.pressed, Some(done.approval), &done.snapshot)
    }

    pub fn cancelled(session: &Session, end: &Snapshot) -> Pressed {
        Pressed::after(session, "cancel".into(), None, end)
    }

    fn after(
        session: &Session,
        pressed: String,
        approval: Option<Approval>,
        now: &Snapshot,
    ) -> Pressed {
        Pressed {
            session: session.clone(),
            pressed,
            approval,
            state: now.state,
            error: now.error.clone(),
            approvals: now.approvals.clone(),
            quota_resume: now.quota_resume.clone(),
        }
    }
}

/// Who has angrav press: noted in the page with the press, and named by the
/// `approval_resolved` event that follows.
pub fn by_client(client: &str) -> Value {
    json!({ "client": client })
}

/// Presses the choice `choice` names (see [`Press::Named`]), or with none the
/// narrowest allowing one, of the approval `id` names (else of the only one showing),
/// and confirms it took effect.
pub fn approve(
    panel: &mut Panel,
    id: Option<&str>,
    choice: Option<&str>,
    by: &Value,
) -> Result<Answered, Error> {
    answer(panel, id, choice.map_or(Press::Allow, Press::Named), by)
}

/// Presses `Deny`, `Reject` or `Reject all`, whichever the approval offers, and
/// confirms it took effect.
pub fn deny(panel: &mut Panel, id: Option<&str>, by: &Value) -> Result<Answered, Error> {
    answer(panel, id, Press::Deny, by)
}

/// Presses `press` on the approval `id` names, if it still shows (else on the only
/// one showing: nothing is pressed when several show), checked and pressed in one
/// page call; then, within [`CONFIRM_WITHIN`], that approval must be gone (another
/// may follow). Nothing is pressed in any other state.
pub fn answer(
    panel: &mut Panel,
    id: Option<&str>,
    press: Press,
    by: &Value,
) -> Result<Answered, Error> {
    let (label, approval, key) = match panel.press_approval(id, press, by)? {
        Pressing::Pressed {
            label,
            approval,
            key,
        } => (label, approval, key),
        Pressing::Opened { approval: opened } => return Err(opened_instead(id, &opened)),
        Pressing::Refused {
            reason,
            approvals,
            changed: true,
            ..
        } => return Err(changed(&reason, &approvals)),
        Pressing::Refused { reason, .. } => {
            return Err(Error::Failed(format!("nothing pressed: {reason}")));
        }
    };
    // Gone as the panel shows it: a panel not read (reloading, not answering) is no
    // evidence.
    let gone = |s: &Snapshot| {
        !matches!(
            s.state,
            State::NoPanel | State::Unresponsive | State::Unreadable
        ) && !s.approvals.iter().any(|a| a.id == approval.id)
    };
    let snapshot = confirm(panel, &key, gone).map_err(|seen| {
        Error::Failed(format!(
            "pressed '{label}', but the approval still shows after {} s ({})",
            CONFIRM_WITHIN.as_secs(),
            if seen.approvals.is_empty() {
                seen.state.name().to_string()
            } else {
                listed(&seen.approvals)
            }
        ))
    })?;
    Ok(Answered {
        pressed: label,
        approval,
        snapshot,
    })
}

/// Nothing pressed because the approval named no longer shows (`approval_changed`),
/// saying what shows now: the page's reason, or the language server's.
pub fn changed(reason: &str, showing: &[Approval]) -> Error {
    Error::ApprovalChanged(format!("{reason}; showing now: {}", listed(showing)))
}

/// Nothing pressed because the approval addressed (`id`, else the only one showing)
/// was a collapsed step: it was expanded, and `opened` is what it asks, unseen by
/// the caller until now (`approval_changed`, naming it to be answered by its id).
fn opened_instead(id: Option<&str>, opened: &Approval) -> Error {
    let step = id.map(|id| format!(" {id}")).unwrap_or_default();
    Error::ApprovalChanged(format!(
        "the collapsed step{step} opened as {}; nothing pressed: answer it with --approval {}",
        shown(opened),
        opened.id
    ))
}

/// Every approval named, `none` without one.
pub fn listed(approvals: &[Approval]) -> String {
    if approvals.is_empty() {
        return "none".into();
    }
    approvals.iter().map(shown).collect::<Vec<_>>().join("; ")
}

/// Presses the busy marker (the cancel button) of a working agent, and confirms the
/// agent went idle. Nothing is pressed when it is not working.
pub fn cancel(panel: &mut Panel) -> Result<Snapshot, Error> {
    let key = panel
        .press_cancel()?
        .map_err(|(_, reason)| Error::Failed(format!("nothing pressed: {reason}")))?;
    confirm(panel, &key, |s| s.state == State::Idle).map_err(|seen| {
        Error::Failed(format!(
            "pressed cancel, but the agent is still {} after {} s",
            seen.state.name(),
            CONFIRM_WITHIN.as_secs()
        ))
    })
}

/// A new conversation starts only on an idle agent, or one stopped on an error, that
/// shows no busy marker: never on one at work or waiting, nor on one not read.
fn startable(s: &Snapshot) -> bool {
    matches!(s.state, State::Idle | State::Error) && !s.busy
}

fn not_startable(s: &Snapshot) -> Error {
    let state = s.state.name();
    Error::Failed(if s.state.in_turn() || s.busy {
        format!(
            "nothing pressed: the agent is busy ({state}); wait for it with 'angrav wait' before starting a new conversation"
        )
    } else {
        let why = s
            .error
            .as_deref()
            .map_or(String::new(), |e| format!(": {e}"));
        format!("nothing pressed: the agent is {state}{why}")
    })
}

/// Presses the new-conversation button and confirms the chat then shows no message;
/// a busy agent (`now`) is left alone. `Ok(false)`: it was already empty, nothing
/// pressed.
pub fn new_conversation(panel: &mut Panel, now: &Snapshot) -> Result<bool, Error> {
    if !startable(now) {
        return Err(not_startable(now));
    }
    // The page checks again as it clicks: the agent may have started since `now`.
    let key = match panel.press_new_conversation()? {
        Renewing::Pressed { key } => key,
        Renewing::Empty => return Ok(false),
        Renewing::Refused(seen) => return Err(not_startable(&seen)),
    };
    let empty = |s: &Snapshot| {
        !matches!(
            s.state,
            State::NoPanel | State::Unresponsive | State::Unreadable
        ) && s.user_messages == 0
            && s.agent_messages == 0
    };
    confirm(panel, &key, empty).map_err(|seen| {
        Error::Failed(format!(
            "pressed new conversation, but the chat still shows {} user and {} agent messages after {} s ({})",
            seen.user_messages,
            seen.agent_messages,
            CONFIRM_WITHIN.as_secs(),
            seen.state.name()
        ))
    })?;
    Ok(true)
}

/// Watches the page (its change notifications, no polling) until `done` holds, within
/// [`CONFIRM_WITHIN`]; `Err`: the state last seen.
fn confirm(
    panel: &mut Panel,
    key: &str,
    done: impl Fn(&Snapshot) -> bool,
) -> Result<Snapshot, Box<Snapshot>> {
    let by = Deadline::within(CONFIRM_WITHIN);
    let mut key = key.to_string();
    loop {
        let snap = match panel.watch(&key, by.left()) {
            Ok(s) => s,
            Err(e) => return Err(Box::new(Snapshot::unresponsive(None, e.to_string()))),
        };
        if done(&snap) {
            return Ok(snap);
        }
        if by.passed() {
            return Err(Box::new(snap));
        }
        key = snap.key;
    }
}

/// How a chat's approvals changed from one reading to the next.
#[derive(Debug, Default)]
pub struct Changes {
    /// An approval shows that did not before (a new card, or one whose kind,
    /// command or choices changed).
    pub changed: bool,
    /// Approvals that went away, each with the press angrav noted for it, if any
    /// (none: answered elsewhere, by a person in the IDE or another tool).
    pub resolved: Vec<(Approval, Option<Noted>)>,
}

/// Compares two readings of a chat. A panel not read (no panel, not answering,
/// unreadable) says nothing about its approvals. An approval gone while another of
/// the same kind and place appeared changed; it was not answered.
pub fn changes(before: Option<&Snapshot>, now: &Snapshot) -> Changes {
    let read = |s: &Snapshot| {
        !matches!(
            s.state,
            State::NoPanel | State::Unresponsive | State::Unreadable
        )
    };
    let Some(before) = before.filter(|b| read(b) && read(now)) else {
        return Changes::default();
    };
    let shows = |list: &[Approval], a: &Approval| list.iter().any(|x| x.id == a.id);
    let mut new: Vec<&Approval> = now
        .approvals
        .iter()
        .filter(|a| !shows(&before.approvals, a))
        .collect();
    let changed = !new.is_empty();
    let mut resolved = Vec::new();
    for gone in before
        .approvals
        .iter()
        .filter(|a| !shows(&now.approvals, a))
    {
        if let Some(i) = new
            .iter()
            .position(|n| n.kind == gone.kind && n.place == gone.place)
        {
            new.remove(i);
            continue;
        }
        // By the card's mark: another profile's library gave the card another id.
        let noted = now
            .answered
            .iter()
            .rev()
            .find(|p| gone.mark.is_some() && p.mark == gone.mark);
        resolved.push((gone.clone(), noted.cloned()));
    }
    Changes { changed, resolved }
}

/// `3fa2c1d0 command: cargo test (Run, Reject)`.
pub fn shown(a: &Approval) -> String {
    let labels: Vec<&str> = a.choices.iter().map(|c| c.label.as_str()).collect();
    let command = a
        .command
        .as_ref()
        .map(|c| format!(": {c}"))
        .unwrap_or_default();
    format!(
        "{} {}{command} ({})",
        a.id,
        a.kind.name(),
        labels.join(", ")
    )
}
