//! A client of `angrav serve`: where a serve is (`[NAME=]URL[?token=TOKEN]`) and one
//! WebSocket connection to it, asking one request at a time or reading its events.
//! The CLI's `--server` and a hub's `--upstream` both use it.

use std::io::{ErrorKind, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tungstenite::protocol::{Role, WebSocketConfig};
use tungstenite::{Message as Frame, WebSocket};

use crate::Error;
use crate::serve::http::read_head;

/// A serve as named on the command line: `[NAME=]URL`, the URL `http://HOST:PORT`,
/// `ws://HOST:PORT/ws`, `HOST:PORT` or `:PORT`, maybe with `?token=TOKEN`.
#[derive(Debug, Clone, PartialEq)]
pub struct Server {
    /// What its sessions' `host` says: NAME, else `HOST:PORT`.
    pub label: String,
    /// `HOST:PORT`, to connect to.
    pub address: String,
    /// The token the URL carries, if it does.
    pub token: Option<String>,
}

impl Server {
    pub fn parse(spec: &str) -> Result<Server, Error> {
        let spec = spec.trim();
        // A name is what precedes `=` when that comes before any `/` or `:`.
        let (name, url) = match spec.split_once('=') {
            Some((n, u)) if !n.is_empty() && !n.contains([':', '/', '?']) => (Some(n), u),
            _ => (None, spec),
        };
        if name.is_some_and(|n| !n.chars().all(|c| c.is_alphanumeric() || "-_.".contains(c))) {
            return Err(Error::Usage(format!(
                "server {spec}: a name is letters, digits, '-', '_' or '.'"
            )));
        }
        let address = address(url)?;
        let token = url
            .split_once('?')
            .map(|(_, q)| q.split('#').next().unwrap_or_default())
            .and_then(|q| q.split('&').find_map(|p| p.strip_prefix("token=")))
            .filter(|t| !t.is_empty())
            .map(String::from);
        Ok(Server {
            label: name.map_or_else(|| address.clone(), String::from),
            address,
            token,
        })
    }

    /// Several: each entry may itself be a comma-separated list. Two with one label
    /// are refused (their sessions could not be told apart).
    pub fn parse_all<'a>(given: impl IntoIterator<Item = &'a str>) -> Result<Vec<Server>, Error> {
        let mut all: Vec<Server> = Vec::new();
        for spec in given
            .into_iter()
            .flat_map(|g| g.split(','))
            .filter(|s| !s.trim().is_empty())
        {
            let s = Server::parse(spec)?;
            if all.iter().any(|o| o.label == s.label) {
                return Err(Error::Usage(format!(
                    "two servers are named {}; name them apart: NAME=URL",
                    s.label
                )));
            }
            all.push(s);
        }
        Ok(all)
    }
}

/// `HOST:PORT` of `http://HOST:PORT`, `ws://HOST:PORT/ws`, `HOST:PORT` or `:PORT`.
fn address(url: &str) -> Result<String, Error> {
    let bad = |why: &str| Error::Usage(format!("server {url}: {why}"));
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

/// How long a followed serve may be quiet before it is pinged, and then how long it
/// may take to answer before it is taken for hung.
pub const QUIET: Duration = Duration::from_secs(3);

/// How long a followed serve may take to answer at all (its upgrade, `subscribe`)
/// before it is taken for hung: as long as a quiet one gets to answer a ping.
pub const HUNG: Duration = Duration::from_secs(2 * QUIET.as_secs());

/// A TCP connection to `hostport` (each of its addresses in turn), each attempt
/// bounded by `within`: an address that drops packets fails here, not after the
/// system's minutes.
fn connect_within(hostport: &str, within: Duration) -> std::io::Result<TcpStream> {
    use std::net::ToSocketAddrs;
    let mut last = None;
    for address in hostport.to_socket_addrs()? {
        match TcpStream::connect_timeout(&address, within) {
            Ok(stream) => return Ok(stream),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        std::io::Error::new(ErrorKind::NotFound, format!("{hostport} has no address"))
    }))
}

/// A connection to a serve's WebSocket API.
pub struct Client {
    ws: WebSocket<TcpStream>,
    label: String,
    patience: Duration,
    next: u64,
    /// Events read while awaiting a reply, for [`Client::message`].
    kept: Vec<Value>,
}

