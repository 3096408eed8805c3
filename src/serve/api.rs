//! The WebSocket API: requests `{"id", "method", "params"}`, each answered with
//! `{"id", "result"}` or `{"id", "error": {"code", "message"}}`; events come as
//! `{"event": {...}}` after a `subscribe`. Quick methods answer from the in-memory
//! table at once; the others run on a thread of their own and answer when done, so a
//! long call never holds up the next request on the same connection. The table of
//! methods below is both the dispatcher and what `schema` returns.

use std::collections::HashMap;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, select};

use serde_json::{Value, json};

use super::Shared;
use super::lock;
use super::upstream;
use super::ws::Outbox;
use crate::Error;
use crate::approve::{self, Pressed};
use crate::journal::{PromptRecord, TurnOutcome};
use crate::monitor::ACCEPT_WITHIN;
use crate::panel::{Panel, Role, State};
use crate::registry::ListRow;
use crate::results::{NewConversation, Prompted, WaitResult};
use crate::sessions::Session;
use crate::turn::{self, WaitOptions};
use crate::waiter::{self, Strategy, WaitSpec};

/// Why a request got no result.
enum Failure {
    /// Not JSON, not an object, or params of the wrong shape.
    BadRequest(String),
    UnknownMethod(String),
    /// The client has too many long calls running.
    Busy(String),
    /// What the CLI would have failed with.
    Angrav(Error),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        Failure::Angrav(e)
    }
}

impl Failure {
    fn code(&self) -> &'static str {
        match self {
            Failure::BadRequest(_) => "bad_request",
            Failure::UnknownMethod(_) => "unknown_method",
            Failure::Busy(_) => "busy",
            Failure::Angrav(e) => e.code(),
        }
    }

    fn message(&self) -> String {
        match self {
            Failure::BadRequest(m) | Failure::Busy(m) => m.clone(),
            Failure::UnknownMethod(m) => format!("no method '{m}'; 'schema' lists them"),
            Failure::Angrav(Error::Usage(m)) => m.clone(),
            Failure::Angrav(e) => e.to_string(),
        }
    }
}

/// One request being answered.
struct Call {
    shared: Arc<Shared>,
    client: Arc<Outbox>,
    id: Value,
}

type Answer = Result<Option<Value>, Failure>;

struct Method {
    name: &'static str,
    summary: &'static str,
    /// Each param with its type and default.
    params: &'static [(&'static str, &'static str)],
    result: &'static str,
    /// Runs on a thread of its own (it talks to pages or waits).
    slow: bool,
    /// `Ok(None)`: the method sent its reply itself.
    run: fn(&Call, Params) -> Answer,
}

const SESSION: (&str, &str) = (
    "session",
    "string, optional: an alias, an id prefix or a workspace name; may be left out when one session is open",
);
const APPROVAL: (&str, &str) = (
    "approval",
    "string, optional: the id of the approval to answer (as status shows it): pressed only if it still shows, else nothing is pressed (error approval_changed); default the only approval showing",
);
const TIMEOUT: (&str, &str) = ("timeout_ms", "number, default 120000");
const SETTLE: (&str, &str) = (
    "settle_ms",
    "number, default: serve's --settle (400): how long idle must hold",
);
const EXTRACT: (&str, &str) = (
    "extract",
    "bool, default true: collect each finished session's answer",
);
const REPORT: &str = "{timed_out, sessions: [{session, target_id, workspace, status: done|pending|closed|failed, state, reason?, duration_ms, answer?, error?, approvals?}]}";
const PRESSED: &str = "as approve --json: {session, pressed (the label), approval: {kind: command|file_edits|permission|plan|collapsed, command, choices: [{label}]}, state, error, approvals, quota_resume? (after the press)}";
const MESSAGE: &str =
    "{role: user|agent, content (Markdown), thoughts?, code_blocks?: [{lang, code}]}";

