//! `angrav serve`: the WebSocket API and the dashboard (see `crate::serve`).

use super::{Args, memory, registry};
use crate::Error;
use crate::serve::{self, Options};
use crate::state::StateDir;

pub(super) fn run(a: &Args) -> Result<u8, Error> {
    // A refused address fails before anything is attached.
    let listen = serve::listen_address(&a.listen, a.allow_remote)?;
    let registry = registry(a)?;
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
        },
    )
}
