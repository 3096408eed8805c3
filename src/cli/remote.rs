//! `--server URL` (repeatable, comma-separated; or `ANGRAV_SERVERS`/`ANGRAV_SERVER`):
//! the commands `angrav serve` answers are asked of one or several serves over their
//! WebSockets instead of attaching to the pages. serve's results are the types the
//! commands print, so they are printed by the same functions: the output and the exit
//! codes are those of the command run here. With several serves, every session
//! carries its serve's label as `host` (in text, its id is written `host/ID`, as it
//! may be given), and a serve that cannot be reached is said so: a warning, and a row
//! (`sessions list`) or an `unreachable` entry (the reports), never left out.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::approve::print_pressed;
use super::output::{self, print_answer, print_list, print_status};
use super::single::{
    one_session, print_code, print_history, print_new, print_prompted, print_waited,
};
use super::wait::{print_report, report_end, run_tasks};
use super::{Args, Command, help};
use crate::approve::Pressed;
use crate::client::{Client, HUNG, Server, mark_host};
use crate::panel::{CodeBlock, Message};
use crate::registry::Listed;
use crate::results::{NewConversation, Prompted, SessionStatus, WaitResult};
use crate::state::StateDir;
use crate::timestamp::rfc3339;
use crate::waiter::{Outcome, Report, Status};
use crate::{Error, exit};

/// Flags that ask for work serve does not do.
const NOT_SERVED: &[&str] = &[
    "--cdp",
    "--selectors",
    "--group",
    "--policy",
    "--when-idle",
    "--start-within",
    "--stall-after",
    "--until-idle",
    "--since",
    "--on",
    "--webhook",
    "--notify",
];

/// How much longer than the command's `--timeout` serve may take to answer.
const SLACK: Duration = Duration::from_secs(30);
/// How long a watch waits before asking a lost serve again.
const RETRY: Duration = Duration::from_secs(1);

/// The serves to ask, when the command is one serve runs (the command table gives
/// those `--server`) and some are named.
pub(super) fn servers(a: &Args) -> Result<Option<Vec<Server>>, Error> {
    let takes = help::COMMANDS
        .iter()
        .any(|c| c.words == a.words && c.takes("--server"));
    if !takes {
        return Ok(None);
    }
    let mut given: Vec<String> = a.server.clone();
    if given.is_empty() {
        given = ["ANGRAV_SERVERS", "ANGRAV_SERVER"]
            .iter()
            .filter_map(|v| std::env::var(v).ok())
            .find(|s| !s.trim().is_empty())
            .into_iter()
            .collect();
    }
    let servers = Server::parse_all(given.iter().map(String::as_str))?;
    Ok((!servers.is_empty()).then_some(servers))
}

/// Where a session named is: on serve `at`, as `name` names it there; `status` that
/// serve's answer when finding it asked for it (several serves).
struct Found {
    at: usize,
    name: Option<String>,
    status: Option<Value>,
}

/// One serve asked, its connection (or why there is none).
struct Asked {
    server: Server,
    client: Result<Client, Error>,
}

/// The serves a command runs on.
struct Fleet<'a> {
    asked: Vec<Asked>,
    /// Several serves: sessions are marked with their host.
    marked: bool,
    a: &'a Args,
}

