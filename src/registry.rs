//! The library's front door: every session of one or more endpoints, and the spec's
//! multi-session operations on them (`waitForAny`, `waitForAll`, which is also
//! `waitForSession` given one session, `executeParallel`, `fanOut`).
//!
//! ```no_run
//! use angrav::registry::Registry;
//! use angrav::turn::WaitOptions;
//!
//! let registry = Registry::discover(&["http://127.0.0.1:9222"], None)?;
//! for s in registry.sessions() {
//!     println!("{} {:?}", s.id, s.workspace);
//! }
//! // The same prompt to every idle chat; each one's own turn is awaited.
//! let report = registry.fan_out("Review the open file for bugs", WaitOptions::default())?;
//! for o in &report.sessions {
//!     let answer = o.answer.as_ref().map_or("", |m| m.content.as_str());
//!     println!("{} {:?} {}", o.session.id, o.status, answer);
//! }
//! # Ok::<(), angrav::Error>(())
//! ```

use std::collections::HashMap;

use cdp::Endpoint;
use crossbeam_channel::Receiver;
use serde::{Deserialize, Serialize};

use crate::Error;
use crate::monitor::{Monitors, Update};
use crate::names::Names;
use crate::panel::{Approval, Deadline, Layout, PROBE_WITHIN, Panel, PanelPlace, State};
use crate::places::Places;
use crate::profile::Profile;
use crate::sessions::{self, Manager, Session};
use crate::state::StateDir;
use crate::turn::WaitOptions;
use crate::waiter::{self, Progress, Report, Strategy, WaitSpec};

pub struct Registry {
    endpoints: Vec<Endpoint>,
    profile: Profile,
    sessions: Vec<Session>,
    managers: Vec<Manager>,
    /// Aliases, resolved before id prefixes and workspace names (none: `--no-state`).
    names: Option<Names>,
    /// Where the panels were found before (none: `--no-state`).
    places: Option<StateDir>,
    /// Every window the endpoints listed (target ids), `keep_groups` or not.
    open: Vec<String>,
}

/// A session with its state now, as `sessions list` shows it.
/// Read back from a row of `sessions list --json` (serve's `sessions.list`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Listed {
    pub session: Session,
    pub state: Option<State>,
    pub layout: Option<Layout>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// The approvals it showed: what a bulk press answers, and nothing else.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvals: Vec<Approval>,
}

/// A row of `sessions list --json` and of serve's `sessions.list`: a chat, or (with
/// `--all`) an Agent Manager window, named by the same `session` object (its
/// `workspace` null), with no state.
#[derive(Serialize)]
pub struct ListRow<'a> {
    session: serde_json::Value,
    kind: &'static str,
    state: Option<State>,
    layout: Option<Layout>,
    #[serde(skip_serializing_if = "Option::is_none")]
    problem: Option<&'a str>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    approvals: &'a [Approval],
}

impl ListRow<'_> {
    /// The chats, then the other windows.
    pub fn all<'a>(list: &'a [Listed], managers: &'a [Manager]) -> Vec<ListRow<'a>> {
        list.iter()
            .map(|l| ListRow {
                session: serde_json::to_value(&l.session).expect("serialises"),
                kind: "session",
                state: l.state,
                layout: l.layout,
                problem: l.problem.as_deref(),
                approvals: &l.approvals,
            })
            .chain(managers.iter().map(|m| ListRow {
                session: serde_json::json!({
                    "id": m.id, "target_id": m.target_id, "workspace": null,
                    "title": m.title, "endpoint": m.endpoint,
                }),
                kind: "manager",
                state: None,
                layout: None,
                problem: None,
                approvals: &[],
            }))
            .collect()
    }
}

impl Registry {
    /// Every editor window of the endpoints (`http://HOST:PORT`, `:PORT`, `ws://...`),
    /// with the built-in selector profile unless one is given.
    pub fn discover(endpoints: &[&str], profile: Option<Profile>) -> Result<Registry, Error> {
        let endpoints = endpoints
            .iter()
            .map(|e| Endpoint::parse(e))
            .collect::<Result<Vec<_>, _>>()?;
        Registry::with(endpoints, profile.unwrap_or_default())
    }

