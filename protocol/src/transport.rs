//! One WebSocket to one target.
//!
//! A [`Connection`] is owned by one thread. Calls may be pipelined ([`Connection::send`]
//! then [`Connection::wait`]); replies are matched to calls by id, whatever order they
//! come in, and events read while a call waits are kept in order for
//! [`Connection::next_event`]. Nothing times out unless a caller gave a deadline: a quiet
//! page is normal for a monitor. Another thread stops a blocked reader at once through a
//! [`CloseHandle`].

use std::collections::{HashMap, VecDeque};
use std::io::ErrorKind;
use std::marker::PhantomData;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use tungstenite::protocol::WebSocketConfig;
use tungstenite::{HandshakeError, Message, WebSocket};

use crate::message::{self, Parsed};
use crate::{CdpError, Command, Error, Event, Result};

/// Large enough for any DOM dump or screenshot a page will send.
const MAX_MESSAGE: usize = 256 << 20;
/// Events kept for a reader that does not read them; the oldest go first past this.
const MAX_BUFFERED_EVENTS: usize = 4096;
const READ_BUFFER: usize = 16 << 10;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// A write that cannot make progress this long means the peer is wedged.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Chrome's DevTools server listens with a short backlog (10): more simultaneous
/// connects overflow it, and the kernel's SYN cookies then delay some by a second.
/// Opening many sessions at once therefore goes a few connections at a time (HTTP
/// requests too).
const MAX_HANDSHAKES: usize = 8;
pub(crate) static HANDSHAKES: Slots = Slots::new(MAX_HANDSHAKES);

/// A counting semaphore.
pub(crate) struct Slots {
    free: std::sync::Mutex<usize>,
    freed: std::sync::Condvar,
}

pub(crate) struct Slot<'a>(&'a Slots);

impl Slots {
    const fn new(n: usize) -> Slots {
        Slots {
            free: std::sync::Mutex::new(n),
            freed: std::sync::Condvar::new(),
        }
    }

    pub(crate) fn acquire(&self) -> Slot<'_> {
        let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
        while *free == 0 {
            free = self.freed.wait(free).unwrap_or_else(|p| p.into_inner());
        }
        *free -= 1;
        Slot(self)
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        *self.0.free.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        self.0.freed.notify_one();
    }
}

/// A call sent and not yet waited for; `wait` decodes its reply as `R`.
#[must_use = "a sent call's reply is only read through Connection::wait"]
pub struct CallId<R> {
    id: u64,
    method: &'static str,
    sent: Instant,
    _reply: PhantomData<fn() -> R>,
}

pub struct Connection {
    ws: WebSocket<TcpStream>,
    next_id: u64,
    /// Calls sent whose reply nobody has taken, with their method names.
    in_flight: HashMap<u64, &'static str>,
    /// Replies that arrived while the reader waited for another id.
    replies: HashMap<u64, std::result::Result<Box<RawValue>, CdpError>>,
    events: VecDeque<Event>,
    /// Why the connection is finished, once it is.
    dead: Option<Error>,
    close: CloseHandle,
}

/// Closes a [`Connection`] from any thread; its blocked reader returns
/// [`Error::Interrupted`] at once.
#[derive(Clone)]
pub struct CloseHandle {
    stream: Arc<TcpStream>,
    requested: Arc<AtomicBool>,
}

impl CloseHandle {
    pub fn close(&self) {
        self.requested.store(true, Ordering::SeqCst);
        let _ = self.stream.shutdown(Shutdown::Both);
    }
}

/// Closes every connection added to it, now or later: one `close` stops a reader
/// even when it has since reconnected.
#[derive(Default)]
pub struct CloseGroup {
    closed: AtomicBool,
    members: std::sync::Mutex<Vec<CloseHandle>>,
}

impl CloseGroup {
    pub fn add(&self, handle: CloseHandle) {
        let mut members = self.members.lock().unwrap_or_else(|p| p.into_inner());
        if self.closed.load(Ordering::SeqCst) {
            handle.close();
            return;
        }
        // Handles of connections that are gone are dropped as new ones come.
        members.retain(|h| Arc::strong_count(&h.stream) > 1);
        members.push(handle);
    }

    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        for h in self
            .members
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
        {
            h.close();
        }
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }
}

