//! A queue of prompts spread over the sessions that are idle: each prompt goes to the
//! next session ready for one, and results come back as the prompts finish.
//!
//! One worker thread per session, on its own connection, sends a prompt (exactly once,
//! see [`turn::send_prompt`]), follows its turn through the page's change
//! notifications, reads the answer, and reports. A coordinator thread hands out the
//! prompts: only to a session that is idle, `per_session` at a time (a chat runs one
//! turn at a time, so more than one means the others wait in that session's own line),
//! a pinned prompt only to its session. A prompt whose turn ended in error goes to
//! another session, up to `retries` times; a prompt that was refused or not delivered
//! (nothing reached the agent, proven) goes to another session whatever the count. A
//! prompt whose fate after its Enter was not seen (the window closed, the browser
//! died, the page never showed it) is never sent again: it is `unconfirmed`; one
//! delivered whose session then closed is `closed`, and one whose turn stalled is
//! `stalled` (its agent has it and may still start on it). A prompt whose submission
//! the [`Recorder`] could not record is not submitted, and from then on none is: the
//! prompts left are `failed`. A session that stopped awaiting approval,
//! in error, or with a stalled turn gets no more work until it is idle again; one that
//! refused a prompt (a draft in its editor) or closed, none for the rest of the run.
//!
//! ```no_run
//! use angrav::dispatch::{Dispatcher, Event, Options, Prompt};
//! use angrav::registry::Registry;
//!
//! let registry = Registry::discover(&["http://127.0.0.1:9222"], None)?;
//! let prompts = ["Review auth.rs", "Review db.rs", "Review api.rs"]
//!     .iter()
//!     .enumerate()
//!     .map(|(i, t)| Prompt::new(i.to_string(), *t))
//!     .collect();
//! let dispatcher = Dispatcher::start(registry.sessions(), registry.profile(), prompts, Options::default());
//! for event in dispatcher.events() {
//!     if let Event::Finished(r) = event {
//!         println!("{} {:?} {:?}", r.id, r.status, r.answer.map(|m| m.content));
//!     }
//! }
//! # Ok::<(), angrav::Error>(())
//! ```

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use cdp::CloseGroup;
use crossbeam_channel::{Receiver, Sender, select};
use serde::{Deserialize, Serialize};

use crate::Error;
use crate::panel::{Message, Panel, Role, Snapshot, State};
use crate::profile::Profile;
use crate::sessions::Session;
use crate::turn::{self, Sent, Step, Until, Waited};

/// One prompt of the queue.
#[derive(Debug, Clone, PartialEq)]
pub struct Prompt {
    /// The caller's name for it, repeated in its result.
    pub id: String,
    pub text: String,
    /// Only this session (its full target id) may take it.
    pub pin: Option<String>,
    /// How long its turn may take once delivered (none: as long as the run).
    pub timeout: Option<Duration>,
}

impl Prompt {
    pub fn new(id: impl Into<String>, text: impl Into<String>) -> Prompt {
        Prompt {
            id: id.into(),
            text: text.into(),
            pin: None,
            timeout: None,
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Prompts a session holds at once: the one it runs, the others waiting their turn.
    pub per_session: usize,
    /// How many times a prompt is given to another session after its turn ended in
    /// error.
    pub retries: u32,
    pub settle: Duration,
    /// A delivered prompt whose turn shows no start within this is stalled.
    pub start_within: Duration,
    /// A turn whose page shows no change at all for this long is stalled.
    pub stall_after: Option<Duration>,
    /// How long a sender waits for another's claim on the editor.
    pub claim_within: Duration,
    /// Read each finished turn's answer.
    pub extract: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            per_session: 1,
            retries: 1,
            settle: turn::WaitOptions::default().settle,
            start_within: Duration::from_secs(10),
            stall_after: None,
            claim_within: Duration::from_secs(10),
            extract: true,
        }
    }
}

