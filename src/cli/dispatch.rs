//! `angrav dispatch`: a file of prompts spread over the idle chats, a result line per
//! prompt as it finishes.

use std::collections::{HashMap, HashSet};
use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::{never, select};
use serde::Deserialize;
use serde_json::{Value, json};

use super::output;
use super::resume::{self, Resumed};
use super::single::read_input;
use super::wait::listed;
use super::{Args, parse_duration, registry, usage};
use crate::dispatch::{Dispatcher, Event, Finished, Options, Prompt, Recorder, Status};
use crate::journal::{self, Ended, Journal, Kind, TurnOutcome, TurnRecord};
use crate::panel::State;
use crate::sessions::Session;
use crate::show;
use crate::signals::signals as interrupts;
use crate::{Error, exit};

pub(super) fn run(a: &Args) -> Result<u8, Error> {
    let journal = super::memory::journal(a).map(Arc::new);
    // Read and check the prompts (or the run to resume) before touching the browser:
    // a bad file fails fast.
    let resumed = match &a.resume {
        Some(which) => {
            let dir = super::memory::state(a, "dispatch --resume")?;
            Some(Resumed::read(&dir, which)?)
        }
        None => None,
    };
    let tasks = match &resumed {
        Some(_) => Vec::new(),
        None => {
            let text = match &a.file {
                Some(f) => read_input(None, Some(f))?,
                None => read_input(Some("-"), None)?,
            };
            let tasks = parse_tasks(&text)?;
            if tasks.is_empty() {
                return Err(usage(
                    "no prompts to dispatch: give -f FILE or prompts on stdin",
                ));
            }
            tasks
        }
    };
    let registry = registry(a)?;
    let chosen = registry.select(&a.sessions)?;
    let mut paused = match &a.model {
        Some(model) => super::ls::with_quota_left(a, &chosen, model, &registry)?,
        None => None,
    };
    if chosen.is_empty() {
        return Err(Error::SessionNotFound {
            query: None,
            known: vec![],
        });
    }
    let mut prompts = Vec::new();
    for t in tasks {
        let pin = match &t.session {
            None => None,
            Some(q) => {
                let s = registry.get(Some(q))?;
                if !chosen.iter().any(|c| c.target_id == s.target_id) {
                    return Err(usage(format!(
                        "prompt {} is pinned to {}, which is not among the chosen sessions",
                        t.id, s.id
                    )));
                }
                Some(s.target_id.clone())
            }
        };
        prompts.push(Prompt {
            id: t.id,
            text: t.prompt,
            pin,
            timeout: t.timeout,
        });
    }
    let opts = Options {
        per_session: a.per_session,
        retries: a.retries,
        settle: a.wait.settle,
        start_within: a.start_within,
        stall_after: a.stall_after,
        claim_within: Options::default().claim_within,
        extract: a.extract,
    };
    // The widest id of the run's prompts: the result rows' first column.
    let widest = |ps: &[Prompt]| ps.iter().map(|p| p.id.chars().count()).max().unwrap_or(0);
    let (run, total, id_width, earlier) = match resumed {
        Some(r) => {
            let total = r.prompts.len();
            let width = widest(&r.prompts);
            prompts = r.unsent;
            (
                r.run,
                total,
                width,
                Some((r.recorded, r.unknown, r.prompts)),
            )
        }
        None => {
            let run = crate::state::random_hex(6)
                .map_err(|e| Error::Failed(format!("cannot read /dev/urandom: {e}")))?;
            (run, prompts.len(), widest(&prompts), None)
        }
    };
    let texts: HashMap<String, String> = prompts
        .iter()
        .map(|p| (p.id.clone(), p.text.clone()))
        .collect();
    let mut journal = Journaling {
        journal,
        run,
        delivered: HashMap::new(),
    };
    let mut screen = Screen::new(a.json, total, id_width.min(MAX_ID_WIDTH));
    let mut all_idle = true;
    match earlier {
        // What became of the run's prompts before it stopped, as far as the journal
        // and the chats show it.
        Some((recorded, unknown, asked)) => {
            for r in &recorded {
                // An unconfirmed one its chat's transcript now shows delivered.
                let found = (r["status"] == "unconfirmed")
                    .then(|| resume::recheck(&registry, r, &asked, a))
                    .flatten();
                if let Some(found) = found {
                    journal.result(&found);
                    all_idle &= found.succeeded();
                    screen.finished(&found);
                    continue;
                }
                all_idle &= recorded_succeeded(r);
                screen.recorded(r);
            }
            for u in &unknown {
                let r = resume::settle(&registry, u, a);
                journal.result(&r);
                all_idle &= r.succeeded();
                screen.finished(&r);
            }
        }
        None => journal.started(&prompts),
    }
    let recorder = journal.recorder();
    let kept: Vec<String> = paused
        .iter()
        .flat_map(|p| p.sessions.iter().map(|s| s.target_id.clone()))
        .collect();
    let dispatcher =
        Dispatcher::start_recorded(&chosen, registry.profile(), prompts, opts, recorder, &kept);
    let start = Instant::now();
    let run_deadline = a.timeout_given.then(|| start + a.wait.timeout);
    let mut grace_deadline: Option<Instant> = None;
    let ctrl_c = interrupts();
    let (mut interrupted, mut timed_out) = (false, false);
    // The prompts whose turns were still running when the run was stopped.
    let mut unfinished: Vec<String> = Vec::new();
    let ticker = if screen.progress {
        crossbeam_channel::tick(Duration::from_secs(1))
    } else {
        never()
    };
    // A read of the quota under way (see `Paused::reread`).
    let mut reread = never();
    let unsent = loop {
        let next = [run_deadline, grace_deadline].into_iter().flatten().min();
        let timer = next.map_or_else(never, crossbeam_channel::at);
        let requota = paused
            .as_ref()
            .and_then(|p| p.next)
            .map_or_else(never, crossbeam_channel::at);
        select! {
            recv(dispatcher.events()) -> event => match event {
                Ok(Event::Ended { unsent }) => break unsent,
                Err(_) => break Vec::new(),
                Ok(Event::Delivered { id, target_id, at }) => {
                    if let Some(s) = chosen.iter().find(|s| s.target_id == target_id) {
                        journal.delivered(s, &id, &texts[&id], at);
                    }
                }
                Ok(Event::Finished(r)) => {
                    journal.finished(&r, interrupted);
                    if r.status == Status::Pending {
                        unfinished.push(r.id.clone());
                    }
                    all_idle &= r.succeeded();
                    screen.finished(&r);
                }
                Ok(Event::Sent { id, .. }) => {
                    screen.running.insert(id);
                }
                Ok(Event::SetAside { session, reason }) => {
                    screen.note(&format!("{session} gets no prompts for now: {reason}"))
                }
                Ok(Event::Back { session }) => screen.note(&format!("{session} is idle again")),
            },
            recv(ctrl_c) -> _ => {
                if interrupted {
                    screen.note("interrupted again: stopping the running turns now");
                    dispatcher.abort();
                } else {
                    interrupted = true;
                    screen.note(&format!(
                        "interrupted: no more prompts are sent; waiting up to {} for the running turns (Ctrl-C again: stop now)",
                        show::duration(a.grace)
                    ));
                    dispatcher.stop();
                    grace_deadline = Some(Instant::now() + a.grace);
                }
            },
            recv(timer) -> _ => {
                let now = Instant::now();
                if run_deadline.is_some_and(|d| now >= d) && !timed_out {
                    timed_out = true;
                    dispatcher.abort();
                }
                if grace_deadline.is_some_and(|d| now >= d) {
                    grace_deadline = None;
                    dispatcher.abort();
                }
            },
            recv(requota) -> _ => {
                if let Some(p) = paused.as_mut() {
                    reread = p.reread();
                }
            },
            recv(reread) -> quota => {
                reread = never();
                let quota = quota.unwrap_or_else(|_| Err(Error::Failed("its reader stopped".into())));
                for s in paused.as_mut().map(|p| p.check(quota)).unwrap_or_default() {
                    dispatcher.resume(&s.target_id);
                }
            },
            recv(ticker) -> _ => {},
        }
        screen.draw(start.elapsed());
    };
    screen.clear();
    if !unsent.is_empty() {
        output::message(&format!(
            "{} prompts were never sent; they follow on stdout, one JSON line each: feed them to 'angrav dispatch' again",
            unsent.len()
        ));
        for p in &unsent {
            output::json(&input_line(p, a.json));
        }
    }
    // Stopped early: the error (with --json, one JSON object after the lines above)
    // names the prompts left, running or never sent.
    let left = || {
        listed(
            unfinished
                .iter()
                .chain(unsent.iter().map(|p| &p.id))
                .map(String::as_str),
        )
    };
    if interrupted {
        return Err(Error::Interrupted(format!(
            "interrupted; still waiting for {}",
            left()
        )));
    }
    if timed_out {
        return Err(Error::Timeout {
            after: a.wait.timeout,
            pending: left(),
        });
    }
    Ok(if all_idle && unsent.is_empty() {
        exit::OK
    } else {
        exit::FAILURE
    })
}

