//! Finding a window's language server when none is named, in this order:
//!
//! 1. the panel's own requests to it, seen over CDP (`Network.requestWillBeSent`:
//!    the URL, the `X-Codeium-Csrf-Token` header, and the `cascadeId` in the body,
//!    which also says which conversation the window shows); the page is listened to
//!    only when its resource timing shows it calls an LS, so other windows cost one
//!    probe; a panel in an out-of-process iframe is its own target, looked at the
//!    same way after the window's page;
//! 2. `window.__APP_CONFIG__` of the 2.x desktop app (its `csrfToken`; the LS is the
//!    page's own origin, or `languageServerUrl`);
//! 3. a local `language_server` process (Linux: `/proc/*/cmdline`, its
//!    `--csrf_token`, and the ports it listens on), probed with `GetUserStatus`.
//!
//! An LS found with `https://` is called through that window's page (see
//! [`Ls::call`]), as the panel itself calls it.

use std::time::Duration;

use cdp::Connection;
use cdp::methods::Empty;
use cdp::methods::runtime::Evaluate;
use serde::Serialize;
use serde_json::Value;

use super::{Found, Ls, LsError, SERVICE, TOKEN_HEADER};
use crate::panel::Deadline;
use crate::sessions::Session;

const PROBE: &str = include_str!("../js/ls.js");

/// How long a window that calls an LS is listened to for one of its requests.
pub const LISTEN_FOR: Duration = Duration::from_millis(2000);

/// A window's LS, and the conversation the window shows when its requests said.
#[derive(Debug, Clone)]
pub struct WindowLs {
    pub ls: Ls,
    pub conversation: Option<String>,
}

#[derive(Serialize)]
struct NetworkEnable {}
impl cdp::Command for NetworkEnable {
    const METHOD: &'static str = "Network.enable";
    type Response = Empty;
}

#[derive(Serialize)]
struct NetworkDisable {}
impl cdp::Command for NetworkDisable {
    const METHOD: &'static str = "Network.disable";
    type Response = Empty;
}

/// Each window's LS, or why none was found, looked for in parallel.
pub fn for_windows(
    sessions: &[Session],
    deadline: Deadline,
) -> Vec<(Session, Result<WindowLs, String>)> {
    let found = crate::parallel::each(sessions, |session| window(session, deadline));
    // The process is looked for once, for every window that needs it.
    let mut process: Option<Result<Ls, String>> = None;
    sessions
        .iter()
        .cloned()
        .zip(found)
        .map(|(session, f)| {
            let result = match f {
                Ok(Some(w)) => Ok(w),
                Ok(None) => {
                    let p = process.get_or_insert_with(|| from_process(deadline));
                    p.clone()
                        .map(|ls| WindowLs {
                            ls,
                            conversation: None,
                        })
                        .map_err(|why| {
                            format!("the page neither calls an LS nor has __APP_CONFIG__; {why}")
                        })
                }
                Err(why) => Err(why),
            };
            (session, result)
        })
        .collect()
}

/// The LS of the first window that has one, else why none was found (each window's
/// reason).
pub fn first(sessions: &[Session], deadline: Deadline) -> Result<Ls, LsError> {
    let mut why = Vec::new();
    for (session, f) in for_windows(sessions, deadline) {
        match f {
            Ok(w) => return Ok(w.ls),
            Err(e) => why.push(format!("{}: {e}", session.id)),
        }
    }
    Err(LsError::NoneFound(if why.is_empty() {
        "no window to look in".into()
    } else {
        why.join("; ")
    }))
}

/// What a window shows of its LS: its page, else an out-of-process panel iframe
/// (a target of its own, whose requests and globals the window's page does not
/// see); `Ok(None)` when nothing.
fn window(session: &Session, deadline: Deadline) -> Result<Option<WindowLs>, String> {
    if let Some(found) = page(session.window.ws_url.clone(), deadline)? {
        return Ok(Some(found));
    }
    for ws in session.window.frame_targets(&[]) {
        if let Ok(Some(found)) = page(ws, deadline) {
            return Ok(Some(found));
        }
    }
    Ok(None)
}

/// What one page (a window's, or a panel iframe's) shows of its LS: the calls it
/// makes (then calls through it), or its `__APP_CONFIG__`; `Ok(None)` when nothing.
fn page(ws: String, deadline: Deadline) -> Result<Option<WindowLs>, String> {
    let mut conn = Connection::open(&ws).map_err(|e| e.to_string())?;
    let call = Evaluate {
        expression: PROBE,
        return_by_value: true,
        ..Default::default()
    };
    let probe = conn
        .call(&call, deadline.left())
        .and_then(|r| r.into_value())
        .map_err(|e| format!("the page did not answer: {e}"))?;
    let origin = probe["origin"].as_str().unwrap_or_default().to_string();
    let calls = probe["calls"].as_array().is_some_and(|c| !c.is_empty());
    if calls && let Some((url, token, conversation)) = listen(&mut conn, deadline) {
        return Ok(Some(WindowLs {
            ls: Ls::new(url, token, Found::PanelRequest, Some(ws)),
            conversation,
        }));
    }
    let config = &probe["config"];
    if let Some(token) = config["csrfToken"].as_str().filter(|t| !t.is_empty()) {
        let url = config["languageServerUrl"]
            .as_str()
            .map_or(origin, str::to_string);
        return Ok(Some(WindowLs {
            ls: Ls::new(
                url.trim_end_matches('/').to_string(),
                token.to_string(),
                Found::AppConfig,
                Some(ws),
            ),
            conversation: None,
        }));
    }
    Ok(None)
}

