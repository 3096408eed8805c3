//! `angrav serve`: one long-running process that follows every session (one monitor
//! thread per window, new windows found as they open) and serves, on one port,
//! a WebSocket API (`GET /ws`, see [`api`]) and a live dashboard (`GET /`).
//!
//! Security: a random token, made at start and kept in the state directory
//! (`serve.token`, mode 0600), is required on every request (`Authorization: Bearer`
//! or `?token=`); a WebSocket upgrade from a page of another origin is refused; the
//! server binds loopback only, unless told otherwise with `--allow-remote`.

mod api;
pub(crate) mod http;
mod quota;
mod table;
mod upstream;
mod ws;

pub use upstream::Upstream;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use tungstenite::protocol::frame::coding::CloseCode;

use crate::hooks::{self, Hooks};
use crate::journal::Journal;
use crate::names::Names;
use crate::profile::Profile;
use crate::registry::Registry;
use crate::sessions::Session;
use crate::state::StateDir;
use crate::{Error, exit};
use table::{Hub, Table};
use ws::Outbox;

const DASHBOARD: &str = include_str!("dashboard.html");
/// How long a client may take to send its request head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);

/// How often every page serve follows must answer, changed or not. serve answers
/// `sessions.list` and `status` from memory: a page that stops answering (frozen,
/// busy) is `unresponsive` there once this and [`crate::panel::PROBE_WITHIN`] have
/// passed, as an attached command says after `PROBE_WITHIN`, never shown as it was.
const BEAT: Duration = Duration::from_secs(1);
/// Connections that may be sending their request head at once, before the token is
/// checked; more are refused at once (503), so strangers cannot pile up threads.
pub const HEADS_AT_ONCE: usize = 32;
/// How long the stop waits for clients to get their close frame.
const CLOSE_WITHIN: Duration = Duration::from_secs(2);
/// How long a stopping serve waits for the prompts being delivered.
const DELIVERIES_WITHIN: Duration = Duration::from_secs(15);
/// The token file in the state directory.
pub const TOKEN_FILE: &str = "serve.token";

/// How `serve` was asked to run.
pub struct Options {
    pub listen: SocketAddr,
    pub settle: Duration,
    pub hooks: hooks::Config,
    /// Where the token is kept (none: `--no-state`, the token is only printed).
    pub state: Option<StateDir>,
    pub names: Option<Names>,
    /// The serves this one follows as a hub (`--upstream`).
    pub upstreams: Vec<Upstream>,
    /// The language server named (`--ls`); else the first window's that answers is
    /// looked for when the quota is asked for (see [`quota`]).
    pub ls: Option<crate::ls::Ls>,
}

/// `--listen ADDR` as given (`:PORT` is loopback's; port 0 picks a free one), refused
/// when it is not loopback and `--allow-remote` is not given.
pub fn listen_address(given: &str, allow_remote: bool) -> Result<SocketAddr, Error> {
    let loopback = given
        .strip_prefix(':')
        .map(|port| format!("127.0.0.1:{port}"));
    let addr: SocketAddr = loopback
        .as_deref()
        .unwrap_or(given)
        .replace("localhost", "127.0.0.1")
        .parse()
        .map_err(|_| {
            Error::Usage(format!(
                "--listen {given}: give an address and port, e.g. 127.0.0.1:7878"
            ))
        })?;
    if !addr.ip().is_loopback() && !allow_remote {
        return Err(Error::Usage(format!(
            "--listen {addr} is reachable from other machines; add --allow-remote if that is meant \
             (anyone who has the token then drives your agents)"
        )));
    }
    Ok(addr)
}

/// What every connection and the hub share.
pub struct Shared {
    profile: Profile,
    settle: Duration,
    names: Option<Names>,
    token: String,
    port: u16,
    table: Mutex<Table>,
    upstreams: Vec<Upstream>,
    /// Where the quota is read from.
    quota: quota::QuotaSource,
    clients: Mutex<HashMap<u64, Arc<Outbox>>>,
    next_client: AtomicU64,
    /// Where serve's own prompts are kept (none: `--no-state`).
    journal: Option<Journal>,
    /// Each writer thread holds a clone; the stop drops this one and waits for the
    /// rest (so every client got its close frame). `None` once stopping.
    alive: Mutex<Option<Sender<()>>>,
}

