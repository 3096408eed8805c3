//! The journal: every event angrav sees, appended as NDJSON to `journal.ndjson` in the
//! state directory, each line `{"seq", "timestamp", "kind", ...fields}`. `seq` keeps
//! growing across runs and processes: an event's seq is given under the journal's
//! lock (see [`Journal`]), and the lines are written on a thread of their own, so
//! recording an event costs its caller no write.
//! When the live file passes half the size limit it becomes `journal.1.ndjson` (the
//! previous old file is dropped), so at most the limit is kept.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::{Receiver, Sender};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::panel::State;
use crate::sessions::Session;
use crate::state::{Lock, StateDir, StateError, corrupt, io_error, open_private};
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
    /// A session's title (and so its workspace) became known or changed.
    Retitled,
    SessionClosed,
    PromptSent,
    TurnFinished,
    ApprovalDecided,
    /// The approvals showing changed in the same state; one went away (by whom).
    ApprovalChanged,
    /// The question a form asks changed in the same state.
    QuestionChanged,
    ApprovalResolved,
    EndpointLost,
    EndpointBack,
    /// A turn that showed no start, or no change at all, for too long.
    Stalled,
    /// `dispatch` began a run: its id and every prompt (as input lines).
    DispatchStarted,
    /// `dispatch` is about to submit a prompt of a run to a chat (written before the
    /// Enter: a run resumed after a crash never sends it again).
    PromptSubmitted,
    /// A prompt of a `dispatch` run ended: its result line.
    DispatchResult,
}

impl Kind {
    pub const ALL: [Kind; 17] = [
        Kind::Snapshot,
        Kind::StateChange,
        Kind::NewSession,
        Kind::Retitled,
        Kind::SessionClosed,
        Kind::PromptSent,
        Kind::TurnFinished,
        Kind::ApprovalDecided,
        Kind::ApprovalChanged,
        Kind::QuestionChanged,
        Kind::ApprovalResolved,
        Kind::EndpointLost,
        Kind::EndpointBack,
        Kind::Stalled,
        Kind::DispatchStarted,
        Kind::PromptSubmitted,
        Kind::DispatchResult,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Snapshot => "snapshot",
            Kind::StateChange => "state_change",
            Kind::NewSession => "new_session",
            Kind::Retitled => "retitled",
            Kind::SessionClosed => "session_closed",
            Kind::PromptSent => "prompt_sent",
            Kind::TurnFinished => "turn_finished",
            Kind::ApprovalDecided => "approval_decided",
            Kind::ApprovalChanged => "approval_changed",
            Kind::QuestionChanged => "question_changed",
            Kind::ApprovalResolved => "approval_resolved",
            Kind::EndpointLost => "endpoint_lost",
            Kind::EndpointBack => "endpoint_back",
            Kind::Stalled => "stalled",
            Kind::DispatchStarted => "dispatch_started",
            Kind::PromptSubmitted => "prompt_submitted",
            Kind::DispatchResult => "dispatch_result",
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
    /// The window's title and endpoint then (none in lines of older versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Sent by `dispatch`: its run, and the prompt's id in it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
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
            title: Some(session.title.clone()),
            endpoint: Some(session.endpoint.clone()),
            run: None,
            id: None,
            prompt: prompt.to_string(),
            started: rfc3339(started),
        }
    }
}

/// One prompt of `prompt` (the CLI's or serve's) as the journal keeps it:
/// `prompt_sent` once it is delivered, `turn_finished` once its wait saw the turn end.
pub struct PromptRecord {
    sent: Sent,
    begun: Instant,
}

impl PromptRecord {
    /// A prompt about to be sent to `session`, from now.
    pub fn new(session: &Session, prompt: &str) -> PromptRecord {
        PromptRecord {
            sent: Sent::new(session, prompt, SystemTime::now()),
            begun: Instant::now(),
        }
    }

