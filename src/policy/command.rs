//! A command line split into the commands it runs, so that a rule looks at each on its
//! own: `cargo test && rm -rf ~` is `cargo test` and `rm -rf ~`, and a rule anchored
//! with `^` sees where each of them starts.
//!
//! A line splits at `&&`, `||`, `;`, `|`, `|&`, `&` and newlines; `$( … )`, `( … )`,
//! `<( … )` and `` ` … ` `` hold commands of their own (inside double quotes too). A
//! part is the text as written, trimmed: `git commit -m "$(cat msg)"` is that whole
//! text and `cat msg`; a subshell `(cd x && make)` is only its parts. Single quotes,
//! double quotes and `\` protect what they hold as a shell's would. Nothing else of the
//! shell's grammar is read (`if … then`, `{ … }`, `#`): such words stay in the parts,
//! which only makes them harder to approve, never easier.

/// Deeper nesting than this is not split (and so never approved): each level is
/// matched again inside the one around it, so the depth bounds the matching time.
const DEEPEST: usize = 16;

/// What holds the text being read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    /// The line itself.
    Line,
    /// `$(`, `<(`, `>(`, or a `(` inside a command: its parts, and the command
    /// around it goes on after the `)`.
    Substitution,
    /// `(` where a command starts: only its parts.
    Subshell,
    /// `` ` ``.
    Backticks,
    /// `"`: no separators, but substitutions run.
    DoubleQuote,
}

struct Frame {
    open: Open,
    /// Where the part being read starts (inside double quotes: where they open).
    start: usize,
}

impl Frame {
    fn new(open: Open, start: usize) -> Frame {
        Frame { open, start }
    }
}

/// The parts of `line`, in the order they start; `None` when the line cannot be split
/// with certainty (a quote, `$(`, `(` or backtick not closed, a `)` closing nothing,
/// backticks nested or quoted inside backticks, nesting deeper than [`DEEPEST`]).
pub fn split(line: &str) -> Option<Vec<&str>> {
    let b = line.as_bytes();
    let mut stack = vec![Frame::new(Open::Line, 0)];
    // With where each starts, to be put in that order.
    let mut parts: Vec<(usize, &str)> = Vec::new();
    let mut end_part = |frame: &mut Frame, end: usize, next: usize| {
        let text = line[frame.start..end].trim();
        if !text.is_empty() {
            parts.push((frame.start, text));
        }
        frame.start = next;
    };
    let mut i = 0;
    while i < b.len() {
        let in_backticks = stack.iter().any(|f| f.open == Open::Backticks);
        let top = stack.last_mut().expect("the line's frame stays");
        let (open, prev, next) = (top.open, i.checked_sub(1).map(|p| b[p]), b.get(i + 1));
        match b[i] {
            b'\\' if in_backticks && next == Some(&b'`') => return None,
            b'\\' => i += 1,
            b'`' if open == Open::Backticks => {
                end_part(top, i, i + 1);
                stack.pop();
            }
            // Where a backtick closes inside backticks is the shell's guess.
            b'`' if in_backticks => return None,
            b'`' => stack.push(Frame::new(Open::Backticks, i + 1)),
            b'$' if next == Some(&b'(') => {
                i += 1;
                stack.push(Frame::new(Open::Substitution, i + 1));
            }
            b'"' if open == Open::DoubleQuote => {
                stack.pop();
            }
            _ if open == Open::DoubleQuote => {}
            b'"' => stack.push(Frame::new(Open::DoubleQuote, i + 1)),
            b'\'' => {
                // `$'…'` takes `\` escapes; '…' takes none.
                let escapes = prev == Some(b'$');
                let mut j = i + 1;
                while j < b.len() && b[j] != b'\'' {
                    j += if escapes && b[j] == b'\\' { 2 } else { 1 };
                }
                if j >= b.len() || (in_backticks && b[i..j].contains(&b'`')) {
                    return None;
                }
                i = j;
            }
            b'(' => {
                // From the end: a run of spaces precedes one `(` at most, so this
                // stays linear.
                let command_starts = b[top.start..i].iter().rev().all(u8::is_ascii_whitespace);
                let open = if command_starts {
                    Open::Subshell
                } else {
                    Open::Substitution
                };
                stack.push(Frame::new(open, i + 1));
            }
            b')' if matches!(open, Open::Substitution | Open::Subshell) => {
                end_part(top, i, i + 1);
                stack.pop();
                if open == Open::Subshell {
                    // The command around a subshell is only what follows it.
                    stack.last_mut().expect("below the subshell").start = i + 1;
                }
            }
            b')' => return None,
            b'&' if next == Some(&b'&') => {
                end_part(top, i, i + 2);
                i += 1;
            }
            // `2>&1`, `<&0`, `&>log`, `>|log`: redirections.
            b'&' if matches!(prev, Some(b'>' | b'<')) || next == Some(&b'>') => {}
            b'|' if prev == Some(b'>') => {}
            b'|' if matches!(next, Some(b'|' | b'&')) => {
                end_part(top, i, i + 2);
                i += 1;
            }
            b'&' | b'|' | b';' | b'\n' => end_part(top, i, i + 1),
            _ => {}
        }
        if stack.len() > DEEPEST + 1 {
            return None;
        }
        i += 1;
    }
    let [line_frame] = stack.as_mut_slice() else {
        return None;
    };
    end_part(line_frame, b.len(), b.len());
    parts.sort_by_key(|(start, _)| *start);
    Some(parts.into_iter().map(|(_, text)| text).collect())
}

