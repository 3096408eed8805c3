//! Approval policies for unattended runs: a JSON list of rules, the first that
//! matches an approval decides (`approve`, `approve:CHOICE`, `deny`, `ask`), each part
//! of a compound command on its own, and an [`Autopilot`] that applies them to the
//! sessions a wait or a watch monitors.
//!
//! ```json
//! [
//!   {"kind": "command", "command": "^cargo (test|check|build)( |$)", "action": "approve"},
//!   {"kind": "command", "command": "rm +-[a-z]*r", "action": "deny"},
//!   {"kind": "plan", "action": "approve:proceed"},
//!   {"kind": "any", "action": "ask"}
//! ]
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use serde::Serialize;
use serde_json::Value;

use crate::Error;
use crate::approve;
use crate::panel::{Approval, ApprovalKind, Panel, Press, Pressing, Snapshot, State};
use crate::profile::Profile;
use crate::sessions::Session;
use crate::timestamp::rfc3339;

mod command;
mod regex;

pub use regex::Regex;

/// How long a press a policy decided may take, from attaching to the page to its
/// confirmation: a wait holds the session at most that long for it.
pub const ANSWER_WITHIN: Duration = Duration::from_secs(15);

/// The rules, in order.
#[derive(Debug, Clone)]
pub struct Policy {
    rules: Vec<Rule>,
}

#[derive(Debug, Clone)]
struct Rule {
    kind: KindMatch,
    command: Option<Regex>,
    action: Action,
}

impl Rule {
    /// `{"kind", "command"?, "action"}`.
    fn from_json(v: &Value) -> Result<Rule, String> {
        let Value::Object(fields) = v else {
            return Err("a rule is an object: {\"kind\", \"command\", \"action\"}".into());
        };
        if let Some(k) = fields
            .keys()
            .find(|k| !["kind", "command", "action"].contains(&k.as_str()))
        {
            return Err(format!("unknown field '{k}' (kind, command, action)"));
        }
        let text = |name: &str| match fields.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(format!("'{name}' is a string")),
        };
        let missing = |name: &str| format!("'{name}' is missing");
        Ok(Rule {
            kind: KindMatch::parse(text("kind")?.ok_or_else(|| missing("kind"))?)?,
            command: text("command")?.map(Regex::new).transpose()?,
            action: Action::parse(text("action")?.ok_or_else(|| missing("action"))?)?,
        })
    }
}

/// The approval kinds a rule is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KindMatch {
    Any,
    One(ApprovalKind),
}

impl KindMatch {
    fn parse(s: &str) -> Result<KindMatch, String> {
        if s == "any" {
            return Ok(KindMatch::Any);
        }
        serde_json::from_value(Value::String(s.to_string()))
            .map(KindMatch::One)
            .map_err(|_| {
                format!(
                    "unknown kind '{s}' (command, file_edits, permission, plan, collapsed, any)"
                )
            })
    }
}

/// What a rule does with an approval it matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Press the narrowest allowing choice, or the one named.
    Approve(Option<String>),
    Deny,
    /// Leave it to a person: reported, not pressed.
    Ask,
}

impl Action {
    fn parse(s: &str) -> Result<Action, String> {
        match s.split_once(':') {
            None if s == "approve" => Ok(Action::Approve(None)),
            None if s == "deny" => Ok(Action::Deny),
            None if s == "ask" => Ok(Action::Ask),
            Some(("approve", choice)) if !choice.trim().is_empty() => {
                Ok(Action::Approve(Some(choice.trim().to_string())))
            }
            _ => Err(format!(
                "unknown action '{s}' (approve, approve:CHOICE, deny, ask)"
            )),
        }
    }
}

impl Action {
    pub fn name(&self) -> String {
        match self {
            Action::Approve(None) => "approve".into(),
            Action::Approve(Some(c)) => format!("approve:{c}"),
            Action::Deny => "deny".into(),
            Action::Ask => "ask".into(),
        }
    }

    fn press(&self) -> Option<Press<'_>> {
        match self {
            Action::Approve(None) => Some(Press::Allow),
            Action::Approve(Some(c)) => Some(Press::Named(c)),
            Action::Deny => Some(Press::Deny),
            Action::Ask => None,
        }
    }
}