/// Listens to the page's requests until one to the LS carries the token and a
/// conversation id, or [`LISTEN_FOR`] has passed: the LS's origin, the token, and
/// the conversation, when seen.
fn listen(conn: &mut Connection, deadline: Deadline) -> Option<(String, String, Option<String>)> {
    let until = deadline.earliest(Deadline::within(LISTEN_FOR));
    conn.call(&NetworkEnable {}, until.left()).ok()?;
    let mut seen: Option<(String, String)> = None;
    let mut conversation = None;
    while let Ok(Some(event)) = conn.next_event(Some(until.at())) {
        if event.method != "Network.requestWillBeSent" {
            continue;
        }
        let Ok(p) = event.decode::<Value>() else {
            continue;
        };
        let request = &p["request"];
        let url = request["url"].as_str().unwrap_or_default();
        let Some(at) = url.find(SERVICE) else {
            continue;
        };
        let token = request["headers"].as_object().and_then(|h| {
            h.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(TOKEN_HEADER))
                .and_then(|(_, v)| v.as_str())
        });
        if let Some(t) = token {
            seen = Some((url[..at].to_string(), t.to_string()));
        }
        let body = request["postData"]
            .as_str()
            .and_then(|b| serde_json::from_str::<Value>(b).ok());
        if let Some(c) = body.as_ref().and_then(|b| b["cascadeId"].as_str()) {
            conversation = Some(c.to_string());
        }
        if seen.is_some() && conversation.is_some() {
            break;
        }
    }
    let _ = conn.call(&NetworkDisable {}, Duration::from_millis(500));
    seen.map(|(url, token)| (url, token, conversation))
}

/// A local `language_server` process's LS: its `--csrf_token`, and the first of the
/// ports it listens on that answers `GetUserStatus` over HTTP.
pub fn from_process(deadline: Deadline) -> Result<Ls, String> {
    let processes = processes();
    if processes.is_empty() {
        return Err("no language_server process runs here".into());
    }
    let mut tried = Vec::new();
    for p in processes {
        let Some(token) = p.token.clone() else {
            tried.push(format!("process {} has no --csrf_token", p.pid));
            continue;
        };
        for port in listening_ports(p.pid) {
            let ls = Ls::new(
                format!("http://127.0.0.1:{port}"),
                token.clone(),
                Found::Process(p.pid),
                None,
            );
            let probe = deadline.earliest(Deadline::within(Duration::from_secs(1)));
            if ls
                .call("GetUserStatus", &serde_json::json!({}), probe)
                .is_ok()
            {
                return Ok(ls);
            }
            tried.push(format!("process {} port {port}", p.pid));
        }
    }
    Err(format!(
        "no language_server process answered over HTTP (tried: {})",
        tried.join(", ")
    ))
}

/// A `language_server` process and what its arguments say.
#[derive(Debug, PartialEq, Eq)]
pub struct Process {
    pub pid: u32,
    pub token: Option<String>,
    pub extension_server_port: Option<u16>,
}

/// Every process whose program's name starts with `language_server` (Linux).
pub fn processes() -> Vec<Process> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| {
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            let raw = std::fs::read(e.path().join("cmdline")).ok()?;
            parse_cmdline(pid, &raw)
        })
        .collect()
}

/// A process from its NUL-separated command line, when it is a language server.
pub fn parse_cmdline(pid: u32, raw: &[u8]) -> Option<Process> {
    let args: Vec<String> = raw
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let program = args.first()?.rsplit('/').next()?;
    if !program.starts_with("language_server") {
        return None;
    }
    let value = |name: &str| {
        let eq = format!("{name}=");
        args.iter().enumerate().find_map(|(i, a)| {
            if a == name {
                args.get(i + 1).cloned()
            } else {
                a.strip_prefix(&eq).map(str::to_string)
            }
        })
    };
    Some(Process {
        pid,
        token: value("--csrf_token"),
        extension_server_port: value("--extension_server_port").and_then(|p| p.parse().ok()),
    })
}

/// The TCP ports a process listens on: its socket inodes matched against
/// `/proc/net/tcp` and `tcp6` (the LS may bind `::1` only).
fn listening_ports(pid: u32) -> Vec<u16> {
    let inodes: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.filter_map(Result::ok)
                .filter_map(|e| {
                    let link = std::fs::read_link(e.path()).ok()?;
                    let l = link.to_str()?;
                    Some(l.strip_prefix("socket:[")?.strip_suffix(']')?.to_string())
                })
                .collect()
        })
        .unwrap_or_default();
    let mut ports = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            // local_address, state (0A: LISTEN), inode.
            if f.len() > 9 && f[3] == "0A" && inodes.iter().any(|i| i == f[9]) {
                let port = f[1]
                    .rsplit(':')
                    .next()
                    .and_then(|p| u16::from_str_radix(p, 16).ok());
                if let Some(p) = port.filter(|p| !ports.contains(p)) {
                    ports.push(p);
                }
            }
        }
    }
    ports
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_language_server_command_line() {
        let raw = b"/opt/Antigravity/bin/language_server_linux_x64\0--csrf_token\0abc-123\0--extension_server_port=41234\0--workspace_id\0w\0";
        let p = parse_cmdline(7, raw).unwrap();
        assert_eq!(p.token.as_deref(), Some("abc-123"));
        assert_eq!(p.extension_server_port, Some(41234));
        assert!(parse_cmdline(8, b"/usr/bin/node\0language_server\0").is_none());
    }
}
