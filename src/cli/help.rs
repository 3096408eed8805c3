//! The command table: every command with its flags, described once. The help, the
//! parser's check of which flags apply, the suggestions for a misspelt word, and the
//! shell completions are all made from it.
//!
//! A new command is one more [`Cmd`] in [`COMMANDS`] (and its arm in `parse`); a new
//! flag one more [`Flag`], listed by the commands that take it. The tests check that
//! every flag's [`Preset::Value`] is what the parser gives when it is left out.

use serde::Serialize;

/// A flag as the help shows it.
pub(super) struct Flag {
    /// As typed, and as the parser names it: `--session`, `-f`.
    pub name: &'static str,
    /// With its value: `--session ID`.
    shown: &'static str,
    text: &'static str,
    /// What the command does when the flag is left out.
    pub preset: Preset,
}

/// A flag's default, as its help line ends: `[default: 120s]`.
pub(super) enum Preset {
    /// A switch, or a flag that does nothing unless given.
    None,
    /// A value the flag takes: leaving the flag out is giving it this (tested).
    Value(&'static str),
    /// What happens without it, in words (`every idle chat`).
    Said(&'static str),
}

impl Flag {
    /// Takes a value (`--cdp URL`), as opposed to a switch (`--json`) or a flag whose
    /// value may be left out (`--resume [RUN]`).
    pub fn takes_value(&self) -> bool {
        self.shown
            .split_once(' ')
            .is_some_and(|(_, v)| !(v.starts_with('[') && v.ends_with(']')))
    }

    /// The help's text with its default: `... [default: 120s]`.
    fn described(&self) -> String {
        match self.preset {
            Preset::None => self.text.to_string(),
            Preset::Value(d) | Preset::Said(d) => format!("{} [default: {d}]", self.text),
        }
    }
}

pub(super) struct Cmd {
    /// As typed: `sessions list`.
    pub words: &'static str,
    /// What follows the words: `" TEXT"`; empty when nothing does.
    pub args: &'static str,
    summary: &'static str,
    flags: &'static [&'static Flag],
    /// The exit codes it can end with (see [`EXIT_CODES`]).
    exits: &'static [u8],
    /// Acts on the global flags of every command that talks to Antigravity (`COMMON`);
    /// the others take them too, and ignore them (see [`Cmd::takes`]).
    common: bool,
}

impl Cmd {
    /// Every flag this command takes: its own, then the global ones.
    pub fn flags(&self) -> impl Iterator<Item = &'static Flag> + '_ {
        self.own_flags().chain(self.global_flags())
    }

    /// The flags its help describes: those of this command alone.
    pub fn own_flags(&self) -> impl Iterator<Item = &'static Flag> + '_ {
        self.flags.iter().copied()
    }

    /// The global flags it takes, described once, by `angrav help`.
    fn global_flags(&self) -> impl Iterator<Item = &'static Flag> + '_ {
        let common: &[&Flag] = if self.common { COMMON } else { &[] };
        common.iter().copied()
    }

    /// A command that does not talk to Antigravity (help, version, alias list...)
    /// takes the global flags too, and ignores those that cannot matter to it: a
    /// shell alias such as `angrav --cdp :9333` works for every command.
    pub fn takes(&self, flag: &str) -> bool {
        self.flags().any(|f| f.name == flag) || COMMON.iter().any(|f| f.name == flag)
    }

