//! A simulated language server: Connect JSON over HTTP on loopback, checking its token,
//! with the methods and field names of `shared/antigravity-ls.md`. Its conversations
//! run, stop to ask approval and finish; every interaction and message it is sent is
//! recorded, so tests can check what angrav asked of it.
//!
//! Time moves lazily: a turn's next step is due at a time, and every request first
//! applies what has come due. No thread runs between requests, but for a stream's:
//! it applies what comes due as it comes, and sends an update for every change.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Value, json};

use super::SimError;
use crate::serve::http::{self, Request};
use crate::timestamp::rfc3339;

/// How long a simulated turn takes, from a prompt (or an answered approval) to its
/// next step.
const TURN: Duration = Duration::from_millis(600);

/// What a conversation's waiting step asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gate {
    /// `runCommand`: this command.
    Command(String),
    /// `filePermission`: this file (a `file://` URI).
    File(String),
    /// 2.x's `permission` gate, described.
    Permission(String),
    /// An `ask_question` step: a question and its options, answered by a person
    /// (no interaction of the notes answers it: the simulated LS refuses them all).
    Question(String, Vec<String>),
    /// A waiting step of a kind no one knows (a later build's).
    Unknown,
}

impl Gate {
    fn step(&self) -> Value {
        match self {
            Gate::Command(c) => json!({
                "type": "CORTEX_STEP_TYPE_RUN_COMMAND",
                "status": "CORTEX_STEP_STATUS_WAITING",
                "runCommand": {"commandLine": c, "proposedCommandLine": c},
            }),
            // The status as its number, as some builds write it.
            Gate::File(uri) => json!({
                "type": "CORTEX_STEP_TYPE_VIEW_FILE",
                "status": 9,
                "filePermission": {"absolutePathUri": uri},
            }),
            Gate::Permission(what) => json!({
                "type": "CORTEX_STEP_TYPE_PERMISSION",
                "status": 9,
                "permission": {"description": what},
            }),
            Gate::Question(text, options) => {
                let options: Vec<Value> = (1..)
                    .zip(options)
                    .map(|(i, o)| json!({"id": i.to_string(), "text": o}))
                    .collect();
                json!({
                    "type": "CORTEX_STEP_TYPE_ASK_QUESTION",
                    "status": "CORTEX_STEP_STATUS_WAITING",
                    "askQuestion": {"questions": [{"question": text, "options": options}]},
                })
            }
            Gate::Unknown => json!({
                "type": "CORTEX_STEP_TYPE_SOMETHING_NEW",
                "status": "CORTEX_STEP_STATUS_WAITING",
            }),
        }
    }
}

/// A conversation the simulated LS starts with.
#[derive(Debug, Clone)]
pub struct Conversation {
    pub id: String,
    pub workspace: String,
    pub summary: String,
    /// Finished turns already there.
    pub history: u32,
    /// Waits for these approvals from the start, a step each (several at once).
    pub waiting: Vec<Gate>,
    /// Works on a turn from the start (it finishes after a turn's time).
    pub running: bool,
    /// Every prompt leads to this approval before the answer.
    pub asks: Option<Gate>,
    /// How long a turn takes to its next step.
    pub turn: Duration,
}

impl Conversation {
    pub fn new(id: &str, workspace: &str) -> Conversation {
        Conversation {
            id: id.to_string(),
            workspace: workspace.to_string(),
            summary: format!("Work on {workspace}"),
            history: 1,
            waiting: Vec::new(),
            running: false,
            asks: None,
            turn: TURN,
        }
    }

    /// Turns of this length (a long one stays at work until cancelled).
    pub fn turn(mut self, turn: Duration) -> Conversation {
        self.turn = turn;
        self
    }

    /// One more step that waits from the start.
    pub fn waiting(mut self, gate: Gate) -> Conversation {
        self.waiting.push(gate);
        self
    }

    pub fn running(mut self) -> Conversation {
        self.running = true;
        self
    }

    pub fn asks(mut self, gate: Gate) -> Conversation {
        self.asks = Some(gate);
        self
    }

    pub fn history(mut self, turns: u32) -> Conversation {
        self.history = turns;
        self
    }
}

