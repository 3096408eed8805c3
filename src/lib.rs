//! angrav: watch and drive many Antigravity agent chats at once over the Chrome
//! DevTools Protocol.
//!
//! - [`sessions`]: the editor windows of one or more endpoints, with stable ids.
//! - [`panel`]: finding a window's agent panel (either layout) and probing it.
//! - [`turn`]: sending a prompt and waiting for its answer.
//! - [`dispatch`]: a queue of prompts spread over the idle sessions.
//! - [`profile`]: the selectors, as data.
//! - [`locate`]: finding Antigravity's DevTools endpoint when none is given.
//! - [`sim`]: the simulated Antigravity used by `angrav simulate`, the demo and the tests.

pub mod cli;
pub mod dispatch;
mod error;
pub mod locate;
pub mod monitor;
pub mod panel;
pub mod profile;
pub mod registry;
pub mod sessions;
pub mod sim;
pub mod turn;
pub mod waiter;

pub use cdp;
pub use error::{Error, exit};
