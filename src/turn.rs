//! One agent's turns: sending a prompt and knowing when the answer is complete.
//!
//! A turn has started only when the user's message shows or the busy marker does; it
//! is finished when the agent is idle and has stayed idle for the settle time (the
//! busy marker flickers during a turn), or when it stops to ask for approval or on
//! an error. Every wait is driven by the page's own change notifications.

use std::time::{Duration, Instant};

use crate::Error;
use crate::panel::{Panel, Snapshot, State};

/// The longest one `watch` waits in the page before reporting back anyway: also how
/// long a watch angrav left behind (killed mid-wait) may linger in the page.
pub const HEARTBEAT: Duration = Duration::from_secs(10);

/// How long after Enter a prompt still in the editor is sent with the send button.
const SEND_BUTTON_AFTER: Duration = Duration::from_secs(1);

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

/// Types `text` into the editor and submits it, then confirms the turn started.
/// A busy agent is refused, not interrupted. Returns the turn's baseline with the
/// snapshot that showed it started (a wait can begin from it).
pub fn send_prompt(
    panel: &mut Panel,
    text: &str,
    accept_within: Duration,
) -> Result<(Baseline, Snapshot), Error> {
    let before = panel.probe()?;
    match before.state {
        State::NoPanel => return Err(Error::NoPanel),
        State::Thinking | State::AwaitingApproval => {
            return Err(Error::NotAccepted(format!(
                "the agent is busy ({}); wait for it with 'angrav wait' first",
                before.state.name()
            )));
        }
        State::Idle | State::Error => {}
    }
    if !before.input_found {
        return Err(Error::NotAccepted("editor not found".into()));
    }
    if !before.input_editable {
        return Err(Error::NotAccepted("input read-only".into()));
    }
    if text.trim().is_empty() {
        return Err(Error::Usage("the prompt is empty".into()));
    }
    panel.focus_input().map_err(Error::NotAccepted)?;
    panel.insert_text(text)?;
    panel.press_enter()?;
    let deadline = Instant::now() + accept_within;
    // A page that does not send on Enter gets its send button clicked after a moment.
    let mut send_button_at = Some(Instant::now() + SEND_BUTTON_AFTER);
    let mut now = panel.probe()?;
    loop {
        // Evidence of a turn: the user's message, the busy marker, or a new answer.
        let started = now.user_messages > before.user_messages
            || now.busy
            || now.agent_messages > before.agent_messages
            || now.answer_blocks > before.answer_blocks;
        if started {
            let baseline = Baseline {
                agent_messages: before.agent_messages,
                answer_blocks: before.answer_blocks,
            };
            return Ok((baseline, now));
        }
        let at = Instant::now();
        if at >= deadline {
            return Err(Error::NotAccepted(format!(
                "no user message, busy marker or answer appeared within {}",
                crate::cli::show_duration(accept_within)
            )));
        }
        if send_button_at.is_some_and(|t| at >= t) {
            send_button_at = None;
            panel.click_send()?;
        }
        let wake = send_button_at.map_or(deadline, |t| t.min(deadline));
        now = panel.watch(&now.key, wake.saturating_duration_since(at))?;
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
    /// Idle for the settle time, awaiting approval, or in error.
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

    pub fn observe(&mut self, snap: &Snapshot, now: Instant) -> Verdict {
        self.busy_seen |= snap.busy;
        let started = self.turn.is_none_or(|b| {
            self.busy_seen
                || snap.agent_messages > b.agent_messages
                || snap.answer_blocks > b.answer_blocks
        });
        match snap.state {
            State::Error | State::AwaitingApproval if started => return Verdict::Stopped,
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

/// Waits until the agent has stopped (see [`Tracker`]).
pub fn wait_stopped(
    panel: &mut Panel,
    first: Snapshot,
    turn: Option<Baseline>,
    opts: WaitOptions,
) -> Result<Snapshot, Error> {
    if first.state == State::NoPanel {
        return Err(Error::NoPanel);
    }
    let deadline = Instant::now() + opts.timeout;
    let mut tracker = Tracker::new(turn, opts.settle);
    let mut snap = first;
    loop {
        let now = Instant::now();
        let wake = match tracker.observe(&snap, now) {
            Verdict::Stopped => return Ok(snap),
            Verdict::Pending { wake } => wake.map_or(deadline, |w| w.min(deadline)),
        };
        if now >= deadline {
            return Err(Error::Timeout {
                after: opts.timeout,
                pending: format!("the agent ({})", snap.state.name()),
            });
        }
        snap = panel.watch(
            &snap.key,
            wake.saturating_duration_since(now).min(HEARTBEAT),
        )?;
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
            markers: Vec::new(),
            key: String::new(),
            panel_frame: false,
            v2: false,
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
    fn approval_and_error_stop_a_started_turn_at_once() {
        let t0 = Instant::now();
        let mut t = turn_after(0);
        assert_eq!(
            t.observe(&snap(State::AwaitingApproval, true, 1, false), t0),
            Verdict::Stopped
        );
        let mut t = Tracker::new(None, SETTLE);
        assert_eq!(
            t.observe(&snap(State::Error, false, 1, false), t0),
            Verdict::Stopped
        );
    }
}