/// A model and its quota.
#[derive(Debug, Clone)]
pub struct Model {
    pub label: String,
    pub id: String,
    /// `None`: the field is left out, as proto3 JSON does for 0 on some builds.
    pub remaining: Option<f64>,
    pub reset: SystemTime,
}

/// How the server answers: properly, with garbage, or not at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Normal,
    /// `200 OK` with a body that is not JSON.
    Garbage,
    /// Reads the request and never answers.
    Hang,
}

/// What to answer next in a conversation, and when.
#[derive(Debug, Clone)]
enum Next {
    Answer(String),
    Ask(Gate),
}

#[derive(Debug)]
struct Live {
    seed: Conversation,
    status: &'static str,
    steps: Vec<Value>,
    modified: SystemTime,
    due: Option<(Instant, Next)>,
}

impl Live {
    fn touch(&mut self) {
        self.modified = SystemTime::now();
    }

    fn summary(&self) -> Value {
        json!({
            "trajectoryId": format!("traj-{}", self.seed.id),
            "status": format!("CASCADE_RUN_STATUS_{}", self.status),
            "stepCount": self.steps.len(),
            "summary": self.seed.summary,
            "lastModifiedTime": rfc3339(self.modified),
            "workspaces": [{"workspaceFolderAbsoluteUri":
                format!("file:///home/sim/{}", self.seed.workspace)}],
        })
    }

    /// A prompt: the user's step now, the turn's next step after a turn's time.
    fn prompt(&mut self, text: &str) {
        self.steps.push(user(text));
        self.status = "RUNNING";
        let next = match &self.seed.asks {
            Some(gate) => Next::Ask(gate.clone()),
            None => Next::Answer(answer(text, &self.seed.workspace)),
        };
        self.due = Some((Instant::now() + self.seed.turn, next));
        self.touch();
    }

    fn advance(&mut self, now: Instant) {
        let Some((at, _)) = &self.due else { return };
        if *at > now {
            return;
        }
        let (_, next) = self.due.take().expect("due");
        match next {
            Next::Answer(text) => {
                self.steps.push(agent(&text));
                self.status = "IDLE";
            }
            Next::Ask(gate) => {
                self.steps.push(gate.step());
                self.status = "WAITING_FOR_USER";
            }
        }
        self.touch();
    }
}

/// A step that waits for the user (its status as a name or, as some builds write
/// it, a number).
fn waits(step: &Value) -> bool {
    step["status"] == json!(9) || step["status"] == json!("CORTEX_STEP_STATUS_WAITING")
}

fn user(text: &str) -> Value {
    json!({"type": "CORTEX_STEP_TYPE_USER_INPUT", "status": "CORTEX_STEP_STATUS_DONE",
           "userInput": {"items": [{"text": text}]}})
}

fn agent(text: &str) -> Value {
    json!({"type": "CORTEX_STEP_TYPE_PLANNER_RESPONSE", "status": "CORTEX_STEP_STATUS_DONE",
           "plannerResponse": {"response": text, "thinking": "Looking at the workspace."}})
}

fn answer(prompt: &str, workspace: &str) -> String {
    format!("You asked: `{prompt}`. Here is what {workspace} holds.")
}

struct World {
    conversations: Vec<Live>,
    models: Vec<Model>,
    interactions: Vec<Value>,
    messages: Vec<Value>,
    /// Every stream request's body (with a right token).
    streams: Vec<Value>,
    /// The `Origin` of every call a page made (a `fetch` from a page has one).
    origins: Vec<String>,
    /// Whether the stream methods exist (an older build has none).
    has_streams: bool,
    mode: Mode,
    /// A call held at a gate (see [`SimLs::hold`]): its method, how many of its calls
    /// pass first, the gate.
    hold: Option<(String, usize, String)>,
}

/// The stream methods: one conversation's updates, and every conversation's.
const STREAMS: [&str; 2] = ["StreamAgentStateUpdates", "StreamCascadeReactiveUpdates"];

/// The simulated language server, serving on a background thread for the life of
/// the process.
#[derive(Clone)]
pub struct SimLs {
    port: u16,
    token: String,
    world: Arc<Mutex<World>>,
    /// Told of every request answered (and every control used): streams wake on it.
    changed: Arc<Condvar>,
}