const METHODS: &[Method] = &[
    Method {
        name: "sessions.list",
        summary: "every session with its state, from memory",
        params: &[],
        result: "as sessions list --json: [{session, kind: session, state, layout, problem?, approvals?}]",
        slow: false,
        run: |c, _| {
            let listed = lock(&c.shared.table).listed();
            Ok(Some(json!(ListRow::all(&listed, &[]))))
        },
    },
    Method {
        name: "status",
        summary: "one session's state and why angrav reads it so, from memory",
        params: &[SESSION],
        result: "as status --json: {session, state, layout, busy, error, quota_resume, approvals, approval, input_found, input_editable, user_messages, agent_messages, answer_blocks, turn_open, title, mode, model, markers}",
        slow: false,
        run: status,
    },
    Method {
        name: "prompt",
        summary: "send a prompt, delivered exactly once or not at all (as the CLI's prompt); with wait, also await its turn and give its answer",
        params: &[
            SESSION,
            ("text", "string: the prompt"),
            ("wait", "bool, default false"),
            ("replace_draft", "bool, default false"),
            TIMEOUT,
            SETTLE,
        ],
        result: "as prompt --json: {session, delivered: true, started, status: started|stalled}; with wait as prompt --wait --json: {timed_out, session, status, state, duration_ms, answer?, error?, approvals?, approval?, quota_resume?}",
        slow: true,
        run: prompt,
    },
    Method {
        name: "wait",
        summary: "wait until the sessions have stopped: every one, or the first (any)",
        params: &[
            ("sessions", "[string], default: every session"),
            ("any", "bool, default false"),
            TIMEOUT,
            SETTLE,
            EXTRACT,
        ],
        result: REPORT,
        slow: true,
        run: wait,
    },
    Method {
        name: "fanout",
        summary: "the same prompt to several sessions at once, each one's turn awaited",
        params: &[
            ("text", "string: the prompt"),
            ("sessions", "[string], default: every idle session"),
            TIMEOUT,
            SETTLE,
            EXTRACT,
        ],
        result: REPORT,
        slow: true,
        run: fanout,
    },
    Method {
        name: "run",
        summary: "a prompt per session, sent at once, each one's turn awaited",
        params: &[("tasks", "[{session, prompt}]"), TIMEOUT, SETTLE, EXTRACT],
        result: REPORT,
        slow: true,
        run,
    },
    Method {
        name: "output",
        summary: "the last answer (with code, only its code blocks)",
        params: &[
            SESSION,
            ("code", "bool, default false"),
            (
                "lang",
                "string, optional: only code blocks in this language",
            ),
        ],
        result: "MESSAGE; with code: [{lang, code}]",
        slow: true,
        run: output,
    },
    Method {
        name: "history",
        summary: "every message of the conversation, oldest first",
        params: &[SESSION],
        result: "[MESSAGE]",
        slow: true,
        run: history,
    },
    Method {
        name: "new",
        summary: "start a new conversation (refused while the agent works)",
        params: &[SESSION],
        result: "as new --json: {session, new_conversation: bool (false: it was already empty)}",
        slow: true,
        run: new_conversation,
    },
    Method {
        name: "approve",
        summary: "press an allowing choice of the approval the agent waits for, and confirm it took effect",
        params: &[
            SESSION,
            (
                "choice",
                "string, optional: a label or words of one (run, accept-all, once); default the narrowest allowing one",
            ),
            APPROVAL,
        ],
        result: PRESSED,
        slow: true,
        run: |c, p| {
            let (choice, id) = (p.text("choice")?, p.text("approval")?);
            press(c, &p, |panel, by| {
                approve::approve(panel, id.as_deref(), choice.as_deref(), by)
            })
        },
    },
    Method {
        name: "deny",
        summary: "press the denying choice of the approval the agent waits for, and confirm it took effect",
        params: &[SESSION, APPROVAL],
        result: PRESSED,
        slow: true,
        run: |c, p| {
            let id = p.text("approval")?;
            press(c, &p, |panel, by| approve::deny(panel, id.as_deref(), by))
        },
    },
    Method {
        name: "cancel",
        summary: "stop the working agent (its cancel button), and confirm it went idle",
        params: &[SESSION],
        result: "as approve, with pressed: \"cancel\" and approval: null",
        slow: true,
        run: cancel,
    },
    Method {
        name: "quota",
        summary: "each model's remaining quota and reset time, from the language server (serve's --ls, else the first window's that answers: looked for on the first call, and again when it stops answering; a search that found none stands for a minute)",
        params: &[],
        result: "{ls: {url, found_by} or null (none answers: models empty, reason says why), models: [{label, model, remaining (0 to 1, null: not said), reset (RFC 3339), exhausted}], reason?}",
        slow: true,
        run: quota,
    },
    Method {
        name: "subscribe",
        summary: "the table now, then an event pushed for every change",
        params: &[],
        result: "{seq, sessions: [{session, state, layout, since (RFC 3339: when it entered its state), since_seen (false: the state was there when serve started, since is when serve first read it), error?, approvals, approval?: {kind, command, choices}, question?: {text, options}}]}; then pushes {event: EVENT} with seq growing by one",
        slow: false,
        run: |c, _| {
            lock(&c.shared.table).subscribe(&c.client, &c.id);
            Ok(None)
        },
    },
    Method {
        name: "unsubscribe",
        summary: "no more events",
        params: &[],
        result: "{subscribed: bool (whether it was)}",
        slow: false,
        run: |c, _| {
            let was = lock(&c.shared.table).unsubscribe(c.client.id());
            Ok(Some(json!({ "subscribed": was })))
        },
    },
    Method {
        name: "schema",
        summary: "this list",
        params: &[],
        result: "{methods: [{name, summary, params, result}], message, event, errors}",
        slow: false,
        run: |_, _| Ok(Some(schema())),
    },
];

