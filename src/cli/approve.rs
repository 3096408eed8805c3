//! `approve`, `deny`, `cancel` on one chat, `sessions approve` and `sessions deny`
//! over several, and the `--policy` of the waits and the watch.

use std::sync::Arc;
use std::time::Instant;

use super::output;
use super::single::{Waiting, print_waited};
use super::wait::print_report;
use super::{Args, Command, registry};
use crate::approve::{self, Answered, Pressed};
use crate::panel::{Approval, Deadline, Panel, State};
use crate::policy::{Autopilot, Decision, Policy};
use crate::registry::Registry;
use crate::sessions::Session;
use crate::waiter::{Outcome, Report, Status};
use crate::{Error, exit};

/// `approve`, `deny`, `cancel` on the chat `single` attached to; with `--wait`, then
/// the turn is awaited and its answer printed as `prompt --wait` does.
pub(super) fn one(
    panel: &mut Panel,
    chat: &Waiting,
    approval: Option<&str>,
    a: &Args,
) -> Result<u8, Error> {
    let session = chat.session;
    let (done, end) = match &a.command {
        Command::Cancel => {
            let end = approve::cancel(panel)?;
            (Pressed::cancelled(session, &end), end)
        }
        other => {
            let done = press(panel, other, approval)?;
            let end = done.snapshot.clone();
            (Pressed::of(session, done), end)
        }
    };
    if a.wait_answer {
        // From this line on, ^C ends the wait, not angrav there and then.
        crate::signals::signals();
        output::message(&said(&done));
        return print_waited(&chat.turn(panel, end, None, a)?, a);
    }
    print_pressed(&done, a.json);
    Ok(exit::OK)
}

/// `s1: pressed 'Run' on command 3fa2c1d0: cargo test; now thinking`.
fn said(done: &Pressed) -> String {
    let now = crate::show::state(
        done.state.name(),
        done.error.as_deref(),
        done.quota_resume.as_deref(),
        &done.approvals,
        None,
    );
    let on = done.approval.as_ref().map(answered).unwrap_or_default();
    format!(
        "{}: pressed '{}'{on}; now {now}",
        done.session.id, done.pressed
    )
}

/// ` on command 3fa2c1d0: cargo test`: the approval a press answered, its command's
/// first line cut to fit a line (page text: printed through `output`, it is made
/// harmless for a terminal).
pub(super) fn answered(a: &Approval) -> String {
    let command = a
        .command
        .as_deref()
        .map(|c| format!(": {}", crate::show::first_line(c, 60)))
        .unwrap_or_default();
    format!(" on {} {}{command}", a.kind.name(), a.id)
}

/// What `approve`, `deny` and `cancel` print.
pub(super) fn print_pressed(done: &Pressed, json: bool) {
    if json {
        output::json(done);
    } else {
        output::line(&said(done));
    }
}

fn press(panel: &mut Panel, command: &Command, id: Option<&str>) -> Result<Answered, Error> {
    let by = approve::by_client("angrav approve");
    match command {
        Command::Approve(choice) | Command::SessionsApprove(choice) => {
            approve::approve(panel, id, choice.as_deref(), &by)
        }
        Command::Deny | Command::SessionsDeny => approve::deny(panel, id, &by),
        _ => unreachable!("not an approval command"),
    }
}

/// `sessions approve` and `sessions deny`: the chats named (`--session`), else those
/// of `--group` or all, awaiting approval; each answered on a thread of its own, one
/// result row per chat. Exit 0 when every one was answered.
pub(super) fn many(a: &Args) -> Result<u8, Error> {
    let deadline = Deadline::within(a.wait.timeout);
    let registry = registry(a)?;
    let sessions = chosen(&registry, a, deadline)?;
    let start = Instant::now();
    let rows: Vec<Outcome> = crate::parallel::each(&sessions, |(s, approval)| {
        answer_one(s, approval, &registry, deadline, &a.command, start)
    });
    let report = Report {
        timed_out: false,
        sessions: rows,
    };
    Ok(print_answers(&report, a.json))
}

