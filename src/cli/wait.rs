//! The commands that wait on many sessions: `sessions wait`, `sessions fanout`,
//! `sessions run`; and the report they (and `demo`, `approve`, `--server`) print.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::time::Duration;

use serde::Deserialize;

use super::color;
use super::output::{self, Stream, shown};
use super::single::read_input;
use super::{Args, Command, registry, usage};
use crate::panel::{Deadline, State};
use crate::show::Block;
use crate::waiter::{self, Outcome, Progress, Report, Status, Strategy, WaitSpec};
use crate::{Error, exit};

/// `sessions wait`, `sessions fanout`, `sessions run`.
pub(super) fn wait(a: &Args) -> Result<u8, Error> {
    let deadline = Deadline::within(a.wait.timeout);
    // The prompts are read (and an empty one refused) before any chat is touched.
    let text = match &a.command {
        Command::SessionsFanout(text) => super::read_prompt(a, text.as_deref())?,
        _ => String::new(),
    };
    let tasks = match &a.command {
        Command::SessionsRun => run_tasks(a)?,
        _ => Vec::new(),
    };
    let registry = registry(a)?;
    let autopilot = super::approve::autopilot(a, &registry, super::approve::decision_to_stderr)?;
    let strategy = if a.any { Strategy::Any } else { Strategy::All };
    let (sessions, prompts) = match &a.command {
        Command::SessionsWait => (registry.select(&a.sessions)?, HashMap::new()),
        Command::SessionsFanout(_) => {
            let chosen = if a.sessions.is_empty() {
                registry.idle_sessions(deadline)?
            } else {
                registry.select(&a.sessions)?
            };
            let tasks: Vec<(String, String)> = chosen
                .iter()
                .map(|s| (s.target_id.clone(), text.clone()))
                .collect();
            registry.tasks(&tasks)?
        }
        Command::SessionsRun => registry.tasks(&tasks)?,
        _ => unreachable!("not a waiting command"),
    };
    if sessions.is_empty() {
        return Err(Error::SessionNotFound {
            query: None,
            known: vec![],
        });
    }
    if strategy == Strategy::Any && !prompts.is_empty() {
        return Err(usage("--any goes with sessions wait"));
    }
    let interrupt = crate::signals::signals();
    // What is left of --timeout after finding the sessions.
    let spec = WaitSpec {
        strategy,
        timeout: deadline.left(),
        settle: a.wait.settle,
        extract: a.extract,
        start_within: a.start_within,
        stall_after: a.stall_after,
    };
    let journal = super::memory::journal(a);
    let report = with_live(a.json, |live| {
        let with = waiter::Attended {
            cancel: Some(&interrupt),
            autopilot: autopilot.as_ref(),
            journal: journal.as_ref(),
            // ^C stops a prompt being typed by itself (see `turn::SendOptions`).
            abandoned: None,
        };
        waiter::attended(&sessions, &prompts, registry.profile(), spec, live, with)
    });
    if let Some(p) = &autopilot {
        p.finish();
    }
    print_report(&report, a.json);
    if crate::signals::happened() {
        return Err(Error::Interrupted(format!(
            "interrupted; still waiting for {}",
            pending(&report)
        )));
    }
    report_end(&report, a.wait.timeout)
}

/// After the report: a wait that timed out is the error that says whom it still
/// waited for (on stderr, as JSON with `--json`); else the exit code.
pub(super) fn report_end(report: &Report, timeout: Duration) -> Result<u8, Error> {
    if report.timed_out {
        return Err(Error::Timeout {
            after: timeout,
            pending: pending(report),
        });
    }
    Ok(report_code(report))
}

/// The sessions a report still waited for.
fn pending(report: &Report) -> String {
    listed(
        report
            .with_status(Status::Pending)
            .map(|o| o.session.id.as_str()),
    )
}

/// Ids as an error names what was still awaited: `A, B`, or `none`.
pub(super) fn listed<'a>(ids: impl IntoIterator<Item = &'a str>) -> String {
    let ids: Vec<&str> = ids.into_iter().collect();
    if ids.is_empty() {
        "none".into()
    } else {
        ids.join(", ")
    }
}

