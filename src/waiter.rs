//! Waiting on many sessions at once: a `select!` over their monitors' updates and
//! the deadlines (the overall timeout, and each session's settle time).

use std::collections::HashMap;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::{Receiver, never, select, tick};
use serde::{Deserialize, Serialize};

use crate::journal::{self, Ended, Journal, TurnOutcome, TurnRecord};
use crate::monitor::{Monitors, Update};
use crate::panel::{Approval, Deadline, Message, Panel, Question, Role, Snapshot, State};
use crate::policy::Autopilot;
use crate::profile::Profile;
use crate::sessions::Session;
use crate::turn::{Tracker, Verdict};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// Until the first session stops.
    Any,
    /// Until every session has stopped or closed.
    All,
}

#[derive(Debug, Clone, Copy)]
pub struct WaitSpec {
    pub strategy: Strategy,
    pub timeout: Duration,
    pub settle: Duration,
    /// Collect each finished session's last answer.
    pub extract: bool,
    /// A delivered prompt whose turn shows no start within this is stalled.
    pub start_within: Duration,
    /// A session whose page shows no change at all for this long, before it stopped,
    /// is stalled.
    pub stall_after: Option<Duration>,
}

/// Where a session ended up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The agent stopped: `state` says idle, awaiting approval, or error.
    Done,
    /// Still going when the wait ended, or not answering (`state` is `unresponsive`).
    Pending,
    /// The window closed during the wait.
    Closed,
    /// The session could not be awaited (no panel, prompt refused, ...): see `reason`.
    Failed,
    /// Its prompt's turn showed no start within the start time, or its page no change
    /// at all for the stall time: `reason` says what was seen.
    Stalled,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Outcome {
    pub session: Session,
    pub status: Status,
    /// The last state seen.
    pub state: Option<State>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// From the start of the wait to the moment the session stopped (or now).
    pub duration_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<Message>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvals: Vec<Approval>,
    /// What the agent waits for, when it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<Approval>,
    /// The question form the agent waits at (`awaiting_input`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub question: Option<Box<Question>>,
    /// When a quota error says work resumes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota_resume: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub timed_out: bool,
    pub sessions: Vec<Outcome>,
}

impl Report {
    pub fn with_status(&self, status: Status) -> impl Iterator<Item = &Outcome> {
        self.sessions.iter().filter(move |o| o.status == status)
    }
}

/// Called on every change (and every second, for elapsed times) while waiting.
pub type Progress<'a> = &'a mut dyn FnMut(&[Outcome], Duration);

/// Monitors `sessions` (sending each its prompt first, if it has one) and waits as
/// `spec` says. One thread per session; this thread only selects over their updates.
pub fn wait(
    sessions: &[Session],
    prompts: &HashMap<String, String>,
    profile: &Profile,
    spec: WaitSpec,
    progress: Option<Progress>,
) -> Report {
    attended(
        sessions,
        prompts,
        profile,
        spec,
        progress,
        Attended::default(),
    )
}

/// What a wait may be given besides its sessions.
#[derive(Default, Clone, Copy)]
pub struct Attended<'a> {
    /// A message here (^C) ends the wait early: the report then holds the outcomes so
    /// far, the sessions still awaited as pending.
    pub cancel: Option<&'a Receiver<()>>,
    /// An approval its policy answers does not stop the session: its turn goes on.
    pub autopilot: Option<&'a Autopilot>,
    /// Each prompt delivered is recorded (`prompt_sent`), and its turn when seen to
    /// end (`turn_finished`).
    pub journal: Option<&'a Journal>,
    /// Disconnects when whoever asked for the prompts has gone (a serve client): a
    /// prompt still being typed then stops before its Enter, the editor put back.
    pub abandoned: Option<&'a Receiver<()>>,
}

