//! `angrav completions bash|zsh|fish`: completion scripts made from the command table
//! in `help`, so they offer exactly the commands and flags the parser takes; the values
//! of the enumerated flags; file names after `-f`, `--selectors` and `--policy`; and
//! session ids, workspaces, aliases and groups through `angrav __complete`, a hidden
//! listing that reads only the endpoints' window lists and the state directory.

use super::help::{self, COMMANDS, Cmd};
use super::{Args, output, usage};
use crate::journal::Kind;
use crate::names::{Aliases, Groups};
use crate::panel::Layout;
use crate::state::StateDir;
use crate::{Error, exit};

/// What completes a flag's value.
enum Value {
    /// One of these words.
    Words(Vec<&'static str>),
    Files,
    /// A listing of `angrav __complete`: `sessions` or `groups`.
    Listed(&'static str),
}

/// The values a flag takes, where they can be offered.
fn value(flag: &str) -> Option<Value> {
    Some(match flag {
        "--color" => Value::Words(vec!["auto", "always", "never"]),
        "--layout" => Value::Words(Layout::ALL.iter().map(|l| l.name()).collect()),
        "--kind" => Value::Words(Kind::ALL.iter().map(|k| k.name()).collect()),
        "-f" | "--selectors" | "--policy" => Value::Files,
        "--session" => Value::Listed("sessions"),
        "--group" => Value::Listed("groups"),
        _ => return None,
    })
}

/// `angrav __complete sessions|groups|aliases`: one word a line, for the completion
/// scripts. Sessions are their ids, workspaces and aliases, read from the endpoints'
/// window lists (no page is probed); what cannot be read is left out, silently.
pub(super) fn listing(a: &Args, what: &str) -> Result<u8, Error> {
    let state = (!a.no_state).then(StateDir::locate).and_then(Result::ok);
    let aliases = || {
        state
            .as_ref()
            .and_then(|d| d.read::<Aliases>().ok())
            .map(|al| al.aliases.into_keys().collect::<Vec<_>>())
            .unwrap_or_default()
    };
    let words: Vec<String> = match what {
        "sessions" => {
            let mut words = aliases();
            if let Ok(registry) = super::registry(a) {
                for s in registry.sessions() {
                    words.push(s.id.clone());
                    words.extend(s.workspace.clone());
                }
            }
            words
        }
        "aliases" => aliases(),
        "groups" => state
            .as_ref()
            .and_then(|d| d.read::<Groups>().ok())
            .map(|g| g.groups.into_keys().collect())
            .unwrap_or_default(),
        other => return Err(usage(format!("nothing to list as '{other}'"))),
    };
    let mut seen = std::collections::BTreeSet::new();
    for w in words
        .into_iter()
        .filter(|w| !w.contains(char::is_whitespace))
    {
        if seen.insert(w.clone()) {
            output::line(&w);
        }
    }
    Ok(exit::OK)
}

pub(super) fn script(shell: &str) -> Result<String, Error> {
    match shell {
        "bash" => Ok(bash()),
        // zsh runs bash completion functions through its bashcompinit.
        "zsh" => Ok(format!(
            "autoload -U +X compinit && compinit\nautoload -U +X bashcompinit && bashcompinit\n{}",
            bash()
        )),
        "fish" => Ok(fish()),
        other => Err(usage(format!(
            "no completions for '{other}': bash, zsh or fish"
        ))),
    }
}

/// The flags that take a value, for the completer to skip their values.
fn valued_flags() -> Vec<&'static str> {
    let mut names: Vec<&str> = Vec::new();
    for f in COMMANDS.iter().flat_map(Cmd::flags) {
        if f.takes_value() && !names.contains(&f.name) {
            names.push(f.name);
        }
    }
    names
}

fn flag_names(c: &Cmd) -> String {
    let mut names: Vec<&str> = c.flags().map(|f| f.name).collect();
    names.push("--help");
    names.join(" ")
}

fn bash() -> String {
    let valued = valued_flags().join("|");
    let values = bash_values();
    // Operands: the sessions of `alias set NAME` and `group set NAME`, the names of
    // `alias rm` and `group rm` (a word typed after the command's own).
    let operands = "        \"alias set \"*|\"group set \"*) opts=\"$(_angrav_list sessions)\" ;;\n        \"alias rm\") opts=\"$(_angrav_list aliases)\" ;;\n        \"group rm\") opts=\"$(_angrav_list groups)\" ;;\n";
    let mut cases = String::new();
    // Commands of two words first: `sessions list*` before `sessions*`.
    let mut ordered: Vec<&Cmd> = COMMANDS.iter().collect();
    ordered.sort_by_key(|c| std::cmp::Reverse(c.words.split(' ').count()));
    for c in ordered {
        let mut words = flag_names(c);
        match c.words {
            "help" => words = help::first_words().join(" "),
            "completions" => words = "bash zsh fish".into(),
            _ => {}
        }
        cases += &format!("        \"{}\"*) opts=\"{words}\" ;;\n", c.words);
        if let Some(group) = c.words.split_once(' ').map(|(g, _)| g)
            && !cases.contains(&format!("\"{group}\")"))
        {
            // The group word alone: its commands (added once, after the longer ones).
            let subs = help::subcommands(group).join(" ");
            cases += &format!("        \"{group}\") opts=\"{subs}\" ;;\n");
        }
    }
    format!(
        r#"# angrav completion for bash: source <(angrav completions bash)
{BASH_LISTING}_angrav() {{
    local cur="${{COMP_WORDS[COMP_CWORD]}}" prev="${{COMP_WORDS[COMP_CWORD-1]}}"
    local words="" w i skip=0 opts
    for ((i = 1; i < COMP_CWORD; i++)); do
        w="${{COMP_WORDS[i]}}"
        if ((skip)); then skip=0; continue; fi
        case "$w" in
            {valued}) skip=1 ;;
            -*) ;;
            *) words="$words $w" ;;
        esac
    done
    words="${{words# }}"
    case "$prev" in
{values}        {valued}) return ;;
    esac
    case "$words" in
{operands}{cases}        *) opts="{first} --help --version" ;;
    esac
    COMPREPLY=($(compgen -W "$opts" -- "$cur"))
}}
complete -F _angrav angrav
"#,
        first = help::first_words().join(" "),
    )
}