impl Client {
    /// Connects with `token`; every answer is awaited at most `patience`.
    pub fn connect(server: &Server, token: &str, patience: Duration) -> Result<Client, Error> {
        let hostport = &server.address;
        let label = &server.label;
        let unreachable =
            |why: String| Error::Failed(format!("cannot reach angrav serve {label}: {why}"));
        if token.chars().any(|c| c.is_control() && c != '\t') {
            return Err(Error::Usage(format!(
                "the token for {label} is not one line of text"
            )));
        }
        // The connection and the upgrade take a serve no time: one that does not make
        // them within HUNG is hung, whatever the command's own patience.
        let upgrade = patience.min(HUNG);
        let mut stream =
            connect_within(hostport, upgrade).map_err(|e| unreachable(e.to_string()))?;
        let _ = stream.set_nodelay(true);
        // The upgrade, by hand as serve answers it (tungstenite's client handshake
        // detects the CPU's features to parse the answer: on a virtual machine, that
        // costs more than the rest of a call).
        let key = tungstenite::handshake::client::generate_key();
        let request = format!(
            "GET /ws HTTP/1.1\r\nHost: {hostport}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\nAuthorization: Bearer {token}\r\n\r\n"
        );
        stream
            .write_all(request.as_bytes())
            .map_err(|e| unreachable(e.to_string()))?;
        let (head, rest) = match read_head(&mut stream, upgrade) {
            Ok(Some(answer)) => answer,
            Ok(None) => return Err(unreachable("it closed the connection".into())),
            Err(e) if matches!(e.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock) => {
                return Err(unreachable(format!(
                    "it took the connection but did not answer it within {} s (stopped or hung?)",
                    upgrade.as_secs_f64()
                )));
            }
            Err(e) => return Err(unreachable(e.to_string())),
        };
        match head.first.split(' ').nth(1) {
            Some("101") => {}
            Some("401") => {
                return Err(Error::Failed(format!(
                    "angrav serve {label} refused the token: serve makes a new one at each start \
                     (serve.token in its state directory, ANGRAV_TOKEN, or ?token= in the URL)"
                )));
            }
            _ => return Err(unreachable(format!("it answered {}", head.first))),
        }
        let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
        if head.header("Sec-WebSocket-Accept") != Some(accept.as_str()) {
            return Err(unreachable("its WebSocket upgrade is not valid".into()));
        }
        stream
            .set_read_timeout(Some(patience))
            .map_err(|e| unreachable(e.to_string()))?;
        // A small read buffer (it grows for a large answer): tungstenite zeroes all of
        // it before each read.
        let config = WebSocketConfig::default().read_buffer_size(16 << 10);
        let ws = WebSocket::from_partially_read(stream, rest, Role::Client, Some(config));
        Ok(Client {
            ws,
            label: label.clone(),
            patience,
            next: 0,
            kept: Vec::new(),
        })
    }

    /// How long a read may wait from now on.
    pub fn set_patience(&mut self, patience: Option<Duration>) {
        let _ = self.ws.get_ref().set_read_timeout(patience);
        if let Some(p) = patience {
            self.patience = p;
        }
    }

    /// Subscribes: serve's table, then its events are read with [`Client::message`].
    /// A serve that does not answer within [`HUNG`] is hung, as one quiet on events is.
    pub fn subscribe(&mut self) -> Result<Value, Error> {
        self.set_patience(Some(HUNG));
        self.call_value("subscribe", json!({}))
    }

    /// Asks `method`; its result read as `T`, or serve's error as the command's own.
    pub fn call<T: DeserializeOwned>(&mut self, method: &str, params: Value) -> Result<T, Error> {
        let result = self.call_value(method, params)?;
        serde_json::from_value(result).map_err(|e| self.garbled(&format!("{method}: {e}")))
    }

    /// Asks `method`; its result as it came.
    pub fn call_value(&mut self, method: &str, params: Value) -> Result<Value, Error> {
        self.next += 1;
        let id = self.next;
        let request = json!({ "id": id, "method": method, "params": params });
        self.ws
            .send(Frame::text(request.to_string()))
            .map_err(|e| self.lost(e))?;
        loop {
            let reply = self.read()?;
            if reply.get("event").is_some() {
                self.kept.push(reply);
                continue;
            }
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
            return Ok(reply["result"].clone());
        }
    }