    /// How many words may follow the command's own, read from `args`: `" TEXT"` one
    /// at most, `" NAME SESSION"` exactly two, `" NAME SESSION..."` two or more.
    pub fn operands(&self) -> Operands {
        let names: Vec<&str> = self.args.split_whitespace().collect();
        let optional = |n: &&str| n.starts_with('[') || *n == "TEXT";
        let min = names.iter().filter(|n| !optional(n)).count();
        let max = if names.iter().any(|n| n.ends_with("...")) {
            usize::MAX
        } else {
            names.len()
        };
        Operands { min, max }
    }
}

/// The number of words a command takes after its own.
pub(super) struct Operands {
    pub min: usize,
    pub max: usize,
}

const CDP: Flag = Flag {
    name: "--cdp",
    shown: "--cdp URL",
    text: "DevTools endpoint: http://HOST:PORT, HOST:PORT, :PORT or a ws:// target URL; repeatable (the same endpoint twice counts once) [env: ANGRAV_CDP (comma-separated), BROWSER_CDP_ENDPOINT]",
    preset: Preset::Said(
        "http://127.0.0.1:9222, else the port in DevToolsActivePort of Antigravity's user-data directory (env: ANGRAV_USER_DATA_DIR), else the first of 9223-9229 to answer",
    ),
};
const JSON: Flag = Flag {
    name: "--json",
    shown: "--json",
    text: "machine-readable output on stdout; errors as one JSON object on stderr",
    preset: Preset::None,
};
const SELECTORS: Flag = Flag {
    name: "--selectors",
    shown: "--selectors FILE",
    text: "selector profile laid over the built-in one [env: ANGRAV_SELECTORS]",
    preset: Preset::None,
};
const COLOR: Flag = Flag {
    name: "--color",
    shown: "--color WHEN",
    text: "colour the states: auto (on a terminal, unless NO_COLOR is set or TERM=dumb), always, never",
    preset: Preset::Value("auto"),
};
/// The `--session` of the commands on one chat.
const SESSION_ONE: Flag = Flag {
    name: "--session",
    shown: "--session ID",
    text: "the chat: any unique prefix of its id, or its workspace name; may be left out when only one chat is open",
    preset: Preset::None,
};
/// The `--session` of the commands on many chats.
const SESSION_MANY: Flag = Flag {
    name: "--session",
    shown: "--session ID",
    text: "a chat to include: any unique prefix of its id, or its workspace name; repeatable",
    preset: Preset::Said("every chat"),
};
const SESSION_FANOUT: Flag = Flag {
    name: "--session",
    shown: "--session ID",
    text: "a chat to send to: any unique prefix of its id, or its workspace name; repeatable",
    preset: Preset::Said("every idle chat"),
};
const TIMEOUT: Flag = Flag {
    name: "--timeout",
    shown: "--timeout D",
    text: "how long the command may take, a page that never answers included; D is milliseconds (120000) or has a unit: 500ms, 90s, 2m",
    preset: Preset::Value("120s"),
};
/// The `--timeout` of the commands that run until their work is done.
const TIMEOUT_RUN: Flag = Flag {
    name: "--timeout",
    shown: "--timeout D",
    text: "how long the whole run may take (then exit 124); D is milliseconds (120000) or has a unit: 500ms, 90s, 2m",
    preset: Preset::Said("none"),
};
const SETTLE: Flag = Flag {
    name: "--settle",
    shown: "--settle D",
    text: "how long idle must hold before a turn counts as finished",
    preset: Preset::Value("400ms"),
};
const ANY: Flag = Flag {
    name: "--any",
    shown: "--any",
    text: "end when the first chat stops",
    preset: Preset::None,
};
const ALL: Flag = Flag {
    name: "--all",
    shown: "--all",
    text: "end when every chat has stopped, closed or failed (what it does without --any)",
    preset: Preset::None,
};
const ALL_LIST: Flag = Flag {
    name: "--all",
    shown: "--all",
    text: "also list the Agent Manager (kind manager) and every conversation of the language server (kind conversation)",
    preset: Preset::None,
};
const NO_EXTRACT: Flag = Flag {
    name: "--no-extract",
    shown: "--no-extract",
    text: "do not collect the answers",
    preset: Preset::None,
};
const WAIT: Flag = Flag {
    name: "--wait",
    shown: "--wait",
    text: "wait for this prompt's answer and print it",
    preset: Preset::None,
};
const FILE: Flag = Flag {
    name: "-f",
    shown: "-f FILE",
    text: "read the input from FILE (- for stdin)",
    preset: Preset::None,
};
const TASK: Flag = Flag {
    name: "--task",
    shown: "--task ID=TEXT",
    text: "one chat's prompt (repeatable)",
    preset: Preset::None,
};
const LANG: Flag = Flag {
    name: "--lang",
    shown: "--lang L",
    text: "only code blocks in language L",
    preset: Preset::None,
};
const UNTIL_IDLE: Flag = Flag {
    name: "--until-idle",
    shown: "--until-idle",
    text: "stop once every chat is idle (for the settle time); exit 1 if a chat closed or an endpoint was lost meanwhile",
    preset: Preset::None,
};
const COUNT: Flag = Flag {
    name: "--count",
    shown: "--count N",
    text: "stop after N events",
    preset: Preset::None,
};
const WINDOWS: Flag = Flag {
    name: "--windows",
    shown: "--windows N",
    text: "how many simulated windows",
    preset: Preset::Value("3"),
};
const LAYOUT: Flag = Flag {
    name: "--layout",
    shown: "--layout L[,L...]",
    text: "their layouts, in turn: current, legacy-frame, legacy-target, v2",
    preset: Preset::Value("current,legacy-frame,legacy-target,v2"),
};
const SCENARIO: Flag = Flag {
    name: "--scenario",
    shown: "--scenario S[,S...]",
    text: "how the agents answer: instant, slow, late-busy, flicker, approval, approval-kind=K (file_edits, permission, plan, collapsed), command=TEXT (the command an approval shows), question (stops at a question form), question=TEXT (what the form asks), error, quota, enter-delay=MS, start-delay=MS, busy-on-focus, deaf",
    preset: Preset::Said("a short turn"),
};

const REPLACE_DRAFT: Flag = Flag {
    name: "--replace-draft",
    shown: "--replace-draft",
    text: "replace text someone left in the editor instead of refusing the prompt",
    preset: Preset::None,
};
const GROUP: Flag = Flag {
    name: "--group",
    shown: "--group NAME",
    text: "the chats of a group (angrav group set); repeatable",
    preset: Preset::None,
};
const SINCE: Flag = Flag {
    name: "--since",
    shown: "--since SEQ|TIME",
    text: "entries after seq SEQ, or from TIME on: RFC 3339 (2026-11-28T09:00:00Z) or ago (10m, 2h)",
    preset: Preset::None,
};
const KIND: Flag = Flag {
    name: "--kind",
    shown: "--kind K",
    text: "entries of one kind: snapshot, state_change, new_session, retitled, session_closed, prompt_sent, turn_finished, approval_decided, endpoint_lost, endpoint_back, stalled",
    preset: Preset::None,
};
const WHEN_IDLE: Flag = Flag {
    name: "--when-idle",
    shown: "--when-idle",
    text: "a busy agent is waited for (until idle, within --timeout) instead of refused",
    preset: Preset::None,
};
const START_WITHIN: Flag = Flag {
    name: "--start-within",
    shown: "--start-within D",
    text: "a delivered prompt whose turn shows no start within D is stalled",
    preset: Preset::Value("10s"),
};
const STALL_AFTER: Flag = Flag {
    name: "--stall-after",
    shown: "--stall-after D",
    text: "a turn whose page shows no change at all for D is stalled",
    preset: Preset::Said("none"),
};
const PER_SESSION: Flag = Flag {
    name: "--per-session",
    shown: "--per-session N",
    text: "prompts a chat holds at once: the one it runs, the others waiting in its own line",
    preset: Preset::Value("1"),
};
const RETRIES: Flag = Flag {
    name: "--retries",
    shown: "--retries N",
    text: "how often a prompt whose turn ended in error goes to another chat (a stalled one never does: its chat may still start on it)",
    preset: Preset::Value("1"),
};
const GRACE: Flag = Flag {
    name: "--grace",
    shown: "--grace D",
    text: "after ^C, how long running turns may take to finish",
    preset: Preset::Value("30s"),
};
const RESUME: Flag = Flag {
    name: "--resume",
    shown: "--resume [RUN]",
    text: "take up a dispatch run of the journal after angrav stopped (killed, a crash): RUN (its id, or a unique prefix; --resume=RUN, or --resume RUN) or else the last; results recorded are printed again (an unconfirmed one its chat's transcript now shows, as the newest user message and only once, is followed and reported as delivered), a prompt submitted before the stop is looked for in its chat (never sent again), the others are sent; an unknown RUN lists the runs the journal knows (exit 2)",
    preset: Preset::None,
};
const LISTEN: Flag = Flag {
    name: "--listen",
    shown: "--listen ADDR",
    text: "where serve listens; an address other than loopback needs --allow-remote",
    preset: Preset::Value("127.0.0.1:7878"),
};
const UPSTREAM: Flag = Flag {
    name: "--upstream",
    shown: "--upstream [NAME=]URL",
    text: "make this serve a hub that also follows another serve (http://HOST:PORT/?token=TOKEN, its token in the URL; repeatable or comma-separated): its sessions listed and streamed with a host (NAME, else HOST:PORT), status, prompt, output, history, new, approve, deny and cancel forwarded to it; with upstreams and no --cdp, no browser of its own",
    preset: Preset::None,
};
const ALLOW_REMOTE: Flag = Flag {
    name: "--allow-remote",
    shown: "--allow-remote",
    text: "let serve listen on an address other machines reach (anyone with the token drives your agents)",
    preset: Preset::None,
};
const ON: Flag = Flag {
    name: "--on",
    shown: "--on EVENT[:STATE] CMD",
    text: "run CMD through sh -c when an event settles (state_change, new_session, session_closed; :STATE narrows to the state entered), the event's JSON on stdin and ANGRAV_EVENT, ANGRAV_SESSION, ANGRAV_WORKSPACE, ANGRAV_STATE in the environment; repeatable",
    preset: Preset::None,
};
const WEBHOOK: Flag = Flag {
    name: "--webhook",
    shown: "--webhook URL",
    text: "POST every settled event's JSON to URL (http:// only; 3 attempts, 10 s each); repeatable",
    preset: Preset::None,
};
const HOOK_TIMEOUT: Flag = Flag {
    name: "--hook-timeout",
    shown: "--hook-timeout D",
    text: "how long an --on command may run before its process group is killed",
    preset: Preset::Value("60s"),
};
const NOTIFY: Flag = Flag {
    name: "--notify",
    shown: "--notify",
    text: "a desktop notification (notify-send, osascript) when a chat awaits approval, asks a question, fails, or finishes a turn",
    preset: Preset::None,
};
const POLICY: Flag = Flag {
    name: "--policy",
    shown: "--policy FILE",
    text: "answer approvals by the rules in FILE (a JSON list of {kind, command, action}; see the README): each decision an approval_decided line (watch: stdout; waits: stderr)",
    preset: Preset::None,
};
/// The `--session` of `sessions approve` and `sessions deny`.
const SESSION_APPROVE: Flag = Flag {
    name: "--session",
    shown: "--session ID",
    text: "a chat to answer: any unique prefix of its id, or its workspace name; repeatable",
    preset: Preset::Said("every chat awaiting approval"),
};
const APPROVAL_ID: Flag = Flag {
    name: "--approval",
    shown: "--approval ID",
    text: "the approval to answer, by the id status shows: pressed only if it still shows (checked and pressed in one page call; with --conversation, the step whose approval has this id, if it waits when read just before sending), else nothing is pressed (exit 1, approval_changed)",
    preset: Preset::Said("the only approval showing; refused when several show"),
};
const WAIT_TURN: Flag = Flag {
    name: "--wait",
    shown: "--wait",
    text: "then wait for the turn to end and print its answer, as prompt --wait does",
    preset: Preset::None,
};
const RAW: Flag = Flag {
    name: "--raw",
    shown: "--raw",
    text: "page text (answers, titles, error texts) to a terminal as it is, escape sequences included; without it they are shown visibly (\\e]52;...)",
    preset: Preset::None,
};
const NO_STATE: Flag = Flag {
    name: "--no-state",
    shown: "--no-state",
    text: "run without the state directory (no aliases, groups or journal) [state: ANGRAV_STATE_DIR, else $XDG_STATE_HOME/angrav or ~/.local/state/angrav]",
    preset: Preset::None,
};

const SERVER: Flag = Flag {
    name: "--server",
    shown: "--server [NAME=]URL",
    text: "ask running angrav serves (http://HOST:PORT[?token=TOKEN]; repeatable or comma-separated) instead of attaching: sessions list|wait|fanout|run|watch|approve|deny, status, prompt, wait, output, history, new, approve, deny, cancel, with the same output; with several, each session gets a host (NAME, else HOST:PORT) and may be named HOST/ID, and a serve that cannot be reached is reported unreachable (exit 1); the token from the URL, else ANGRAV_TOKEN, else serve.token in the state directory [env: ANGRAV_SERVERS, ANGRAV_SERVER]",
    preset: Preset::None,
};

const LS: Flag = Flag {
    name: "--ls",
    shown: "--ls URL",
    text: "Antigravity's language server: http://127.0.0.1:PORT (https:// is reached through a window's page) [env: ANGRAV_LS]",
    preset: Preset::Said(
        "found per window: the panel's own requests, window.__APP_CONFIG__, else a local language_server process",
    ),
};
const LS_TOKEN: Flag = Flag {
    name: "--ls-token",
    shown: "--ls-token T",
    text: "the language server's token (its --csrf_token), with --ls [env: ANGRAV_LS_TOKEN]",
    preset: Preset::None,
};
const CONVERSATION: Flag = Flag {
    name: "--conversation",
    shown: "--conversation ID",
    text: "a conversation of the language server, whether a window shows it or not: any unique prefix of its id, or its workspace name (see sessions list --all)",
    preset: Preset::None,
};
const CONVERSATION_WATCH: Flag = Flag {
    name: "--conversation",
    shown: "--conversation ID|all",
    text: "follow a conversation of the language server (or all of them) instead of the windows: read at each update of its stream (and every 5 s), or every 500 ms when it has none; a snapshot line each, then state_change, new_session, session_closed, recorded in the journal",
    preset: Preset::None,
};
const MODEL: Flag = Flag {
    name: "--model",
    shown: "--model M",
    text: "skip the chats whose model (as their panel shows it) is M while the language server says M's quota is exhausted: they take prompts once it is read again, just after its reset time, and no longer says so",
    preset: Preset::None,
};

/// The flags of `approve` and `deny`.
const ANSWER_FLAGS: &[&Flag] = &[
    &SERVER,
    &SESSION_ONE,
    &APPROVAL_ID,
    &CONVERSATION,
    &WAIT_TURN,
    &TIMEOUT,
    &SETTLE,
    &STALL_AFTER,
];

/// The global flags: every command that talks to Antigravity takes them.
const COMMON: &[&Flag] = &[
    &CDP, &JSON, &RAW, &SELECTORS, &COLOR, &NO_STATE, &LS, &LS_TOKEN,
];

/// Words that group commands, and the command each means alone.
const GROUPS: &[(&str, &str)] = &[
    ("sessions", "sessions list"),
    ("output", "output last"),
    ("alias", "alias list"),
    ("group", "group list"),
];

pub(super) const COMMANDS: &[Cmd] = &[
    Cmd {
        words: "sessions list",
        args: "",
        summary: "every chat: id, workspace, state, layout, title, and with several endpoints the endpoint (a page that does not answer within 2 s: unresponsive; --all: also the Agent Manager, as kind manager, and every conversation of the language server, as kind conversation, joined to the window that shows it)",
        flags: &[&SERVER, &ALL_LIST, &GROUP, &TIMEOUT],
        exits: EXITS_ATTACHED,
        common: true,
    },
    Cmd {
        words: "sessions wait",
        args: "",
        summary: "wait for chats to stop: the first (--any) or every one (--all, the default)",
        flags: &[
            &SERVER,
            &ANY,
            &ALL,
            &SESSION_MANY,
            &GROUP,
            &TIMEOUT,
            &SETTLE,
            &NO_EXTRACT,
            &POLICY,
            &STALL_AFTER,
        ],
        exits: EXITS_RUN,
        common: true,
    },
    Cmd {
        words: "sessions fanout",
        args: " TEXT",
        summary: "the same prompt to every chosen chat (default: every idle one), sent concurrently; each chat's own answer is awaited and collected (TEXT may be - for stdin, or use -f FILE)",
        flags: &[
            &SERVER,
            &SESSION_FANOUT,
            &GROUP,
            &TIMEOUT,
            &SETTLE,
            &NO_EXTRACT,
            &FILE,
            &POLICY,
            &START_WITHIN,
            &STALL_AFTER,
        ],
        exits: EXITS_RUN,
        common: true,
    },
    Cmd {
        words: "sessions run",
        args: "",
        summary: "a prompt per chat: --task ID=TEXT (repeatable), or -f FILE with a JSON list of {\"session\", \"prompt\"} (- for stdin); awaited like fanout",
        flags: &[
            &SERVER,
            &TASK,
            &FILE,
            &GROUP,
            &TIMEOUT,
            &SETTLE,
            &NO_EXTRACT,
            &POLICY,
            &START_WITHIN,
            &STALL_AFTER,
        ],
        exits: EXITS_RUN,
        common: true,
    },
    Cmd {
        words: "sessions watch",
        args: "",
        summary: "follow state changes: a snapshot line per chat, then one line per event (state_change, new_session, retitled, session_closed, endpoint_lost, endpoint_back, stalled; with --policy, approval_decided); NDJSON with --json; runs until interrupted. Every line is recorded in the journal, and its seq is the journal's: --since SEQ first replays the journal after SEQ, then goes on live",
        flags: &[
            &SERVER,
            &SESSION_MANY,
            &CONVERSATION_WATCH,
            &GROUP,
            &UNTIL_IDLE,
            &COUNT,
            &TIMEOUT_RUN,
            &SETTLE,
            &ON,
            &HOOK_TIMEOUT,
            &WEBHOOK,
            &NOTIFY,
            &POLICY,
            &SINCE,
            &STALL_AFTER,
        ],
        exits: EXITS_RUN,
        common: true,
    },
    Cmd {
        words: "sessions approve",
        args: " [CHOICE]",
        summary: "answer the approval of several chats at once (--session repeated, --group, or every chat awaiting approval), as approve does; a result row per chat",
        flags: &[&SERVER, &SESSION_APPROVE, &GROUP, &TIMEOUT],
        exits: EXITS_ATTACHED,
        common: true,
    },
    Cmd {
        words: "sessions deny",
        args: "",
        summary: "deny the approval of several chats at once, as deny does; a result row per chat",
        flags: &[&SERVER, &SESSION_APPROVE, &GROUP, &TIMEOUT],
        exits: EXITS_ATTACHED,
        common: true,
    },
    Cmd {
        words: "dispatch",
        args: "",
        summary: "a queue of prompts spread over the chosen chats (default: every chat): each goes to the next chat that is idle; one result line per prompt as it finishes (NDJSON with --json). Prompts from -f FILE or stdin: one per line, or JSON lines {\"prompt\", \"id\", \"session\", \"timeout\"}. A prompt whose turn ends in error goes to another chat (--retries); one that stalled, or whose fate after the Enter was not seen (unconfirmed), is never sent again; a chat awaiting approval, at a question or in error gets no more until idle again. --resume [RUN] takes up a run of the journal (default the last) after a crash. ^C: no more prompts sent, running turns get --grace, then the prompts never sent are printed (exit 130).",
        flags: &[
            &SESSION_MANY,
            &MODEL,
            &FILE,
            &PER_SESSION,
            &RETRIES,
            &START_WITHIN,
            &STALL_AFTER,
            &GRACE,
            &RESUME,
            &TIMEOUT_RUN,
            &SETTLE,
            &NO_EXTRACT,
        ],
        exits: EXITS_RUN,
        common: true,
    },
    Cmd {
        words: "status",
        args: "",
        summary: "one chat's state (idle, thinking, awaiting_approval, awaiting_input, error, no_panel, unreadable, unresponsive) and the markers that say so",
        flags: &[&SERVER, &SESSION_ONE, &CONVERSATION, &TIMEOUT],
        exits: EXITS_ATTACHED,
        common: true,
    },
    Cmd {
        words: "prompt",
        args: " TEXT",
        summary: "send a prompt (TEXT, - for stdin, or -f FILE), confirm it was delivered exactly as given, and wait up to 10 s (--start-within) for its turn to start, else it is reported stalled; a busy agent (unless --when-idle) and a draft in the editor are refused",
        flags: &[
            &SERVER,
            &SESSION_ONE,
            &CONVERSATION,
            &FILE,
            &WAIT,
            &WHEN_IDLE,
            &REPLACE_DRAFT,
            &START_WITHIN,
            &STALL_AFTER,
            &TIMEOUT,
            &SETTLE,
        ],
        exits: EXITS_ATTACHED,
        common: true,
    },
    Cmd {
        words: "wait",
        args: "",
        summary: "wait until the agent has stopped: idle for the settle time, awaiting approval, at a question form (awaiting_input), or in error",
        flags: &[
            &SERVER,
            &SESSION_ONE,
            &CONVERSATION,
            &TIMEOUT,
            &SETTLE,
            &STALL_AFTER,
        ],
        exits: EXITS_ATTACHED,
        common: true,
    },
    Cmd {
        words: "approve",
        args: " [CHOICE]",
        summary: "press one choice of the approval --approval ID names (if it still shows), or of the only approval showing (refused, naming each, when several show): CHOICE names a label (any case; once, conversation, always, run, accept, accept-all, proceed), else the narrowest allowing one (Allow Once before Allow This Conversation; never an Always one unless named); a collapsed step is only expanded, nothing in it pressed (exit 1, approval_changed, naming the card that opened for a press by its id); confirmed by the approval going away within 5 s. Nothing is pressed in any other state (exit 1)",
        flags: ANSWER_FLAGS,
        exits: EXITS_ATTACHED,
        common: true,
    },
    Cmd {
        words: "deny",
        args: "",
        summary: "press Deny, Reject or Reject all, whichever the approval offers, as approve presses",
        flags: ANSWER_FLAGS,
        exits: EXITS_ATTACHED,
        common: true,
    },
    Cmd {
        words: "cancel",
        args: "",
        summary: "stop a working agent: press the busy marker (the cancel button), confirmed by the agent going idle within 5 s",
        flags: &[&SERVER, &SESSION_ONE, &CONVERSATION, &TIMEOUT],
        exits: EXITS_ATTACHED,
        common: true,
    },
    Cmd {
        words: "output last",
        args: "",
        summary: "the last answer as Markdown (--json: with its thoughts and code blocks)",
        flags: &[&SERVER, &SESSION_ONE, &TIMEOUT],
        exits: EXITS_ATTACHED,
        common: true,
    },
    Cmd {
        words: "output code",
        args: "",
        summary: "the last answer's code blocks",
        flags: &[&SERVER, &SESSION_ONE, &LANG, &TIMEOUT],
        exits: EXITS_ATTACHED,
        common: true,
    },
    Cmd {
        words: "history",
        args: "",
        summary: "every message of the conversation, oldest first",
        flags: &[&SERVER, &SESSION_ONE, &CONVERSATION, &TIMEOUT],
        exits: EXITS_ATTACHED,
        common: true,
    },
    Cmd {
        words: "new",
        args: "",
        summary: "start a new conversation",
        flags: &[&SERVER, &SESSION_ONE, &TIMEOUT],
        exits: EXITS_ATTACHED,
        common: true,
    },
    Cmd {
        words: "simulate",
        args: "",
        summary: "start a simulated Antigravity (headless Chromium) and print its endpoint; runs until stopped",
        flags: &[&WINDOWS, &LAYOUT, &SCENARIO, &JSON],
        exits: EXITS_STATE,
        common: false,
    },
    Cmd {
        words: "demo",
        args: "",
        summary: "the main job: against Antigravity, list every chat; against the simulator (started when none answers), also prompt every chat and print the answers",
        flags: &[&SETTLE],
        exits: &[0, 1, 2, 124],
        common: true,
    },
    Cmd {
        words: "quota",
        args: "",
        summary: "each model's remaining quota (a fraction, unknown when the language server leaves it out) and when it refills, from the language server (GetUserStatus)",
        flags: &[&TIMEOUT],
        exits: &[0, 1, 2, 124],
        common: true,
    },
    Cmd {
        words: "doctor",
        args: "",
        summary: "how angrav reads each chat after an Antigravity update: the endpoint and how it was found; per window the layout, the state and why, and for every profile role the alternative that matched (or none matched) with counts; warnings for markers a healthy panel shows that matched nothing, and for invalid selectors; every window examined at once, the whole within --timeout (a window that has not answered by then is named, exit 124); exit 0 only when every chat reads cleanly",
        flags: &[&SESSION_MANY, &TIMEOUT],
        exits: &[0, 1, 2, 3, 124],
        common: true,
    },
    Cmd {
        words: "profile",
        args: "",
        summary: "print the selector profile: the built-in one, a start for --selectors; with --selectors FILE, that file laid over it",
        flags: &[&SELECTORS, &JSON],
        exits: EXITS_LOCAL,
        common: false,
    },
    Cmd {
        words: "alias set",
        args: " NAME SESSION",
        summary: "name a chat: NAME then works wherever --session does, before id prefixes and workspace names; when its window is gone and one window of the same workspace is open, the alias follows it",
        flags: &[],
        exits: &[0, 1, 2, 3],
        common: true,
    },
    Cmd {
        words: "alias rm",
        args: " NAME",
        summary: "forget an alias",
        flags: &[&JSON, &NO_STATE],
        exits: EXITS_STATE,
        common: false,
    },
    Cmd {
        words: "alias list",
        args: "",
        summary: "every alias: name, target id, workspace, endpoint",
        flags: &[&JSON, &NO_STATE],
        exits: EXITS_STATE,
        common: false,
    },
    Cmd {
        words: "group set",
        args: " NAME SESSION...",
        summary: "name several chats: --group NAME then stands for them in the sessions commands (members follow their workspace like aliases)",
        flags: &[],
        exits: &[0, 1, 2, 3],
        common: true,
    },
    Cmd {
        words: "group rm",
        args: " NAME",
        summary: "forget a group",
        flags: &[&JSON, &NO_STATE],
        exits: EXITS_STATE,
        common: false,
    },
    Cmd {
        words: "group list",
        args: "",
        summary: "every group and its members",
        flags: &[&JSON, &NO_STATE],
        exits: EXITS_STATE,
        common: false,
    },
    Cmd {
        words: "log",
        args: "",
        summary: "the journal of events angrav saw (one line each; --json: each entry as sessions watch --json prints it)",
        flags: &[&SESSION_MANY, &GROUP, &SINCE, &KIND],
        exits: EXITS_STATE,
        common: true,
    },
    Cmd {
        words: "turns",
        args: "",
        summary: "each prompt angrav sent: time, session, outcome (idle, approval, input, error, timeout, stalled, closed), duration, the answer's first line (--json: the whole answer)",
        flags: &[&SESSION_MANY, &GROUP, &SINCE],
        exits: EXITS_STATE,
        common: true,
    },
    Cmd {
        words: "help",
        args: " [COMMAND]",
        summary: "this help, or one command's (also: angrav COMMAND --help)",
        flags: &[&JSON],
        exits: EXITS_LOCAL,
        common: false,
    },
    Cmd {
        words: "version",
        args: "",
        summary: "angrav's version (--json: also the CDP features it relies on)",
        flags: &[&JSON],
        exits: EXITS_LOCAL,
        common: false,
    },
    Cmd {
        words: "completions",
        args: " SHELL",
        summary: "a completion script for bash, zsh or fish; e.g. source <(angrav completions bash)",
        flags: &[&JSON],
        exits: EXITS_LOCAL,
        common: false,
    },
    Cmd {
        words: "serve",
        args: "",
        summary: "one long-running process for every chat: a WebSocket API (GET /ws, JSON requests; 'schema' lists the methods) and a live dashboard (GET /) on one port; prints the dashboard URL with its token on stderr; the prompts it sends are journaled as the CLI's; a client that disconnects ends its calls (a prompt still being typed is taken out of the editor, one submitted is followed); runs until SIGINT/SIGTERM",
        flags: &[
            &LISTEN,
            &ALLOW_REMOTE,
            &UPSTREAM,
            &ON,
            &HOOK_TIMEOUT,
            &WEBHOOK,
            &NOTIFY,
            &SETTLE,
        ],
        exits: EXITS_STATE,
        common: true,
    },
    Cmd {
        words: "schema",
        args: "",
        summary: "the shape of every command's --json output (and of a --json error), as JSON Schema",
        flags: &[&JSON],
        exits: EXITS_LOCAL,
        common: false,
    },
];

/// Every exit code, with what it means.
const EXIT_CODES: &[(u8, &str)] = &[
    (
        0,
        "ok (a wait or fan-out: every awaited chat ended idle); also when the reader of stdout went away",
    ),
    (
        1,
        "failure: the message says what; a chat ended in error, awaiting approval or at a question, closed, or could not be awaited; doctor: a chat does not read cleanly",
    ),
    (2, "usage error (including a malformed selector profile)"),
    (3, "session not found, or ambiguous"),
    (
        124,
        "timeout (the output names what was done and what was still pending)",
    ),
    (
        130,
        "interrupted (^C): a wait or fan-out first prints what it collected; a dispatch, the prompts never sent",
    ),
];

/// The exit codes of a command on one chat or a few: it may not find the chat, and
/// keeps its `--timeout`.
const EXITS_ATTACHED: &[u8] = &[0, 1, 2, 3, 124];
/// Of a command that runs until its work is done: ^C ends it too.
const EXITS_RUN: &[u8] = &[0, 1, 2, 3, 124, 130];
/// Of a command that reads or writes only the state directory (or starts a browser).
const EXITS_STATE: &[u8] = &[0, 1, 2];
/// Of a command that only prints what angrav knows.
const EXITS_LOCAL: &[u8] = &[0, 2];

/// The command `words` (the typed words, flags left out) name, and the words after
/// it. A group word alone (`sessions`, `output`) means its default command.
pub(super) fn find<'w>(words: &'w [&'w str]) -> Option<(&'static Cmd, &'w [&'w str])> {
    let by_words = |w: &str| COMMANDS.iter().find(|c| c.words == w);
    match words {
        [group, rest @ ..] if GROUPS.iter().any(|(g, _)| g == group) => match rest {
            [] => GROUPS
                .iter()
                .find(|(g, _)| g == group)
                .and_then(|(_, default)| by_words(default))
                .map(|c| (c, rest)),
            [sub, rest @ ..] => by_words(&format!("{group} {sub}")).map(|c| (c, rest)),
        },
        [word, rest @ ..] => by_words(word).map(|c| (c, rest)),
        [] => None,
    }
}

