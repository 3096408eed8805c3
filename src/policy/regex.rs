//! The regular expressions of command rules, matched in time linear in the text: a
//! pattern is compiled to a Thompson automaton whose states all advance together, one
//! character at a time (no backtracking), so no pattern can stall a watch, whatever
//! the command: `^(\w+ ?)+$` against 10 KB costs what `^cargo` costs.
//!
//! Syntax: `^`, `$`, `.`, classes `[a-z_]` and `[^...]`, `*`, `+`, `?`, alternation
//! `|`, groups `( )`, and `\` escapes: `\d \w \s` (and `\D \W \S`, their complements)
//! as classes, `\t \n \r`, and `\` before a symbol for the symbol itself. A match may
//! start anywhere unless anchored, as `grep -E` finds it.

/// A compiled pattern.
#[derive(Debug, Clone)]
pub struct Regex {
    program: Vec<Inst>,
}

/// One state of the automaton; the states after it follow at the next index.
#[derive(Debug, Clone)]
enum Inst {
    /// Consumes one character of the set.
    Char(Set),
    /// Goes on at both: an alternative, or one more round of a loop.
    Split(usize, usize),
    Jump(usize),
    /// Zero-width: only at the text's start, only at its end.
    Start,
    End,
    Match,
}

/// The characters one step of a pattern accepts.
#[derive(Debug, Clone)]
enum Set {
    One(char),
    Any,
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

impl Set {
    fn contains(&self, c: char) -> bool {
        match self {
            Set::One(x) => *x == c,
            Set::Any => true,
            Set::Class { negated, ranges } => {
                ranges.iter().any(|(lo, hi)| (*lo..=*hi).contains(&c)) != *negated
            }
        }
    }
}

/// What `\d`, `\w` and `\s` stand for.
const DIGIT: &[(char, char)] = &[('0', '9')];
const WORD: &[(char, char)] = &[('a', 'z'), ('A', 'Z'), ('0', '9'), ('_', '_')];
const SPACE: &[(char, char)] = &[(' ', ' '), ('\t', '\t'), ('\n', '\n'), ('\r', '\r')];

/// A parsed pattern, before it is compiled.
#[derive(Debug)]
enum Node {
    Char(Set),
    Start,
    End,
    Group(Vec<Vec<Node>>),
    Repeat(Box<Node>, Quantifier),
}

#[derive(Debug, Clone, Copy)]
enum Quantifier {
    /// `*`
    Any,
    /// `+`
    Some,
    /// `?`
    Optional,
}

impl Regex {
    pub fn new(pattern: &str) -> Result<Regex, String> {
        let chars: Vec<char> = pattern.chars().collect();
        let mut p = Parser {
            chars: &chars,
            at: 0,
        };
        let alternatives = p.alternatives()?;
        if p.at < chars.len() {
            return Err(format!("'{pattern}': unmatched ')' at {}", p.at));
        }
        let mut program = Vec::new();
        compile_alternatives(&mut program, &alternatives);
        program.push(Inst::Match);
        Ok(Regex { program })
    }

    /// Whether the pattern matches somewhere in `text`: every state the automaton can
    /// be in is carried along at once, each at most once per position, so the time is
    /// the text's length times the pattern's.
    pub fn is_match(&self, text: &str) -> bool {
        let mut now = States::new(self.program.len());
        let mut next = States::new(self.program.len());
        let mut stack = Vec::new();
        let mut chars = text.chars().peekable();
        let mut at_start = true;
        loop {
            let at_end = chars.peek().is_none();
            // A match may start at every position.
            if self.follow(&mut now, 0, (at_start, at_end), &mut stack) {
                return true;
            }
            let Some(c) = chars.next() else {
                return false;
            };
            let after = (false, chars.peek().is_none());
            for &pc in &now.list {
                if let Inst::Char(set) = &self.program[pc]
                    && set.contains(c)
                    && self.follow(&mut next, pc + 1, after, &mut stack)
                {
                    return true;
                }
            }
            std::mem::swap(&mut now, &mut next);
            next.clear();
            at_start = false;
        }
    }

