//! Approval policies for unattended runs: a JSON list of rules, the first that
//! matches an approval decides (`approve`, `approve:CHOICE`, `deny`, `ask`), and an
//! [`Autopilot`] that applies them to the sessions a wait or a watch monitors.
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

    /// The first rule matching `approval`: its index and action; `None` when no rule
    /// matches (a person decides). A command longer than [`LONGEST_MATCHED`] is left to
    /// a person once a rule would look at its text: the small backtracking matcher
    /// takes time and stack in proportion to the text, and a rule must never be
    /// skipped (a `deny` not reached) because the text was too long for it.
    pub fn decide(&self, approval: &Approval) -> Option<(usize, &Action)> {
        let too_long = approval
            .command
            .as_ref()
            .is_some_and(|c| c.chars().count() > LONGEST_MATCHED);
        self.rules.iter().enumerate().find_map(|(i, r)| {
            if too_long && r.command.is_some() {
                return Some(None);
            }
            let kind = r.kind == KindMatch::Any || r.kind == KindMatch::One(approval.kind);
            let command = r
                .command
                .as_ref()
                .is_none_or(|re| approval.command.as_deref().is_some_and(|c| re.is_match(c)));
            (kind && command).then_some(Some((i, &r.action)))
        })?
    }
}

/// The longest command text a rule's pattern is matched against (see
/// [`Policy::decide`]).
pub const LONGEST_MATCHED: usize = 500;

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
    /// Per session (target id): the approval showing, and whether a press for it is
    /// under way (else it is left to a person).
    seen: Mutex<HashMap<String, (Approval, bool)>>,
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

    /// Decides, once per approval a session shows, and presses when the rule says so.
    /// True while the approval is being answered: the session has not stopped.
    pub fn on_snapshot(&self, session: &Session, snap: &Snapshot) -> bool {
        let mut seen = self.seen.lock().expect("policy state");
        let approval = match (&snap.state, &snap.approval) {
            (State::AwaitingApproval, Some(a)) => a,
            _ => {
                seen.remove(&session.target_id);
                return false;
            }
        };
        if let Some((known, pressing)) = seen.get(&session.target_id)
            && known == approval
        {
            return *pressing;
        }
        let decided = self.policy.decide(approval);
        let action = decided.map(|(_, a)| a.clone());
        // A collapsed step is opened first: what it asks is decided once it shows.
        let pressing = approval.kind == ApprovalKind::Collapsed
            || action.as_ref().is_some_and(|a| a.press().is_some());
        seen.insert(session.target_id.clone(), (approval.clone(), pressing));
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
            return false;
        }
        let (window, profile, report) = (
            session.window.clone(),
            self.profile.clone(),
            self.report.clone(),
        );
        let worker = std::thread::spawn(move || {
            let result = Panel::attach(&window, &profile)
                .and_then(|(mut panel, _)| press(&mut panel, &decision.approval, action));
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
        true
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

/// Presses `action` on `decided`, if it still shows; a collapsed step is only
/// opened (`Ok(None)`).
fn press(
    panel: &mut Panel,
    decided: &Approval,
    action: Option<Action>,
) -> Result<Option<String>, Error> {
    let now = match panel.press_approval(Press::Look)? {
        Pressing::Pressed { approval, .. } => approval,
        Pressing::Refused { reason, .. } => return Err(Error::Failed(reason)),
    };
    if decided.kind == ApprovalKind::Collapsed {
        return Ok(None);
    }
    if now != *decided {
        return Err(Error::Failed(format!(
            "the approval changed before it was pressed (now {})",
            approve::shown(&now)
        )));
    }
    let press = action
        .as_ref()
        .and_then(Action::press)
        .expect("only presses are sent here");
    Ok(Some(approve::answer(panel, press)?.pressed))
}

// --- a small regular-expression matcher -----------------------------------------
// Enough for command rules: `^`, `$`, `.`, classes `[a-z_]` and `[^...]`, `*`, `+`,
// `?`, alternation `|`, groups `( )`, and `\` escapes (`\d`, `\w`, `\s` as classes).
// A match may start anywhere unless anchored, as `grep -E` finds it.

/// A compiled pattern.
#[derive(Debug, Clone)]
pub struct Regex {
    alternatives: Vec<Vec<Node>>,
}

#[derive(Debug, Clone)]
enum Node {
    Char(char),
    Any,
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
    Start,
    End,
    Group(Vec<Vec<Node>>),
    Repeat {
        node: Box<Node>,
        min: usize,
        max: Option<usize>,
    },
}

impl Regex {
    pub fn new(pattern: &str) -> Result<Regex, String> {
        let chars: Vec<char> = pattern.chars().collect();
        let mut p = Parser {
            chars: &chars,
            at: 0,
        };
        let alternatives = p.alternatives()?;
        if p.at < chars.len() {
            return Err(format!("'{pattern}': unmatched ')' at {}", p.at));
        }
        Ok(Regex { alternatives })
    }

    /// Whether the pattern matches somewhere in `text`.
    pub fn is_match(&self, text: &str) -> bool {
        let text: Vec<char> = text.chars().collect();
        let m = Matcher { text: &text };
        (0..=text.len()).any(|start| {
            self.alternatives
                .iter()
                .any(|seq| m.seq(seq, start, &mut |_| true))
        })
    }
}

struct Parser<'a> {
    chars: &'a [char],
    at: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.at).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        self.at += usize::from(c.is_some());
        c
    }

    fn alternatives(&mut self) -> Result<Vec<Vec<Node>>, String> {
        let mut alts = vec![self.sequence()?];
        while self.peek() == Some('|') {
            self.at += 1;
            alts.push(self.sequence()?);
        }
        Ok(alts)
    }

    fn sequence(&mut self) -> Result<Vec<Node>, String> {
        let mut seq = Vec::new();
        while let Some(c) = self.peek() {
            if c == '|' || c == ')' {
                break;
            }
            let atom = self.atom()?;
            let (min, max) = match self.peek() {
                Some('*') => (0, None),
                Some('+') => (1, None),
                Some('?') => (0, Some(1)),
                _ => {
                    seq.push(atom);
                    continue;
                }
            };
            self.at += 1;
            if matches!(atom, Node::Start | Node::End) {
                return Err(format!("nothing to repeat at {}", self.at - 1));
            }
            seq.push(Node::Repeat {
                node: Box::new(atom),
                min,
                max,
            });
        }
        Ok(seq)
    }

    fn atom(&mut self) -> Result<Node, String> {
        let at = self.at;
        Ok(match self.next().expect("a character") {
            '(' => {
                let inner = self.alternatives()?;
                if self.next() != Some(')') {
                    return Err(format!("'(' at {at} is not closed"));
                }
                Node::Group(inner)
            }
            '[' => self.class(at)?,
            '.' => Node::Any,
            '^' => Node::Start,
            '$' => Node::End,
            '*' | '+' | '?' => return Err(format!("nothing to repeat at {at}")),
            '\\' => self.escape(at)?,
            c => Node::Char(c),
        })
    }

    fn escape(&mut self, at: usize) -> Result<Node, String> {
        let c = self.next().ok_or(format!("'\\' at {at} escapes nothing"))?;
        let class = |negated, ranges: &[(char, char)]| Node::Class {
            negated,
            ranges: ranges.to_vec(),
        };
        Ok(match c {
            'd' => class(false, &[('0', '9')]),
            'w' => class(false, &[('a', 'z'), ('A', 'Z'), ('0', '9'), ('_', '_')]),
            's' => class(
                false,
                &[(' ', ' '), ('\t', '\t'), ('\n', '\n'), ('\r', '\r')],
            ),
            c => Node::Char(c),
        })
    }

    fn class(&mut self, at: usize) -> Result<Node, String> {
        let negated = self.peek() == Some('^');
        self.at += usize::from(negated);
        let mut ranges = Vec::new();
        let mut first = true;
        loop {
            let c = self.next().ok_or(format!("'[' at {at} is not closed"))?;
            if c == ']' && !first {
                break;
            }
            first = false;
            let c = if c == '\\' {
                self.next().ok_or(format!("'[' at {at} is not closed"))?
            } else {
                c
            };
            if self.peek() == Some('-') && self.chars.get(self.at + 1).is_some_and(|&n| n != ']') {
                self.at += 1;
                let hi = self.next().expect("checked");
                if hi < c {
                    return Err(format!("range {c}-{hi} at {at} is backwards"));
                }
                ranges.push((c, hi));
            } else {
                ranges.push((c, c));
            }
        }
        Ok(Node::Class { negated, ranges })
    }
}

