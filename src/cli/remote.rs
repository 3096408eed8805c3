//! `--server URL` (or `ANGRAV_SERVER`): the commands `angrav serve` answers are asked
//! of it over its WebSocket instead of attaching to the pages. serve's results are
//! the types the commands print, so they are printed by the same functions: the
//! output and the exit codes are those of the command run here.

use std::net::TcpStream;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tungstenite::HandshakeError;
use tungstenite::client::IntoClientRequest;
use tungstenite::{Message as Frame, WebSocket};

use super::approve::print_pressed;
use super::output::{print_answer, print_list, print_status};
use super::single::{
    one_session, print_code, print_history, print_new, print_prompted, print_waited, read_input,
};
use super::wait::{print_report, report_end, run_tasks};
use super::{Args, Command, help};
use crate::approve::Pressed;
use crate::panel::{CodeBlock, Message};
use crate::registry::Listed;
use crate::results::{NewConversation, Prompted, SessionStatus, WaitResult};
use crate::state::StateDir;
use crate::waiter::Report;
use crate::{Error, exit};

/// Flags that ask for work serve does not do.
const NOT_SERVED: &[&str] = &[
    "--cdp",
    "--selectors",
    "--group",
    "--policy",
    "--when-idle",
    "--start-within",
    "--stall-after",
];

/// How much longer than the command's `--timeout` serve may take to answer.
const SLACK: Duration = Duration::from_secs(30);

/// The serve to ask, when the command is one serve runs (the command table gives
/// those `--server`) and one is named.
pub(super) fn server(a: &Args) -> Option<String> {
    let takes = help::COMMANDS
        .iter()
        .any(|c| c.words == a.words && c.takes("--server"));
    if !takes {
        return None;
    }
    a.server.clone().or_else(|| {
        std::env::var("ANGRAV_SERVER")
            .ok()
            .filter(|s| !s.trim().is_empty())
    })
}

/// Runs the command through the serve at `url`.
pub(super) fn run(a: &Args, url: &str) -> Result<u8, Error> {
    let misused = |message: String| Error::Misused {
        command: a.words,
        message,
    };
    let pressing = matches!(
        a.command,
        Command::Approve(_) | Command::Deny | Command::Cancel
    );
    let refused = a.given.iter().find(|f| {
        NOT_SERVED.contains(f)
            || (**f == "--all" && a.command == Command::SessionsList)
            || (**f == "--wait" && pressing)
    });
    if let Some(flag) = refused {
        return Err(misused(format!(
            "{flag} is not served by angrav serve; leave out --server to use it"
        )));
    }
    // Read the input before asking serve: a bad -f fails fast.
    let text = match &a.command {
        Command::Prompt(t) | Command::SessionsFanout(t) => {
            Some(read_input(t.as_deref(), a.file.as_deref())?)
        }
        _ => None,
    };
    let tasks = match a.command {
        Command::SessionsRun => run_tasks(a)?,
        _ => Vec::new(),
    };
    let one = match a.command {
        Command::SessionsList
        | Command::SessionsWait
        | Command::SessionsFanout(_)
        | Command::SessionsRun => None,
        _ => one_session(a)?,
    };
    let mut serve = Remote::connect(url, &token(a)?, a.wait.timeout + SLACK)?;
    let with = |params: Value| timed(params, a);
    let json = a.json;
    match &a.command {
        Command::SessionsList => {
            let listed: Vec<Listed> = serve.call("sessions.list", json!({}))?;
            print_list(&listed, &[], json);
            Ok(exit::OK)
        }
        Command::Status => {
            let s: SessionStatus = serve.call("status", json!({ "session": one }))?;
            print_status(&s.session, &s.snapshot, json);
            Ok(exit::OK)
        }
        Command::Prompt(_) => {
            let params = with(json!({
                "session": one, "text": text, "wait": a.wait_answer,
                "replace_draft": a.replace_draft,
            }));
            if !a.wait_answer {
                let sent: Prompted = serve.call("prompt", params)?;
                print_prompted(&sent, a.start_within, json);
                return Ok(exit::OK);
            }
            let result: WaitResult = serve.call("prompt", params)?;
            print_waited(&result, a)
        }
        Command::Wait => {
            // The one session as the command names it (or the only one), then its wait.
            let s: SessionStatus = serve.call("status", json!({ "session": one }))?;
            let params = with(json!({ "sessions": [s.session.target_id] }));
            let report: Report = serve.call("wait", params)?;
            let outcome = report.sessions.into_iter().next().ok_or_else(|| {
                Error::Failed(format!("angrav serve did not wait for {}", s.session.id))
            })?;
            let result = WaitResult {
                timed_out: report.timed_out,
                outcome,
            };
            print_waited(&result, a)
        }
        Command::SessionsWait | Command::SessionsFanout(_) | Command::SessionsRun => {
            let (method, params) = match &a.command {
                Command::SessionsWait => ("wait", json!({ "sessions": a.sessions, "any": a.any })),
                Command::SessionsFanout(_) => {
                    ("fanout", json!({ "sessions": a.sessions, "text": text }))
                }
                _ => {
                    let tasks: Vec<Value> = tasks
                        .iter()
                        .map(|(session, prompt)| json!({ "session": session, "prompt": prompt }))
                        .collect();
                    ("run", json!({ "tasks": tasks }))
                }
            };
            let mut params = with(params);
            params["extract"] = json!(a.extract);
            let report: Report = serve.call(method, params)?;
            print_report(&report, json);
            Ok(report_end(&report, a.wait.timeout))
        }
        Command::OutputLast => {
            let answer: Message = serve.call("output", json!({ "session": one }))?;
            print_answer(&answer, json);
            Ok(exit::OK)
        }
        Command::OutputCode => {
            let params = json!({ "session": one, "code": true, "lang": a.lang });
            let blocks: Vec<CodeBlock> = serve.call("output", params)?;
            print_code(&blocks, json);
            Ok(exit::OK)
        }
        Command::History => {
            let messages: Vec<Message> = serve.call("history", json!({ "session": one }))?;
            print_history(&messages, json);
            Ok(exit::OK)
        }
        Command::New => {
            let renewed: NewConversation = serve.call("new", json!({ "session": one }))?;
            print_new(&renewed, json);
            Ok(exit::OK)
        }
        Command::Approve(_) | Command::Deny | Command::Cancel => {
            let (method, choice) = match &a.command {
                Command::Approve(choice) => ("approve", choice.as_deref()),
                Command::Deny => ("deny", None),
                _ => ("cancel", None),
            };
            let params = json!({ "session": one, "choice": choice });
            let done: Pressed = serve.call(method, params)?;
            print_pressed(&done, json);
            Ok(exit::OK)
        }
        _ => unreachable!("not a command serve runs"),
    }
}

