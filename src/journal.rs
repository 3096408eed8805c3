//! The journal: every event angrav sees, appended as NDJSON to `journal.ndjson` in the
//! state directory, each line `{"seq", "timestamp", "kind", ...fields}`. `seq` keeps
//! growing across runs and processes: an append takes the journal's lock, reads the
//! last line's seq, writes its lines and lets go. Appends happen on a thread of their
//! own, fed through a channel, so recording an event costs its caller a channel send.
//! When the live file passes half the size limit it becomes `journal.1.ndjson` (the
//! previous old file is dropped), so at most the limit is kept.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use crossbeam_channel::{Receiver, Sender};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::sessions::Session;
use crate::state::{StateDir, StateError, corrupt, io_error};
use crate::timestamp::{parse_rfc3339, rfc3339};

/// Kept in all (the live file and the old one), by default: 50 MB.
pub const DEFAULT_LIMIT: u64 = 50 * 1024 * 1024;
const LIVE: &str = "journal.ndjson";
const OLD: &str = "journal.1.ndjson";
const LOCK: &str = "journal";
/// At most this many events go into one append (one lock, one write).
const BATCH: usize = 1024;

/// What an event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Snapshot,
    StateChange,
    NewSession,
    SessionClosed,
    PromptSent,
    TurnFinished,
    ApprovalDecided,
    EndpointLost,
    EndpointBack,
}

impl Kind {
    pub const ALL: [Kind; 9] = [
        Kind::Snapshot,
        Kind::StateChange,
        Kind::NewSession,
        Kind::SessionClosed,
        Kind::PromptSent,
        Kind::TurnFinished,
        Kind::ApprovalDecided,
        Kind::EndpointLost,
        Kind::EndpointBack,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Snapshot => "snapshot",
            Kind::StateChange => "state_change",
            Kind::NewSession => "new_session",
            Kind::SessionClosed => "session_closed",
            Kind::PromptSent => "prompt_sent",
            Kind::TurnFinished => "turn_finished",
            Kind::ApprovalDecided => "approval_decided",
            Kind::EndpointLost => "endpoint_lost",
            Kind::EndpointBack => "endpoint_back",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == s)
    }
}

/// A prompt angrav sent: the fields of a `prompt_sent` event, and the first half of a
/// turn record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sent {
    /// The session's id as printed (the shortest unique prefix).
    pub session: String,
    pub target_id: String,
    pub workspace: Option<String>,
    pub prompt: String,
    /// RFC 3339.
    pub started: String,
}

impl Sent {
    pub fn new(session: &Session, prompt: &str, started: SystemTime) -> Sent {
        Sent {
            session: session.id.clone(),
            target_id: session.target_id.clone(),
            workspace: session.workspace.clone(),
            prompt: prompt.to_string(),
            started: rfc3339(started),
        }
    }
}

/// How a turn ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TurnOutcome {
    Idle,
    Approval,
    Error,
    Timeout,
}

impl TurnOutcome {
    pub fn name(self) -> &'static str {
        match self {
            TurnOutcome::Idle => "idle",
            TurnOutcome::Approval => "approval",
            TurnOutcome::Error => "error",
            TurnOutcome::Timeout => "timeout",
        }
    }
}

/// The end of a turn: the second half of a turn record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ended {
    /// RFC 3339.
    pub finished: String,
    pub duration_ms: u64,
    pub outcome: TurnOutcome,
    /// The answer as extracted at the end of the turn (empty: none).
    pub answer: String,
    /// In characters.
    pub answer_len: usize,
}

impl Ended {
    pub fn new(
        outcome: TurnOutcome,
        answer: &str,
        duration: Duration,
        finished: SystemTime,
    ) -> Ended {
        Ended {
            finished: rfc3339(finished),
            duration_ms: duration.as_millis() as u64,
            outcome,
            answer: answer.to_string(),
            answer_len: answer.chars().count(),
        }
    }
}

/// A finished turn, as a `turn_finished` event carries it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TurnRecord {
    #[serde(flatten)]
    pub sent: Sent,
    #[serde(flatten)]
    pub ended: Ended,
}

