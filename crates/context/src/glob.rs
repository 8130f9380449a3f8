//! COPY/ADD source wildcards: Go's `filepath.Match` (`*` and `?` never match `/`, `[...]`
//! classes, `\` escapes), applied to a whole cleaned relative path. Patterns and names are in
//! the escaped form of context paths (see `entry`) and read as units: `?` matches one
//! character or one byte that is not UTF-8, as Go's matcher does.

use rbuild_types::bytes::{units, Unit};

use crate::dockerignore::syntax::{parse_class, validate, Class};
use crate::dockerignore::SyntaxProblem;

/// Whether `src` contains an unescaped `*`, `?` or `[` (BuildKit's `containsWildcards`).
pub fn has_wildcards(src: &str) -> bool {
    let mut chars = src.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                chars.next();
            }
            '*' | '?' | '[' => return true,
            _ => {}
        }
    }
    false
}

#[derive(Debug, Clone)]
enum Tok {
    Lit(char),
    Star,
    One,
    Class(Class),
}

/// A compiled source glob.
#[derive(Debug, Clone)]
pub struct Glob {
    toks: Vec<Tok>,
}

impl Glob {
    /// Compiles `pattern`, rejecting what `filepath.Match` rejects.
    pub fn new(pattern: &str) -> Result<Glob, SyntaxProblem> {
        validate(pattern)?;
        let chars: Vec<char> = units(pattern).map(Unit::as_char).collect();
        let mut toks = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            match chars[i] {
                '*' => toks.push(Tok::Star),
                '?' => toks.push(Tok::One),
                '\\' => {
                    i += 1;
                    let c = *chars.get(i).ok_or(SyntaxProblem::TrailingBackslash)?;
                    toks.push(Tok::Lit(c));
                }
                '[' => {
                    let (class, next) = parse_class(&chars, i, false)?;
                    toks.push(Tok::Class(class));
                    i = next;
                    continue;
                }
                c => toks.push(Tok::Lit(c)),
            }
            i += 1;
        }
        Ok(Glob { toks })
    }

    /// Whether the whole of `name` matches.
    pub fn matches(&self, name: &str) -> bool {
        let chars: Vec<char> = units(name).map(Unit::as_char).collect();
        // cur[j]: after the tokens so far, `j` characters of `name` can have been consumed.
        let mut cur = vec![false; chars.len() + 1];
        cur[0] = true;
        for tok in &self.toks {
            let mut next = vec![false; chars.len() + 1];
            for j in 0..=chars.len() {
                if !cur[j] {
                    continue;
                }
                match tok {
                    Tok::Star => {
                        next[j] = true;
                        let mut k = j;
                        while k < chars.len() && chars[k] != '/' {
                            k += 1;
                            next[k] = true;
                        }
                    }
                    Tok::One => {
                        if j < chars.len() && chars[j] != '/' {
                            next[j + 1] = true;
                        }
                    }
                    Tok::Lit(c) => {
                        if chars.get(j) == Some(c) {
                            next[j + 1] = true;
                        }
                    }
                    Tok::Class(class) => {
                        if j < chars.len() && chars[j] != '/' && class.matches(chars[j]) {
                            next[j + 1] = true;
                        }
                    }
                }
            }
            cur = next;
        }
        cur[chars.len()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_wildcards() {
        assert!(has_wildcards("*.txt"));
        assert!(has_wildcards("a/[bc]"));
        assert!(!has_wildcards("a\\*b"));
        assert!(!has_wildcards("plain/path"));
    }

    #[test]
    fn matches_like_filepath_match() {
        let table = [
            ("*.txt", "a.txt", true),
            ("*.txt", "d/a.txt", false),
            ("d/*", "d/a.txt", true),
            ("?", "ab", false),
            ("[a-c]x", "bx", true),
            ("[^a-c]x", "bx", false),
            ("a\\*", "a*", true),
        ];
        for (p, name, want) in table {
            let g = Glob::new(p).expect("valid glob");
            assert_eq!(g.matches(name), want, "{p:?} on {name:?}");
        }
        assert!(Glob::new("[").is_err());
    }
}
