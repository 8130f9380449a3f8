//! One compiled `.dockerignore` pattern and how it matches a cleaned, `/`-separated path.
//!
//! Semantics follow Docker's matcher: the cleaned pattern is classified as
//! - `Exact` (no wildcard at all): string equality;
//! - `Prefix` (literal text then a final `**`, e.g. `dir/**`): the path starts with the text;
//! - `Suffix` (a leading `**` then literal text, e.g. `**/foo`): the path ends with the text
//!   (or, when the text starts with `/`, equals it without that `/`);
//! - `Tokens`: a sequence of tokens equivalent to Docker's regular expression (`*` = `[^/]*`,
//!   `?` = `[^/]`, `**` = `(.*/)?` or a final `.*`, classes, escaped literals), run as an NFA.
//!
//! The token form is also kept for every kind so a walker can ask whether a pattern could match
//! anything below a directory ([`Pattern::could_match_below`]).
//!
//! Patterns and paths are in the escaped form of context paths (see `entry`); tokens and
//! paths are read as units (one per character or byte that is not UTF-8), so `?` and `*`
//! count a stray byte as one character, as Go's regexp does.

use rbuild_types::bytes::{escaped_byte, units, Unit};

use super::error::{PatternError, SyntaxProblem};
use super::syntax::{parse_class, Class};

/// One element of the regular-expression form of a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    /// A literal character.
    Lit(char),
    /// `*`: any run of characters other than `/`.
    Star,
    /// `?`: one character other than `/`.
    One,
    /// `[...]`: one character in (or, negated, not in) the class; may be `/`.
    Class(Class),
    /// A final `**` after something non-literal: anything at all.
    AnyAll,
    /// `**` (or `**/`) before more pattern: nothing, or anything ending with `/`.
    OptDirs,
}

/// How a pattern decides a match; see the module docs.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Exact,
    Prefix(String),
    Suffix(String),
    Tokens,
}

/// A compiled pattern. Invariant: `cleaned` is non-empty, already `filepath.Clean`ed, and has
/// no leading `!` (that is `exclusion`).
#[derive(Debug, Clone)]
pub struct Pattern {
    cleaned: String,
    exclusion: bool,
    kind: Kind,
    toks: Vec<Tok>,
    /// The literal characters the token form starts and ends with: a path that does not
    /// start with `head` and end with `tail` cannot match (a quick test before the NFA).
    head: String,
    tail: String,
}

impl Pattern {
    /// Compiles an already cleaned pattern body (without its `!`).
    pub(crate) fn compile(cleaned: &str, exclusion: bool) -> Result<Pattern, PatternError> {
        let bad = |problem: SyntaxProblem| PatternError::BadPattern {
            pattern: cleaned.to_string(),
            problem,
        };
        let chars: Vec<char> = units(cleaned).map(Unit::as_char).collect();
        let mut toks = Vec::new();
        let mut kind = Kind::Exact;
        let mut i = 0;
        while i < chars.len() {
            let at_start = i == 0;
            match chars[i] {
                '*' if chars.get(i + 1) == Some(&'*') => {
                    i += 2;
                    if chars.get(i) == Some(&'/') {
                        i += 1;
                    }
                    if i >= chars.len() {
                        if kind == Kind::Exact {
                            let text = cleaned.strip_suffix("**").unwrap_or(cleaned);
                            kind = Kind::Prefix(text.to_string());
                        } else {
                            kind = Kind::Tokens;
                        }
                        toks.push(Tok::AnyAll);
                    } else {
                        kind = Kind::Tokens;
                        toks.push(Tok::OptDirs);
                    }
                    if at_start {
                        let text = cleaned.get(2..).unwrap_or("");
                        kind = Kind::Suffix(text.to_string());
                    }
                    continue;
                }
                '*' => {
                    toks.push(Tok::Star);
                    kind = Kind::Tokens;
                }
                '?' => {
                    toks.push(Tok::One);
                    kind = Kind::Tokens;
                }
                '\\' => match chars.get(i + 1) {
                    Some(&next) => {
                        toks.push(Tok::Lit(next));
                        kind = Kind::Tokens;
                        i += 1;
                    }
                    None => return Err(bad(SyntaxProblem::TrailingBackslash)),
                },
                '[' => {
                    let (class, next) = parse_class(&chars, i, true).map_err(bad)?;
                    toks.push(Tok::Class(class));
                    kind = Kind::Tokens;
                    i = next;
                    continue;
                }
                c => toks.push(Tok::Lit(c)),
            }
            i += 1;
        }
        // A character of the escape range stands for a stray byte or for itself (escaped
        // differently in the path text): the quick test stops before it.
        let lit = |t: &Tok| match t {
            Tok::Lit(c) if escaped_byte(*c).is_none() => Some(*c),
            _ => None,
        };
        let head: String = toks.iter().map_while(lit).collect();
        let mut tail: Vec<char> = toks.iter().rev().map_while(lit).collect();
        tail.reverse();
        Ok(Pattern {
            cleaned: cleaned.to_string(),
            exclusion,
            kind,
            toks,
            head,
            tail: tail.into_iter().collect(),
        })
    }

    /// The cleaned pattern text, without `!`.
    pub fn text(&self) -> &str {
        &self.cleaned
    }

    /// Whether this is a `!` exception pattern.
    pub fn is_exclusion(&self) -> bool {
        self.exclusion
    }

