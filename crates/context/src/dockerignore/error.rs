//! Why a pattern list is rejected.

/// What exactly is wrong inside a bad pattern.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyntaxProblem {
    /// A `[` class is never closed with `]`.
    #[error("character class is not closed with ']'")]
    UnclosedClass,
    /// A class item starts with `-` or `]`, or a range lacks its upper bound.
    #[error("character class item {found:?} is not a character")]
    BadClassItem { found: char },
    /// A `\` is the last character of the pattern (or of a class).
    #[error("'\\' at the end of the pattern escapes nothing")]
    TrailingBackslash,
    /// A range like `l-O` whose lower bound is above its upper bound.
    #[error("character class range {lo:?}-{hi:?} is backwards")]
    BackwardsRange { lo: char, hi: char },
}

/// A `.dockerignore` pattern list that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    /// A line that is just `!` (after trimming): an exception of nothing.
    #[error("illegal exclusion pattern: \"!\"")]
    LoneExclamation,
    /// A pattern whose wildcard syntax is malformed (Go's `filepath.ErrBadPattern`).
    #[error("syntax error in pattern {pattern:?}: {problem}")]
    BadPattern {
        pattern: String,
        problem: SyntaxProblem,
    },
}