impl Connection {
    /// Opens `ws://host:port/devtools/...`. A host name is resolved first and the
    /// request sent to the address: Chrome refuses a `Host` that is not an IP or `localhost`.
    pub fn open(ws_url: &str) -> Result<Connection> {
        let fail = |detail: String| Error::Connect {
            url: ws_url.to_string(),
            detail,
        };
        let rest = ws_url
            .strip_prefix("ws://")
            .ok_or_else(|| fail("not a ws:// URL".into()))?;
        let (hostport, path) = rest.split_once('/').unwrap_or((rest, ""));
        let addr = resolve_hostport(hostport).map_err(fail)?;
        let _slot = HANDSHAKES.acquire();
        let stream = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)
            .map_err(|e| fail(format!("{addr}: {e}")))?;
        stream.set_nodelay(true).map_err(|e| fail(e.to_string()))?;
        stream
            .set_write_timeout(Some(WRITE_TIMEOUT))
            .map_err(|e| fail(e.to_string()))?;
        // The handshake itself gets a deadline; calls set their own afterwards.
        stream
            .set_read_timeout(Some(CONNECT_TIMEOUT))
            .map_err(|e| fail(e.to_string()))?;
        let shared = stream.try_clone().map_err(|e| fail(e.to_string()))?;
        // A small read buffer: it grows for a large message, and a monitor of many
        // sessions holds one per session.
        let config = WebSocketConfig::default()
            .read_buffer_size(READ_BUFFER)
            .max_message_size(Some(MAX_MESSAGE))
            .max_frame_size(Some(MAX_MESSAGE));
        let url = format!("ws://{addr}/{path}");
        let (ws, _) = tungstenite::client::client_with_config(url.as_str(), stream, Some(config))
            .map_err(|e| match e {
            HandshakeError::Failure(tungstenite::Error::Http(answer)) => Error::NoTarget {
                url: ws_url.to_string(),
                detail: refusal(&answer),
            },
            e => fail(e.to_string()),
        })?;
        Ok(Connection {
            ws,
            next_id: 1,
            in_flight: HashMap::new(),
            replies: HashMap::new(),
            events: VecDeque::new(),
            dead: None,
            close: CloseHandle {
                stream: Arc::new(shared),
                requested: Arc::default(),
            },
        })
    }

    pub fn close_handle(&self) -> CloseHandle {
        self.close.clone()
    }

    /// Sends a command and waits for its reply, at most `timeout`.
    pub fn call<C: Command>(&mut self, cmd: &C, timeout: Duration) -> Result<C::Response> {
        let id = self.send(cmd)?;
        self.wait(id, Instant::now() + timeout)
    }

    /// Sends a command without waiting; pass the id to [`Connection::wait`].
    pub fn send<C: Command>(&mut self, cmd: &C) -> Result<CallId<C::Response>> {
        self.check_alive()?;
        let id = self.next_id;
        self.next_id += 1;
        let text = serde_json::to_string(&Outgoing {
            id,
            method: C::METHOD,
            params: cmd,
        })
        .map_err(|e| Error::Decode {
            what: "command".into(),
            detail: e.to_string(),
        })?;
        if let Err(e) = self.ws.send(Message::text(text)) {
            return Err(self.fail(format!("sending {}: {e}", C::METHOD)));
        }
        self.in_flight.insert(id, C::METHOD);
        Ok(CallId {
            id,
            method: C::METHOD,
            sent: Instant::now(),
            _reply: PhantomData,
        })
    }

    /// Waits for the reply to a call sent earlier, reading (and keeping) events meanwhile.
    pub fn wait<R: DeserializeOwned>(&mut self, call: CallId<R>, deadline: Instant) -> Result<R> {
        loop {
            if let Some(reply) = self.replies.remove(&call.id) {
                return match reply {
                    Ok(raw) => message::decode(&raw, call.method),
                    Err(error) => Err(Error::Cdp {
                        method: call.method.to_string(),
                        error,
                    }),
                };
            }
            if let Err(e) = self.check_alive() {
                self.in_flight.remove(&call.id);
                return Err(e);
            }
            if !self.read_one(Some(deadline))? {
                // A reply that comes later has nobody to go to: forget the id.
                self.in_flight.remove(&call.id);
                return Err(Error::Timeout {
                    method: call.method.to_string(),
                    after: call.sent.elapsed(),
                });
            }
        }
    }

    /// The next event, oldest first: `Ok(None)` when the deadline passes first.
    /// Without a deadline, waits as long as the connection lives.
    pub fn next_event(&mut self, deadline: Option<Instant>) -> Result<Option<Event>> {
        loop {
            if let Some(event) = self.events.pop_front() {
                return Ok(Some(event));
            }
            self.check_alive()?;
            if !self.read_one(deadline)? {
                return Ok(None);
            }
        }
    }

    fn check_alive(&self) -> Result<()> {
        match &self.dead {
            None => Ok(()),
            Some(Error::Interrupted) => Err(Error::Interrupted),
            Some(e) => Err(Error::TargetClosed {
                reason: reason_of(e),
            }),
        }
    }

    /// Marks the connection finished and returns the error callers see.
    fn fail(&mut self, reason: String) -> Error {
        let err = if self.close.requested.load(Ordering::SeqCst) {
            Error::Interrupted
        } else {
            Error::TargetClosed { reason }
        };
        if self.dead.is_none() {
            let _ = self.close.stream.shutdown(Shutdown::Both);
            self.dead = Some(match &err {
                Error::Interrupted => Error::Interrupted,
                e => Error::TargetClosed {
                    reason: reason_of(e),
                },
            });
        }
        self.in_flight.clear();
        err
    }

    /// Reads and files one message. `Ok(false)`: the deadline passed first.
    fn read_one(&mut self, deadline: Option<Instant>) -> Result<bool> {
        let timeout = match deadline {
            None => None,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Ok(false);
                }
                // A zero timeout means "none" to the OS: never pass one.
                Some(left.max(Duration::from_millis(1)))
            }
        };
        if let Err(e) = self.ws.get_ref().set_read_timeout(timeout) {
            return Err(self.fail(format!("socket: {e}")));
        }
        let msg = loop {
            match self.ws.read() {
                Ok(m) => break m,
                Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::Interrupted => continue,
                Err(tungstenite::Error::Io(e))
                    if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
                {
                    return Ok(false);
                }
                Err(tungstenite::Error::Capacity(e)) => {
                    return Err(self.fail(format!("the browser sent a message too large: {e}")));
                }
                Err(e) => return Err(self.fail(format!("the connection ended: {e}"))),
            }
        };
        let bytes: &[u8] = match &msg {
            Message::Text(t) => t.as_bytes(),
            Message::Binary(b) => b,
            Message::Close(_) => {
                return Err(self.fail("the browser closed the connection".into()));
            }
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => return Ok(true),
        };
        match message::parse(bytes) {
            Ok(Parsed::Reply { id, reply }) => {
                // Only replies someone is waiting for are kept; others are dropped.
                if self.in_flight.remove(&id).is_some() {
                    self.replies.insert(id, reply);
                }
            }
            Ok(Parsed::Event(event)) => {
                if let Some(reason) = closing_event(&event) {
                    self.events.push_back(event);
                    return Err(self.fail(reason));
                }
                if self.events.len() >= MAX_BUFFERED_EVENTS {
                    self.events.pop_front();
                }
                self.events.push_back(event);
            }
            // Not JSON, or JSON of no known shape: a broken peer; tolerate it.
            Ok(Parsed::Other) | Err(_) => {}
        }
        Ok(true)
    }
}