/// `params` with the command's `--timeout` and `--settle`.
fn timed(mut params: Value, a: &Args) -> Value {
    params["timeout_ms"] = json!(a.wait.timeout.as_millis() as u64);
    params["settle_ms"] = json!(a.wait.settle.as_millis() as u64);
    params
}

/// serve's token: `ANGRAV_TOKEN`, else the file serve keeps in the state directory.
fn token(a: &Args) -> Result<String, Error> {
    if let Ok(t) = std::env::var("ANGRAV_TOKEN")
        && !t.trim().is_empty()
    {
        return Ok(t.trim().to_string());
    }
    if a.no_state {
        return Err(Error::Usage(
            "with --no-state, give angrav serve's token in ANGRAV_TOKEN".into(),
        ));
    }
    let path = StateDir::locate()?.file(crate::serve::TOKEN_FILE);
    match std::fs::read_to_string(&path) {
        Ok(t) if !t.trim().is_empty() => Ok(t.trim().to_string()),
        Ok(_) => Err(no_token(&path.display().to_string(), "it is empty")),
        Err(e) => Err(no_token(&path.display().to_string(), &e.to_string())),
    }
}

fn no_token(path: &str, why: &str) -> Error {
    Error::Failed(format!(
        "no token for angrav serve: cannot read {path} ({why}); is serve running with this \
         state directory? Else give its token in ANGRAV_TOKEN"
    ))
}

/// `HOST:PORT` of `http://HOST:PORT`, `ws://HOST:PORT/ws`, `HOST:PORT` or `:PORT`.
fn address(url: &str) -> Result<String, Error> {
    let bad = |why: &str| Error::Usage(format!("--server {url}: {why}"));
    let u = url.trim();
    if u.starts_with("https://") || u.starts_with("wss://") {
        return Err(bad("angrav serve speaks plain http:// only"));
    }
    let rest = u
        .strip_prefix("http://")
        .or_else(|| u.strip_prefix("ws://"))
        .unwrap_or(u);
    let hostport = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let Some((host, port)) = hostport.rsplit_once(':') else {
        return Err(bad("give its address and port, e.g. http://127.0.0.1:7878"));
    };
    if port.parse::<u16>().is_err() {
        return Err(bad("the port is not a number"));
    }
    let host = if host.is_empty() { "127.0.0.1" } else { host };
    Ok(format!("{host}:{port}"))
}

