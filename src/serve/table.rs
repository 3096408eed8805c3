//! The state of every session, kept in memory from one set of monitors (one thread per
//! window, new windows followed), and the events pushed to subscribers. `sessions.list`
//! and `status` answer from here without touching a page.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::{Receiver, Sender, select};
use serde::Serialize;
use serde_json::{Value, json};

use super::Shared;
use super::lock;
use super::upstream;
use super::ws::Outbox;
use crate::approve;
use crate::client::mark_host;
use crate::event::{self, Event};
use crate::hooks::Hooks;
use crate::monitor::{self, Monitors, Update};
use crate::panel::{Approval, Layout, Question, Snapshot, State};
use crate::registry::Listed;
use crate::results::SessionStatus;
use crate::sessions::Session;
use crate::timestamp::rfc3339;

/// How long the start waits for the first state of the windows open then.
pub const FIRST_SNAPSHOTS: Duration = Duration::from_secs(15);

struct Row {
    session: Session,
    snapshot: Option<Snapshot>,
    /// When the session entered its state: when angrav saw it change, else when it
    /// was first read (`since_seen` false: the state was there before).
    since: SystemTime,
    since_seen: bool,
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
    /// false: the state was already there when serve started (`since` is then when
    /// serve first read it).
    since_seen: bool,
    /// The groups (`angrav group`) it is in.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    groups: Vec<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
    approvals: &'a [Approval],
    /// What the agent waits for: its kind and command, for the dashboard's buttons.
    #[serde(skip_serializing_if = "Option::is_none")]
    approval: Option<&'a Approval>,
    /// What a question form asks (`awaiting_input`), for the dashboard to show.
    #[serde(skip_serializing_if = "Option::is_none")]
    question: Option<&'a Question>,
}

impl Row {
    fn view<'a>(&'a self, groups: &'a [(String, Vec<String>)]) -> RowView<'a> {
        let snap = self.snapshot.as_ref();
        RowView {
            groups: groups
                .iter()
                .filter(|(_, ids)| ids.contains(&self.session.target_id))
                .map(|(g, _)| g.as_str())
                .collect(),
            session: &self.session,
            state: snap.map(|s| s.state),
            layout: snap.and_then(|s| s.layout),
            since: rfc3339(self.since),
            since_seen: self.since_seen,
            error: snap.and_then(|s| s.error.as_deref()),
            approvals: snap.map(|s| s.approvals.as_slice()).unwrap_or_default(),
            approval: snap.and_then(|s| s.approval.as_ref()),
            question: snap.and_then(|s| s.question.as_deref()),
        }
    }
}

/// The sessions, the event counter and the subscribers, under one lock: a subscriber
/// gets the table and then every event after it, none twice, none missed.
#[derive(Default)]
pub struct Table {
    rows: Vec<Row>,
    /// The sessions of the upstreams a hub follows.
    remote: Vec<RemoteRow>,
    /// The groups as serve started, each with its target ids.
    groups: Vec<(String, Vec<String>)>,
    seq: u64,
    subscribers: HashMap<u64, Arc<Outbox>>,
    /// The endpoints (browsers) of serve's own reported lost and not back yet.
    lost: BTreeSet<String>,
}

/// The details of a row or an event that go with its state.
const DETAILS: [&str; 4] = ["error", "approvals", "approval", "question"];

/// A session of an upstream: its session (marked with the upstream's `host`) and its
/// row as the upstream gives it (state, layout, since, and its [`DETAILS`]).
struct RemoteRow {
    /// Which upstream.
    at: usize,
    session: Session,
    view: Value,
}

impl RemoteRow {
    fn state(&self) -> Option<State> {
        serde_json::from_value(self.view["state"].clone()).ok()
    }

    /// Takes the state and details an event or a table row gives.
    fn take(&mut self, from: &Value) {
        for k in DETAILS {
            match from.get(k) {
                Some(v) => self.view[k] = v.clone(),
                None => {
                    if let Some(o) = self.view.as_object_mut() {
                        o.remove(k);
                    }
                }
            }
        }
    }
}

impl Table {
    pub fn sessions(&self) -> Vec<Session> {
        self.rows.iter().map(|r| r.session.clone()).collect()
    }

    pub fn with_groups(groups: Vec<(String, Vec<String>)>) -> Table {
        Table {
            groups,
            ..Table::default()
        }
    }

