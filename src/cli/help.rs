//! `--help`: the whole command line, or one command with its own flags. Each flag and
//! command is described once, here, and both views are made from the same table.

struct Cmd {
    words: &'static str,
    args: &'static str,
    summary: &'static str,
    flags: &'static [&'static str],
}

/// Flags every command takes that talks to Antigravity.
const COMMON: &[&str] = &["--cdp", "--json", "--selectors"];

const COMMANDS: &[Cmd] = &[
    Cmd {
        words: "sessions list",
        args: "",
        summary: "every chat: id, workspace, title, state, layout, endpoint",
        flags: &[],
    },
    Cmd {
        words: "sessions wait",
        args: "",
        summary: "wait for chats to stop: the first (--any) or every one (--all, the default)",
        flags: &[
            "--any",
            "--all",
            "--session",
            "--timeout",
            "--settle",
            "--no-extract",
        ],
    },
    Cmd {
        words: "sessions fanout",
        args: " TEXT",
        summary: "the same prompt to every chosen chat (default: every idle one), sent concurrently; each chat's own answer is awaited and collected (TEXT may be - for stdin, or use -f FILE)",
        flags: &["--session", "--timeout", "--settle", "--no-extract", "-f"],
    },
    Cmd {
        words: "sessions run",
        args: "",
        summary: "a prompt per chat: --task ID=TEXT (repeatable), or -f FILE with a JSON list of {\"session\", \"prompt\"} (- for stdin); awaited like fanout",
        flags: &["--task", "-f", "--timeout", "--settle", "--no-extract"],
    },
    Cmd {
        words: "sessions watch",
        args: "",
        summary: "follow state changes: a snapshot line per chat, then one line per event (state_change, new_session, session_closed); NDJSON with --json; runs until interrupted",
        flags: &[
            "--session",
            "--until-idle",
            "--count",
            "--timeout",
            "--settle",
        ],
    },
    Cmd {
        words: "status",
        args: "",
        summary: "one chat's state (idle, thinking, awaiting_approval, error, no_panel) and the markers that say so",
        flags: &["--session"],
    },
    Cmd {
        words: "prompt",
        args: " TEXT",
        summary: "send a prompt (TEXT, - for stdin, or -f FILE) and confirm the turn started; a busy agent is refused",
        flags: &["--session", "-f", "--wait", "--timeout", "--settle"],
    },
    Cmd {
        words: "wait",
        args: "",
        summary: "wait until the agent has stopped: idle for the settle time, awaiting approval, or in error",
        flags: &["--session", "--timeout", "--settle"],
    },
    Cmd {
        words: "output last",
        args: "",
        summary: "the last answer as Markdown (--json: with its thoughts and code blocks)",
        flags: &["--session"],
    },
    Cmd {
        words: "output code",
        args: "",
        summary: "the last answer's code blocks",
        flags: &["--session", "--lang"],
    },
    Cmd {
        words: "history",
        args: "",
        summary: "every message of the conversation, oldest first",
        flags: &["--session"],
    },
    Cmd {
        words: "new",
        args: "",
        summary: "start a new conversation",
        flags: &["--session"],
    },
    Cmd {
        words: "simulate",
        args: "",
        summary: "start a simulated Antigravity (headless Chromium) and print its endpoint; runs until stopped",
        flags: &["--windows", "--layout", "--scenario"],
    },
    Cmd {
        words: "demo",
        args: "",
        summary: "the main job: against Antigravity, list every chat; against the simulator (started when none answers), also prompt every chat and print the answers",
        flags: &["--settle"],
    },
    Cmd {
        words: "profile",
        args: "",
        summary: "print the built-in selector profile, a start for --selectors",
        flags: &[],
    },
];

