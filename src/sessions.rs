//! Sessions: the editor windows of one or more endpoints, with ids that stay the same
//! from one invocation to the next (the CDP target id, which lives as long as the window).

use cdp::Endpoint;
use serde::{Deserialize, Serialize};

use crate::Error;
use crate::panel::WindowRef;
use crate::profile::Profile;

/// Ids are printed as the shortest unique prefix, but never shorter than this.
const MIN_ID: usize = 6;

/// Serialised, a session is the `session` object of the JSON vocabulary (see
/// [`crate::schema`]): `{id, target_id, workspace, title, endpoint}`, the same in
/// every result and event that names a chat.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "Described")]
pub struct Session {
    /// The shortest unique prefix of the target id (any unique prefix is accepted).
    pub id: String,
    pub target_id: String,
    /// Parsed from the title, `<file> - <workspace> - Antigravity`.
    pub workspace: Option<String>,
    pub title: String,
    #[serde(skip)]
    pub url: String,
    pub endpoint: String,
    /// The serve it was read from, when several are asked (`--server`) or a hub
    /// follows it (`--upstream`): that serve's label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(skip)]
    pub window: WindowRef,
}

impl Session {
    /// A window as a session; its printed id is the shortest prefix unique among `all`.
    pub fn new(
        window: WindowRef,
        title: String,
        url: String,
        all: &[String],
        profile: &Profile,
    ) -> Session {
        Session {
            id: short_id(&window.target_id, all),
            target_id: window.target_id.clone(),
            workspace: workspace(&title, profile),
            title,
            url,
            endpoint: window.endpoint.label().to_string(),
            host: None,
            window,
        }
    }

    /// A window that appeared beside the sessions already known (`known`, by target
    /// id): its id is the shortest prefix unique among them all.
    pub fn appeared<'a>(
        window: WindowRef,
        title: String,
        url: String,
        known: impl Iterator<Item = &'a String>,
        profile: &Profile,
    ) -> Session {
        let mut all: Vec<String> = known.cloned().collect();
        all.push(window.target_id.clone());
        Session::new(window, title, url, &all, profile)
    }

    pub fn retitle(&mut self, title: String, profile: &Profile) {
        self.workspace = workspace(&title, profile);
        self.title = title;
    }
}

/// A session as results write it (serve's answers to `--server`): read back, its
/// window is found again from its endpoint and target id.
#[derive(Deserialize)]
struct Described {
    id: String,
    target_id: String,
    workspace: Option<String>,
    title: String,
    /// Not written; a session read back has none.
    #[serde(default)]
    url: String,
    endpoint: String,
    #[serde(default)]
    host: Option<String>,
}

impl TryFrom<Described> for Session {
    type Error = cdp::Error;

    fn try_from(d: Described) -> Result<Session, cdp::Error> {
        let endpoint = Endpoint::parse(&d.endpoint)?;
        let ws_url = endpoint.page_ws_url(&d.target_id);
        Ok(Session {
            window: WindowRef::new(endpoint, d.target_id.clone(), ws_url),
            id: d.id,
            target_id: d.target_id,
            workspace: d.workspace,
            title: d.title,
            url: d.url,
            endpoint: d.endpoint,
            host: d.host,
        })
    }
}

/// A window that is not a chat: the Agent Manager. `sessions list --all` shows it;
/// no command takes it for a session.
#[derive(Debug, Clone, Serialize)]
pub struct Manager {
    pub id: String,
    pub target_id: String,
    pub title: String,
    pub url: String,
    pub endpoint: String,
}

/// Every editor window of every endpoint; not the Agent Manager, not other pages.
pub fn discover(endpoints: &[Endpoint], profile: &Profile) -> Result<Vec<Session>, Error> {
    Ok(discover_all(endpoints, profile)?.0)
}