/// One prompt as `angrav turns` lists it: sent, and ended when angrav saw it end.
#[derive(Debug, Clone, Serialize)]
pub struct Turn {
    pub seq: u64,
    #[serde(flatten)]
    pub sent: Sent,
    #[serde(flatten)]
    pub ended: Option<Ended>,
}

struct Pending {
    at: SystemTime,
    kind: Kind,
    fields: Value,
}

/// Appends events to the journal on a thread of its own. Dropping it writes what
/// is still queued, then returns.
pub struct Journal {
    tx: Option<Sender<Pending>>,
    thread: Option<JoinHandle<()>>,
}

impl Journal {
    pub fn open(dir: StateDir) -> Journal {
        Journal::with_limit(dir, DEFAULT_LIMIT)
    }

    /// A journal that keeps about `limit` bytes (the live file rotates at half).
    pub fn with_limit(dir: StateDir, limit: u64) -> Journal {
        Journal::start(dir, limit, None)
    }

    /// A journal that also sends every entry it appended, with its seq, to `echo`:
    /// for a reader that replays the journal (`read`, after a seq) and then goes on
    /// live with the entries of this run, dropping those at or below the `last_seq`
    /// of its replay, with no gap and no duplicate.
    pub fn with_echo(dir: StateDir, echo: Sender<Entry>) -> Journal {
        Journal::start(dir, DEFAULT_LIMIT, Some(echo))
    }

    fn start(dir: StateDir, limit: u64, echo: Option<Sender<Entry>>) -> Journal {
        let (tx, rx) = crossbeam_channel::unbounded();
        let thread = std::thread::Builder::new()
            .name("journal".into())
            .spawn(move || write_all(&dir, limit, rx, echo))
            .expect("spawn the journal thread");
        Journal {
            tx: Some(tx),
            thread: Some(thread),
        }
    }

    /// Queues an event; `fields` is a JSON object (`session`, `target_id`, `workspace`,
    /// and what the kind carries). Its time is now, unless `fields` has a `timestamp`.
    pub fn record(&self, kind: Kind, fields: Value) {
        let pending = Pending {
            at: SystemTime::now(),
            kind,
            fields,
        };
        if let Some(tx) = &self.tx {
            // The thread only ends when the sender is dropped, in `drop`.
            let _ = tx.send(pending);
        }
    }

    /// A `prompt_sent` event, stamped with the time it was sent.
    pub fn record_prompt(&self, sent: &Sent) {
        let mut fields = serde_json::to_value(sent).expect("serialises");
        fields["timestamp"] = Value::String(sent.started.clone());
        self.record(Kind::PromptSent, fields);
    }

