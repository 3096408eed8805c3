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
        summary: "every chat: id, workspace, title, state, layout, endpoint (--all: also the Agent Manager, as kind manager)",
        flags: &["--all", "--group"],
    },
    Cmd {
        words: "sessions wait",
        args: "",
        summary: "wait for chats to stop: the first (--any) or every one (--all, the default)",
        flags: &[
            "--any",
            "--all",
            "--session",
            "--group",
            "--timeout",
            "--settle",
            "--no-extract",
        ],
    },
    Cmd {
        words: "sessions fanout",
        args: " TEXT",
        summary: "the same prompt to every chosen chat (default: every idle one), sent concurrently; each chat's own answer is awaited and collected (TEXT may be - for stdin, or use -f FILE)",
        flags: &[
            "--session",
            "--group",
            "--timeout",
            "--settle",
            "--no-extract",
            "-f",
        ],
    },
    Cmd {
        words: "sessions run",
        args: "",
        summary: "a prompt per chat: --task ID=TEXT (repeatable), or -f FILE with a JSON list of {\"session\", \"prompt\"} (- for stdin); awaited like fanout",
        flags: &[
            "--task",
            "-f",
            "--group",
            "--timeout",
            "--settle",
            "--no-extract",
        ],
    },
    Cmd {
        words: "sessions watch",
        args: "",
        summary: "follow state changes: a snapshot line per chat, then one line per event (state_change, new_session, session_closed); NDJSON with --json; runs until interrupted",
        flags: &[
            "--session",
            "--group",
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
        summary: "send a prompt (TEXT, - for stdin, or -f FILE), confirm it was delivered exactly as given, and wait up to 10 s for its turn to start; a busy agent and a draft in the editor are refused",
        flags: &[
            "--session",
            "-f",
            "--wait",
            "--replace-draft",
            "--timeout",
            "--settle",
        ],
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
        words: "doctor",
        args: "",
        summary: "how angrav reads each chat after an Antigravity update: the endpoint and how it was found; per window the layout, the state and why, and for every profile role the alternative that matched (or none matched) with counts; warnings for markers a healthy panel shows that matched nothing, and for invalid selectors; exit 0 only when every chat reads cleanly",
        flags: &["--session"],
    },
    Cmd {
        words: "profile",
        args: "",
        summary: "print the built-in selector profile, a start for --selectors",
        flags: &[],
    },
    Cmd {
        words: "alias set",
        args: " NAME SESSION",
        summary: "name a chat: NAME then works wherever --session does, before id prefixes and workspace names; when its window is gone and one window of the same workspace is open, the alias follows it",
        flags: &[],
    },
    Cmd {
        words: "alias rm",
        args: " NAME",
        summary: "forget an alias",
        flags: &[],
    },
    Cmd {
        words: "alias list",
        args: "",
        summary: "every alias: name, target id, workspace, endpoint",
        flags: &[],
    },
    Cmd {
        words: "group set",
        args: " NAME SESSION...",
        summary: "name several chats: --group NAME then stands for them in the sessions commands (members follow their workspace like aliases)",
        flags: &[],
    },
    Cmd {
        words: "group rm",
        args: " NAME",
        summary: "forget a group",
        flags: &[],
    },
    Cmd {
        words: "group list",
        args: "",
        summary: "every group and its members",
        flags: &[],
    },
    Cmd {
        words: "log",
        args: "",
        summary: "the journal of events angrav saw (one line each; --json: the NDJSON lines as stored)",
        flags: &["--session", "--group", "--since", "--kind"],
    },
    Cmd {
        words: "turns",
        args: "",
        summary: "each prompt angrav sent: time, session, outcome (idle, approval, error, timeout), duration, the answer's first line (--json: the whole answer)",
        flags: &["--session", "--group", "--since"],
    },
    Cmd {
        words: "serve",
        args: "",
        summary: "one long-running process for every chat: a WebSocket API (GET /ws, JSON requests; 'schema' lists the methods) and a live dashboard (GET /) on one port; prints the dashboard URL with its token on stderr; runs until SIGINT/SIGTERM",
        flags: &[
            "--listen",
            "--allow-remote",
            "--on",
            "--webhook",
            "--notify",
            "--settle",
        ],
    },
];