/// Runs the command through the serves.
pub(super) fn run(a: &Args, servers: Vec<Server>) -> Result<u8, Error> {
    let misused = |message: String| Error::Misused {
        command: a.words,
        message,
    };
    let pressing = matches!(
        a.command,
        Command::Approve(_) | Command::Deny | Command::Cancel
    );
    let refused = a.given.iter().find(|f| {
        NOT_SERVED.contains(f)
            || (**f == "--all" && a.command == Command::SessionsList)
            || (**f == "--wait" && pressing)
    });
    if let Some(flag) = refused {
        return Err(misused(format!(
            "{flag} is not served by angrav serve; leave out --server to use it"
        )));
    }
    // Read the input before asking serve: a bad -f fails fast.
    let text = match &a.command {
        Command::Prompt(t) | Command::SessionsFanout(t) => {
            Some(super::read_prompt(a, t.as_deref())?)
        }
        _ => None,
    };
    let tasks = match a.command {
        Command::SessionsRun => run_tasks(a)?,
        _ => Vec::new(),
    };
    let one = match a.command {
        Command::SessionsList
        | Command::SessionsWait
        | Command::SessionsFanout(_)
        | Command::SessionsRun
        | Command::SessionsWatch
        | Command::SessionsApprove(_)
        | Command::SessionsDeny => None,
        _ => one_session(a)?,
    };
    let mut fleet = Fleet::connect(a, servers)?;
    let with = |params: Value| timed(params, a);
    let json = a.json;
    match &a.command {
        Command::SessionsList => fleet.list(),
        Command::SessionsWait | Command::SessionsFanout(_) | Command::SessionsRun => {
            fleet.waits(text.as_deref(), &tasks)
        }
        Command::SessionsWatch => fleet.watch(),
        Command::SessionsApprove(_) | Command::SessionsDeny => fleet.press_many(),
        Command::Status => {
            let (_, s) = fleet.status(one)?;
            print_status(&s.session, &s.snapshot, None, json);
            Ok(exit::OK)
        }
        Command::Prompt(_) => {
            let Found { at, name: s, .. } = fleet.owner(one)?;
            let params = with(json!({
                "session": s, "text": text, "wait": a.wait_answer,
                "replace_draft": a.replace_draft,
            }));
            if !a.wait_answer {
                let sent: Prompted = fleet.call(at, "prompt", params)?;
                print_prompted(&sent, a.start_within, json);
                return Ok(exit::OK);
            }
            let result: WaitResult = fleet.call(at, "prompt", params)?;
            print_waited(&result, a)
        }
        Command::Wait => {
            // The one session as the command names it (or the only one), then its wait.
            let (at, s) = fleet.status(one)?;
            let params = with(json!({ "sessions": [s.session.target_id] }));
            let report: Report = fleet.call(at, "wait", params)?;
            let outcome = report.sessions.into_iter().next().ok_or_else(|| {
                Error::Failed(format!("angrav serve did not wait for {}", s.session.id))
            })?;
            let result = WaitResult {
                timed_out: report.timed_out,
                outcome,
            };
            print_waited(&result, a)
        }
        Command::OutputLast => {
            let Found { at, name: s, .. } = fleet.owner(one)?;
            let answer: Message = fleet.call(at, "output", json!({ "session": s }))?;
            print_answer(&answer, json);
            Ok(exit::OK)
        }
        Command::OutputCode => {
            let Found { at, name: s, .. } = fleet.owner(one)?;
            let params = json!({ "session": s, "code": true, "lang": a.lang });
            let blocks: Vec<CodeBlock> = fleet.call(at, "output", params)?;
            print_code(&blocks, json);
            Ok(exit::OK)
        }
        Command::History => {
            let Found { at, name: s, .. } = fleet.owner(one)?;
            let messages: Vec<Message> = fleet.call(at, "history", json!({ "session": s }))?;
            print_history(&messages, json);
            Ok(exit::OK)
        }
        Command::New => {
            let Found { at, name: s, .. } = fleet.owner(one)?;
            let renewed: NewConversation = fleet.call(at, "new", json!({ "session": s }))?;
            print_new(&renewed, json);
            Ok(exit::OK)
        }
        Command::Approve(_) | Command::Deny | Command::Cancel => {
            let Found { at, name: s, .. } = fleet.owner(one)?;
            let (method, params) = press_params(&a.command, s, a.approval.as_deref());
            let done: Pressed = fleet.call(at, method, params)?;
            print_pressed(&done, json);
            Ok(exit::OK)
        }
        _ => unreachable!("not a command serve runs"),
    }
}

/// The method and params that answer an approval (or cancel) of `session`.
fn press_params(
    command: &Command,
    session: Option<String>,
    approval: Option<&str>,
) -> (&'static str, Value) {
    let (method, choice) = match command {
        Command::Approve(choice) | Command::SessionsApprove(choice) => ("approve", choice.clone()),
        Command::Deny | Command::SessionsDeny => ("deny", None),
        _ => ("cancel", None),
    };
    (
        method,
        json!({ "session": session, "choice": choice, "approval": approval }),
    )
}

