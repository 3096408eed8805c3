//! What angrav shows a person: durations as it writes them, its own messages on
//! stderr, and page text made harmless for a terminal.
//!
//! Answers, titles and error texts come from web pages, and a page can hold escape
//! sequences: OSC 52 writes the user's clipboard, `ESC[2J` clears the screen, C1
//! controls are escape sequences of their own on some terminals, and bidi overrides
//! make text read differently from what it is. Shown on a terminal, such characters
//! are written visibly instead (`\e]52;…`), so the text is readable and inert; into a
//! pipe or a file (or with `--raw`) text is written as it is.

use std::borrow::Cow;
use std::io::{IsTerminal, Write};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// `850 ms` under ten seconds, `42 s` from then on.
pub fn duration(d: Duration) -> String {
    if d.as_millis() < 10_000 {
        format!("{} ms", d.as_millis())
    } else {
        format!("{} s", d.as_secs())
    }
}

/// The first line of a text, at most `max` characters, `…` marking what was left out:
/// a page's long text (an answer, a command) in a line of its own.
pub fn first_line(text: &str, max: usize) -> String {
    let line = text.lines().next().unwrap_or("");
    if line.chars().count() > max || text.lines().nth(1).is_some() {
        line.chars().take(max).collect::<String>() + "…"
    } else {
        line.to_string()
    }
}

/// `error: quota reached (resumes at 14:00)`, `awaiting_approval (approvals: 3fa2c1d0
/// command: cargo test (Run, Reject))`, `awaiting_input (question: Which database?
/// options: Postgres, SQLite)`: a chat's state and what it says of it, on a line.
pub fn state(
    state: &str,
    error: Option<&str>,
    quota_resume: Option<&str>,
    approvals: &[crate::panel::Approval],
    question: Option<&crate::panel::Question>,
) -> String {
    let mut out = state.to_string();
    if let Some(e) = error {
        out += &format!(": {e}");
    }
    if let Some(q) = quota_resume {
        out += &format!(" (resumes at {q})");
    }
    if !approvals.is_empty() {
        out += &format!(" (approvals: {})", crate::approve::listed(approvals));
    }
    if let Some(q) = question {
        out += &format!(" ({})", asked(q));
    }
    out
}

/// What a snapshot shows, as [`state`] writes it.
pub fn snapshot(s: &crate::panel::Snapshot) -> String {
    state(
        s.state.name(),
        s.error.as_deref(),
        s.quota_resume.as_deref(),
        &s.approvals,
        s.question.as_deref(),
    )
}

/// [`snapshot`] with the messages it counts: what was seen of a turn that did not
/// go on (`thinking; 1 user and 0 agent messages`).
pub fn seen(s: &crate::panel::Snapshot) -> String {
    format!(
        "{}; {} user and {} agent messages",
        snapshot(s),
        s.user_messages,
        s.agent_messages
    )
}

/// `question: Which database? options: Postgres, SQLite`: what a question form asks.
pub fn asked(q: &crate::panel::Question) -> String {
    let text = q.text.as_deref().unwrap_or("(no text)");
    format!("question: {text} options: {}", q.options.join(", "))
}

/// `angrav: TEXT` on stderr (what the `warn!` macro writes). A stderr that cannot be
/// written to is no reason to stop.
pub fn message(text: &str) {
    let text = text.strip_prefix("angrav: ").unwrap_or(text);
    let _ = writeln!(std::io::stderr(), "angrav: {}", shown(text, Stream::Stderr));
}

/// `--raw`: page text goes to a terminal unaltered.
static RAW: AtomicBool = AtomicBool::new(false);

pub fn set_raw(raw: bool) {
    RAW.store(raw, Ordering::Relaxed);
}

#[derive(Clone, Copy)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    /// Whether text written to this stream is neutralised: a terminal, without `--raw`.
    fn guarded(self) -> bool {
        static STDOUT: OnceLock<bool> = OnceLock::new();
        static STDERR: OnceLock<bool> = OnceLock::new();
        let terminal = match self {
            Stream::Stdout => *STDOUT.get_or_init(|| std::io::stdout().is_terminal()),
            Stream::Stderr => *STDERR.get_or_init(|| std::io::stderr().is_terminal()),
        };
        terminal && !RAW.load(Ordering::Relaxed)
    }
}

