//! Waiting on many sessions at once: a `select!` over their monitors' updates and
//! the deadlines (the overall timeout, and each session's settle time).

use std::collections::HashMap;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, never, select, tick};
use serde::Serialize;

use crate::monitor::{Monitors, Update};
use crate::panel::{Deadline, Message, Panel, Role, State};
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
}

/// Where a session ended up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
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
}

#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub session: Session,
    pub status: Status,
    /// The last state seen.
    pub state: Option<State>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// From the start of the wait to the moment the session stopped (or now).
    pub duration_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answer: Option<Message>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub approvals: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
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
    wait_or_cancel(sessions, prompts, profile, spec, progress, &never())
}

/// [`wait`], ended early by a message on `cancel` (^C): the report then holds the
/// outcomes so far, the sessions still awaited as pending.
pub fn wait_or_cancel(
    sessions: &[Session],
    prompts: &HashMap<String, String>,
    profile: &Profile,
    spec: WaitSpec,
    progress: Option<Progress>,
    cancel: &Receiver<()>,
) -> Report {
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
    // Each stopped session's answer, read as soon as it stopped.
    let mut readings: Vec<Option<Reading>> = sessions.iter().map(|_| None).collect();
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
        let done = outcomes.iter().any(|o| o.status == Status::Done);
        let pending = outcomes.iter().any(|o| o.status == Status::Pending);
        if !pending || (spec.strategy == Strategy::Any && done) {
            break;
        }
        let next = wakes
            .iter()
            .flatten()
            .min()
            .map_or(deadline, |w| (*w).min(deadline));
        let mut changed = false;
        select! {
            recv(rx) -> update => {
                let Ok(update) = update else { break };
                changed = true;
                apply(update, &index, &mut outcomes, &mut trackers, &mut last, &mut wakes, elapsed_ms());
            }
            recv(crossbeam_channel::at(next)) -> _ => {
                if Instant::now() >= deadline {
                    timed_out = true;
                    break;
                }
                // A settle time ran out: look at those sessions again.
                let now = Instant::now();
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
            recv(cancel) -> _ => break,
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
        }
    }

    /// Takes what `snap` shows: the state, and the error or approval it holds.
    pub fn saw(&mut self, snap: &crate::panel::Snapshot) {
        self.state = Some(snap.state);
        self.error = snap.error.clone();
        self.approvals = snap.approvals.clone();
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
            settle(
                &mut outcomes[i],
                &mut trackers[i],
                &mut wakes[i],
                &snapshot,
                at,
                elapsed_ms,
            );
            if snapshot.state != State::Unresponsive {
                last[i] = Some(snapshot);
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
        Update::Appeared { .. }
        | Update::Retitled { .. }
        | Update::EndpointLost { .. }
        | Update::EndpointBack { .. } => {}
    }
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
