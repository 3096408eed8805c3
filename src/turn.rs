//! One agent's turns: sending a prompt and knowing when the answer is complete.
//!
//! A turn has started only when the user's message shows or the busy marker does; it
//! is finished when the agent is idle and has stayed idle for the settle time (the
//! busy marker flickers during a turn), or when it stops to ask for approval or on
//! an error. Every wait is driven by the page's own change notifications.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, TryRecvError};

use crate::Error;
use crate::panel::{Claim, Editor, Panel, Snapshot, State};

/// The longest one `watch` waits in the page before reporting back anyway: also how
/// long a watch angrav left behind (killed mid-wait) may linger in the page.
pub const HEARTBEAT: Duration = Duration::from_secs(10);

/// How long a submission may take to show its effect (the editor emptied, the user
/// message shown) before the prompt counts as not delivered: long enough for a page
/// that acts on Enter seconds later.
const SUBMIT_EFFECT_WITHIN: Duration = Duration::from_secs(5);

/// How long after an Enter the page did not take (it reached the window with its
/// default action intact) the send button is clicked, if nothing else happened.
const SEND_BUTTON_AFTER: Duration = Duration::from_secs(2);

/// How long an emptied editor may wait for its user message to show, where user
/// messages are readable, before the emptying alone counts as delivery.
const USER_MESSAGE_GRACE: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy)]
pub struct WaitOptions {
    pub timeout: Duration,
    pub settle: Duration,
}

impl Default for WaitOptions {
    fn default() -> Self {
        WaitOptions {
            timeout: Duration::from_secs(120),
            settle: Duration::from_millis(400),
        }
    }
}

/// The conversation's counters just before a prompt: a turn is this prompt's once
/// something beyond them appears.
#[derive(Debug, Clone, Copy)]
pub struct Baseline {
    agent_messages: u32,
    answer_blocks: u32,
}

impl Baseline {
    /// The conversation holds an answer that was not there before the prompt.
    pub fn answered(&self, snap: &Snapshot) -> bool {
        snap.agent_messages > self.agent_messages || snap.answer_blocks > self.answer_blocks
    }
}

/// How `send_prompt` goes about it.
#[derive(Debug, Clone)]
pub struct SendOptions {
    /// How long to wait for another sender's claim on the editor to end.
    pub claim_within: Duration,
    /// How long after delivery the turn may take to show it started.
    pub start_within: Duration,
    /// Replace text already in the editor instead of refusing.
    pub replace_draft: bool,
    /// Disconnects when whoever asked for the prompt has gone (a serve client): like
    /// SIGINT/SIGTERM, it stops the delivery before the Enter, the editor put back.
    pub abandoned: Option<Receiver<()>>,
}

/// A delivered prompt: its turn's baseline, the latest snapshot, and whether the
/// turn showed it started (busy, or a new answer) within the start window.
#[derive(Debug, Clone)]
pub struct Sent {
    pub baseline: Baseline,
    pub snapshot: Snapshot,
    pub started: bool,
}

/// Delivers `text` to the agent, exactly once or not at all, then awaits its turn's
/// start. The editor is claimed for the whole sequence (see [`Claim`]): other senders,
/// in this process or another, wait. A busy agent and a draft in the editor are
/// refused. Delivered means: the editor held exactly this text before the one
/// submission, and was emptied after it, and the newest user message, when the page
/// shows one, is this text. A prompt not delivered is taken out of the editor again.
pub fn send_prompt(panel: &mut Panel, text: &str, opts: SendOptions) -> Result<Sent, Error> {
    send_prompt_noting(panel, text, opts, |_| Ok(()))
}

/// Deliveries under way in this process (typing, submitting, confirming).
static DELIVERING: AtomicUsize = AtomicUsize::new(0);

/// How many prompts this process is delivering now: a process that ends on a signal
/// lets them finish (a half-typed one is taken out of its editor) first.
pub fn deliveries() -> usize {
    DELIVERING.load(Ordering::SeqCst)
}