    /// A `turn_finished` event, stamped with the turn's end.
    pub fn record_turn(&self, turn: &TurnRecord) {
        let mut fields = serde_json::to_value(turn).expect("serialises");
        fields["timestamp"] = Value::String(turn.ended.finished.clone());
        self.record(Kind::TurnFinished, fields);
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The journal thread: appends batches until every sender is gone. After a failure
/// (said once on stderr) the rest of the run's events are dropped.
fn write_all(dir: &StateDir, limit: u64, rx: Receiver<Pending>, echo: Option<Sender<Entry>>) {
    let mut failed = false;
    while let Ok(first) = rx.recv() {
        let batch: Vec<Pending> = std::iter::once(first)
            .chain(rx.try_iter().take(BATCH - 1))
            .collect();
        if failed {
            continue;
        }
        match (append(dir, limit, &batch), &echo) {
            (Ok(written), Some(echo)) => {
                for entry in written.lines().filter_map(|l| parse(l.as_bytes())) {
                    let _ = echo.send(entry);
                }
            }
            (Ok(_), None) => {}
            (Err(e), _) => {
                eprintln!("angrav: journal: {e}; events of this run are no longer journaled");
                failed = true;
            }
        }
    }
}

/// One append: under the lock, the next seqs after the journal's last. Returns
/// the text written.
fn append(dir: &StateDir, limit: u64, batch: &[Pending]) -> Result<String, StateError> {
    let _lock = dir.lock(LOCK)?;
    let live = dir.file(LIVE);
    let mut file = open_append(&live)?;
    let len = file.metadata().map_err(|e| io_error(&live, e))?.len();
    let (mut seq, clean) = match tail(&mut file, len, &live)? {
        Tail::Empty => (old_seq(dir)?, true),
        Tail::Line { seq, clean } => (seq, clean),
    };
    let mut out = String::new();
    if len > 0 && len >= limit / 2 {
        fs::rename(&live, dir.file(OLD)).map_err(|e| io_error(&live, e))?;
        file = open_append(&live)?;
    } else if !clean {
        // A line cut short (a crash mid-write) is ended, so ours start clean.
        out.push('\n');
    }
    for p in batch {
        seq += 1;
        out += &line(seq, p);
    }
    file.write_all(out.as_bytes())
        .map_err(|e| io_error(&live, e))?;
    Ok(out)
}

fn open_append(path: &Path) -> Result<File, StateError> {
    OpenOptions::new()
        .create(true)
        .read(true)
        .append(true)
        .open(path)
        .map_err(|e| io_error(path, e))
}

/// The last seq of the old file (the live one is empty after a rotation).
fn old_seq(dir: &StateDir) -> Result<u64, StateError> {
    let path = dir.file(OLD);
    let mut file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(io_error(&path, e)),
    };
    let len = file.metadata().map_err(|e| io_error(&path, e))?.len();
    Ok(match tail(&mut file, len, &path)? {
        Tail::Empty => 0,
        Tail::Line { seq, .. } => seq,
    })
}

enum Tail {
    Empty,
    /// The last complete line's seq; `clean`: nothing follows its newline.
    Line {
        seq: u64,
        clean: bool,
    },
}

/// Reads a journal file backwards to its last complete line.
fn tail(file: &mut File, len: u64, path: &Path) -> Result<Tail, StateError> {
    if len == 0 {
        return Ok(Tail::Empty);
    }
    let (mut buf, mut pos, mut step) = (Vec::new(), len, 4096u64);
    loop {
        let n = step.min(pos);
        pos -= n;
        let mut chunk = vec![0; n as usize];
        file.seek(SeekFrom::Start(pos))
            .and_then(|_| file.read_exact(&mut chunk))
            .map_err(|e| io_error(path, e))?;
        chunk.extend_from_slice(&buf);
        buf = chunk;
        step *= 2;
        let Some(end) = buf.iter().rposition(|&b| b == b'\n') else {
            if pos == 0 {
                return Err(corrupt(path, "no complete line"));
            }
            continue;
        };
        let start = match buf[..end].iter().rposition(|&b| b == b'\n') {
            Some(i) => i + 1,
            None if pos == 0 => 0,
            None => continue,
        };
        #[derive(Deserialize)]
        struct Seq {
            seq: u64,
        }
        let Seq { seq } = serde_json::from_slice(&buf[start..end])
            .map_err(|_| corrupt(path, "its last line is not a journal entry"))?;
        return Ok(Tail::Line {
            seq,
            clean: end == buf.len() - 1,
        });
    }
}

/// `{"seq":N,"timestamp":"...","kind":"...",...fields}` and a newline.
fn line(seq: u64, p: &Pending) -> String {
    let mut fields = match &p.fields {
        Value::Object(m) => m.clone(),
        Value::Null => Map::new(),
        other => Map::from_iter([("data".to_string(), other.clone())]),
    };
    fields.remove("seq");
    fields.remove("kind");
    let timestamp = match fields.remove("timestamp") {
        Some(Value::String(t)) => t,
        _ => rfc3339(p.at),
    };
    let head = format!(
        "{{\"seq\":{seq},\"timestamp\":{},\"kind\":\"{}\"",
        Value::String(timestamp),
        p.kind.name()
    );
    let rest = Value::Object(fields).to_string();
    match rest.as_str() {
        "{}" => head + "}\n",
        _ => head + "," + &rest[1..] + "\n",
    }
}

/// Which entries to read.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub since: Since,
    /// Empty: every session.
    pub sessions: Vec<Who>,
    pub kind: Option<Kind>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub enum Since {
    #[default]
    Start,
    /// Entries after this seq.
    Seq(u64),
    /// Entries stamped at or after this time.
    Time(SystemTime),
}

/// A session an entry may be about.
#[derive(Debug, Clone, PartialEq)]
pub enum Who {
    /// Exactly this target id (an alias or group member, resolved).
    Target(String),
    /// A prefix of the target id or printed id (any case), or the workspace name.
    Query(String),
}

impl Who {
    fn matches(&self, entry: &Value) -> bool {
        let field = |k: &str| entry.get(k).and_then(Value::as_str);
        match self {
            Who::Target(t) => field("target_id") == Some(t),
            Who::Query(q) => {
                let q_up = q.to_ascii_uppercase();
                let prefix =
                    |k: &str| field(k).is_some_and(|v| v.to_ascii_uppercase().starts_with(&q_up));
                prefix("target_id") || prefix("session") || field("workspace") == Some(q)
            }
        }
    }
}

/// One journal line as stored, with its parsed form.
#[derive(Debug, Clone)]
pub struct Entry {
    pub seq: u64,
    pub line: String,
    pub value: Value,
}

/// What `read` found.
#[derive(Debug, Default)]
pub struct Journaled {
    /// The matching entries, in seq order.
    pub entries: Vec<Entry>,
    /// The journal's last seq (matching or not; 0 when empty): resuming after it
    /// misses nothing and repeats nothing.
    pub last_seq: u64,
    /// Lines that are no journal entry (a line cut short by a crash), left out.
    pub skipped: usize,
}

/// Reads the journal (the old file, then the live one) under its lock.
pub fn read(dir: &StateDir, filter: &Filter) -> Result<Journaled, StateError> {
    let texts = {
        let _lock = dir.lock(LOCK)?;
        [OLD, LIVE]
            .into_iter()
            .map(|name| {
                let path = dir.file(name);
                match fs::read(&path) {
                    Ok(b) => Ok(b),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
                    Err(e) => Err(io_error(&path, e)),
                }
            })
            .collect::<Result<Vec<_>, _>>()?
    };
    let mut out = Journaled::default();
    for text in &texts {
        for raw in text.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let Some(entry) = parse(raw) else {
                out.skipped += 1;
                continue;
            };
            out.last_seq = out.last_seq.max(entry.seq);
            if filter.admits(&entry) {
                out.entries.push(entry);
            }
        }
    }
    Ok(out)
}