    /// Adds `pc` and every state reachable from it without consuming a character
    /// (`at`: whether this position is the text's start, its end); true once `Match`
    /// is reached.
    fn follow(
        &self,
        states: &mut States,
        pc: usize,
        (at_start, at_end): (bool, bool),
        stack: &mut Vec<usize>,
    ) -> bool {
        stack.clear();
        stack.push(pc);
        while let Some(pc) = stack.pop() {
            if !states.insert(pc) {
                continue;
            }
            match self.program[pc] {
                Inst::Char(_) => {}
                Inst::Split(a, b) => stack.extend([b, a]),
                Inst::Jump(to) => stack.push(to),
                Inst::Start if at_start => stack.push(pc + 1),
                Inst::End if at_end => stack.push(pc + 1),
                Inst::Start | Inst::End => {}
                Inst::Match => return true,
            }
        }
        false
    }
}

/// The states the automaton is in at one position, each once.
struct States {
    list: Vec<usize>,
    member: Vec<bool>,
}

impl States {
    fn new(size: usize) -> States {
        States {
            list: Vec::with_capacity(size),
            member: vec![false; size],
        }
    }

    /// False when `pc` was already there.
    fn insert(&mut self, pc: usize) -> bool {
        let new = !std::mem::replace(&mut self.member[pc], true);
        if new {
            self.list.push(pc);
        }
        new
    }

    fn clear(&mut self) {
        for pc in self.list.drain(..) {
            self.member[pc] = false;
        }
    }
}

// --- compiling: each construct becomes a few states ----------------------------

fn compile_alternatives(program: &mut Vec<Inst>, alternatives: &[Vec<Node>]) {
    let mut to_end = Vec::new();
    for (i, seq) in alternatives.iter().enumerate() {
        let last = i + 1 == alternatives.len();
        // Split(this alternative, the next one).
        let split = (!last).then(|| placeholder(program));
        for node in seq {
            compile(program, node);
        }
        if let Some(split) = split {
            to_end.push(placeholder(program));
            program[split] = Inst::Split(split + 1, program.len());
        }
    }
    for jump in to_end {
        program[jump] = Inst::Jump(program.len());
    }
}

fn compile(program: &mut Vec<Inst>, node: &Node) {
    match node {
        Node::Char(set) => program.push(Inst::Char(set.clone())),
        Node::Start => program.push(Inst::Start),
        Node::End => program.push(Inst::End),
        Node::Group(alternatives) => compile_alternatives(program, alternatives),
        Node::Repeat(node, Quantifier::Any) => {
            let split = placeholder(program);
            compile(program, node);
            program.push(Inst::Jump(split));
            program[split] = Inst::Split(split + 1, program.len());
        }
        Node::Repeat(node, Quantifier::Some) => {
            let body = program.len();
            compile(program, node);
            program.push(Inst::Split(body, program.len() + 1));
        }
        Node::Repeat(node, Quantifier::Optional) => {
            let split = placeholder(program);
            compile(program, node);
            program[split] = Inst::Split(split + 1, program.len());
        }
    }
}

/// A state whose targets are set once they are known.
fn placeholder(program: &mut Vec<Inst>) -> usize {
    program.push(Inst::Match);
    program.len() - 1
}

// --- parsing ---------------------------------------------------------------------

struct Parser<'a> {
    chars: &'a [char],
    at: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.at).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        self.at += usize::from(c.is_some());
        c
    }

    fn alternatives(&mut self) -> Result<Vec<Vec<Node>>, String> {
        let mut alts = vec![self.sequence()?];
        while self.peek() == Some('|') {
            self.at += 1;
            alts.push(self.sequence()?);
        }
        Ok(alts)
    }

    fn sequence(&mut self) -> Result<Vec<Node>, String> {
        let mut seq = Vec::new();
        while let Some(c) = self.peek() {
            if c == '|' || c == ')' {
                break;
            }
            let atom = self.atom()?;
            let quantifier = match self.peek() {
                Some('*') => Quantifier::Any,
                Some('+') => Quantifier::Some,
                Some('?') => Quantifier::Optional,
                _ => {
                    seq.push(atom);
                    continue;
                }
            };
            self.at += 1;
            if matches!(atom, Node::Start | Node::End) {
                return Err(format!("nothing to repeat at {}", self.at - 1));
            }
            seq.push(Node::Repeat(Box::new(atom), quantifier));
        }
        Ok(seq)
    }

    fn atom(&mut self) -> Result<Node, String> {
        let at = self.at;
        Ok(match self.next().expect("a character") {
            '(' => {
                let inner = self.alternatives()?;
                if self.next() != Some(')') {
                    return Err(format!("'(' at {at} is not closed"));
                }
                Node::Group(inner)
            }
            '[' => Node::Char(self.class(at)?),
            '.' => Node::Char(Set::Any),
            '^' => Node::Start,
            '$' => Node::End,
            '*' | '+' | '?' => return Err(format!("nothing to repeat at {at}")),
            '\\' => Node::Char(self.escape(at)?),
            c => Node::Char(Set::One(c)),
        })
    }

    /// After a `\` at `at`: a class, a control character, or a symbol itself. Any
    /// other letter or digit is refused rather than taken literally: `\b` is not a
    /// `b`, and a rule must not silently match something else than was meant.
    fn escape(&mut self, at: usize) -> Result<Set, String> {
        let c = self.next().ok_or(format!("'\\' at {at} escapes nothing"))?;
        let class = |negated, ranges: &[(char, char)]| Set::Class {
            negated,
            ranges: ranges.to_vec(),
        };
        Ok(match c {
            'd' | 'D' => class(c == 'D', DIGIT),
            'w' | 'W' => class(c == 'W', WORD),
            's' | 'S' => class(c == 'S', SPACE),
            't' => Set::One('\t'),
            'n' => Set::One('\n'),
            'r' => Set::One('\r'),
            c if c.is_alphanumeric() => return Err(unknown_escape(c, at)),
            c => Set::One(c),
        })
    }

    fn class(&mut self, at: usize) -> Result<Set, String> {
        let negated = self.peek() == Some('^');
        self.at += usize::from(negated);
        let unclosed = || format!("'[' at {at} is not closed");
        let mut ranges = Vec::new();
        let mut first = true;
        loop {
            let escape_at = self.at;
            let c = self.next().ok_or_else(unclosed)?;
            if c == ']' && !first {
                break;
            }
            first = false;
            let c = if c == '\\' {
                match self.next().ok_or_else(unclosed)? {
                    'd' => {
                        ranges.extend_from_slice(DIGIT);
                        continue;
                    }
                    'w' => {
                        ranges.extend_from_slice(WORD);
                        continue;
                    }
                    's' => {
                        ranges.extend_from_slice(SPACE);
                        continue;
                    }
                    't' => '\t',
                    'n' => '\n',
                    'r' => '\r',
                    c @ ('D' | 'W' | 'S') => {
                        return Err(format!(
                            "'\\{c}' at {escape_at} cannot be inside [ ] (use [^...])"
                        ));
                    }
                    c if c.is_alphanumeric() => return Err(unknown_escape(c, escape_at)),
                    c => c,
                }
            } else {
                c
            };
            if self.peek() == Some('-') && self.chars.get(self.at + 1).is_some_and(|&n| n != ']') {
                self.at += 1;
                let hi = self.next().expect("checked");
                if hi < c {
                    return Err(format!("range {c}-{hi} at {at} is backwards"));
                }
                ranges.push((c, hi));
            } else {
                ranges.push((c, c));
            }
        }
        Ok(Set::Class { negated, ranges })
    }
}

