//! The Dockerfile frontend of rbuild. Pure: bytes in, data out (no filesystem, no tokio).
//!
//! * [`ast`]: the parse tree with spans ([`Dockerfile`], [`Node`], [`Heredoc`]).
//! * [`diagnostics`]: errors/warnings with spans and their caret rendering.
//! * [`parser`]: BuildKit-exact parsing of bytes into the tree ([`parse`]).
//! * [`instructions`](mod@instructions): typed, flag-checked instructions ([`Instruction`]).
//! * [`dump`](mod@dump): the tree in BuildKit's parser-test text format ([`dump()`]).
//! * [`lint`]: build checks, BuildKit's lint rules ([`lint::check`]).
//! * [`outline`](mod@outline): stages, build args, secrets and SSH for `--call=outline|targets`.

pub mod ast;
pub mod diagnostics;
pub mod dump;
pub mod instructions;
pub mod lint;
pub mod lower;
pub mod outline;
pub mod parser;
pub mod shell;

pub use ast::{Directive, Dockerfile, Heredoc, Node, NonUtf8, Segment, Warning};
pub use diagnostics::{Diagnostic, Diagnostics, Severity};
pub use dump::{dump, go_quote};
pub use instructions::{
    instructions, AddArgs, Command, CopyArgs, Healthcheck, Instruction, InstructionError,
};
pub use parser::parse;