/// `params` with the command's `--timeout`.
fn timed(mut params: Value, a: &Args) -> Value {
    params["timeout_ms"] = json!(a.wait.timeout.as_millis() as u64);
    params["settle_ms"] = json!(a.wait.settle.as_millis() as u64);
    params
}

/// serve's token: the one its URL carries, else `ANGRAV_TOKEN`, else the file serve
/// keeps in the state directory.
fn token(a: &Args, server: &Server) -> Result<String, Error> {
    if let Some(t) = &server.token {
        return Ok(t.clone());
    }
    if let Ok(t) = std::env::var("ANGRAV_TOKEN")
        && !t.trim().is_empty()
    {
        return Ok(t.trim().to_string());
    }
    if a.no_state {
        return Err(Error::Usage(
            "with --no-state, give angrav serve's token in ANGRAV_TOKEN or as ?token= in its URL"
                .into(),
        ));
    }
    let path = StateDir::locate()?.file(crate::serve::TOKEN_FILE);
    match std::fs::read_to_string(&path) {
        Ok(t) if !t.trim().is_empty() => Ok(t.trim().to_string()),
        Ok(_) => Err(no_token(&path.display().to_string(), "it is empty")),
        Err(e) => Err(no_token(&path.display().to_string(), &e.to_string())),
    }
}

fn no_token(path: &str, why: &str) -> Error {
    Error::Failed(format!(
        "no token for angrav serve: cannot read {path} ({why}); is serve running with this \
         state directory? Else give its token in ANGRAV_TOKEN, or as ?token= in its URL"
    ))
}

