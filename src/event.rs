//! One event about a chat, as every part that reports events writes it: the lines of
//! `sessions watch`, the pushes of `serve`, and what hooks get on stdin. Its shape is
//! `watch_event` in [`crate::schema`].

use serde::Serialize;

use crate::panel::{Answered, Approval, Layout, Question, Snapshot, State};
use crate::sessions::Session;

#[derive(Debug, Serialize)]
pub struct Event<'a> {
    pub seq: u64,
    #[serde(rename = "type")]
    pub kind: &'a str,
    pub session: &'a Session,
    pub previous: Option<State>,
    pub current: Option<State>,
    /// RFC 3339.
    pub timestamp: String,
    /// Snapshot lines only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layout: Option<Layout>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'a str>,
    #[serde(skip_serializing_if = "<[Approval]>::is_empty")]
    pub approvals: &'a [Approval],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval: Option<&'a Approval>,
    /// What a question form asks (`awaiting_input`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub question: Option<&'a Question>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'a str>,
    /// `approval_resolved`: `angrav` (with the policy `rule` or the `client`, and the
    /// choice `pressed`) or `elsewhere` (a person in the IDE, another tool).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pressed: Option<&'a str>,
}

/// What a chat's new reading `now` is as an event, after `before` (none: its first),
/// given whether its approvals `changed` (see [`crate::approve::changes`]); none when
/// only details a watcher reads in the table changed.
pub fn kind_of(before: Option<&Snapshot>, now: &Snapshot, changed: bool) -> Option<&'static str> {
    match before {
        None => Some("new_session"),
        Some(b) if b.state != now.state => Some("state_change"),
        // The same state asking something else: a watcher shows it at once.
        Some(_) if changed => Some("approval_changed"),
        Some(b) if b.question != now.question => Some("question_changed"),
        Some(_) => None,
    }
}

impl<'a> Event<'a> {
    /// An event about `session`, with the details of `snap` (the state it is in now;
    /// none for a chat that closed). `seq` and `layout` are the caller's to set.
    pub fn new(
        kind: &'a str,
        session: &'a Session,
        snap: Option<&'a Snapshot>,
        previous: Option<State>,
        timestamp: String,
        reason: Option<&'a str>,
    ) -> Event<'a> {
        Event {
            seq: 0,
            kind,
            session,
            previous,
            current: snap.map(|s| s.state),
            timestamp,
            layout: None,
            error: snap.and_then(|s| s.error.as_deref()),
            approvals: snap.map(|s| s.approvals.as_slice()).unwrap_or_default(),
            approval: snap.and_then(|s| s.approval.as_ref()),
            question: snap.and_then(|s| s.question.as_deref()),
            reason,
            by: None,
            rule: None,
            client: None,
            pressed: None,
        }
    }

    /// The `approval_resolved` event of `approval`, answered as `noted` says (none:
    /// elsewhere).
    pub fn resolved(mut self, approval: &'a Approval, noted: Option<&'a Answered>) -> Event<'a> {
        self.approval = Some(approval);
        self.by = Some(if noted.is_some() {
            "angrav"
        } else {
            "elsewhere"
        });
        if let Some(n) = noted {
            self.rule = n.by["rule"].as_u64();
            self.client = n.by["client"].as_str();
            self.pressed = Some(&n.label);
        }
        self
    }
}