/// Where a prompt ended up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Delivered, and its turn ended: `state` says idle, awaiting approval, or error
    /// (`reason`: its answer could not be read).
    Done,
    /// Delivered, but its turn showed no start within the start window, or its page no
    /// change for the stall time: `reason` says what was seen. Never sent again: its
    /// agent has it and may still start on it.
    Stalled,
    /// Its session closed during its turn.
    Closed,
    /// Never delivered, or no session was left to give it to: `reason` says why.
    Failed,
    /// Submitted, but what became of it was not seen (the window closed or the
    /// browser died right after the Enter, or the page never showed it): the agent may
    /// have it, so it is never sent again.
    Unconfirmed,
    /// Delivered, and still running when its timeout, or the run, ended.
    Pending,
}

/// A prompt's result: its last attempt.
#[derive(Debug, Clone, Serialize)]
pub struct Finished {
    pub id: String,
    /// The session of its last attempt; none when no session took it.
    pub session: Option<Session>,
    pub status: Status,
    /// The last state seen.
    pub state: Option<State>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// How many sessions it was given to.
    pub attempts: u32,
    /// From the start of the last attempt's delivery to its end.
    pub duration_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answer: Option<Message>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub approvals: Vec<crate::panel::Approval>,
    /// The question form the agent waits at (`awaiting_input`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub question: Option<Box<crate::panel::Question>>,
    /// When the last attempt's delivery began, and when it ended: its session seen
    /// done, before its answer was read (for figures: the gap between one turn and
    /// the next on a session).
    #[serde(skip)]
    pub sent_at: Option<Instant>,
    #[serde(skip)]
    pub ended_at: Instant,
}

/// How a done result's reason begins when its answer could not be read.
const ANSWER_NOT_READ: &str = "answer not read";

/// Done, idle, and (when answers are read) its answer read: what a run that ends well
/// (exit 0) is made of. Of a result as it ends, or as the journal recorded it.
pub fn succeeded(status: Status, state: Option<State>, reason: Option<&str>) -> bool {
    let unread = reason.is_some_and(|r| r.starts_with(ANSWER_NOT_READ));
    status == Status::Done && state == Some(State::Idle) && !unread
}

impl Finished {
    pub fn succeeded(&self) -> bool {
        succeeded(self.status, self.state, self.reason.as_deref())
    }

    /// A prompt whose turn was not followed: never sent, or its fate not seen.
    pub fn unfollowed(
        id: String,
        session: Option<Session>,
        status: Status,
        reason: String,
        attempts: u32,
    ) -> Finished {
        Finished {
            id,
            session,
            status,
            state: None,
            reason: Some(reason),
            attempts,
            duration_ms: 0,
            answer: None,
            error: None,
            approvals: Vec::new(),
            question: None,
            sent_at: None,
            ended_at: Instant::now(),
        }
    }
}

/// What a dispatcher reports, in the order it happens.
#[derive(Debug, Clone)]
pub enum Event {
    /// A prompt was handed to a session (the moment the dispatcher decides: a session
    /// seen done while prompts wait is given the next one before anything else
    /// happens).
    Sent { id: String, session: String },
    /// A prompt reached its session's agent (delivered; its turn may not have started
    /// yet): its session's full target id, and when its delivery began.
    Delivered {
        id: String,
        target_id: String,
        at: SystemTime,
    },
    /// A prompt ended; a retried prompt ends once, with its last attempt.
    Finished(Box<Finished>),
    /// A session gets no more work for now (awaiting approval, in error, a stalled
    /// turn, no panel), or for good (closed).
    SetAside { session: String, reason: String },
    /// A session set aside is idle again and takes work.
    Back { session: String },
    /// The last event: the prompts never sent (after [`Dispatcher::stop`], or when no
    /// session could take them), in their original order.
    Ended { unsent: Vec<Prompt> },
}

/// What a dispatcher tells whoever keeps its record (the CLI: the journal), on the
/// worker's thread, as it happens.
pub trait Recorder: Send + Sync {
    /// Just before a prompt's one submission to `session`. The Enter is pressed only
    /// once this returns `Ok`: a record made durable here survives a crash after it.
    /// `Err(why)`: the record could not be made. That prompt is not submitted, and
    /// none is from then on: each prompt not sent yet is reported `failed` with `why`.
    fn submitting(&self, prompt: &Prompt, session: &Session) -> Result<(), String>;
}

