//! Where each window's panel was last found (`places.json` in the state directory), so
//! that the next `sessions list` probes it there with one call instead of finding it
//! again (a frame tree, a world or two, then the probe). A place that no longer holds
//! the panel (the page reloaded, the window closed) is found anew the usual way and
//! replaced; `--no-state` does without.

use std::collections::BTreeMap;

use cdp::Endpoint;
use serde::{Deserialize, Serialize};

use crate::panel::PanelPlace;
use crate::sessions::Session;
use crate::state::{Doc, StateDir};

/// Windows of endpoints a list did not ask are kept for a later list that does, up to
/// this many: endpoints gone for good (a simulator's port) do not grow the file.
const OTHERS_KEPT: usize = 256;

/// `places.json`: target id to where its panel was found.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Known {
    windows: BTreeMap<String, Entry>,
}

impl Doc for Known {
    const NAME: &'static str = "places";
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Entry {
    /// The endpoint the window was listed by (its label).
    endpoint: String,
    #[serde(flatten)]
    place: PanelPlace,
}

/// The places remembered when a run started, and the directory to write them back to.
pub struct Places {
    dir: StateDir,
    /// `None`: the file could not be read, and is left as it is.
    known: Option<BTreeMap<String, Entry>>,
}

impl Places {
    /// The places remembered in `dir`; none when there is no file yet. A file angrav
    /// cannot read is said on stderr and left as it is (the list finds every panel).
    pub fn load(dir: StateDir) -> Places {
        let known = match dir.read::<Known>() {
            Ok(k) => Some(k.windows),
            Err(e) => {
                warn!("angrav: warning: {e}");
                None
            }
        };
        Places { dir, known }
    }

    pub fn get(&self, target_id: &str) -> Option<&PanelPlace> {
        self.known.as_ref()?.get(target_id).map(|e| &e.place)
    }

    /// Remembers where the panels of `read` are now (`None`: the window has none), and
    /// forgets the windows of `endpoints` that are no longer among `open` (target ids)
    /// and those of other endpoints past [`OTHERS_KEPT`]. Writes only when that
    /// changes anything.
    pub fn save<'a>(
        &self,
        read: impl Iterator<Item = (&'a Session, Option<&'a PanelPlace>)>,
        endpoints: &[Endpoint],
        open: &[String],
    ) {
        let Some(known) = &self.known else {
            return;
        };
        let read: Vec<(String, Option<Entry>)> = read
            .map(|(s, place)| {
                let entry = place.map(|p| Entry {
                    endpoint: s.endpoint.clone(),
                    place: p.clone(),
                });
                (s.target_id.clone(), entry)
            })
            .collect();
        let asked = |e: &Entry| endpoints.iter().any(|ep| ep.label() == e.endpoint);
        let apply = |windows: &mut BTreeMap<String, Entry>| {
            for (id, entry) in &read {
                match entry {
                    Some(e) => windows.insert(id.clone(), e.clone()),
                    None => windows.remove(id),
                };
            }
            windows.retain(|id, e| !asked(e) || open.contains(id));
            // Which of the others go is of no account: a window forgotten is found
            // anew by the next list that asks its endpoint.
            let extra: Vec<String> = windows
                .iter()
                .filter(|(_, e)| !asked(e))
                .map(|(id, _)| id.clone())
                .skip(OTHERS_KEPT)
                .collect();
            for id in extra {
                windows.remove(&id);
            }
        };
        let mut after = known.clone();
        apply(&mut after);
        if after == *known {
            return;
        }
        // Re-read under the lock: another run may have written meanwhile.
        // A list works without: said once a run, with what it costs and the way out.
        if let Err(e) = self.dir.update(|k: &mut Known| apply(&mut k.windows)) {
            static SAID: std::sync::Once = std::sync::Once::new();
            SAID.call_once(|| {
                warn!(
                    "angrav: warning: where the panels are is not kept in places.json ({e}): each is found anew every time; --no-state does without the state directory"
                )
            });
        }
    }
}
