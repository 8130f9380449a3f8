//! Typed instructions built from parse-tree nodes, with flag parsing and errors that carry spans.
//!
//! Values stay UNEXPANDED here (`$VAR`, quotes and escapes as written); the lowering step
//! expands them with the shell lexer. This layer checks what can be checked without
//! variables: the keyword is known, flags are known and well-formed, argument counts are right,
//! ONBUILD wraps an allowed instruction.

mod convert;
mod duration;
mod error;
mod flags;

use std::time::Duration;

use rbuild_types::Span;

use crate::ast::{Dockerfile, Heredoc};
use crate::diagnostics::{Diagnostic, Diagnostics};

pub use convert::from_node;
pub use duration::parse_go_duration;
pub use error::InstructionError;

/// A command in shell form (run through the shell) or exec form (a JSON argv).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// `RUN echo hi`: the text as written (continuations joined).
    Shell(String),
    /// `RUN ["echo", "hi"]`.
    Exec(Vec<String>),
}

/// COPY's arguments.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CopyArgs {
    /// Source paths/patterns (heredoc sources are in `heredocs` instead).
    pub sources: Vec<String>,
    /// The destination (last argument).
    pub dest: String,
    /// `--from=stage|image|context`.
    pub from: Option<String>,
    /// `--chown=user[:group]`.
    pub chown: Option<String>,
    /// `--chmod=mode`.
    pub chmod: Option<String>,
    /// `--link`.
    pub link: bool,
    /// `--parents`.
    pub parents: bool,
    /// `--exclude=pattern` (repeatable).
    pub excludes: Vec<String>,
    /// Inline sources (`COPY <<EOF /dest`): each becomes a file named after the heredoc.
    pub heredocs: Vec<Heredoc>,
}

/// ADD's arguments: COPY's plus the remote/archive options.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AddArgs {
    pub sources: Vec<String>,
    pub dest: String,
    pub chown: Option<String>,
    pub chmod: Option<String>,
    pub link: bool,
    pub excludes: Vec<String>,
    pub heredocs: Vec<Heredoc>,
    /// `--checksum=sha256:…` for remote sources.
    pub checksum: Option<String>,
    /// `--keep-git-dir` for git sources.
    pub keep_git_dir: bool,
    /// `--unpack[=bool]`: `None` = default (unpack local archives only).
    pub unpack: Option<bool>,
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
        platform: Option<String>,
        /// The stage name, lower-cased (`AS Build` → `build`).
        alias: Option<String>,
    },
    Run {
        cmd: Command,
        /// `--mount=…` values as written (repeatable).
        mounts_raw: Vec<String>,
        network: Option<String>,
        security: Option<String>,
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
        match from_node(node) {
            Ok(i) => out.push((i, node.span)),
            Err(e) => errors.push(Diagnostic::error(e.to_string(), node.span)),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(Diagnostics(errors))
    }
}