const FLAGS: &[(&str, &str, &str)] = &[
    (
        "--cdp",
        "--cdp URL",
        "DevTools endpoint: http://HOST:PORT, HOST:PORT, :PORT or a ws:// target URL; repeatable [env: ANGRAV_CDP (comma-separated), BROWSER_CDP_ENDPOINT] [default: http://127.0.0.1:9222]",
    ),
    (
        "--session",
        "--session ID",
        "a chat: any unique prefix of its id, or its workspace name; implied when only one chat is open; repeatable where several chats are meant [default: all]",
    ),
    ("--json", "--json", "machine-readable output on stdout"),
    (
        "--selectors",
        "--selectors FILE",
        "selector profile laid over the built-in one [env: ANGRAV_SELECTORS]",
    ),
    (
        "--timeout",
        "--timeout D",
        "how long a wait may take [default: 120s; watch: none]; D is milliseconds (120000) or has a unit: 500ms, 90s, 2m",
    ),
    (
        "--settle",
        "--settle D",
        "how long idle must hold before a turn counts as finished [default: 400ms]",
    ),
    ("--any", "--any", "end when the first chat stops"),
    (
        "--all",
        "--all",
        "end when every chat has stopped, closed or failed [default]",
    ),
    ("--no-extract", "--no-extract", "do not collect the answers"),
    (
        "--wait",
        "--wait",
        "wait for this prompt's answer and print it",
    ),
    ("-f", "-f FILE", "read the input from FILE (- for stdin)"),
    ("--task", "--task ID=TEXT", "one chat's prompt (repeatable)"),
    ("--lang", "--lang L", "only code blocks in language L"),
    (
        "--until-idle",
        "--until-idle",
        "stop once every chat is idle (for the settle time)",
    ),
    ("--count", "--count N", "stop after N events"),
    (
        "--windows",
        "--windows N",
        "how many simulated windows [default: 3]",
    ),
    (
        "--layout",
        "--layout L[,L...]",
        "their layouts, in turn: current, legacy-frame, legacy-target, v2 [default: all four]",
    ),
    (
        "--scenario",
        "--scenario S[,S...]",
        "how the agents answer: instant, slow, late-busy, flicker, approval, error, quota [default: a short turn]",
    ),
];

const EXIT_CODES: &str = "\
Exit codes:
  0    ok (a wait or fan-out: every awaited chat ended idle)
  1    failure: the message says what; a chat ended in error or awaiting approval,
       closed, or could not be awaited
  2    usage error (including a malformed selector profile)
  3    session not found, or ambiguous
  124  timeout (the output names what was done and what was still pending)
";

/// `  NAME                  text`, the text wrapped to fit 88 columns.
fn entry(name: &str, text: &str) -> String {
    const INDENT: usize = 24;
    let mut out = format!("  {name:20}  ");
    let mut col = INDENT;
    for word in text.split(' ') {
        if col > INDENT && col + 1 + word.len() > 88 {
            out += &format!("\n{:INDENT$}", "");
            col = INDENT;
        } else if col > INDENT {
            out.push(' ');
            col += 1;
        }
        out += word;
        col += word.chars().count();
    }
    out + "\n"
}

fn flag_lines(names: &[&str]) -> String {
    names
        .iter()
        .filter_map(|name| FLAGS.iter().find(|(n, _, _)| n == name))
        .map(|(_, shown, text)| entry(shown, text))
        .collect()
}

/// The whole command line.
pub fn global() -> String {
    let mut out = String::from(
        "angrav: watch and drive Antigravity agent chats over the Chrome DevTools Protocol\n\n\
         Usage: angrav [OPTIONS] <COMMAND>   (angrav <COMMAND> --help: that command alone)\n\nCommands:\n",
    );
    for c in COMMANDS {
        out += &entry(&format!("{}{}", c.words, c.args), c.summary);
    }
    out += "\nOptions:\n";
    let names: Vec<&str> = FLAGS.iter().map(|(n, _, _)| *n).collect();
    out += &flag_lines(&names);
    out += &entry("-h, --help", "this help");
    out += &entry(
        "-V, --version",
        "version and the CDP features angrav relies on",
    );
    out += "\n";
    out + EXIT_CODES
}

/// One command: what it does, its flags with their defaults, the exit codes.
pub fn command(words: &str) -> Option<String> {
    let c = COMMANDS.iter().find(|c| c.words == words)?;
    let mut out = format!("angrav {}{}: {}\n", c.words, c.args, c.summary);
    out += &format!(
        "\nUsage: angrav {}{} [OPTIONS]\n\nOptions:\n",
        c.words, c.args
    );
    let common: &[&str] = if matches!(c.words, "simulate" | "profile") {
        &[]
    } else {
        COMMON
    };
    let mut names: Vec<&str> = c.flags.to_vec();
    names.extend(common.iter().filter(|n| !c.flags.contains(n)));
    out += &flag_lines(&names);
    Some(out + "\n" + EXIT_CODES)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_flag_named_by_a_command_is_described() {
        for c in COMMANDS {
            for f in c.flags.iter().chain(COMMON) {
                assert!(
                    FLAGS.iter().any(|(n, _, _)| n == f),
                    "{} names {f}",
                    c.words
                );
            }
        }
    }
}
