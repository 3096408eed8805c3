//! Names that outlive a window: aliases (one window) and groups (several), kept in the
//! state directory. A name remembers the window's target id, workspace and endpoint;
//! when that window is gone and exactly one open window has the same workspace, the
//! name follows it (said on stderr) and is updated.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Error;
use crate::sessions::Session;
use crate::state::{Doc, StateDir, StateError};

/// A window as a name remembers it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Remembered {
    pub target_id: String,
    pub workspace: Option<String>,
    pub endpoint: String,
}

impl Remembered {
    pub fn of(s: &Session) -> Remembered {
        Remembered {
            target_id: s.target_id.clone(),
            workspace: s.workspace.clone(),
            endpoint: s.endpoint.clone(),
        }
    }
}

/// `aliases.json`: alias name to window.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Aliases {
    pub aliases: BTreeMap<String, Remembered>,
}

impl Doc for Aliases {
    const NAME: &'static str = "aliases";
}

/// `groups.json`: group name to its windows.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Groups {
    pub groups: BTreeMap<String, Vec<Remembered>>,
}

impl Doc for Groups {
    const NAME: &'static str = "groups";
}

/// Where a remembered window is among the open ones.
enum Found<'a> {
    Same(&'a Session),
    /// Its window is gone; this is the one open window of its workspace.
    Moved(&'a Session),
    Gone,
}

fn find<'a>(r: &Remembered, open: &'a [Session]) -> Found<'a> {
    if let Some(s) = open.iter().find(|s| s.target_id == r.target_id) {
        return Found::Same(s);
    }
    let Some(ws) = &r.workspace else {
        return Found::Gone;
    };
    let mut same = open.iter().filter(|s| s.workspace.as_ref() == Some(ws));
    match (same.next(), same.next()) {
        (Some(one), None) => Found::Moved(one),
        _ => Found::Gone,
    }
}

/// Says on stderr that `what` (an alias, a group) follows its window `gone` to `s`.
fn following(what: &str, gone: &str, s: &Session) {
    warn!(
        "angrav: {what}: window {gone} is gone; following workspace {} to {}",
        s.workspace.as_deref().unwrap_or("-"),
        s.id
    );
}

/// Checks a name given to `alias set` or `group set`.
pub fn check_name(name: &str) -> Result<(), Error> {
    if name.is_empty() || name.starts_with('-') || name.chars().any(char::is_whitespace) {
        return Err(Error::Usage(format!(
            "'{name}' cannot be a name: no spaces, not empty, not starting with '-'"
        )));
    }
    Ok(())
}

/// The aliases and groups of a state directory, as read once for a command.
pub struct Names {
    dir: StateDir,
    aliases: Aliases,
    groups: Groups,
}

impl Names {
    pub fn load(dir: StateDir) -> Result<Names, StateError> {
        Ok(Names {
            aliases: dir.read()?,
            groups: dir.read()?,
            dir,
        })
    }

    /// The open window an alias names. `None`: `query` is no alias (try it as an id
    /// prefix or a workspace name). An alias whose window is gone, with no single
    /// window of its workspace to follow, is not found.
    pub fn resolve<'a>(
        &self,
        query: &str,
        open: &'a [Session],
    ) -> Option<Result<&'a Session, Error>> {
        let r = self.aliases.aliases.get(query)?;
        Some(match find(r, open) {
            Found::Same(s) => Ok(s),
            Found::Moved(s) => {
                following(&format!("alias '{query}'"), &r.target_id, s);
                let (old, new) = (r.target_id.clone(), Remembered::of(s));
                self.save(|a: &mut Aliases| {
                    if let Some(e) = a.aliases.get_mut(query).filter(|e| e.target_id == old) {
                        *e = new;
                    }
                });
                Ok(s)
            }
            Found::Gone => {
                warn!(
                    "angrav: alias '{query}': window {} ({}) is gone, and no single open window has its workspace",
                    r.target_id,
                    r.workspace.as_deref().unwrap_or("no workspace")
                );
                Err(Error::SessionNotFound {
                    query: Some(query.into()),
                    known: open.iter().map(|s| s.id.clone()).collect(),
                })
            }
        })
    }

    /// The open windows of a group; a member whose window is gone (and cannot be
    /// followed) is left out, said on stderr.
    pub fn group<'a>(&self, name: &str, open: &'a [Session]) -> Result<Vec<&'a Session>, Error> {
        let members = self.groups.groups.get(name).ok_or_else(|| {
            let known: Vec<&str> = self.groups.groups.keys().map(String::as_str).collect();
            Error::Usage(format!(
                "no group named '{name}' (groups: {})",
                if known.is_empty() {
                    "none".into()
                } else {
                    known.join(", ")
                }
            ))
        })?;
        let mut out = Vec::new();
        let mut moved = Vec::new();
        for m in members {
            match find(m, open) {
                Found::Same(s) => out.push(s),
                Found::Moved(s) => {
                    following(&format!("group '{name}'"), &m.target_id, s);
                    moved.push((m.target_id.clone(), Remembered::of(s)));
                    out.push(s);
                }
                Found::Gone => warn!(
                    "angrav: group '{name}': window {} ({}) is gone; left out",
                    m.target_id,
                    m.workspace.as_deref().unwrap_or("no workspace")
                ),
            }
        }
        if !moved.is_empty() {
            self.save(|g: &mut Groups| {
                for e in g.groups.get_mut(name).into_iter().flatten() {
                    if let Some((_, new)) = moved.iter().find(|(old, _)| *old == e.target_id) {
                        *e = new.clone();
                    }
                }
            });
        }
        let mut seen = std::collections::HashSet::new();
        out.retain(|s| seen.insert(s.target_id.as_str()));
        Ok(out)
    }

    /// The target id an alias remembers (for reading the journal, which needs no
    /// open window).
    pub fn alias_target(&self, name: &str) -> Option<&str> {
        self.aliases.aliases.get(name).map(|r| r.target_id.as_str())
    }

    /// Every group with the target ids it remembers.
    pub fn groups(&self) -> Vec<(String, Vec<String>)> {
        self.groups
            .groups
            .iter()
            .map(|(name, rs)| {
                (
                    name.clone(),
                    rs.iter().map(|r| r.target_id.clone()).collect(),
                )
            })
            .collect()
    }

    /// The target ids a group remembers.
    pub fn group_targets(&self, name: &str) -> Option<Vec<&str>> {
        let g = self.groups.groups.get(name)?;
        Some(g.iter().map(|r| r.target_id.as_str()).collect())
    }

    /// A name that followed its workspace is saved; failing that only costs the
    /// following next time, so it is said and not fatal.
    fn save<T: Doc>(&self, change: impl FnOnce(&mut T)) {
        if let Err(e) = self.dir.update(change) {
            warn!("angrav: could not update {}: {e}", T::NAME);
        }
    }
}