    pub fn with(endpoints: Vec<Endpoint>, profile: Profile) -> Result<Registry, Error> {
        let (sessions, managers) = sessions::discover_all(&endpoints, &profile)?;
        Ok(Registry {
            endpoints,
            profile,
            open: sessions.iter().map(|s| s.target_id.clone()).collect(),
            sessions,
            managers,
            names: None,
            places: None,
        })
    }

    /// Lets [`Registry::states`] start where earlier runs found the panels, and
    /// remember where it finds them (see [`crate::places`]).
    pub fn with_places(mut self, dir: StateDir) -> Registry {
        self.places = Some(dir);
        self
    }

    /// Lets queries name aliases (and `keep_groups` name groups).
    pub fn with_names(mut self, names: Names) -> Registry {
        self.names = Some(names);
        self
    }

    /// Narrows the registry to the open windows of these groups (`--group`).
    pub fn keep_groups(&mut self, groups: &[String]) -> Result<(), Error> {
        if groups.is_empty() {
            return Ok(());
        }
        let names = self.names.as_ref().ok_or_else(|| {
            Error::Usage("--group needs the state directory; drop --no-state".into())
        })?;
        let mut kept: Vec<String> = Vec::new();
        for g in groups {
            kept.extend(
                names
                    .group(g, &self.sessions)?
                    .iter()
                    .map(|s| s.target_id.clone()),
            );
        }
        self.sessions.retain(|s| kept.contains(&s.target_id));
        Ok(())
    }

    pub fn sessions(&self) -> &[Session] {
        &self.sessions
    }

    /// The Agent Manager windows: listed, never taken for sessions.
    pub fn managers(&self) -> &[Manager] {
        &self.managers
    }

    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    pub fn endpoints(&self) -> &[Endpoint] {
        &self.endpoints
    }

    /// One session by alias, id prefix or workspace name (`None`: the only one).
    pub fn get(&self, query: Option<&str>) -> Result<&Session, Error> {
        if let (Some(q), Some(names)) = (query, &self.names)
            && let Some(found) = names.resolve(q, &self.sessions)
        {
            return found;
        }
        sessions::select(&self.sessions, query)
    }

    /// Several sessions by query; none given means all.
    pub fn select(&self, queries: &[String]) -> Result<Vec<Session>, Error> {
        if queries.is_empty() {
            return Ok(self.sessions.clone());
        }
        queries.iter().map(|q| self.get(Some(q)).cloned()).collect()
    }

    /// Every session with its state, probed in parallel (one thread per window). A
    /// page that does not answer within [`PROBE_WITHIN`] is `unresponsive`.
    pub fn states(&self) -> Vec<Listed> {
        self.states_by(Deadline::within(PROBE_WITHIN))
    }

    /// As [`Registry::states`], every probe ending by `deadline` too (a page that has
    /// not answered then is `unresponsive`).
    pub fn states_by(&self, deadline: Deadline) -> Vec<Listed> {
        let deadline = deadline.earliest(Deadline::within(PROBE_WITHIN));
        let places = self.places.clone().map(Places::load);
        let known = |s: &Session| places.as_ref().and_then(|p| p.get(&s.target_id));
        let read = crate::parallel::each(&self.sessions, |session| {
            self.state(session, deadline, known(session))
        });
        if let Some(places) = &places {
            let now = read.iter().map(|(l, place)| (&l.session, place.as_ref()));
            places.save(now, &self.endpoints, &self.open);
        }
        read.into_iter().map(|(listed, _)| listed).collect()
    }

    /// One session's state, its probe ending by `deadline`, starting at the place
    /// known for its panel; with where its panel is now (as known, when the probe
    /// failed: nothing was learnt).
    fn state(
        &self,
        session: &Session,
        deadline: Deadline,
        known: Option<&PanelPlace>,
    ) -> (Listed, Option<PanelPlace>) {
        let (state, layout, problem, approvals, place) =
            match Panel::read_state(&session.window, &self.profile, deadline, known) {
                Ok((snap, place)) => (Some(snap.state), snap.layout, None, snap.approvals, place),
                Err(e) if e.is_unanswered() => (
                    Some(State::Unresponsive),
                    None,
                    Some(e.to_string()),
                    Vec::new(),
                    known.cloned(),
                ),
                Err(e) => (None, None, Some(e.to_string()), Vec::new(), known.cloned()),
            };
        let listed = Listed {
            session: session.clone(),
            state,
            layout,
            problem,
            approvals,
        };
        (listed, place)
    }