fn unknown_escape(c: char, at: usize) -> String {
    format!(
        "unknown escape '\\{c}' at {at} (\\d \\w \\s \\D \\W \\S \\t \\n \\r, or \\ before a symbol)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn re(p: &str) -> Regex {
        Regex::new(p).unwrap_or_else(|e| panic!("{p}: {e}"))
    }

    #[test]
    fn literals_match_anywhere_unless_anchored() {
        assert!(re("cargo test").is_match("cd x && cargo test --all"));
        assert!(re("^cargo").is_match("cargo test"));
        assert!(!re("^cargo").is_match("sudo cargo test"));
        assert!(re("test$").is_match("cargo test"));
        assert!(!re("test$").is_match("cargo test --all"));
        assert!(re("^$").is_match(""));
        assert!(!re("^$").is_match("x"));
        assert!(re("").is_match("anything"));
        assert!(re("é+$").is_match("café"));
        assert!(!re("a^b").is_match("a^b"));
        assert!(re(r"a\^b\$").is_match("a^b$"));
    }

    #[test]
    fn classes_ranges_and_negation() {
        assert!(re("^[a-c]+$").is_match("abcab"));
        assert!(!re("^[a-c]+$").is_match("abd"));
        assert!(re("^[^ ]+$").is_match("one"));
        assert!(!re("^[^ ]+$").is_match("one two"));
        assert!(re("[-x]").is_match("a-b"));
        assert!(re("^[a-]+$").is_match("a-a"));
        assert!(re("^[]a]$").is_match("]"));
        assert!(re(r"^[\]x]+$").is_match("]x]"));
        assert!(re(r"^\d+ \w+$").is_match("42 files"));
        assert!(re(r"^[\d.]+$").is_match("1.25"));
        assert!(!re(r"^[\d.]+$").is_match("1,25"));
        assert!(re(r"^[^\s]+$").is_match("one"));
        assert!(!re(r"^[^\s]+$").is_match("one\ttwo"));
        assert!(re(r"^\S+\s\S+$").is_match("one two"));
        assert!(!re(r"\D").is_match("123"));
        assert!(re(r"^\W$").is_match("-"));
        assert!(re(r"^a\tb$").is_match("a\tb"));
        assert!(re(r"^a\.b$").is_match("a.b"));
        assert!(!re(r"^a\.b$").is_match("axb"));
        assert!(re("^a.b$").is_match("a\nb"));
    }

    #[test]
    fn repetition_and_optional() {
        assert!(re("^ab*c$").is_match("ac"));
        assert!(re("^ab*c$").is_match("abbbc"));
        assert!(!re("^ab+c$").is_match("ac"));
        assert!(re("^ab+c$").is_match("abbc"));
        assert!(re("^colou?r$").is_match("color"));
        assert!(re("^colou?r$").is_match("colour"));
        assert!(!re("^colou?r$").is_match("colouur"));
        assert!(re("^a.*z$").is_match("a to z"));
        assert!(re("^(a*)*b$").is_match("aaab"));
        assert!(!re("^(a*)*b$").is_match("aaac"));
        assert!(re("^(a?)+$").is_match(""));
        assert!(re("^(ab)+$").is_match("ababab"));
        assert!(!re("^(ab)+$").is_match("ababa"));
        assert!(re("^((a|b)c)*$").is_match("acbcac"));
        assert!(re("^(|x)y$").is_match("y"));
        assert!(re("^(|x)y$").is_match("xy"));
    }

    #[test]
    fn alternation_and_groups() {
        let r = re("^cargo (test|check|build)( |$)");
        assert!(r.is_match("cargo test"));
        assert!(r.is_match("cargo check --all"));
        assert!(!r.is_match("cargo testify"));
        assert!(!r.is_match("cargo run"));
        assert!(re("rm|mv").is_match("git mv a b"));
        assert!(re("^a|b$").is_match("xxb"));
        assert!(re("^a|b$").is_match("axx"));
        assert!(!re("^a|b$").is_match("xax"));
        assert!(re("rm +-[a-z]*r").is_match("rm -rf build"));
        assert!(re("rm +-[a-z]*r").is_match("rm  -fr /"));
        assert!(!re("rm +-[a-z]*r").is_match("rm -f x"));
    }

    #[test]
    fn malformed_patterns_are_refused() {
        for bad in [
            "(a", "a)", "[ab", "*a", "a|+", r"x\", "[z-a]", "^*", "a**", r"\b", r"\1", r"[\S]",
            r"[\q]",
        ] {
            assert!(Regex::new(bad).is_err(), "{bad}");
        }
        let e = Regex::new(r"\brm").unwrap_err();
        assert!(e.contains("unknown escape '\\b' at 0"), "{e}");
    }

    /// Patterns that take a backtracking matcher exponential time answer at once, and
    /// rightly, on 10 KB (the figures are `cargo bench --bench figures policy`).
    #[test]
    fn pathological_patterns_answer_on_long_commands() {
        let words = "cargo test ".repeat(1024);
        let nested = re(r"^(\w+ ?)+$");
        assert!(nested.is_match(words.trim_end()));
        assert!(!nested.is_match(&format!("{words}!")));
        let twice = re("(a|a)*b");
        let a = "a".repeat(10 * 1024);
        assert!(!twice.is_match(&a));
        assert!(twice.is_match(&format!("{a}b")));
        assert!(twice.is_match(&format!("b{a}")));
        assert!(!re("^(a*)*$").is_match(&format!("{a}c")));
        assert!(re("^(a|aa)+$").is_match(&a));
    }
}
