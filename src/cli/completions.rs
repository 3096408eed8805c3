//! `angrav completions bash|zsh|fish`: completion scripts made from the command table
//! in `help`, so they offer exactly the commands and flags the parser takes.

use super::help::{self, COMMANDS, Cmd};
use super::usage;
use crate::Error;

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
_angrav() {{
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
        --color) COMPREPLY=($(compgen -W "auto always never" -- "$cur")); return ;;
        -f|--selectors) COMPREPLY=($(compgen -f -- "$cur")); return ;;
        {valued}) return ;;
    esac
    case "$words" in
{cases}        *) opts="{first} --help --version" ;;
    esac
    COMPREPLY=($(compgen -W "$opts" -- "$cur"))
}}
complete -F _angrav angrav
"#,
        first = help::first_words().join(" "),
    )
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
            let value = match f.name {
                "--color" => " -x -a 'auto always never'",
                "-f" | "--selectors" => " -r -F",
                _ if f.takes_value() => " -x",
                _ => "",
            };
            out += &format!("complete -c angrav -n '{condition}' {name}{value}\n");
        }
    }
    out
}
