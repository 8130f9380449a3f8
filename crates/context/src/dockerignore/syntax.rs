//! Wildcard syntax shared by `.dockerignore` patterns and COPY sources: Go's `filepath.Match`
//! grammar (`*`, `?`, `[...]` classes with ranges and `^`, `\` escapes).
//!
//! [`parse_class`] parses one class; [`validate`] checks a whole pattern the way Go's
//! `filepath.Match` does before it would ever report `ErrBadPattern`.

use super::error::SyntaxProblem;

/// A parsed `[...]` class. Invariant: `ranges` is non-empty and every `lo <= hi`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Class {
    pub negated: bool,
    pub ranges: Vec<(char, char)>,
}

impl Class {
    /// Whether `c` is in the class (any character, including `/`, can be tested).
    pub fn matches(&self, c: char) -> bool {
        let inside = self.ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi);
        inside != self.negated
    }
}

/// Reads one class character at `chars[*i]` (handling `\` escapes), Go's `getEsc`.
fn class_char(chars: &[char], i: &mut usize) -> Result<char, SyntaxProblem> {
    let first = *chars.get(*i).ok_or(SyntaxProblem::UnclosedClass)?;
    if first == '-' || first == ']' {
        return Err(SyntaxProblem::BadClassItem { found: first });
    }
    let c = if first == '\\' {
        *i += 1;
        *chars.get(*i).ok_or(SyntaxProblem::TrailingBackslash)?
    } else {
        first
    };
    *i += 1;
    if *i >= chars.len() {
        return Err(SyntaxProblem::UnclosedClass);
    }
    Ok(c)
}

/// Parses the class whose `[` is at `chars[start]`; returns it and the index after its `]`.
///
/// With `check_order`, a backwards range (`z-a`) is an error (Go's regexp rejects it, which is
/// what the `.dockerignore` matcher ends up using); `filepath.Match` itself tolerates it.
pub fn parse_class(
    chars: &[char],
    start: usize,
    check_order: bool,
) -> Result<(Class, usize), SyntaxProblem> {
    let mut i = start + 1;
    let mut negated = false;
    if chars.get(i) == Some(&'^') {
        negated = true;
        i += 1;
    }
    let mut ranges = Vec::new();
    loop {
        if chars.get(i) == Some(&']') && !ranges.is_empty() {
            return Ok((Class { negated, ranges }, i + 1));
        }
        let lo = class_char(chars, &mut i)?;
        let mut hi = lo;
        if chars.get(i) == Some(&'-') {
            i += 1;
            hi = class_char(chars, &mut i)?;
        }
        if check_order && lo > hi {
            return Err(SyntaxProblem::BackwardsRange { lo, hi });
        }
        ranges.push((lo, hi));
    }
}

/// Checks `pattern` with Go `filepath.Match`'s syntax rules (backwards ranges allowed).
pub fn validate(pattern: &str) -> Result<(), SyntaxProblem> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '\\' => {
                if i + 1 >= chars.len() {
                    return Err(SyntaxProblem::TrailingBackslash);
                }
                i += 2;
            }
            '[' => {
                let (_, next) = parse_class(&chars, i, false)?;
                i = next;
            }
            _ => i += 1,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_bad_patterns_are_rejected() {
        for bad in [
            "[]a]", "[-]", "[x-]", "[-x]", "\\", "[a-b-c]", "[", "[^", "[^bc", "a[",
        ] {
            assert!(validate(bad).is_err(), "{bad:?} should be rejected");
        }
        for good in [
            "[\\]a]",
            "[\\-]",
            "[x\\-]",
            "a\\*b",
            "[Local-Only]",
            "*",
            "a[^b-d]e",
        ] {
            assert_eq!(validate(good), Ok(()), "{good:?} should be accepted");
        }
    }

    #[test]
    fn backwards_range_only_with_order_check() {
        let chars: Vec<char> = "[l-O]".chars().collect();
        assert!(parse_class(&chars, 0, false).is_ok());
        assert_eq!(
            parse_class(&chars, 0, true),
            Err(SyntaxProblem::BackwardsRange { lo: 'l', hi: 'O' })
        );
    }

    #[test]
    fn class_membership() {
        let chars: Vec<char> = "[^a-c]".chars().collect();
        let (class, next) = parse_class(&chars, 0, true).expect("valid class");
        assert_eq!(next, 6);
        assert!(!class.matches('b'));
        assert!(class.matches('z'));
        assert!(class.matches('/'));
    }
}
