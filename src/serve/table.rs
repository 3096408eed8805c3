//! The state of every session, kept in memory from one set of monitors (one thread per
//! window, new windows followed), and the events pushed to subscribers. `sessions.list`
//! and `status` answer from here without touching a page.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::{Receiver, Sender, select};
use serde::Serialize;
use serde_json::{Value, json};

use super::Shared;
use super::lock;
use super::ws::Outbox;
use crate::event::Event;
use crate::hooks::Hooks;
use crate::monitor::{Monitors, Update};
use crate::panel::{Approval, Layout, Snapshot, State, WindowRef};
use crate::registry::Listed;
use crate::results::SessionStatus;
use crate::sessions::Session;
use crate::timestamp::rfc3339;

/// How long the start waits for the first state of the windows open then.
const FIRST_SNAPSHOTS: Duration = Duration::from_secs(15);

struct Row {
    session: Session,
    snapshot: Option<Snapshot>,
    /// When the session entered its state.
    since: SystemTime,
    /// The window opened after the start (its first state is a `new_session` hook).
    appeared: bool,
}

/// A session as `sessions.list` gives it: the fields of `sessions list --json`, with
/// when it entered its state, and its approvals or error.
#[derive(Serialize)]
struct RowView<'a> {
    session: &'a Session,
    state: Option<State>,
    layout: Option<Layout>,
    since: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
    approvals: &'a [String],
    /// What the agent waits for: its kind and command, for the dashboard's buttons.
    #[serde(skip_serializing_if = "Option::is_none")]
    approval: Option<&'a Approval>,
}

impl Row {
    fn view(&self) -> RowView<'_> {
        let snap = self.snapshot.as_ref();
        RowView {
            session: &self.session,
            state: snap.map(|s| s.state),
            layout: snap.and_then(|s| s.layout),
            since: rfc3339(self.since),
            error: snap.and_then(|s| s.error.as_deref()),
            approvals: snap.map(|s| s.approvals.as_slice()).unwrap_or_default(),
            approval: snap.and_then(|s| s.approval.as_ref()),
        }
    }
}

#[derive(Serialize)]
/// One event as subscribers get it: `{"event": {...}}`.
struct Push<'a> {
    event: Event<'a>,
}

/// The sessions, the event counter and the subscribers, under one lock: a subscriber
/// gets the table and then every event after it, none twice, none missed.
#[derive(Default)]
pub struct Table {
    rows: Vec<Row>,
    seq: u64,
    subscribers: HashMap<u64, Arc<Outbox>>,
}

impl Table {
    pub fn sessions(&self) -> Vec<Session> {
        self.rows.iter().map(|r| r.session.clone()).collect()
    }

    pub fn list(&self) -> Value {
        serde_json::to_value(self.rows.iter().map(Row::view).collect::<Vec<_>>())
            .expect("rows serialise")
    }

    /// `sessions.list`: the rows of `sessions list`. A page that does not answer
    /// shows why, as there.
    pub fn listed(&self) -> Vec<Listed> {
        self.rows
            .iter()
            .map(|r| {
                let snap = r.snapshot.as_ref();
                Listed {
                    session: r.session.clone(),
                    state: snap.map(|s| s.state),
                    layout: snap.and_then(|s| s.layout),
                    problem: snap
                        .filter(|s| s.state == State::Unresponsive)
                        .and_then(|s| s.error.clone()),
                }
            })
            .collect()
    }

    /// `status`: the session with its latest snapshot (none before its first).
    pub fn status(&self, target_id: &str) -> Option<SessionStatus> {
        let row = self
            .rows
            .iter()
            .find(|r| r.session.target_id == target_id)?;
        Some(SessionStatus {
            session: row.session.clone(),
            snapshot: row.snapshot.clone()?,
        })
    }

    /// Ids of the sessions idle now.
    pub fn idle(&self) -> Vec<Session> {
        self.rows
            .iter()
            .filter(|r| r.snapshot.as_ref().is_some_and(|s| s.state == State::Idle))
            .map(|r| r.session.clone())
            .collect()
    }

    /// Replies to a `subscribe` with the table and the current seq, then pushes the
    /// client every later event.
    pub fn subscribe(&mut self, client: &Arc<Outbox>, id: &Value) {
        let reply = json!({ "id": id, "result": { "seq": self.seq, "sessions": self.list() } });
        if client.send(reply.to_string()) {
            self.subscribers.insert(client.id(), client.clone());
        }
    }

    pub fn unsubscribe(&mut self, client: u64) -> bool {
        self.subscribers.remove(&client).is_some()
    }

    /// Where the row of `target_id` is.
    fn index_of(&self, target_id: &str) -> Option<usize> {
        self.rows
            .iter()
            .position(|r| r.session.target_id == target_id)
    }