/// A connection to serve's WebSocket API, one request at a time.
struct Remote {
    ws: WebSocket<TcpStream>,
    url: String,
    patience: Duration,
    next: u64,
}

impl Remote {
    /// Connects with the token; every answer is awaited at most `patience`.
    fn connect(url: &str, token: &str, patience: Duration) -> Result<Remote, Error> {
        let hostport = address(url)?;
        let unreachable = |why: String| {
            Error::Failed(format!(
                "cannot reach angrav serve at {url}: {why}; is it running?"
            ))
        };
        let stream = TcpStream::connect(&hostport).map_err(|e| unreachable(e.to_string()))?;
        stream
            .set_read_timeout(Some(patience))
            .map_err(|e| unreachable(e.to_string()))?;
        let _ = stream.set_nodelay(true);
        let mut request = format!("ws://{hostport}/ws")
            .into_client_request()
            .map_err(|e| Error::Usage(format!("--server {url}: {e}")))?;
        let bearer = format!("Bearer {token}")
            .parse()
            .map_err(|_| no_token("the token", "it is not one line of text"))?;
        request.headers_mut().insert("Authorization", bearer);
        let (ws, _) = tungstenite::client(request, stream).map_err(|e| match e {
            HandshakeError::Failure(tungstenite::Error::Http(r)) if r.status() == 401 => {
                Error::Failed(format!(
                    "angrav serve at {url} refused the token: serve makes a new one at each start \
                 (serve.token in its state directory, or ANGRAV_TOKEN)"
                ))
            }
            e => unreachable(e.to_string()),
        })?;
        Ok(Remote {
            ws,
            url: url.to_string(),
            patience,
            next: 0,
        })
    }

    /// Asks `method`; its result read as `T`, or serve's error as the command's own.
    fn call<T: DeserializeOwned>(&mut self, method: &str, params: Value) -> Result<T, Error> {
        self.next += 1;
        let id = self.next;
        let request = json!({ "id": id, "method": method, "params": params });
        self.ws
            .send(Frame::text(request.to_string()))
            .map_err(|e| self.lost(e))?;
        loop {
            let text = match self.ws.read().map_err(|e| self.lost(e))? {
                Frame::Text(t) => t,
                Frame::Close(c) => {
                    let why = c.map(|c| c.reason.to_string()).unwrap_or_default();
                    return Err(Error::Failed(format!(
                        "angrav serve at {} closed the connection {why}",
                        self.url
                    )));
                }
                _ => continue,
            };
            let reply: Value =
                serde_json::from_str(text.as_str()).map_err(|e| self.garbled(&e.to_string()))?;
            if reply["id"] != id {
                continue;
            }
            if let Some(e) = reply.get("error") {
                let code = e["code"].as_str().unwrap_or("failed");
                let message = e["message"].as_str().unwrap_or_default().to_string();
                return Err(match code {
                    "usage" | "bad_request" => Error::Usage(message),
                    code => Error::served(code, message),
                });
            }
            return serde_json::from_value(reply["result"].clone())
                .map_err(|e| self.garbled(&format!("{method}: {e}")));
        }
    }

    fn lost(&self, e: tungstenite::Error) -> Error {
        let why = match e {
            tungstenite::Error::Io(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                format!("no answer within {}", crate::show::duration(self.patience))
            }
            e => e.to_string(),
        };
        Error::Failed(format!("angrav serve at {}: {why}", self.url))
    }

    fn garbled(&self, why: &str) -> Error {
        Error::Failed(format!(
            "angrav serve at {} answered what this angrav does not read ({why}); are both the same version?",
            self.url
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_is_named_as_its_dashboard_url_or_its_address() {
        for given in [
            "http://127.0.0.1:7878",
            "http://127.0.0.1:7878/?token=abc",
            "ws://127.0.0.1:7878/ws",
            "127.0.0.1:7878",
            ":7878",
        ] {
            assert_eq!(address(given).unwrap(), "127.0.0.1:7878", "{given}");
        }
        for bad in ["https://127.0.0.1:7878", "127.0.0.1", "http://host:port"] {
            assert_eq!(address(bad).unwrap_err().exit_code(), exit::USAGE, "{bad}");
        }
    }
}