/// [`wait`], with what [`Attended`] brings.
pub fn attended(
    sessions: &[Session],
    prompts: &HashMap<String, String>,
    profile: &Profile,
    spec: WaitSpec,
    progress: Option<Progress>,
    with: Attended,
) -> Report {
    let Attended {
        cancel,
        autopilot,
        journal,
        abandoned,
    } = with;
    let mut cancel = cancel.cloned().unwrap_or_else(never);
    // Cancelled, the wait still lets the prompts being delivered finish (a half-typed
    // prompt never stays in an editor): it ends once each has said how it went.
    // (A monitor that never reached its page says nothing: 15 s at most.)
    let (mut cancelled, mut delivering): (Option<Instant>, usize) = (
        None,
        sessions
            .iter()
            .filter(|s| prompts.contains_key(&s.target_id))
            .count(),
    );
    let start = Instant::now();
    let by = Deadline::within(spec.timeout);
    let deadline = by.at();
    let (mut monitors, rx) = Monitors::new(profile);
    let mut outcomes: Vec<Outcome> = sessions.iter().map(Outcome::pending).collect();
    let index: HashMap<String, usize> = sessions
        .iter()
        .enumerate()
        .map(|(i, s)| (s.target_id.clone(), i))
        .collect();
    let mut trackers: Vec<Tracker> = sessions
        .iter()
        .map(|_| Tracker::new(None, spec.settle))
        .collect();
    let mut last = vec![None; sessions.len()];
    let mut wakes: Vec<Option<Instant>> = vec![None; sessions.len()];
    // Each delivered prompt: as recorded, when, and by when its turn must start.
    let mut sent: Vec<Option<(journal::Sent, Instant)>> = vec![None; sessions.len()];
    let mut start_by: Vec<Option<Instant>> = vec![None; sessions.len()];
    // Each stopped session's answer, read as soon as it stopped.
    let mut readings: Vec<Option<Reading>> = sessions.iter().map(|_| None).collect();
    monitors.stall_after(spec.stall_after);
    monitors.abandoned(abandoned.cloned());
    for s in sessions {
        monitors.spawn(s, prompts.get(&s.target_id).cloned());
    }
    let ticker = if progress.is_some() {
        tick(Duration::from_secs(1))
    } else {
        never()
    };
    let mut progress = progress;
    let mut timed_out = false;
    let elapsed_ms = || start.elapsed().as_millis() as u64;
    loop {
        if cancelled.is_some_and(|by| delivering == 0 || Instant::now() >= by) {
            break;
        }
        let done = outcomes.iter().any(|o| o.status == Status::Done);
        let pending = outcomes.iter().any(|o| o.status == Status::Pending);
        if !pending || (spec.strategy == Strategy::Any && done) {
            break;
        }
        let next = wakes
            .iter()
            .chain(&start_by)
            .chain(std::iter::once(&cancelled))
            .flatten()
            .min()
            .map_or(deadline, |w| (*w).min(deadline));
        let mut changed = false;
        select! {
            recv(rx) -> update => {
                let Ok(update) = update else { break };
                changed = true;
                if matches!(update, Update::Prompted { .. }) {
                    delivering = delivering.saturating_sub(1);
                }
                if let Update::Prompted { target_id, result: Ok(_) } = &update
                    && let Some(&i) = index.get(target_id)
                {
                    let now = Instant::now();
                    let record = journal::Sent::new(&sessions[i], &prompts[target_id], SystemTime::now());
                    if let Some(j) = journal {
                        j.record_prompt(&record);
                    }
                    sent[i] = Some((record, now));
                    start_by[i] = Some(now + spec.start_within);
                }
                let held = matches!(&update, Update::Changed { target_id, snapshot, .. }
                    if index.get(target_id).zip(autopilot).is_some_and(|(&i, p)| p.on_snapshot(&sessions[i], snapshot)));
                apply(update, &index, &mut outcomes, &mut trackers, &mut last, &mut wakes, elapsed_ms(), held);
                for (i, by) in start_by.iter_mut().enumerate() {
                    if last[i].as_ref().is_some_and(|s| trackers[i].started(s)) {
                        *by = None;
                    }
                }
            }
            recv(crossbeam_channel::at(next)) -> _ => {
                if Instant::now() >= deadline {
                    timed_out = true;
                    break;
                }
                // A settle time ran out: look at those sessions again.
                let now = Instant::now();
                for i in 0..sessions.len() {
                    if start_by[i].is_some_and(|by| by <= now) {
                        start_by[i] = None;
                        if outcomes[i].status == Status::Pending {
                            changed = true;
                            let why = format!(
                                "delivered, but no turn started within {}",
                                crate::show::duration(spec.start_within)
                            );
                            stalled(&mut outcomes[i], &last[i], why, elapsed_ms());
                        }
                    }
                }
                for i in 0..sessions.len() {
                    if wakes[i].is_some_and(|w| w <= now)
                        && let Some(snap) = &last[i]
                    {
                        changed = true;
                        settle(&mut outcomes[i], &mut trackers[i], &mut wakes[i], snap, now, elapsed_ms());
                    }
                }
            }
            recv(ticker) -> _ => changed = true,
            recv(cancel) -> _ => {
                cancelled = Some(Instant::now() + Duration::from_secs(15));
                cancel = never();
            }
        }
        if spec.extract {
            for (i, o) in outcomes.iter().enumerate() {
                if o.status == Status::Done && readings[i].is_none() {
                    readings[i] = Some(read_answer(&sessions[i], profile, by));
                }
            }
        }
        if changed && let Some(p) = progress.as_mut() {
            p(&outcomes, start.elapsed());
        }
    }
    // Monitors blocked on a full channel must see it closed before they can stop.
    drop(rx);
    monitors.stop();
    for o in outcomes.iter_mut().filter(|o| o.status == Status::Pending) {
        o.duration_ms = elapsed_ms();
    }
    if let Some(p) = progress.as_mut() {
        p(&outcomes, start.elapsed());
    }
    for (o, reading) in outcomes.iter_mut().zip(readings) {
        match reading.map(|r| r.join().expect("answer thread")) {
            Some(Ok(answer)) => o.answer = answer,
            Some(Err(e)) => o.reason = Some(format!("answer not read: {e}")),
            None => {}
        }
    }
    if let Some(j) = journal {
        let now = (Instant::now(), SystemTime::now());
        for (o, sent) in outcomes.iter().zip(sent) {
            let Some((sent, at)) = sent else { continue };
            let outcome = match (o.status, o.state) {
                (Status::Done, state) => TurnOutcome::stopped(state),
                (Status::Stalled, _) => TurnOutcome::Stalled,
                (Status::Closed, _) => TurnOutcome::Closed,
                (Status::Pending, _) if timed_out => TurnOutcome::Timeout,
                // Not seen to end (^C), or not awaited.
                (Status::Pending | Status::Failed, _) => continue,
            };
            let end = start + Duration::from_millis(o.duration_ms);
            let answer = o.answer.as_ref().map_or("", |m| m.content.as_str());
            let finished = now.1 - now.0.saturating_duration_since(end);
            let ended = Ended::new(outcome, answer, end.saturating_duration_since(at), finished);
            j.record_turn(&TurnRecord { sent, ended });
        }
    }
    Report {
        timed_out,
        sessions: outcomes,
    }
}

