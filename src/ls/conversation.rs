//! The commands on one conversation of the LS: read it, answer its waiting step,
//! send it a prompt, wait for it. Each acts only on what the LS showed, and is
//! confirmed by the LS showing the change.

use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::json;

use super::model::{Conversation, Gate, Quota, RunStatus, Step, StepStatus};
use super::{Ls, LsError};
use crate::Error;
use crate::panel::{Approval, Deadline, Message, Press, Question, State};

/// How often a conversation is read again while angrav waits for a change (the LS
/// offers a stream, but not on every build: polling works on all).
pub const POLL: Duration = Duration::from_millis(250);

/// How long a press or a prompt may take to show in the LS.
const CONFIRM_WITHIN: Duration = Duration::from_secs(5);

/// The LS serialises at most this many steps per call (JSON stops near 598).
const STEPS_PER_CALL: u64 = 500;

/// A conversation with its steps read: its state and what it waits for.
#[derive(Debug, Clone, Serialize)]
pub struct Reading {
    #[serde(flatten)]
    pub conversation: Conversation,
    pub workspace: Option<String>,
    /// From the run status and the waiting steps; `None` when the LS says neither.
    pub state: Option<State>,
    /// The run status as the LS names it.
    pub run_status: Option<String>,
    /// Every step that waits for an approval, in step order: several may wait at once.
    pub waiting: Vec<Waiting>,
    /// The question a step asks the user (`awaiting_input`), as the LS gives it.
    pub question: Option<Box<Question>>,
}

/// A step that waits for the user: its index, its approval (with its id), and the
/// gate that says how the LS takes an answer.
#[derive(Debug, Clone, Serialize)]
pub struct Waiting {
    pub step_index: u64,
    pub approval: Approval,
    #[serde(skip)]
    pub gate: Gate,
}

impl Reading {
    /// A conversation as the summary alone shows it (steps not read).
    pub fn summary(conversation: Conversation) -> Reading {
        Reading {
            workspace: conversation.workspace(),
            state: conversation.state(),
            run_status: conversation.run_status(),
            conversation,
            waiting: Vec::new(),
            question: None,
        }
    }

    /// With its steps, whatever the run status says: a step waiting for an approval
    /// angrav can answer makes it `awaiting_approval`; any other wait for the user (a
    /// question, a step of a kind angrav does not know, or the run status alone) makes
    /// it `awaiting_input`, which nothing angrav does answers.
    fn with_steps(conversation: Conversation, steps: &[Step]) -> Reading {
        let mut r = Reading::summary(conversation);
        r.waiting = steps
            .iter()
            .filter_map(|s| {
                let gate = s.waiting_gate()?.clone();
                Some(Waiting {
                    step_index: s.index,
                    approval: gate.approval(&card(&r.conversation.id, s.index)),
                    gate,
                })
            })
            .collect();
        // A question step may still say it runs while the conversation waits for its
        // answer: then the last step's question is the one, unless that step is over
        // (answered: the conversation waits for something else).
        let for_user = r.conversation.status == Some(RunStatus::WaitingForUser);
        let over = |s: &Step| matches!(s.status, StepStatus::Done | StepStatus::Error);
        r.question = steps
            .iter()
            .find(|s| s.waits() && s.question.is_some())
            .or_else(|| {
                steps
                    .last()
                    .filter(|s| for_user && !over(s) && s.question.is_some())
            })
            .and_then(|s| s.question.clone())
            .map(Box::new);
        if !r.waiting.is_empty() {
            r.state = Some(State::AwaitingApproval);
        } else if for_user || r.question.is_some() || steps.iter().any(Step::waits) {
            r.state = Some(State::AwaitingInput);
        }
        r
    }

    /// Every waiting step's approval, in step order.
    pub fn approvals(&self) -> Vec<Approval> {
        self.waiting.iter().map(|w| w.approval.clone()).collect()
    }

    /// The first waiting step (what a line with room for one names).
    pub fn first_waiting(&self) -> Option<&Waiting> {
        self.waiting.first()
    }

    /// Stopped, as a wait understands it: idle, waiting for the user (an approval,
    /// an answer), or in error.
    pub fn stopped(&self) -> bool {
        matches!(
            self.state,
            Some(State::Idle | State::AwaitingApproval | State::AwaitingInput | State::Error)
        )
    }

    /// Its state and what it waits for, on a line (`awaiting_input (question: …)`).
    pub fn described(&self) -> String {
        crate::show::state(
            self.state
                .map_or("in a state the LS does not say", State::name),
            None,
            None,
            &self.approvals(),
            self.question.as_deref(),
        )
    }
}

