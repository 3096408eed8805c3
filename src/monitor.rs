//! One OS thread per session, each on its own WebSocket, reporting every change of
//! its session's state over a channel. The page tells the thread when something
//! changed (see [`Panel::watch`]); between changes the thread blocks in one awaited
//! call, waking for a heartbeat every few seconds at most.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use cdp::methods::target::{SetDiscoverTargets, TargetDestroyed, TargetInfoEvent};
use cdp::{CloseGroup, Connection, Endpoint};
use crossbeam_channel::{Receiver, Sender};

use crate::panel::{Panel, Snapshot};
use crate::profile::Profile;
use crate::sessions::Session;
use crate::turn::{self, Baseline, HEARTBEAT};

/// A monitor thread needs little stack: it parses JSON and waits.
const STACK: usize = 256 * 1024;

/// What monitors report, each tagged with the session's full target id.
#[derive(Debug)]
pub enum Update {
    /// The session's state, first when the monitor starts and then on every change.
    Changed {
        target_id: String,
        snapshot: Snapshot,
        at: Instant,
    },
    /// The prompt a monitor was given was delivered (its turn's baseline; the turn
    /// may not have started yet), or refused or not delivered (why).
    Prompted {
        target_id: String,
        result: Result<Baseline, String>,
    },
    /// The window closed, or its panel could not be reached any more.
    Closed {
        target_id: String,
        reason: String,
        at: Instant,
    },
    /// A new editor window appeared at an endpoint (see [`Monitors::watch_targets`]).
    Appeared {
        endpoint: Endpoint,
        target_id: String,
        title: String,
        url: String,
        ws_url: String,
    },
    /// A window's title changed (the workspace name comes from it).
    Retitled { target_id: String, title: String },
}

/// Monitor threads, the channel they report on, and the means to stop them all at once.
pub struct Monitors {
    group: Arc<CloseGroup>,
    threads: Vec<JoinHandle<()>>,
    tx: Sender<Update>,
    profile: Profile,
}

impl Monitors {
    /// No monitors yet; their updates will arrive on the receiver.
    pub fn new(profile: &Profile) -> (Monitors, Receiver<Update>) {
        // Bounded: a consumer that falls behind slows the monitors, not memory.
        let (tx, rx) = crossbeam_channel::bounded(1024);
        (
            Monitors {
                group: Arc::default(),
                threads: Vec::new(),
                tx,
                profile: profile.clone(),
            },
            rx,
        )
    }

    /// Starts monitoring `session`; with a prompt, sends it first.
    pub fn spawn(&mut self, session: &Session, prompt: Option<String>) {
        // Threads of windows gone by are done: a long watch keeps no handle of theirs.
        self.threads.retain(|t| !t.is_finished());
        let (session, profile, group, tx) = (
            session.clone(),
            self.profile.clone(),
            self.group.clone(),
            self.tx.clone(),
        );
        let handle = std::thread::Builder::new()
            .name(format!("monitor {}", session.id))
            .stack_size(STACK)
            .spawn(move || monitor(session, profile, prompt, group, tx))
            .expect("spawn a monitor thread");
        self.threads.push(handle);
    }

    /// Watches every endpoint for new editor windows (`Target.setDiscoverTargets` on
    /// the browser's own connection): no polling of `/json/list`.
    pub fn watch_targets(&mut self, endpoints: &[Endpoint]) {
        for endpoint in endpoints {
            let Endpoint::Http { .. } = endpoint else {
                continue;
            };
            let (endpoint, profile, group, tx) = (
                endpoint.clone(),
                self.profile.clone(),
                self.group.clone(),
                self.tx.clone(),
            );
            let handle = std::thread::Builder::new()
                .name("target discovery".into())
                .stack_size(STACK)
                .spawn(move || discover(endpoint, profile, group, tx))
                .expect("spawn a discovery thread");
            self.threads.push(handle);
        }
    }