    /// Pushes an event about `row` to every subscriber; `at`: when it happened.
    fn broadcast(
        &mut self,
        kind: &str,
        row: &Row,
        previous: Option<State>,
        reason: Option<&str>,
        at: SystemTime,
    ) {
        self.seq += 1;
        let snap = row.snapshot.as_ref().filter(|_| kind != "session_closed");
        let mut event = Event::new(kind, &row.session, snap, previous, rfc3339(at), reason);
        event.seq = self.seq;
        let text = serde_json::to_string(&Push { event }).expect("an event serialises");
        // A client that cannot take it is dropped (see `Outbox::send`), never waited for.
        self.subscribers.retain(|_, c| c.send(text.clone()));
    }
}

/// The hub: applies every monitor update to the table, pushes events, feeds the hooks.
pub struct Hub {
    pub shared: Arc<Shared>,
    pub monitors: Monitors,
    pub updates: Receiver<Update>,
    pub hooks: Option<Hooks>,
}

impl Hub {
    /// Fills the table with `sessions` and starts following them. `ready` gets `()`
    /// once each has its first state (or after a while), and the hub runs until
    /// `stop` says so; then every monitor is stopped.
    pub fn run(mut self, sessions: Vec<Session>, ready: Sender<()>, stop: Receiver<()>) {
        {
            let mut table = lock(&self.shared.table);
            for s in sessions {
                self.monitors.spawn(&s, None);
                table.rows.push(Row {
                    session: s,
                    snapshot: None,
                    since: SystemTime::now(),
                    appeared: false,
                });
            }
        }
        let ready_by = Instant::now() + FIRST_SNAPSHOTS;
        let mut ready = Some(ready);
        loop {
            let waiting = ready.is_some()
                && lock(&self.shared.table)
                    .rows
                    .iter()
                    .any(|r| r.snapshot.is_none());
            if !waiting && let Some(r) = ready.take() {
                let _ = r.send(());
            }
            let timer = match ready {
                Some(_) => crossbeam_channel::at(ready_by),
                None => crossbeam_channel::never(),
            };
            select! {
                recv(self.updates) -> u => match u {
                    Ok(u) => self.apply(u),
                    Err(_) => break,
                },
                recv(timer) -> _ => {
                    if let Some(r) = ready.take() {
                        let _ = r.send(());
                    }
                }
                recv(stop) -> _ => break,
            }
        }
        // Monitors blocked on a full channel must see it closed before they can stop.
        drop(self.updates);
        self.monitors.stop();
    }

    fn apply(&mut self, update: Update) {
        let shared = self.shared.clone();
        let mut table = lock(&shared.table);
        match update {
            Update::Changed {
                target_id,
                snapshot,
                ..
            } => {
                let Some(i) = table.index_of(&target_id) else {
                    return;
                };
                let row = &mut table.rows[i];
                let previous = row.snapshot.as_ref().map(|s| s.state);
                if let Some(h) = &self.hooks {
                    h.state(&row.session, &snapshot, previous.is_none() && row.appeared);
                }
                if previous != Some(snapshot.state) {
                    row.since = SystemTime::now();
                }
                let current = snapshot.state;
                row.snapshot = Some(snapshot);
                let kind = match previous {
                    None => "new_session",
                    Some(p) if p != current => "state_change",
                    // The same state with other details: the table has them.
                    Some(_) => return,
                };
                let row = table.rows.remove(i);
                table.broadcast(kind, &row, previous, None, row.since);
                table.rows.insert(i, row);
            }
            Update::Closed {
                target_id, reason, ..
            } => {
                let Some(i) = table.index_of(&target_id) else {
                    return;
                };
                let row = table.rows.remove(i);
                if let Some(h) = &self.hooks {
                    h.closed(&row.session, &reason);
                }
                let previous = row.snapshot.as_ref().map(|s| s.state);
                table.broadcast(
                    "session_closed",
                    &row,
                    previous,
                    Some(&reason),
                    SystemTime::now(),
                );
            }
            Update::Appeared {
                endpoint,
                target_id,
                title,
                url,
                ws_url,
            } => {
                if table.rows.iter().any(|r| r.session.target_id == target_id) {
                    return;
                }
                let mut all: Vec<String> = table
                    .rows
                    .iter()
                    .map(|r| r.session.target_id.clone())
                    .collect();
                all.push(target_id.clone());
                let session = Session::new(
                    WindowRef::new(endpoint, target_id, ws_url),
                    title,
                    url,
                    &all,
                    &shared.profile,
                );
                self.monitors.spawn(&session, None);
                table.rows.push(Row {
                    session,
                    snapshot: None,
                    since: SystemTime::now(),
                    appeared: true,
                });
            }
            Update::Retitled { target_id, title } => {
                if let Some(r) = table
                    .rows
                    .iter_mut()
                    .find(|r| r.session.target_id == target_id)
                {
                    r.session.retitle(title, &shared.profile);
                }
            }
            // Its sessions follow as `unresponsive`, and are back or closed after.
            Update::EndpointLost {
                endpoint, reason, ..
            } => warn!(
                "angrav: serve: lost {} ({reason}); retrying",
                endpoint.label()
            ),
            Update::EndpointBack { endpoint, .. } => {
                warn!("angrav: serve: {} answers again", endpoint.label())
            }
            // serve sets no stall time.
            Update::Prompted { .. } | Update::Still { .. } => {}
        }
    }
}