impl Shared {
    fn next_client_id(&self) -> u64 {
        self.next_client.fetch_add(1, Ordering::Relaxed)
    }

    fn journal(&self) -> Option<&Journal> {
        self.journal.as_ref()
    }

    fn alive(&self) -> Option<Sender<()>> {
        lock(&self.alive).clone()
    }

    /// One session by alias, id prefix or workspace name, among those open here;
    /// one of an upstream's is refused with what to do instead.
    fn session(&self, query: Option<&str>) -> Result<Session, Error> {
        let found = self.find(query)?;
        match &found.host {
            None => Ok(found),
            Some(host) => Err(Error::Failed(format!(
                "{} is on {host}: this hub forwards {} to it; ask {host} itself (--server) for the rest",
                found.id,
                upstream::FORWARDED.join(", ")
            ))),
        }
    }

    /// One session by alias, id prefix or workspace name, among those open here and
    /// those of the upstreams (`HOST/ID` names an upstream's).
    fn find(&self, query: Option<&str>) -> Result<Session, Error> {
        let (live, remote) = {
            let t = lock(&self.table);
            (t.sessions(), t.remote_sessions())
        };
        if let Some((host, rest)) = query.and_then(|q| q.split_once('/'))
            && self.upstreams.iter().any(|u| u.server.label == host)
        {
            let theirs: Vec<Session> = remote
                .into_iter()
                .filter(|s| s.host.as_deref() == Some(host))
                .collect();
            return crate::sessions::select(&theirs, Some(rest)).cloned();
        }
        if let (Some(q), Some(names)) = (query, &self.names)
            && let Some(found) = names.resolve(q, &live)
        {
            return found.cloned();
        }
        let all: Vec<Session> = live.into_iter().chain(remote).collect();
        crate::sessions::select(&all, query).cloned()
    }

    /// The upstream labelled `host`.
    fn upstream(&self, host: &str) -> Option<&Upstream> {
        self.upstreams.iter().find(|u| u.server.label == host)
    }
}

