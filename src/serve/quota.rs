//! Where serve reads each model's quota: the language server named (`--ls`), else
//! the first window's that answers, looked for when the quota is first asked for.
//! A found one that stops answering is dropped and another looked for in the same
//! call, with a deadline of its own. A search that found none that answers stands for
//! [`LOOK_AGAIN_AFTER`]: calls meanwhile answer with its reason, so that a dashboard
//! reading every minute does not search every window each time. One that found only
//! the one just dropped does not stand: one slow reply is no evidence it is gone.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::lock;
use crate::Error;
use crate::ls::Ls;
use crate::ls::model::Quota;
use crate::panel::Deadline;
use crate::sessions::Session;

/// How long a search may take: finding a language server, then asking it.
const WITHIN: Duration = Duration::from_secs(10);
/// How long one language server may take to give the quota: one that hangs leaves
/// the rest of the time to the others.
const ASK_WITHIN: Duration = Duration::from_secs(3);
/// How long a search that found no language server that answers stands.
const LOOK_AGAIN_AFTER: Duration = Duration::from_secs(60);

pub struct QuotaSource {
    /// `--ls`: asked every time, never replaced (its failure is the call's error).
    given: Option<Ls>,
    /// Otherwise what the last search left. Held through a search: calls at the same
    /// time wait for it and use what it found.
    searched: Mutex<Search>,
}

enum Search {
    NotYet,
    Found(Ls),
    /// None answered, at `at`, for this reason.
    NoneAnswers {
        at: Instant,
        why: String,
    },
}

impl QuotaSource {
    pub fn new(given: Option<Ls>) -> QuotaSource {
        QuotaSource {
            given,
            searched: Mutex::new(Search::NotYet),
        }
    }

    /// `{ls: {url, found_by}, models}`, or `{ls: null, models: [], reason}` when no
    /// language server answers; `sessions`: the windows to look in.
    pub fn read(&self, sessions: impl FnOnce() -> Vec<Session>) -> Result<Value, Error> {
        if let Some(ls) = &self.given {
            return Ok(answer(ls, ls.quota(Deadline::within(WITHIN))?));
        }
        let mut search = lock(&self.searched);
        let mut dropped = None;
        match &*search {
            Search::Found(ls) => match ls.quota(Deadline::within(ASK_WITHIN)) {
                Ok(models) => return Ok(answer(ls, models)),
                Err(e) => {
                    let why = format!(
                        "the language server at {} ({}) no longer answers ({e})",
                        ls.url, ls.found
                    );
                    dropped = Some((ls.url.clone(), why));
                }
            },
            Search::NoneAnswers { at, why } if at.elapsed() < LOOK_AGAIN_AFTER => {
                let ago = crate::show::duration(at.elapsed());
                let again = crate::show::duration(LOOK_AGAIN_AFTER - at.elapsed());
                return Ok(none(&format!(
                    "{why} (looked for {ago} ago; looked for again in {again})"
                )));
            }
            Search::NotYet | Search::NoneAnswers { .. } => {}
        }
        // The one dropped was just asked: not again in this search.
        let skip = dropped.as_ref().map(|(url, _)| url.as_str());
        let deadline = Deadline::within(WITHIN);
        match first_answering(&sessions(), skip, deadline) {
            Ok((ls, models)) => {
                let found = answer(&ls, models);
                *search = Search::Found(ls);
                Ok(found)
            }
            Err(Missing { why, only_skipped }) => {
                let why = dropped.map_or(why.clone(), |(_, d)| format!("{d}; {why}"));
                // A search its deadline cut short, or that found only the one dropped,
                // is no evidence that none answers: the next call looks again.
                *search = if deadline.passed() || only_skipped {
                    Search::NotYet
                } else {
                    Search::NoneAnswers {
                        at: Instant::now(),
                        why: why.clone(),
                    }
                };
                Ok(none(&why))
            }
        }
    }
}

/// Why no language server gave the quota: each window's reason, and whether the one
/// skipped was the only one found.
struct Missing {
    why: String,
    only_skipped: bool,
}

/// The language server of the first window whose one answers (each given at most
/// [`ASK_WITHIN`], all by `deadline`; `skip` not asked), with its quota; else why
/// none.
fn first_answering(
    sessions: &[Session],
    skip: Option<&str>,
    deadline: Deadline,
) -> Result<(Ls, Vec<Quota>), Missing> {
    let mut why = Vec::new();
    let mut asked: Vec<String> = skip.map(String::from).into_iter().collect();
    for (session, found) in crate::ls::find::for_windows(sessions, deadline) {
        match found {
            Ok(w) if asked.contains(&w.ls.url) => {}
            Ok(w) => match w.ls.quota(deadline.earliest(Deadline::within(ASK_WITHIN))) {
                Ok(models) => return Ok((w.ls, models)),
                Err(e) => {
                    why.push(format!(
                        "{}: {} does not answer ({e})",
                        session.id, w.ls.url
                    ));
                    asked.push(w.ls.url);
                }
            },
            Err(e) => why.push(format!("{}: {e}", session.id)),
        }
    }
    let found = match (why.is_empty(), skip) {
        (false, _) => format!("no language server answers ({})", why.join("; ")),
        (true, Some(_)) => "no other language server found".to_string(),
        (true, None) => "no language server found (no window to look in)".to_string(),
    };
    Err(Missing {
        why: format!("{found}; give serve one with --ls URL --ls-token TOKEN"),
        only_skipped: why.is_empty() && skip.is_some(),
    })
}

fn answer(ls: &Ls, models: Vec<Quota>) -> Value {
    json!({
        "ls": {"url": ls.url, "found_by": ls.found.name()},
        "models": models,
    })
}

fn none(why: &str) -> Value {
    json!({"ls": null, "models": [], "reason": why})
}
