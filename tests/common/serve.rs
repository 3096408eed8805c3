//! A running `angrav serve` for the tests: started with a state directory of its own,
//! killed when dropped; a WebSocket client of its API; its dashboard in a browser tab.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use cdp::Connection;
use cdp::methods::runtime::Evaluate;
use crossbeam_channel::Receiver;
use serde_json::{Value, json};
use tungstenite::client::IntoClientRequest;
use tungstenite::{Message, WebSocket};

use super::{Reaped, sim};
/// How long a test waits for anything before it fails (never a pause).
pub const PATIENCE: Duration = Duration::from_secs(60);

/// A running `angrav serve`, killed when dropped.
pub struct Serve {
    pub child: Reaped,
    pub port: u16,
    pub token: String,
    pub state: PathBuf,
    pub stderr: Receiver<String>,
}

pub fn start(name: &str, args: &[&str], env: &[(&str, &str)]) -> Serve {
    start_at(sim().endpoint().label(), name, args, env)
}

/// `angrav --cdp CDP serve ARGS` (no `--cdp` when CDP is empty), with a state
/// directory of its own.
pub fn start_at(cdp: &str, name: &str, args: &[&str], env: &[(&str, &str)]) -> Serve {
    let state = std::env::temp_dir().join(format!("angrav-serve-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&state);
    let mut child = Reaped(
        Command::new(env!("CARGO_BIN_EXE_angrav"))
            .args(if cdp.is_empty() {
                vec!["serve"]
            } else {
                vec!["--cdp", cdp, "serve"]
            })
            .env_remove("ANGRAV_CDP")
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .env("ANGRAV_STATE_DIR", &state)
            .env("TMPDIR", super::tmp_dir())
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run angrav serve"),
    );
    let (tx, stderr) = crossbeam_channel::unbounded();
    let err = child.0.stderr.take().expect("piped");
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    loop {
        let line = stderr
            .recv_timeout(PATIENCE)
            .expect("serve prints its dashboard URL");
        if let Some(url) = line.split("dashboard: ").nth(1) {
            let rest = url
                .strip_prefix("http://127.0.0.1:")
                .expect("a loopback URL");
            let (port, token) = rest.split_once("/?token=").expect("a URL with a token");
            return Serve {
                port: port.parse().expect("a port"),
                token: token.to_string(),
                child,
                state,
                stderr,
            };
        }
    }
}

impl Serve {
    pub fn connect(&self) -> Client {
        let mut req = format!("ws://127.0.0.1:{}/ws", self.port)
            .into_client_request()
            .unwrap();
        req.headers_mut().insert(
            "Authorization",
            format!("Bearer {}", self.token).parse().unwrap(),
        );
        let stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        let (ws, _) = tungstenite::client(req, stream).expect("the upgrade is accepted");
        Client {
            ws,
            next: 0,
            events: Vec::new(),
            replies: Vec::new(),
        }
    }

    /// The status line of a raw request with these extra header lines.
    pub fn status_of(&self, target: &str, headers: &[String]) -> String {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.set_read_timeout(Some(PATIENCE)).unwrap();
        let mut req = format!("GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n", self.port);
        for h in headers {
            req += &format!("{h}\r\n");
        }
        req += "\r\n";
        s.write_all(req.as_bytes()).unwrap();
        let mut line = String::new();
        BufReader::new(s).read_line(&mut line).unwrap();
        line.trim().to_string()
    }

    /// The rest of a line on serve's stderr that contains `what`.
    pub fn stderr_line(&self, what: &str) -> String {
        loop {
            let line = self.stderr.recv_timeout(PATIENCE).expect("a stderr line");
            if line.contains(what) {
                return line;
            }
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        // A failing test shows what serve said.
        if std::thread::panicking() {
            let _ = self.child.0.kill();
            while let Ok(line) = self.stderr.recv_timeout(Duration::from_secs(5)) {
                eprintln!("serve: {line}");
            }
        }
    }
}

/// A WebSocket client of the API; events that arrive while awaiting a reply are kept.
pub struct Client {
    pub ws: WebSocket<TcpStream>,
    pub next: u64,
    pub events: Vec<Value>,
    /// The ids of the replies, in the order they arrived.
    pub replies: Vec<Value>,
}

impl Client {
    pub fn send(&mut self, method: &str, params: Value) -> u64 {
        self.next += 1;
        let req = json!({ "id": self.next, "method": method, "params": params });
        self.ws.send(Message::text(req.to_string())).unwrap();
        self.next
    }

    pub fn read(&mut self) -> Value {
        loop {
            match self.ws.read().expect("a message from serve") {
                Message::Text(t) => {
                    let v: Value = serde_json::from_str(t.as_str()).unwrap();
                    if v.get("event").is_some() {
                        self.events.push(v["event"].clone());
                    } else {
                        self.replies.push(v["id"].clone());
                    }
                    return v;
                }
                Message::Close(_) => panic!("serve closed the connection"),
                _ => {}
            }
        }
    }

    /// The whole reply to request `id`.
    pub fn reply(&mut self, id: u64) -> Value {
        loop {
            let v = self.read();
            if v["id"] == id {
                return v;
            }
        }
    }

    pub fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.send(method, params);
        let v = self.reply(id);
        assert!(v.get("error").is_none(), "{method}: {v}");
        v["result"].clone()
    }

    /// The first event (kept or new) for `target` entering `state`.
    pub fn event(&mut self, target: &str, state: &str) -> Value {
        let is = |e: &Value| e["session"]["target_id"] == target && e["current"] == state;
        if let Some(i) = self.events.iter().position(is) {
            return self.events.remove(i);
        }
        loop {
            let v = self.read();
            if v.get("event").is_some_and(is) {
                self.events.pop();
                return v["event"].clone();
            }
        }
    }
}

pub fn row<'a>(list: &'a Value, target: &str) -> &'a Value {
    super::by_target(list, target).unwrap_or_else(|| panic!("{target} in {list}"))
}