/// What the journal keeps of a dispatch run: its prompts, each submission (before
/// its Enter, written at once), each delivery, each turn ended, each result; what
/// `--resume` reads.
struct Journaling {
    journal: Option<Arc<Journal>>,
    run: String,
    /// By prompt id: its last delivery, until its result.
    delivered: HashMap<String, journal::Sent>,
}

/// Tells the journal of each submission, before the Enter.
struct Submissions {
    journal: Arc<Journal>,
    run: String,
}

impl Recorder for Submissions {
    /// Refused when the line is not in the file: `--resume` would not know the prompt
    /// was submitted, and would send it again.
    fn submitting(&self, prompt: &Prompt, session: &Session) -> Result<(), String> {
        let fields = json!({ "run": self.run, "id": prompt.id, "session": session });
        if self
            .journal
            .record_now(Kind::PromptSubmitted, fields)
            .is_some()
        {
            return Ok(());
        }
        // The journal's error says what to repair, and that --no-state does without.
        let cause = self.journal.failure().unwrap_or_default();
        Err(format!(
            "the journal cannot record its submission, so 'dispatch --resume' could send it twice: no prompt is sent any more in this run ({cause})"
        ))
    }
}

impl Journaling {
    fn started(&self, prompts: &[Prompt]) {
        let Some(j) = &self.journal else { return };
        let lines: Vec<Value> = prompts.iter().map(|p| input_line(p, false)).collect();
        j.record_now(
            Kind::DispatchStarted,
            json!({ "run": self.run, "prompts": lines }),
        );
    }