/// The first words of every command, each once: `sessions`, `status`, ...
pub(super) fn first_words() -> Vec<&'static str> {
    let mut words: Vec<&str> = Vec::new();
    for c in COMMANDS {
        let first = c.words.split(' ').next().unwrap_or(c.words);
        if !words.contains(&first) {
            words.push(first);
        }
    }
    words
}

/// The commands of a group: `list`, `wait`, ... for `sessions`.
pub(super) fn subcommands(group: &str) -> Vec<&'static str> {
    COMMANDS
        .iter()
        .filter_map(|c| c.words.strip_prefix(group)?.strip_prefix(' '))
        .collect()
}

/// `  NAME                  text`, the text wrapped to fit 88 columns.
fn entry(name: &str, text: &str) -> String {
    const INDENT: usize = 24;
    if name.len() > 20 {
        return format!("  {name}\n{:INDENT$}{}\n", "", wrap(text, INDENT));
    }
    format!("  {name:20}  {}\n", wrap(text, INDENT))
}

/// A help, as text or (with `--json`) as one object.
#[derive(Serialize)]
pub(super) struct Help {
    /// `angrav status [OPTIONS]`
    usage: String,
    summary: &'static str,
    /// The commands: all of them (the whole help), or those of a group.
    commands: Vec<Entry>,
    /// The whole help: the global flags; one command's: its own.
    flags: Vec<Entry>,
    /// One command's: the global flags it takes too (see `angrav help`).
    global_flags: Vec<&'static str>,
    exit_codes: Vec<ExitCode>,
}

