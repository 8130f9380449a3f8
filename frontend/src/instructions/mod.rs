//! Typed instructions built from parse-tree nodes, with flag parsing and errors that carry spans.
//!
//! Values stay UNEXPANDED here (`$VAR`, quotes and escapes as written); the lowering step
//! expands them with the shell lexer. This layer checks what can be checked without
//! variables: the keyword is known, flags are known and well-formed, argument counts are right,
//! ONBUILD wraps an allowed instruction, and the line is UTF-8 text wherever text is needed:
//! only a RUN command ([`Command<ByteString>`]) and heredoc bodies may hold other bytes, which
//! go on unchanged; anywhere else such a byte is an error at its position (BuildKit would
//! replace it with U+FFFD, or fail).

mod convert;
mod duration;
mod error;
mod flags;
pub mod mount;
pub mod values;

use std::time::Duration;

use rbuild_types::{ByteString, Span};

use crate::ast::{Dockerfile, Heredoc};
use crate::diagnostics::{Diagnostic, Diagnostics};

pub use convert::{from_node, from_node_spanned};
pub use duration::parse_go_duration;
pub use error::{InstructionError, MountError, ValueError};
pub use mount::{Mount, MountType, Sharing};
pub use values::{parse_checksum, parse_git_checksum, Chmod, Network, Security};

/// A value and the source span it came from (for a flag: the whole `--name=value` word).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Spanned<T> {
    pub value: T,
    pub span: Span,
}

/// A command in shell form (run through the shell) or exec form (a JSON argv). Text for
/// CMD, ENTRYPOINT and HEALTHCHECK (they go into the image config); bytes for RUN.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command<S = String> {
    /// `RUN echo hi`: the text as written (continuations joined).
    Shell(S),
    /// `RUN ["echo", "hi"]`.
    Exec(Vec<S>),
}

/// COPY's arguments.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CopyArgs {
    /// Source paths/patterns (heredoc sources are in `heredocs` instead).
    pub sources: Vec<String>,
    /// The destination (last argument).
    pub dest: String,
    /// `--from=stage|image|context` (never expanded).
    pub from: Option<Spanned<String>>,
    /// `--chown=user[:group]` (expanded when lowered).
    pub chown: Option<Spanned<String>>,
    /// `--chmod=mode` (expanded when lowered, then [`Chmod::parse`]d; already checked here
    /// when it has no `$`).
    pub chmod: Option<Spanned<String>>,
    /// `--link`.
    pub link: bool,
    /// `--parents` (the flag's span when true).
    pub parents: Option<Span>,
    /// `--exclude=pattern` (repeatable, expanded when lowered).
    pub excludes: Vec<Spanned<String>>,
    /// Inline sources (`COPY <<EOF /dest`): each becomes a file named after the heredoc.
    pub heredocs: Vec<Heredoc>,
}

/// ADD's arguments: COPY's plus the remote/archive options.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AddArgs {
    pub sources: Vec<String>,
    pub dest: String,
    pub chown: Option<Spanned<String>>,
    pub chmod: Option<Spanned<String>>,
    pub link: bool,
    pub excludes: Vec<Spanned<String>>,
    pub heredocs: Vec<Heredoc>,
    /// `--checksum=sha256:…` for remote sources (expanded when lowered, then checked with
    /// [`parse_checksum`]; already checked here when it has no `$`).
    pub checksum: Option<Spanned<String>>,
    /// `--keep-git-dir` for git sources (the flag's span when true).
    pub keep_git_dir: Option<Span>,
    /// `--unpack[=bool]`: `None` = default (unpack local archives only).
    pub unpack: Option<Spanned<bool>>,
}

/// HEALTHCHECK.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Healthcheck {
    /// `HEALTHCHECK NONE`: disable any inherited check.
    None,
    /// `HEALTHCHECK [flags] CMD …`. Durations `None` = inherit/default; never below 1ms
    /// unless zero.
    Cmd {
        cmd: Command,
        interval: Option<Duration>,
        timeout: Option<Duration>,
        start_period: Option<Duration>,
        start_interval: Option<Duration>,
        retries: Option<u32>,
    },
}

/// One Dockerfile instruction, typed. Strings are unexpanded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Instruction {
    From {
        image: String,
        /// `--platform` (expanded with the global scope when planned).
        platform: Option<Spanned<String>>,
        /// The stage name, lower-cased (`AS Build` → `build`).
        alias: Option<String>,
    },
    Run {
        /// The command's exact bytes (UTF-8 or not).
        cmd: Command<ByteString>,
        /// `--mount=…` values as written (repeatable); each is expanded and parsed into a
        /// [`Mount`] when lowered (BuildKit expands mount values at dispatch).
        mounts: Vec<Spanned<String>>,
        /// `--device=…` values as written.
        devices: Vec<Spanned<String>>,
        /// `--network` (not expanded).
        network: Option<Spanned<Network>>,
        /// `--security` (not expanded).
        security: Option<Spanned<Security>>,
        heredocs: Vec<Heredoc>,
    },
    Cmd(Command),
    Entrypoint(Command),
    Shell(Vec<String>),
    /// `(name, value)` pairs; values raw (quotes still there).
    Env(Vec<(String, String)>),
    /// `(name, default)` pairs.
    Arg(Vec<(String, Option<String>)>),
    Label(Vec<(String, String)>),
    Expose(Vec<String>),
    Copy(CopyArgs),
    Add(AddArgs),
    Workdir(String),
    User(String),
    Volume(Vec<String>),
    StopSignal(String),
    Healthcheck(Healthcheck),
    /// ONBUILD: the checked trigger and its text as written (stored in the image config).
    Onbuild {
        trigger: Box<Instruction>,
        raw: String,
    },
    Maintainer(String),
}

impl Instruction {
    /// The instruction keyword in upper case (`RUN`, `COPY`, …).
    pub fn keyword(&self) -> &'static str {
        match self {
            Instruction::From { .. } => "FROM",
            Instruction::Run { .. } => "RUN",
            Instruction::Cmd(_) => "CMD",
            Instruction::Entrypoint(_) => "ENTRYPOINT",
            Instruction::Shell(_) => "SHELL",
            Instruction::Env(_) => "ENV",
            Instruction::Arg(_) => "ARG",
            Instruction::Label(_) => "LABEL",
            Instruction::Expose(_) => "EXPOSE",
            Instruction::Copy(_) => "COPY",
            Instruction::Add(_) => "ADD",
            Instruction::Workdir(_) => "WORKDIR",
            Instruction::User(_) => "USER",
            Instruction::Volume(_) => "VOLUME",
            Instruction::StopSignal(_) => "STOPSIGNAL",
            Instruction::Healthcheck(_) => "HEALTHCHECK",
            Instruction::Onbuild { .. } => "ONBUILD",
            Instruction::Maintainer(_) => "MAINTAINER",
        }
    }
}

/// Converts every node of `df`; reports every failing node (each with its span).
pub fn instructions(df: &Dockerfile) -> Result<Vec<(Instruction, Span)>, Diagnostics> {
    let mut out = Vec::with_capacity(df.instructions.len());
    let mut errors = Vec::new();
    for node in &df.instructions {
        match from_node_spanned(node) {
            Ok(i) => out.push((i, node.span)),
            Err((e, span)) => errors.push(Diagnostic::error(e.to_string(), span)),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(Diagnostics(errors))
    }
}
