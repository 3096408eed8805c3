//! How results look: JSON on stdout with `--json`, short readable text otherwise.

use serde::Serialize;

use crate::panel::{Layout, Message, Snapshot, State};
use crate::registry::Listed;
use crate::sessions::Session;

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
    if let Some(a) = &snap.approval {
        let command = a
            .command
            .as_deref()
            .map_or(String::new(), |c| format!(": {c}"));
        println!("  approval: {}{command}", a.kind.name());
    }
    let shown = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    println!(
        "  chat:     {}; mode {}; model {}",
        shown(&snap.title),
        shown(&snap.mode),
        shown(&snap.model)
    );
    println!("  markers:  {}", snap.markers.join("; "));
}

pub(super) fn print_list(list: &[Listed], json: bool) {
    if json {
        println!("{}", serde_json::to_string(list).expect("serialises"));
        return;
    }
    if list.is_empty() {
        eprintln!("angrav: no Antigravity editor windows found");
        return;
    }
    let w = list
        .iter()
        .map(|l| l.session.workspace.as_deref().unwrap_or("-").len())
        .max()
        .unwrap_or(1);
    let several = list
        .iter()
        .any(|l| l.session.endpoint != list[0].session.endpoint);
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
            "{}  {ws:w$}  {state:17}  {layout:13}  {}{endpoint}",
            l.session.id, l.session.title
        );
        if let Some(p) = &l.problem {
            println!("    {p}");
        }
    }
}