#[derive(Serialize)]
struct Entry {
    name: String,
    text: String,
}

#[derive(Serialize)]
struct ExitCode {
    code: u8,
    meaning: &'static str,
}

fn flag_entry(f: &Flag) -> Entry {
    Entry {
        name: f.shown.to_string(),
        text: f.described(),
    }
}

fn command_entry(c: &Cmd) -> Entry {
    Entry {
        name: format!("{}{}", c.words, c.args),
        text: c.summary.to_string(),
    }
}

fn exit_codes(codes: &[u8]) -> Vec<ExitCode> {
    EXIT_CODES
        .iter()
        .filter(|(code, _)| codes.contains(code))
        .map(|&(code, meaning)| ExitCode { code, meaning })
        .collect()
}

/// The whole command line: the commands, the global flags, every exit code.
pub(super) fn global() -> Help {
    let mut flags: Vec<Entry> = COMMON.iter().map(|f| flag_entry(f)).collect();
    flags.push(Entry {
        name: "-h, --help".into(),
        text: "help: the whole, or with a command, that command's".into(),
    });
    flags.push(Entry {
        name: "-V, --version".into(),
        text: "the version, on one line".into(),
    });
    Help {
        usage: "angrav [OPTIONS] <COMMAND>".into(),
        summary: "watch and drive Antigravity agent chats over the Chrome DevTools Protocol",
        commands: COMMANDS.iter().map(command_entry).collect(),
        flags,
        global_flags: Vec::new(),
        exit_codes: exit_codes(&EXIT_CODES.iter().map(|(c, _)| *c).collect::<Vec<_>>()),
    }
}