impl Ls {
    /// Every conversation, the latest change first.
    pub fn conversations(&self, deadline: Deadline) -> Result<Vec<Conversation>, Error> {
        let reply = self.call("GetAllCascadeTrajectories", &json!({}), deadline)?;
        Ok(Conversation::all(&reply))
    }

    /// Every conversation, those that wait for the user read with their steps (to
    /// say what for).
    pub fn readings(&self, deadline: Deadline) -> Result<Vec<Reading>, Error> {
        self.conversations(deadline)?
            .into_iter()
            .map(|c| {
                if c.status == Some(RunStatus::WaitingForUser) {
                    let steps = self.steps(&c, deadline)?;
                    Ok(Reading::with_steps(c, &steps))
                } else {
                    Ok(Reading::summary(c))
                }
            })
            .collect()
    }

    /// The conversation `query` names: a unique prefix of its id (any case), else
    /// its workspace's name when one conversation has it.
    pub fn find(&self, query: &str, deadline: Deadline) -> Result<Conversation, Error> {
        let all = self.conversations(deadline)?;
        let q = query.trim().to_lowercase();
        let by_id: Vec<&Conversation> = all
            .iter()
            .filter(|c| c.id.to_lowercase().starts_with(&q))
            .collect();
        let by_workspace: Vec<&Conversation> = all
            .iter()
            .filter(|c| c.workspace().is_some_and(|w| w.to_lowercase() == q))
            .collect();
        let found = if by_id.is_empty() {
            by_workspace
        } else {
            by_id
        };
        let named = |list: &[&Conversation]| {
            list.iter()
                .map(|c| format!("{} ({})", c.id, c.workspace().unwrap_or("-".into())))
                .collect()
        };
        match found.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(Error::SessionNotFound {
                query: Some(format!("conversation {query}")),
                known: named(&all.iter().collect::<Vec<_>>()),
            }),
            several => Err(Error::SessionAmbiguous {
                query: Some(format!("conversation {query}")),
                matches: named(several),
            }),
        }
    }

    /// Every step of a conversation, in calls of at most [`STEPS_PER_CALL`].
    pub fn steps(&self, c: &Conversation, deadline: Deadline) -> Result<Vec<Step>, Error> {
        let mut steps = Vec::new();
        let mut start = 0;
        loop {
            let end = start + STEPS_PER_CALL;
            let body = json!({"cascadeId": c.id, "startIndex": start, "endIndex": end});
            let reply = self.call("GetCascadeTrajectorySteps", &body, deadline)?;
            let got = Step::all(&reply, start);
            let n = got.len() as u64;
            steps.extend(got);
            // A short page is the last (the summary's count may be behind).
            if n < STEPS_PER_CALL || start + n >= c.steps.max(end) {
                return Ok(steps);
            }
            start += n;
        }
    }

    /// The conversation `id` now, with its steps.
    pub fn read(&self, id: &str, deadline: Deadline) -> Result<(Reading, Vec<Step>), Error> {
        let c = self
            .conversations(deadline)?
            .into_iter()
            .find(|c| c.id == id)
            .ok_or_else(|| LsError::NotFound(format!("conversation {id} is gone from the LS")))?;
        let steps = self.steps(&c, deadline)?;
        Ok((Reading::with_steps(c, &steps), steps))
    }

    /// `history`: its user steps and the agent's answers, oldest first.
    pub fn history(&self, id: &str, deadline: Deadline) -> Result<Vec<Message>, Error> {
        let (_, steps) = self.read(id, deadline)?;
        Ok(steps.iter().filter_map(Step::message).collect())
    }

    /// The approval of the step of conversation `id` that waits now: the one with
    /// the id `want`, else `approval_changed` naming what waits; without an id the
    /// only one waiting (refused when none or several wait).
    pub fn waiting_approval(
        &self,
        id: &str,
        want: Option<&str>,
        deadline: Deadline,
    ) -> Result<Approval, Error> {
        let (reading, _) = self.read(id, deadline)?;
        Ok(waiting(&reading, id, want)?.approval.clone())
    }

    /// Answers the step whose approval has the id `approval`, if one still waits
    /// (else nothing is sent: `approval_changed`, naming what waits), or without an
    /// id the one step that waits; and returns once the LS shows that step no
    /// longer waiting. Nothing is sent when no step, or more than one, waits. The
    /// reading that confirmed it comes back with the answer.
    pub fn answer(
        &self,
        id: &str,
        approval: Option<&str>,
        press: Press,
        deadline: Deadline,
    ) -> Result<Answered, Error> {
        let (reading, _) = self.read(id, deadline)?;
        let step = waiting(&reading, id, approval)?;
        let (index, gate) = (step.step_index, &step.gate);
        let answer = gate.answer_for(press).map_err(Error::Failed)?;
        let mut interaction = gate.interaction(answer);
        interaction["stepIndex"] = json!(index);
        if let Some(t) = &reading.conversation.trajectory_id {
            interaction["trajectoryId"] = json!(t);
        }
        let body = json!({"cascadeId": id, "interaction": interaction});
        self.call("HandleCascadeUserInteraction", &body, deadline)?;
        let confirm = deadline.earliest(Deadline::within(CONFIRM_WITHIN));
        loop {
            let (now, steps) = self.read(id, confirm)?;
            let still = steps
                .get(index as usize)
                .is_some_and(|s| s.waiting_gate().is_some());
            if !still {
                return Ok(Answered {
                    step_index: index,
                    pressed: gate.label(answer).to_string(),
                    approval: step.approval.clone(),
                    now,
                });
            }
            if confirm.passed() {
                return Err(Error::Failed(format!(
                    "answered step {index} of conversation {id}, but the LS still shows it waiting after {} s",
                    CONFIRM_WITHIN.as_secs()
                )));
            }
            std::thread::sleep(POLL.min(confirm.left()));
        }
    }

    /// Sends a prompt, delivered only when the LS shows a new user step with its
    /// text. A conversation at work is refused before anything is sent.
    pub fn send(&self, id: &str, text: &str, deadline: Deadline) -> Result<Delivered, Error> {
        let (before, steps) = self.read(id, deadline)?;
        if before.state != Some(State::Idle) {
            return Err(Error::NotAccepted(format!(
                "conversation {id} is {}, not idle",
                before
                    .state
                    .map_or("in a state the LS does not say", State::name)
            )));
        }
        let users = steps.iter().filter(|s| s.is_user()).count();
        let body = json!({"cascadeId": id, "items": [{"text": text}], "media": []});
        self.call("SendUserCascadeMessage", &body, deadline)?;
        // Sent: from here on, what became of it must be seen, never assumed.
        let confirm = deadline.earliest(Deadline::within(CONFIRM_WITHIN));
        loop {
            match self.read(id, confirm) {
                Ok((now, steps)) => {
                    let new: Vec<&Step> =
                        steps.iter().filter(|s| s.is_user()).skip(users).collect();
                    if let [step] = new.as_slice()
                        && crate::turn::same_text(step.text.as_deref().unwrap_or_default(), text)
                    {
                        return Ok(Delivered {
                            conversation: id.to_string(),
                            delivered: true,
                            step_index: step.index,
                            state: now.state,
                        });
                    }
                    if !new.is_empty() {
                        return Err(Error::Unconfirmed(format!(
                            "the LS shows {} new user step(s), not this text alone",
                            new.len()
                        )));
                    }
                }
                Err(e) if confirm.passed() => {
                    return Err(Error::Unconfirmed(format!("the LS did not answer: {e}")));
                }
                Err(_) => {}
            }
            if confirm.passed() {
                return Err(Error::Unconfirmed(format!(
                    "no new user step in the LS within {} s",
                    CONFIRM_WITHIN.as_secs()
                )));
            }
            std::thread::sleep(POLL.min(confirm.left()));
        }
    }

    /// Waits until the conversation has stopped (idle for `settle`, awaiting
    /// approval, in error), reading it every [`POLL`]. `Ok(None)`: the deadline came
    /// first.
    pub fn wait(
        &self,
        id: &str,
        settle: Duration,
        deadline: Deadline,
    ) -> Result<Option<Reading>, Error> {
        let mut idle_since: Option<Instant> = None;
        loop {
            let reading = match self.read(id, deadline) {
                Ok((r, _)) => r,
                Err(e) if deadline.passed() && matches!(e, Error::Timeout { .. }) => {
                    return Ok(None);
                }
                Err(e) => return Err(e),
            };
            match reading.state {
                Some(State::Idle) => {
                    let since = *idle_since.get_or_insert_with(Instant::now);
                    if since.elapsed() >= settle {
                        return Ok(Some(reading));
                    }
                }
                _ if reading.stopped() => return Ok(Some(reading)),
                _ => idle_since = None,
            }
            if deadline.passed() {
                return Ok(None);
            }
            std::thread::sleep(POLL.min(deadline.left()));
        }
    }

    /// Stops a conversation at work (`CancelCascadeInvocation`), confirmed by the LS
    /// showing it no longer running within 5 s: that reading comes back. One not at
    /// work is left alone.
    pub fn cancel(&self, id: &str, deadline: Deadline) -> Result<Reading, Error> {
        let (before, _) = self.read(id, deadline)?;
        if before.state != Some(State::Thinking) {
            return Err(Error::Failed(format!(
                "nothing cancelled: conversation {id} is {}, not working",
                before
                    .state
                    .map_or("in a state the LS does not say", State::name)
            )));
        }
        self.call(
            "CancelCascadeInvocation",
            &json!({"cascadeId": id}),
            deadline,
        )?;
        let confirm = deadline.earliest(Deadline::within(CONFIRM_WITHIN));
        loop {
            let (now, _) = self.read(id, confirm)?;
            if now.state != Some(State::Thinking) {
                return Ok(now);
            }
            if confirm.passed() {
                return Err(Error::Failed(format!(
                    "cancelled conversation {id}, but the LS still shows it working after {} s",
                    CONFIRM_WITHIN.as_secs()
                )));
            }
            std::thread::sleep(POLL.min(confirm.left()));
        }
    }

    /// Every model's quota.
    pub fn quota(&self, deadline: Deadline) -> Result<Vec<Quota>, Error> {
        let reply = self.call("GetUserStatus", &json!({}), deadline)?;
        Ok(Quota::all(&reply))
    }
}