    fn recorder(&self) -> Option<Arc<dyn Recorder>> {
        let journal = self.journal.clone()?;
        let run = self.run.clone();
        Some(Arc::new(Submissions { journal, run }))
    }

    fn delivered(&mut self, session: &Session, id: &str, text: &str, at: SystemTime) {
        let Some(j) = &self.journal else { return };
        let mut sent = journal::Sent::new(session, text, at);
        (sent.run, sent.id) = (Some(self.run.clone()), Some(id.to_string()));
        j.record_prompt(&sent);
        self.delivered.insert(id.to_string(), sent);
    }

    /// A prompt's result; one stopped early by ^C was not seen to end.
    fn finished(&mut self, r: &Finished, interrupted: bool) {
        self.result(r);
        let (Some(j), Some(sent)) = (&self.journal, self.delivered.remove(&r.id)) else {
            return;
        };
        let outcome = match (r.status, r.state) {
            (Status::Done, state) => TurnOutcome::stopped(state),
            (Status::Stalled, _) => TurnOutcome::Stalled,
            (Status::Closed, _) => TurnOutcome::Closed,
            (Status::Pending, _) if !interrupted => TurnOutcome::Timeout,
            (Status::Pending | Status::Failed | Status::Unconfirmed, _) => return,
        };
        let duration = Duration::from_millis(r.duration_ms);
        let finished = crate::timestamp::parse_rfc3339(&sent.started)
            .map_or_else(SystemTime::now, |t| t + duration);
        let answer = r.answer.as_ref().map_or("", |m| m.content.as_str());
        let ended = Ended::new(outcome, answer, duration, finished);
        j.record_turn(&TurnRecord { sent, ended });
    }

