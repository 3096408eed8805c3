//! A tiny HTTP server for the fixture pages, compiled into the binary so the
//! simulator runs from anywhere. It listens on 127.0.0.1 only; pages reach it as
//! `localhost` too, which is another site to Chromium (for the out-of-process iframe).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use super::SimError;

/// Every fixture, by URL path.
const FILES: &[(&str, &str, &str)] = &[
    (
        "/workbench.html",
        "text/html",
        include_str!("../../fixtures/workbench.html"),
    ),
    (
        "/cascade-panel.html",
        "text/html",
        include_str!("../../fixtures/cascade-panel.html"),
    ),
    (
        "/workbench-jetski-agent.html",
        "text/html",
        include_str!("../../fixtures/workbench-jetski-agent.html"),
    ),
    (
        "/foreign/workbench.html",
        "text/html",
        include_str!("../../fixtures/foreign/workbench.html"),
    ),
    (
        "/agent.js",
        "text/javascript",
        include_str!("../../fixtures/agent.js"),
    ),
    (
        "/workbench.js",
        "text/javascript",
        include_str!("../../fixtures/workbench.js"),
    ),
    (
        "/sim.css",
        "text/css",
        include_str!("../../fixtures/sim.css"),
    ),
];

pub struct FixtureServer {
    port: u16,
}

impl FixtureServer {
    /// Binds 127.0.0.1 on a free port and serves on a background thread for the
    /// life of the process (the listener is tiny and idle between page loads).
    pub fn start() -> Result<FixtureServer, SimError> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .map_err(|e| SimError::Launch(format!("fixture server: {e}")))?;
        let port = listener
            .local_addr()
            .map_err(|e| SimError::Launch(e.to_string()))?
            .port();
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                std::thread::spawn(move || serve(stream));
            }
        });
        Ok(FixtureServer { port })
    }

    pub fn port(&self) -> u16 {
        self.port
    }
}

/// Every prompt the simulated agents received, in this process: (workspace, text).
static RECEIPTS: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());

/// Every prompt the simulated agents of `workspace` received, in order: kept by the
/// fixture server as each agent takes one (`POST /receipt`), so a browser killed
/// keeps its receipts.
pub fn receipts(workspace: &str) -> Vec<String> {
    RECEIPTS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .filter(|(w, _)| w == workspace)
        .map(|(_, t)| t.clone())
        .collect()
}

/// Gates a page may be held at (`GET /gate?name=N`, answered once the test opens the
/// gate): a page held mid-action, for as long as a test needs. Each gate: reached by a
/// page yet, opened by the test yet.
static GATES: Mutex<Option<HashMap<String, (bool, bool)>>> = Mutex::new(None);
static GATES_MOVED: Condvar = Condvar::new();

/// Waits until a page is held at gate `name`, `within`; false if none came.
pub fn gate_reached(name: &str, within: Duration) -> bool {
    gate_until(name, within, |(reached, _)| reached)
}

/// Lets every page held at gate `name` (and any that comes later) go on.
pub fn open_gate(name: &str) {
    mark_gate(name, |g| g.1 = true);
}

/// A page at gate `name`: held until the test opens it (at most a minute).
pub(super) fn hold_at_gate(name: &str) {
    mark_gate(name, |g| g.0 = true);
    gate_until(name, Duration::from_secs(60), |(_, open)| open);
}

/// Changes gate `name` (reached, opened) and wakes whoever waits on a gate.
fn mark_gate(name: &str, change: impl FnOnce(&mut (bool, bool))) {
    let mut gates = GATES.lock().unwrap_or_else(|e| e.into_inner());
    change(
        gates
            .get_or_insert_default()
            .entry(name.into())
            .or_default(),
    );
    GATES_MOVED.notify_all();
}

fn gate_until(name: &str, within: Duration, done: impl Fn((bool, bool)) -> bool) -> bool {
    let by = Instant::now() + within;
    let mut gates = GATES.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let now = gates
            .get_or_insert_default()
            .get(name)
            .copied()
            .unwrap_or_default();
        if done(now) {
            return true;
        }
        let left = by.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        gates = GATES_MOVED
            .wait_timeout(gates, left)
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
}

fn serve(stream: TcpStream) {
    let mut reader = BufReader::new(&stream);
    let mut request = String::new();
    if reader.read_line(&mut request).is_err() {
        return;
    }
    // Headers are read and ignored but for the body's length; the connection closes
    // after one reply.
    let mut line = String::new();
    let mut length = 0;
    while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
        line.clear();
    }
    let target = request.split_whitespace().nth(1).unwrap_or("/");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let (status, kind, body) = if request.starts_with("POST ") && path == "/receipt" {
        let mut text = vec![0; length];
        if reader.read_exact(&mut text).is_err() {
            return;
        }
        let workspace = query.strip_prefix("workspace=").unwrap_or_default();
        RECEIPTS.lock().unwrap_or_else(|e| e.into_inner()).push((
            workspace.to_string(),
            String::from_utf8_lossy(&text).into_owned(),
        ));
        ("200 OK", "text/plain", "kept")
    } else if path == "/gate" {
        hold_at_gate(query.strip_prefix("name=").unwrap_or_default());
        ("200 OK", "text/plain", "open")
    } else {
        match FILES.iter().find(|(p, _, _)| *p == path) {
            Some((_, kind, body)) => ("200 OK", *kind, *body),
            None => ("404 Not Found", "text/plain", "not found"),
        }
    };
    let mut out = &stream;
    let _ = write!(
        out,
        "HTTP/1.1 {status}\r\nContent-Type: {kind}; charset=utf-8\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}