/// Every editor window of every endpoint as a session, and every Agent Manager window.
pub fn discover_all(
    endpoints: &[Endpoint],
    profile: &Profile,
) -> Result<(Vec<Session>, Vec<Manager>), Error> {
    let mut windows = Vec::new();
    let mut managers = Vec::new();
    let mut answered = false;
    let mut failures = Vec::new();
    for endpoint in endpoints {
        let direct = matches!(endpoint, Endpoint::Target { .. });
        // Of several endpoints, one that fails is a warning: the others are served.
        let targets = match endpoint.list() {
            Ok(targets) => targets,
            Err(e) if endpoints.len() > 1 => {
                failures.push(e);
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        answered = true;
        // An out-of-process panel iframe is listed as a target whose parent is the window.
        let panel_target = |window: &str| {
            targets
                .iter()
                .find(|t| {
                    t.kind == "iframe"
                        && t.parent_id.as_deref() == Some(window)
                        && profile
                            .panel_frame_url
                            .iter()
                            .any(|u| t.url.contains(u.as_str()))
                })
                .and_then(|t| t.web_socket_debugger_url.clone())
        };
        for t in &targets {
            let is_window = direct || profile.is_window(&t.kind, &t.url);
            let Some(ws_url) = t.web_socket_debugger_url.clone() else {
                continue;
            };
            if is_window {
                let window = WindowRef {
                    endpoint: endpoint.clone(),
                    target_id: t.id.clone(),
                    ws_url,
                    panel_target: panel_target(&t.id),
                };
                windows.push((window, t.title.clone(), t.url.clone()));
            } else if profile.is_manager(&t.kind, &t.url) {
                managers.push(Manager {
                    id: String::new(),
                    target_id: t.id.clone(),
                    title: t.title.clone(),
                    url: t.url.clone(),
                    endpoint: endpoint.label().to_string(),
                });
            }
        }
    }
    // The first failure is the error when none answered; the others are warnings.
    let mut failures = failures.into_iter();
    let first = if answered { None } else { failures.next() };
    for e in failures {
        warn!("angrav: warning: {e}");
    }
    if let Some(e) = first {
        return Err(e.into());
    }
    let ids: Vec<String> = windows
        .iter()
        .map(|(w, _, _)| w.target_id.clone())
        .chain(managers.iter().map(|m| m.target_id.clone()))
        .collect();
    for m in &mut managers {
        m.id = short_id(&m.target_id, &ids);
    }
    let mut out: Vec<Session> = windows
        .into_iter()
        .map(|(w, title, url)| Session::new(w, title, url, &ids, profile))
        .collect();
    out.sort_by(|a, b| {
        (&a.workspace, &a.title, &a.target_id).cmp(&(&b.workspace, &b.title, &b.target_id))
    });
    Ok((out, managers))
}

/// `<file> - <workspace> - Antigravity` (the file part may be absent).
fn workspace(title: &str, profile: &Profile) -> Option<String> {
    let rest = profile
        .title_suffix
        .iter()
        .find_map(|s| title.strip_suffix(s.as_str()))?;
    let name = rest.rsplit(" - ").next()?.trim();
    (!name.is_empty()).then(|| name.to_string())
}

pub(crate) fn short_id(id: &str, all: &[String]) -> String {
    let chars: Vec<char> = id.chars().collect();
    let mut n = MIN_ID.min(chars.len());
    while n < chars.len() {
        let prefix: String = chars[..n].iter().collect();
        let clashes = all
            .iter()
            .filter(|o| o.as_str() != id && o.starts_with(&prefix))
            .count();
        if clashes == 0 {
            break;
        }
        n += 1;
    }
    chars[..n].iter().collect()
}

/// Picks one session: by its full id, or else by the one window whose id starts with
/// the query (any case) or whose workspace is named so. Without a query, the only
/// session there is.
pub fn select<'a>(sessions: &'a [Session], query: Option<&str>) -> Result<&'a Session, Error> {
    let names = |v: &[&Session]| v.iter().map(|s| describe(s)).collect::<Vec<_>>();
    let all: Vec<&Session> = sessions.iter().collect();
    let Some(q) = query else {
        return match all.as_slice() {
            [one] => Ok(one),
            [] => Err(Error::SessionNotFound {
                query: None,
                known: vec![],
            }),
            many => Err(Error::SessionAmbiguous {
                query: None,
                matches: names(many),
            }),
        };
    };
    let upper = q.to_ascii_uppercase();
    let by_id: Vec<&Session> = all
        .iter()
        .copied()
        .filter(|s| s.target_id.to_ascii_uppercase().starts_with(&upper))
        .collect();
    let by_name: Vec<&Session> = all
        .iter()
        .copied()
        .filter(|s| s.workspace.as_deref() == Some(q))
        .collect();
    // A full id names its window, whatever else the query matches.
    if let Some(exact) = all.iter().find(|s| s.target_id.eq_ignore_ascii_case(q)) {
        return Ok(exact);
    }
    // Otherwise an id prefix and a workspace name count alike: a window named like
    // the start of another's id makes the query ambiguous, not a silent pick.
    let mut found = by_id;
    for s in by_name {
        if !found.iter().any(|f| f.target_id == s.target_id) {
            found.push(s);
        }
    }
    match found.as_slice() {
        [one] => Ok(one),
        [] => Err(Error::SessionNotFound {
            query: Some(q.into()),
            known: names(&all),
        }),
        many => Err(Error::SessionAmbiguous {
            query: Some(q.into()),
            matches: names(many),
        }),
    }
}

