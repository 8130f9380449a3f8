//! The errors of shell-word processing.

/// Why processing a word failed; the `Display` text follows BuildKit's messages.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShellErrorKind {
    #[error("unexpected end of statement while looking for matching single-quote")]
    UnterminatedSingleQuote,
    #[error("unexpected end of statement while looking for matching double-quote")]
    UnterminatedDoubleQuote,
    #[error("unexpected end of statement while looking for matching {0}")]
    MissingStop(char),
    #[error("syntax error: missing '}}'")]
    MissingBrace,
    #[error("syntax error: missing '/' in ${{}}")]
    MissingSlash,
    #[error("syntax error: bad substitution")]
    BadSubstitution,
    #[error("unsupported modifier ({0}) in substitution")]
    UnsupportedModifier(String),
    /// `${name?msg}` / `${name:?msg}` on an unset (or empty) variable.
    #[error("{name}: {message}")]
    Required { name: String, message: String },
    #[error("invalid pattern ({pattern}) in substitution: {reason}")]
    InvalidPattern { pattern: String, reason: String },
}

/// A failure to process one word, naming the word as written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("failed to process {input:?}: {kind}")]
pub struct ShellError {
    /// The input as given to the lexer.
    pub input: String,
    /// What went wrong.
    pub kind: ShellErrorKind,
}