/// One command (`status`, `sessions wait`): what it does, its own flags with their
/// defaults, the global ones it takes, its exit codes. A group (`sessions`): its
/// commands. `None`: no such topic.
pub(super) fn command(topic: &str) -> Option<Help> {
    let words: Vec<&str> = topic.split_whitespace().collect();
    if let [group] = words.as_slice()
        && GROUPS.iter().any(|(g, _)| g == group)
    {
        let commands: Vec<&Cmd> = COMMANDS
            .iter()
            .filter(|c| c.words.split(' ').next() == Some(group))
            .collect();
        let mut exits: Vec<u8> = commands.iter().flat_map(|c| c.exits).copied().collect();
        exits.sort_unstable();
        exits.dedup();
        return Some(Help {
            usage: format!("angrav {group} <COMMAND> [OPTIONS]"),
            summary: "",
            commands: commands.into_iter().map(command_entry).collect(),
            flags: Vec::new(),
            global_flags: Vec::new(),
            exit_codes: exit_codes(&exits),
        });
    }
    let c = match find(&words)? {
        (c, []) => c,
        _ => return None,
    };
    Some(Help {
        usage: format!("angrav {}{} [OPTIONS]", c.words, c.args),
        summary: c.summary,
        commands: Vec::new(),
        flags: c.own_flags().map(flag_entry).collect(),
        global_flags: c.global_flags().map(|f| f.name).collect(),
        exit_codes: exit_codes(c.exits),
    })
}