const EVENT: &str = "{seq, type: new_session|state_change|session_closed|approval_changed|question_changed|approval_resolved, session: {id, target_id, workspace, title, endpoint, host? (an upstream's, on a hub)}, previous, current, timestamp, error?, approvals?, approval?, question?: {text, options}, reason?, by?: angrav|elsewhere, rule?, client?, pressed?}, or {seq, type: endpoint_lost|endpoint_back, endpoint (a browser, or an upstream's host), timestamp, reason?}";
/// The errors of the protocol itself; the others are the CLI's (`Error::CODES`).
const PROTOCOL_ERRORS: &[&str] = &["bad_request", "unknown_method", "busy"];

fn schema() -> Value {
    let methods: Vec<Value> = METHODS
        .iter()
        .map(|m| {
            let params: serde_json::Map<String, Value> = m
                .params
                .iter()
                .map(|(n, t)| (n.to_string(), Value::from(*t)))
                .collect();
            json!({ "name": m.name, "summary": m.summary, "params": params, "result": m.result })
        })
        .collect();
    let errors = [PROTOCOL_ERRORS, Error::CODES].concat();
    json!({
        "request": "{id, method, params}",
        "reply": "{id, result} or {id, error: {code, message}}",
        "methods": methods,
        "message": MESSAGE,
        "event": EVENT,
        "errors": errors,
    })
}

