//! A tiny HTTP server for the fixture pages, compiled into the binary so the
//! simulator runs from anywhere. It listens on 127.0.0.1 only; pages reach it as
//! `localhost` too, which is another site to Chromium (for the out-of-process iframe).

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};

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

fn serve(stream: TcpStream) {
    let mut reader = BufReader::new(&stream);
    let mut request = String::new();
    if reader.read_line(&mut request).is_err() {
        return;
    }
    // Headers are read and ignored; the connection closes after one reply.
    let mut line = String::new();
    while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
        line.clear();
    }
    let path = request.split_whitespace().nth(1).unwrap_or("/");
    let path = path.split('?').next().unwrap_or(path);
    let (status, kind, body) = match FILES.iter().find(|(p, _, _)| *p == path) {
        Some((_, kind, body)) => ("200 OK", *kind, *body),
        None => ("404 Not Found", "text/plain", "not found"),
    };
    let mut out = &stream;
    let _ = write!(
        out,
        "HTTP/1.1 {status}\r\nContent-Type: {kind}; charset=utf-8\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}