impl Help {
    /// The help as a person reads it.
    pub(super) fn text(&self) -> String {
        let mut out = format!("Usage: {}\n", self.usage);
        if !self.summary.is_empty() {
            out += &format!("\n{}\n", wrap(self.summary, 0));
        }
        if !self.commands.is_empty() {
            out += "\nCommands:\n";
            out += &self.commands.iter().map(Entry::line).collect::<String>();
        }
        let whole = self.usage.starts_with("angrav [OPTIONS]");
        if whole {
            out += "\nGlobal options (every command that talks to Antigravity takes them):\n";
        } else if self.commands.is_empty() {
            out += "\nOptions:\n";
        }
        out += &self.flags.iter().map(Entry::line).collect::<String>();
        if self.commands.is_empty() {
            out += &entry("-h, --help", "this help");
        }
        if !self.global_flags.is_empty() {
            out += &format!(
                "\nAlso the global options {} (see 'angrav help').\n",
                self.global_flags.join(", ")
            );
        }
        out += "\nExit codes:\n";
        for e in &self.exit_codes {
            out += &format!("  {:<5}{}\n", e.code, wrap(e.meaning, 7).trim_start());
        }
        if whole {
            out += "\n'angrav help COMMAND' (or 'angrav COMMAND --help'): one command, its own options and exit codes.\n";
        } else if !self.commands.is_empty() {
            let group = self.usage.split(' ').nth(1).unwrap_or_default();
            out += &format!("\n'angrav help {group} COMMAND': one of them, with its options.\n");
        }
        out
    }
}