impl Outcome {
    /// A session not seen yet.
    pub fn pending(s: &Session) -> Outcome {
        Outcome {
            session: s.clone(),
            status: Status::Pending,
            state: None,
            reason: None,
            duration_ms: 0,
            answer: None,
            error: None,
            approvals: Vec::new(),
            approval: None,
            question: None,
            quota_resume: None,
        }
    }

    /// Takes what `snap` shows: the state, and the error or approval it holds.
    pub fn saw(&mut self, snap: &crate::panel::Snapshot) {
        self.state = Some(snap.state);
        self.error = snap.error.clone();
        self.approvals = snap.approvals.clone();
        self.approval = snap.approval.clone();
        self.question = snap.question.clone();
        self.quota_resume = snap.quota_resume.clone();
    }
}

#[allow(clippy::too_many_arguments)]
fn apply(
    update: Update,
    index: &HashMap<String, usize>,
    outcomes: &mut [Outcome],
    trackers: &mut [Tracker],
    last: &mut [Option<crate::panel::Snapshot>],
    wakes: &mut [Option<Instant>],
    elapsed_ms: u64,
    held: bool,
) {
    match update {
        Update::Changed {
            target_id,
            snapshot,
            at,
        } => {
            let Some(&i) = index.get(&target_id) else {
                return;
            };
            // The first state the page answered with (`last` keeps only those).
            let first = last[i].is_none();
            if outcomes[i].status != Status::Pending {
                return;
            }
            if first && snapshot.state == State::NoPanel {
                outcomes[i].status = Status::Failed;
                outcomes[i].state = Some(State::NoPanel);
                outcomes[i].reason = Some(crate::Error::NoPanel.to_string());
                return;
            }
            // An approval a policy is answering: the turn goes on. The tracker notes
            // what it saw (busy), its verdict is not taken; should the press fail
            // (nothing changes), the session stops as it is once the press had its time.
            if held {
                let _ = trackers[i].observe(&snapshot, at);
                wakes[i] = Some(at + crate::policy::ANSWER_WITHIN);
                outcomes[i].state = Some(snapshot.state);
                outcomes[i].approval = snapshot.approval.clone();
                last[i] = Some(*snapshot);
                return;
            }
            settle(
                &mut outcomes[i],
                &mut trackers[i],
                &mut wakes[i],
                &snapshot,
                at,
                elapsed_ms,
            );
            if snapshot.state != State::Unresponsive {
                last[i] = Some(*snapshot);
            }
        }
        Update::Prompted { target_id, result } => {
            let Some(&i) = index.get(&target_id) else {
                return;
            };
            match result {
                Ok(baseline) => trackers[i].set_turn(baseline),
                Err(reason) => {
                    outcomes[i].status = Status::Failed;
                    outcomes[i].reason = Some(reason);
                    outcomes[i].duration_ms = elapsed_ms;
                }
            }
        }
        Update::Closed {
            target_id, reason, ..
        } => {
            let Some(&i) = index.get(&target_id) else {
                return;
            };
            if outcomes[i].status == Status::Pending {
                outcomes[i].status = Status::Closed;
                outcomes[i].reason = Some(reason);
                outcomes[i].duration_ms = elapsed_ms;
            }
        }
        Update::Still {
            target_id, after, ..
        } => {
            let Some(&i) = index.get(&target_id) else {
                return;
            };
            // Still before it stopped: in a turn, or waiting for one to start (an idle
            // agent only waiting out the settle time is not).
            let settling = last[i]
                .as_ref()
                .is_some_and(|s| s.state == State::Idle && !s.turn_open && trackers[i].started(s));
            if outcomes[i].status == Status::Pending && !settling {
                let why = format!(
                    "no change at all in the page for {}",
                    crate::show::duration(after)
                );
                stalled(&mut outcomes[i], &last[i], why, elapsed_ms);
            }
        }
        Update::Appeared { .. }
        | Update::Retitled { .. }
        | Update::EndpointLost { .. }
        | Update::EndpointBack { .. } => {}
    }
}