/// What `sessions approve` and `sessions deny` print, attached or through `--server`,
/// and their exit code: 0 when every chat was answered.
pub(super) fn print_answers(report: &Report, json: bool) -> u8 {
    print_report(report, json);
    if report.sessions.is_empty() {
        // Still a report (with no rows) on stdout: a script reads the same shape,
        // and with --json nothing else (stderr carries only errors then).
        if !json {
            output::message("no chat awaits approval; nothing pressed");
        }
        return exit::FAILURE;
    }
    let all = report.sessions.iter().all(|o| o.status == Status::Done);
    if all { exit::OK } else { exit::FAILURE }
}

/// A chat to answer, and the approval to press: the one the listing read, or why
/// none can be; `Ok(None)`: named with `--session`, whatever shows (as `approve`).
type Target = (Session, Result<Option<String>, String>);

fn chosen(registry: &Registry, a: &Args, deadline: Deadline) -> Result<Vec<Target>, Error> {
    if !a.sessions.is_empty() {
        let named = registry.select(&a.sessions)?;
        return Ok(named.into_iter().map(|s| (s, Ok(None))).collect());
    }
    let waiting: Vec<Target> = registry
        .states_by(deadline)
        .into_iter()
        .filter(|l| l.state == Some(State::AwaitingApproval))
        .map(|l| (l.session, listed_card(&l.approvals).map(Some)))
        .collect();
    Ok(waiting)
}

/// The id of the one approval a chat listed awaiting approval showed: a bulk press
/// answers that card and no other (several at once are each for `approve --approval`).
pub(super) fn listed_card(approvals: &[Approval]) -> Result<String, String> {
    match approvals {
        [one] => Ok(one.id.clone()),
        [] => Err("listed awaiting approval, but no card was read; nothing pressed".into()),
        several => Err(format!(
            "{} approvals wait at once; nothing pressed: answer each with approve --approval ID ({})",
            several.len(),
            approve::listed(several)
        )),
    }
}

fn answer_one(
    session: &Session,
    approval: &Result<Option<String>, String>,
    registry: &Registry,
    deadline: Deadline,
    command: &Command,
    start: Instant,
) -> Outcome {
    let result = match approval {
        Ok(id) => Panel::attach_in(
            &session.window,
            registry.profile(),
            Default::default(),
            Some(deadline),
        )
        .and_then(|(mut panel, _)| press(&mut panel, command, id.as_deref())),
        Err(why) => Err(Error::Failed(why.clone())),
    };
    let mut row = Outcome::pending(session);
    row.status = Status::Failed;
    row.duration_ms = start.elapsed().as_millis() as u64;
    match result {
        Ok(done) => {
            row.status = Status::Done;
            row.state = Some(done.snapshot.state);
            row.reason = Some(format!("pressed '{}'", done.pressed));
            row.approval = Some(done.approval);
        }
        Err(e) => row.reason = Some(e.to_string()),
    }
    row
}

/// The `--policy` of a wait or a watch, its decisions reported by `report`.
pub(super) fn autopilot(
    a: &Args,
    registry: &Registry,
    report: fn(&Decision, Option<u64>, bool),
) -> Result<Option<Autopilot>, Error> {
    let Some(path) = &a.policy else {
        return Ok(None);
    };
    let policy = Policy::load(path)?;
    let json = a.json;
    // Every decision is also kept in the journal: an unattended run's audit trail.
    let journal = super::memory::journal(a);
    // ... and its line carries the seq the journal gave it, as every watch line does.
    let report = Arc::new(move |d: &Decision| {
        let seq = journal.as_ref().and_then(|j| j.record_line(d));
        report(d, seq, json)
    });
    Ok(Some(Autopilot::new(policy, registry.profile(), report)))
}

/// A decision's JSON line: with the seq of its journal entry (none without a journal).
#[derive(serde::Serialize)]
struct DecisionLine<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    seq: Option<u64>,
    #[serde(flatten)]
    decision: &'a Decision,
}

/// A decision as a line of stdout (`sessions watch`: an event among the others).
pub(super) fn decision_to_stdout(d: &Decision, seq: Option<u64>, json: bool) {
    if json {
        output::json(&DecisionLine { seq, decision: d });
    } else {
        output::line(&d.line());
    }
}

/// A decision as a line of stderr (the waits: stdout holds their report).
pub(super) fn decision_to_stderr(d: &Decision, seq: Option<u64>, json: bool) {
    if json {
        output::json_message(&DecisionLine { seq, decision: d });
    } else {
        output::message(&d.line());
    }
}