#[cfg(test)]
mod tests {
    use super::split;

    fn parts(line: &str) -> Vec<&str> {
        split(line).unwrap_or_else(|| panic!("{line:?} did not split"))
    }

    #[test]
    fn separators_split_a_line() {
        assert_eq!(parts("cargo test"), ["cargo test"]);
        assert_eq!(parts("cargo test && rm -rf ~"), ["cargo test", "rm -rf ~"]);
        assert_eq!(
            parts("a || b; c | d |& e & f"),
            ["a", "b", "c", "d", "e", "f"]
        );
        assert_eq!(parts("make\nmake install\r\n"), ["make", "make install"]);
        assert_eq!(parts("  a ;; ;b; "), ["a", "b"]);
        assert_eq!(parts(""), Vec::<&str>::new());
        // A `\` continues the line; redirections are not separators.
        assert_eq!(parts("cargo \\\n test"), ["cargo \\\n test"]);
        assert_eq!(
            parts("cargo test 2>&1 >|log &>all <&0"),
            ["cargo test 2>&1 >|log &>all <&0"]
        );
        assert_eq!(parts(r"echo a\;b \&\& c"), [r"echo a\;b \&\& c"]);
    }

    #[test]
    fn quotes_hold_separators() {
        assert_eq!(
            parts(r#"git commit -m "fix; && done" && ls"#),
            [r#"git commit -m "fix; && done""#, "ls"]
        );
        assert_eq!(parts("echo 'a | b' | wc"), ["echo 'a | b'", "wc"]);
        assert_eq!(parts(r#"echo "say \"a; b\"""#), [r#"echo "say \"a; b\"""#]);
        assert_eq!(
            parts(r"echo $'it\'s; fine'; ls"),
            [r"echo $'it\'s; fine'", "ls"]
        );
        assert_eq!(parts(r#"echo "it's""#), [r#"echo "it's""#]);
        assert_eq!(parts(r#"echo '"'; ls"#), [r#"echo '"'"#, "ls"]);
        // No substitution inside single quotes.
        assert_eq!(parts("echo '$(rm -rf ~)'"), ["echo '$(rm -rf ~)'"]);
    }

    #[test]
    fn substitutions_are_parts_of_their_own() {
        assert_eq!(
            parts("echo $(rm -rf ~) done"),
            ["echo $(rm -rf ~) done", "rm -rf ~"]
        );
        assert_eq!(
            parts(r#"git commit -m "$(cat msg; rm x)""#),
            [r#"git commit -m "$(cat msg; rm x)""#, "cat msg", "rm x"]
        );
        assert_eq!(
            parts("a $(b $(c && d) e) f"),
            ["a $(b $(c && d) e) f", "b $(c && d) e", "c", "d"]
        );
        assert_eq!(
            parts("echo `date; rm -rf ~` | tee log"),
            ["echo `date; rm -rf ~`", "date", "rm -rf ~", "tee log"]
        );
        assert_eq!(
            parts(r#"echo "`whoami`" x"#),
            [r#"echo "`whoami`" x"#, "whoami"]
        );
        assert_eq!(
            parts("diff <(ls a) <(ls b)"),
            ["diff <(ls a) <(ls b)", "ls a", "ls b"]
        );
        assert_eq!(
            parts("x=$(rm -rf ~) cargo test"),
            ["x=$(rm -rf ~) cargo test", "rm -rf ~"]
        );
        // Quotes inside a substitution inside quotes.
        assert_eq!(
            parts(r#"echo "$(echo ")"; rm y)""#),
            [r#"echo "$(echo ")"; rm y)""#, r#"echo ")""#, "rm y"]
        );
    }

    #[test]
    fn subshells_are_only_their_parts() {
        assert_eq!(parts("(cd x && make) && ls"), ["cd x", "make", "ls"]);
        assert_eq!(parts("(a; (b)) > log"), ["a", "b", "> log"]);
        assert_eq!(parts("$((1 + 2))"), ["$((1 + 2))", "1 + 2"]);
    }

    #[test]
    fn what_cannot_be_split_with_certainty_is_not() {
        for line in [
            "echo 'unclosed; rm -rf ~",
            "echo \"unclosed",
            "echo $(unclosed",
            "echo `unclosed",
            "(unclosed",
            "echo :)",
            "echo `a \\`b\\` c`",
            "echo `echo '`'; rm -rf ~`",
            "echo `echo \"`\"`",
            "echo $'unclosed\\'",
        ] {
            assert_eq!(split(line), None, "{line}");
        }
        let deep = format!("{}x{}", "$(".repeat(16), ")".repeat(16));
        assert_eq!(split(&deep).map(|p| p.len()), Some(17));
        let deeper = format!("{}x{}", "$(".repeat(17), ")".repeat(17));
        assert_eq!(split(&deeper), None);
    }
}