fn parse(raw: &[u8]) -> Option<Entry> {
    let line = std::str::from_utf8(raw).ok()?;
    let value: Value = serde_json::from_str(line).ok()?;
    let seq = value.get("seq")?.as_u64()?;
    Some(Entry {
        seq,
        line: line.to_string(),
        value,
    })
}

impl Filter {
    fn admits(&self, e: &Entry) -> bool {
        let since = match self.since {
            Since::Start => true,
            Since::Seq(s) => e.seq > s,
            Since::Time(t) => e
                .value
                .get("timestamp")
                .and_then(Value::as_str)
                .and_then(parse_rfc3339)
                .is_some_and(|at| at >= t),
        };
        let kind = self
            .kind
            .is_none_or(|k| e.value.get("kind").and_then(Value::as_str) == Some(k.name()));
        let who = self.sessions.is_empty() || self.sessions.iter().any(|w| w.matches(&e.value));
        since && kind && who
    }
}

/// The prompts among `entries` (in seq order), each with its end when a
/// `turn_finished` of the same window and prompt followed.
pub fn turns(entries: &[Entry]) -> Vec<Turn> {
    let mut out: Vec<Turn> = Vec::new();
    for e in entries {
        match e.value.get("kind").and_then(Value::as_str) {
            Some("prompt_sent") => {
                if let Ok(sent) = serde_json::from_value::<Sent>(e.value.clone()) {
                    out.push(Turn {
                        seq: e.seq,
                        sent,
                        ended: None,
                    });
                }
            }
            Some("turn_finished") => {
                let Ok(rec) = serde_json::from_value::<TurnRecord>(e.value.clone()) else {
                    continue;
                };
                // The prompt's own `prompt_sent`, if it is listed, gives way to it.
                if let Some(i) = out.iter().rposition(|t| {
                    t.ended.is_none()
                        && t.sent.target_id == rec.sent.target_id
                        && t.sent.prompt == rec.sent.prompt
                }) {
                    out.remove(i);
                }
                out.push(Turn {
                    seq: e.seq,
                    sent: rec.sent,
                    ended: Some(rec.ended),
                });
            }
            _ => {}
        }
    }
    out
}