/// The run's recorder, shared by the workers: once it refused a submission, every
/// later one is refused for the same reason without asking it again.
struct Record {
    recorder: Arc<dyn Recorder>,
    refused: Mutex<Option<String>>,
}

impl Record {
    fn submitting(&self, prompt: &Prompt, session: &Session) -> Result<(), String> {
        let refused = || self.refused.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(why) = refused().clone() {
            return Err(why);
        }
        self.recorder
            .submitting(prompt, session)
            .inspect_err(|why| *refused() = Some(why.clone()))
    }
}

/// Hands out prompts to sessions and reports results as they finish.
pub struct Dispatcher {
    events: Receiver<Event>,
    control: Sender<Control>,
    stopping: Arc<AtomicBool>,
    group: Arc<CloseGroup>,
    coordinator: Option<JoinHandle<()>>,
}

enum Control {
    Stop,
    Abort,
    /// A paused session (by target id) takes prompts.
    Resume(String),
}

impl Dispatcher {
    /// Starts a worker per session and hands out `prompts`; events arrive on
    /// [`Dispatcher::events`] until [`Event::Ended`].
    pub fn start(
        sessions: &[Session],
        profile: &Profile,
        prompts: Vec<Prompt>,
        opts: Options,
    ) -> Dispatcher {
        Dispatcher::start_recorded(sessions, profile, prompts, opts, None, &[])
    }

    /// As [`Dispatcher::start`], telling `recorder` of every submission before it;
    /// the sessions of `paused` (target ids) take no prompt until
    /// [`Dispatcher::resume`]d (a prompt pinned to one waits for it).
    pub fn start_recorded(
        sessions: &[Session],
        profile: &Profile,
        prompts: Vec<Prompt>,
        opts: Options,
        recorder: Option<Arc<dyn Recorder>>,
        paused: &[String],
    ) -> Dispatcher {
        let (events_tx, events) = crossbeam_channel::unbounded();
        let (control, control_rx) = crossbeam_channel::unbounded();
        let (notes_tx, notes) = crossbeam_channel::unbounded();
        let stopping = Arc::new(AtomicBool::new(false));
        let group: Arc<CloseGroup> = Arc::default();
        let record = recorder.map(|recorder| {
            Arc::new(Record {
                recorder,
                refused: Mutex::new(None),
            })
        });
        let mut workers = Vec::new();
        for (index, session) in sessions.iter().enumerate() {
            let (inbox_tx, inbox) = crossbeam_channel::unbounded();
            let worker = Worker {
                index,
                session: session.clone(),
                profile: profile.clone(),
                opts,
                group: group.clone(),
                stopping: stopping.clone(),
                inbox: inbox.clone(),
                notes: notes_tx.clone(),
                record: record.clone(),
            };
            let thread = std::thread::Builder::new()
                .name(format!("dispatch {}", session.id))
                .spawn(move || worker.run())
                .expect("spawn a dispatch worker");
            workers.push(Seat {
                session: session.clone(),
                inbox: Some(inbox_tx),
                backlog: inbox,
                load: 0,
                ready: false,
                held: false,
                paused: paused.contains(&session.target_id),
                gone: false,
                thread: Some(thread),
            });
        }
        drop(notes_tx);
        let coordinator = Coordinator {
            queue: prompts.into_iter().enumerate().map(Job::new).collect(),
            workers,
            opts,
            events: events_tx,
            stopping: stopping.clone(),
            group: group.clone(),
            unsent: Vec::new(),
            unrecorded: None,
        };
        let coordinator = std::thread::Builder::new()
            .name("dispatch".into())
            .spawn(move || coordinator.run(notes, control_rx))
            .expect("spawn the dispatcher");
        Dispatcher {
            events,
            control,
            stopping,
            group,
            coordinator: Some(coordinator),
        }
    }

    /// Events as they happen; the channel ends after [`Event::Ended`].
    pub fn events(&self) -> &Receiver<Event> {
        &self.events
    }

