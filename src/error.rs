use std::fmt;
use std::time::Duration;

use crate::profile::ProfileError;
use crate::sim::SimError;

/// Everything that can go wrong, each with a message that says what to do next.
#[derive(Debug)]
pub enum Error {
    Cdp(cdp::Error),
    /// The command line is wrong.
    Usage(String),
    Profile(ProfileError),
    /// No session matches `--session`, or none is running.
    SessionNotFound {
        query: Option<String>,
        known: Vec<String>,
    },
    /// `--session` matches several, or several run and none was chosen.
    SessionAmbiguous {
        query: Option<String>,
        matches: Vec<String>,
    },
    /// The window's agent panel is closed.
    NoPanel,
    /// The probe library vanished from its world (the page navigated).
    ContextGone,
    /// The agent did not start a turn for the prompt.
    NotAccepted(String),
    /// The page did not answer `what` within the time a page takes: its main thread
    /// is busy or frozen.
    Unresponsive {
        what: String,
        after: Duration,
    },
    /// A wait ran out; `pending` names what was still awaited.
    Timeout {
        after: Duration,
        pending: String,
    },
    Sim(SimError),
    /// Anything else that failed, said in a sentence.
    Failed(String),
}

/// Documented process exit codes.
pub mod exit {
    pub const OK: u8 = 0;
    pub const FAILURE: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const NO_SESSION: u8 = 3;
    pub const TIMEOUT: u8 = 124;
}

impl Error {
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) | Error::Profile(_) => exit::USAGE,
            Error::SessionNotFound { .. } | Error::SessionAmbiguous { .. } => exit::NO_SESSION,
            Error::Timeout { .. } => exit::TIMEOUT,
            _ => exit::FAILURE,
        }
    }

    pub fn is_closed(&self) -> bool {
        matches!(self, Error::Cdp(e) if e.is_closed())
    }

    /// The page did not answer in time (its own bound, or the command's deadline):
    /// it is still there, and may answer later.
    pub fn is_unanswered(&self) -> bool {
        matches!(self, Error::Unresponsive { .. } | Error::Timeout { .. })
    }

    pub fn is_context_gone(&self) -> bool {
        match self {
            Error::ContextGone => true,
            Error::Cdp(e) => e.is_context_gone(),
            _ => false,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Cdp(e) => write!(f, "{e}"),
            Error::Usage(m) => write!(f, "{m}; see 'angrav --help'"),
            Error::Profile(e) => write!(f, "{e}"),
            Error::SessionNotFound {
                query: Some(q),
                known,
            } => {
                write!(f, "no session matches '{q}'; sessions: {}", list(known))
            }
            Error::SessionNotFound { query: None, .. } => write!(
                f,
                "no Antigravity editor window found; open one, or check --cdp (try 'angrav sessions list')"
            ),
            Error::SessionAmbiguous {
                query: Some(q),
                matches,
            } => {
                write!(
                    f,
                    "'{q}' matches several sessions: {}; give more of the id",
                    list(matches)
                )
            }
            Error::SessionAmbiguous {
                query: None,
                matches,
            } => {
                write!(
                    f,
                    "several sessions are open; choose one with --session ID: {}",
                    list(matches)
                )
            }
            Error::NoPanel => {
                write!(
                    f,
                    "the agent panel is not open in this window; open it (View > Agent) and try again"
                )
            }
            Error::ContextGone => write!(
                f,
                "the page navigated while angrav was reading it; try again"
            ),
            Error::Unresponsive { what, after } => write!(
                f,
                "the page did not answer {what} within {}: it is busy or frozen (unresponsive); try again later",
                crate::cli::show_duration(*after)
            ),
            Error::NotAccepted(why) => write!(f, "prompt not accepted: {why}"),
            Error::Timeout { after, pending } => {
                write!(
                    f,
                    "timed out after {}; still waiting for {pending}",
                    crate::cli::show_duration(*after)
                )
            }
            Error::Sim(e) => write!(f, "{e}"),
            Error::Failed(m) => write!(f, "{m}"),
        }
    }
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}

impl std::error::Error for Error {}

impl From<cdp::Error> for Error {
    fn from(e: cdp::Error) -> Self {
        Error::Cdp(e)
    }
}

impl From<SimError> for Error {
    fn from(e: SimError) -> Self {
        Error::Sim(e)
    }
}

impl From<ProfileError> for Error {
    fn from(e: ProfileError) -> Self {
        Error::Profile(e)
    }
}