impl Entry {
    fn line(&self) -> String {
        entry(&self.name, &self.text)
    }
}

/// `text` wrapped to fit 88 columns, each line after the first indented by `indent`.
fn wrap(text: &str, indent: usize) -> String {
    let mut out = String::new();
    let mut col = indent;
    for word in text.split(' ') {
        if col > indent && col + 1 + word.chars().count() > 88 {
            out += &format!("\n{:indent$}", "");
            col = indent;
        } else if col > indent {
            out.push(' ');
            col += 1;
        }
        out += word;
        col += word.chars().count();
    }
    out
}

/// The nearest of `candidates` to `typed`, when near enough to be a slip: at most
/// one edit in four characters, and at least one.
pub(super) fn nearest<'c>(
    typed: &str,
    candidates: impl IntoIterator<Item = &'c str>,
) -> Option<&'c str> {
    let bound = (typed.chars().count() / 4).max(1);
    candidates
        .into_iter()
        .map(|c| (distance(typed, c), c))
        .filter(|(d, _)| *d <= bound)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Edit distance (Levenshtein, a swap of two neighbours counting one).
fn distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut rows = vec![(0..=b.len()).collect::<Vec<usize>>()];
    for i in 1..=a.len() {
        let mut row = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            row[j] = (rows[i - 1][j] + 1)
                .min(row[j - 1] + 1)
                .min(rows[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                row[j] = row[j].min(rows[i - 2][j - 2] + 1);
            }
        }
        rows.push(row);
    }
    rows[a.len()][b.len()]
}

