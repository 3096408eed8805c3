//! What the LS says, read leniently: every field is optional (proto3 JSON leaves out
//! defaults), enum values come as names or numbers, and some builds write snake_case.
//! Reading never fails: what is missing is `None`, and angrav says it does not know.

use serde::Serialize;
use serde_json::{Value, json};

use crate::panel::{Approval, ApprovalKind, Message, Place, Press, Question, Role, State};

/// A field by its camelCase name, or its snake_case one.
fn field<'v>(v: &'v Value, camel: &str) -> Option<&'v Value> {
    v.get(camel).or_else(|| v.get(snake(camel)))
}

fn snake(camel: &str) -> String {
    let mut out = String::new();
    for c in camel.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn text(v: &Value, camel: &str) -> Option<String> {
    field(v, camel)
        .and_then(Value::as_str)
        .map(str::to_string)
        .filter(|s| !s.is_empty())
}

/// A number, also when written as a string (int64 in proto3 JSON).
fn number(v: &Value, camel: &str) -> Option<u64> {
    let f = field(v, camel)?;
    f.as_u64().or_else(|| f.as_str()?.parse().ok())
}

/// An enum value as its name without `prefix` (`CASCADE_RUN_STATUS_IDLE` → `IDLE`),
/// or as its number.
fn enum_name(v: &Value, camel: &str, prefix: &str) -> Option<String> {
    match field(v, camel)? {
        Value::String(s) => Some(s.strip_prefix(prefix).unwrap_or(s).to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A conversation's run status (`CASCADE_RUN_STATUS_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunStatus {
    Idle,
    Running,
    Canceling,
    Busy,
    WaitingForUser,
    /// A name (or number) angrav does not know.
    Other(String),
}

impl RunStatus {
    fn parse(name: &str) -> RunStatus {
        match name {
            "IDLE" => RunStatus::Idle,
            "RUNNING" => RunStatus::Running,
            "CANCELING" => RunStatus::Canceling,
            "BUSY" => RunStatus::Busy,
            "WAITING_FOR_USER" => RunStatus::WaitingForUser,
            other => RunStatus::Other(other.to_string()),
        }
    }
}

/// One conversation as `GetAllCascadeTrajectories` summarises it.
#[derive(Debug, Clone, Serialize)]
pub struct Conversation {
    /// The cascade id (the summaries' key).
    pub id: String,
    #[serde(skip)]
    pub trajectory_id: Option<String>,
    #[serde(skip)]
    pub status: Option<RunStatus>,
    pub steps: u64,
    pub summary: Option<String>,
    /// `lastModifiedTime`, as the LS writes it (RFC 3339).
    pub last_change: Option<String>,
    /// `workspaceFolderAbsoluteUri` of its first workspace.
    pub folder: Option<String>,
}

impl Conversation {
    /// Every conversation of a `GetAllCascadeTrajectories` reply, the latest change
    /// first (then by id, so the order is stable).
    pub fn all(reply: &Value) -> Vec<Conversation> {
        let Some(map) = field(reply, "trajectorySummaries").and_then(Value::as_object) else {
            return Vec::new();
        };
        let mut list: Vec<Conversation> = map
            .iter()
            .map(|(id, s)| Conversation {
                id: id.clone(),
                trajectory_id: text(s, "trajectoryId"),
                status: enum_name(s, "status", "CASCADE_RUN_STATUS_").map(|n| RunStatus::parse(&n)),
                steps: number(s, "stepCount").unwrap_or(0),
                summary: text(s, "summary"),
                last_change: text(s, "lastModifiedTime"),
                folder: field(s, "workspaces")
                    .and_then(Value::as_array)
                    .and_then(|w| w.first())
                    .and_then(|w| text(w, "workspaceFolderAbsoluteUri")),
            })
            .collect();
        list.sort_by(|a, b| {
            b.last_change
                .cmp(&a.last_change)
                .then_with(|| a.id.cmp(&b.id))
        });
        list
    }

    /// The workspace's name: the last segment of its folder (`file:///home/u/alpha`
    /// → `alpha`), percent-decoded.
    pub fn workspace(&self) -> Option<String> {
        let folder = self.folder.as_deref()?.trim_end_matches('/');
        let last = folder.rsplit('/').next()?;
        Some(percent_decode(last)).filter(|w| !w.is_empty())
    }

    /// The state as the run status says it; the waiting steps decide over it. Waiting
    /// for the user, the summary does not say for what: `awaiting_input` until a step
    /// says it is an approval angrav can answer.
    pub fn state(&self) -> Option<State> {
        Some(match self.status.as_ref()? {
            RunStatus::Idle => State::Idle,
            RunStatus::Running | RunStatus::Canceling | RunStatus::Busy => State::Thinking,
            RunStatus::WaitingForUser => State::AwaitingInput,
            RunStatus::Other(_) => return None,
        })
    }

    /// The run status as the LS names it, for `status`.
    pub fn run_status(&self) -> Option<String> {
        Some(match self.status.as_ref()? {
            RunStatus::Idle => "idle".into(),
            RunStatus::Running => "running".into(),
            RunStatus::Canceling => "canceling".into(),
            RunStatus::Busy => "busy".into(),
            RunStatus::WaitingForUser => "waiting_for_user".into(),
            RunStatus::Other(n) => n.to_lowercase(),
        })
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A step's status (`CORTEX_STEP_STATUS_*`; 9 is waiting).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepStatus {
    /// Waits for the user.
    Waiting,
    Done,
    Error,
    /// Any other (running, pending, canceled...) or one angrav does not know.
    Other(String),
}

impl StepStatus {
    fn parse(name: &str) -> StepStatus {
        match name {
            "WAITING" | "9" => StepStatus::Waiting,
            "DONE" => StepStatus::Done,
            "ERROR" => StepStatus::Error,
            other => StepStatus::Other(other.to_string()),
        }
    }
}

/// What a waiting step asks the user, and so how it is answered: the interaction's
/// field has the same name as the step's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gate {
    /// `runCommand`: run this command?
    RunCommand { command: Option<String> },
    /// `filePermission`: may the agent touch this file (answered for once)?
    FilePermission { path: Option<String> },
    /// 2.x's `permission` gate.
    Permission { what: Option<String> },
    /// `codeAction`: apply these edits?
    CodeAction,
}

/// One step of a conversation.
#[derive(Debug, Clone)]
pub struct Step {
    pub index: u64,
    /// `CORTEX_STEP_TYPE_*` without the prefix (`USER_INPUT`, `PLANNER_RESPONSE`, ...).
    pub kind: String,
    pub status: StepStatus,
    /// What the user wrote (a user step) or the agent answered.
    pub text: Option<String>,
    pub thoughts: Option<String>,
    pub gate: Option<Gate>,
    /// The question it asks (an `ask_question` step): answered by a person, never by
    /// angrav.
    pub question: Option<Question>,
}

impl Step {
    /// The steps of a `GetCascadeTrajectorySteps` reply, numbered from `start`.
    pub fn all(reply: &Value, start: u64) -> Vec<Step> {
        let Some(steps) = field(reply, "steps").and_then(Value::as_array) else {
            return Vec::new();
        };
        steps
            .iter()
            .enumerate()
            .map(|(i, s)| Step::read(s, start + i as u64))
            .collect()
    }

    fn read(s: &Value, index: u64) -> Step {
        let kind = enum_name(s, "type", "CORTEX_STEP_TYPE_").unwrap_or_default();
        let status = enum_name(s, "status", "CORTEX_STEP_STATUS_")
            .map_or(StepStatus::Other(String::new()), |n| StepStatus::parse(&n));
        let (text_, thoughts) = if let Some(u) = field(s, "userInput") {
            let items: Vec<String> = field(u, "items")
                .and_then(Value::as_array)
                .map(|items| items.iter().filter_map(|i| text(i, "text")).collect())
                .unwrap_or_default();
            let said = if items.is_empty() {
                text(u, "userResponse")
            } else {
                Some(items.join(""))
            };
            (said, None)
        } else if let Some(p) = field(s, "plannerResponse") {
            (text(p, "response"), text(p, "thinking"))
        } else {
            (None, None)
        };
        let gate = if let Some(c) = field(s, "runCommand") {
            Some(Gate::RunCommand {
                command: text(c, "proposedCommandLine").or_else(|| text(c, "commandLine")),
            })
        } else if let Some(f) = field(s, "filePermission") {
            Some(Gate::FilePermission {
                path: text(f, "absolutePathUri"),
            })
        } else if let Some(p) = field(s, "permission") {
            Some(Gate::Permission {
                what: text(p, "description").or_else(|| text(p, "pattern")),
            })
        } else {
            field(s, "codeAction").map(|_| Gate::CodeAction)
        };
        let question = asked(s).or_else(|| {
            matches!(kind.as_str(), "ASK_QUESTION" | "ASK_USER_QUESTION").then(|| Question {
                text: None,
                options: Vec::new(),
            })
        });
        Step {
            index,
            kind,
            status,
            text: text_,
            thoughts,
            gate,
            question,
        }
    }

    pub fn is_user(&self) -> bool {
        self.kind == "USER_INPUT"
    }

    /// The step waits for the user (for an approval, a question, or what angrav
    /// does not know).
    pub fn waits(&self) -> bool {
        self.status == StepStatus::Waiting
    }

    /// The step waits for the user, and angrav knows how to answer it.
    pub fn waiting_gate(&self) -> Option<&Gate> {
        (self.status == StepStatus::Waiting)
            .then_some(self.gate.as_ref())
            .flatten()
    }

    /// As a message of `history`: a user step, or an agent's answer.
    pub fn message(&self) -> Option<Message> {
        let role = match self.kind.as_str() {
            "USER_INPUT" => Role::User,
            "PLANNER_RESPONSE" => Role::Agent,
            _ => return None,
        };
        Some(Message {
            role,
            content: self.text.clone()?,
            thoughts: self.thoughts.clone(),
            code_blocks: Vec::new(),
        })
    }
}

/// The question of an `ask_question` step, as peers read it: `askQuestion` (on the
/// step, or under `requestedInteraction`) with `questions[].{question, options[].text}`,
/// or `askUserQuestion.{question, options}`. Of several questions, the first.
fn asked(s: &Value) -> Option<Question> {
    let q = field(s, "askQuestion")
        .or_else(|| field(s, "requestedInteraction").and_then(|r| field(r, "askQuestion")))
        .or_else(|| field(s, "askUserQuestion"))?;
    let first = field(q, "questions")
        .and_then(Value::as_array)
        .and_then(|all| all.first())
        .unwrap_or(q);
    let options = field(first, "options")
        .and_then(Value::as_array)
        .map(|all| {
            all.iter()
                .filter_map(|o| {
                    o.as_str()
                        .map(str::to_string)
                        .or_else(|| text(o, "text"))
                        .or_else(|| text(o, "label"))
                })
                .collect()
        })
        .unwrap_or_default();
    Some(Question {
        text: text(first, "question"),
        options,
    })
}

/// Which way an approval is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Allow,
    Deny,
}

impl Gate {
    /// The approval as the DOM would show it: its kind, the command, the choices;
    /// `step` (conversation and step index) tells it from another alike.
    pub fn approval(&self, step: &str) -> Approval {
        let panel = |kind, command: &Option<String>, labels: &[&str]| {
            Approval::new(kind, command.clone(), labels, Place::Panel, step)
        };
        match self {
            Gate::RunCommand { command } => {
                panel(ApprovalKind::Command, command, &["Run", "Reject"])
            }
            Gate::FilePermission { path } => {
                panel(ApprovalKind::Permission, path, &["Allow Once", "Deny"])
            }
            Gate::Permission { what } => {
                panel(ApprovalKind::Permission, what, &["Allow Once", "Deny"])
            }
            Gate::CodeAction => panel(ApprovalKind::FileEdits, &None, &["Accept", "Reject"]),
        }
    }

    /// The label of the choice `answer` stands for.
    pub fn label(&self, answer: Answer) -> &'static str {
        match (self, answer) {
            (Gate::RunCommand { .. }, Answer::Allow) => "Run",
            (Gate::RunCommand { .. } | Gate::CodeAction, Answer::Deny) => "Reject",
            (Gate::FilePermission { .. } | Gate::Permission { .. }, Answer::Allow) => "Allow Once",
            (Gate::FilePermission { .. } | Gate::Permission { .. }, Answer::Deny) => "Deny",
            (Gate::CodeAction, Answer::Allow) => "Accept",
        }
    }

    /// The answer `press` stands for: a named choice is one of the two this gate
    /// offers, in any case, or a word of one (`once`); `Err`: what it offers.
    pub fn answer_for(&self, press: Press) -> Result<Answer, String> {
        let offered = || {
            format!(
                "the language server offers '{}' (once) and '{}' only",
                self.label(Answer::Allow),
                self.label(Answer::Deny)
            )
        };
        match press {
            Press::Allow => Ok(Answer::Allow),
            Press::Deny => Ok(Answer::Deny),
            Press::Open => Err(offered()),
            Press::Named(choice) => {
                let c = choice.trim().to_lowercase().replace('-', " ");
                [Answer::Allow, Answer::Deny]
                    .into_iter()
                    .find(|&a| {
                        let label = self.label(a).to_lowercase();
                        label == c || label.split(' ').any(|w| w == c)
                    })
                    .ok_or_else(|| format!("no choice '{choice}': {}", offered()))
            }
        }
    }

    /// The interaction's own part: `{"runCommand": {"confirm": true, ...}}`. An
    /// allowed file permission is for this once, never for always.
    pub fn interaction(&self, answer: Answer) -> Value {
        let yes = answer == Answer::Allow;
        match self {
            Gate::RunCommand { command } => json!({"runCommand": {
                "confirm": yes,
                "proposedCommandLine": command,
                "submittedCommandLine": command,
            }}),
            Gate::FilePermission { path } => json!({"filePermission": {
                "allow": yes,
                "scope": "PERMISSION_SCOPE_ONCE",
                "absolutePathUri": path,
            }}),
            Gate::Permission { .. } => json!({"permission": {"allow": yes}}),
            Gate::CodeAction => json!({"codeAction": {"confirm": yes}}),
        }
    }
}

/// A model's quota, from `GetUserStatus`.
#[derive(Debug, Clone, Serialize)]
pub struct Quota {
    /// As the IDE names it (`Gemini 3 Pro`).
    pub label: Option<String>,
    /// The model's id (`MODEL_...`).
    pub model: Option<String>,
    /// 0 to 1; `None` when the LS leaves it out (peers disagree on what that means,
    /// so angrav does not guess).
    pub remaining: Option<f64>,
    /// When it refills (RFC 3339), as the LS says.
    pub reset: Option<String>,
    /// Used up: nothing remains, as the LS said in so many words.
    pub exhausted: bool,
}

impl Quota {
    /// Every model of a `GetUserStatus` (or `GetCascadeModelConfigData`) reply.
    pub fn all(reply: &Value) -> Vec<Quota> {
        let data = field(reply, "userStatus")
            .and_then(|u| field(u, "cascadeModelConfigData"))
            .unwrap_or(reply);
        let Some(configs) = field(data, "clientModelConfigs").and_then(Value::as_array) else {
            return Vec::new();
        };
        configs
            .iter()
            .map(|c| {
                let info = field(c, "quotaInfo");
                let remaining = info.and_then(|i| field(i, "remainingFraction")?.as_f64());
                Quota {
                    label: text(c, "label"),
                    model: field(c, "modelOrAlias").and_then(|m| text(m, "model")),
                    remaining,
                    reset: info.and_then(|i| text(i, "resetTime")),
                    exhausted: remaining.is_some_and(|r| r <= 0.0),
                }
            })
            .collect()
    }

    /// Whether `name` names this model: its label or id, in any case; a panel's
    /// `Gemini 3 Pro (High)` names `Gemini 3 Pro` too.
    pub fn is(&self, name: &str) -> bool {
        let name = name.trim().to_lowercase();
        [&self.label, &self.model].into_iter().flatten().any(|n| {
            let n = n.to_lowercase();
            name == n
                || name
                    .strip_prefix(&n)
                    .is_some_and(|rest| rest.starts_with(" ("))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_read_with_fields_missing_or_snake_case() {
        let reply = json!({"trajectorySummaries": {
            "a": {"status": "CASCADE_RUN_STATUS_WAITING_FOR_USER", "stepCount": "7",
                  "lastModifiedTime": "2026-12-01T10:00:00Z",
                  "workspaces": [{"workspaceFolderAbsoluteUri": "file:///home/u/R%26D"}]},
            "b": {"step_count": 2, "last_modified_time": "2026-12-02T10:00:00Z"},
            "c": {}
        }});
        let all = Conversation::all(&reply);
        assert_eq!(
            all.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
            ["b", "a", "c"]
        );
        assert_eq!(all[1].workspace().as_deref(), Some("R&D"));
        // Waiting, but the summary does not say for what: not an approval to press.
        assert_eq!(all[1].state(), Some(State::AwaitingInput));
        assert_eq!(all[1].steps, 7);
        assert_eq!(all[0].steps, 2);
        assert_eq!(all[2].state(), None);
    }

    #[test]
    fn a_waiting_step_by_name_or_number() {
        let reply = json!({"steps": [
            {"type": "CORTEX_STEP_TYPE_USER_INPUT", "status": "CORTEX_STEP_STATUS_DONE",
             "userInput": {"items": [{"text": "hi"}]}},
            {"type": "CORTEX_STEP_TYPE_RUN_COMMAND", "status": 9,
             "runCommand": {"proposedCommandLine": "cargo test"}}
        ]});
        let steps = Step::all(&reply, 0);
        assert_eq!(steps[0].message().unwrap().content, "hi");
        let gate = steps[1].waiting_gate().unwrap();
        assert_eq!(steps[1].index, 1);
        assert_eq!(gate.approval("c#1").command.as_deref(), Some("cargo test"));
        assert_eq!(
            gate.interaction(Answer::Deny)["runCommand"]["confirm"],
            json!(false)
        );
    }

    #[test]
    fn a_question_step_is_read_as_a_question_not_a_gate() {
        let reply = json!({"steps": [
            {"type": "CORTEX_STEP_TYPE_ASK_QUESTION", "status": "CORTEX_STEP_STATUS_WAITING",
             "askQuestion": {"questions": [{"question": "Which database?",
                "options": [{"id": "1", "text": "Postgres"}, {"id": "2", "text": "SQLite"}]}]}},
            {"type": "CORTEX_STEP_TYPE_ASK_USER_QUESTION", "status": 9,
             "askUserQuestion": {"question": "Go on?", "options": ["Yes", "No"]}},
            {"type": "CORTEX_STEP_TYPE_ASK_QUESTION", "status": 9},
            {"type": "CORTEX_STEP_TYPE_SOMETHING_NEW", "status": 9}
        ]});
        let steps = Step::all(&reply, 0);
        let q = steps[0].question.as_ref().unwrap();
        assert_eq!(q.text.as_deref(), Some("Which database?"));
        assert_eq!(q.options, ["Postgres", "SQLite"]);
        assert_eq!(steps[1].question.as_ref().unwrap().options, ["Yes", "No"]);
        assert_eq!(steps[2].question.as_ref().unwrap().text, None);
        assert!(steps[3].question.is_none());
        assert!(
            steps
                .iter()
                .all(|s| s.waits() && s.waiting_gate().is_none())
        );
    }

    #[test]
    fn quota_missing_fraction_is_unknown_not_full_or_empty() {
        let reply = json!({"userStatus": {"cascadeModelConfigData": {"clientModelConfigs": [
            {"label": "Gemini 3 Pro", "modelOrAlias": {"model": "MODEL_G3"},
             "quotaInfo": {"remainingFraction": 0.25, "resetTime": "2026-12-03T20:00:00Z"}},
            {"label": "Claude", "quotaInfo": {"resetTime": "2026-12-03T21:00:00Z"}}
        ]}}});
        let q = Quota::all(&reply);
        assert_eq!(q[0].remaining, Some(0.25));
        assert!(q[0].is("gemini 3 pro") && q[0].is("MODEL_G3"));
        assert!(q[0].is("Gemini 3 Pro (High)") && !q[0].is("Gemini 3 Pro Max"));
        assert_eq!(q[1].remaining, None);
        assert!(!q[1].exhausted);
    }
}
