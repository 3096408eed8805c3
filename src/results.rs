//! What the commands on one chat report that has no home of its own: one type per
//! result, printed by the CLI (with `--json`, as it is) and sent by `angrav serve`
//! alike, so a command asked of serve (`--server`) prints what it prints itself.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::Error;
use crate::journal::TurnOutcome;
use crate::panel::{Panel, Role, Snapshot};
use crate::sessions::Session;
use crate::turn::{Baseline, Waited};
use crate::waiter::{Outcome, Status};

/// `status`: the session and everything one probe of its panel showed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionStatus {
    pub session: Session,
    #[serde(flatten)]
    pub snapshot: Snapshot,
}

/// Whether a delivered prompt's turn was seen to start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Start {
    Started,
    /// No sign of its turn within the start time.
    Stalled,
}

/// `prompt` without `--wait`: a prompt delivered exactly once (one not delivered is
/// an error).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Prompted {
    pub session: Session,
    pub delivered: bool,
    pub started: bool,
    pub status: Start,
}

impl Prompted {
    pub fn new(session: &Session, started: bool) -> Prompted {
        Prompted {
            session: session.clone(),
            delivered: true,
            started,
            status: if started {
                Start::Started
            } else {
                Start::Stalled
            },
        }
    }
}

/// `wait` and `prompt --wait`: a row of `sessions wait`, and whether the wait timed
/// out; the same object however the wait ended.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WaitResult {
    pub timed_out: bool,
    #[serde(flatten)]
    pub outcome: Outcome,
}

impl WaitResult {
    /// How a wait on one chat ended, begun at `started`; when the agent stopped, its
    /// answer, but after a prompt (`turn`: its baseline) only one that came after
    /// it, never an earlier turn's. `stalled` says why a stalled wait was.
    pub fn of(
        panel: &mut Panel,
        session: &Session,
        waited: Waited,
        turn: Option<Baseline>,
        started: Instant,
        stalled: impl FnOnce() -> String,
    ) -> Result<WaitResult, Error> {
        let (end, timed_out, reason) = match waited {
            Waited::Stopped(end) => (end, false, None),
            Waited::TimedOut(end) => (end, true, None),
            Waited::Stalled(end) => (end, false, Some(stalled())),
        };
        let mut result = WaitResult::pending(session, &end, started);
        result.timed_out = timed_out;
        let outcome = &mut result.outcome;
        if timed_out || reason.is_some() {
            outcome.reason = reason;
            return Ok(result);
        }
        outcome.status = Status::Done;
        let answered = turn.is_none_or(|t| t.answered(&end));
        outcome.answer = answered
            .then(|| panel.history())
            .transpose()?
            .and_then(|h| h.into_iter().last())
            .filter(|m| m.role == Role::Agent);
        Ok(result)
    }

    /// A wait on one chat that ended before the agent stopped (^C): the chat still
    /// pending, in the state `seen`.
    pub fn pending(session: &Session, seen: &Snapshot, started: Instant) -> WaitResult {
        let mut outcome = Outcome::pending(session);
        outcome.duration_ms = started.elapsed().as_millis() as u64;
        outcome.saw(seen);
        WaitResult {
            timed_out: false,
            outcome,
        }
    }

    /// How the journal's `turn_finished` names this end of a prompt's turn.
    pub fn turn_outcome(&self) -> TurnOutcome {
        match self.outcome.state {
            _ if self.timed_out => TurnOutcome::Timeout,
            _ if self.outcome.reason.is_some() => TurnOutcome::Stalled,
            state => TurnOutcome::stopped(state),
        }
    }

    /// The answer's text (empty: none).
    pub fn answer_text(&self) -> &str {
        self.outcome
            .answer
            .as_ref()
            .map_or("", |m| m.content.as_str())
    }
}

/// `new`: whether a new conversation was started (false: it was already empty).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewConversation {
    pub session: Session,
    pub new_conversation: bool,
}
