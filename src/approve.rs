//! Answering an approval, and stopping a working agent: one control pressed, then the
//! page watched until it shows the press took effect.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::Error;
use crate::panel::{Approval, Deadline, Panel, Press, Pressing, Snapshot, State};
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
    pub approvals: Vec<String>,
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

/// Presses the choice `choice` names (see [`Press::Named`]), or with none the
/// narrowest allowing one, and confirms it took effect.
pub fn approve(panel: &mut Panel, choice: Option<&str>) -> Result<Answered, Error> {
    answer(panel, choice.map_or(Press::Allow, Press::Named))
}

/// Presses `Deny`, `Reject` or `Reject all`, whichever the approval offers, and
/// confirms it took effect.
pub fn deny(panel: &mut Panel) -> Result<Answered, Error> {
    answer(panel, Press::Deny)
}

/// Presses `press` on the one approval showing; then, within [`CONFIRM_WITHIN`], the
/// approval must be gone (another may follow) or the state must have left
/// `awaiting_approval`. Nothing is pressed in any other state.
pub fn answer(panel: &mut Panel, press: Press) -> Result<Answered, Error> {
    let (label, approval, key) = match panel.press_approval(press)? {
        Pressing::Pressed {
            label,
            approval,
            key,
        } => (label.unwrap_or_default(), approval, key),
        Pressing::Refused { state, reason, .. } if state != State::AwaitingApproval => {
            return Err(Error::Failed(format!("nothing pressed: {reason}")));
        }
        Pressing::Refused {
            approval, reason, ..
        } => {
            let offered = approval
                .map(|a| format!(" ({})", shown(&a)))
                .unwrap_or_default();
            return Err(Error::Failed(format!("nothing pressed: {reason}{offered}")));
        }
    };
    // Gone as the panel shows it: a panel not read (reloading, not answering) is no
    // evidence.
    let gone = |s: &Snapshot| {
        !matches!(s.state, State::NoPanel | State::Unresponsive)
            && (s.state != State::AwaitingApproval || s.approval.as_ref() != Some(&approval))
    };
    let snapshot = confirm(panel, &key, gone).map_err(|seen| {
        Error::Failed(format!(
            "pressed '{label}', but the approval still shows after {} s ({})",
            CONFIRM_WITHIN.as_secs(),
            seen.approval
                .as_ref()
                .map_or_else(|| seen.state.name().to_string(), shown)
        ))
    })?;
    Ok(Answered {
        pressed: label,
        approval,
        snapshot,
    })
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

/// `command: cargo test (Run, Reject)`.
pub fn shown(a: &Approval) -> String {
    let labels: Vec<&str> = a.choices.iter().map(|c| c.label.as_str()).collect();
    let command = a
        .command
        .as_ref()
        .map(|c| format!(": {c}"))
        .unwrap_or_default();
    format!("{}{command} ({})", a.kind.name(), labels.join(", "))
}