/// Answers one request (a text message from a client).
pub fn handle(shared: &Arc<Shared>, client: &Arc<Outbox>, text: &str) {
    let request = serde_json::from_str::<Value>(text).ok();
    let id = request
        .as_ref()
        .and_then(|r| r.get("id").cloned())
        .unwrap_or_default();
    let method = request
        .as_ref()
        .and_then(|r| r.get("method"))
        .and_then(Value::as_str);
    let params = request.as_ref().and_then(|r| r.get("params")).cloned();
    let Some(name) = method else {
        let why = "a request is a JSON object {\"id\", \"method\", \"params\"}".to_string();
        return reply(client, &id, Err(Failure::BadRequest(why)));
    };
    let Some(method) = METHODS.iter().find(|m| m.name == name) else {
        return reply(client, &id, Err(Failure::UnknownMethod(name.to_string())));
    };
    let params = match Params::of(params) {
        Ok(p) => p,
        Err(f) => return reply(client, &id, Err(f)),
    };
    let call = Call {
        shared: shared.clone(),
        client: client.clone(),
        id,
    };
    // A hub: a session of an upstream is the upstream's to act on.
    if upstream::FORWARDED.contains(&method.name)
        && let Ok(query) = params.session()
        && let Ok(found) = shared.find(query.as_deref())
        && let Some(up) = found
            .host
            .as_deref()
            .and_then(|h| shared.upstream(h))
            .cloned()
    {
        let mut forwarded = Value::Object(params.0);
        forwarded["session"] = json!(found.target_id);
        return spawn_call(call, method.name, move |_| {
            up.forward(method.name, forwarded)
                .map(Some)
                .map_err(Failure::Angrav)
        });
    }
    if !method.slow {
        let answer = (method.run)(&call, params);
        return reply(client, &call.id, answer);
    }
    spawn_call(call, method.name, move |c| (method.run)(c, params));
}

/// Runs a long call on a thread of its own, counted against the client's.
fn spawn_call(call: Call, name: &str, run: impl FnOnce(&Call) -> Answer + Send + 'static) {
    let client = call.client.clone();
    if !client.call_started() {
        let why = "too many calls at once on this connection; wait for some to end".to_string();
        return reply(&client, &call.id, Err(Failure::Busy(why)));
    }
    let spawned = std::thread::Builder::new()
        .name(format!("serve {name}"))
        .stack_size(512 * 1024)
        .spawn(move || {
            let answer = run(&call);
            call.client.call_done();
            reply(&call.client, &call.id, answer);
        });
    if let Err(e) = spawned {
        client.call_done();
        let why = Error::Failed(format!("cannot start a thread for the call: {e}"));
        reply(&client, &Value::Null, Err(why.into()));
    }
}

/// A binary message is no request.
pub fn refuse_binary(client: &Arc<Outbox>) {
    let why = "requests are JSON text messages".to_string();
    reply(client, &Value::Null, Err(Failure::BadRequest(why)));
}

fn reply(client: &Outbox, id: &Value, answer: Answer) {
    let text = match answer {
        Ok(None) => return,
        Ok(Some(result)) => json!({ "id": id, "result": result }),
        Err(f) => json!({ "id": id, "error": { "code": f.code(), "message": f.message() } }),
    };
    client.send(text.to_string());
}

/// A request's params, read field by field: a field of the wrong type is a bad
/// request; fields a method does not know are ignored.
pub struct Params(serde_json::Map<String, Value>);

impl Params {
    fn of(v: Option<Value>) -> Result<Params, Failure> {
        match v {
            None | Some(Value::Null) => Ok(Params(serde_json::Map::new())),
            Some(Value::Object(m)) => Ok(Params(m)),
            Some(_) => Err(Failure::BadRequest("params must be an object".into())),
        }
    }

    fn wrong(name: &str, what: &str) -> Failure {
        Failure::BadRequest(format!("params: {name} must be {what}"))
    }