/// Events after which the target answers nothing more.
fn closing_event(event: &Event) -> Option<String> {
    match event.method.as_str() {
        "Inspector.detached" => {
            let reason = event
                .decode::<serde_json::Value>()
                .ok()
                .and_then(|v| v.get("reason")?.as_str().map(str::to_string))
                .unwrap_or_default();
            Some(format!("detached ({reason})"))
        }
        "Inspector.targetCrashed" => Some("the target crashed".into()),
        _ => None,
    }
}

/// The browser's refusal of an upgrade: its status, and its body's words.
fn refusal(answer: &tungstenite::http::Response<Option<Vec<u8>>>) -> String {
    let body = answer.body().as_deref().unwrap_or_default();
    let said = String::from_utf8_lossy(body);
    match said.trim() {
        "" => format!("HTTP {}", answer.status()),
        said => format!("HTTP {} ({said})", answer.status()),
    }
}

fn reason_of(e: &Error) -> String {
    match e {
        Error::TargetClosed { reason } => reason.clone(),
        other => other.to_string(),
    }
}

fn resolve_hostport(hostport: &str) -> std::result::Result<SocketAddr, String> {
    let (host, port) = hostport.rsplit_once(':').ok_or("no port in the URL")?;
    let port = port.parse().map_err(|_| format!("bad port '{port}'"))?;
    crate::discovery::resolve(host.trim_start_matches('[').trim_end_matches(']'), port)
}

#[derive(Serialize)]
struct Outgoing<'a, P> {
    id: u64,
    method: &'a str,
    params: &'a P,
}