/// How far a delivery got, as [`send_prompt_noting`] tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The one submission is about to happen: from now on the prompt may be with the
    /// agent, whatever happens next.
    Submitting,
    /// The page showed the prompt delivered.
    Delivered,
}

/// [`send_prompt`], telling `step` how far it got, on this thread, as it gets there:
/// [`Step::Submitting`] just before the Enter (a caller that must never send a prompt
/// twice records it there, durably), [`Step::Delivered`] once the page showed it.
/// `Err(why)` from `step` at [`Step::Submitting`] (the record could not be made)
/// stops the delivery there: nothing is submitted, the editor is put back, and the
/// prompt is not delivered for that reason. At [`Step::Delivered`] it changes nothing.
pub fn send_prompt_noting(
    panel: &mut Panel,
    text: &str,
    opts: SendOptions,
    mut step: impl FnMut(Step) -> Result<(), String>,
) -> Result<Sent, Error> {
    if text.trim().is_empty() {
        return Err(Error::Usage("the prompt is empty".into()));
    }
    let claim = Claim::new();
    if !panel.claim(&claim, opts.claim_within)? {
        return Err(Error::NotAccepted(format!(
            "another sender kept the editor for {}; try again",
            crate::show::duration(opts.claim_within)
        )));
    }
    // Counted until the caller has noted it delivered: a process that ends once no
    // delivery is under way has journaled every prompt it delivered.
    DELIVERING.fetch_add(1, Ordering::SeqCst);
    let delivered = deliver(panel, &claim, text, &opts, &mut step);
    // A release that fails leaves a lease that lapses by itself.
    let _ = panel.release(&claim);
    if delivered.is_ok() {
        // Past the Enter: nothing a caller says undoes the delivery.
        let _ = step(Step::Delivered);
    }
    DELIVERING.fetch_sub(1, Ordering::SeqCst);
    let before = delivered?;
    await_start(panel, &before, opts.start_within).map_err(|e| match e {
        e if e.is_closed() => e,
        e => Error::Unconfirmed(format!("delivered; then {e}")),
    })
}

/// The claimed part: check, type, verify, submit once, confirm. Returns the snapshot
/// from before the prompt.
fn deliver(
    panel: &mut Panel,
    claim: &Claim,
    text: &str,
    opts: &SendOptions,
    step: &mut impl FnMut(Step) -> Result<(), String>,
) -> Result<Snapshot, Error> {
    let before = panel.probe()?;
    match before.state {
        State::NoPanel => return Err(Error::NoPanel),
        State::Unreadable => return Err(Error::Unreadable(before.unreadable)),
        State::Thinking | State::AwaitingApproval | State::AwaitingInput | State::Unresponsive => {
            return Err(Error::NotAccepted(format!(
                "the agent is busy ({}); wait for it with 'angrav wait' first",
                before.state.name()
            )));
        }
        State::Idle | State::Error => {}
    }
    let start = panel.editor(claim)?;
    if !start.found {
        return Err(Error::NotAccepted("editor not found".into()));
    }
    if !start.editable {
        return Err(Error::NotAccepted("input read-only".into()));
    }
    let draft = if normalized(&start.text).is_empty() {
        String::new()
    } else if opts.replace_draft {
        start.text.clone()
    } else {
        return Err(Error::NotAccepted(format!(
            "the editor holds a draft ({}); angrav left it there: send or clear it, or give --replace-draft",
            preview(&start.text)
        )));
    };
    if let Some(why) = stopped(opts) {
        return Err(Error::NotDelivered(format!(
            "{why} before it was typed; the editor is as it was"
        )));
    }
    let focused = panel.prepare(claim)?;
    if focused.is_ok() {
        panel.insert_text(text)?;
    }
    let typed = panel.editor(claim)?;
    let holds = normalized(&typed.text) == normalized(text);
    if !typed.claimed || typed.busy || !holds {
        let why = if !typed.claimed {
            "another sender took the editor".to_string()
        } else if typed.busy {
            format!(
                "the agent became busy ({}) before the prompt was submitted, in a turn angrav did not start",
                typed.state.name()
            )
        } else if let Err(reason) = focused {
            reason
        } else {
            format!(
                "the editor holds {} instead of the prompt",
                preview(&typed.text)
            )
        };
        let note = restore(panel, claim, text, &draft)?;
        return Err(Error::NotDelivered(format!("{why}; {note}")));
    }
    // Interrupted while typing (SIGINT, SIGTERM, the client gone): the half-typed
    // prompt is taken out and the user's draft put back; nothing is submitted.
    if let Some(why) = stopped(opts) {
        let note = restore(panel, claim, text, &draft)?;
        return Err(Error::NotDelivered(format!(
            "{why} before it was submitted; {note}"
        )));
    }
    // A submission the caller could not record is not made: a record it needs to
    // never send the prompt twice (a journal for --resume) would not know of it.
    if let Err(why) = step(Step::Submitting) {
        let note = restore(panel, claim, text, &draft)?;
        return Err(Error::NotDelivered(format!("{why}; {note}")));
    }
    // From the Enter on, a failure other than a proven non-delivery leaves the prompt
    // possibly with the agent: never reported as not delivered.
    panel
        .press_enter()
        .and_then(|()| confirm(panel, claim, text, &typed, &draft))
        .map_err(unconfirmed)?;
    Ok(before)
}

