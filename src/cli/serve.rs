//! `angrav serve`: the WebSocket API and the dashboard (see `crate::serve`).

use super::{Args, memory, registry};
use crate::Error;
use crate::registry::Registry;
use crate::serve::{self, Options, Upstream};
use crate::state::StateDir;

pub(super) fn run(a: &Args) -> Result<u8, Error> {
    // A refused address fails before anything is attached.
    let listen = serve::listen_address(&a.listen, a.allow_remote)?;
    let upstreams: Vec<Upstream> = a
        .upstreams
        .iter()
        .flat_map(|u| u.split(','))
        .filter(|u| !u.trim().is_empty())
        .map(Upstream::parse)
        .collect::<Result<_, _>>()?;
    // A hub may have no browser of its own: with upstreams and no --cdp, none.
    let registry = if !upstreams.is_empty() && a.cdp.is_empty() {
        Registry::with(Vec::new(), super::profile(a)?)?
    } else {
        registry(a)?
    };
    let state = if a.no_state {
        None
    } else {
        Some(StateDir::locate()?)
    };
    serve::serve(
        registry,
        Options {
            listen,
            settle: a.wait.settle,
            hooks: a.hooks.clone(),
            state,
            names: memory::names(a)?,
            upstreams,
            ls: super::ls::given(a)?,
        },
    )
}
