//! The one place results and messages are written.
//!
//! Results go to stdout: JSON with `--json`, short readable text otherwise. Messages go
//! to stderr. On a terminal, page text (answers, titles, error texts, approval labels)
//! is shown with its control characters and escape sequences made visible (see
//! [`crate::show`]) unless `--raw`; into a pipe or a file it is written as it is. A reader
//! that goes away ends angrav at once, with exit code 0, as `head` users expect.

use std::io::Write;

use serde::Serialize;

use super::color;
use crate::panel::{Layout, Message, Snapshot, State};
use crate::registry::{ListRow, Listed};
use crate::sessions::{Manager, Session};
use crate::show::json_escaped;
pub(super) use crate::show::{Stream, message, set_raw, shown};

/// Results on stdout.
pub(super) fn print(text: &str) {
    write_stdout(&shown(text, Stream::Stdout));
}

/// A line of results on stdout.
pub(super) fn line(text: &str) {
    print(&format!("{text}\n"));
}

/// Text on stdout as it is: for text already [`shown`] with angrav's cursor codes.
pub(super) fn write_stdout(text: &str) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            // The reader is gone (`| head -1`): nothing is left to do.
            std::process::exit(0);
        }
        message(&format!("cannot write the results: {e}"));
        std::process::exit(i32::from(crate::exit::FAILURE));
    }
}

/// One JSON document on a line of stdout. Control characters are escaped, so it is
/// safe on a terminal and still the exact text once parsed.
pub(super) fn json(value: &impl Serialize) {
    let text = serde_json::to_string(value).expect("serialises");
    write_stdout(&(json_escaped(text) + "\n"));
}

/// One JSON document on a line of stderr: an error, with `--json`.
pub(super) fn json_message(value: &impl Serialize) {
    let text = serde_json::to_string(value).expect("serialises");
    let _ = writeln!(std::io::stderr(), "{}", json_escaped(text));
}

/// Ends angrav (exit 0) as soon as stdout is a pipe or socket whose reader has gone,
/// even while nothing is being written: `sessions watch --json | head -1` stops when
/// `head` does, not at an event that may never come. Costs one thread blocked in
/// `poll(2)`, and nothing when stdout is a terminal or a file.
pub(super) fn exit_when_stdout_closes() {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsFd;
        use std::os::unix::fs::FileTypeExt;
        let Ok(fd) = std::io::stdout().as_fd().try_clone_to_owned() else {
            return;
        };
        let Ok(meta) = std::fs::File::from(fd).metadata() else {
            return;
        };
        if !(meta.file_type().is_fifo() || meta.file_type().is_socket()) {
            return;
        }
        let _ = std::thread::Builder::new()
            .name("stdout-reader".into())
            .spawn(|| {
                if poll::hung_up(1) {
                    std::process::exit(0);
                }
            });
    }
}

#[cfg(target_os = "linux")]
mod poll {
    use std::ffi::{c_int, c_short, c_ulong};

    /// `struct pollfd` of poll(2).
    #[repr(C)]
    struct PollFd {
        fd: c_int,
        events: c_short,
        revents: c_short,
    }

    const POLLERR: c_short = 0x8;
    const POLLHUP: c_short = 0x10;

    unsafe extern "C" {
        /// poll(2) from the C library std already links.
        fn poll(fds: *mut PollFd, nfds: c_ulong, timeout: c_int) -> c_int;
    }

    /// Blocks until `fd` reports an error or hang-up (for the write end of a pipe:
    /// its last reader closed it); false when it cannot be watched.
    pub(super) fn hung_up(fd: c_int) -> bool {
        loop {
            // No events asked for: POLLERR and POLLHUP are always reported.
            let mut p = PollFd {
                fd,
                events: 0,
                revents: 0,
            };
            // SAFETY: `p` is one valid, exclusively borrowed pollfd for the call's
            // duration, and nfds is 1; timeout -1 blocks until an event.
            let n = unsafe { poll(&mut p, 1, -1) };
            if n > 0 {
                return p.revents & (POLLERR | POLLHUP) != 0;
            }
            if n < 0 && std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
                return false;
            }
        }
    }
}