    /// The result line, as `--json` prints it, with the run: in the file before it is
    /// printed, so a run resumed after a kill reports every line it printed as it was.
    fn result(&self, r: &Finished) {
        let Some(j) = &self.journal else { return };
        let mut fields = serde_json::to_value(r).expect("a result serialises");
        fields["run"] = self.run.clone().into();
        j.record_now(Kind::DispatchResult, fields);
    }
}

/// One prompt of the input.
#[derive(Debug, PartialEq)]
struct Task {
    id: String,
    prompt: String,
    /// A session query (id prefix or workspace name).
    session: Option<String>,
    timeout: Option<Duration>,
}

/// One prompt per line: a line that starts with `{` is a JSON object with `prompt`
/// (and optional `id`, `session`, `timeout`), any other line the prompt as it is; the
/// two may be mixed. Blank lines are skipped; a prompt without an id is named by its
/// line number.
fn parse_tasks(text: &str) -> Result<Vec<Task>, Error> {
    #[derive(Deserialize)]
    struct Line {
        prompt: String,
        id: Option<Value>,
        session: Option<String>,
        timeout: Option<Value>,
        group: Option<Value>,
    }
    let lines = text
        .lines()
        .enumerate()
        .map(|(n, l)| (n + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty());
    let mut tasks = Vec::new();
    let mut ids = HashSet::new();
    for (n, line) in lines {
        // A line meant as JSON but malformed is refused, never sent as text.
        let task = if line.starts_with('{') {
            let bad = |why: String| usage(format!("line {n}: {why}"));
            let l: Line = serde_json::from_str(line)
                .map_err(|e| bad(format!("not a JSON object with \"prompt\": {e}")))?;
            if l.group.is_some() {
                return Err(bad(
                    "group pins are not supported yet; pin to a session".into()
                ));
            }
            let timeout = match l.timeout {
                None | Some(Value::Null) => None,
                Some(Value::Number(ms)) => Some(parse_duration(&ms.to_string())?),
                Some(Value::String(d)) => Some(parse_duration(&d)?),
                Some(other) => return Err(bad(format!("timeout {other} is not a duration"))),
            };
            let id = match l.id {
                None | Some(Value::Null) => n.to_string(),
                Some(Value::String(s)) => s,
                Some(other) => other.to_string(),
            };
            Task {
                id,
                prompt: l.prompt,
                session: l.session,
                timeout,
            }
        } else {
            Task {
                id: n.to_string(),
                prompt: line.to_string(),
                session: None,
                timeout: None,
            }
        };
        if task.prompt.trim().is_empty() {
            return Err(usage(format!("line {n}: the prompt is empty")));
        }
        if !ids.insert(task.id.clone()) {
            return Err(usage(format!(
                "line {n}: the id {} is given twice",
                task.id
            )));
        }
        tasks.push(task);
    }
    Ok(tasks)
}

/// A prompt as an input line (with `unsent`, also `"status": "unsent"`: a prompt
/// never sent, printed with `--json`).
fn input_line(p: &Prompt, unsent: bool) -> Value {
    let mut line = json!({ "id": p.id, "prompt": p.text });
    if let Some(pin) = &p.pin {
        line["session"] = pin.clone().into();
    }
    if let Some(t) = p.timeout {
        line["timeout"] = (t.as_millis() as u64).into();
    }
    if unsent {
        line["status"] = "unsent".into();
    }
    line
}

/// A prompt of a run as the journal keeps it (an input line; `session`: the pinned
/// chat's target id).
pub(super) fn prompt_of_line(v: &Value) -> Option<Prompt> {
    Some(Prompt {
        id: v["id"].as_str()?.to_string(),
        text: v["prompt"].as_str()?.to_string(),
        pin: v["session"].as_str().map(str::to_string),
        timeout: v["timeout"].as_u64().map(Duration::from_millis),
    })
}

/// [`crate::dispatch::succeeded`], of a result recorded before a stop.
fn recorded_succeeded(r: &Value) -> bool {
    let status = serde_json::from_value(r["status"].clone());
    let state = serde_json::from_value(r["state"].clone()).ok();
    status.is_ok_and(|s| crate::dispatch::succeeded(s, state, r["reason"].as_str()))
}

/// Results on stdout, notes and a progress line on stderr (when it is a terminal).
struct Screen {
    json: bool,
    progress: bool,
    total: usize,
    /// The width of the rows' id column.
    id_width: usize,
    /// The prompts handed to a session and not finished yet.
    running: HashSet<String>,
    ok: usize,
    failed: usize,
    drawn: bool,
}

impl Screen {
    fn new(json: bool, total: usize, id_width: usize) -> Screen {
        Screen {
            json,
            progress: std::io::stderr().is_terminal(),
            total,
            id_width,
            running: HashSet::new(),
            ok: 0,
            failed: 0,
            drawn: false,
        }
    }

    /// A result counted, and the progress line cleared for it.
    fn count(&mut self, succeeded: bool) {
        if succeeded {
            self.ok += 1;
        } else {
            self.failed += 1;
        }
        self.clear();
    }

    fn finished(&mut self, r: &Finished) {
        self.running.remove(&r.id);
        self.count(r.succeeded());
        if self.json {
            output::json(r);
        } else {
            output::line(&result_line(r, self.id_width));
        }
    }

    /// A result recorded before a stop (`--resume`), as it was printed then.
    fn recorded(&mut self, r: &Value) {
        self.count(recorded_succeeded(r));
        if self.json {
            output::json(r);
        } else {
            let text = |v: &Value| v.as_str().map(str::to_string);
            let what = text(&r["reason"])
                .or_else(|| text(&r["error"]))
                .or_else(|| text(&r["answer"]["content"]))
                .unwrap_or_default();
            let what = what
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or_default();
            output::line(&format!(
                "{:w$}  {}  {:7}  {:17}  {:>6.1}s  {}  (before the stop)",
                text(&r["id"]).unwrap_or_default(),
                text(&r["session"]["id"]).unwrap_or_else(|| "-".into()),
                text(&r["status"]).unwrap_or_default(),
                text(&r["state"]).unwrap_or_else(|| "-".into()),
                r["duration_ms"].as_f64().unwrap_or_default() / 1e3,
                one_line(what),
                w = self.id_width
            ));
        }
    }

    fn note(&mut self, text: &str) {
        self.clear();
        output::message(text);
    }

    /// `[#####.....] 5/12  done 4  running 3  queued 4  failed 1  12.3s  ETA 20s`
    fn draw(&mut self, elapsed: Duration) {
        if !self.progress {
            return;
        }
        let finished = self.ok + self.failed;
        let running = self.running.len();
        let queued = self.total.saturating_sub(finished + running);
        let width = 20;
        let filled = finished * width / self.total.max(1);
        let eta = if finished == 0 || finished == self.total {
            "-".to_string()
        } else {
            let left = elapsed.mul_f64((self.total - finished) as f64 / finished as f64);
            format!("{}s", left.as_secs())
        };
        // A stderr that is gone is no reason to stop.
        let _ = write!(
            std::io::stderr(),
            "\r\x1b[2K[{}{}] {finished}/{}  done {}  running {running}  queued {queued}  failed {}  {:.1}s  ETA {eta}",
            "#".repeat(filled),
            ".".repeat(width - filled),
            self.total,
            self.ok,
            self.failed,
            elapsed.as_secs_f64()
        );
        self.drawn = true;
    }

    fn clear(&mut self) {
        if std::mem::take(&mut self.drawn) {
            let _ = write!(std::io::stderr(), "\r\x1b[2K");
        }
    }
}

/// Ids longer than this are not padded to: one long id does not push every row.
const MAX_ID_WIDTH: usize = 24;

/// `ID  SESSION  STATUS  STATE  DURATION  answer's first line, or why`, the id
/// padded to `id_width`.
fn result_line(r: &Finished, id_width: usize) -> String {
    let status = match r.status {
        Status::Done => "done",
        Status::Stalled => "stalled",
        Status::Closed => "closed",
        Status::Failed => "failed",
        Status::Unconfirmed => "unconfirmed",
        Status::Pending => "pending",
    };
    let what = r
        .reason
        .clone()
        .or_else(|| r.error.clone())
        .or_else(|| {
            r.answer
                .as_ref()
                .and_then(|m| m.content.lines().find(|l| !l.trim().is_empty()))
                .map(str::to_string)
        })
        .unwrap_or_default();
    let what = one_line(&what);
    format!(
        "{:id_width$}  {}  {status:7}  {:17}  {:>6.1}s  {what}",
        r.id,
        r.session.as_ref().map_or("-", |s| s.id.as_str()),
        r.state.map_or("-", State::name),
        r.duration_ms as f64 / 1e3
    )
}

/// Page text, on one line and without control characters.
fn one_line(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).take(100).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_rows_line_up_whatever_the_ids_length() {
        let rows: Vec<String> = ["db", "5"]
            .into_iter()
            .map(|id| {
                let r = Finished::unfollowed(id.into(), None, Status::Failed, "why".into(), 1);
                result_line(&r, 2)
            })
            .collect();
        assert_eq!(rows[0].find("  -  "), Some(2), "{rows:?}");
        assert_eq!(rows[1].find("  -  "), Some(2), "{rows:?}");
        assert_eq!(rows[0].len(), rows[1].len(), "{rows:?}");
    }

    #[test]
    fn plain_lines_are_prompts_named_by_line_number() {
        let t = parse_tasks("review a.rs\n\n  review b.rs  \n").unwrap();
        let got: Vec<(&str, &str)> = t
            .iter()
            .map(|t| (t.id.as_str(), t.prompt.as_str()))
            .collect();
        assert_eq!(got, [("1", "review a.rs"), ("3", "review b.rs")]);
        // After JSON lines too.
        let t = parse_tasks("{\"prompt\": \"a\", \"id\": \"x\"}\nplain b\n").unwrap();
        let got: Vec<(&str, &str)> = t
            .iter()
            .map(|t| (t.id.as_str(), t.prompt.as_str()))
            .collect();
        assert_eq!(got, [("x", "a"), ("2", "plain b")]);
    }

    #[test]
    fn json_lines_carry_ids_pins_and_timeouts() {
        let t = parse_tasks(
            "{\"prompt\": \"a\", \"id\": \"x\", \"session\": \"alpha\", \"timeout\": \"90s\"}\n\
             {\"prompt\": \"b\", \"timeout\": 5000, \"id\": 7}\n{\"prompt\": \"c\"}",
        )
        .unwrap();
        assert_eq!(
            t[0],
            Task {
                id: "x".into(),
                prompt: "a".into(),
                session: Some("alpha".into()),
                timeout: Some(Duration::from_secs(90)),
            }
        );
        assert_eq!(
            (t[1].id.as_str(), t[1].timeout),
            ("7", Some(Duration::from_secs(5)))
        );
        assert_eq!(t[2].id, "3");
        // A line that is an unsent result of an earlier run reads as input again.
        let back = input_line(&Prompt::new("x", "a \"quoted\"\nprompt"), true).to_string();
        assert_eq!(
            parse_tasks(&back).unwrap()[0].prompt,
            "a \"quoted\"\nprompt"
        );
    }

    #[test]
    fn bad_input_is_a_usage_error_naming_the_line() {
        for (text, says) in [
            ("{\"prompt\": \"a\"}\n{not json", "line 2"),
            ("{\"prompt\": \"a\", \"group\": \"g\"}", "group"),
            (
                "{\"prompt\": \"a\", \"id\": 1}\n{\"prompt\": \"b\", \"id\": 1}",
                "twice",
            ),
            ("{\"prompt\": \"  \"}", "empty"),
            ("{\"prompt\": \"a\", \"timeout\": \"soon\"}", "duration"),
        ] {
            let e = parse_tasks(text).unwrap_err();
            assert_eq!(e.exit_code(), exit::USAGE, "{text}");
            assert!(e.to_string().contains(says), "{text}: {e}");
        }
    }
}
