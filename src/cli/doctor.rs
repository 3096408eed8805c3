//! `angrav doctor`: how angrav reads each window, role by role: which alternative of
//! every profile role matched and how often, the layout, the state and why. What a
//! user runs after an Antigravity update to see which marker stopped matching.

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::output;
use super::{Args, found_endpoints, nothing_found, profile, report};
use crate::locate::Source;
use crate::panel::{Deadline, Layout, Panel, Snapshot, State};
use crate::profile::{Profile, RoleKind};
use crate::registry::Registry;
use crate::sessions::Session;
use crate::{Error, exit};

const SCRIPT: &str = include_str!("../js/doctor.js");

/// Roles a window with its agent panel open always shows: nothing matched is a warning.
/// The editor (`input`) and the conversation are judged by the probe's own reading
/// (its `unreadable`), the one `status` shows, so that the two never disagree: the
/// conversation may be found without its container marker.
const EXPECTED: &[&str] = &["panel_root", "send", "new_conversation"];

/// `(role, when)`: a role expected once another matched (answers come after the
/// user's messages, so a conversation with answers shows user messages too).
const EXPECTED_WITH: &[(&str, &str)] = &[("user_message", "answer")];

/// What one role matched in a window (computed by `doctor.js`).
#[derive(Debug, Serialize, Deserialize)]
struct RoleMatch {
    role: String,
    kind: RoleKind,
    /// The first alternative that matched.
    matched: Option<String>,
    /// How many times it matched, and how many of those are visible (elements only).
    count: u32,
    visible: Option<u32>,
    alternatives: Vec<Alternative>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Alternative {
    value: String,
    count: u32,
    visible: Option<u32>,
    /// Why the page refused it (an invalid selector or regular expression).
    invalid: Option<String>,
}

/// One window as the doctor saw it.
#[derive(Serialize)]
struct Examined<'a> {
    session: &'a Session,
    /// The probe's reading: state, layout, counts, and the markers that say why.
    status: Option<Snapshot>,
    roles: Vec<RoleMatch>,
    /// Everything that keeps this window from reading cleanly.
    warnings: Vec<String>,
    /// Its language server and how it was found, or why none was (not a warning:
    /// angrav reads the window without one).
    ls: super::ls::Found,
    /// It did not answer before --timeout: what it shows is unknown.
    #[serde(skip)]
    timed_out: bool,
}

pub(super) fn run(a: &Args) -> Result<u8, Error> {
    let profile = profile(a)?;
    let (endpoints, source) = found_endpoints(a)?;
    let nothing = matches!(source, Source::NothingAnswered { .. });
    let labels: Vec<String> = if nothing {
        Vec::new()
    } else {
        endpoints.iter().map(|e| e.label().to_string()).collect()
    };
    let sessions = if nothing {
        Vec::new()
    } else {
        Registry::with(endpoints, profile.clone())?.select(&a.sessions)?
    };
    // Every window at once, each on its own thread, and its language server meanwhile:
    // the whole run ends by --timeout, a window that never answers included.
    let deadline = Deadline::within(a.wait.timeout);
    let (mut examined, ls) = std::thread::scope(|scope| {
        let ls = scope.spawn(|| super::ls::per_window(a, &sessions, deadline));
        let examined = crate::parallel::each(&sessions, |s| examine(s, &profile, deadline));
        (examined, ls.join().expect("the language servers' thread"))
    });
    for (e, found) in examined.iter_mut().zip(ls?) {
        e.ls = found;
    }
    let timed_out = examined.iter().any(|e| e.timed_out);
    let clean = !examined.is_empty() && examined.iter().all(|e| e.warnings.is_empty());
    if a.json {
        let report = json!({
            "endpoint": { "urls": labels, "found_by": found_by(&source), "detail": source.to_string() },
            "clean": clean,
            "sessions": examined,
        });
        output::json(&report);
    } else {
        let shown = if nothing {
            "none".into()
        } else {
            labels.join(", ")
        };
        output::line(&format!("endpoint: {shown} ({source})"));
        for e in &examined {
            print_examined(e);
        }
    }
    // The report says it all; what stderr adds is an error, as JSON with --json.
    if nothing {
        report(&nothing_found(&source), a.json);
    } else if examined.is_empty() {
        let none = Error::Failed("no Antigravity editor window found".into());
        report(&none, a.json);
    } else if !clean && !a.json {
        let n: usize = examined.iter().map(|e| e.warnings.len()).sum();
        output::message(&format!("{n} warning(s); see above"));
    }
    Ok(if timed_out {
        exit::TIMEOUT
    } else if clean {
        exit::OK
    } else {
        exit::FAILURE
    })
}

fn found_by(source: &Source) -> &'static str {
    match source {
        Source::Given(_) => "given",
        Source::DefaultPort => "default_port",
        Source::ActivePortFile(_) => "devtools_active_port",
        Source::PortScan => "port_scan",
        Source::NothingAnswered { .. } => "nothing_answered",
    }
}