/// Why a delivery must stop before its Enter, if it must: a signal came, or whoever
/// asked for the prompt has gone.
fn stopped(opts: &SendOptions) -> Option<&'static str> {
    if crate::signals::happened() {
        return Some("interrupted");
    }
    let gone = |a: &Receiver<()>| matches!(a.try_recv(), Err(TryRecvError::Disconnected));
    opts.abandoned
        .as_ref()
        .is_some_and(gone)
        .then_some("its client left")
}

/// An error after the prompt was submitted, as it may be reported: a proven
/// non-delivery stays what it is; anything else, a window closed or a connection lost
/// included, is unconfirmed (the agent may have the prompt).
fn unconfirmed(e: Error) -> Error {
    match e {
        Error::NotDelivered(_) | Error::Unconfirmed(_) => e,
        e => Error::Unconfirmed(format!("submitted; then {e}")),
    }
}

/// After the one submission: waits for its effect. The newest user message being the
/// prompt proves it delivered (so does an emptied editor, where no user message
/// shows); only the prompt still in the editor at the deadline proves it was not
/// (`NotDelivered`, the editor put back); anything else is `Unconfirmed`. The send
/// button is clicked only when the Enter reached the window untaken (no page handler
/// prevented it) and had no effect for [`SEND_BUTTON_AFTER`]: a page that took the
/// Enter may act on it later.
fn confirm(
    panel: &mut Panel,
    claim: &Claim,
    text: &str,
    typed: &Editor,
    draft: &str,
) -> Result<(), Error> {
    let sent_at = Instant::now();
    let deadline = sent_at + SUBMIT_EFFECT_WITHIN;
    let mut send_button_at = Some(sent_at + SEND_BUTTON_AFTER);
    let mut emptied_at: Option<Instant> = None;
    let mut now = panel.editor(claim)?;
    loop {
        // The page's own record first, whoever holds the editor now.
        let holds = normalized(&now.text) == normalized(text);
        if now.users > typed.users {
            let newest = now.last_user.as_deref().unwrap_or_default();
            if normalized(newest) == normalized(text) {
                return Ok(());
            }
            // Someone else's message, ours gone from the editor: ours may have been
            // sent before it.
            if !holds {
                return Err(Error::Unconfirmed(format!(
                    "the newest user message is not this prompt but {}, and the prompt is no longer in the editor",
                    preview(newest)
                )));
            }
            // Someone else's message, while ours still waits in the editor: go on.
        }
        // Another sender has the editor: what it does there can no longer be told
        // from what became of ours.
        if !now.claimed {
            return Err(Error::Unconfirmed(
                "another sender took the editor after the Enter, before the page showed the prompt"
                    .into(),
            ));
        }
        let at = Instant::now();
        if normalized(&now.text).is_empty() {
            let since = *emptied_at.get_or_insert(at);
            // Pages with no readable user message: the emptied editor is the evidence.
            if at >= since + USER_MESSAGE_GRACE {
                return Ok(());
            }
        } else {
            emptied_at = None;
        }
        if at >= deadline && emptied_at.is_none() {
            // Other text in the editor: ours may have been sent, and that typed since.
            if !holds {
                return Err(Error::Unconfirmed(format!(
                    "the editor holds {} instead of the prompt, and no user message showed it within {}",
                    preview(&now.text),
                    crate::show::duration(SUBMIT_EFFECT_WITHIN)
                )));
            }
            let why = if now.busy {
                format!(
                    "the agent is busy ({}) in a turn angrav did not start, and the prompt is still in the editor",
                    now.state.name()
                )
            } else {
                format!(
                    "the page did not take it within {}",
                    crate::show::duration(SUBMIT_EFFECT_WITHIN)
                )
            };
            let note = restore(panel, claim, text, draft)?;
            return Err(Error::NotDelivered(format!("{why}; {note}")));
        }
        if send_button_at.is_some_and(|t| at >= t) {
            send_button_at = None;
            let untaken = now.enter.is_some_and(|e| !e.prevented);
            if untaken && holds && !now.busy && now.users == typed.users {
                panel.click_send()?;
            }
        }
        let wake = [
            emptied_at.is_none().then_some(deadline),
            send_button_at,
            emptied_at.map(|t| t + USER_MESSAGE_GRACE),
            Some(at + Claim::RENEW_EVERY),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(deadline);
        now = panel.editor_watch(claim, &now.key, wake.saturating_duration_since(at))?;
    }
}

/// Takes the prompt out of the editor again (putting back a replaced draft), when
/// the editor still holds it; says what became of the editor.
fn restore(panel: &mut Panel, claim: &Claim, text: &str, draft: &str) -> Result<String, Error> {
    let deadline = Instant::now() + SUBMIT_EFFECT_WITHIN;
    let mut now = panel.editor(claim)?;
    // Read-only while the agent works: wait a little for it to take input again.
    while normalized(&now.text) == normalized(text) && !now.editable {
        let at = Instant::now();
        if at >= deadline {
            return Ok("the prompt is still in the editor (read-only while the agent works): remove it there".into());
        }
        let wait = deadline.min(at + Claim::RENEW_EVERY) - at;
        now = panel.editor_watch(claim, &now.key, wait)?;
    }
    if normalized(&now.text) != normalized(text) {
        return Ok(if normalized(&now.text) == normalized(draft) {
            "the editor is as it was".into()
        } else {
            "the editor is left as the page has it".into()
        });
    }
    if panel.prepare(claim)?.is_ok() {
        if draft.is_empty() {
            panel.press_backspace()?;
        } else {
            panel.insert_text(draft)?;
        }
    }
    let after = panel.editor(claim)?;
    Ok(if normalized(&after.text) == normalized(draft) {
        "the editor is as it was".into()
    } else {
        "the prompt is still in the editor: remove it there".into()
    })
}

/// After delivery: waits, within `within`, for the turn to show it started.
fn await_start(panel: &mut Panel, before: &Snapshot, within: Duration) -> Result<Sent, Error> {
    let baseline = Baseline {
        agent_messages: before.agent_messages,
        answer_blocks: before.answer_blocks,
    };
    let deadline = Instant::now() + within;
    let mut snapshot = panel.probe()?;
    loop {
        let started = snapshot.busy || baseline.answered(&snapshot);
        let at = Instant::now();
        if started || at >= deadline {
            return Ok(Sent {
                baseline,
                snapshot,
                started,
            });
        }
        snapshot = panel.watch(&snapshot.key, (deadline - at).min(HEARTBEAT))?;
    }
}

/// Text as compared across the editor, the page's rendering and the prompt: every
/// run of whitespace (newlines, NBSP, tabs, paragraph breaks) as one space, trimmed.
/// Whitespace is all a contenteditable or a rendered message changes.
fn normalized(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The same text as the page shows it and as it was typed (see [`normalized`]).
pub fn same_text(shown: &str, typed: &str) -> bool {
    shown.split_whitespace().eq(typed.split_whitespace())
}

/// A short quote of page or user text for a message.
fn preview(text: &str) -> String {
    let t = normalized(text);
    let cut: String = t.chars().take(40).collect();
    if cut.len() < t.len() {
        format!("\"{cut}…\"")
    } else {
        format!("\"{cut}\"")
    }
}

/// Decides, from one session's snapshots as they come, when its agent has stopped.
/// The same rules serve a single `wait` and the multi-session waiter.
#[derive(Debug, Clone)]
pub struct Tracker {
    turn: Option<Baseline>,
    settle: Duration,
    busy_seen: bool,
    idle_since: Option<Instant>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Idle for the settle time, awaiting approval or an answer to its question, or
    /// in error.
    Stopped,
    /// Not yet; look again at `wake` even if nothing changes (the settle time ends).
    Pending { wake: Option<Instant> },
}

impl Tracker {
    /// With a baseline, the agent has stopped only after that prompt's turn started.
    pub fn new(turn: Option<Baseline>, settle: Duration) -> Tracker {
        Tracker {
            turn,
            settle,
            busy_seen: false,
            idle_since: None,
        }
    }

    pub fn set_turn(&mut self, turn: Baseline) {
        *self = Tracker::new(Some(turn), self.settle);
    }

    /// The prompt's turn has shown it started (busy seen, or a new answer); true
    /// without a prompt.
    pub fn started(&self, snap: &Snapshot) -> bool {
        self.turn.is_none_or(|b| self.busy_seen || b.answered(snap))
    }

    pub fn observe(&mut self, snap: &Snapshot, now: Instant) -> Verdict {
        self.busy_seen |= snap.busy;
        let started = self.started(snap);
        match snap.state {
            // Waiting for the user (an approval, a question form) ends the turn's wait as
            // an error does: nothing goes on until someone answers.
            State::Error | State::AwaitingApproval | State::AwaitingInput if started => {
                return Verdict::Stopped;
            }
            // Idle with the user's message still unanswered, and no busy marker seen yet:
            // the agent has yet to start. (Once it has shown busy, an unanswered message
            // must not hold the wait: answer markers may have drifted.)
            State::Idle if started && (!snap.turn_open || self.busy_seen) => {
                let since = *self.idle_since.get_or_insert(now);
                if now >= since + self.settle {
                    return Verdict::Stopped;
                }
            }
            // No panel mid-wait: most likely a reload; keep waiting.
            _ => self.idle_since = None,
        }
        Verdict::Pending {
            wake: self.idle_since.map(|s| s + self.settle),
        }
    }
}

/// Waits until the agent is idle (for the settle time, with no prompt left
/// unanswered), past approvals and errors, before `deadline`: what a prompt sent
/// "when idle" waits for.
pub fn wait_idle(
    panel: &mut Panel,
    first: Snapshot,
    settle: Duration,
    deadline: Option<Instant>,
) -> Result<Waited, Error> {
    let until = Until {
        turn: None,
        settle,
        accept: |s| s == State::Idle,
        deadline,
        stall_after: None,
    };
    wait_until(panel, first, until)
}

/// What [`wait_until`] waits for.
#[derive(Debug, Clone, Copy)]
pub struct Until {
    /// The prompt whose turn must have started (see [`Tracker::new`]).
    pub turn: Option<Baseline>,
    pub settle: Duration,
    /// Which of the states the agent stopped in end the wait (others: wait on).
    pub accept: fn(State) -> bool,
    pub deadline: Option<Instant>,
    /// A page whose document shows no change at all (no DOM mutation) for this long
    /// is stalled.
    pub stall_after: Option<Duration>,
}

/// How a wait ended.
#[derive(Debug, Clone)]
pub enum Waited {
    /// The agent stopped in an accepted state.
    Stopped(Snapshot),
    /// Nothing changed in the page for `stall_after`.
    Stalled(Snapshot),
    /// The deadline passed first.
    TimedOut(Snapshot),
}

/// Watches the agent until it stops in a state `until` accepts, stalls, or the
/// deadline passes.
pub fn wait_until(panel: &mut Panel, first: Snapshot, until: Until) -> Result<Waited, Error> {
    let mut tracker = Tracker::new(until.turn, until.settle);
    let mut snap = first;
    let mut changed_at = Instant::now();
    loop {
        let now = Instant::now();
        let settles = match tracker.observe(&snap, now) {
            Verdict::Stopped if (until.accept)(snap.state) => return Ok(Waited::Stopped(snap)),
            Verdict::Stopped => None,
            Verdict::Pending { wake } => wake,
        };
        if until.deadline.is_some_and(|d| now >= d) {
            return Ok(Waited::TimedOut(snap));
        }
        let wake = [settles, until.deadline, Some(now + HEARTBEAT)]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(now + HEARTBEAT);
        let next = match until.stall_after.map(|s| changed_at + s) {
            Some(stalls) if now >= stalls => return Ok(Waited::Stalled(snap)),
            // The page also says when it has been still for the rest of the stall time.
            Some(stalls) => {
                panel.watch_quiet(&snap.key, wake.saturating_duration_since(now), stalls - now)?
            }
            None => panel.watch(&snap.key, wake.saturating_duration_since(now))?,
        };
        let at = Instant::now();
        match next.quiet_ms {
            Some(ago) => changed_at = at - Duration::from_millis(ago),
            None if next.key != snap.key => changed_at = at,
            None => {}
        }
        snap = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(state: State, busy: bool, agent_messages: u32, turn_open: bool) -> Snapshot {
        Snapshot {
            state,
            layout: None,
            busy,
            error: None,
            quota_resume: None,
            approvals: Vec::new(),
            approval: None,
            input_found: true,
            input_editable: !busy,
            user_messages: 1,
            agent_messages,
            answer_blocks: agent_messages,
            turn_open,
            title: None,
            mode: None,
            model: None,
            unreadable: Vec::new(),
            question: None,
            answered: Vec::new(),
            markers: Vec::new(),
            key: String::new(),
            panel_frame: false,
            quiet_ms: None,
            v2: false,
            top: false,
        }
    }

    const SETTLE: Duration = Duration::from_millis(400);

    /// A tracker for the turn of a prompt sent when the chat had `n` answers.
    fn turn_after(n: u32) -> Tracker {
        Tracker::new(
            Some(Baseline {
                agent_messages: n,
                answer_blocks: n,
            }),
            SETTLE,
        )
    }

    fn at(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    #[test]
    fn text_compares_as_an_editor_or_a_rendered_message_shows_it() {
        let typed = "line one\r\nline two\n\n  indented\ttab\n";
        assert_eq!(normalized(typed), "line one line two indented tab");
        assert_eq!(
            normalized("line one\u{a0}line two\nindented tab"),
            normalized(typed)
        );
        // Merged or partial texts never compare equal.
        assert_ne!(normalized("AAA1BBB1"), normalized("AAA1"));
        assert_ne!(normalized("AAA 1"), normalized("AAA1"));
        assert_eq!(normalized(" \n\u{a0}"), "");
        assert_eq!(preview("short"), "\"short\"");
        assert_eq!(preview(&"x".repeat(50)), format!("\"{}…\"", "x".repeat(40)));
    }

    #[test]
    fn idle_must_hold_for_the_settle_time() {
        let t0 = Instant::now();
        let mut t = Tracker::new(None, SETTLE);
        let idle = snap(State::Idle, false, 1, false);
        assert_eq!(
            t.observe(&idle, t0),
            Verdict::Pending {
                wake: Some(at(t0, 400))
            }
        );
        assert_eq!(
            t.observe(&idle, at(t0, 399)),
            Verdict::Pending {
                wake: Some(at(t0, 400))
            }
        );
        assert_eq!(t.observe(&idle, at(t0, 400)), Verdict::Stopped);
    }

    #[test]
    fn a_busy_flicker_shorter_than_the_settle_time_does_not_end_a_turn() {
        let t0 = Instant::now();
        let mut t = turn_after(0);
        assert!(matches!(
            t.observe(&snap(State::Thinking, true, 1, false), t0),
            Verdict::Pending { .. }
        ));
        // Off for 150 ms, then busy again: the idle clock starts over.
        assert!(matches!(
            t.observe(&snap(State::Idle, false, 1, false), at(t0, 100)),
            Verdict::Pending { .. }
        ));
        assert!(matches!(
            t.observe(&snap(State::Thinking, true, 1, false), at(t0, 250)),
            Verdict::Pending { .. }
        ));
        let done = snap(State::Idle, false, 1, false);
        assert_eq!(
            t.observe(&done, at(t0, 600)),
            Verdict::Pending {
                wake: Some(at(t0, 1000))
            }
        );
        assert_eq!(t.observe(&done, at(t0, 1000)), Verdict::Stopped);
    }

    #[test]
    fn a_prompt_not_started_yet_is_not_finished() {
        let t0 = Instant::now();
        // After a prompt, before the agent shows anything: idle, nothing new.
        let mut t = turn_after(2);
        let before = snap(State::Idle, false, 2, true);
        assert_eq!(t.observe(&before, t0), Verdict::Pending { wake: None });
        assert_eq!(
            t.observe(&before, at(t0, 5000)),
            Verdict::Pending { wake: None }
        );
        // Without a baseline, an unanswered user message holds the wait the same way.
        let mut t = Tracker::new(None, SETTLE);
        assert_eq!(
            t.observe(&before, at(t0, 5000)),
            Verdict::Pending { wake: None }
        );
        // Once busy was seen, idle ends the turn even with no answer marker matched.
        assert!(matches!(
            t.observe(&snap(State::Thinking, true, 2, true), at(t0, 5100)),
            Verdict::Pending { .. }
        ));
        assert!(matches!(
            t.observe(&before, at(t0, 5200)),
            Verdict::Pending { wake: Some(_) }
        ));
        assert_eq!(t.observe(&before, at(t0, 5600)), Verdict::Stopped);
    }

    #[test]
    fn approval_a_question_and_error_stop_a_started_turn_at_once() {
        let t0 = Instant::now();
        let mut t = turn_after(0);
        assert_eq!(
            t.observe(&snap(State::AwaitingApproval, true, 1, false), t0),
            Verdict::Stopped
        );
        for state in [State::AwaitingInput, State::Error] {
            let mut t = Tracker::new(None, SETTLE);
            assert_eq!(
                t.observe(&snap(state, false, 1, false), t0),
                Verdict::Stopped
            );
        }
        // A question form shows without the busy marker: once the turn showed busy.
        let mut t = turn_after(0);
        assert_ne!(
            t.observe(&snap(State::AwaitingInput, false, 0, true), t0),
            Verdict::Stopped
        );
        t.observe(&snap(State::Thinking, true, 0, true), t0);
        assert_eq!(
            t.observe(&snap(State::AwaitingInput, false, 0, true), t0),
            Verdict::Stopped
        );
    }
}