/// `--task ID=TEXT` or a JSON list of `{session, prompt}` (`-f FILE`, `-` for stdin).
pub(super) fn run_tasks(a: &Args) -> Result<Vec<(String, String)>, Error> {
    let mut tasks = Vec::new();
    for t in &a.tasks {
        let (id, text) = t
            .split_once('=')
            .ok_or_else(|| usage(format!("--task takes ID=TEXT, not '{t}'")))?;
        tasks.push((id.to_string(), text.to_string()));
    }
    if let Some(file) = &a.file {
        #[derive(Deserialize)]
        struct Task {
            session: String,
            prompt: String,
        }
        let text = read_input(None, Some(file))?;
        let list: Vec<Task> = serde_json::from_str(&text).map_err(|e| {
            usage(format!(
                "{}: not a JSON list of {{\"session\", \"prompt\"}}: {e}",
                file.display()
            ))
        })?;
        tasks.extend(list.into_iter().map(|t| (t.session, t.prompt)));
    }
    if tasks.is_empty() {
        return Err(usage("sessions run needs --task ID=TEXT or -f FILE"));
    }
    if let Some((id, _)) = tasks.iter().find(|(_, text)| text.trim().is_empty()) {
        return Err(usage(format!(
            "the prompt for {id} is empty: give the text to send"
        )));
    }
    Ok(tasks)
}

pub(super) fn print_report(report: &Report, json: bool) {
    if json {
        return output::json(report);
    }
    for o in &report.sessions {
        output::write_stdout(&(outcome_line(o, Stream::Stdout) + "\n"));
    }
    let mut text = String::new();
    // A chat that stopped before writing anything (an approval, an error) has no
    // answer to show.
    let answers = report.sessions.iter().filter_map(|o| {
        let answer = o.answer.as_ref()?.content.as_str();
        (!answer.trim().is_empty()).then_some((o, answer))
    });
    for (o, answer) in answers {
        text += &format!(
            "\n### {} ({})\n\n{answer}\n",
            o.session.id,
            o.session.workspace.as_deref().unwrap_or("-")
        );
    }
    output::print(&text);
}

/// A session's result as a line for `stream`: page text shown as that stream may take
/// it, the status and state coloured.
fn outcome_line(o: &Outcome, stream: Stream) -> String {
    let status = match o.status {
        Status::Done => "done",
        Status::Pending => "pending",
        Status::Closed => "closed",
        Status::Failed => "failed",
        Status::Stalled => "stalled",
    };
    let state = o.state.map_or("-", State::name);
    let head = format!(
        "{}  {:10}  ",
        o.session.id,
        o.session.workspace.as_deref().unwrap_or("-")
    );
    let mut tail = format!("  {:>7.1}s", o.duration_ms as f64 / 1e3);
    if let Some(r) = o.reason.as_ref().or(o.error.as_ref()) {
        tail += &format!("  {r}");
        // What a press (sessions approve, a policy) answered.
        if let Some(a) = &o.approval {
            tail += &super::approve::answered(a);
        }
    }
    if !o.approvals.is_empty() {
        tail += &format!("  (approvals: {})", crate::approve::listed(&o.approvals));
    }
    if let Some(q) = &o.question {
        tail += &format!("  ({})", crate::show::asked(q));
    }
    format!(
        "{}{}  {}{}",
        shown(&head, stream),
        color::paint(status, &format!("{status:7}")),
        color::paint(state, &format!("{state:17}")),
        shown(&tail, stream)
    )
}

/// 124 on timeout; 0 when every awaited session ended idle; 1 otherwise.
pub(super) fn report_code(report: &Report) -> u8 {
    if report.timed_out {
        return exit::TIMEOUT;
    }
    let all_idle = report.sessions.iter().all(|o| match o.status {
        Status::Done => o.state == Some(State::Idle),
        // Under --any, sessions still running when the first stopped are fine.
        Status::Pending => true,
        Status::Closed | Status::Failed | Status::Stalled => false,
    });
    if all_idle { exit::OK } else { exit::FAILURE }
}

/// Runs `f` with one live status line per session on stderr when stderr is a
/// terminal (and not `--json`); otherwise without.
pub(super) fn with_live<T>(json: bool, f: impl FnOnce(Option<Progress>) -> T) -> T {
    // Live lines move the cursor: not on a terminal that takes no escape codes.
    if json || !std::io::stderr().is_terminal() || color::dumb_terminal() {
        return f(None);
    }
    let mut block = Block::default();
    let mut draw = |outcomes: &[Outcome], elapsed: Duration| {
        let lines: Vec<String> = outcomes
            .iter()
            .map(|o| {
                let mut o = o.clone();
                if o.status == Status::Pending {
                    o.duration_ms = elapsed.as_millis() as u64;
                }
                outcome_line(&o, Stream::Stderr) + "\n"
            })
            .collect();
        let _ = write!(std::io::stderr().lock(), "{}", block.redraw(&lines));
    };
    let result = f(Some(&mut draw));
    // The results are printed next, in the live lines' place: not twice.
    let _ = write!(std::io::stderr().lock(), "{}", block.clear());
    result
}