impl Policy {
    /// Reads a policy file; anything wrong in it is a usage error naming its line.
    pub fn load(path: &std::path::Path) -> Result<Policy, Error> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Usage(format!("cannot read the policy {}: {e}", path.display())))?;
        Policy::parse(&text).map_err(|e| Error::Usage(format!("policy {}: {e}", path.display())))
    }

    /// A policy from its JSON text; the error names the line.
    pub fn parse(text: &str) -> Result<Policy, String> {
        let value: Value = serde_json::from_str(text).map_err(|e| {
            let what = e.to_string();
            // serde_json ends its message with the position; say it first.
            let what = what
                .rsplit_once(" at line ")
                .map_or(what.as_str(), |(head, _)| head);
            format!("line {}, column {}: {what}", e.line(), e.column())
        })?;
        let Value::Array(items) = value else {
            return Err("line 1: a policy is a JSON list of rules".into());
        };
        let lines = element_lines(text);
        let rules = items.iter().enumerate().map(|(i, item)| {
            Rule::from_json(item)
                .map_err(|e| format!("line {}: rule {i}: {e}", lines.get(i).unwrap_or(&1)))
        });
        Ok(Policy {
            rules: rules.collect::<Result<_, _>>()?,
        })
    }

    /// The rule that decides `approval`, with its index; `None` when none does (a
    /// person decides). A command is decided part by part (`command::split`): each
    /// part by the first rule matching it, then
    /// - a part denied denies the approval (the first such part's rule);
    /// - every part approved by the same action approves it (the first part's rule);
    /// - anything else leaves it to a person: the first part not approved, with the
    ///   rule that matched it, if any (`ask`); `None` when the parts were approved by
    ///   different actions.
    ///
    /// A line that cannot be split with certainty is matched whole by every rule but
    /// those that approve. The time is linear in the command's length.
    pub fn decide(&self, approval: &Approval) -> Option<(usize, &Action)> {
        self.decide_command(approval.kind, approval.command.as_deref())
    }

    /// [`Policy::decide`] for an approval of `kind` showing `command`.
    pub fn decide_command<'p>(
        &'p self,
        kind: ApprovalKind,
        command: Option<&str>,
    ) -> Option<(usize, &'p Action)> {
        let Some(line) = command else {
            return self.first(kind, None, true);
        };
        let Some(parts) = command::split(line) else {
            // Matched whole, by every rule but those that approve: it may be denied,
            // never approved.
            return self.first(kind, Some(line), false);
        };
        let parts = if parts.is_empty() { vec![line] } else { parts };
        let decided: Vec<_> = parts
            .iter()
            .map(|p| self.first(kind, Some(p), true))
            .collect();
        let action = |d: &Option<(usize, &'p Action)>| d.map(|(_, a)| a);
        if let Some(denied) = decided.iter().find(|d| action(d) == Some(&Action::Deny)) {
            return *denied;
        }
        let approved = |d| matches!(action(d), Some(Action::Approve(_)));
        match decided.iter().find(|d| !approved(d)) {
            Some(not_approved) => *not_approved,
            None if decided.iter().all(|d| action(d) == action(&decided[0])) => decided[0],
            None => None,
        }
    }

    /// The first rule matching an approval of `kind` showing `command` (a part of
    /// it), with its index; rules that approve are passed over unless `approving`.
    fn first(
        &self,
        kind: ApprovalKind,
        command: Option<&str>,
        approving: bool,
    ) -> Option<(usize, &Action)> {
        self.rules.iter().enumerate().find_map(|(i, r)| {
            if !approving && matches!(r.action, Action::Approve(_)) {
                return None;
            }
            let kind = r.kind == KindMatch::Any || r.kind == KindMatch::One(kind);
            let command = r
                .command
                .as_ref()
                .is_none_or(|re| command.is_some_and(|c| re.is_match(c)));
            (kind && command).then_some((i, &r.action))
        })
    }
}

/// The line each element of a JSON list (valid JSON) starts on.
fn element_lines(text: &str) -> Vec<usize> {
    let (mut line, mut depth, mut lines) = (1, 0, Vec::new());
    let (mut in_string, mut escaped, mut next) = (false, false, false);
    for c in text.chars() {
        line += usize::from(c == '\n');
        if in_string {
            (escaped, in_string) = (!escaped && c == '\\', escaped || c != '"');
            continue;
        }
        if next && depth == 1 && !c.is_whitespace() && c != ']' {
            lines.push(line);
            next = false;
        }
        match c {
            '"' => in_string = true,
            '[' | '{' => {
                depth += 1;
                next = depth == 1;
            }
            ']' | '}' => depth -= 1,
            ',' if depth == 1 => next = true,
            _ => {}
        }
    }
    lines
}