    /// Stops every thread now (they are blocked on sockets this closes) and joins them.
    pub fn stop(&mut self) {
        self.group.close();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for Monitors {
    fn drop(&mut self) {
        self.stop();
    }
}

fn monitor(
    session: Session,
    profile: Profile,
    prompt: Option<String>,
    group: Arc<CloseGroup>,
    tx: Sender<Update>,
) {
    let id = session.target_id.clone();
    let closed = |reason: String| Update::Closed {
        target_id: id.clone(),
        reason,
        at: Instant::now(),
    };
    let (mut panel, mut snap) = match Panel::attach_in(&session.window, &profile, group.clone()) {
        Ok(p) => p,
        Err(e) => {
            if !group.is_closed() {
                let _ = tx.send(closed(e.to_string()));
            }
            return;
        }
    };
    if let Some(text) = prompt {
        // The turn's start is the tracker's to see: do not wait for it here.
        let opts = turn::SendOptions {
            claim_within: ACCEPT_WITHIN,
            start_within: Duration::ZERO,
            replace_draft: false,
        };
        let sent = turn::send_prompt(&mut panel, &text, opts).map_err(|e| e.to_string());
        let result = sent.as_ref().map(|s| s.baseline).map_err(Clone::clone);
        if tx
            .send(Update::Prompted {
                target_id: id.clone(),
                result,
            })
            .is_err()
        {
            return;
        }
        match sent {
            Ok(sent) => snap = sent.snapshot,
            Err(_) => return,
        }
    }
    if tx
        .send(Update::Changed {
            target_id: id.clone(),
            snapshot: snap.clone(),
            at: Instant::now(),
        })
        .is_err()
    {
        return;
    }
    loop {
        match panel.watch(&snap.key, HEARTBEAT) {
            Ok(next) => {
                if next.key != snap.key {
                    let update = Update::Changed {
                        target_id: id.clone(),
                        snapshot: next.clone(),
                        at: Instant::now(),
                    };
                    if tx.send(update).is_err() {
                        return;
                    }
                }
                snap = next;
            }
            Err(e) => {
                if !group.is_closed() {
                    let _ = tx.send(closed(e.to_string()));
                }
                return;
            }
        }
    }
}

/// How long a delivered prompt's turn may take to show it started before `prompt`
/// returns without it; also how long a sender waits for another's claim on the editor.
pub const ACCEPT_WITHIN: Duration = Duration::from_secs(10);

fn discover(endpoint: Endpoint, profile: Profile, group: Arc<CloseGroup>, tx: Sender<Update>) {
    let Some(ws) = endpoint
        .version()
        .ok()
        .and_then(|v| v.web_socket_debugger_url)
    else {
        return;
    };
    let Ok(mut conn) = Connection::open(&ws) else {
        return;
    };
    group.add(conn.close_handle());
    if conn
        .call(
            &SetDiscoverTargets { discover: true },
            Duration::from_secs(10),
        )
        .is_err()
    {
        return;
    }
    // Windows seen, with their titles.
    let mut seen = std::collections::HashMap::new();
    while let Ok(Some(event)) = conn.next_event(None) {
        match event.method.as_str() {
            "Target.targetCreated" | "Target.targetInfoChanged" => {
                let Ok(TargetInfoEvent { target_info: t }) = event.decode() else {
                    continue;
                };
                let is_window = profile.is_window(&t.kind, &t.url);
                if !is_window {
                    continue;
                }
                if let Some(title) = seen.get_mut(&t.target_id) {
                    if *title != t.title {
                        *title = t.title.clone();
                        let update = Update::Retitled {
                            target_id: t.target_id,
                            title: t.title,
                        };
                        if tx.send(update).is_err() {
                            return;
                        }
                    }
                    continue;
                }
                seen.insert(t.target_id.clone(), t.title.clone());
                let ws_url = page_ws_url(&endpoint, &t.target_id);
                let update = Update::Appeared {
                    endpoint: endpoint.clone(),
                    target_id: t.target_id,
                    title: t.title,
                    url: t.url,
                    ws_url,
                };
                if tx.send(update).is_err() {
                    return;
                }
            }
            "Target.targetDestroyed" => {
                if let Ok(TargetDestroyed { target_id }) = event.decode() {
                    seen.remove(&target_id);
                }
            }
            _ => {}
        }
    }
}

/// A page's WebSocket URL, as `/json/list` would give it.
fn page_ws_url(endpoint: &Endpoint, target_id: &str) -> String {
    match endpoint {
        Endpoint::Http { addr, .. } => format!("ws://{addr}/devtools/page/{target_id}"),
        Endpoint::Target { ws_url, .. } => ws_url.clone(),
    }
}
