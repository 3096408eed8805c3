//! A small synchronous client for the Chrome DevTools Protocol.
//!
//! - [`discovery`]: the HTTP side of an endpoint (`/json/version`, `/json/list`, ...).
//! - [`Connection`]: one WebSocket to one target, with per-call deadlines, buffered
//!   events and a [`CloseHandle`] that wakes a blocked reader from another thread.
//! - [`methods`]: hand-written params and results for the commands callers use.
//!
//! The crate knows nothing about any particular application running in the browser.

pub mod discovery;
mod error;
mod message;
pub mod methods;
mod transport;

pub use discovery::{Endpoint, TargetInfo};
pub use error::{CdpError, Error, Result};
pub use message::Event;
pub use methods::Command;
pub use transport::{CallId, CloseGroup, CloseHandle, Connection};