/// Text as it may be written to `stream`. angrav's own text holds no control
/// characters, so whole lines may pass through here; cursor codes must not.
pub fn shown(text: &str, stream: Stream) -> Cow<'_, str> {
    if stream.guarded() {
        neutralise(text)
    } else {
        Cow::Borrowed(text)
    }
}

/// A character a terminal could act on: C0 controls but newline and tab, DEL, C1
/// controls, and the bidi embedding, override and isolate characters.
fn is_unsafe(c: char) -> bool {
    matches!(c,
        '\0'..='\x08' | '\x0b'..='\x1f' | '\x7f'..='\u{9f}'
        | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `text` with every character a terminal could act on written visibly: ESC as `\e`,
/// CR as `\r`, other C0 controls and DEL as `\xNN`, the rest as `\u{NNNN}`. Newlines
/// and tabs stay; text without such characters is returned as it is.
pub fn neutralise(text: &str) -> Cow<'_, str> {
    if !text.contains(is_unsafe) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '\x1b' => out.push_str("\\e"),
            '\r' => out.push_str("\\r"),
            c if c < '\u{80}' && is_unsafe(c) => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if is_unsafe(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Serialised JSON with DEL, C1 and bidi characters written as `\uNNNN` escapes, which
/// serde_json leaves raw (it escapes only C0): the same JSON value, inert on a
/// terminal. Such characters only occur inside JSON strings, so escaping them in place
/// keeps the document valid.
pub fn json_escaped(json: String) -> String {
    if !json.contains(is_unsafe) {
        return json;
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if is_unsafe(c) {
            out.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// Lines angrav keeps up to date in place on a terminal (the live status lines of a
/// wait, the watch table): each redraw moves the cursor back over the lines drawn
/// last and rewrites only those, so what was on the screen above them stays.
#[derive(Default)]
pub struct Block {
    drawn: usize,
}

impl Block {
    /// The codes and text that replace the lines drawn last with `lines` (each
    /// already shown as the stream may take it, ending in a newline).
    pub fn redraw(&mut self, lines: &[String]) -> String {
        let mut out = self.up();
        for l in lines {
            out += "\x1b[2K";
            out += l;
        }
        // Fewer lines than last time: the rest of the old block goes.
        out += "\x1b[J";
        self.drawn = lines.len();
        out
    }

    /// The codes that remove the lines drawn, leaving the cursor where they began.
    pub fn clear(&mut self) -> String {
        let out = self.up() + "\x1b[J";
        self.drawn = 0;
        out
    }

    fn up(&self) -> String {
        if self.drawn == 0 {
            String::new()
        } else {
            format!("\r\x1b[{}A", self.drawn)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_are_shown_visibly() {
        assert_eq!(
            neutralise("copy \x1b]52;c;aGk=\x07 done"),
            "copy \\e]52;c;aGk=\\x07 done"
        );
        assert_eq!(
            neutralise("\x1b[2J\u{9b}31m\u{202e}olleh\u{2069}\x7f\r"),
            "\\e[2J\\u{9b}31m\\u{202e}olleh\\u{2069}\\x7f\\r"
        );
        assert_eq!(neutralise("\0"), "\\x00");
    }

    #[test]
    fn ordinary_text_is_untouched() {
        let text = "## agent\n\n\tfn main() {}\nüñíçødé \\e 日本 \u{a0}é";
        assert!(matches!(neutralise(text), Cow::Borrowed(t) if t == text));
    }

    #[test]
    fn json_keeps_its_value() {
        let original = "a\x1b]52;\u{9b}\u{85}\u{202e}\x7fz \"q\" é";
        let json = serde_json::to_string(original).unwrap();
        let escaped = json_escaped(json);
        assert!(!escaped.contains(is_unsafe), "{escaped}");
        assert_eq!(serde_json::from_str::<String>(&escaped).unwrap(), original);
    }
}