    /// The paused session `target_id` takes prompts from now on.
    pub fn resume(&self, target_id: &str) {
        let _ = self.control.send(Control::Resume(target_id.to_string()));
    }

    /// Hands out no more prompts; the turns running go on to their end.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        let _ = self.control.send(Control::Stop);
    }

    /// Stops at once: turns still running are reported `pending`.
    pub fn abort(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        let _ = self.control.send(Control::Abort);
        self.group.close();
    }
}

impl Drop for Dispatcher {
    fn drop(&mut self) {
        self.abort();
        if let Some(c) = self.coordinator.take() {
            let _ = c.join();
        }
    }
}

/// A prompt in the queue, with the sessions that already had it.
struct Job {
    /// Its place in the input.
    order: usize,
    prompt: Prompt,
    attempts: u32,
    /// Attempts delivered whose turn then ended in error: what `retries` bounds.
    failures: u32,
    tried: Vec<usize>,
}

impl Job {
    fn new((order, prompt): (usize, Prompt)) -> Job {
        Job {
            order,
            prompt,
            attempts: 0,
            failures: 0,
            tried: Vec::new(),
        }
    }
}

/// What a worker tells the coordinator.
enum Note {
    /// The session is idle and takes work.
    Ready(usize),
    /// The session takes no work until it is idle again.
    Held(usize, String),
    /// The session is gone (closed, or no panel): it takes no work again.
    Gone(usize, String),
    /// A prompt's attempt ended.
    Ended(usize, Job, Box<Attempt>),
    /// Taken from the inbox after the dispatcher stopped: never sent.
    Returned(usize, Job),
    /// A prompt was delivered; its delivery began at that time.
    Delivered(usize, String, SystemTime),
}

/// One attempt of a prompt on a session.
struct Attempt {
    outcome: Outcome,
    snapshot: Option<Snapshot>,
    answer: Option<Message>,
    sent_at: Instant,
    ended_at: Instant,
    /// The session is idle after it and takes the next prompt at once.
    idle_after: bool,
}

enum Outcome {
    /// Delivered, and its turn ended (the snapshot says how); with why its answer
    /// was not read, when it could not be (the browser gone right after, say).
    Done(Option<String>),
    /// Nothing reached the agent (refused, or proven not delivered): safe to send
    /// elsewhere.
    Undelivered(String),
    /// Submitted, but what became of it was not seen: never sent elsewhere, since the
    /// agent may have it.
    Unconfirmed(String),
    /// Not submitted: the recorder refused to record it (`why`); `reason` says what
    /// became of the typed prompt. No prompt is submitted after it.
    Unrecorded {
        why: String,
        reason: String,
    },
    Stalled(String),
    Closed(String),
    Pending(String),
}

/// The coordinator's view of a worker.
struct Seat {
    session: Session,
    /// Dropped to tell the worker there is no more work.
    inbox: Option<Sender<Job>>,
    /// The same inbox, to take back what the worker has not begun when stopping.
    backlog: Receiver<Job>,
    load: usize,
    ready: bool,
    /// Set aside (reported) until it is idle again.
    held: bool,
    /// Kept from prompts by whoever started the run, until it resumes it.
    paused: bool,
    gone: bool,
    thread: Option<JoinHandle<()>>,
}

struct Coordinator {
    queue: VecDeque<Job>,
    workers: Vec<Seat>,
    opts: Options,
    events: Sender<Event>,
    stopping: Arc<AtomicBool>,
    group: Arc<CloseGroup>,
    /// Prompts never sent, taken back after a stop.
    unsent: Vec<Job>,
    /// Why submissions can no longer be recorded, once one could not be: none is
    /// made again in this run.
    unrecorded: Option<String>,
}

