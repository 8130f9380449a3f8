//! Docker-exact `.dockerignore` handling, our own implementation.
//!
//! - [`PatternMatcher`]: an ordered pattern list with `!` exceptions and parent-directory
//!   matching (Docker's `MatchesOrParentMatches`);
//! - [`parse_ignore_file`] / [`find_ignore_file`]: reading the file and choosing between
//!   `<Dockerfile>.dockerignore` and the context's `.dockerignore`;
//! - `syntax`: the `filepath.Match` wildcard grammar, shared with COPY source globbing.

mod error;
mod matcher;
mod pattern;
mod read;
pub(crate) mod syntax;

pub use error::{PatternError, SyntaxProblem};
pub use matcher::PatternMatcher;
pub use pattern::Pattern;
pub use read::{find_ignore_file, parse_ignore_file};