/// Rows under a header, each column as wide as its widest cell (the last one as it
/// is), two spaces between: the plain tables of `turns`, `log` and `sessions watch`.
/// Cells are measured as stdout shows them (page text made visible on a terminal).
pub(super) fn columns(header: &[&str], rows: &[Vec<String>]) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            r.iter()
                .map(|c| shown(c, Stream::Stdout).into_owned())
                .collect()
        })
        .collect();
    let width = |i: usize| {
        rows.iter()
            .filter_map(|r| r.get(i))
            .map(|c| c.chars().count())
            .chain([header[i].chars().count()])
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = (0..header.len()).map(width).collect();
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut out = String::new();
        for (i, cell) in cells.enumerate() {
            if i + 1 < widths.len() {
                let pad = widths[i].saturating_sub(cell.chars().count());
                out += &format!("{cell}{:pad$}  ", "");
            } else {
                out += cell;
            }
        }
        out.trim_end().to_string() + "\n"
    };
    let mut out = line(&mut header.iter().copied());
    for r in &rows {
        out += &line(&mut r.iter().map(String::as_str));
    }
    out
}

/// `1 event`, `2 events`.
pub(super) fn count(n: impl Into<u64>, thing: &str) -> String {
    let n = n.into();
    if n == 1 {
        format!("1 {thing}")
    } else {
        format!("{n} {thing}s")
    }
}

pub(super) fn print_answer(m: &Message, json: bool) {
    if json {
        self::json(m);
    } else {
        line(&m.content);
    }
}

#[derive(Serialize)]
struct Status<'a> {
    session: &'a Session,
    #[serde(flatten)]
    snapshot: &'a Snapshot,
    /// The quota of the chat's model, when a language server was named (`--ls`).
    #[serde(skip_serializing_if = "Option::is_none")]
    quota: Option<&'a crate::ls::model::Quota>,
}

pub(super) fn print_status(
    session: &Session,
    snap: &Snapshot,
    quota: Option<&crate::ls::model::Quota>,
    json: bool,
) {
    if json {
        return self::json(&Status {
            session,
            snapshot: snap,
            quota,
        });
    }
    let layout = snap.layout.map_or("none", Layout::name);
    line(&format!(
        "{}  {}  {}",
        session.id,
        session.workspace.as_deref().unwrap_or("-"),
        crate::show::snapshot(snap)
    ));
    line(&format!("  title:    {}", session.title));
    line(&format!("  layout:   {layout}"));
    let input = match (snap.input_found, snap.input_editable) {
        (false, _) => "not found",
        (true, true) => "editable",
        (true, false) => "read-only",
    };
    line(&format!(
        "  messages: {} user, {} agent; input {input}",
        snap.user_messages, snap.agent_messages
    ));
    if let Some(a) = &snap.approval {
        let command = a
            .command
            .as_deref()
            .map_or(String::new(), |c| format!(": {c}"));
        line(&format!("  approval: {}{command}", a.kind.name()));
    }
    let shown = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    line(&format!(
        "  chat:     {}; mode {}; model {}",
        shown(&snap.title),
        shown(&snap.mode),
        shown(&snap.model)
    ));
    if let Some(q) = quota {
        line(&format!("  quota:    {}", super::ls::quota_text(q)));
    }
    line(&format!("  markers:  {}", snap.markers.join("; ")));
}

/// The chats with their states, then the `managers` (given with `--all`).
pub(super) fn print_list(list: &[Listed], managers: &[Manager], json: bool) {
    if json {
        return self::json(&ListRow::all(list, managers));
    }
    if list.is_empty() {
        message("no Antigravity editor windows found");
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
        line(&format!(
            "{:id_w$}  {:w$}  {:17}  {:13}  TITLE{endpoint}",
            "ID", "WORKSPACE", "STATE", "LAYOUT"
        ));
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
        // Page text shown piece by piece, so that the state's colour codes stay.
        let left = format!("{:id_w$}  {ws:w$}  ", l.session.id);
        let right = format!("  {layout:13}  {}{endpoint}", l.session.title);
        write_stdout(&format!(
            "{}{}{}\n",
            shown(&left, Stream::Stdout),
            color::paint(state, &format!("{state:17}")),
            shown(&right, Stream::Stdout)
        ));
        if let Some(p) = &l.problem {
            line(&format!("    {p}"));
        }
    }
    for m in managers {
        line(&format!(
            "{:id_w$}  {:w$}  {:17}  {:13}  {}",
            m.id, "-", "manager", "-", m.title
        ));
    }
}
