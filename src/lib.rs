//! angrav: watch and drive many Antigravity agent chats at once over the Chrome
//! DevTools Protocol.
//!
//! - [`sessions`]: the editor windows of one or more endpoints, with stable ids.
//! - [`panel`]: finding a window's agent panel (either layout) and probing it.
//! - [`turn`]: sending a prompt and waiting for its answer.
//! - [`dispatch`]: a queue of prompts spread over the idle sessions.
//! - [`profile`]: the selectors, as data.
//! - [`locate`]: finding Antigravity's DevTools endpoint when none is given.
//! - [`state`]: the state directory; [`names`]: aliases and groups kept there;
//!   [`journal`]: the journal of events and turns.
//! - [`sim`]: the simulated Antigravity used by `angrav simulate`, the demo and the tests.

pub mod cli;
pub mod dispatch;
mod error;
pub mod journal;
pub mod locate;
pub mod monitor;
pub mod names;
pub mod panel;
pub mod profile;
pub mod registry;
pub mod schema;
pub mod sessions;
pub mod sim;
pub mod state;
pub mod timestamp;
pub mod turn;
pub mod waiter;

pub use cdp;
pub use error::{Error, exit};