    /// The sessions of the upstreams.
    pub fn remote_sessions(&self) -> Vec<Session> {
        self.remote.iter().map(|r| r.session.clone()).collect()
    }

    pub fn list(&self) -> Value {
        let mut rows: Vec<Value> = self
            .rows
            .iter()
            .map(|r| serde_json::to_value(r.view(&self.groups)).expect("rows serialise"))
            .collect();
        rows.extend(self.remote.iter().map(|r| r.view.clone()));
        Value::Array(rows)
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
                    approvals: snap.map(|s| s.approvals.clone()).unwrap_or_default(),
                }
            })
            .chain(self.remote.iter().map(|r| {
                let state = r.state();
                Listed {
                    session: r.session.clone(),
                    state,
                    layout: serde_json::from_value(r.view["layout"].clone()).unwrap_or(None),
                    problem: r.view["error"]
                        .as_str()
                        .filter(|_| state == Some(State::Unresponsive))
                        .map(String::from),
                    approvals: serde_json::from_value(r.view["approvals"].clone())
                        .unwrap_or_default(),
                }
            }))
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
        let snap = row.snapshot.as_ref().filter(|_| kind != "session_closed");
        let event = Event::new(kind, &row.session, snap, previous, rfc3339(at), reason);
        self.push(serde_json::to_value(event).expect("an event serialises"));
    }

    /// Pushes `event` to every subscriber, numbered with the next seq.
    fn push(&mut self, mut event: Value) {
        self.seq += 1;
        event["seq"] = json!(self.seq);
        let text = json!({ "event": event }).to_string();
        // A client that cannot take it is dropped (see `Outbox::send`), never waited for.
        self.subscribers.retain(|_, c| c.send(text.clone()));
    }

    /// `endpoint_lost` or `endpoint_back` for a browser or an upstream.
    pub fn endpoint(&mut self, label: &str, kind: &str, reason: Option<&str>) {
        let mut event = json!({ "type": kind, "endpoint": label, "timestamp": upstream::now() });
        if let Some(r) = reason {
            event["reason"] = json!(r);
        }
        self.push(event);
    }

    /// An upstream's table, as a subscription to it gives it (first, and each time
    /// it is back): rows added, changed and gone become events here.
    pub fn upstream_table(&mut self, at: usize, host: &str, table: &Value) {
        let mut incoming: Vec<Value> = table["sessions"].as_array().cloned().unwrap_or_default();
        let mut seen: Vec<String> = Vec::new();
        for r in &mut incoming {
            mark_host(r, host);
            let Ok(session) = serde_json::from_value::<Session>(r["session"].clone()) else {
                continue;
            };
            seen.push(session.target_id.clone());
            let here = self
                .remote
                .iter()
                .position(|x| x.at == at && x.session.target_id == session.target_id);
            let (kind, previous) = match here {
                Some(i) => {
                    let previous = self.remote[i].state();
                    self.remote[i].session = session;
                    self.remote[i].view = r.clone();
                    if previous == self.remote[i].state() {
                        continue;
                    }
                    ("state_change", previous)
                }
                None => {
                    self.remote.push(RemoteRow {
                        at,
                        session,
                        view: r.clone(),
                    });
                    ("new_session", None)
                }
            };
            let mut event = json!({ "type": kind, "session": r["session"], "previous": previous,
                "current": r["state"], "timestamp": r["since"] });
            for k in DETAILS {
                if let Some(v) = r.get(k) {
                    event[k] = v.clone();
                }
            }
            self.push(event);
        }
        let gone: Vec<RemoteRow> = {
            let (gone, kept) = std::mem::take(&mut self.remote)
                .into_iter()
                .partition(|x| x.at == at && !seen.contains(&x.session.target_id));
            self.remote = kept;
            gone
        };
        for g in gone {
            self.push(json!({ "type": "session_closed", "session": g.session,
                "previous": g.state(), "current": null, "timestamp": upstream::now(),
                "reason": "gone from its serve" }));
        }
    }

    /// An event of an upstream: its row updated, the event pushed here (its seq ours).
    pub fn upstream_event(&mut self, at: usize, host: &str, mut event: Value) {
        mark_host(&mut event, host);
        let Ok(session) = serde_json::from_value::<Session>(event["session"].clone()) else {
            // Not about a session (an upstream's endpoint_lost): the upstream's label.
            if let Some(e) = event.get("endpoint").and_then(Value::as_str) {
                event["endpoint"] = json!(format!("{host}/{e}"));
            }
            return self.push(event);
        };
        let here = self
            .remote
            .iter()
            .position(|x| x.at == at && x.session.target_id == session.target_id);
        match (event["type"].as_str(), here) {
            (Some("session_closed"), Some(i)) => {
                self.remote.remove(i);
            }
            (Some("session_closed"), None) => {}
            (_, Some(i)) => {
                let row = &mut self.remote[i];
                if let Some(current) = event.get("current").filter(|c| !c.is_null()) {
                    if row.view["state"] != *current {
                        row.view["since"] = event["timestamp"].clone();
                        row.view["since_seen"] = json!(true);
                    }
                    row.view["state"] = current.clone();
                    row.take(&event);
                }
                row.view["session"] = event["session"].clone();
                row.session = session;
            }
            (_, None) => {
                let mut view = json!({ "session": event["session"], "state": event["current"],
                    "layout": null, "since": event["timestamp"], "since_seen": true });
                if let Some(o) = view.as_object_mut() {
                    for k in DETAILS {
                        if let Some(v) = event.get(k) {
                            o.insert(k.into(), v.clone());
                        }
                    }
                }
                self.remote.push(RemoteRow { at, session, view });
            }
        }
        self.push(event);
    }

    /// An upstream lost: `endpoint_lost`, and each of its sessions `unresponsive`.
    pub fn upstream_lost(&mut self, at: usize, host: &str, why: &str) {
        self.endpoint(host, "endpoint_lost", Some(why));
        let error = format!("its serve {host} is lost: {why}");
        let mut events = Vec::new();
        for r in self.remote.iter_mut().filter(|r| r.at == at) {
            let previous = r.state();
            if previous == Some(State::Unresponsive) {
                continue;
            }
            let now = upstream::now();
            r.view["state"] = json!(State::Unresponsive);
            r.view["since"] = json!(now);
            r.view["since_seen"] = json!(true);
            r.take(&json!({ "error": error }));
            events.push(json!({ "type": "state_change", "session": r.session,
                "previous": previous, "current": State::Unresponsive, "timestamp": now,
                "error": error, "reason": monitor::lost_reason(host) }));
        }
        for e in events {
            self.push(e);
        }
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
                    since_seen: false,
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
                    // A first state was there before, unless the window just opened.
                    row.since_seen = previous.is_some() || row.appeared;
                }
                let current = snapshot.state;
                let changes = approve::changes(row.snapshot.as_ref(), &snapshot);
                let kind = event::kind_of(row.snapshot.as_ref(), &snapshot, changes.changed);
                row.snapshot = Some(*snapshot);
                let row = table.rows.remove(i);
                let why = monitor::change_reason(current, &row.session.endpoint, &table.lost);
                if let Some(kind) = kind {
                    table.broadcast(kind, &row, previous, why.as_deref(), row.since);
                }
                for (approval, noted) in &changes.resolved {
                    let snap = row.snapshot.as_ref();
                    let at = rfc3339(SystemTime::now());
                    let event =
                        Event::new("approval_resolved", &row.session, snap, previous, at, None)
                            .resolved(approval, noted.as_ref());
                    table.push(serde_json::to_value(event).expect("an event serialises"));
                }
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
            Update::Appeared { window, title, url } => {
                if table.index_of(&window.target_id).is_some() {
                    return;
                }
                let known = table.rows.iter().map(|r| &r.session.target_id);
                let session = Session::appeared(window, title, url, known, &shared.profile);
                self.monitors.spawn(&session, None);
                table.rows.push(Row {
                    session,
                    snapshot: None,
                    since: SystemTime::now(),
                    since_seen: true,
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
            } => {
                warn!(
                    "angrav: serve: lost {} ({reason}); retrying",
                    endpoint.label()
                );
                table.lost.insert(endpoint.label().to_string());
                table.endpoint(endpoint.label(), "endpoint_lost", Some(&reason));
            }
            Update::EndpointBack { endpoint, .. } => {
                warn!("angrav: serve: {} answers again", endpoint.label());
                table.lost.remove(endpoint.label());
                table.endpoint(endpoint.label(), "endpoint_back", None);
            }
            // serve sets no stall time.
            Update::Prompted { .. } | Update::Still { .. } => {}
        }
    }
}