    /// Whether the pattern matches exactly this path (no parent-directory rule here).
    pub fn matches(&self, path: &str) -> bool {
        match &self.kind {
            Kind::Exact => path == self.cleaned,
            Kind::Prefix(text) => path.starts_with(text.as_str()),
            Kind::Suffix(text) => {
                path.ends_with(text.as_str())
                    || text.strip_prefix('/').is_some_and(|rest| path == rest)
            }
            Kind::Tokens => {
                if !path.starts_with(self.head.as_str()) || !path.ends_with(self.tail.as_str()) {
                    return false;
                }
                let states = self.run(path);
                states.accepts(self.toks.len())
            }
        }
    }

    /// Conservative: false only if no path below directory `dir` (`dir/...`) can match.
    pub fn could_match_below(&self, dir: &str) -> bool {
        match &self.kind {
            Kind::Suffix(_) => true,
            _ => {
                let prefix = format!("{dir}/");
                self.run(&prefix).alive()
            }
        }
    }

    /// Runs the token NFA over `input`, returning the reachable states. Two state buffers are
    /// allocated per call and swapped per character.
    fn run(&self, input: &str) -> States {
        let n = self.toks.len();
        let mut cur = States::new(n);
        let mut next = States::new(n);
        cur.add_pos(0, &self.toks);
        for c in units(input).map(Unit::as_char) {
            next.clear();
            for i in 0..=n {
                if cur.in_opt[i] {
                    next.in_opt[i] = true;
                    if c == '/' {
                        next.add_pos(i + 1, &self.toks);
                    }
                }
                if !cur.pos[i] || i == n {
                    continue;
                }
                match &self.toks[i] {
                    Tok::Lit(x) if *x == c => next.add_pos(i + 1, &self.toks),
                    Tok::Lit(_) => {}
                    Tok::Star if c != '/' => next.add_pos(i, &self.toks),
                    Tok::Star => {}
                    Tok::One if c != '/' => next.add_pos(i + 1, &self.toks),
                    Tok::One => {}
                    Tok::Class(class) if class.matches(c) => next.add_pos(i + 1, &self.toks),
                    Tok::Class(_) => {}
                    Tok::AnyAll => next.add_pos(i, &self.toks),
                    Tok::OptDirs => {
                        next.in_opt[i] = true;
                        if c == '/' {
                            next.add_pos(i + 1, &self.toks);
                        }
                    }
                }
            }
            std::mem::swap(&mut cur, &mut next);
            if !cur.alive() {
                return cur;
            }
        }
        cur
    }
}

/// NFA state set: `pos[i]` = "about to match token i"; `in_opt[i]` = "inside the `.*/` of the
/// `OptDirs` token i, waiting for a `/`".
struct States {
    pos: Vec<bool>,
    in_opt: Vec<bool>,
}

impl States {
    fn new(n: usize) -> States {
        States {
            pos: vec![false; n + 1],
            in_opt: vec![false; n + 1],
        }
    }

    /// Adds position `i` and everything reachable from it without consuming input.
    fn add_pos(&mut self, mut i: usize, toks: &[Tok]) {
        loop {
            if self.pos[i] {
                return;
            }
            self.pos[i] = true;
            match toks.get(i) {
                Some(Tok::Star | Tok::AnyAll | Tok::OptDirs) => i += 1,
                _ => return,
            }
        }
    }

    fn clear(&mut self) {
        self.pos.fill(false);
        self.in_opt.fill(false);
    }

    fn accepts(&self, n: usize) -> bool {
        self.pos[n]
    }

    fn alive(&self) -> bool {
        self.pos.iter().chain(self.in_opt.iter()).any(|&b| b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pat(p: &str) -> Pattern {
        Pattern::compile(p, false).expect("valid pattern")
    }

    #[test]
    fn kinds() {
        assert_eq!(pat("docs").kind, Kind::Exact);
        assert_eq!(pat("dir/**").kind, Kind::Prefix("dir/".into()));
        assert_eq!(pat("**").kind, Kind::Suffix(String::new()));
        assert_eq!(pat("**/foo").kind, Kind::Suffix("/foo".into()));
        assert_eq!(pat("**/*.go").kind, Kind::Tokens);
        assert_eq!(pat("a\\b").kind, Kind::Tokens);
    }

    #[test]
    fn token_matching() {
        let table = [
            ("a*/b", "abc/b", true),
            ("a*/b", "a/c/b", false),
            ("a**/*.txt", "a/dir/dir/file.txt", true),
            ("a/*.txt**", "a/file.txt", true),
            ("**/**/*.txt", "file.txt", true),
            ("**/*.txt", "a.txt.gz", false),
            ("x\\*y", "x*y", true),
            ("x\\*y", "x*yy", false),
            ("ab*ab", "ab", false),
            ("ab*ab", "abab", true),
            ("a[^b-d]e", "aze", true),
            ("a?b", "a/b", false),
            ("[a-ζ]*", "α", true),
            (".*", "foo", false),
        ];
        for (p, path, want) in table {
            assert_eq!(pat(p).matches(path), want, "{p:?} on {path:?}");
        }
    }

    #[test]
    fn below() {
        assert!(pat("foo/bar").could_match_below("foo"));
        assert!(!pat("foo/bar").could_match_below("baz"));
        assert!(pat("*/x").could_match_below("anything"));
        assert!(!pat("*.go").could_match_below("dir"));
        assert!(pat("dir/**").could_match_below("dir"));
        assert!(pat("a**/x").could_match_below("a/b/c"));
    }
}
