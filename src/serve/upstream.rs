//! A hub: `serve --upstream URL` follows other serves. One thread per upstream keeps a
//! subscription to it: its table and events become rows and events of this serve's
//! table, each session marked with the upstream's label as `host`. A lost upstream
//! (its connection closed, or no answer to a ping: see [`Client::message`]) is
//! `endpoint_lost` (its sessions `unresponsive`), asked again every second, and
//! `endpoint_back` once it answers. Actions on its sessions are forwarded to it, each
//! on a connection of its own. The upstream's token stays here: no reply, event or
//! message carries it.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crossbeam_channel::{Receiver, Sender};
use serde_json::Value;

use super::{Shared, lock};
use crate::Error;
use crate::client::{Client, Server, mark_host};
use crate::timestamp::rfc3339;

/// How long a hub waits before asking a lost upstream again.
const RETRY: Duration = Duration::from_secs(1);
/// How long a connection to an upstream may take, and a quick answer from it.
const PATIENCE: Duration = Duration::from_secs(10);
/// How much longer than a forwarded call's own timeout the upstream may take.
const SLACK: Duration = Duration::from_secs(30);

/// The methods a hub forwards to the upstream that has the session.
pub const FORWARDED: &[&str] = &[
    "status", "prompt", "output", "history", "new", "approve", "deny", "cancel",
];

/// An upstream as the hub reaches it: where, and its token (from its URL).
#[derive(Clone)]
pub struct Upstream {
    pub server: Server,
    token: String,
}

impl Upstream {
    /// An upstream named on the command line; its token must be in its URL.
    pub fn parse(spec: &str) -> Result<Upstream, Error> {
        let server = Server::parse(spec)?;
        let token = server.token.clone().ok_or_else(|| {
            Error::Usage(format!(
                "--upstream {}: give its token in its URL (http://HOST:PORT/?token=TOKEN, as its \
                 serve prints it)",
                server.label
            ))
        })?;
        Ok(Upstream { server, token })
    }

    /// Asks the upstream `method` on a connection of its own; the sessions of the
    /// result marked as its.
    pub fn forward(&self, method: &str, params: Value) -> Result<Value, Error> {
        let timeout = params["timeout_ms"]
            .as_u64()
            .map_or(Duration::from_secs(120), Duration::from_millis);
        let mut c = Client::connect(&self.server, &self.token, timeout + SLACK)?;
        let mut v = c.call_value(method, params)?;
        mark_host(&mut v, &self.server.label);
        Ok(v)
    }
}

/// Starts following every upstream; `ready` gets one `()` per upstream once its
/// first table is in (or it could not be reached).
pub fn follow_all(shared: &Arc<Shared>, stop: &Receiver<()>) -> Receiver<()> {
    let (ready_tx, ready) = crossbeam_channel::unbounded();
    for (at, up) in shared.upstreams.iter().enumerate() {
        let (shared, stop, ready_tx) = (shared.clone(), stop.clone(), ready_tx.clone());
        let label = up.server.label.clone();
        std::thread::Builder::new()
            .name(format!("serve upstream {label}"))
            .stack_size(256 * 1024)
            .spawn(move || follow(&shared, at, &stop, ready_tx))
            .expect("spawn an upstream thread");
    }
    ready
}

/// Follows upstream `at` until `stop` is closed.
fn follow(shared: &Arc<Shared>, at: usize, stop: &Receiver<()>, ready: Sender<()>) {
    let up = &shared.upstreams[at];
    let label = &up.server.label;
    let mut ready = Some(ready);
    let mut lost = false;
    loop {
        let why = match subscribe(up) {
            Ok((mut client, table)) => {
                if lost {
                    warn!("angrav: serve: upstream {label} answers again");
                    lock(&shared.table).endpoint(label, "endpoint_back", None);
                }
                lock(&shared.table).upstream_table(at, label, &table);
                if let Some(r) = ready.take() {
                    let _ = r.send(());
                }
                lost = false;
                loop {
                    match client.message() {
                        Ok(m) => {
                            if let Some(e) = m.get("event") {
                                lock(&shared.table).upstream_event(at, label, e.clone());
                            }
                        }
                        Err(e) => break e,
                    }
                    if stopped(stop) {
                        return;
                    }
                }
            }
            Err(e) => e,
        };
        if let Some(r) = ready.take() {
            let _ = r.send(());
        }
        if !lost {
            warn!("angrav: serve: lost upstream {label} ({why}); retrying");
            lock(&shared.table).upstream_lost(at, label, &why.to_string());
            lost = true;
        }
        if stop.recv_timeout(RETRY).is_ok() || stopped(stop) {
            return;
        }
    }
}

/// `stop` was sent to, or closed.
fn stopped(stop: &Receiver<()>) -> bool {
    !matches!(stop.try_recv(), Err(crossbeam_channel::TryRecvError::Empty))
}

/// A subscription to `up`: its connection (its events read with
/// [`Client::message`], which notices a hung upstream) and its table.
fn subscribe(up: &Upstream) -> Result<(Client, Value), Error> {
    let mut c = Client::connect(&up.server, &up.token, PATIENCE)?;
    let table = c.subscribe()?;
    Ok((c, table))
}

/// Now, as events write it.
pub fn now() -> String {
    rfc3339(SystemTime::now())
}
