//! Antigravity's language server (LS): the process the agent panel itself calls. It
//! knows every conversation (not only the one a window renders), the steps waiting for
//! the user, and the models' quota. Internal and unversioned (see
//! `shared/antigravity-ls.md`): every field is optional, and the DOM stays the source
//! angrav falls back on.
//!
//! - [`Ls`]: one LS, its address and token, and how it is reached;
//! - [`model`]: conversations, steps, approvals and quota, read leniently;
//! - [`find`]: finding the LS of a window when none is named.

pub mod conversation;
pub mod find;
pub mod model;

use std::fmt;
use std::time::Duration;

use serde_json::Value;

use crate::Error;
use crate::panel::Deadline;

/// Connect-RPC's path prefix for the LS's methods.
const SERVICE: &str = "/exa.language_server_pb.LanguageServerService/";

/// The header the LS checks its token in.
pub const TOKEN_HEADER: &str = "X-Codeium-Csrf-Token";

/// A reply larger than this is refused (a conversation's steps are the largest).
const MAX_REPLY: u64 = 64 * 1024 * 1024;

/// How an LS was found: what `doctor` and the messages name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// `--ls` or `ANGRAV_LS` (the flag's or variable's name).
    Given(&'static str),
    /// The panel's own requests, seen over CDP in this window.
    PanelRequest,
    /// `window.__APP_CONFIG__` of the 2.x desktop app.
    AppConfig,
    /// A local `language_server` process's arguments (its pid).
    Process(u32),
}

impl fmt::Display for Found {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Found::Given(by) => write!(f, "given by {by}"),
            Found::PanelRequest => write!(f, "the panel's own requests"),
            Found::AppConfig => write!(f, "window.__APP_CONFIG__"),
            Found::Process(pid) => write!(f, "language_server process {pid}"),
        }
    }
}

impl Found {
    /// A stable name for `--json`.
    pub fn name(&self) -> &'static str {
        match self {
            Found::Given(_) => "given",
            Found::PanelRequest => "panel_request",
            Found::AppConfig => "app_config",
            Found::Process(_) => "process",
        }
    }
}

/// One language server: where it listens, its token, and how it was found.
#[derive(Debug, Clone)]
pub struct Ls {
    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub url: String,
    pub token: String,
    pub found: Found,
    /// The WebSocket URL of the window whose page calls it, for an `https://` LS
    /// (its certificate is its own: the page trusts it, angrav cannot).
    pub page: Option<String>,
    /// One HTTP agent for all its calls (its connections kept for the next); each
    /// request sets its own timeout.
    agent: ureq::Agent,
}

/// The two kinds of Connect request: a unary call, whose whole reply must come by
/// the deadline; a server stream, which must only open by it.
#[derive(Clone, Copy)]
enum Rpc {
    Unary,
    Stream,
}

/// Everything that can go wrong talking to an LS, each saying what to do next.
#[derive(Debug)]
pub enum LsError {
    /// `--ls` is not an `http://` or `https://` URL.
    BadUrl(String),
    /// An `https://` LS, which angrav reaches only through a window's page.
    NeedsPage(String),
    /// Nothing answers at the address.
    Unreachable { url: String, detail: String },
    /// The LS refused the token (HTTP 401 or 403).
    Token { url: String, status: u16 },
    /// The LS does not know the method (this build has none by that name).
    Unsupported { url: String, method: String },
    /// Any other HTTP error, with the LS's own words.
    Http {
        url: String,
        method: String,
        status: u16,
        body: String,
    },
    /// The reply is not the JSON of a Connect reply.
    Garbage {
        url: String,
        method: String,
        detail: String,
    },
    /// What asked for it is not in the LS (a conversation id, a step).
    NotFound(String),
    /// No LS was named and none was found (where angrav looked).
    NoneFound(String),
}

