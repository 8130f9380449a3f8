//! Shell-word processing with BuildKit's lexer semantics (`frontend/dockerfile/shell`).
//!
//! One engine expands `$VAR`, `${VAR}` and the modifier forms (`:-` `-` `:+` `+` `:?` `?`
//! `#` `##` `%` `%%` `/` `//`), removes quotes, resolves escapes (`\` or `` ` ``) and, for
//! [`process_words`], splits the result into words on unquoted whitespace *after* expansion.
//!
//! * [`env`](mod@env): the [`Env`] lookup trait and an ordered `KEY=VALUE` list environment.
//! * [`lexer`]: the scanner and the expansion state machine.
//! * [`pattern`]: shell patterns (`*`, `?`, `\x`) for trimming and replacing.
//! * [`words`]: the word accumulator used for splitting.
//! * [`error`]: the error type, [`ShellError`].
//!
//! Invariant: the result is exactly what BuildKit's `ProcessWord`/`ProcessWords` return for
//! the same input on Linux (held to BuildKit's own vectors by `tests/conformance_shell.rs`).

pub mod env;
pub mod error;
pub mod lexer;
pub mod pattern;
pub mod words;

pub use env::{Env, EnvList};
pub use error::{ShellError, ShellErrorKind};
pub use lexer::{
    expand, expand_with, process_word, process_word_with_matches, process_words, Expansion,
    LexOptions,
};