/// One decision: an event line of the audit trail.
#[derive(Debug, Clone, Serialize)]
pub struct Decision {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub session: Session,
    /// The index of the rule that matched (from 0); `None`: none did, a person decides.
    pub rule: Option<usize>,
    pub action: String,
    pub approval: Approval,
    pub command: Option<String>,
    /// The choice pressed; `None` for `ask`, or when the press failed (`error`).
    pub choice: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub timestamp: String,
}

impl Decision {
    /// One readable line.
    pub fn line(&self) -> String {
        let rule = self.rule.map_or("no rule".into(), |r| format!("rule {r}"));
        let outcome = match (&self.choice, &self.error) {
            (Some(c), _) => format!("pressed '{c}'"),
            (None, Some(e)) => format!("failed: {e}"),
            (None, None) => "left to a person".into(),
        };
        format!(
            "{}  {}  approval_decided: {} ({rule}) on {}: {outcome}",
            self.timestamp,
            self.session.id,
            self.action,
            approve::shown(&self.approval)
        )
    }
}

/// Where decisions go (the watch's stdout, a wait's stderr).
pub type Report = Arc<dyn Fn(&Decision) + Send + Sync>;

/// Applies a policy to monitored sessions: [`Autopilot::on_snapshot`] is the hook a
/// monitoring loop calls with each state it receives. Presses happen on threads of
/// their own, through a connection of their own, so the loop is never held up.
pub struct Autopilot {
    policy: Arc<Policy>,
    profile: Profile,
    report: Report,
    /// Per session (target id), per approval showing (by id): whether a press for it
    /// is under way (else it is left to a person). Each card is decided on its own.
    seen: Mutex<HashMap<String, HashMap<String, bool>>>,
    workers: Mutex<Vec<JoinHandle<()>>>,
}

impl Autopilot {
    pub fn new(policy: Policy, profile: &Profile, report: Report) -> Autopilot {
        Autopilot {
            policy: Arc::new(policy),
            profile: profile.clone(),
            report,
            seen: Mutex::default(),
            workers: Mutex::default(),
        }
    }

    /// Decides, once per approval a session shows (each card on its own, one
    /// decision each), and presses when the rule says so, naming the approval's id:
    /// the page presses only if that very approval still shows. True while an
    /// approval is being answered: the session has not stopped.
    pub fn on_snapshot(&self, session: &Session, snap: &Snapshot) -> bool {
        let mut seen = self.seen.lock().expect("policy state");
        if snap.state != State::AwaitingApproval || snap.approvals.is_empty() {
            seen.remove(&session.target_id);
            return false;
        }
        let known = seen.entry(session.target_id.clone()).or_default();
        known.retain(|id, _| snap.approvals.iter().any(|a| &a.id == id));
        for approval in &snap.approvals {
            if known.contains_key(&approval.id) {
                continue;
            }
            let decided = self.policy.decide(approval);
            let action = decided.map(|(_, a)| a.clone());
            // A collapsed step is opened first: what it asks is decided once it shows.
            let pressing = approval.kind == ApprovalKind::Collapsed
                || action.as_ref().is_some_and(|a| a.press().is_some());
            known.insert(approval.id.clone(), pressing);
            let decision = Decision {
                kind: "approval_decided",
                session: session.clone(),
                rule: decided.map(|(i, _)| i),
                action: action.as_ref().map_or("ask".into(), Action::name),
                approval: approval.clone(),
                command: approval.command.clone(),
                choice: None,
                error: None,
                timestamp: rfc3339(SystemTime::now()),
            };
            if !pressing {
                (self.report)(&decision);
                continue;
            }
            let (window, profile, report) = (
                session.window.clone(),
                self.profile.clone(),
                self.report.clone(),
            );
            let worker = std::thread::spawn(move || {
                let by = serde_json::json!({ "rule": decision.rule });
                let result = Panel::attach(&window, &profile)
                    .and_then(|(mut panel, _)| press(&mut panel, &decision.approval, action, &by));
                let mut decision = decision;
                match result {
                    // Only opened: the step's approval is decided when it shows.
                    Ok(None) => return,
                    Ok(Some(pressed)) => decision.choice = Some(pressed),
                    Err(e) => decision.error = Some(e.to_string()),
                }
                decision.timestamp = rfc3339(SystemTime::now());
                report(&decision);
            });
            self.workers.lock().expect("policy workers").push(worker);
        }
        known.values().any(|pressing| *pressing)
    }

