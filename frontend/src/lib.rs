//! The Dockerfile frontend of rbuild. Pure: bytes in, data out (no filesystem, no tokio).
//!
//! * [`ast`]: the parse tree with spans ([`Dockerfile`], [`Node`], [`Heredoc`]).
//! * [`diagnostics`]: errors/warnings with spans and their caret rendering.

pub mod ast;
pub mod diagnostics;
pub mod shell;

pub use ast::{Directive, Dockerfile, Heredoc, Node, Warning};
pub use diagnostics::{Diagnostic, Diagnostics, Severity};
