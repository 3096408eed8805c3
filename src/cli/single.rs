//! The commands that act on one session.

use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cdp::CloseGroup;

use serde_json::json;

use super::output::{self, print_answer, print_status};
use super::{Args, Command, registry, usage};
use crate::journal::{PromptRecord, TurnOutcome};
use crate::panel::{CodeBlock, Deadline, Message, PROBE_WITHIN, Panel, Role, Snapshot, State};
use crate::results::{NewConversation, Prompted, WaitResult};
use crate::sessions::Session;
use crate::show;
use crate::{Error, exit, turn};

pub(super) fn run(a: &Args) -> Result<u8, Error> {
    // Every call to the page ends by --timeout, whether the page answers or not.
    let deadline = Deadline::within(a.wait.timeout);
    // Read the prompt before touching the browser: a bad -f fails fast.
    let prompt_text = match &a.command {
        Command::Prompt(t) => Some(super::read_prompt(a, t.as_deref())?),
        _ => None,
    };
    let query = one_session(a)?;
    let registry = registry(a)?;
    let session = registry.get(query)?;
    // `status` shows a page that does not answer within the probe time as such.
    let attach_by = match a.command {
        Command::Status => deadline.earliest(Deadline::within(PROBE_WITHIN)),
        _ => deadline,
    };
    let group: Arc<CloseGroup> = Arc::default();
    let attached = Panel::attach_in(
        &session.window,
        registry.profile(),
        Arc::clone(&group),
        Some(attach_by),
    );
    let (mut panel, snap) = match attached {
        Err(e) if a.command == Command::Status && e.is_unanswered() && !deadline.passed() => {
            print_unresponsive(session, a.json);
            return Ok(exit::OK);
        }
        other => other?,
    };
    if a.command != Command::Status && snap.state == State::NoPanel {
        return Err(Error::NoPanel);
    }
    let chat = Waiting {
        session,
        group: &group,
        deadline,
    };
    match &a.command {
        Command::Status => {
            let quota = super::ls::quota_of(a, snap.model.as_deref(), deadline);
            print_status(session, &snap, quota.as_ref(), a.json);
            Ok(exit::OK)
        }
        Command::Prompt(_) => {
            let text = prompt_text.unwrap_or_default();
            if a.when_idle && snap.state.in_turn() {
                match turn::wait_idle(&mut panel, snap, a.wait.settle, Some(deadline.at()))? {
                    turn::Waited::Stopped(_) => {}
                    turn::Waited::TimedOut(s) | turn::Waited::Stalled(s) => {
                        return Err(
                            deadline.missed(format!("the agent to be idle ({})", s.state.name()))
                        );
                    }
                }
            }
            let opts = turn::SendOptions {
                claim_within: deadline.left(),
                start_within: a.start_within.min(deadline.left()),
                replace_draft: a.replace_draft,
                abandoned: None,
            };
            let start_within = opts.start_within;
            let journal = super::memory::journal(a);
            let record = PromptRecord::new(session, &text);
            // ^C or SIGTERM during the send is the send's to handle: before the Enter
            // it takes the prompt out of the editor again (then angrav ends, 130);
            // after it, the send goes on to its verdict. A signal then ends the wait.
            crate::signals::signals();
            let mut submitted = false;
            let sent = turn::send_prompt_noting(&mut panel, &text, opts, |step| {
                match step {
                    turn::Step::Submitting => submitted = true,
                    turn::Step::Delivered => record.delivered(journal.as_ref()),
                }
                Ok(())
            });
            let sent = match sent {
                Err(e) if !submitted && crate::signals::happened() => {
                    return Err(Error::Interrupted(e.to_string()));
                }
                sent => sent?,
            };
            if !a.wait_answer {
                let sent = Prompted::new(session, sent.started);
                print_prompted(&sent, start_within, a.json);
                return Ok(exit::OK);
            }
            let waited = chat.turn(&mut panel, sent.snapshot, Some(sent.baseline), a);
            // What the journal keeps of the turn, as seen to end.
            match &waited {
                Ok(r) => record.ended(journal.as_ref(), r.turn_outcome(), r.answer_text()),
                Err(e) if e.is_closed() => record.ended(journal.as_ref(), TurnOutcome::Closed, ""),
                Err(_) => {}
            }
            print_waited(&waited?, a)
        }
        Command::Wait => print_waited(&chat.turn(&mut panel, snap, None, a)?, a),
        Command::OutputLast => {
            print_answer(&last_answer(&mut panel, &snap)?, a.json);
            Ok(exit::OK)
        }
        Command::OutputCode => {
            let last = last_answer(&mut panel, &snap)?;
            let wanted = |lang: &str| {
                a.lang
                    .as_deref()
                    .is_none_or(|l| lang.eq_ignore_ascii_case(l))
            };
            let blocks: Vec<_> = last
                .code_blocks
                .into_iter()
                .filter(|b| wanted(&b.lang))
                .collect();
            print_code(&blocks, a.json);
            Ok(exit::OK)
        }
        Command::History => {
            print_history(&panel.history()?, a.json);
            Ok(exit::OK)
        }
        Command::New => {
            let renewed = NewConversation {
                session: session.clone(),
                new_conversation: crate::approve::new_conversation(&mut panel, &snap)?,
            };
            print_new(&renewed, a.json);
            Ok(exit::OK)
        }
        Command::Approve(_) | Command::Deny | Command::Cancel => {
            super::approve::one(&mut panel, &chat, a.approval.as_deref(), a)
        }
        _ => unreachable!("not a single-session command"),
    }
}