/// A session stalled: `why`, and what was last seen.
fn stalled(outcome: &mut Outcome, last: &Option<Snapshot>, why: String, elapsed_ms: u64) {
    let seen = last.as_ref().map_or("nothing".into(), crate::show::seen);
    outcome.status = Status::Stalled;
    outcome.duration_ms = elapsed_ms;
    outcome.reason = Some(format!("{why} (seen: {seen})"));
}

fn settle(
    outcome: &mut Outcome,
    tracker: &mut Tracker,
    wake: &mut Option<Instant>,
    snap: &crate::panel::Snapshot,
    now: Instant,
    elapsed_ms: u64,
) {
    outcome.saw(snap);
    match tracker.observe(snap, now) {
        Verdict::Stopped => {
            outcome.status = Status::Done;
            outcome.duration_ms = elapsed_ms;
            *wake = None;
        }
        Verdict::Pending { wake: w } => *wake = w,
    }
}

/// A session's last answer, being read on a thread of its own.
type Reading = JoinHandle<Result<Option<Message>, crate::Error>>;

/// Starts reading the last answer of a session that stopped, by the deadline.
fn read_answer(session: &Session, profile: &Profile, deadline: Deadline) -> Reading {
    let (window, profile) = (session.window.clone(), profile.clone());
    std::thread::spawn(move || {
        let group = Default::default();
        let (mut panel, _) = Panel::attach_in(&window, &profile, group, Some(deadline))?;
        Ok(panel
            .history()?
            .into_iter()
            .rev()
            .find(|m| m.role == Role::Agent))
    })
}