impl Coordinator {
    fn run(mut self, notes: Receiver<Note>, control: Receiver<Control>) {
        let mut control = Some(control);
        loop {
            if let Some(why) = self.unrecorded.clone() {
                self.fail_unsent(&why);
            } else if !self.stopping.load(Ordering::SeqCst) {
                self.fail_unplaceable();
                self.assign();
            }
            let running: usize = self.workers.iter().map(|w| w.load).sum();
            if running == 0 && (self.queue.is_empty() || self.stopping.load(Ordering::SeqCst)) {
                break;
            }
            let ctl = control.clone().unwrap_or_else(crossbeam_channel::never);
            select! {
                recv(notes) -> note => match note {
                    Ok(note) => self.note(note),
                    Err(_) => break,
                },
                recv(ctl) -> c => match c {
                    Ok(Control::Stop) => self.take_back(),
                    Ok(Control::Abort) => {
                        self.take_back();
                        self.group.close();
                    }
                    Ok(Control::Resume(target)) => {
                        for w in self.workers.iter_mut().filter(|w| w.session.target_id == target) {
                            w.paused = false;
                        }
                    }
                    Err(_) => control = None,
                },
            }
        }
        self.take_back();
        self.unsent.extend(self.queue.drain(..));
        // Workers still waiting for work, or for a session to be idle again: done.
        for w in &mut self.workers {
            w.inbox = None;
        }
        self.group.close();
        for w in &mut self.workers {
            if let Some(t) = w.thread.take() {
                let _ = t.join();
            }
        }
        // Notes sent while stopping: prompts handed back.
        while let Ok(note) = notes.try_recv() {
            if let Note::Returned(_, job) = note {
                self.unsent.push(job);
            }
        }
        let mut unsent = std::mem::take(&mut self.unsent);
        unsent.sort_by_key(|j| j.order);
        let unsent = unsent.into_iter().map(|j| j.prompt).collect();
        let _ = self.events.send(Event::Ended { unsent });
    }

    /// Takes back what workers hold but have not begun, once stopping.
    fn take_back(&mut self) {
        for w in &mut self.workers {
            while let Ok(job) = w.backlog.try_recv() {
                w.load -= 1;
                self.unsent.push(job);
            }
        }
    }

    fn emit(&self, event: Event) {
        let _ = self.events.send(event);
    }

    fn note(&mut self, note: Note) {
        match note {
            Note::Ready(i) => {
                let w = &mut self.workers[i];
                if !w.gone {
                    w.ready = true;
                    if std::mem::take(&mut w.held) {
                        let session = w.session.id.clone();
                        self.emit(Event::Back { session });
                    }
                }
            }
            Note::Held(i, reason) => {
                self.workers[i].ready = false;
                self.workers[i].held = true;
                let session = self.workers[i].session.id.clone();
                self.emit(Event::SetAside { session, reason });
            }
            Note::Gone(i, reason) => {
                let w = &mut self.workers[i];
                w.ready = false;
                w.gone = true;
                w.inbox = None;
                // What it held but never began goes back to the front of the queue.
                while let Ok(job) = w.backlog.try_recv() {
                    w.load -= 1;
                    self.queue.push_front(job);
                }
                let session = w.session.id.clone();
                self.emit(Event::SetAside { session, reason });
            }
            Note::Ended(i, job, attempt) => self.ended(i, job, *attempt),
            Note::Returned(i, job) => {
                self.workers[i].load -= 1;
                self.unsent.push(job);
            }
            Note::Delivered(i, id, at) => {
                let target_id = self.workers[i].session.target_id.clone();
                self.emit(Event::Delivered { id, target_id, at });
            }
        }
    }

