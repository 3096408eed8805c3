//! State colours in tables on a terminal: `--color auto` (the default: stdout a
//! terminal, `NO_COLOR` unset and `TERM` not `dumb`), `always` or `never`.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};

use super::usage;
use crate::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum When {
    Auto,
    Always,
    Never,
}

impl When {
    pub fn parse(s: &str) -> Result<When, Error> {
        match s {
            "auto" => Ok(When::Auto),
            "always" => Ok(When::Always),
            "never" => Ok(When::Never),
            _ => Err(usage(format!(
                "--color takes auto, always or never, not '{s}'"
            ))),
        }
    }
}

static ON: AtomicBool = AtomicBool::new(false);

/// Decides once, before anything is printed.
pub(super) fn init(when: When) {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let on = match when {
        When::Always => true,
        When::Never => false,
        When::Auto => !no_color && !dumb_terminal() && std::io::stdout().is_terminal(),
    };
    ON.store(on, Ordering::Relaxed);
}

/// `TERM=dumb`: a terminal that takes no escape codes (no colours, no cursor moves).
pub(super) fn dumb_terminal() -> bool {
    std::env::var_os("TERM").is_some_and(|t| t == "dumb")
}

/// `text` (a state or status name, padded or not) in the colour of `name`.
pub(super) fn paint(name: &str, text: &str) -> String {
    if !ON.load(Ordering::Relaxed) {
        return text.to_string();
    }
    let code = match name {
        "idle" | "done" => "32",               // green
        "thinking" | "pending" => "33",        // yellow
        "awaiting_approval" => "35",           // magenta
        "error" | "failed" | "closed" => "31", // red
        "no_panel" | "unknown" => "2",         // dim
        _ => return text.to_string(),
    };
    format!("\x1b[{code}m{text}\x1b[0m")
}