    fn text(&self, name: &str) -> Result<Option<String>, Failure> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(Params::wrong(name, "a string")),
        }
    }

    fn required(&self, name: &str) -> Result<String, Failure> {
        self.text(name)?
            .ok_or_else(|| Failure::BadRequest(format!("params: {name} is missing")))
    }

    fn flag(&self, name: &str, default: bool) -> Result<bool, Failure> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(Params::wrong(name, "true or false")),
        }
    }

    fn millis(&self, name: &str) -> Result<Option<Duration>, Failure> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_u64()
                .map(|ms| Some(Duration::from_millis(ms)))
                .ok_or_else(|| Params::wrong(name, "a number of milliseconds")),
        }
    }

    fn texts(&self, name: &str) -> Result<Vec<String>, Failure> {
        let Some(v) = self.0.get(name).filter(|v| !v.is_null()) else {
            return Ok(Vec::new());
        };
        v.as_array()
            .and_then(|a| a.iter().map(|x| x.as_str().map(String::from)).collect())
            .ok_or_else(|| Params::wrong(name, "a list of strings"))
    }

    fn session(&self) -> Result<Option<String>, Failure> {
        self.text("session")
    }

    /// `timeout_ms` and `settle_ms`, with serve's defaults.
    fn wait_options(&self, c: &Call) -> Result<WaitOptions, Failure> {
        Ok(WaitOptions {
            timeout: self
                .millis("timeout_ms")?
                .unwrap_or(WaitOptions::default().timeout),
            settle: self.millis("settle_ms")?.unwrap_or(c.shared.settle),
        })
    }
}

/// A session, and its panel, or why not.
fn attach(c: &Call, query: Option<&str>) -> Result<(Session, Panel), Failure> {
    attach_in(c, query, Arc::default())
}

/// As [`attach`], with every connection the panel opens, now or when it finds the
/// panel again after a reload, in `group`.
fn attach_in(
    c: &Call,
    query: Option<&str>,
    group: Arc<cdp::CloseGroup>,
) -> Result<(Session, Panel), Failure> {
    let session = c.shared.session(query)?;
    let (panel, snap) = Panel::attach_in(&session.window, &c.shared.profile, group, None)?;
    if snap.state == State::NoPanel {
        return Err(Error::NoPanel.into());
    }
    Ok((session, panel))
}

fn status(c: &Call, p: Params) -> Answer {
    let session = c.shared.session(p.session()?.as_deref())?;
    let status = lock(&c.shared.table).status(&session.target_id);
    let status = status.ok_or_else(|| {
        Error::Failed(format!(
            "{}: its state is not read yet; try again",
            session.id
        ))
    })?;
    Ok(Some(json!(status)))
}

fn quota(c: &Call, _: Params) -> Answer {
    let sessions = || lock(&c.shared.table).sessions();
    Ok(Some(c.shared.quota.read(sessions)?))
}

fn prompt(c: &Call, p: Params) -> Answer {
    let text = p.required("text")?;
    let opts = p.wait_options(c)?;
    let wait = p.flag("wait", false)?;
    let leave = Leave::watch(c.client.gone());
    let (session, mut panel) = attach_in(c, p.session()?.as_deref(), leave.group.clone())?;
    let send = turn::SendOptions {
        claim_within: opts.timeout,
        start_within: ACCEPT_WITHIN.min(opts.timeout),
        replace_draft: p.flag("replace_draft", false)?,
        // A client that leaves while its prompt is typed: out of the editor again.
        abandoned: Some(c.client.gone()),
    };
    let begun = Instant::now();
    // Kept as the CLI's prompt keeps it, whether the client stays or not.
    let (journal, record) = (c.shared.journal(), PromptRecord::new(&session, &text));
    let sent = turn::send_prompt_noting(&mut panel, &text, send, |step| {
        if step == turn::Step::Delivered {
            record.delivered(journal);
            leave.arm();
        }
        Ok(())
    })?;
    if !wait {
        return Ok(Some(json!(Prompted::new(&session, sent.started))));
    }
    let until = turn::Until {
        turn: Some(sent.baseline),
        settle: opts.settle,
        accept: |_| true,
        deadline: Some(begun + opts.timeout),
        stall_after: None,
    };
    let started = Instant::now();
    // A deadline reached inside a call to the page ends the wait as any other.
    let waited = turn::wait_until(&mut panel, sent.snapshot.clone(), until);
    let left = leave.end();
    let waited = match waited {
        Err(Error::Timeout { .. }) => turn::Waited::TimedOut(sent.snapshot),
        // The client left: the turn was not seen to end.
        Err(e) if left => return Err(e.into()),
        Err(e) => {
            if e.is_closed() {
                record.ended(journal, TurnOutcome::Closed, "");
            }
            return Err(e.into());
        }
        Ok(w) => w,
    };
    // No stall time is given, so the wait does not end stalled.
    let stalled = || unreachable!("a wait without a stall time");
    let result = WaitResult::of(
        &mut panel,
        &session,
        waited,
        Some(sent.baseline),
        started,
        stalled,
    )?;
    record.ended(journal, result.turn_outcome(), result.answer_text());
    Ok(Some(json!(result)))
}