const FLAGS: &[(&str, &str, &str)] = &[
    (
        "--cdp",
        "--cdp URL",
        "DevTools endpoint: http://HOST:PORT, HOST:PORT, :PORT or a ws:// target URL; repeatable [env: ANGRAV_CDP (comma-separated), BROWSER_CDP_ENDPOINT] [default: http://127.0.0.1:9222, else the port in DevToolsActivePort of Antigravity's user-data directory (env: ANGRAV_USER_DATA_DIR), else the first of 9223-9229 to answer]",
    ),
    (
        "--session",
        "--session ID",
        "a chat: an alias (angrav alias set), any unique prefix of its id, or its workspace name; implied when only one chat is open; repeatable where several chats are meant [default: all]",
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
        "sessions wait: end when every chat has stopped, closed or failed [default]; sessions list: also list the Agent Manager",
    ),
    ("--no-extract", "--no-extract", "do not collect the answers"),
    (
        "--wait",
        "--wait",
        "wait for this prompt's answer and print it",
    ),
    (
        "--replace-draft",
        "--replace-draft",
        "replace text someone left in the editor instead of refusing the prompt",
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
        "--group",
        "--group NAME",
        "the chats of a group (angrav group set); repeatable",
    ),
    (
        "--since",
        "--since SEQ|TIME",
        "entries after seq SEQ, or from TIME on: RFC 3339 (2026-11-28T09:00:00Z) or ago (10m, 2h)",
    ),
    (
        "--kind",
        "--kind K",
        "entries of one kind: snapshot, state_change, new_session, session_closed, prompt_sent, turn_finished, approval_decided, endpoint_lost, endpoint_back",
    ),
    (
        "--no-state",
        "--no-state",
        "run without the state directory (no aliases, groups or journal) [state: ANGRAV_STATE_DIR, else $XDG_STATE_HOME/angrav or ~/.local/state/angrav]",
    ),
    (
        "--listen",
        "--listen ADDR",
        "where serve listens [default: 127.0.0.1:7878]; an address other than loopback needs --allow-remote",
    ),
    (
        "--allow-remote",
        "--allow-remote",
        "let serve listen on an address other machines reach (anyone with the token drives your agents)",
    ),
    (
        "--on",
        "--on EVENT[:STATE] CMD",
        "run CMD through sh -c when an event settles (state_change, new_session, session_closed; :STATE narrows to the state entered), the event's JSON on stdin and ANGRAV_EVENT, ANGRAV_SESSION, ANGRAV_WORKSPACE, ANGRAV_STATE in the environment; repeatable",
    ),
    (
        "--webhook",
        "--webhook URL",
        "POST every settled event's JSON to URL (http:// only; 3 attempts, 10 s each); repeatable",
    ),
    (
        "--notify",
        "--notify",
        "a desktop notification (notify-send, osascript) when a chat awaits approval, fails, or finishes a turn",
    ),
    (
        "--windows",
        "--windows N",
        "how many simulated windows [default: 3]",
    ),
    (
        "--layout",
        "--layout L[,L...]",
        "their layouts, in turn: current, legacy-frame, legacy-target [default: all three]",
    ),
    (
        "--scenario",
        "--scenario S[,S...]",
        "how the agents answer: instant, slow, late-busy, flicker, approval, error, quota, enter-delay=MS, start-delay=MS, busy-on-focus, deaf [default: a short turn]",
    ),
];

const EXIT_CODES: &str = "\
Exit codes:
  0    ok (a wait or fan-out: every awaited chat ended idle)
  1    failure: the message says what; a chat ended in error or awaiting approval,
       closed, or could not be awaited; doctor: a chat does not read cleanly
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