    fn ended(&mut self, i: usize, mut job: Job, a: Attempt) {
        let w = &mut self.workers[i];
        w.load -= 1;
        w.ready = a.idle_after && !w.gone;
        let state = a.snapshot.as_ref().map(|s| s.state);
        // Nothing reached the agent: another session may have it, whatever the count.
        // A turn seen to end in error counts against the retries. Any other is never
        // sent again: its agent has it or may have it (a stalled turn may still start,
        // a chat closed or unconfirmed may have taken it, a pending one runs on).
        let retry = match &a.outcome {
            Outcome::Undelivered(_) => true,
            Outcome::Done(_) if state == Some(State::Error) => {
                job.failures += 1;
                job.failures <= self.opts.retries
            }
            Outcome::Done(_)
            | Outcome::Stalled(_)
            | Outcome::Pending(_)
            | Outcome::Unconfirmed(_)
            | Outcome::Closed(_)
            | Outcome::Unrecorded { .. } => false,
        };
        let stopping = self.stopping.load(Ordering::SeqCst);
        if stopping && matches!(a.outcome, Outcome::Undelivered(_)) {
            self.unsent.push(job);
            return;
        }
        let elsewhere = (0..self.workers.len()).any(|k| self.eligible(k, &job));
        if retry && elsewhere && !stopping {
            // To the front: it has waited longest.
            self.queue.push_front(job);
            return;
        }
        let (status, reason) = match a.outcome {
            Outcome::Done(unread) => (Status::Done, unread),
            Outcome::Undelivered(r) => (Status::Failed, Some(r)),
            Outcome::Unconfirmed(r) => (Status::Unconfirmed, Some(r)),
            Outcome::Unrecorded { why, reason } => {
                self.unrecorded.get_or_insert(why);
                (Status::Failed, Some(reason))
            }
            Outcome::Stalled(r) => (Status::Stalled, Some(r)),
            Outcome::Closed(r) => (Status::Closed, Some(r)),
            Outcome::Pending(r) => (Status::Pending, Some(r)),
        };
        let w = &self.workers[i];
        let snap = a.snapshot.as_ref();
        self.emit(Event::Finished(Box::new(Finished {
            id: job.prompt.id,
            session: Some(w.session.clone()),
            status,
            state,
            reason,
            attempts: job.attempts,
            duration_ms: a.ended_at.duration_since(a.sent_at).as_millis() as u64,
            answer: a.answer,
            error: snap.and_then(|s| s.error.clone()),
            approvals: snap.map(|s| s.approvals.clone()).unwrap_or_default(),
            question: snap.and_then(|s| s.question.clone()),
            sent_at: Some(a.sent_at),
            ended_at: a.ended_at,
        })));
    }

    /// Fails every prompt not begun yet, queued or held by a worker: `why` no
    /// submission can be recorded.
    fn fail_unsent(&mut self, why: &str) {
        let mut left: Vec<Job> = self.queue.drain(..).collect();
        for w in &mut self.workers {
            while let Ok(job) = w.backlog.try_recv() {
                w.load -= 1;
                left.push(job);
            }
        }
        left.sort_by_key(|j| j.order);
        for job in left {
            self.emit(Event::Finished(Box::new(Finished::unfollowed(
                job.prompt.id,
                None,
                Status::Failed,
                format!("not sent: {why}"),
                job.attempts,
            ))));
        }
    }

    /// Whether worker `i` may ever take `job`.
    fn eligible(&self, i: usize, job: &Job) -> bool {
        let w = &self.workers[i];
        !w.gone
            && !job.tried.contains(&i)
            && job
                .prompt
                .pin
                .as_ref()
                .is_none_or(|p| *p == w.session.target_id)
    }

    /// Fails the prompts no session is left to take.
    fn fail_unplaceable(&mut self) {
        let mut kept = VecDeque::new();
        while let Some(job) = self.queue.pop_front() {
            if (0..self.workers.len()).any(|i| self.eligible(i, &job)) {
                kept.push_back(job);
                continue;
            }
            let reason = match (&job.prompt.pin, job.attempts) {
                (Some(_), _) => "its session closed or has no panel",
                (None, 0) => "no session could take it (closed, or no panel)",
                (None, _) => "no other session was left to try it on",
            };
            self.emit(Event::Finished(Box::new(Finished::unfollowed(
                job.prompt.id,
                None,
                Status::Failed,
                reason.into(),
                job.attempts,
            ))));
        }
        self.queue = kept;
    }