/// `--cdp URL` (and `--no-state`) as typed on the line being completed, for the
/// listing to read the same endpoints.
const BASH_LISTING: &str = r#"_angrav_list() {
    local i cdp=()
    for ((i = 1; i < COMP_CWORD; i++)); do
        case "${COMP_WORDS[i]}" in
            --cdp) cdp+=(--cdp "${COMP_WORDS[i+1]}") ;;
            --no-state) cdp+=(--no-state) ;;
        esac
    done
    angrav "${cdp[@]}" __complete "$1" 2>/dev/null
}
"#;

/// The `case "$prev"` arms of the flags whose values can be offered.
fn bash_values() -> String {
    let mut out = String::new();
    let mut done: Vec<&str> = Vec::new();
    for f in COMMANDS.iter().flat_map(Cmd::flags) {
        if done.contains(&f.name) {
            continue;
        }
        done.push(f.name);
        let reply = match value(f.name) {
            Some(Value::Words(w)) => format!("$(compgen -W \"{}\" -- \"$cur\")", w.join(" ")),
            Some(Value::Files) => "$(compgen -f -- \"$cur\")".into(),
            Some(Value::Listed(what)) => {
                format!("$(compgen -W \"$(_angrav_list {what})\" -- \"$cur\")")
            }
            None => continue,
        };
        out += &format!("        {}) COMPREPLY=({reply}); return ;;\n", f.name);
    }
    out
}

fn fish() -> String {
    let mut out = String::from(
        "# angrav completion for fish: angrav completions fish | source\ncomplete -c angrav -f\n",
    );
    let first = help::first_words().join(" ");
    out += &format!("complete -c angrav -n __fish_use_subcommand -a '{first}'\n");
    out += "complete -c angrav -n __fish_use_subcommand -l help -s h\n";
    out += "complete -c angrav -n __fish_use_subcommand -l version -s V\n";
    for c in COMMANDS {
        let condition = match c.words.split_once(' ') {
            Some((group, sub)) => {
                format!(
                    "__fish_seen_subcommand_from {group}; and __fish_seen_subcommand_from {sub}"
                )
            }
            None => format!("__fish_seen_subcommand_from {}", c.words),
        };
        if let Some((group, _)) = c.words.split_once(' ')
            && !out.contains(&format!("-n '__fish_seen_subcommand_from {group}; and not"))
        {
            let subs = help::subcommands(group).join(" ");
            out += &format!(
                "complete -c angrav -n '__fish_seen_subcommand_from {group}; and not __fish_seen_subcommand_from {subs}' -a '{subs}'\n"
            );
        }
        match c.words {
            "help" => out += &format!("complete -c angrav -n '{condition}' -a '{first}'\n"),
            "completions" => {
                out += &format!("complete -c angrav -n '{condition}' -a 'bash zsh fish'\n")
            }
            _ => {}
        }
        for f in c.flags() {
            let name = match f.name.strip_prefix("--") {
                Some(long) => format!("-l {long}"),
                None => format!("-s {}", f.name.trim_start_matches('-')),
            };
            let value = match value(f.name) {
                Some(Value::Words(w)) => format!(" -x -a '{}'", w.join(" ")),
                Some(Value::Files) => " -r -F".into(),
                Some(Value::Listed(what)) => {
                    format!(" -x -a '(angrav __complete {what} 2>/dev/null)'")
                }
                None if f.takes_value() => " -x".into(),
                None => String::new(),
            };
            out += &format!("complete -c angrav -n '{condition}' {name}{value}\n");
        }
    }
    out
}