impl SimLs {
    /// Binds 127.0.0.1 on a free port and serves these conversations, checking
    /// `token`.
    pub fn start(token: &str, conversations: Vec<Conversation>) -> Result<SimLs, SimError> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .map_err(|e| SimError::Launch(format!("language server: {e}")))?;
        let port = listener
            .local_addr()
            .map_err(|e| SimError::Launch(e.to_string()))?
            .port();
        let now = SystemTime::now();
        let conversations = conversations
            .into_iter()
            .enumerate()
            .map(|(i, seed)| {
                let mut steps = Vec::new();
                for t in 0..seed.history {
                    let text = format!("Step {} of the plan for {}", t + 1, seed.workspace);
                    steps.push(user(&text));
                    steps.push(agent(&answer(&text, &seed.workspace)));
                }
                let mut status = "IDLE";
                let mut due = None;
                if !seed.waiting.is_empty() {
                    steps.push(user(&format!("Check {}", seed.workspace)));
                    steps.extend(seed.waiting.iter().map(Gate::step));
                    status = "WAITING_FOR_USER";
                } else if seed.running {
                    let text = format!("Keep going on {}", seed.workspace);
                    steps.push(user(&text));
                    status = "RUNNING";
                    due = Some((
                        Instant::now() + seed.turn,
                        Next::Answer(answer(&text, &seed.workspace)),
                    ));
                }
                Live {
                    seed,
                    status,
                    steps,
                    // Older ones first, a second apart.
                    modified: now - Duration::from_secs(60 - i as u64),
                    due,
                }
            })
            .collect();
        let hour = Duration::from_secs(3600);
        let world = World {
            conversations,
            models: vec![
                Model {
                    label: "Gemini 3 Pro".into(),
                    id: "MODEL_PLACEHOLDER_M7".into(),
                    remaining: Some(0.6),
                    reset: now + 2 * hour,
                },
                Model {
                    label: "Claude Sonnet 4.5".into(),
                    id: "MODEL_PLACEHOLDER_M12".into(),
                    remaining: Some(0.0),
                    reset: now + hour,
                },
            ],
            interactions: Vec::new(),
            messages: Vec::new(),
            streams: Vec::new(),
            origins: Vec::new(),
            has_streams: true,
            mode: Mode::Normal,
            hold: None,
        };
        let ls = SimLs {
            port,
            token: token.to_string(),
            world: Arc::new(Mutex::new(world)),
            changed: Arc::new(Condvar::new()),
        };
        let server = ls.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let server = server.clone();
                std::thread::spawn(move || server.serve(stream));
            }
        });
        Ok(ls)
    }

    /// The conversations `angrav simulate` and the demo start with: one idle, one
    /// waiting for a command's approval, one working.
    pub fn demo_conversations() -> Vec<Conversation> {
        vec![
            Conversation::new("5f0c9a1e-7d2b-4c33-9e41-0a6b1c2d3e4f", "epsilon").history(2),
            Conversation::new("8a41d2c7-1b9e-4f0a-8c65-3d2e1f0a9b8c", "zeta")
                .waiting(Gate::Command("npm run build".into())),
            Conversation::new("c3e7b5a9-2f4d-4e61-b8a0-9d1c2b3a4e5f", "eta").running(),
        ]
    }

    /// A token no one guesses by chance (the real LS's is a UUID).
    pub fn new_token() -> String {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        format!("sim-{:x}-{:x}", nanos, std::process::id())
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn token(&self) -> &str {
        &self.token
    }

    pub fn set_mode(&self, mode: Mode) {
        self.world().mode = mode;
    }

    /// Whether the stream methods exist (`false`: they answer `unimplemented`, as
    /// on a build without them).
    pub fn set_streams(&self, on: bool) {
        self.world().has_streams = on;
    }

    /// Every stream request's body received (with a right token).
    pub fn streams(&self) -> Vec<Value> {
        self.world().streams.clone()
    }

    /// The `Origin` of every call a page made, in order (`OPTIONS` preflights
    /// aside).
    pub fn origins(&self) -> Vec<String> {
        self.world().origins.clone()
    }

    /// Sets a model's remaining fraction (`None`: left out).
    pub fn set_quota(&self, label: &str, remaining: Option<f64>) {
        for m in &mut self.world().models {
            if m.label == label {
                m.remaining = remaining;
            }
        }
        self.changed.notify_all();
    }

    /// Sets when a model's quota refills: from then on the model has all of it
    /// again (and its next reset is 5 hours later), as the real one does.
    pub fn set_reset(&self, label: &str, reset: SystemTime) {
        for m in &mut self.world().models {
            if m.label == label {
                m.reset = reset;
            }
        }
        self.changed.notify_all();
    }

    /// The call of `method` after the next `pass` ones waits at the fixture server's
    /// gate `gate` (see [`super::gate_reached`]) until the test opens it; then it is
    /// answered as any.
    pub fn hold(&self, method: &str, pass: usize, gate: &str) {
        self.world().hold = Some((method.to_string(), pass, gate.to_string()));
    }

    /// Every `HandleCascadeUserInteraction` body received (with a right token).
    pub fn interactions(&self) -> Vec<Value> {
        self.world().interactions.clone()
    }

    /// Every `SendUserCascadeMessage` body received (with a right token).
    pub fn messages(&self) -> Vec<Value> {
        self.world().messages.clone()
    }

    fn world(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn serve(&self, mut stream: TcpStream) {
        let Ok(Some(request)) = http::read_request(&mut stream, Duration::from_secs(10)) else {
            return;
        };
        let body = match read_body(&mut stream, &request) {
            Some(b) => b,
            None => return,
        };
        // Pages call it too (the simulated panel's own requests): allow them.
        let cors = [
            ("Access-Control-Allow-Origin", "*"),
            (
                "Access-Control-Allow-Headers",
                "content-type, connect-protocol-version, x-codeium-csrf-token",
            ),
            ("Access-Control-Allow-Methods", "POST"),
        ];
        if request.method == "OPTIONS" {
            let _ = http::respond(&mut stream, "204 No Content", &cors, b"");
            return;
        }
        if let Some(origin) = request.header("Origin") {
            self.world().origins.push(origin.to_string());
        }
        let held = {
            let mut world = self.world();
            match &mut world.hold {
                Some((method, pass, _)) if request.path.ends_with(&format!("/{method}")) => {
                    if *pass == 0 {
                        world.hold.take().map(|(_, _, gate)| gate)
                    } else {
                        *pass -= 1;
                        None
                    }
                }
                _ => None,
            }
        };
        if let Some(gate) = held {
            super::server::hold_at_gate(&gate);
        }
        let mode = self.world().mode;
        match mode {
            Mode::Hang => {
                // Holds the connection until the client gives up.
                let mut sink = [0u8; 64];
                let _ = stream.set_read_timeout(None);
                while std::io::Read::read(&mut stream, &mut sink).is_ok_and(|n| n > 0) {}
                return;
            }
            Mode::Garbage => {
                let mut headers = cors.to_vec();
                headers.push(("Content-Type", "application/json"));
                let _ = http::respond(&mut stream, "200 OK", &headers, b"<html>\x00\xff not json");
                return;
            }
            Mode::Normal => {}
        }
        if let Some(method) = STREAMS
            .iter()
            .find(|m| request.path.ends_with(&format!("/{m}")))
        {
            return self.stream(stream, &request, &body, method);
        }
        let (status, reply) = self.answer(&request, &body);
        self.changed.notify_all();
        let mut headers = cors.to_vec();
        headers.push(("Content-Type", "application/json"));
        let _ = http::respond(&mut stream, status, &headers, reply.to_string().as_bytes());
    }

    /// A stream: checked as any request, then an update at once and one for every
    /// change of the conversations it follows (`conversationId`, else all), each
    /// applied as it comes due, until the client goes away.
    fn stream(&self, mut stream: TcpStream, request: &Request, body: &[u8], method: &str) {
        let refuse = |stream: &mut TcpStream, status: &str, code: &str| {
            let body = json!({"code": code, "message": code}).to_string();
            let _ = http::respond(
                stream,
                status,
                &[("Content-Type", "application/json")],
                body.as_bytes(),
            );
        };
        if request.header(crate::ls::TOKEN_HEADER) != Some(self.token.as_str()) {
            return refuse(&mut stream, "401 Unauthorized", "unauthenticated");
        }
        if !self.world().has_streams {
            return refuse(&mut stream, "404 Not Found", "unimplemented");
        }
        // The request is one envelope too.
        let message = body
            .get(5..)
            .and_then(|b| serde_json::from_slice::<Value>(b).ok());
        let Some(message) = message.filter(|_| {
            request
                .header("Content-Type")
                .is_some_and(|t| t.starts_with("application/connect+json"))
        }) else {
            return refuse(&mut stream, "400 Bad Request", "invalid_argument");
        };
        let only = message["conversationId"].as_str().map(str::to_string);
        self.world()
            .streams
            .push(json!({"method": method, "body": message}));
        let head = "HTTP/1.1 200 OK\r\nContent-Type: application/connect+json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
        if stream.write_all(head.as_bytes()).is_err() {
            return;
        }
        let mut sent: Option<Value> = None;
        let mut world = self.world();
        loop {
            let now = Instant::now();
            for c in &mut world.conversations {
                c.advance(now);
            }
            let followed: Vec<&Live> = world
                .conversations
                .iter()
                .filter(|c| only.as_ref().is_none_or(|id| *id == c.seed.id))
                .collect();
            let summaries: Vec<Value> = followed.iter().map(|c| c.summary()).collect();
            let due = followed
                .iter()
                .filter_map(|c| c.due.as_ref().map(|d| d.0))
                .min();
            if sent.as_ref() != Some(&json!(summaries)) {
                let update = json!({"update": {"conversationId": only, "summaries": summaries}});
                let frame = crate::ls::envelope(0, &update);
                let chunk = [
                    format!("{:x}\r\n", frame.len()).into_bytes(),
                    frame,
                    b"\r\n".to_vec(),
                ]
                .concat();
                drop(world);
                if stream
                    .write_all(&chunk)
                    .and_then(|_| stream.flush())
                    .is_err()
                {
                    return;
                }
                sent = Some(json!(summaries));
                world = self.world();
                continue;
            }
            // A client gone is seen at the next write.
            let wait = due.map_or(Duration::from_secs(5), |d| d.saturating_duration_since(now));
            world = self
                .changed
                .wait_timeout(world, wait.max(Duration::from_millis(1)))
                .map_or_else(|p| p.into_inner().0, |(g, _)| g);
        }
    }

    fn answer(&self, request: &Request, body: &[u8]) -> (&'static str, Value) {
        let error = |code: &str, message: &str| json!({"code": code, "message": message});
        if request.header(crate::ls::TOKEN_HEADER) != Some(self.token.as_str()) {
            return (
                "401 Unauthorized",
                error("unauthenticated", "invalid CSRF token"),
            );
        }
        let Some(method) = request
            .path
            .strip_prefix("/exa.language_server_pb.LanguageServerService/")
        else {
            return ("404 Not Found", error("unimplemented", "no such service"));
        };
        let Ok(body) = serde_json::from_slice::<Value>(body) else {
            return ("400 Bad Request", error("invalid_argument", "not JSON"));
        };
        let mut world = self.world();
        let now = Instant::now();
        for c in &mut world.conversations {
            c.advance(now);
        }
        let cascade = body["cascadeId"].as_str().unwrap_or_default().to_string();
        let find = |world: &mut World| {
            world
                .conversations
                .iter()
                .position(|c| c.seed.id == cascade)
        };
        match method {
            "GetAllCascadeTrajectories" => {
                let summaries: serde_json::Map<String, Value> = world
                    .conversations
                    .iter()
                    .map(|c| (c.seed.id.clone(), c.summary()))
                    .collect();
                ("200 OK", json!({"trajectorySummaries": summaries}))
            }
            "GetCascadeTrajectorySteps" => {
                let Some(i) = find(&mut world) else {
                    return ("404 Not Found", error("not_found", "no such cascade"));
                };
                let steps = &world.conversations[i].steps;
                let start = (body["startIndex"].as_u64().unwrap_or(0) as usize).min(steps.len());
                let end = body["endIndex"]
                    .as_u64()
                    .map_or(steps.len(), |e| (e as usize).min(steps.len()))
                    .max(start);
                ("200 OK", json!({"steps": steps[start..end]}))
            }
            "SendUserCascadeMessage" => {
                let Some(i) = find(&mut world) else {
                    return ("404 Not Found", error("not_found", "no such cascade"));
                };
                world.messages.push(body.clone());
                let c = &mut world.conversations[i];
                if c.status != "IDLE" {
                    return (
                        "400 Bad Request",
                        error("failed_precondition", "the cascade is busy"),
                    );
                }
                let text: String = body["items"]
                    .as_array()
                    .map(|items| items.iter().filter_map(|i| i["text"].as_str()).collect())
                    .unwrap_or_default();
                c.prompt(&text);
                ("200 OK", json!({}))
            }
            "HandleCascadeUserInteraction" => {
                world.interactions.push(body.clone());
                let Some(i) = find(&mut world) else {
                    return ("404 Not Found", error("not_found", "no such cascade"));
                };
                let c = &mut world.conversations[i];
                let interaction = &body["interaction"];
                let index = interaction["stepIndex"].as_u64().unwrap_or(u64::MAX) as usize;
                let waiting = c.steps.get(index).is_some_and(waits);
                let gate = c
                    .steps
                    .get(index)
                    .and_then(|s| {
                        ["runCommand", "filePermission", "permission"]
                            .into_iter()
                            .find(|f| s.get(*f).is_some())
                    })
                    .unwrap_or_default();
                let Some(part) = interaction.get(gate).filter(|_| waiting) else {
                    return (
                        "400 Bad Request",
                        error("failed_precondition", "that step does not wait for this"),
                    );
                };
                let yes = part["confirm"].as_bool().or(part["allow"].as_bool()) == Some(true);
                let what = c.steps[index][gate]
                    .as_object()
                    .and_then(|o| o.values().find_map(Value::as_str))
                    .unwrap_or_default()
                    .to_string();
                c.steps[index]["status"] = json!(if yes {
                    "CORTEX_STEP_STATUS_DONE"
                } else {
                    "CORTEX_STEP_STATUS_CANCELED"
                });
                c.touch();
                // Another step still waits: the turn goes on once it is answered too.
                if c.steps.iter().any(waits) {
                    return ("200 OK", json!({}));
                }
                c.status = "RUNNING";
                let text = if yes {
                    format!("Done: `{what}` went through.")
                } else {
                    format!("Understood: not `{what}`.")
                };
                c.due = Some((now + c.seed.turn, Next::Answer(text)));
                c.touch();
                ("200 OK", json!({}))
            }
            "CancelCascadeInvocation" => {
                let Some(i) = find(&mut world) else {
                    return ("404 Not Found", error("not_found", "no such cascade"));
                };
                let c = &mut world.conversations[i];
                c.status = "IDLE";
                c.due = None;
                for s in c.steps.iter_mut().filter(|s| waits(s)) {
                    s["status"] = json!("CORTEX_STEP_STATUS_CANCELED");
                }
                c.touch();
                ("200 OK", json!({}))
            }
            "GetUserStatus" => {
                let wall = SystemTime::now();
                for m in world.models.iter_mut().filter(|m| m.reset <= wall) {
                    m.remaining = Some(1.0);
                    m.reset = wall + Duration::from_secs(5 * 3600);
                }
                let configs: Vec<Value> = world
                    .models
                    .iter()
                    .map(|m| {
                        let mut quota = json!({"resetTime": rfc3339(m.reset)});
                        if let Some(r) = m.remaining {
                            quota["remainingFraction"] = json!(r);
                        }
                        json!({"label": m.label, "modelOrAlias": {"model": m.id},
                               "quotaInfo": quota})
                    })
                    .collect();
                (
                    "200 OK",
                    json!({"userStatus": {"cascadeModelConfigData":
                        {"clientModelConfigs": configs}}}),
                )
            }
            _ => ("404 Not Found", error("unimplemented", "no such method")),
        }
    }
}

/// The request's body, by its `Content-Length` (what came with the head first).
fn read_body(stream: &mut TcpStream, request: &Request) -> Option<Vec<u8>> {
    let length: usize = request
        .header("Content-Length")
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    let mut body = request.rest.clone();
    if body.len() < length {
        let mut more = vec![0u8; length - body.len()];
        let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
        std::io::Read::read_exact(stream, &mut more).ok()?;
        body.extend(more);
    }
    body.truncate(length);
    Some(body)
}