    /// Waits for the first of `sessions` (all when empty) to stop.
    pub fn wait_for_any(&self, sessions: &[String], opts: WaitOptions) -> Result<Report, Error> {
        Ok(self.wait(
            &self.select(sessions)?,
            &HashMap::new(),
            spec(Strategy::Any, opts),
            None,
        ))
    }

    /// Waits until every one of `sessions` (all when empty) has stopped or closed.
    pub fn wait_for_all(&self, sessions: &[String], opts: WaitOptions) -> Result<Report, Error> {
        Ok(self.wait(
            &self.select(sessions)?,
            &HashMap::new(),
            spec(Strategy::All, opts),
            None,
        ))
    }

    /// A prompt per session, sent concurrently; each session's own turn is awaited and
    /// its answer collected. One session's failure does not stop the others.
    pub fn execute_parallel(
        &self,
        tasks: &[(String, String)],
        opts: WaitOptions,
    ) -> Result<Report, Error> {
        let (sessions, prompts) = self.tasks(tasks)?;
        Ok(self.wait(&sessions, &prompts, spec(Strategy::All, opts), None))
    }

    /// The same prompt to every idle session.
    pub fn fan_out(&self, prompt: &str, opts: WaitOptions) -> Result<Report, Error> {
        let deadline = Deadline::within(opts.timeout);
        let tasks: Vec<(String, String)> = self
            .idle_sessions(deadline)?
            .into_iter()
            .map(|s| (s.target_id, prompt.to_string()))
            .collect();
        let timeout = deadline.left();
        self.execute_parallel(&tasks, WaitOptions { timeout, ..opts })
    }

    /// The sessions idle now (a probe ending by `deadline`); an error when there is none.
    pub fn idle_sessions(&self, deadline: Deadline) -> Result<Vec<Session>, Error> {
        let idle: Vec<Session> = self
            .states_by(deadline)
            .into_iter()
            .filter(|l| l.state == Some(State::Idle))
            .map(|l| l.session)
            .collect();
        if idle.is_empty() {
            return Err(Error::Failed(
                "no idle session to send the prompt to".into(),
            ));
        }
        Ok(idle)
    }

    /// Resolves `(session query, prompt)` pairs; a session named twice is an error.
    pub fn tasks(
        &self,
        tasks: &[(String, String)],
    ) -> Result<(Vec<Session>, HashMap<String, String>), Error> {
        let mut sessions = Vec::new();
        let mut prompts = HashMap::new();
        for (query, prompt) in tasks {
            let s = self.get(Some(query))?;
            if prompts
                .insert(s.target_id.clone(), prompt.clone())
                .is_some()
            {
                return Err(Error::Usage(format!(
                    "session {} is given two prompts",
                    s.id
                )));
            }
            sessions.push(s.clone());
        }
        Ok((sessions, prompts))
    }

    /// The general form: monitors `sessions`, prompts those in `prompts` (by target
    /// id), and waits as `spec` says; `progress` sees every change.
    pub fn wait(
        &self,
        sessions: &[Session],
        prompts: &HashMap<String, String>,
        spec: WaitSpec,
        progress: Option<Progress>,
    ) -> Report {
        waiter::wait(sessions, prompts, &self.profile, spec, progress)
    }

    /// Starts a monitor thread for every session, and watches the endpoints for new
    /// windows. Updates arrive on the receiver until the `Monitors` are stopped.
    pub fn monitor(&self) -> (Monitors, Receiver<Update>) {
        let (mut monitors, rx) = Monitors::new(&self.profile);
        for s in &self.sessions {
            monitors.spawn(s, None);
        }
        monitors.watch_targets(&self.endpoints);
        (monitors, rx)
    }
}

fn spec(strategy: Strategy, opts: WaitOptions) -> WaitSpec {
    WaitSpec {
        strategy,
        timeout: opts.timeout,
        settle: opts.settle,
        extract: true,
        start_within: crate::monitor::ACCEPT_WITHIN,
        stall_after: None,
    }
}