impl<'a> Fleet<'a> {
    /// Connects to every serve at once. One serve that cannot be reached fails the
    /// command; of several, it is a warning and the others are asked.
    fn connect(a: &'a Args, servers: Vec<Server>) -> Result<Fleet<'a>, Error> {
        let tokens: Vec<String> = servers
            .iter()
            .map(|s| token(a, s))
            .collect::<Result<_, _>>()?;
        // A watch follows its serves: one that does not answer is hung, as in its events.
        let patience = match a.command {
            Command::SessionsWatch => HUNG,
            _ => a.wait.timeout + SLACK,
        };
        let asked =
            crate::parallel::each(servers.into_iter().zip(&tokens), |(server, token)| Asked {
                client: Client::connect(&server, token, patience),
                server,
            });
        let marked = asked.len() > 1;
        if !marked && let Some(Asked { client: Err(_), .. }) = asked.first() {
            let Some(Asked { client: Err(e), .. }) = asked.into_iter().next() else {
                unreachable!()
            };
            return Err(e);
        }
        for s in &asked {
            if let Err(e) = &s.client {
                output::message(&format!(
                    "{e}; its sessions are reported unreachable ({})",
                    s.server.label
                ));
            }
        }
        Ok(Fleet { asked, marked, a })
    }

    /// The serves that could not be reached, each with why, as report entries.
    fn unreachable(&self) -> Vec<Value> {
        self.asked
            .iter()
            .filter_map(|s| match &s.client {
                Err(e) => Some(unreachable_row(&s.server.label, e)),
                Ok(_) => None,
            })
            .collect()
    }

    /// Asks serve `at` for `method`, its sessions marked with its host.
    fn call<T: DeserializeOwned>(
        &mut self,
        at: usize,
        method: &str,
        params: Value,
    ) -> Result<T, Error> {
        let v = self.call_value(at, method, params)?;
        self.read(at, method, v)
    }

    /// `v`, serve `at`'s answer to `method`, read as `T`.
    fn read<T: DeserializeOwned>(&self, at: usize, method: &str, v: Value) -> Result<T, Error> {
        serde_json::from_value(v).map_err(|e| {
            Error::Failed(format!(
                "angrav serve {} answered what this angrav does not read ({method}: {e})",
                self.asked[at].server.label
            ))
        })
    }

    fn call_value(&mut self, at: usize, method: &str, params: Value) -> Result<Value, Error> {
        let (marked, json) = (self.marked, self.a.json);
        let s = &mut self.asked[at];
        let client = s.client.as_mut().map_err(|e| clone_error(e))?;
        let mut v = client.call_value(method, params)?;
        if marked {
            mark(&mut v, &s.server.label, json);
        }
        Ok(v)
    }

    /// The status of the session `query` names, and its serve: one `status` call (of
    /// several serves, the one that found it).
    fn status(&mut self, query: Option<&str>) -> Result<(usize, SessionStatus), Error> {
        let Found { at, name, status } = self.owner(query)?;
        let v = match status {
            Some(v) => self.marked(at, v),
            None => self.call_value(at, "status", json!({ "session": name }))?,
        };
        Ok((at, self.read(at, "status", v)?))
    }

    /// The serve that has the session `query` names. With one serve, it is asked as
    /// given (serve resolves it); of several, `host/ID` names the serve, else every
    /// serve is asked for its status, and the one that has it says.
    fn owner(&mut self, query: Option<&str>) -> Result<Found, Error> {
        let named = |at: usize, name: Option<&str>| Found {
            at,
            name: name.map(String::from),
            status: None,
        };
        if let Some((host, rest)) = query.and_then(|q| q.split_once('/'))
            && let Some(at) = self.asked.iter().position(|s| s.server.label == host)
        {
            return Ok(named(at, Some(rest)));
        }
        if !self.marked {
            return Ok(named(0, query));
        }
        let asked = self.each(|_, c| c.call_value("status", json!({ "session": query })));
        let mut found = Vec::new();
        for (i, answer) in asked {
            match answer {
                Ok(v) => found.push((i, v)),
                Err(e) if e.code() == "session_not_found" => {}
                Err(e) => return Err(e),
            }
        }
        let named = |(i, v): &(usize, Value)| {
            format!(
                "{}/{}",
                self.asked[*i].server.label,
                v["session"]["id"].as_str().unwrap_or("?")
            )
        };
        match found.as_slice() {
            [(at, status)] => Ok(Found {
                at: *at,
                name: status["session"]["target_id"].as_str().map(String::from),
                status: Some(status.clone()),
            }),
            [] => {
                let lost: Vec<String> = self
                    .unreachable()
                    .iter()
                    .map(|u| u["host"].as_str().unwrap_or_default().to_string())
                    .collect();
                if lost.is_empty() {
                    return Err(Error::SessionNotFound {
                        query: query.map(String::from),
                        known: Vec::new(),
                    });
                }
                Err(Error::Failed(format!(
                    "no reachable serve has a session matching {}; {} could not be reached",
                    query.unwrap_or("(none given)"),
                    lost.join(", ")
                )))
            }
            several => Err(Error::SessionAmbiguous {
                query: query.map(String::from),
                matches: several.iter().map(named).collect(),
            }),
        }
    }

    /// Runs `f` on every reachable serve at once; its results in the serves' order.
    fn each<T: Send>(&mut self, f: impl Fn(usize, &mut Client) -> T + Sync) -> Vec<(usize, T)> {
        let reached = self
            .asked
            .iter_mut()
            .enumerate()
            .filter_map(|(i, s)| s.client.as_mut().ok().map(|c| (i, c)));
        crate::parallel::each(reached, |(i, c)| (i, f(i, c)))
    }

    /// Marks `v`, the answer of serve `at`, with its host.
    fn marked(&self, at: usize, mut v: Value) -> Value {
        if self.marked {
            mark(&mut v, &self.asked[at].server.label, self.a.json);
        }
        v
    }

    /// A serve that failed while asked: a warning, and an `unreachable` entry.
    fn lost(&self, at: usize, e: &Error) -> Value {
        let label = &self.asked[at].server.label;
        output::message(&format!(
            "{e}; its sessions are reported unreachable ({label})"
        ));
        unreachable_row(label, e)
    }

    fn list(&mut self) -> Result<u8, Error> {
        let answers = self.each(|_, c| c.call_value("sessions.list", json!({})));
        let mut rows: Vec<Value> = Vec::new();
        let mut lost = self.unreachable();
        for (at, answer) in answers {
            match answer {
                Ok(Value::Array(list)) => {
                    rows.extend(list.into_iter().map(|r| self.marked(at, r)));
                }
                Ok(other) => rows.push(self.marked(at, other)),
                Err(e) if !self.marked => return Err(e),
                Err(e) => lost.push(self.lost(at, &e)),
            }
        }
        if self.a.json {
            rows.extend(lost.iter().cloned());
            output::json(&rows);
        } else {
            let listed: Vec<Listed> = serde_json::from_value(Value::Array(rows))
                .map_err(|e| Error::Failed(format!("angrav serve's list is not readable: {e}")))?;
            print_list(&listed, &[], false);
            for u in &lost {
                output::line(&format!(
                    "{}/-  unreachable  {}",
                    u["host"].as_str().unwrap_or_default(),
                    u["problem"].as_str().unwrap_or_default()
                ));
            }
        }
        Ok(if lost.is_empty() {
            exit::OK
        } else {
            exit::FAILURE
        })
    }

    /// `sessions wait|fanout|run`: each serve asked for its own sessions at once, the
    /// reports put together.
    fn waits(&mut self, text: Option<&str>, tasks: &[(String, String)]) -> Result<u8, Error> {
        let a = self.a;
        // What each serve is asked: the sessions (or tasks) it owns; none named, all.
        let mut chosen: HashMap<usize, Vec<Value>> = HashMap::new();
        let named = !a.sessions.is_empty() || !tasks.is_empty();
        for q in &a.sessions {
            let Found { at, name, .. } = self.owner(Some(q))?;
            chosen.entry(at).or_default().push(json!(name));
        }
        for (q, prompt) in tasks {
            let Found { at, name, .. } = self.owner(Some(q))?;
            chosen
                .entry(at)
                .or_default()
                .push(json!({ "session": name, "prompt": prompt }));
        }
        let (method, key) = match a.command {
            Command::SessionsWait => ("wait", "sessions"),
            Command::SessionsFanout(_) => ("fanout", "sessions"),
            _ => ("run", "tasks"),
        };
        let marked = self.marked;
        let answers = self.each(|at, c| {
            let mine = chosen.get(&at);
            if named && mine.is_none() {
                return None;
            }
            let mut params = timed(json!({ "any": a.any, "text": text }), a);
            params[key] = json!(mine.cloned().unwrap_or_default());
            params["extract"] = json!(a.extract);
            Some(c.call_value(method, params))
        });
        let mut merged = Report {
            timed_out: false,
            sessions: Vec::new(),
        };
        let mut lost = self.unreachable();
        for (at, answer) in answers {
            let Some(answer) = answer else { continue };
            let report = answer.and_then(|v| {
                serde_json::from_value::<Report>(self.marked(at, v))
                    .map_err(|e| Error::Failed(format!("a report not readable: {e}")))
            });
            match report {
                Ok(r) => {
                    merged.timed_out |= r.timed_out;
                    merged.sessions.extend(r.sessions);
                }
                // A serve with nothing to do (fanout: no idle chat) adds nothing.
                Err(e) if marked && e.code() == "session_not_found" => {}
                Err(e) if !marked => return Err(e),
                Err(e) => lost.push(self.lost(at, &e)),
            }
        }
        if merged.sessions.is_empty() && lost.is_empty() {
            return Err(Error::SessionNotFound {
                query: None,
                known: Vec::new(),
            });
        }
        if a.json && !lost.is_empty() {
            let mut v = json!(merged);
            v["unreachable"] = json!(lost);
            output::json(&v);
        } else {
            print_report(&merged, a.json);
        }
        let code = report_end(&merged, a.wait.timeout)?;
        Ok(if code == exit::OK && !lost.is_empty() {
            exit::FAILURE
        } else {
            code
        })
    }

    /// `sessions approve|deny`: on each serve, the chats named, else every one awaiting
    /// approval, answered one by one; a result row per chat.
    fn press_many(&mut self) -> Result<u8, Error> {
        let a = self.a;
        // Each chat named: as its serve names it, and its session when finding it
        // read its status already.
        type Named = (Option<String>, Option<crate::sessions::Session>);
        let mut chosen: HashMap<usize, Vec<Named>> = HashMap::new();
        for q in &a.sessions {
            let Found { at, name, status } = self.owner(Some(q))?;
            let known = match status {
                Some(v) => Some(self.read::<SessionStatus>(at, "status", v)?.session),
                None => None,
            };
            chosen.entry(at).or_default().push((name, known));
        }
        let named = !a.sessions.is_empty();
        let started = Instant::now();
        let answers = self.each(|at, c| -> Result<Vec<Outcome>, Error> {
            // Each chat with its session, known before anything is pressed (a chat
            // named is asked for first), and the approval to press: the one the list
            // read, or none for a chat named (whatever shows, as `approve`).
            let targets: Vec<(crate::sessions::Session, Result<Option<String>, String>)> =
                match chosen.get(&at) {
                    Some(t) => t
                        .iter()
                        .map(|(name, known)| {
                            let session = match known {
                                Some(s) => s.clone(),
                                None => {
                                    c.call::<SessionStatus>("status", json!({ "session": name }))?
                                        .session
                                }
                            };
                            Ok((session, Ok(None)))
                        })
                        .collect::<Result<_, Error>>()?,
                    None if named => return Ok(Vec::new()),
                    None => {
                        let listed: Vec<Listed> = c.call("sessions.list", json!({}))?;
                        listed
                            .into_iter()
                            .filter(|l| l.state == Some(crate::panel::State::AwaitingApproval))
                            .map(|l| {
                                (
                                    l.session,
                                    super::approve::listed_card(&l.approvals).map(Some),
                                )
                            })
                            .collect()
                    }
                };
            // From here on a row a chat, whatever befalls the next: a press made is
            // never thrown away.
            let mut rows = Vec::new();
            for (session, card) in targets {
                let pressed = card.map_err(Error::Failed).and_then(|id| {
                    let t = Some(session.target_id.clone());
                    let (method, params) = press_params(&a.command, t, id.as_deref());
                    c.call::<Pressed>(method, params)
                });
                let mut row = Outcome::pending(&session);
                match pressed {
                    Ok(done) => {
                        row.status = Status::Done;
                        row.state = Some(done.state);
                        row.approvals = done.approvals;
                        row.error = done.error;
                        row.reason = Some(format!("pressed '{}'", done.pressed));
                        row.approval = done.approval;
                    }
                    Err(e) => {
                        row.status = Status::Failed;
                        row.reason = Some(e.to_string());
                    }
                }
                row.duration_ms = started.elapsed().as_millis() as u64;
                rows.push(row);
            }
            Ok(rows)
        });
        let mut report = Report {
            timed_out: false,
            sessions: Vec::new(),
        };
        let mut lost = self.unreachable();
        for (at, answer) in answers {
            match answer {
                Ok(rows) => {
                    for row in rows {
                        let v = self.marked(at, json!(row));
                        report
                            .sessions
                            .push(serde_json::from_value(v).expect("an outcome reads back"));
                    }
                }
                Err(e) if !self.marked => return Err(e),
                Err(e) => lost.push(self.lost(at, &e)),
            }
        }
        if lost.is_empty() {
            // Exactly what the command prints attached.
            return Ok(super::approve::print_answers(&report, a.json));
        }
        if a.json {
            let mut v = json!(report);
            v["unreachable"] = json!(lost);
            output::json(&v);
        } else {
            print_report(&report, a.json);
        }
        Ok(exit::FAILURE)
    }

    /// `sessions watch`: each serve's table as snapshot lines, then its events as they
    /// come, one line each; a serve lost is `endpoint_lost` (asked again every second),
    /// and `endpoint_back` with fresh snapshot lines when it answers again.
    fn watch(self) -> Result<u8, Error> {
        let a = self.a;
        let deadline = a.timeout_given.then(|| Instant::now() + a.wait.timeout);
        let (tx, rx) = crossbeam_channel::unbounded::<Seen>();
        let marked = self.marked;
        let chosen: Vec<String> = a.sessions.clone();
        for asked in self.asked {
            let tx = tx.clone();
            let token = token(a, &asked.server)?;
            std::thread::Builder::new()
                .name(format!("watch {}", asked.server.label))
                .spawn(move || follow(asked, &token, tx))
                .expect("spawn a watch thread");
        }
        drop(tx);
        let mut p = WatchPrinter {
            json: a.json,
            marked,
            chosen,
            seq: 0,
            events: 0,
            lost: HashMap::new(),
        };
        let mut first = true;
        loop {
            let seen = match deadline {
                Some(d) => rx.recv_deadline(d).ok(),
                None => rx.recv().ok(),
            };
            let Some(seen) = seen else { break };
            p.print(seen, &mut first);
            if a.count.is_some_and(|n| p.events >= n) {
                break;
            }
        }
        Ok(if p.lost.values().any(|l| *l) {
            exit::FAILURE
        } else {
            exit::OK
        })
    }
}

/// What a watch thread saw of its serve.
enum Seen {
    Table {
        host: String,
        rows: Vec<Value>,
    },
    Event {
        host: String,
        event: Value,
    },
    Lost {
        host: String,
        why: String,
    },
    Back {
        host: String,
    },
    /// A lost serve is about to be asked again (nothing to print).
    Retrying,
}

/// Follows one serve for a watch until the watch ends (its channel closes).
fn follow(asked: Asked, token: &str, tx: crossbeam_channel::Sender<Seen>) {
    let host = asked.server.label.clone();
    let mut client = asked.client;
    let mut was_lost = false;
    loop {
        let answered = client.and_then(|mut c| {
            let table = c.subscribe()?;
            Ok((c, table))
        });
        match answered {
            Ok((mut c, table)) => {
                if was_lost && tx.send(Seen::Back { host: host.clone() }).is_err() {
                    return;
                }
                let rows = table["sessions"].as_array().cloned().unwrap_or_default();
                if tx
                    .send(Seen::Table {
                        host: host.clone(),
                        rows,
                    })
                    .is_err()
                {
                    return;
                }
                let why = loop {
                    match c.message() {
                        Ok(m) if m.get("event").is_some() => {
                            let event = m["event"].clone();
                            if tx
                                .send(Seen::Event {
                                    host: host.clone(),
                                    event,
                                })
                                .is_err()
                            {
                                return;
                            }
                        }
                        Ok(_) => {}
                        Err(e) => break e,
                    }
                };
                if tx
                    .send(Seen::Lost {
                        host: host.clone(),
                        why: why.to_string(),
                    })
                    .is_err()
                {
                    return;
                }
                was_lost = true;
            }
            Err(e) => {
                if !was_lost {
                    let lost = Seen::Lost {
                        host: host.clone(),
                        why: e.to_string(),
                    };
                    if tx.send(lost).is_err() {
                        return;
                    }
                }
                was_lost = true;
            }
        }
        // Asked again after a pause; a watch that ended has closed the channel.
        std::thread::sleep(RETRY);
        if tx.send(Seen::Retrying).is_err() {
            return;
        }
        client = Client::connect(&asked.server, token, HUNG);
    }
}

/// Prints what the watch threads saw, as `sessions watch` prints its lines.
struct WatchPrinter {
    json: bool,
    marked: bool,
    chosen: Vec<String>,
    seq: u64,
    events: u64,
    /// Serves lost now.
    lost: HashMap<String, bool>,
}

impl WatchPrinter {
    /// A session given with `--session` (any when none are).
    fn wanted(&self, host: &str, session: &Value) -> bool {
        let id = session["target_id"].as_str().unwrap_or_default();
        let ws = session["workspace"].as_str();
        self.chosen.is_empty()
            || self.chosen.iter().any(|q| {
                let q = q.strip_prefix(&format!("{host}/")).unwrap_or(q);
                id.starts_with(q) || ws == Some(q)
            })
    }