    /// Waits for the presses under way (each ends within its confirmation time), so
    /// that every decision is reported before the command ends.
    pub fn finish(&self) {
        let workers = std::mem::take(&mut *self.workers.lock().expect("policy workers"));
        for w in workers {
            let _ = w.join();
        }
    }
}

/// Presses `action` on `decided`, in the one page call that checks it still shows
/// (by its id); a collapsed step is only opened (`Ok(None)`).
fn press(
    panel: &mut Panel,
    decided: &Approval,
    action: Option<Action>,
    by: &Value,
) -> Result<Option<String>, Error> {
    if decided.kind == ApprovalKind::Collapsed {
        return match panel.press_approval(Some(&decided.id), Press::Open, by)? {
            Pressing::Opened { .. } => Ok(None),
            Pressing::Refused { reason, .. } => Err(Error::Failed(reason)),
            Pressing::Pressed { label, .. } => Err(Error::Failed(format!(
                "asked only to open a collapsed step, the page pressed '{label}'"
            ))),
        };
    }
    let press = action
        .as_ref()
        .and_then(Action::press)
        .expect("only presses are sent here");
    Ok(Some(
        approve::answer(panel, Some(&decided.id), press, by)?.pressed,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::panel::Place;

    fn approval(kind: ApprovalKind, command: Option<&str>) -> Approval {
        Approval::new(
            kind,
            command.map(String::from),
            &["Run"],
            Place::Panel,
            "test",
        )
    }

    #[test]
    fn the_first_matching_rule_decides() {
        let p = Policy::parse(
            r#"[
              {"kind": "command", "command": "^cargo test", "action": "approve"},
              {"kind": "command", "command": "rm +-[a-z]*r", "action": "deny"},
              {"kind": "permission", "action": "approve:once"},
              {"kind": "any", "action": "ask"}
            ]"#,
        )
        .unwrap();
        let decide = |a: &Approval| p.decide(a).map(|(i, a)| (i, a.clone()));
        let cmd = |c| approval(ApprovalKind::Command, Some(c));
        assert_eq!(decide(&cmd("cargo test")), Some((0, Action::Approve(None))));
        assert_eq!(decide(&cmd("rm -rf build")), Some((1, Action::Deny)));
        assert_eq!(decide(&cmd("ls")), Some((3, Action::Ask)));
        assert_eq!(
            decide(&approval(ApprovalKind::Permission, None)),
            Some((2, Action::Approve(Some("once".into()))))
        );
        let narrow =
            Policy::parse(r#"[{"kind": "command", "command": "x", "action": "deny"}]"#).unwrap();
        // A command rule does not match an approval without a command.
        assert!(narrow.decide(&approval(ApprovalKind::Plan, None)).is_none());
        assert!(
            narrow
                .decide(&approval(ApprovalKind::Command, Some("y")))
                .is_none()
        );
    }

    /// No cut-off: a rule looks at the whole of a long command, a `deny` at its end
    /// included, and a pathological pattern answers as quickly as any.
    #[test]
    fn long_commands_are_matched_whole() {
        let p = Policy::parse(
            r#"[
              {"kind": "command", "command": "rm -rf /$", "action": "deny"},
              {"kind": "command", "command": "^(\\w+ ?)+$", "action": "approve"}
            ]"#,
        )
        .unwrap();
        let decide = |c: &str| p.decide(&approval(ApprovalKind::Command, Some(c)));
        let words = "cargo test ".repeat(1024);
        assert_eq!(decide(words.trim_end()).map(|(i, _)| i), Some(1));
        assert_eq!(decide(&format!("{words}!")), None);
        assert_eq!(decide(&format!("{words}rm -rf /")).map(|(i, _)| i), Some(0));
    }

    /// Every part must be approved, by the same action, and none denied.
    #[test]
    fn a_compound_command_is_decided_part_by_part() {
        let p = Policy::parse(
            r#"[
              {"kind": "command", "command": "^cargo (test|check)( |$)", "action": "approve"},
              {"kind": "command", "command": "^ls$", "action": "approve"},
              {"kind": "command", "command": "^git status$", "action": "approve:always"},
              {"kind": "command", "command": "rm +-[a-z]*r", "action": "deny"},
              {"kind": "command", "command": "^echo", "action": "ask"}
            ]"#,
        )
        .unwrap();
        let decide = |c: &str| {
            p.decide(&approval(ApprovalKind::Command, Some(c)))
                .map(|(i, a)| (i, a.name()))
        };
        let said = |i: usize, a: &str| Some((i, a.to_string()));
        assert_eq!(decide("cargo test && ls"), said(0, "approve"));
        assert_eq!(decide("ls; cargo check | ls"), said(1, "approve"));
        // A part not approved (by no rule, by `ask`) leaves the whole to a person.
        assert_eq!(decide("cargo test && make"), None);
        assert_eq!(decide("cargo test\necho hi"), said(4, "ask"));
        // A part denied denies the whole, wherever it is.
        assert_eq!(decide("cargo test && rm -rf ~"), said(3, "deny"));
        assert_eq!(decide("echo $(rm -rf ~)"), said(3, "deny"));
        assert_eq!(decide("echo hi; make; rm -rf ~"), said(3, "deny"));
        assert_eq!(decide("cargo test `rm -r x`"), said(3, "deny"));
        // Parts approved by different actions: a person chooses.
        assert_eq!(decide("git status; ls"), None);
        assert_eq!(decide("git status"), said(2, "approve:always"));
        // Quoted separators do not split; a subshell is its parts.
        assert_eq!(decide("cargo test 'a && b'"), said(0, "approve"));
        assert_eq!(decide("(cargo check && ls)"), said(0, "approve"));
        // Unsplittable: never approved, still denied.
        assert_eq!(decide("cargo test 'open"), None);
        assert_eq!(decide("cargo test 'open; rm -rf ~"), said(3, "deny"));
        assert_eq!(decide("echo 'open"), said(4, "ask"));
        // Only separators: the text itself.
        assert_eq!(decide(";"), None);
    }

    /// The example policy in README.md and the decisions listed under it are what
    /// angrav does, so the documentation cannot drift.
    #[test]
    fn the_readme_example_policy_decides_as_documented() {
        let readme = include_str!("../README.md");
        let section = &readme[readme
            .find("**Policies** answer approvals")
            .expect("section")..];
        let block = |fence: &str, from: &str| -> String {
            let start = from.find(fence).expect("a fenced block") + fence.len();
            let end = start + from[start..].find("```").expect("closed");
            from[start..end].to_string()
        };
        let policy = Policy::parse(&block("```json\n", section)).expect("the README's policy");
        let examples = block("```text\n", section);
        let mut seen = 0;
        for line in examples.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let (command, said) = line.split_once(" → ").expect("COMMAND → ACTION, rule N");
            let decided = policy
                .decide(&approval(ApprovalKind::Command, Some(command.trim())))
                .map_or("ask, no rule".to_string(), |(i, a)| {
                    format!("{}, rule {i}", a.name())
                });
            assert_eq!(decided, said, "{command}");
            seen += 1;
        }
        assert!(seen >= 5, "the README's examples: {examples}");
        let both = "cargo test && rm -rf ~";
        assert!(examples.contains(both));
        let decided = policy.decide(&approval(ApprovalKind::Command, Some(both)));
        assert!(!matches!(decided, Some((_, Action::Approve(_)))));
    }

    #[test]
    fn a_malformed_policy_names_the_line() {
        let cases = [
            (
                "[\n {\"kind\": \"command\", \"action\": \"run\"}\n]",
                "line 2",
                "unknown action 'run'",
            ),
            (
                "[\n\n {\"kind\": \"nope\", \"action\": \"ask\"}]",
                "line 3",
                "unknown kind 'nope'",
            ),
            (
                "[\n {\"kind\": \"command\",\n  \"command\": \"(a\", \"action\": \"ask\"}]",
                "line 2: rule 0",
                "not closed",
            ),
            (
                "[\n {\"kind\": \"any\", \"action\": \"ask\", \"when\": 1}]",
                "line 2",
                "unknown field 'when'",
            ),
            (
                "[{\"kind\": \"any\", \"action\": \"ask\"},\n \"[{x}]\",\n {}]",
                "line 2: rule 1",
                "a rule is an object",
            ),
            (
                "[{\"kind\": \"any\", \"action\": \"ask\"}, {\"kind\": \"any\", \"action\": \"deny\"},\n {\"kind\": \"plan\"}]",
                "line 2: rule 2",
                "'action' is missing",
            ),
            ("{\"kind\": \"any\"}", "line 1", "a JSON list"),
            (
                "[\n {\"kind\": \"any\" \"action\": \"ask\"}]",
                "line 2",
                "expected",
            ),
        ];
        for (text, line, what) in cases {
            let e = Policy::parse(text).unwrap_err();
            assert!(e.starts_with(line) && e.contains(what), "{text:?}: {e}");
        }
    }
}