/// Ends a delivered prompt's waits (its turn's start, then its end) once its client
/// has gone, by closing the panel's connections: the panel is attached in `group`, so
/// those it opens to find itself again after a reload are closed too. Not before it
/// is armed, at delivery: a prompt still being typed stops by itself and puts the
/// editor back first.
struct Leave {
    group: Arc<cdp::CloseGroup>,
    armed: Sender<()>,
    over: Sender<()>,
    watcher: JoinHandle<bool>,
}

impl Leave {
    fn watch(gone: Receiver<()>) -> Leave {
        let group: Arc<cdp::CloseGroup> = Arc::default();
        let (armed, armed_rx) = crossbeam_channel::bounded(1);
        let (over, over_rx) = crossbeam_channel::bounded::<()>(0);
        let closing = group.clone();
        let watcher = std::thread::spawn(move || {
            select! {
                recv(armed_rx) -> _ => {}
                recv(over_rx) -> _ => return false,
            }
            select! {
                recv(gone) -> _ => {
                    closing.close();
                    true
                }
                recv(over_rx) -> _ => false,
            }
        });
        Leave {
            group,
            armed,
            over,
            watcher,
        }
    }

    fn arm(&self) {
        let _ = self.armed.try_send(());
    }

    /// Stops watching; true when the client had left (its waits were cut short).
    fn end(self) -> bool {
        drop(self.over);
        self.watcher.join().unwrap_or(false)
    }
}

/// Waits as `strategy` says on `sessions`, sending the prompts first.
fn report(
    c: &Call,
    p: &Params,
    sessions: &[Session],
    prompts: &HashMap<String, String>,
    strategy: Strategy,
) -> Answer {
    let opts = p.wait_options(c)?;
    let spec = WaitSpec {
        strategy,
        timeout: opts.timeout,
        settle: opts.settle,
        extract: p.flag("extract", true)?,
        start_within: crate::monitor::ACCEPT_WITHIN,
        stall_after: None,
    };
    // A client that leaves ends the wait (the prompts being delivered still finish).
    let gone = c.client.gone();
    let with = waiter::Attended {
        cancel: Some(&gone),
        journal: c.shared.journal(),
        abandoned: Some(&gone),
        ..Default::default()
    };
    let report = waiter::attended(sessions, prompts, &c.shared.profile, spec, None, with);
    Ok(Some(json!(report)))
}

/// The sessions named, or every one.
fn chosen(c: &Call, queries: &[String]) -> Result<Vec<Session>, Failure> {
    if queries.is_empty() {
        return Ok(lock(&c.shared.table).sessions());
    }
    Ok(queries
        .iter()
        .map(|q| c.shared.session(Some(q)))
        .collect::<Result<_, _>>()?)
}

fn wait(c: &Call, p: Params) -> Answer {
    let strategy = if p.flag("any", false)? {
        Strategy::Any
    } else {
        Strategy::All
    };
    let sessions = chosen(c, &p.texts("sessions")?)?;
    report(c, &p, &sessions, &HashMap::new(), strategy)
}

