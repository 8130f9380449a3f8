//! Why a Dockerfile does not parse. Each error becomes a [`Diagnostic`](crate::Diagnostic)
//! with the span of the offending line.

use super::heredoc::HeredocError;

/// A parse error (without its location; the parser attaches the span).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("dockerfile line greater than max allowed size of {max}")]
    LineTooLong { max: usize },
    #[error("only one {name} parser directive can be used")]
    DuplicateDirective { name: String },
    #[error("invalid escape token '{value}' does not match ` or \\")]
    InvalidEscape { value: String },
    #[error("{keyword}: JSON arrays must be comprised of strings only")]
    NotStringArray { keyword: String },
    #[error("{keyword} must have two arguments")]
    TwoArguments { keyword: String },
    #[error("Syntax error - can't find = in {word:?}. Must be of the form: name=value")]
    MissingEquals { word: String },
    #[error(transparent)]
    Heredoc(#[from] HeredocError),
    #[error("heredoc name {name:?} is not UTF-8 text (stray bytes shown as U+FFFD)")]
    NonUtf8HeredocName { name: String },
    #[error("unterminated heredoc {name:?}")]
    UnterminatedHeredoc { name: String },
    #[error("ONBUILD nested more than {max} levels deep")]
    OnbuildTooDeep { max: usize },
    #[error("file with no instructions")]
    NoInstructions,
}

impl ParseError {
    /// The error with `text` applied to every string it quotes from the Dockerfile (the
    /// parser renders escaped strings for people with it).
    pub fn map_text(self, text: impl Fn(&str) -> String) -> ParseError {
        use ParseError as E;
        match self {
            E::InvalidEscape { value } => E::InvalidEscape {
                value: text(&value),
            },
            E::MissingEquals { word } => E::MissingEquals { word: text(&word) },
            E::UnterminatedHeredoc { name } => E::UnterminatedHeredoc { name: text(&name) },
            E::NonUtf8HeredocName { name } => E::NonUtf8HeredocName { name: text(&name) },
            E::Heredoc(HeredocError::UnterminatedQuote { word }) => {
                E::Heredoc(HeredocError::UnterminatedQuote { word: text(&word) })
            }
            E::Heredoc(HeredocError::FdRange { fd, word }) => E::Heredoc(HeredocError::FdRange {
                fd: text(&fd),
                word: text(&word),
            }),
            other => other,
        }
    }
}