    /// Hands queued prompts, in order, to idle sessions with room.
    fn assign(&mut self) {
        let mut i = 0;
        while i < self.queue.len() {
            let job = &self.queue[i];
            let seat = (0..self.workers.len())
                .filter(|&k| {
                    let w = &self.workers[k];
                    w.ready && !w.paused && w.load < self.opts.per_session && self.eligible(k, job)
                })
                .min_by_key(|&k| self.workers[k].load);
            let Some(k) = seat else {
                i += 1;
                continue;
            };
            let mut job = self.queue.remove(i).expect("in range");
            job.attempts += 1;
            job.tried.push(k);
            let w = &mut self.workers[k];
            w.load += 1;
            let event = Event::Sent {
                id: job.prompt.id.clone(),
                session: w.session.id.clone(),
            };
            if let Some(inbox) = &w.inbox {
                let _ = inbox.send(job);
            }
            self.emit(event);
        }
    }
}

/// One session's worker: its own connection to the panel.
struct Worker {
    index: usize,
    session: Session,
    profile: Profile,
    opts: Options,
    group: Arc<CloseGroup>,
    stopping: Arc<AtomicBool>,
    inbox: Receiver<Job>,
    notes: Sender<Note>,
    record: Option<Arc<Record>>,
}

impl Worker {
    fn run(self) {
        let attached = Panel::attach_in(
            &self.session.window,
            &self.profile,
            self.group.clone(),
            None,
        );
        let (mut panel, mut snap) = match attached {
            Ok((_, s)) if s.state == State::NoPanel => {
                return self.gone(Error::NoPanel.to_string());
            }
            Ok(found) => found,
            Err(e) => return self.gone(e.to_string()),
        };
        let mut idle = snap.state == State::Idle && !snap.turn_open;
        loop {
            // Stopped by the dispatcher: nothing to report any more.
            if self.group.is_closed() {
                return;
            }
            if !idle {
                let why = if snap.state == State::Idle {
                    "its last prompt has not been answered".to_string()
                } else {
                    format!("it is {}", crate::show::snapshot(&snap))
                };
                let _ = self.notes.send(Note::Held(self.index, why));
                match turn::wait_idle(&mut panel, snap, self.opts.settle, None) {
                    Ok(Waited::Stopped(s)) => snap = s,
                    Ok(_) => unreachable!("no deadline, no stall time"),
                    Err(e) => return self.gone(e.to_string()),
                }
            }
            if self.notes.send(Note::Ready(self.index)).is_err() {
                return;
            }
            let Ok(job) = self.inbox.recv() else { return };
            if self.stopping.load(Ordering::SeqCst) {
                let _ = self.notes.send(Note::Returned(self.index, job));
                idle = true;
                continue;
            }
            let attempt = self.attempt(&mut panel, &job.prompt);
            idle = attempt.idle_after;
            // A session that closed, or did not take a prompt (a draft in its editor,
            // another sender), gets no more work in this run.
            let out = match &attempt.outcome {
                Outcome::Closed(_) => Some("the window closed".to_string()),
                Outcome::Undelivered(why) => Some(format!("it did not take a prompt: {why}")),
                Outcome::Unconfirmed(why) => {
                    Some(format!("its last prompt's fate was not seen: {why}"))
                }
                _ => None,
            };
            if let Some(s) = &attempt.snapshot {
                snap = s.clone();
            }
            let _ = self
                .notes
                .send(Note::Ended(self.index, job, Box::new(attempt)));
            if let Some(why) = out {
                return self.gone(why);
            }
        }
    }

    fn gone(&self, reason: String) {
        if !self.group.is_closed() {
            let _ = self.notes.send(Note::Gone(self.index, reason));
        }
    }