/// Shows or hides a window's busy marker, as the agent does when it starts or stops.
pub const FLIP_BUSY: &str = "function () {
  const b = document.querySelector('[data-tooltip-id=\"input-send-button-cancel-tooltip\"]') ||
    Array.from(document.querySelectorAll('button')).find((x) => x.textContent === 'Stop');
  b.classList.toggle('hidden');
}";

/// Waits in the dashboard page until each of `targets` has a row in `state`; returns
/// the rows' workspace cells.
pub fn rows_in_state(page: &mut Connection, targets: &[&str], state: &str) -> Value {
    let expression = format!(
        "(function (ids, state) {{ return new Promise((resolve) => {{
          const rowOf = (id) => document.querySelector('.row[data-target=\"' + id + '\"]');
          const check = () => ids.every((id) => {{ const r = rowOf(id); return r && r.querySelector('.state').textContent === state; }});
          const done = () => resolve(ids.map((id) => ({{ workspace: rowOf(id).querySelector('.workspace').textContent,
            elements: rowOf(id).querySelector('.workspace').children.length }})));
          if (check()) return done();
          const obs = new MutationObserver(() => {{ if (check()) {{ obs.disconnect(); done(); }} }});
          obs.observe(document.body, {{ subtree: true, childList: true, characterData: true }});
        }}); }})({}, {})",
        json!(targets),
        json!(state)
    );
    evaluate(page, &expression)
}

/// A browser tab, closed when dropped.
pub struct Tab(pub String);

impl Drop for Tab {
    fn drop(&mut self) {
        let _ = sim().close(&self.0);
    }
}

/// serve's dashboard, loaded in a new tab of the test browser.
pub fn dashboard(serve: &Serve) -> (Tab, Connection) {
    let url = format!("http://127.0.0.1:{}/?token={}", serve.port, serve.token);
    let tab = sim().endpoint().new_target(&url).unwrap();
    let closed = Tab(tab.id.clone());
    let mut page = Connection::open(tab.web_socket_debugger_url.as_deref().unwrap()).unwrap();
    angrav::sim::wait_loaded(&mut page).unwrap();
    (closed, page)
}

/// Evaluates `expression` in `page`, awaiting the promise it may give.
pub fn evaluate(page: &mut Connection, expression: &str) -> Value {
    let call = Evaluate {
        expression,
        return_by_value: true,
        await_promise: true,
        ..Default::default()
    };
    page.call(&call, PATIENCE)
        .expect("the expression evaluates")
        .into_value()
        .unwrap()
}