fn examine<'a>(session: &'a Session, profile: &Profile, deadline: Deadline) -> Examined<'a> {
    let mut out = Examined {
        session,
        status: None,
        roles: Vec::new(),
        warnings: Vec::new(),
        ls: super::ls::Found::default(),
        timed_out: false,
    };
    let group = Default::default();
    let read = Panel::attach_in(&session.window, profile, group, Some(deadline)).and_then(
        |(mut panel, snap)| {
            let page = json!({ "url": session.url, "title": session.title });
            let roles = serde_json::to_value(profile.roles()).expect("roles serialise");
            let v = panel.call_function(SCRIPT, &[roles, page])?;
            let roles: Vec<RoleMatch> = cdp::methods::from_value(v, "doctor result")?;
            Ok((snap, roles))
        },
    );
    match read {
        Ok((snap, roles)) => {
            out.warnings = warnings(&snap, &roles);
            out.status = Some(snap);
            out.roles = roles;
        }
        Err(e @ Error::Timeout { .. }) => {
            out.timed_out = true;
            out.warnings
                .push(format!("did not answer within --timeout ({e})"));
        }
        // A script error's first line says what; the page's stack trace does not.
        Err(e) => out.warnings.push(format!(
            "cannot read this window: {}",
            e.to_string().lines().next().unwrap_or_default()
        )),
    }
    out
}

fn warnings(snap: &Snapshot, roles: &[RoleMatch]) -> Vec<String> {
    let mut out = Vec::new();
    for r in roles {
        for alt in &r.alternatives {
            if let Some(why) = &alt.invalid {
                out.push(format!(
                    "{}: invalid alternative '{}': {why}",
                    r.role, alt.value
                ));
            }
        }
    }
    if snap.state == State::NoPanel {
        out.push(
            "no agent panel found: open it (View > Agent), or fix panel_root if it is open"
                .to_string(),
        );
        return out;
    }
    let role = |name: &str| roles.iter().find(|r| r.role == name);
    let missed = |name: &str| role(name).filter(|r| r.matched.is_none());
    let expected = EXPECTED.iter().copied().chain(
        EXPECTED_WITH
            .iter()
            .filter(|(_, when)| role(when).is_some_and(|r| r.matched.is_some()))
            .map(|(name, _)| *name),
    );
    let tried = |r: &RoleMatch| {
        r.alternatives
            .iter()
            .map(|a| a.value.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    for r in snap.unreadable.iter().filter_map(|name| role(name)) {
        out.push(format!(
            "{} cannot be read in a window whose panel was found: the state is unreadable (tried: {})",
            r.role,
            tried(r)
        ));
    }
    for r in expected.filter_map(missed) {
        out.push(format!(
            "{} matched nothing in a window whose panel was found (tried: {})",
            r.role,
            tried(r)
        ));
    }
    out
}

fn print_examined(e: &Examined) {
    let s = e.session;
    output::line(&format!(
        "\n{}  {}  {}",
        s.id,
        s.workspace.as_deref().unwrap_or("-"),
        s.title
    ));
    if let Some(snap) = &e.status {
        output::line(&format!(
            "  layout: {}; state: {}; messages: {} user, {} agent",
            snap.layout.map_or("none", Layout::name),
            crate::show::snapshot(snap),
            snap.user_messages,
            snap.agent_messages
        ));
        output::line(&format!("  why:    {}", snap.markers.join("; ")));
    }
    let width = e.roles.iter().map(|r| r.role.len()).max().unwrap_or(0);
    for r in &e.roles {
        // Selectors as written; text, URLs and patterns quoted (they may start with a space).
        let found = match (&r.matched, r.visible) {
            (None, _) => "none matched".to_string(),
            (Some(m), Some(v)) if r.kind == RoleKind::Selector => {
                format!("{m}  ({}, {v} visible)", r.count)
            }
            (Some(m), Some(v)) => format!("{m:?}  ({}, {v} visible)", r.count),
            (Some(m), None) => format!("{m:?}  ({})", r.count),
        };
        output::line(&format!("  {:width$}  {found}", r.role));
    }
    output::line(&format!("  ls:     {}", e.ls));
    for w in &e.warnings {
        output::line(&format!("  warning: {w}"));
    }
    if e.warnings.is_empty() {
        output::line("  ok");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_roles_are_roles_of_the_profile() {
        let roles = Profile::default().roles();
        let known = |name: &str| roles.iter().any(|r| r.role == name);
        for name in EXPECTED
            .iter()
            .chain(EXPECTED_WITH.iter().flat_map(|(a, b)| [a, b]))
        {
            assert!(known(name), "{name} is not a role of the profile");
        }
    }
}