/// Backtracking, with `k` the rest of the match: fine for the short patterns and
/// command lines of a policy.
struct Matcher<'a> {
    text: &'a [char],
}

impl Matcher<'_> {
    fn seq(&self, nodes: &[Node], at: usize, k: &mut dyn FnMut(usize) -> bool) -> bool {
        let Some((first, rest)) = nodes.split_first() else {
            return k(at);
        };
        match first {
            Node::Repeat { node, min, max } => self.repeat(node, *min, *max, 0, at, rest, k),
            _ => self.one(first, at, &mut |next| self.seq(rest, next, k)),
        }
    }

    fn one(&self, node: &Node, at: usize, k: &mut dyn FnMut(usize) -> bool) -> bool {
        let c = self.text.get(at).copied();
        match node {
            Node::Char(x) => c == Some(*x) && k(at + 1),
            Node::Any => c.is_some() && k(at + 1),
            Node::Class { negated, ranges } => {
                c.is_some_and(|c| {
                    ranges.iter().any(|(lo, hi)| (*lo..=*hi).contains(&c)) != *negated
                }) && k(at + 1)
            }
            Node::Start => at == 0 && k(at),
            Node::End => at == self.text.len() && k(at),
            Node::Group(alts) => alts.iter().any(|seq| self.seq(seq, at, k)),
            Node::Repeat { node, min, max } => self.repeat(node, *min, *max, 0, at, &[], k),
        }
    }

    /// Greedy: one more repetition first, then the rest. A repetition that matched
    /// nothing ends the loop (past the minimum), so `(a*)*` terminates.
    #[allow(clippy::too_many_arguments)]
    fn repeat(
        &self,
        node: &Node,
        min: usize,
        max: Option<usize>,
        count: usize,
        at: usize,
        rest: &[Node],
        k: &mut dyn FnMut(usize) -> bool,
    ) -> bool {
        let more = max.is_none_or(|m| count < m)
            && self.one(node, at, &mut |next| {
                (next != at || count < min) && self.repeat(node, min, max, count + 1, next, rest, k)
            });
        more || (count >= min && self.seq(rest, at, k))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::panel::Choice;

    fn re(p: &str) -> Regex {
        Regex::new(p).unwrap_or_else(|e| panic!("{p}: {e}"))
    }

    #[test]
    fn literals_match_anywhere_unless_anchored() {
        assert!(re("cargo test").is_match("cd x && cargo test --all"));
        assert!(re("^cargo").is_match("cargo test"));
        assert!(!re("^cargo").is_match("sudo cargo test"));
        assert!(re("test$").is_match("cargo test"));
        assert!(!re("test$").is_match("cargo test --all"));
        assert!(re("^$").is_match(""));
        assert!(!re("^$").is_match("x"));
    }

    #[test]
    fn classes_ranges_and_negation() {
        assert!(re("^[a-c]+$").is_match("abcab"));
        assert!(!re("^[a-c]+$").is_match("abd"));
        assert!(re("^[^ ]+$").is_match("one"));
        assert!(!re("^[^ ]+$").is_match("one two"));
        assert!(re("[-x]").is_match("a-b"));
        assert!(re("^[]a]$").is_match("]"));
        assert!(re(r"^\d+ \w+$").is_match("42 files"));
        assert!(re(r"^a\.b$").is_match("a.b"));
        assert!(!re(r"^a\.b$").is_match("axb"));
    }

    #[test]
    fn repetition_and_optional() {
        assert!(re("^ab*c$").is_match("ac"));
        assert!(re("^ab*c$").is_match("abbbc"));
        assert!(!re("^ab+c$").is_match("ac"));
        assert!(re("^colou?r$").is_match("color"));
        assert!(re("^colou?r$").is_match("colour"));
        assert!(re("^a.*z$").is_match("a to z"));
        assert!(re("^(a*)*b$").is_match("aaab"));
        assert!(!re("^(a*)*b$").is_match("aaac"));
        assert!(re("^(a?)+$").is_match(""));
    }

    #[test]
    fn alternation_and_groups() {
        let r = re("^cargo (test|check|build)( |$)");
        assert!(r.is_match("cargo test"));
        assert!(r.is_match("cargo check --all"));
        assert!(!r.is_match("cargo testify"));
        assert!(!r.is_match("cargo run"));
        assert!(re("rm|mv").is_match("git mv a b"));
        assert!(re("rm +-[a-z]*r").is_match("rm -rf build"));
        assert!(re("rm +-[a-z]*r").is_match("rm  -fr /"));
        assert!(!re("rm +-[a-z]*r").is_match("rm -f x"));
    }

    #[test]
    fn malformed_patterns_are_refused() {
        for bad in ["(a", "a)", "[ab", "*a", "a|+", r"x\", "[z-a]", "^*"] {
            assert!(Regex::new(bad).is_err(), "{bad}");
        }
    }

    fn approval(kind: ApprovalKind, command: Option<&str>) -> Approval {
        Approval {
            kind,
            command: command.map(String::from),
            choices: vec![Choice {
                label: "Run".into(),
            }],
        }
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

    #[test]
    fn a_command_too_long_to_match_is_left_to_a_person() {
        let p = Policy::parse(
            r#"[
              {"kind": "permission", "action": "approve"},
              {"kind": "command", "command": "rm", "action": "deny"},
              {"kind": "any", "action": "approve"}
            ]"#,
        )
        .unwrap();
        let long = format!("rm -rf / {}", "x".repeat(LONGEST_MATCHED));
        // Not denied by a rule that could not look at it, and not approved past it.
        assert!(
            p.decide(&approval(ApprovalKind::Command, Some(&long)))
                .is_none()
        );
        let short = approval(ApprovalKind::Command, Some("rm -rf /"));
        assert_eq!(p.decide(&short).map(|(i, _)| i), Some(1));
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