/// Runs the server until SIGINT or SIGTERM; then stops accepting, sends every client
/// a close frame, stops the monitors, and returns 0.
pub fn serve(registry: Registry, opts: Options) -> Result<u8, Error> {
    let signals = crate::signals::signals();
    let token = random_token()?;
    let listener = TcpListener::bind(opts.listen)
        .map_err(|e| Error::Failed(format!("cannot listen on {}: {e}", opts.listen)))?;
    let local = listener
        .local_addr()
        .map_err(|e| Error::Failed(format!("cannot listen on {}: {e}", opts.listen)))?;
    let (alive_tx, alive_rx) = crossbeam_channel::bounded::<()>(0);
    let shared = Arc::new(Shared {
        profile: registry.profile().clone(),
        settle: opts.settle,
        table: Mutex::new(Table::with_groups(
            opts.names.as_ref().map(Names::groups).unwrap_or_default(),
        )),
        names: opts.names,
        token,
        port: local.port(),
        upstreams: opts.upstreams,
        quota: quota::QuotaSource::new(opts.ls),
        clients: Mutex::default(),
        next_client: AtomicU64::new(1),
        journal: opts.state.clone().map(Journal::open),
        alive: Mutex::new(Some(alive_tx)),
    });
    // One set of monitors for every window, new ones followed (the hub spawns them).
    let (mut monitors, updates) = crate::monitor::Monitors::new(registry.profile());
    monitors.heartbeat(BEAT);
    monitors.watch_targets(registry.endpoints());
    let hub = Hub {
        shared: shared.clone(),
        monitors,
        updates,
        hooks: Hooks::start(opts.hooks, opts.settle),
    };
    let (ready_tx, ready_rx) = crossbeam_channel::bounded(1);
    let (stop_tx, stop_rx) = crossbeam_channel::bounded(1);
    let sessions = registry.sessions().to_vec();
    let hub = std::thread::Builder::new()
        .name("serve hub".into())
        .spawn(move || hub.run(sessions, ready_tx, stop_rx))
        .expect("spawn the hub");
    let _ = ready_rx.recv();
    // A hub: every upstream's table in (or found unreachable) before the URL is given.
    let (upstream_stop, upstream_stopped) = crossbeam_channel::bounded::<()>(0);
    let following = upstream::follow_all(&shared, &upstream_stopped);
    for _ in &shared.upstreams {
        let _ = following.recv_timeout(table::FIRST_SNAPSHOTS);
    }
    let token_file = match &opts.state {
        Some(dir) => Some(write_token(dir, &shared.token)?),
        None => None,
    };
    let stopping = Arc::new(AtomicBool::new(false));
    let acceptor = {
        let (shared, stopping) = (shared.clone(), stopping.clone());
        std::thread::Builder::new()
            .name("serve accept".into())
            .spawn(move || accept(listener, shared, stopping))
            .expect("spawn the acceptor")
    };
    // Where this machine reaches the server (the dashboard URL, and the stop's wake-up).
    let here = if local.ip().is_unspecified() {
        SocketAddr::new(IpAddr::from([127, 0, 0, 1]), local.port())
    } else {
        local
    };
    warn!(
        "angrav: serving {} sessions; dashboard: http://{here}/?token={}",
        lock(&shared.table).sessions().len(),
        shared.token
    );
    if let Some(path) = &token_file {
        warn!("angrav: the token is also in {}", path.display());
    }
    let _ = signals.recv();
    warn!("angrav: stopping");
    // Stop accepting: wake the acceptor with a connection of our own.
    stopping.store(true, Ordering::SeqCst);
    let _ = TcpStream::connect_timeout(&here, Duration::from_secs(1));
    let _ = acceptor.join();
    // Tell every client, and wait (a little) for the close frames to go out.
    lock(&shared.alive).take();
    let clients: Vec<Arc<Outbox>> = lock(&shared.clients).values().cloned().collect();
    for c in &clients {
        c.close(CloseCode::Away, "angrav serve is stopping");
    }
    let _ = alive_rx.recv_deadline(Instant::now() + CLOSE_WITHIN);
    // A prompt being typed sees the signal and takes itself out of the editor; one
    // submitted is confirmed: both finish before serve ends.
    let by = Instant::now() + DELIVERIES_WITHIN;
    while crate::turn::deliveries() > 0 && Instant::now() < by {
        std::thread::sleep(Duration::from_millis(20));
    }
    // Each prompt delivered is in the journal before serve ends.
    if let Some(j) = shared.journal() {
        j.flush();
    }
    let _ = stop_tx.send(());
    let _ = hub.join();
    drop(upstream_stop);
    if let Some(path) = token_file {
        let _ = std::fs::remove_file(path);
    }
    Ok(exit::OK)
}

fn accept(listener: TcpListener, shared: Arc<Shared>, stopping: Arc<AtomicBool>) {
    let heads = Arc::new(AtomicUsize::new(0));
    for conn in listener.incoming() {
        if stopping.load(Ordering::SeqCst) {
            return;
        }
        let Ok(mut stream) = conn else { continue };
        // At most HEADS_AT_ONCE connections are still sending their head: the rest
        // are refused here, at once, without a thread.
        if heads.fetch_add(1, Ordering::SeqCst) >= HEADS_AT_ONCE {
            heads.fetch_sub(1, Ordering::SeqCst);
            let _ = stream.set_write_timeout(Some(Duration::from_millis(100)));
            let _ = http::refuse(
                &mut stream,
                "503 Service Unavailable",
                "too many connections are sending their request at once; try again",
            );
            continue;
        }
        let head = Head(heads.clone());
        let shared = shared.clone();
        let _ = std::thread::Builder::new()
            .name("serve conn".into())
            .stack_size(256 * 1024)
            .spawn(move || connection(shared, stream, head));
    }
}

/// A connection counted among those still sending their head, until dropped.
struct Head(Arc<AtomicUsize>);