/// The waiting step whose approval has the id `want`, else `approval_changed` naming
/// what waits.
/// The step of the conversation `id` that waits with the approval `want`, else
/// `approval_changed` naming what waits; without `want`, the only one that waits.
fn waiting<'a>(reading: &'a Reading, id: &str, want: Option<&str>) -> Result<&'a Waiting, Error> {
    match (want, reading.waiting.as_slice()) {
        (Some(want), _) => named(reading, want),
        (None, [one]) => Ok(one),
        (None, []) => Err(Error::Failed(format!(
            "nothing answered: conversation {id} is {}, not awaiting approval",
            reading.described()
        ))),
        (None, several) => Err(Error::Failed(format!(
            "nothing answered: {} steps of conversation {id} wait at once: name one with --approval ID ({})",
            several.len(),
            crate::approve::listed(&reading.approvals())
        ))),
    }
}

fn named<'a>(reading: &'a Reading, want: &str) -> Result<&'a Waiting, Error> {
    reading
        .waiting
        .iter()
        .find(|w| w.approval.id == want)
        .ok_or_else(|| {
            crate::approve::changed(
                &format!("approval {want} no longer shows; nothing pressed"),
                &reading.approvals(),
            )
        })
}

/// What tells a step's approval from another alike: its conversation and index.
fn card(conversation: &str, step: u64) -> String {
    format!("{conversation}#{step}")
}