/// `status` of a page that does not answer: what is known, nothing guessed.
fn print_unresponsive(session: &Session, json: bool) {
    let why = "the page does not answer (busy or frozen)";
    if json {
        output::json(&json!({ "session": session, "state": State::Unresponsive, "error": why }));
    } else {
        output::line(&format!(
            "{}  {}  unresponsive: {why}",
            session.id,
            session.workspace.as_deref().unwrap_or("-")
        ));
        output::line(&format!("  title:    {}", session.title));
    }
}

/// The chat a command waits on (`wait`, `prompt --wait`, `approve --wait`).
pub(super) struct Waiting<'a> {
    pub session: &'a Session,
    /// The panel's connections: closed on ^C, so that the wait's call to the page
    /// returns at once.
    pub group: &'a Arc<CloseGroup>,
    /// The end of `--timeout`.
    pub deadline: Deadline,
}

impl Waiting<'_> {
    /// Waits until the agent has stopped, by the deadline, and reads how the turn
    /// ended (after a prompt, `turn`: its baseline). With `--stall-after`, a page that
    /// shows no change at all for that long ends the wait as stalled. A deadline
    /// reached inside a call to the page is a timeout like any other, with the state
    /// seen last before the wait. ^C or SIGTERM (whose handler the caller installed
    /// before anything a signal must not cut short) ends the wait at once: the chat is
    /// printed (with `--json`) as still pending, then the `interrupted` error.
    pub(super) fn turn(
        &self,
        panel: &mut Panel,
        first: Snapshot,
        turn: Option<turn::Baseline>,
        a: &Args,
    ) -> Result<WaitResult, Error> {
        let started = Instant::now();
        let interrupts = crate::signals::signals();
        let group = Arc::clone(self.group);
        std::thread::spawn(move || {
            if interrupts.recv().is_ok() {
                group.close();
            }
        });
        let until = turn::Until {
            turn,
            settle: a.wait.settle,
            accept: |_| true,
            deadline: Some(self.deadline.at()),
            stall_after: a.stall_after,
        };
        let stalled = || {
            format!(
                "stalled: the page showed no change at all for {}",
                show::duration(a.stall_after.unwrap_or_default())
            )
        };
        // A signal that came before (during a send or a press) ends the wait at once.
        let read = (!crate::signals::happened()).then(|| {
            let waited = match turn::wait_until(panel, first.clone(), until) {
                Err(Error::Timeout { .. }) => Ok(turn::Waited::TimedOut(first.clone())),
                other => other,
            };
            waited.and_then(|w| WaitResult::of(panel, self.session, w, turn, started, stalled))
        });
        if let Some(read) = read.filter(|r| r.is_ok() || !crate::signals::happened()) {
            return read;
        }
        // Interrupted: the chat as seen last before the wait, still pending.
        if a.json {
            output::json(&WaitResult::pending(self.session, &first, started));
        }
        Err(Error::Interrupted(format!(
            "interrupted; still waiting for {} (the agent: {})",
            self.session.id,
            first.state.name()
        )))
    }
}

/// TEXT, `-` (stdin), or `-f FILE` (`-f -`: stdin).
/// The text of a prompt: TEXT as given; from stdin (`-`) or a file (`-f FILE`) with
/// one trailing newline dropped, the one `echo` and editors end a text with.
pub(super) fn read_input(arg: Option<&str>, file: Option<&Path>) -> Result<String, Error> {
    let read_stdin = || {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| Error::Failed(format!("reading stdin: {e}")))?;
        Ok::<_, Error>(s)
    };
    let read = match (arg, file) {
        (Some(_), Some(_)) => Err(usage(
            "give the text as an argument or with -f FILE, not both",
        )),
        (Some("-"), None) => read_stdin(),
        (Some(t), None) => return Ok(t.to_string()),
        (None, Some(p)) if p.as_os_str() == "-" => read_stdin(),
        (None, Some(p)) => std::fs::read_to_string(p)
            .map_err(|e| Error::Failed(format!("cannot read {}: {e}", p.display()))),
        (None, None) => Err(usage(
            "the text is missing: give TEXT, -f FILE, or - for stdin",
        )),
    };
    let mut text = read?;
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    Ok(text)
}

