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
    #[error("unterminated heredoc {name:?}")]
    UnterminatedHeredoc { name: String },
    #[error("ONBUILD nested more than {max} levels deep")]
    OnbuildTooDeep { max: usize },
    #[error("file with no instructions")]
    NoInstructions,
}