impl fmt::Display for LsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LsError::BadUrl(u) => write!(
                f,
                "--ls '{u}' is not a language server URL: give http://HOST:PORT (or https://)"
            ),
            LsError::NeedsPage(u) => write!(
                f,
                "the language server at {u} speaks HTTPS with its own certificate: angrav reaches it only through an Antigravity window's page; open a window (and give --cdp) or give its http:// address"
            ),
            LsError::Unreachable { url, detail } => write!(
                f,
                "no language server answers at {url} ({detail}); check --ls and that Antigravity runs"
            ),
            LsError::Token { url, status } => write!(
                f,
                "the language server at {url} refused the token (HTTP {status}); give the one it was started with (--ls-token or ANGRAV_LS_TOKEN: its --csrf_token)"
            ),
            LsError::Unsupported { url, method } => write!(
                f,
                "the language server at {url} has no method {method}: this Antigravity build differs from what angrav knows; use the window (without --conversation)"
            ),
            LsError::Http {
                url,
                method,
                status,
                body,
            } => write!(
                f,
                "the language server at {url} answered {method} with HTTP {status}: {}",
                body.chars().take(200).collect::<String>()
            ),
            LsError::Garbage {
                url,
                method,
                detail,
            } => write!(
                f,
                "the language server at {url} answered {method} with something that is not its JSON ({detail}); is --ls the language server's port?"
            ),
            LsError::NotFound(what) => write!(f, "{what}"),
            LsError::NoneFound(why) => write!(
                f,
                "no language server found ({why}); give one with --ls URL --ls-token TOKEN"
            ),
        }
    }
}

impl std::error::Error for LsError {}

impl Ls {
    /// The LS at `url` (`http://HOST:PORT` or `https://`), found as `found`.
    pub fn new(url: String, token: String, found: Found, page: Option<String>) -> Ls {
        let agent = ureq::Agent::config_builder()
            .proxy(None)
            .http_status_as_error(false)
            .build()
            .into();
        Ls {
            url,
            token,
            found,
            page,
            agent,
        }
    }

