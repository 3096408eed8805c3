//! How results look: JSON on stdout with `--json`, short readable text otherwise.

use serde::Serialize;

use super::color;
use crate::panel::{Layout, Message, Snapshot, State};
use crate::registry::Listed;
use crate::sessions::{Manager, Session};

pub(super) fn describe_state(s: &Snapshot) -> String {
    let mut out = s.state.name().to_string();
    if let Some(e) = &s.error {
        out += &format!(": {e}");
    }
    if let Some(q) = &s.quota_resume {
        out += &format!(" (resumes at {q})");
    }
    if !s.approvals.is_empty() {
        out += &format!(" (choices: {})", s.approvals.join(", "));
    }
    out
}

pub(super) fn print_answer(m: &Message, json: bool) {
    if json {
        println!("{}", serde_json::to_string(m).expect("serialises"));
    } else {
        println!("{}", m.content);
    }
}

#[derive(Serialize)]
struct Status<'a> {
    session: &'a Session,
    #[serde(flatten)]
    snapshot: &'a Snapshot,
}

pub(super) fn print_status(session: &Session, snap: &Snapshot, json: bool) {
    if json {
        println!(
            "{}",
            serde_json::to_string(&Status {
                session,
                snapshot: snap
            })
            .expect("serialises")
        );
        return;
    }
    let layout = snap.layout.map_or("none", Layout::name);
    println!(
        "{}  {}  {}",
        session.id,
        session.workspace.as_deref().unwrap_or("-"),
        describe_state(snap)
    );
    println!("  title:    {}", session.title);
    println!("  layout:   {layout}");
    let input = match (snap.input_found, snap.input_editable) {
        (false, _) => "not found",
        (true, true) => "editable",
        (true, false) => "read-only",
    };
    println!(
        "  messages: {} user, {} agent; input {input}",
        snap.user_messages, snap.agent_messages
    );
    println!("  markers:  {}", snap.markers.join("; "));
}

/// A line of `sessions list --json`: a chat, or (with `--all`) a window that is not one.
#[derive(Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Row<'a> {
    Session(&'a Listed),
    Manager {
        #[serde(flatten)]
        window: &'a Manager,
        state: Option<State>,
    },
}

/// The chats with their states, then the `managers` (given with `--all`).
pub(super) fn print_list(list: &[Listed], managers: &[Manager], json: bool) {
    if json {
        let rows: Vec<Row> = list
            .iter()
            .map(Row::Session)
            .chain(managers.iter().map(|window| Row::Manager {
                window,
                state: None,
            }))
            .collect();
        println!("{}", serde_json::to_string(&rows).expect("serialises"));
        return;
    }
    if list.is_empty() {
        eprintln!("angrav: no Antigravity editor windows found");
    }
    let w = list
        .iter()
        .map(|l| l.session.workspace.as_deref().unwrap_or("-").len())
        .max()
        .unwrap_or(1);
    let w = w.max("WORKSPACE".len());
    let id_w = list
        .iter()
        .map(|l| l.session.id.len())
        .chain(managers.iter().map(|m| m.id.len()))
        .max()
        .unwrap_or(0)
        .max("ID".len());
    let several = list
        .iter()
        .any(|l| l.session.endpoint != list[0].session.endpoint);
    if !list.is_empty() || !managers.is_empty() {
        let endpoint = if several { "  ENDPOINT" } else { "" };
        println!(
            "{:id_w$}  {:w$}  {:17}  {:13}  TITLE{endpoint}",
            "ID", "WORKSPACE", "STATE", "LAYOUT"
        );
    }
    for l in list {
        let state = l.state.map_or("unknown", State::name);
        let layout = l.layout.map_or("-", Layout::name);
        let ws = l.session.workspace.as_deref().unwrap_or("-");
        let endpoint = if several {
            format!("  {}", l.session.endpoint)
        } else {
            String::new()
        };
        println!(
            "{:id_w$}  {ws:w$}  {}  {layout:13}  {}{endpoint}",
            l.session.id,
            color::paint(state, &format!("{state:17}")),
            l.session.title
        );
        if let Some(p) = &l.problem {
            println!("    {p}");
        }
    }
    for m in managers {
        println!(
            "{:id_w$}  {:w$}  {:17}  {:13}  {}",
            m.id, "-", "manager", "-", m.title
        );
    }
}