    /// The page showed it delivered: `prompt_sent`.
    pub fn delivered(&self, journal: Option<&Journal>) {
        if let Some(j) = journal {
            j.record_prompt(&self.sent);
        }
    }

    /// Its wait saw the turn end as `outcome`, with `answer` (empty: none).
    pub fn ended(&self, journal: Option<&Journal>, outcome: TurnOutcome, answer: &str) {
        if let Some(j) = journal {
            let ended = Ended::new(outcome, answer, self.begun.elapsed(), SystemTime::now());
            j.record_turn(&TurnRecord {
                sent: self.sent.clone(),
                ended,
            });
        }
    }
}

/// How a turn ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TurnOutcome {
    Idle,
    Approval,
    /// A question form waits for the user's answer (`awaiting_input`).
    Input,
    Error,
    Timeout,
    /// No start, or no change at all in the page, for too long.
    Stalled,
    /// The window closed.
    Closed,
}

impl TurnOutcome {
    /// A turn seen to stop in `state` (the last state seen).
    pub fn stopped(state: Option<State>) -> TurnOutcome {
        match state {
            Some(State::AwaitingApproval) => TurnOutcome::Approval,
            Some(State::AwaitingInput) => TurnOutcome::Input,
            Some(State::Error) => TurnOutcome::Error,
            _ => TurnOutcome::Idle,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            TurnOutcome::Idle => "idle",
            TurnOutcome::Approval => "approval",
            TurnOutcome::Input => "input",
            TurnOutcome::Error => "error",
            TurnOutcome::Timeout => "timeout",
            TurnOutcome::Stalled => "stalled",
            TurnOutcome::Closed => "closed",
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
    seq: u64,
    at: SystemTime,
    kind: Kind,
    fields: Value,
}

/// Records events in the journal. An event's seq is given at once, on the caller's
/// thread (under the journal's lock, taken when this journal does not hold it
/// already); the append itself happens on a thread of its own, which lets the lock go
/// once everything numbered is written. So seqs are unique and increasing in the file
/// across processes, a reader (who takes the lock) never sees a seq given but not yet
/// written, and the caller can print an event with its seq before the write. Dropping
/// the journal writes what is still queued, then returns.
///
/// The file heals: lines that are no journal entry (garbage, a line cut short by a
/// crash) are skipped, said once on stderr, and the seqs go on from the highest one
/// found; they never wrap. An event another recorder already wrote (two watches of
/// the same chats both see a chat change) is not written again: it gets the seq it has.
pub struct Journal {
    dir: StateDir,
    shared: Arc<Mutex<Shared>>,
    /// Told each time a batch is written (see [`Journal::record_now`]).
    wrote: Arc<Condvar>,
    tx: Option<Sender<Pending>>,
    thread: Option<JoinHandle<()>>,
}

/// What the caller's thread and the journal thread share.
#[derive(Default)]
struct Shared {
    /// The journal's lock while seqs given are not all written yet.
    held: Option<Held>,
    /// Why nothing more is journaled in this run (said once on stderr).
    failed: Option<String>,
    /// The highest seq written.
    written: u64,
    /// Damaged lines were said once on stderr.
    said_damaged: bool,
    /// The live file as this journal last left it, and its last seq: when the file
    /// is found so again, no other process wrote since, and the tail need not be read.
    left: Option<(Stamp, u64)>,
    /// The newest event in the file about each chat and endpoint (see [`identity`]).
    latest: HashMap<String, Latest>,
}

impl Shared {
    /// `seq` is now the newest event in the file about its chat or endpoint.
    fn remember(
        &mut self,
        (subject, what, at): (String, String, SystemTime),
        seq: u64,
        mine: bool,
    ) {
        let latest = Latest {
            seq,
            what,
            at,
            mine,
        };
        self.latest.insert(subject, latest);
    }
}

/// A file's length and modification time.
type Stamp = (u64, Option<SystemTime>);

fn stamp(meta: &fs::Metadata) -> Stamp {
    (meta.len(), meta.modified().ok())
}

struct Held {
    _lock: Lock,
    /// The last seq given.
    last: u64,
    /// Seqs given and not written yet.
    unwritten: usize,
    /// The file ends with a line cut short (a crash mid-write): end it first.
    cut: bool,
    /// The live file when the lock was taken.
    stamp: Stamp,
}

/// The newest event about one chat or endpoint, as the file has it.
struct Latest {
    seq: u64,
    what: String,
    at: SystemTime,
    /// This journal wrote it.
    mine: bool,
}

/// Two recorders' events are the same when they are about the same chat (or
/// endpoint), say the same (kind, and the states or title), and were seen within
/// this of each other.
const SAME_WITHIN: Duration = Duration::from_secs(10);

/// How much of the live file's end is read for its last seq and newest events.
const TAIL: u64 = 64 * 1024;

/// What makes an event the same as another recorder's: what it is about, what it
/// says, when it was seen. Only what a watch observes has one; a prompt sent, a
/// decision taken or a snapshot is this process's own.
fn identity(kind: Kind, fields: &Value, at: SystemTime) -> Option<(String, String, SystemTime)> {
    let field = |k: &str| fields.get(k).and_then(Value::as_str);
    let subject = match kind {
        Kind::StateChange
        | Kind::NewSession
        | Kind::Retitled
        | Kind::SessionClosed
        // A window by its target; a conversation of the language server by its id.
        | Kind::Stalled => match field("target_id") {
            Some(t) => format!("session {t}"),
            None => format!("conversation {}", field("conversation_id")?),
        },
        Kind::EndpointLost | Kind::EndpointBack => format!("endpoint {}", field("endpoint")?),
        Kind::Snapshot
        | Kind::PromptSent
        | Kind::TurnFinished
        | Kind::ApprovalDecided
        | Kind::ApprovalChanged
        | Kind::QuestionChanged
        | Kind::ApprovalResolved
        | Kind::DispatchStarted
        | Kind::PromptSubmitted
        | Kind::DispatchResult => return None,
    };
    let title = (kind == Kind::Retitled).then(|| fields.get("title"));
    let what = serde_json::json!([
        kind.name(),
        fields.get("previous"),
        fields.get("current"),
        title
    ])
    .to_string();
    let at = field("timestamp").and_then(parse_rfc3339).unwrap_or(at);
    Some((subject, what, at))
}

impl Journal {
    pub fn open(dir: StateDir) -> Journal {
        Journal::with_limit(dir, DEFAULT_LIMIT)
    }

    /// A journal that keeps about `limit` bytes (the live file rotates at half).
    pub fn with_limit(dir: StateDir, limit: u64) -> Journal {
        let (tx, rx) = crossbeam_channel::unbounded();
        let shared = Arc::new(Mutex::new(Shared::default()));
        let wrote = Arc::new(Condvar::new());
        let (d, sh, w) = (dir.clone(), shared.clone(), wrote.clone());
        let thread = std::thread::Builder::new()
            .name("journal".into())
            .spawn(move || write_all(&d, limit, rx, &sh, &w))
            .expect("spawn the journal thread");
        Journal {
            dir,
            shared,
            wrote,
            tx: Some(tx),
            thread: Some(thread),
        }
    }

    /// Records an event and returns its seq (`None`: the journal failed, said once on
    /// stderr). `fields` is a JSON object (`session`, `target_id`, `workspace`, and
    /// what the kind carries); a `session` object, as results print it, is kept as
    /// those flat fields. Its time is now, unless `fields` has a `timestamp`. The
    /// same event recorded already by another process keeps its seq.
    pub fn record(&self, kind: Kind, mut fields: Value) -> Option<u64> {
        let at = SystemTime::now();
        if let Some(o) = fields.as_object_mut()
            && o.get("session").is_some_and(Value::is_object)
            && let Some(Value::Object(session)) = o.remove("session")
        {
            for (k, v) in session {
                o.insert(if k == "id" { "session".into() } else { k }, v);
            }
        }
        let mut guard = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        let shared = &mut *guard;
        if shared.failed.is_some() {
            return None;
        }
        if shared.held.is_none() {
            match hold(&self.dir, shared) {
                Ok(h) => shared.held = Some(h),
                Err(e) => {
                    fail(shared, &e);
                    return None;
                }
            }
        }
        let same = identity(kind, &fields, at);
        if let Some((subject, what, seen)) = &same
            && let Some(l) = shared.latest.get(subject)
            && !l.mine
            && l.what == *what
            && l.at
                .max(*seen)
                .duration_since(l.at.min(*seen))
                .unwrap_or_default()
                <= SAME_WITHIN
        {
            let seq = l.seq;
            let held = shared.held.as_ref().expect("held");
            if held.unwritten == 0 {
                // Nothing of ours to write: the lock goes at once.
                shared.left = (!held.cut).then_some((held.stamp, held.last));
                shared.held = None;
            }
            return Some(seq);
        }
        let held = shared.held.as_mut().expect("held");
        let Some(seq) = held.last.checked_add(1) else {
            let e = corrupt(
                &self.dir.file(LIVE),
                &format!(
                    "its last seq is {}, the largest there is; move {LIVE} and {OLD} aside to start over",
                    held.last
                ),
            );
            fail(shared, &e);
            return None;
        };
        held.last = seq;
        held.unwritten += 1;
        if let Some(identity) = same {
            shared.remember(identity, seq, true);
        }
        // Sent under the mutex: the thread gets the events in seq order.
        let pending = Pending {
            seq,
            at,
            kind,
            fields,
        };
        if let Some(tx) = &self.tx {
            // The thread only ends when the sender is dropped, in `drop`.
            let _ = tx.send(pending);
        }
        Some(seq)
    }

    /// Records a line as a watch prints it (`type` its kind; its `seq`, if any, is the
    /// journal's to give): its seq. `None`: `type` is no kind of the journal, or the
    /// journal failed.
    pub fn record_line(&self, line: &impl Serialize) -> Option<u64> {
        let mut fields = serde_json::to_value(line).ok()?;
        let o = fields.as_object_mut()?;
        o.remove("seq");
        let kind = Kind::parse(o.remove("type")?.as_str()?)?;
        self.record(kind, fields)
    }

    /// [`Journal::record`], returning once the event is in the file (or the journal
    /// failed): for a record that must survive angrav killed right after it.
    pub fn record_now(&self, kind: Kind, fields: Value) -> Option<u64> {
        let seq = self.record(kind, fields)?;
        let mut shared = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        while shared.written < seq && shared.failed.is_none() && shared.held.is_some() {
            shared = self.wrote.wait(shared).unwrap_or_else(|e| e.into_inner());
        }
        (shared.written >= seq || shared.held.is_none() && shared.failed.is_none()).then_some(seq)
    }

    /// Why nothing more is journaled in this run, once the journal failed.
    pub fn failure(&self) -> Option<String> {
        let shared = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        shared.failed.clone()
    }

    /// Returns once every event recorded so far is in the file (or the journal
    /// failed): for a process that ends without dropping its journal.
    pub fn flush(&self) {
        let mut shared = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        while shared.held.is_some() && shared.failed.is_none() {
            shared = self.wrote.wait(shared).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// A `prompt_sent` event, stamped now: when the delivery was seen, after the
    /// submission (`started` says when the send began).
    pub fn record_prompt(&self, sent: &Sent) -> Option<u64> {
        let fields = serde_json::to_value(sent).expect("serialises");
        self.record(Kind::PromptSent, fields)
    }

    /// A `turn_finished` event, stamped with the turn's end.
    pub fn record_turn(&self, turn: &TurnRecord) -> Option<u64> {
        let mut fields = serde_json::to_value(turn).expect("serialises");
        fields["timestamp"] = Value::String(turn.ended.finished.clone());
        self.record(Kind::TurnFinished, fields)
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

fn fail(shared: &mut Shared, e: &StateError) {
    warn!("angrav: journal: {e}; events of this run are no longer journaled");
    shared.failed = Some(e.to_string());
    shared.held = None;
}

/// Takes the journal's lock and reads the file's end (unless the live file is as
/// this journal left it): its highest seq, and the newest event about each chat.
fn hold(dir: &StateDir, shared: &mut Shared) -> Result<Held, StateError> {
    let lock = dir.lock(LOCK)?;
    let live = dir.file(LIVE);
    if let (Some((was, last)), Ok(meta)) = (shared.left, fs::metadata(&live))
        && stamp(&meta) == was
    {
        return Ok(Held {
            _lock: lock,
            last,
            unwritten: 0,
            cut: false,
            stamp: was,
        });
    }
    let mut file = open_append(&live)?;
    let meta = file.metadata().map_err(|e| io_error(&live, e))?;
    let tail = read_tail(&mut file, meta.len(), &live)?;
    if tail.damaged > 0 && !std::mem::replace(&mut shared.said_damaged, true) {
        warn!(
            "angrav: journal: {}: {} damaged line(s) near its end (no journal entry) skipped; recording goes on after them",
            live.display(),
            tail.damaged
        );
    }
    let mut last = match tail.last {
        Some(seq) => seq,
        None => old_seq(dir)?,
    };
    // A seq this journal gave is never given again, whatever became of the file.
    if let Some((_, given)) = shared.left {
        last = last.max(given);
    }
    for v in &tail.entries {
        let Some(kind) = v.get("kind").and_then(Value::as_str).and_then(Kind::parse) else {
            continue;
        };
        let (Some(seq), Some(identity)) = (
            v.get("seq").and_then(Value::as_u64),
            identity(kind, v, SystemTime::UNIX_EPOCH),
        ) else {
            continue;
        };
        // Its own newest line about a chat is the one it remembers as its own.
        let mine = shared
            .latest
            .get(&identity.0)
            .is_some_and(|l| l.mine && l.seq == seq);
        shared.remember(identity, seq, mine);
    }
    Ok(Held {
        _lock: lock,
        last,
        unwritten: 0,
        cut: !tail.clean,
        stamp: stamp(&meta),
    })
}

/// The journal thread: appends batches (the lock is held for them) until every
/// sender is gone, and lets the lock go when all seqs given are written.
fn write_all(
    dir: &StateDir,
    limit: u64,
    rx: Receiver<Pending>,
    shared: &Mutex<Shared>,
    wrote: &Condvar,
) {
    while let Ok(first) = rx.recv() {
        let batch: Vec<Pending> = std::iter::once(first)
            .chain(rx.try_iter().take(BATCH - 1))
            .collect();
        let cut = {
            let mut s = shared.lock().unwrap_or_else(|e| e.into_inner());
            match s.held.as_mut() {
                Some(h) => std::mem::take(&mut h.cut),
                // Failed since these were numbered: dropped.
                None => continue,
            }
        };
        let written = append(dir, limit, &batch, cut);
        let mut s = shared.lock().unwrap_or_else(|e| e.into_inner());
        wrote.notify_all();
        match written {
            Err(e) => fail(&mut s, &e),
            Ok(left) => {
                s.written = batch.last().expect("a batch").seq;
                if let Some(h) = s.held.as_mut() {
                    h.unwritten -= batch.len();
                    if h.unwritten == 0 {
                        let last = h.last;
                        s.held = None;
                        s.left = Some((left, last));
                    }
                }
            }
        }
    }
}

/// One append of numbered events; the caller holds the lock. Returns how it left
/// the live file.
fn append(dir: &StateDir, limit: u64, batch: &[Pending], cut: bool) -> Result<Stamp, StateError> {
    let live = dir.file(LIVE);
    let mut file = open_append(&live)?;
    let len = file.metadata().map_err(|e| io_error(&live, e))?.len();
    let mut out = String::new();
    if len > 0 && len >= limit / 2 {
        fs::rename(&live, dir.file(OLD)).map_err(|e| io_error(&live, e))?;
        file = open_append(&live)?;
    } else if cut {
        // A line cut short (a crash mid-write) is ended, so ours start clean.
        out.push('\n');
    }
    for p in batch {
        out += &line(p);
    }
    file.write_all(out.as_bytes())
        .and_then(|_| file.metadata())
        .map(|m| stamp(&m))
        .map_err(|e| io_error(&live, e))
}

fn open_append(path: &Path) -> Result<File, StateError> {
    open_private(
        OpenOptions::new().create(true).read(true).append(true),
        path,
    )
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
    Ok(read_tail(&mut file, len, &path)?.last.unwrap_or(0))
}

/// A journal file's end, as [`read_tail`] finds it.
#[derive(Debug, Default)]
struct Tail {
    /// The highest seq of its entries there (none: no entry in the whole file).
    last: Option<u64>,
    /// Nothing follows the last newline.
    clean: bool,
    /// Lines there that are no journal entry (garbage, or cut short).
    damaged: usize,
    /// The entries there, in file order.
    entries: Vec<Value>,
}

/// Reads the end of a journal file ([`TAIL`] bytes, or back as far as it takes to
/// find an entry).
fn read_tail(file: &mut File, len: u64, path: &Path) -> Result<Tail, StateError> {
    let mut step = TAIL;
    loop {
        let pos = len.saturating_sub(step);
        let mut buf = vec![0; (len - pos) as usize];
        file.seek(SeekFrom::Start(pos))
            .and_then(|_| file.read_exact(&mut buf))
            .map_err(|e| io_error(path, e))?;
        let mut lines: Vec<&[u8]> = buf.split(|&b| b == b'\n').collect();
        let rest = lines.pop().unwrap_or_default();
        let mut tail = Tail {
            clean: rest.is_empty(),
            damaged: usize::from(!rest.is_empty()),
            ..Tail::default()
        };
        // The first piece may be the end of a line that began before `pos`.
        let whole = if pos > 0 && !lines.is_empty() {
            &lines[1..]
        } else {
            &lines[..]
        };
        for raw in whole.iter().filter(|l| !l.is_empty()) {
            match parse(raw) {
                Some(e) => {
                    tail.last = tail.last.max(Some(e.seq));
                    tail.entries.push(e.value);
                }
                None => tail.damaged += 1,
            }
        }
        if tail.last.is_some() || pos == 0 {
            return Ok(tail);
        }
        step = step.saturating_mul(4);
    }
}

/// `{"seq":N,"timestamp":"...","kind":"...",...fields}` and a newline.
fn line(p: &Pending) -> String {
    let seq = p.seq;
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
    /// The entry is about this session.
    pub fn matches(&self, entry: &Value) -> bool {
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

impl Entry {
    /// The entry as `sessions watch --json` prints it (and `log --json`): `type` for
    /// `kind`, and the chat as the session object every result names it by.
    pub fn event(&self) -> Value {
        let mut v = self.value.clone();
        let Some(o) = v.as_object_mut() else {
            return v;
        };
        if let Some(kind) = o.remove("kind") {
            o.insert("type".into(), kind);
        }
        if o.get("session").is_some_and(Value::is_string) && o.contains_key("target_id") {
            let session: Map<String, Value> =
                ["session", "target_id", "workspace", "title", "endpoint"]
                    .into_iter()
                    .map(|k| {
                        let v = o.remove(k).unwrap_or(Value::Null);
                        (if k == "session" { "id" } else { k }.to_string(), v)
                    })
                    .collect();
            o.insert("session".into(), Value::Object(session));
        }
        v
    }
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
