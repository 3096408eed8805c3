use std::fmt;
use std::time::Duration;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error reply from the browser: `{"error": {"code", "message", "data"}}`.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct CdpError {
    pub code: i64,
    pub message: String,
    #[serde(default)]
    pub data: Option<String>,
}

impl CdpError {
    /// The execution context a call named is gone (the page navigated or reloaded).
    pub fn is_context_gone(&self) -> bool {
        let m = self.message.as_str();
        m.contains("Cannot find context with specified id")
            || m.contains("Execution context was destroyed")
            || m.contains("Cannot find default execution context")
            || m.contains("Inspected target navigated or closed")
    }
}

#[derive(Debug)]
pub enum Error {
    /// The text given as an endpoint is not one we understand.
    BadEndpoint { given: String, why: String },
    /// The endpoint's host name does not resolve to an address.
    Unresolved { host: String, detail: String },
    /// An HTTP server answered with an error status where DevTools would list targets.
    NotDevTools { endpoint: String, status: u16 },
    /// Nothing answered HTTP at the endpoint.
    Unreachable { endpoint: String, detail: String },
    /// The endpoint answered, but not as a DevTools endpoint does.
    Http { url: String, detail: String },
    /// The WebSocket to a target could not be opened.
    Connect { url: String, detail: String },
    /// The browser answered, and refused the WebSocket: it has no such target (Chrome:
    /// HTTP 500 "No such target id").
    NoTarget { url: String, detail: String },
    /// No reply within the call's own deadline.
    Timeout { method: String, after: Duration },
    /// The target went away (socket closed, detached, crashed) before or during the call.
    TargetClosed { reason: String },
    /// Another thread closed this connection through its [`crate::CloseHandle`].
    Interrupted,
    /// The browser answered the call with an error.
    Cdp { method: String, error: CdpError },
    /// Script run in the page threw.
    Script { text: String },
    /// A reply or event did not have the shape the caller expected.
    Decode { what: String, detail: String },
}

impl Error {
    pub fn cdp(&self) -> Option<&CdpError> {
        match self {
            Error::Cdp { error, .. } => Some(error),
            _ => None,
        }
    }

    /// True when retrying in a fresh execution context may succeed.
    pub fn is_context_gone(&self) -> bool {
        self.cdp().is_some_and(CdpError::is_context_gone)
    }

    pub fn is_closed(&self) -> bool {
        matches!(self, Error::TargetClosed { .. } | Error::Interrupted)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::BadEndpoint { given, why } => write!(
                f,
                "'{given}' is not a DevTools endpoint ({why}); give http://HOST:PORT, HOST:PORT, :PORT or a ws:// target URL"
            ),
            Error::Unresolved { host, detail } => write!(
                f,
                "{detail}; give {host}'s IP address, or check the name in --cdp"
            ),
            Error::NotDevTools { endpoint, status } => write!(
                f,
                "{endpoint} answered HTTP {status}: not a DevTools endpoint"
            ),
            Error::Unreachable { endpoint, detail } => write!(
                f,
                "nothing answers at {endpoint} ({detail}); start Antigravity with --remote-debugging-port=9222, or pass the right endpoint with --cdp"
            ),
            Error::Http { url, detail } => {
                write!(f, "{url} did not answer as a DevTools endpoint: {detail}")
            }
            Error::Connect { url, detail } => write!(f, "cannot open {url}: {detail}"),
            Error::NoTarget { url, detail } => {
                write!(f, "the browser has no target at {url}: {detail}")
            }
            Error::Timeout { method, after } => {
                write!(f, "{method} got no reply within {} ms", after.as_millis())
            }
            Error::TargetClosed { reason } => write!(f, "target closed: {reason}"),
            Error::Interrupted => write!(f, "connection closed on request"),
            Error::Cdp { method, error } => {
                write!(
                    f,
                    "{method} failed: {} (code {})",
                    error.message, error.code
                )?;
                if let Some(data) = &error.data {
                    write!(f, ": {data}")?;
                }
                Ok(())
            }
            Error::Script { text } => write!(f, "script error in page: {text}"),
            Error::Decode { what, detail } => write!(f, "unexpected {what}: {detail}"),
        }
    }
}

impl std::error::Error for Error {}