    /// Sends the prompt, follows its turn, reads its answer.
    fn attempt(&self, panel: &mut Panel, prompt: &Prompt) -> Attempt {
        let (sent_at, begun) = (Instant::now(), SystemTime::now());
        let ended = |outcome, snapshot: Option<Snapshot>, answer, idle_after| Attempt {
            outcome,
            snapshot,
            answer,
            sent_at,
            ended_at: Instant::now(),
            idle_after,
        };
        let opts = turn::SendOptions {
            claim_within: self.opts.claim_within,
            start_within: self.opts.start_within,
            replace_draft: false,
            abandoned: None,
        };
        // How far the delivery got: past the Enter, a failure never lets the prompt
        // go elsewhere.
        let mut reached = None;
        // Why the submission could not be recorded, if it could not: then not made.
        let mut unrecorded = None;
        let sent = turn::send_prompt_noting(panel, &prompt.text, opts, |step| {
            if step == Step::Submitting
                && let Some(r) = &self.record
                && let Err(why) = r.submitting(prompt, &self.session)
            {
                unrecorded = Some(why.clone());
                return Err(why);
            }
            if step == Step::Delivered {
                let delivered = Note::Delivered(self.index, prompt.id.clone(), begun);
                let _ = self.notes.send(delivered);
            }
            reached = Some(step);
            Ok(())
        });
        if let (Some(why), Err(e)) = (unrecorded, &sent) {
            // Never submitted: the chat is as it was.
            let outcome = Outcome::Unrecorded {
                why,
                reason: e.to_string(),
            };
            return ended(outcome, None, None, true);
        }
        let sent = match (sent, reached) {
            (Ok(sent), _) => sent,
            (Err(e @ Error::NotDelivered(_)), _) | (Err(e), None) => {
                let outcome = Outcome::Undelivered(e.to_string());
                return ended(outcome, None, None, false);
            }
            (Err(e), Some(Step::Submitting)) => {
                let outcome = Outcome::Unconfirmed(e.to_string());
                return ended(outcome, None, None, false);
            }
            (Err(e), Some(Step::Delivered)) => {
                let outcome = self.failure(&e, Outcome::Unconfirmed(e.to_string()));
                return ended(outcome, None, None, false);
            }
        };
        let Sent {
            baseline,
            snapshot,
            started,
        } = sent;
        if !started {
            let why = format!(
                "delivered, but no turn started within {} (seen: {})",
                crate::show::duration(self.opts.start_within),
                crate::show::seen(&snapshot)
            );
            return ended(Outcome::Stalled(why), Some(snapshot), None, false);
        }
        let until = Until {
            turn: Some(baseline),
            settle: self.opts.settle,
            accept: |_| true,
            deadline: prompt.timeout.map(|t| sent_at + t),
            stall_after: self.opts.stall_after,
        };
        match turn::wait_until(panel, snapshot, until) {
            Ok(Waited::Stopped(end)) => {
                // Seen done now: reading the answer is part of the gap to the next prompt.
                let seen = Instant::now();
                let idle = end.state == State::Idle;
                let read = if self.opts.extract && baseline.answered(&end) {
                    last_answer(panel)
                } else {
                    Ok(None)
                };
                let (answer, unread) = match read {
                    Ok(answer) => (answer, None),
                    Err(e) => (None, Some(format!("{ANSWER_NOT_READ}: {e}"))),
                };
                Attempt {
                    ended_at: seen,
                    ..ended(Outcome::Done(unread), Some(end), answer, idle)
                }
            }
            Ok(Waited::Stalled(end)) => {
                let why = format!(
                    "no change in the page for {} (seen: {})",
                    crate::show::duration(self.opts.stall_after.unwrap_or_default()),
                    crate::show::seen(&end)
                );
                ended(Outcome::Stalled(why), Some(end), None, false)
            }
            Ok(Waited::TimedOut(end)) => {
                let why = format!(
                    "its turn was still running after its timeout of {}",
                    crate::show::duration(prompt.timeout.unwrap_or_default())
                );
                ended(Outcome::Pending(why), Some(end), None, false)
            }
            Err(e) => {
                let outcome = self.failure(&e, Outcome::Closed(e.to_string()));
                ended(outcome, None, None, false)
            }
        }
    }

    /// A connection stopped by the dispatcher leaves the turn pending; a closed window
    /// closes it.
    fn failure(&self, e: &Error, otherwise: Outcome) -> Outcome {
        if self.group.is_closed() {
            Outcome::Pending("the dispatcher stopped before the turn ended".into())
        } else if e.is_closed() {
            Outcome::Closed(format!("the window closed: {e}"))
        } else {
            otherwise
        }
    }
}

/// The newest agent message.
fn last_answer(panel: &mut Panel) -> Result<Option<Message>, Error> {
    Ok(panel
        .history()?
        .into_iter()
        .rev()
        .find(|m| m.role == Role::Agent))
}