fn describe(s: &Session) -> String {
    match &s.workspace {
        Some(w) => format!("{} ({w})", s.id),
        None => s.id.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_ids_are_unique_and_at_least_six() {
        let ids = vec![
            "ABCDEF1234".to_string(),
            "ABCDEF1299".to_string(),
            "FFFF00".to_string(),
        ];
        assert_eq!(short_id(&ids[0], &ids), "ABCDEF123");
        assert_eq!(short_id(&ids[1], &ids), "ABCDEF129");
        assert_eq!(short_id(&ids[2], &ids), "FFFF00");
    }

    fn session(target_id: &str, workspace: &str) -> Session {
        let endpoint = cdp::Endpoint::parse("http://127.0.0.1:9").unwrap();
        let window = WindowRef::new(endpoint, target_id.into(), String::new());
        let title = format!("{workspace} - Antigravity");
        Session::new(window, title, String::new(), &[], &Profile::default())
    }

    #[test]
    fn a_name_shadowing_an_id_prefix_is_ambiguous() {
        let all = [
            session("ABCDEF0123", "alpha"),
            session("99887766", "abcdef"),
        ];
        for q in ["abcdef", "ABCDEF"] {
            match select(&all, Some(q)) {
                Err(Error::SessionAmbiguous { matches, .. }) if q == "abcdef" => {
                    assert_eq!(matches.len(), 2, "{matches:?}")
                }
                // Names match exactly: "ABCDEF" is only an id prefix.
                Ok(s) if q == "ABCDEF" => assert_eq!(s.target_id, "ABCDEF0123"),
                other => panic!("{q}: {other:?}"),
            }
        }
        // A full id still wins; a name or prefix of one window alone picks it.
        assert_eq!(
            select(&all, Some("abcdef0123")).unwrap().target_id,
            "ABCDEF0123"
        );
        assert_eq!(select(&all, Some("alpha")).unwrap().target_id, "ABCDEF0123");
        assert_eq!(select(&all, Some("9988")).unwrap().target_id, "99887766");
    }

    #[test]
    fn workspace_from_title() {
        let p = Profile::default();
        assert_eq!(
            workspace("main.rs - angrav - Antigravity", &p).as_deref(),
            Some("angrav")
        );
        assert_eq!(
            workspace("angrav - Antigravity", &p).as_deref(),
            Some("angrav")
        );
        assert_eq!(workspace("Agent Manager", &p), None);
    }
}