    /// An LS named by the user: `http://HOST:PORT` (a path after it is ignored).
    pub fn given(url: &str, token: &str, by: &'static str) -> Result<Ls, LsError> {
        let url = url.trim().trim_end_matches('/');
        let rest = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("https://"))
            .filter(|r| !r.is_empty())
            .ok_or_else(|| LsError::BadUrl(url.to_string()))?;
        let host = rest.split('/').next().unwrap_or(rest);
        let scheme = if url.starts_with("https") {
            "https"
        } else {
            "http"
        };
        Ok(Ls::new(
            format!("{scheme}://{host}"),
            token.to_string(),
            Found::Given(by),
            None,
        ))
    }

    /// Calls `method` with `body` and returns its JSON reply; an LS that has not
    /// answered by `deadline` is a timeout naming it.
    pub fn call(&self, method: &str, body: &Value, deadline: Deadline) -> Result<Value, Error> {
        if self.url.starts_with("https://") {
            let Some(ws) = &self.page else {
                return Err(LsError::NeedsPage(self.url.clone()).into());
            };
            return self.call_in_page(ws, method, body, deadline);
        }
        let mut reply = self.post(Rpc::Unary, method, body, deadline)?;
        let status = reply.status().as_u16();
        let text = reply
            .body_mut()
            .with_config()
            .limit(MAX_REPLY)
            .read_to_string();
        let text = match text {
            Ok(t) => t,
            Err(ureq::Error::Timeout(_)) => return Err(self.missed(Rpc::Unary, method, deadline)),
            Err(e) => return Err(self.garbage(method, e.to_string()).into()),
        };
        Ok(self.reply(method, status, &text)?)
    }

    /// POSTs `body` to `method` with the LS's headers, as `rpc` is sent; an LS that
    /// has not answered by `deadline` is a timeout naming it.
    fn post(
        &self,
        rpc: Rpc,
        method: &str,
        body: &Value,
        deadline: Deadline,
    ) -> Result<ureq::http::Response<ureq::Body>, Error> {
        let left = Some(deadline.left().max(Duration::from_millis(1)));
        let request = self
            .agent
            .post(&format!("{}{SERVICE}{method}", self.url))
            .header("Connect-Protocol-Version", "1")
            .header(TOKEN_HEADER, &self.token)
            .config();
        let (request, content_type, body) = match rpc {
            Rpc::Unary => (
                request.timeout_global(left),
                "application/json",
                body.to_string().into_bytes(),
            ),
            Rpc::Stream => (
                request.timeout_recv_response(left),
                "application/connect+json",
                envelope(0, body),
            ),
        };
        let reply = request
            .build()
            .header("Content-Type", content_type)
            .send(body);
        match reply {
            Ok(r) => Ok(r),
            Err(ureq::Error::Timeout(_)) => Err(self.missed(rpc, method, deadline)),
            Err(e) => Err(LsError::Unreachable {
                url: self.url.clone(),
                detail: e.to_string(),
            }
            .into()),
        }
    }

    /// The timeout of an `rpc` that missed `deadline`.
    fn missed(&self, rpc: Rpc, method: &str, deadline: Deadline) -> Error {
        let what = match rpc {
            Rpc::Unary => "answer",
            Rpc::Stream => "open",
        };
        deadline.missed(format!(
            "the language server at {} to {what} {method}",
            self.url
        ))
    }

    /// Opens a stream of the LS (Connect server streaming, JSON envelopes): each
    /// message on the receiver as it comes; the receiver is disconnected when the
    /// stream ends or breaks. The LS must answer by `opened`; after that the stream
    /// has no deadline. An LS without the method is [`LsError::Unsupported`]; one
    /// reached through a page (`https://`) is refused ([`LsError::NeedsPage`]): the
    /// page's `fetch` gives no stream to angrav.
    pub fn stream(
        &self,
        method: &str,
        body: &Value,
        opened: Deadline,
    ) -> Result<crossbeam_channel::Receiver<Value>, Error> {
        if self.url.starts_with("https://") {
            return Err(LsError::NeedsPage(self.url.clone()).into());
        }
        let reply = self.post(Rpc::Stream, method, body, opened)?;
        let status = reply.status().as_u16();
        if status != 200 {
            let text = reply.into_body().read_to_string().unwrap_or_default();
            self.reply(method, status, &text)?;
            return Err(self.garbage(method, format!("HTTP {status}")).into());
        }
        let (tx, rx) = crossbeam_channel::unbounded();
        let mut reader = reply.into_body().into_reader();
        std::thread::spawn(move || {
            use std::io::Read;
            let mut head = [0u8; 5];
            while reader.read_exact(&mut head).is_ok() {
                let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as u64;
                if len > MAX_REPLY {
                    return;
                }
                let mut message = vec![0u8; len as usize];
                if reader.read_exact(&mut message).is_err() {
                    return;
                }
                // Flag 2: the end of the stream (its trailers, maybe an error).
                if head[0] & 2 != 0 {
                    return;
                }
                let Ok(v) = serde_json::from_slice::<Value>(&message) else {
                    return;
                };
                if tx.send(v).is_err() {
                    return;
                }
            }
        });
        Ok(rx)
    }

    /// Calls `method` from inside the page at `ws` (`fetch`, as the panel itself
    /// calls it): how an `https://` LS is reached, whose certificate only the page
    /// trusts. Any LS the page may call can be reached so.
    pub fn call_in_page(
        &self,
        ws: &str,
        method: &str,
        body: &Value,
        deadline: Deadline,
    ) -> Result<Value, Error> {
        let endpoint = format!("{}{SERVICE}{method}", self.url);
        let (status, text) = through_page(ws, &endpoint, &self.token, body, deadline)?;
        if status == 0 {
            return Err(LsError::Unreachable {
                url: self.url.clone(),
                detail: format!("the page's fetch failed: {text}"),
            }
            .into());
        }
        Ok(self.reply(method, status, &text)?)
    }

    /// A reply's status and body as the method's JSON, or the error they say.
    fn reply(&self, method: &str, status: u16, text: &str) -> Result<Value, LsError> {
        match status {
            200 => {}
            401 | 403 => {
                return Err(LsError::Token {
                    url: self.url.clone(),
                    status,
                });
            }
            404 => {
                return Err(LsError::Unsupported {
                    url: self.url.clone(),
                    method: method.to_string(),
                });
            }
            _ => {
                // Connect's error body: {"code": "unauthenticated", "message": ...}.
                let code = serde_json::from_str::<Value>(text)
                    .ok()
                    .and_then(|v| v.get("code").and_then(Value::as_str).map(str::to_string));
                if matches!(
                    code.as_deref(),
                    Some("unauthenticated" | "permission_denied")
                ) {
                    return Err(LsError::Token {
                        url: self.url.clone(),
                        status,
                    });
                }
                if code.as_deref() == Some("unimplemented") {
                    return Err(LsError::Unsupported {
                        url: self.url.clone(),
                        method: method.to_string(),
                    });
                }
                return Err(LsError::Http {
                    url: self.url.clone(),
                    method: method.to_string(),
                    status,
                    body: text.trim().to_string(),
                });
            }
        }
        match serde_json::from_str::<Value>(text) {
            Ok(v) if v.is_object() => Ok(v),
            Ok(_) => Err(self.garbage(method, "not a JSON object".into())),
            Err(e) => Err(self.garbage(method, e.to_string())),
        }
    }

    fn garbage(&self, method: &str, detail: String) -> LsError {
        LsError::Garbage {
            url: self.url.clone(),
            method: method.to_string(),
            detail,
        }
    }
}