/// What a misspelt command was likely meant to be: the command (or group) whose
/// words are nearest to as many of the typed ones.
pub(super) fn command_like(words: &[&str]) -> Option<&'static str> {
    let mut known: Vec<&'static str> = COMMANDS.iter().map(|c| c.words).collect();
    known.extend(GROUPS.iter().map(|(g, _)| *g));
    let typed = |n: usize| words.iter().take(n).copied().collect::<Vec<_>>().join(" ");
    let mut best: Option<(usize, &'static str)> = None;
    for k in known {
        let t = typed(k.split(' ').count());
        let d = distance(&t, k);
        if d <= (t.chars().count() / 4).max(1) && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, k));
        }
    }
    best.map(|(_, k)| k)
}

/// Every flag any command takes, each name once.
pub(super) fn every_flag() -> Vec<&'static str> {
    let mut names: Vec<&str> = Vec::new();
    for f in COMMANDS.iter().flat_map(Cmd::flags) {
        if !names.contains(&f.name) {
            names.push(f.name);
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_presets_not_text() {
        for f in COMMANDS.iter().flat_map(Cmd::flags) {
            assert!(
                !f.text.contains("[default"),
                "{}: give its default as `preset: Preset::Value(..)` (a value the parser \
                 takes) or `Preset::Said(..)` (words), not in its text",
                f.name
            );
        }
    }

    #[test]
    fn every_command_can_exit_0_and_2_and_no_code_is_unexplained() {
        for c in COMMANDS {
            assert!(
                c.exits.contains(&0) && c.exits.contains(&2),
                "{}: exits",
                c.words
            );
            for code in c.exits {
                assert!(
                    EXIT_CODES.iter().any(|(k, _)| k == code),
                    "{}: exit code {code} is not in EXIT_CODES",
                    c.words
                );
            }
        }
    }

    #[test]
    fn slips_find_their_word() {
        assert_eq!(nearest("--wiat", ["--wait", "--when-idle"]), Some("--wait"));
        assert_eq!(nearest("--sesion", every_flag()), Some("--session"));
        assert_eq!(nearest("--frobnicate", every_flag()), None);
        let typed = |s: &str| command_like(&s.split(' ').collect::<Vec<_>>());
        assert_eq!(typed("sesions list"), Some("sessions list"));
        assert_eq!(typed("sesions"), Some("sessions"));
        assert_eq!(typed("promt hi"), Some("prompt"));
        assert_eq!(typed("stauts"), Some("status"));
        assert_eq!(typed("frobnicate"), None);
    }

    #[test]
    fn words_find_their_command() {
        let words =
            |s: &str| find(&s.split(' ').collect::<Vec<_>>()).map(|(c, r)| (c.words, r.len()));
        assert_eq!(words("sessions"), Some(("sessions list", 0)));
        assert_eq!(words("output code"), Some(("output code", 0)));
        assert_eq!(words("prompt one two"), Some(("prompt", 2)));
        assert_eq!(words("sessions frob"), None);
        assert_eq!(words("frob"), None);
    }
}