/// An approval answered through the LS.
#[derive(Debug, Clone)]
pub struct Answered {
    pub step_index: u64,
    /// The choice it stands for (`Run`, `Deny`, ...).
    pub pressed: String,
    pub approval: Approval,
    /// The conversation as the LS showed it once the step no longer waited.
    pub now: Reading,
}

/// A prompt delivered through the LS.
#[derive(Debug, Clone, Serialize)]
pub struct Delivered {
    pub conversation: String,
    pub delivered: bool,
    /// The new user step.
    pub step_index: u64,
    pub state: Option<State>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    /// A conversation waiting for the user whose last step asks a question, with
    /// `status`.
    fn asked(status: &str) -> Reading {
        let summaries = json!({"trajectorySummaries": {"c": {
            "status": "CASCADE_RUN_STATUS_WAITING_FOR_USER", "stepCount": 2}}});
        let conversation = Conversation::all(&summaries).remove(0);
        let steps: Value = json!({"steps": [
            {"type": "CORTEX_STEP_TYPE_USER_INPUT", "status": "CORTEX_STEP_STATUS_DONE",
             "userInput": {"items": [{"text": "set it up"}]}},
            {"type": "CORTEX_STEP_TYPE_ASK_QUESTION", "status": status,
             "askQuestion": {"questions": [{"question": "Which database?",
                "options": [{"id": "1", "text": "Postgres"}, {"id": "2", "text": "SQLite"}]}]}}
        ]});
        Reading::with_steps(conversation, &Step::all(&steps, 0))
    }

    #[test]
    fn the_question_is_that_of_a_step_still_asking() {
        for status in ["CORTEX_STEP_STATUS_WAITING", "CORTEX_STEP_STATUS_RUNNING"] {
            let r = asked(status);
            let q = r.question.expect(status);
            assert_eq!(q.text.as_deref(), Some("Which database?"));
            assert_eq!(r.state, Some(State::AwaitingInput));
        }
        // Answered: the conversation waits, but not for that question.
        for status in ["CORTEX_STEP_STATUS_DONE", "CORTEX_STEP_STATUS_ERROR"] {
            let r = asked(status);
            assert_eq!(r.question, None, "{status}");
            assert_eq!(r.state, Some(State::AwaitingInput));
        }
    }
}