fn fanout(c: &Call, p: Params) -> Answer {
    let text = p.required("text")?;
    if text.trim().is_empty() {
        return Err(Failure::BadRequest("the prompt is empty".into()));
    }
    let named = p.texts("sessions")?;
    let sessions = if named.is_empty() {
        lock(&c.shared.table).idle()
    } else {
        chosen(c, &named)?
    };
    if sessions.is_empty() {
        return Err(Error::Failed("no idle session to send the prompt to".into()).into());
    }
    let prompts = sessions
        .iter()
        .map(|s| (s.target_id.clone(), text.clone()))
        .collect();
    report(c, &p, &sessions, &prompts, Strategy::All)
}

fn run(c: &Call, p: Params) -> Answer {
    let bad = || Params::wrong("tasks", "a list of {\"session\", \"prompt\"}");
    let tasks = p.0.get("tasks").and_then(Value::as_array).ok_or_else(bad)?;
    let mut sessions = Vec::new();
    let mut prompts = HashMap::new();
    for t in tasks {
        let field = |name: &str| t.get(name).and_then(Value::as_str).ok_or_else(bad);
        let s = c.shared.session(Some(field("session")?))?;
        if prompts
            .insert(s.target_id.clone(), field("prompt")?.to_string())
            .is_some()
        {
            return Err(Failure::BadRequest(format!(
                "session {} is given two prompts",
                s.id
            )));
        }
        sessions.push(s);
    }
    if sessions.is_empty() {
        return Err(Failure::BadRequest("no tasks".into()));
    }
    report(c, &p, &sessions, &prompts, Strategy::All)
}

fn output(c: &Call, p: Params) -> Answer {
    let lang = p.text("lang")?;
    let (_, mut panel) = attach(c, p.session()?.as_deref())?;
    let last = panel
        .history()?
        .into_iter()
        .rev()
        .find(|m| m.role == Role::Agent)
        .ok_or_else(|| Error::Failed("there is no answer in this conversation yet".into()))?;
    if !p.flag("code", false)? {
        return Ok(Some(json!(last)));
    }
    let wanted = |l: &str| lang.as_deref().is_none_or(|x| l.eq_ignore_ascii_case(x));
    let blocks: Vec<_> = last
        .code_blocks
        .iter()
        .filter(|b| wanted(&b.lang))
        .collect();
    Ok(Some(json!(blocks)))
}

fn history(c: &Call, p: Params) -> Answer {
    let (_, mut panel) = attach(c, p.session()?.as_deref())?;
    Ok(Some(json!(panel.history()?)))
}

fn new_conversation(c: &Call, p: Params) -> Answer {
    let (session, mut panel) = attach(c, p.session()?.as_deref())?;
    let snap = panel.probe()?;
    let renewed = NewConversation {
        session,
        new_conversation: crate::approve::new_conversation(&mut panel, &snap)?,
    };
    Ok(Some(json!(renewed)))
}

/// Presses a control of an approval with `answer`.
fn press(
    c: &Call,
    p: &Params,
    answer: impl FnOnce(&mut Panel, &Value) -> Result<approve::Answered, Error>,
) -> Answer {
    let (session, mut panel) = attach(c, p.session()?.as_deref())?;
    let done = answer(&mut panel, &approve::by_client("angrav serve"))?;
    Ok(Some(json!(Pressed::of(&session, done))))
}

fn cancel(c: &Call, p: Params) -> Answer {
    let (session, mut panel) = attach(c, p.session()?.as_deref())?;
    let end = approve::cancel(&mut panel)?;
    Ok(Some(json!(Pressed::cancelled(&session, &end))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_names_every_method_once() {
        let s = schema();
        let names: Vec<&str> = s["methods"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["name"].as_str().unwrap())
            .collect();
        let mut unique = names.clone();
        unique.dedup();
        assert_eq!(names.len(), unique.len());
        for m in [
            "sessions.list",
            "status",
            "prompt",
            "wait",
            "fanout",
            "run",
            "approve",
            "deny",
            "cancel",
        ] {
            assert!(names.contains(&m), "{m}");
        }
    }
}