/// A Connect streaming envelope: flags (2: the end of the stream), the length
/// (big-endian), the JSON.
pub fn envelope(flags: u8, body: &Value) -> Vec<u8> {
    let json = body.to_string().into_bytes();
    let mut out = vec![flags];
    out.extend((json.len() as u32).to_be_bytes());
    out.extend(json);
    out
}

/// Calls the LS from inside a window's page (`fetch`, as the panel does): the
/// request's URL, token and body reach the page as JSON arguments. Status 0: the
/// fetch failed (the text says why).
fn through_page(
    ws: &str,
    url: &str,
    token: &str,
    body: &Value,
    deadline: Deadline,
) -> Result<(u16, String), Error> {
    use cdp::methods::runtime::{CallArgument, CallFunctionOn, Evaluate};
    const FETCH: &str = "async function (r) {\n  try {\n    const reply = await fetch(r.url, { method: 'POST', body: r.body, headers: {\n      'Content-Type': 'application/json', 'Connect-Protocol-Version': '1', [r.header]: r.token } });\n    return { status: reply.status, text: await reply.text() };\n  } catch (e) {\n    return { status: 0, text: String(e) };\n  }\n}";
    let mut conn = cdp::Connection::open(ws)?;
    let global = conn.call(
        &Evaluate {
            expression: "globalThis",
            ..Default::default()
        },
        deadline.left(),
    )?;
    let request = serde_json::json!({
        "url": url, "token": token, "header": TOKEN_HEADER, "body": body.to_string(),
    });
    let call = CallFunctionOn {
        function_declaration: FETCH,
        object_id: global.result.object_id.as_deref(),
        arguments: vec![CallArgument { value: &request }],
        return_by_value: true,
        await_promise: true,
        ..Default::default()
    };
    let reply = match conn.call(&call, deadline.left()) {
        Err(cdp::Error::Timeout { .. }) => {
            return Err(deadline.missed(format!("the language server at {url} to answer")));
        }
        other => other?.into_value()?,
    };
    let status = reply["status"].as_u64().unwrap_or(0) as u16;
    Ok((
        status,
        reply["text"].as_str().unwrap_or_default().to_string(),
    ))
}