impl Drop for Head {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// One connection: its request head, answered; an accepted upgrade becomes a client.
fn connection(shared: Arc<Shared>, mut stream: TcpStream, head: Head) {
    let Ok(peer) = stream.peer_addr() else { return };
    let _ = stream.set_read_timeout(Some(HEAD_TIMEOUT));
    let _ = stream.set_write_timeout(Some(HEAD_TIMEOUT));
    let _ = stream.set_nodelay(true);
    let req = http::read_request(&mut stream, HEAD_TIMEOUT);
    drop(head);
    let req = match req {
        Ok(Some(r)) => r,
        Ok(None) => return,
        Err(e) => {
            let _ = http::refuse(&mut stream, "400 Bad Request", &e.to_string());
            return;
        }
    };
    if req.method != "GET" {
        let _ = http::refuse(&mut stream, "405 Method Not Allowed", "only GET is served");
        return;
    }
    if !matches!(req.path.as_str(), "/" | "/ws") {
        let _ = http::refuse(&mut stream, "404 Not Found", "not found: try / or /ws");
        return;
    }
    if !authorized(&req, &shared.token) {
        let _ = http::refuse(
            &mut stream,
            "401 Unauthorized",
            "a valid token is required: Authorization: Bearer TOKEN, or ?token=TOKEN \
             (angrav serve prints it, and keeps it in serve.token in its state directory)",
        );
        return;
    }
    if req.path == "/" {
        let _ = http::respond(
            &mut stream,
            "200 OK",
            &[
                ("Content-Type", "text/html; charset=utf-8"),
                (
                    "Content-Security-Policy",
                    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
                     connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
                ),
                ("Referrer-Policy", "no-referrer"),
                ("X-Content-Type-Options", "nosniff"),
            ],
            DASHBOARD.as_bytes(),
        );
        return;
    }
    if let Some(origin) = req.header("Origin")
        && !own_origin(&req, origin, shared.port)
    {
        let _ = http::refuse(
            &mut stream,
            "403 Forbidden",
            "this server takes WebSocket connections from its own pages only",
        );
        return;
    }
    let key = req.header("Sec-WebSocket-Key");
    let upgrade = req.header_has("Upgrade", "websocket")
        && req.header_has("Connection", "upgrade")
        && req.header("Sec-WebSocket-Version") == Some("13");
    let (Some(key), true) = (key, upgrade) else {
        let _ = http::refuse(
            &mut stream,
            "400 Bad Request",
            "/ws takes a WebSocket upgrade (version 13)",
        );
        return;
    };
    let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
    let switched = http::respond_upgrade(&mut stream, &accept);
    if switched.is_ok() {
        ws::run(shared, stream, req.rest, peer);
    }
}

/// The token in `Authorization: Bearer` or `?token=`, compared in constant time.
fn authorized(req: &http::Request, token: &str) -> bool {
    let given = req
        .header("Authorization")
        .and_then(|a| a.strip_prefix("Bearer "))
        .map(str::trim)
        .or_else(|| req.query("token"));
    given.is_some_and(|g| {
        g.len() == token.len()
            && g.bytes()
                .zip(token.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    })
}

/// The page asking is this server's own: its origin is `http://` and the `Host` the
/// request was sent to, and that host is an IP address or `localhost` on our port
/// (a host name could be another site's, rebound to this address).
fn own_origin(req: &http::Request, origin: &str, port: u16) -> bool {
    let Some(host) = req.header("Host") else {
        return false;
    };
    let (name, host_port) = match host.rsplit_once(':') {
        Some((n, p)) if !n.ends_with(']') || n.starts_with('[') => (n, p.parse::<u16>().ok()),
        _ => (host, Some(80)),
    };
    let name = name.trim_start_matches('[').trim_end_matches(']');
    let literal = name == "localhost" || name.parse::<IpAddr>().is_ok();
    literal && host_port == Some(port) && origin == format!("http://{host}")
}

/// Locks a mutex of serve's. Every change under these locks is one step, so what a
/// thread that panicked left behind is consistent: go on with it.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// 32 random bytes from the system, as hex.
fn random_token() -> Result<String, Error> {
    crate::state::random_hex(32)
        .map_err(|e| Error::Failed(format!("cannot read /dev/urandom for the token: {e}")))
}

/// Keeps the token in the state directory, readable by the user alone.
fn write_token(dir: &StateDir, token: &str) -> Result<PathBuf, Error> {
    let path = dir.file(TOKEN_FILE);
    dir.write_private(TOKEN_FILE, format!("{token}\n").as_bytes())?;
    Ok(path)
}
