//! One WebSocket client: this thread reads its requests, a writer thread of its own
//! sends everything it gets (replies, events) from a bounded queue. A client that
//! does not keep up (its queue full, or a write stuck for a while) is dropped: no
//! other client, and no monitor, ever waits for it.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, TrySendError};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tungstenite::{Bytes, Message, Utf8Bytes, WebSocket};

use super::lock;
use super::{Shared, api};

/// Messages a client may have waiting before it is dropped.
pub const QUEUE: usize = 256;
/// Long calls (each on a thread of its own) one client may have running at once.
const CALLS: usize = 32;
/// How long one write to a client may block before the client is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Requests are small; anything past this is refused by the WebSocket layer.
const MAX_MESSAGE: usize = 1 << 20;

enum Out {
    Text(Utf8Bytes),
    Pong(Bytes),
    Close(CloseCode, &'static str),
}

/// The sending side of a client, shared by its reader, the calls it started and the
/// event hub.
pub struct Outbox {
    id: u64,
    peer: SocketAddr,
    tx: Sender<Out>,
    stream: TcpStream,
    dropped: AtomicBool,
    /// Long calls running for this client.
    calls: AtomicUsize,
    /// Dropped when the client leaves: its waits see [`Outbox::gone`] disconnect.
    here: Mutex<Option<Sender<()>>>,
    gone: Receiver<()>,
}

impl Outbox {
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Queues a text message; false when the client is gone or was just dropped
    /// because its queue is full.
    pub fn send(&self, text: impl Into<Utf8Bytes>) -> bool {
        match self.tx.try_send(Out::Text(text.into())) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                self.drop_client(&format!("{QUEUE} messages waited for it"));
                false
            }
            Err(TrySendError::Disconnected(_)) => false,
        }
    }

    /// Counts a long call in, unless the client already has [`CALLS`] running; the
    /// call counts itself out with [`Outbox::call_done`].
    /// Disconnects (never sends) once the client has left: a long call of its selects
    /// on it and ends its waits (a prompt being delivered still finishes).
    pub fn gone(&self) -> Receiver<()> {
        self.gone.clone()
    }

    pub fn call_started(&self) -> bool {
        self.calls
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < CALLS).then_some(n + 1)
            })
            .is_ok()
    }

    pub fn call_done(&self) {
        self.calls.fetch_sub(1, Ordering::SeqCst);
    }

    /// Says goodbye with a close frame (or, if the queue is full, just hangs up).
    pub fn close(&self, code: CloseCode, why: &'static str) {
        if self.tx.try_send(Out::Close(code, why)).is_err() {
            let _ = self.stream.shutdown(Shutdown::Both);
        }
    }

    fn drop_client(&self, why: &str) {
        if !self.dropped.swap(true, Ordering::SeqCst) {
            warn!("angrav: serve: client {} dropped: {why}", self.peer);
            let _ = self.stream.shutdown(Shutdown::Both);
        }
    }
}

/// The reader's side of the socket. Writing belongs to the writer thread: the
/// replies tungstenite would write from here (pongs, the close reply) are discarded,
/// and the reader asks the writer for them instead.
struct ReadHalf(TcpStream);

impl Read for ReadHalf {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl Write for ReadHalf {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn config() -> WebSocketConfig {
    // A small read buffer (it grows for a large request): tungstenite zeroes all of
    // it before each read.
    WebSocketConfig::default()
        .read_buffer_size(4 << 10)
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE))
}

/// Serves one client whose upgrade was accepted, until it leaves or is dropped.
/// `rest`: bytes it sent right after its request head.
pub fn run(shared: Arc<Shared>, stream: TcpStream, rest: Vec<u8>, peer: SocketAddr) {
    let Some(alive) = shared.alive() else {
        return; // stopping
    };
    let (Ok(write_stream), Ok(control)) = (stream.try_clone(), stream.try_clone()) else {
        return;
    };
    let _ = stream.set_read_timeout(None);
    let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
    let (tx, rx) = crossbeam_channel::bounded(QUEUE);
    let (here, gone) = crossbeam_channel::bounded(0);
    let outbox = Arc::new(Outbox {
        id: shared.next_client_id(),
        peer,
        tx,
        stream: control,
        dropped: AtomicBool::new(false),
        calls: AtomicUsize::new(0),
        here: Mutex::new(Some(here)),
        gone,
    });
    let writer = WebSocket::from_raw_socket(write_stream, Role::Server, Some(config()));
    let spawned = std::thread::Builder::new()
        .name(format!("serve writer {peer}"))
        .stack_size(128 * 1024)
        .spawn({
            let outbox = outbox.clone();
            move || write_loop(writer, rx, &outbox, alive)
        });
    if spawned.is_err() {
        return;
    }
    lock(&shared.clients).insert(outbox.id, outbox.clone());
    let mut reader =
        WebSocket::from_partially_read(ReadHalf(stream), rest, Role::Server, Some(config()));
    loop {
        match reader.read() {
            Ok(Message::Text(text)) => api::handle(&shared, &outbox, text.as_str()),
            Ok(Message::Binary(_)) => {
                api::refuse_binary(&outbox);
            }
            Ok(Message::Ping(data)) => {
                let _ = outbox.tx.try_send(Out::Pong(data));
            }
            Ok(Message::Close(_)) | Err(_) => break,
            Ok(Message::Pong(_) | Message::Frame(_)) => {}
        }
    }
    lock(&shared.table).unsubscribe(outbox.id);
    lock(&shared.clients).remove(&outbox.id);
    // Counted before they are told: a cancelled wait ends at once.
    let running = outbox.calls.load(Ordering::SeqCst);
    lock(&outbox.here).take();
    if running > 0 {
        warn!(
            "angrav: serve: client {peer} left with {running} call(s) running: their waits end; \
             a prompt being typed is taken out of its editor, one submitted is followed and journaled"
        );
    }
    outbox.close(CloseCode::Normal, "");
}

fn write_loop(
    mut ws: WebSocket<TcpStream>,
    rx: Receiver<Out>,
    outbox: &Outbox,
    _alive: Sender<()>,
) {
    for out in rx {
        let sent = match out {
            Out::Text(t) => ws.send(Message::Text(t)),
            Out::Pong(p) => ws.send(Message::Pong(p)),
            Out::Close(code, why) => {
                let frame = CloseFrame {
                    code,
                    reason: why.into(),
                };
                let _ = ws.close(Some(frame));
                let _ = ws.flush();
                break;
            }
        };
        if let Err(e) = sent {
            if !matches!(
                e,
                tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed
            ) {
                outbox.drop_client(&format!("writing to it failed ({e})"));
            }
            break;
        }
    }
    let _ = outbox.stream.shutdown(Shutdown::Both);
}