/// The last turn's answer, once the turn has ended: never an earlier turn's answer
/// while the last one runs, nor a part of an answer still being written.
pub(super) fn last_answer(panel: &mut Panel, snap: &Snapshot) -> Result<Message, Error> {
    let not_yet = |why: &str| {
        Error::Failed(format!(
            "the last turn has no answer yet: {why}; 'angrav wait' for it, or see 'angrav history'"
        ))
    };
    if snap.state.in_turn() {
        return Err(not_yet(&format!("the agent is {}", snap.state.name())));
    }
    let history = panel.history()?;
    match history.last() {
        None => Err(Error::Failed(
            "there is no answer in this conversation yet".into(),
        )),
        Some(m) if m.role == Role::User => Err(not_yet("its prompt is not answered")),
        Some(m) => Ok(m.clone()),
    }
}

/// `wait` and `prompt --wait` (`a.command` says which); the exit code says how the
/// wait ended: 0 idle, 1 awaiting approval, in error or stalled, 124 timed out.
pub(super) fn print_waited(result: &WaitResult, a: &Args) -> Result<u8, Error> {
    let o = &result.outcome;
    if a.json {
        output::json(result);
    }
    let state = o.state.map_or("unknown", State::name);
    let described = crate::show::state(
        state,
        o.error.as_deref(),
        o.quota_resume.as_deref(),
        &o.approvals,
        o.question.as_deref(),
    );
    // A wait that did not end with the agent stopped: the error (with --json, after
    // the object above said so).
    let unfinished = if result.timed_out {
        Some(Error::Timeout {
            after: a.wait.timeout,
            pending: format!("the agent ({state})"),
        })
    } else {
        (o.reason.as_ref()).map(|r| Error::Failed(format!("{r} (the agent: {described})")))
    };
    if let Some(e) = unfinished {
        return Err(e);
    }
    let idle = o.state == Some(State::Idle);
    let code = if idle { exit::OK } else { exit::FAILURE };
    if a.command == Command::Wait {
        if !a.json {
            output::line(&format!("{} {described}", o.session.id));
        }
        return Ok(code);
    }
    if !idle {
        output::message(&format!("{} stopped: {described}", o.session.id));
        return Ok(code);
    }
    let Some(answer) = &o.answer else {
        return Err(Error::Failed(format!(
            "{}: the agent stopped without an answer to this prompt",
            o.session.id
        )));
    };
    if !a.json {
        print_answer(answer, false);
    }
    Ok(code)
}

/// The `--session` of a command on one chat, given at most once.
pub(super) fn one_session(a: &Args) -> Result<Option<&str>, Error> {
    if a.sessions.len() > 1 {
        return Err(usage(
            "this command acts on one session: give --session once",
        ));
    }
    Ok(a.sessions.first().map(String::as_str))
}

/// `prompt` without `--wait`: a stalled start is said on stderr.
/// `ID (workspace): delivered`, or with `--json` the result object; a stalled start
/// is said on stderr.
pub(super) fn print_prompted(p: &Prompted, start_within: Duration, json: bool) {
    if json {
        output::json(p);
    } else {
        let id = &p.session.id;
        output::line(&match &p.session.workspace {
            Some(ws) => format!("{id} ({ws}): delivered"),
            None => format!("{id}: delivered"),
        });
    }
    if !p.started {
        output::message(&format!(
            "{}: stalled: prompt delivered; the agent has not started on it within {}",
            p.session.id,
            show::duration(start_within)
        ));
    }
}

/// `output code`.
pub(super) fn print_code(blocks: &[CodeBlock], json: bool) {
    if json {
        output::json(&blocks);
    } else {
        let texts: Vec<&str> = blocks.iter().map(|b| b.code.as_str()).collect();
        output::line(&texts.join("\n\n"));
    }
}

/// `history`: each message under a heading naming who said it.
pub(super) fn print_history(messages: &[Message], json: bool) {
    if json {
        return output::json(&messages);
    }
    let mut text = String::new();
    for m in messages {
        let who = if m.role == Role::User {
            "user"
        } else {
            "agent"
        };
        text += &format!("## {who}\n\n{}\n\n", m.content);
    }
    output::print(&text);
}

/// `new`.
pub(super) fn print_new(n: &NewConversation, json: bool) {
    if json {
        output::json(n);
    } else if n.new_conversation {
        output::line(&format!("{}: new conversation", n.session.id));
    } else {
        output::line(&format!(
            "{}: the conversation is already empty",
            n.session.id
        ));
    }
}