    fn print(&mut self, seen: Seen, first: &mut bool) {
        let now = rfc3339(SystemTime::now());
        match seen {
            Seen::Table { host, rows } => {
                *first = false;
                for mut r in rows {
                    if !self.wanted(&host, &r["session"]) {
                        continue;
                    }
                    if self.marked {
                        mark(&mut r, &host, self.json);
                    }
                    self.seq += 1;
                    let mut line = json!({
                        "seq": self.seq, "type": "snapshot", "session": r["session"],
                        "previous": null, "current": r["state"], "timestamp": now,
                    });
                    // The details an attached watch's snapshot line has, left out as
                    // it leaves them out: when there is nothing to say.
                    for key in ["layout", "error", "approvals", "approval", "question"] {
                        match r.get(key) {
                            None | Some(Value::Null) => {}
                            Some(Value::Array(a)) if a.is_empty() => {}
                            Some(v) => line[key] = v.clone(),
                        }
                    }
                    self.emit(line, || {
                        format!(
                            "{}  {:10}  {}",
                            r["session"]["id"].as_str().unwrap_or_default(),
                            r["session"]["workspace"].as_str().unwrap_or("-"),
                            r["state"].as_str().unwrap_or("unknown")
                        )
                    });
                }
            }
            Seen::Retrying => {}
            Seen::Event { host, mut event } => {
                if !self.wanted(&host, &event["session"]) {
                    return;
                }
                if self.marked {
                    mark(&mut event, &host, self.json);
                }
                self.seq += 1;
                self.events += 1;
                event["seq"] = json!(self.seq);
                let text = {
                    let e = &event;
                    let name = |v: &Value| v.as_str().unwrap_or("-").to_string();
                    format!(
                        "{}  {}  {:10}  {}: {} -> {}",
                        name(&e["timestamp"]),
                        name(&e["session"]["id"]),
                        e["session"]["workspace"].as_str().unwrap_or("-"),
                        name(&e["type"]),
                        name(&e["previous"]),
                        name(&e["current"])
                    )
                };
                self.emit(event, || text);
            }
            Seen::Lost { host, why } => {
                self.lost.insert(host.clone(), true);
                output::message(&format!("{why}; asking again every second ({host})"));
                self.endpoint("endpoint_lost", &host, Some(&why), &now);
            }
            Seen::Back { host } => {
                self.lost.insert(host.clone(), false);
                self.endpoint("endpoint_back", &host, None, &now);
            }
        }
    }

