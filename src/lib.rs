//! angrav: watch and drive many Antigravity agent chats at once over the Chrome
//! DevTools Protocol.
//!
//! - [`sessions`]: the editor windows of one or more endpoints, with stable ids;
//!   [`locate`]: finding Antigravity's DevTools endpoint when none is given;
//!   [`registry`]: the library's front door, the spec's operations on many sessions.
//! - [`panel`]: finding a window's agent panel (any layout) and probing it;
//!   [`profile`]: the selectors, as data.
//! - [`turn`]: sending a prompt and waiting for its answer; [`monitor`]: a thread per
//!   session reporting its state changes; [`waiter`]: waiting on many at once;
//!   [`parallel`]: a thread per item; [`dispatch`]: a queue of prompts spread over the
//!   idle sessions.
//! - [`approve`]: answering an approval, stopping an agent; [`policy`]: rules that
//!   answer approvals in unattended runs.
//! - [`results`]: what the commands on one chat report, printed and served alike;
//!   [`event`]: one event about a chat, as watch, serve and hooks write it;
//!   [`schema`]: the shape of every `--json` output; [`Error`]: what can go wrong,
//!   with its code and exit code.
//! - [`state`]: the state directory; [`names`]: aliases and groups kept there;
//!   [`journal`]: the journal of events and turns; [`timestamp`]: RFC 3339 times.
//! - [`ls`]: Antigravity's language server (every conversation, waiting steps, quota).
//! - [`serve`]: `angrav serve`, the WebSocket API and the dashboard, and a hub
//!   following other serves; [`client`]: a client of a serve; [`hooks`]: commands,
//!   webhooks and notifications on events; [`signals`]: SIGINT/SIGTERM.
//! - [`show`]: durations, angrav's messages on stderr, page text made safe for a terminal.
//! - [`cli`]: the command line (the library never calls it).
//! - [`sim`]: the simulated Antigravity used by `angrav simulate`, the demo and the tests.

/// `eprintln!` for angrav's own messages (`angrav: ...`): through [`show::message`], so
/// page text in them is shown visibly on a terminal and a closed stderr stops nothing.
macro_rules! warn {
    ($($arg:tt)*) => {
        $crate::show::message(&format!($($arg)*))
    };
}

pub mod approve;
pub mod cli;
pub mod client;
pub mod dispatch;
mod error;
pub mod event;
pub mod hooks;
pub mod journal;
pub mod locate;
pub mod ls;
pub mod monitor;
pub mod names;
pub mod panel;
pub mod parallel;
pub mod places;
pub mod policy;
pub mod profile;
pub mod registry;
pub mod results;
pub mod schema;
pub mod serve;
pub mod sessions;
pub mod show;
pub mod signals;
pub mod sim;
pub mod state;
pub mod timestamp;
pub mod turn;
pub mod waiter;

pub use cdp;
pub use error::{Error, exit};