    /// The next message serve pushes (an event `{event}`), kept ones first, however
    /// long it takes. A serve quiet for [`QUIET`] is pinged: one that answers nothing,
    /// not even the ping, within [`QUIET`] more is hung (stopped, frozen, or its
    /// machine gone without closing the connection), and an error like a closed one.
    pub fn message(&mut self) -> Result<Value, Error> {
        if !self.kept.is_empty() {
            return Ok(self.kept.remove(0));
        }
        self.set_patience(Some(QUIET));
        let mut pinged = false;
        loop {
            match self.ws.read() {
                Ok(Frame::Text(t)) => {
                    return serde_json::from_str(t.as_str())
                        .map_err(|e| self.garbled(&e.to_string()));
                }
                Ok(Frame::Close(c)) => return Err(self.closed(c)),
                Ok(_) => pinged = false,
                Err(tungstenite::Error::Io(e)) if timed_out(&e) && !pinged => {
                    self.ws
                        .send(Frame::Ping(Default::default()))
                        .map_err(|e| self.lost(e))?;
                    pinged = true;
                }
                Err(tungstenite::Error::Io(e)) if timed_out(&e) => {
                    return Err(Error::Failed(format!(
                        "angrav serve {}: no answer to a ping within {}",
                        self.label,
                        crate::show::duration(QUIET)
                    )));
                }
                Err(e) => return Err(self.lost(e)),
            }
        }
    }

    fn read(&mut self) -> Result<Value, Error> {
        loop {
            let text = match self.ws.read().map_err(|e| self.lost(e))? {
                Frame::Text(t) => t,
                Frame::Close(c) => return Err(self.closed(c)),
                _ => continue,
            };
            return serde_json::from_str(text.as_str()).map_err(|e| self.garbled(&e.to_string()));
        }
    }

    fn closed(&self, frame: Option<tungstenite::protocol::CloseFrame>) -> Error {
        let why = frame.map(|c| c.reason.to_string()).unwrap_or_default();
        Error::Failed(format!(
            "angrav serve {} closed the connection {why}",
            self.label
        ))
    }

    fn lost(&self, e: tungstenite::Error) -> Error {
        let why = match e {
            tungstenite::Error::Io(e) if timed_out(&e) => {
                format!("no answer within {}", crate::show::duration(self.patience))
            }
            e => e.to_string(),
        };
        Error::Failed(format!("angrav serve {}: {why}", self.label))
    }

    fn garbled(&self, why: &str) -> Error {
        Error::Failed(format!(
            "angrav serve {} answered what this angrav does not read ({why}); are both the same version?",
            self.label
        ))
    }
}

/// A read that ended because its timeout passed.
fn timed_out(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

/// Marks every session object in `v` (an object with `target_id` and `endpoint`) as
/// one of `host`, unless it already names one (a hub's upstream session).
pub fn mark_host(v: &mut Value, host: &str) {
    match v {
        Value::Object(o) => {
            if o.contains_key("target_id") && o.contains_key("endpoint") {
                o.entry("host")
                    .and_modify(|h| {
                        if h.is_null() {
                            *h = json!(host);
                        }
                    })
                    .or_insert_with(|| json!(host));
                return;
            }
            o.values_mut().for_each(|x| mark_host(x, host));
        }
        Value::Array(a) => a.iter_mut().for_each(|x| mark_host(x, host)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_is_named_by_its_url_or_its_address() {
        for given in [
            "http://127.0.0.1:7878",
            "http://127.0.0.1:7878/?token=abc",
            "ws://127.0.0.1:7878/ws",
            "127.0.0.1:7878",
            ":7878",
        ] {
            let s = Server::parse(given).unwrap();
            assert_eq!(s.address, "127.0.0.1:7878", "{given}");
            assert_eq!(s.label, "127.0.0.1:7878", "{given}");
        }
        for bad in ["https://127.0.0.1:7878", "127.0.0.1", "http://host:port"] {
            assert_eq!(
                Server::parse(bad).unwrap_err().exit_code(),
                crate::exit::USAGE,
                "{bad}"
            );
        }
    }

    #[test]
    fn a_name_and_a_token_are_read_from_the_spec() {
        let s = Server::parse("box-1=http://10.0.0.2:7878/?token=t0k&x=1").unwrap();
        assert_eq!(
            s,
            Server {
                label: "box-1".into(),
                address: "10.0.0.2:7878".into(),
                token: Some("t0k".into()),
            }
        );
        let all = Server::parse_all(["a=:1,b=:2", ":3"]).unwrap();
        let labels: Vec<&str> = all.iter().map(|s| s.label.as_str()).collect();
        assert_eq!(labels, ["a", "b", "127.0.0.1:3"]);
        assert!(Server::parse_all([":1", "127.0.0.1:1"]).is_err());
    }

    #[test]
    fn sessions_are_marked_with_their_host_once() {
        let mut v = json!([{ "session": { "id": "a", "target_id": "A", "endpoint": "e" } },
            { "session": { "id": "b", "target_id": "B", "endpoint": "e", "host": "up" } }]);
        mark_host(&mut v, "hub");
        assert_eq!(v[0]["session"]["host"], "hub");
        assert_eq!(v[1]["session"]["host"], "up");
    }
}