    fn endpoint(&mut self, kind: &str, host: &str, why: Option<&str>, now: &str) {
        self.seq += 1;
        let mut line = json!({ "seq": self.seq, "type": kind, "endpoint": host, "timestamp": now });
        if let Some(w) = why {
            line["reason"] = json!(w);
        }
        self.emit(line, || format!("{now}  {host}  {kind}"));
    }

    fn emit(&self, mut line: Value, text: impl FnOnce() -> String) {
        if self.json {
            if let Some(o) = line.as_object_mut() {
                // As the watch here writes them: what a line lacks is left out.
                o.retain(|k, v| !v.is_null() || matches!(k.as_str(), "previous" | "current"));
            }
            output::json(&line);
        } else {
            output::line(&text());
        }
    }
}

/// An `unreachable` entry: the serve, and why.
fn unreachable_row(label: &str, e: &Error) -> Value {
    json!({ "session": null, "host": label, "kind": "server", "state": "unreachable",
        "layout": null, "problem": e.to_string() })
}

/// The sessions of `v` marked as `host`'s; in text, their ids written `host/ID`.
fn mark(v: &mut Value, host: &str, json: bool) {
    mark_host(v, host);
    if !json {
        prefix_ids(v);
    }
}

fn prefix_ids(v: &mut Value) {
    match v {
        Value::Object(o) => {
            if let (Some(Value::String(h)), Some(Value::String(id))) = (o.get("host"), o.get("id"))
                && o.contains_key("target_id")
            {
                let shown = format!("{h}/{id}");
                o.insert("id".into(), json!(shown));
                return;
            }
            o.values_mut().for_each(prefix_ids);
        }
        Value::Array(a) => a.iter_mut().for_each(prefix_ids),
        _ => {}
    }
}

/// `Error` is not `Clone`: the same failure, said again.
fn clone_error(e: &Error) -> Error {
    Error::served(e.code(), e.to_string())
}
