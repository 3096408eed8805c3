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
    /// The command line is wrong for this command (`command`: its words).
    Misused {
        command: &'static str,
        message: String,
    },
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
    /// The panel shows, but these roles of it (`input`, `conversation`) cannot be read.
    Unreadable(Vec<String>),
    /// The approval a press named no longer shows (the message says what does):
    /// nothing was pressed.
    ApprovalChanged(String),
    /// The probe library vanished from its world (the page navigated).
    ContextGone,
    /// The prompt was refused before anything was typed (busy agent, draft, ...).
    NotAccepted(String),
    /// The prompt was typed but not delivered; the editor was put back.
    NotDelivered(String),
    /// The prompt was submitted, but what became of it could not be seen (the page
    /// stopped answering or failed after Enter): it may have reached the agent.
    Unconfirmed(String),
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
    /// ^C (SIGINT) or SIGTERM ended a wait, a dispatch or a delivery first; the
    /// message names what was still awaited, or what became of the prompt.
    Interrupted(String),
    Sim(SimError),
    /// The language server (`--ls`, or the one found).
    Ls(crate::ls::LsError),
    /// The state directory (aliases, groups, the journal).
    State(crate::state::StateError),
    /// No endpoint was named and none answered where angrav looked (the message says
    /// where, and how to start one).
    NoEndpoint(String),
    /// Anything else that failed, said in a sentence.
    Failed(String),
    /// What `angrav serve` answered a request with (`--server`): its `code` (one of
    /// [`Error::CODES`]) and message, as the command run here would have failed.
    Served {
        code: &'static str,
        message: String,
    },
}

/// Documented process exit codes.
pub mod exit {
    pub const OK: u8 = 0;
    pub const FAILURE: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const NO_SESSION: u8 = 3;
    pub const TIMEOUT: u8 = 124;
    /// ^C (SIGINT): 128 + its signal number, as shells report it.
    pub const INTERRUPTED: u8 = 130;
}

impl Error {
    /// Every [`Error::code`].
    pub const CODES: &[&str] = &[
        "usage",
        "profile",
        "session_not_found",
        "session_ambiguous",
        "no_panel",
        "unreadable",
        "approval_changed",
        "context_gone",
        "not_accepted",
        "not_delivered",
        "unconfirmed",
        "unresponsive",
        "state",
        "timeout",
        "interrupted",
        "endpoint",
        "cdp",
        "simulator",
        "ls",
        "failed",
    ];

    /// The exit code, from [`Error::code`]: an error serve answered with exits as the
    /// command run here would have.
    pub fn exit_code(&self) -> u8 {
        match self.code() {
            "usage" | "profile" => exit::USAGE,
            "session_not_found" | "session_ambiguous" => exit::NO_SESSION,
            "timeout" => exit::TIMEOUT,
            "interrupted" => exit::INTERRUPTED,
            _ => exit::FAILURE,
        }
    }

    /// An error serve answered with: its code (an unknown one counts as `failed`) and
    /// message.
    pub fn served(code: &str, message: String) -> Error {
        let code = Error::CODES
            .iter()
            .find(|c| **c == code)
            .copied()
            .unwrap_or("failed");
        Error::Served { code, message }
    }

    /// A stable name for the kind of error, for scripts (`--json` errors carry it).
    pub fn code(&self) -> &'static str {
        match self {
            Error::Usage(_) | Error::Misused { .. } => "usage",
            Error::Profile(_) => "profile",
            Error::SessionNotFound { .. } => "session_not_found",
            Error::SessionAmbiguous { .. } => "session_ambiguous",
            Error::NoPanel => "no_panel",
            Error::Unreadable(_) => "unreadable",
            Error::ApprovalChanged(_) => "approval_changed",
            Error::ContextGone => "context_gone",
            Error::NotAccepted(_) => "not_accepted",
            Error::NotDelivered(_) => "not_delivered",
            Error::Unconfirmed(_) => "unconfirmed",
            Error::Unresponsive { .. } => "unresponsive",
            Error::State(_) => "state",
            Error::Timeout { .. } => "timeout",
            Error::Interrupted(_) => "interrupted",
            Error::Cdp(
                cdp::Error::BadEndpoint { .. }
                | cdp::Error::Unresolved { .. }
                | cdp::Error::Unreachable { .. }
                | cdp::Error::NotDevTools { .. }
                | cdp::Error::Http { .. },
            ) => "endpoint",
            Error::Cdp(_) => "cdp",
            Error::Sim(_) => "simulator",
            Error::Ls(_) => "ls",
            Error::NoEndpoint(_) => "endpoint",
            Error::Failed(_) => "failed",
            Error::Served { code, .. } => code,
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
            Error::Usage(m) => write!(f, "{m}; see 'angrav help'"),
            Error::Misused { command, message } => {
                write!(f, "{message}; see 'angrav help {command}'")
            }
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
            Error::Unreadable(roles) => write!(
                f,
                "the agent panel shows, but its {} cannot be read (its markup changed?); nothing was done: run 'angrav doctor' to see which markers no longer match, and add yours with --selectors",
                roles.join(" and ")
            ),
            Error::ApprovalChanged(why) => write!(f, "{why}"),
            Error::ContextGone => write!(
                f,
                "the page navigated while angrav was reading it; try again"
            ),
            Error::Unresponsive { what, after } => write!(
                f,
                "the page did not answer {what} within {}: it is busy or frozen (unresponsive); try again later",
                crate::show::duration(*after)
            ),
            Error::NotAccepted(why) => write!(f, "prompt not accepted: {why}"),
            Error::NotDelivered(why) => write!(f, "prompt not delivered: {why}"),
            Error::Unconfirmed(why) => write!(
                f,
                "prompt submitted, but what became of it was not seen ({why}); it may have reached the agent: look (angrav history) before sending it again"
            ),
            Error::Timeout { after, pending } => {
                write!(
                    f,
                    "timed out after {}; still waiting for {pending}",
                    crate::show::duration(*after)
                )
            }
            Error::Sim(e) => write!(f, "{e}"),
            Error::Ls(e) => write!(f, "{e}"),
            Error::State(e) => write!(f, "{e}"),
            Error::NoEndpoint(m)
            | Error::Failed(m)
            | Error::Interrupted(m)
            | Error::Served { message: m, .. } => {
                write!(f, "{m}")
            }
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

impl From<crate::state::StateError> for Error {
    fn from(e: crate::state::StateError) -> Self {
        Error::State(e)
    }
}

impl From<crate::ls::LsError> for Error {
    fn from(e: crate::ls::LsError) -> Self {
        Error::Ls(e)
    }
}
