//! Why lowering failed. Each error becomes a [`Diagnostic`](crate::Diagnostic) at the span of the
//! flag or word at fault when known ([`LowerError::At`]), else of the instruction; messages
//! follow BuildKit's where it has one. Malformed flags and arguments are caught earlier, by
//! [`instructions`](mod@crate::instructions) ([`LowerError::Instruction`] wraps those errors).

use rbuild_types::{ImageRef, ImageRefError, PlatformError, Span};

use crate::shell::ShellError;

/// Every way lowering can fail.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum LowerError {
    #[error("no build stage in current context: {keyword} must come after a FROM")]
    NoStage { keyword: String },
    #[error("dockerfile contains no stages to build")]
    NoStages,
    #[error(transparent)]
    Shell(#[from] ShellError),
    #[error("base name ({0}) should not be blank")]
    BlankBaseName(String),
    #[error("invalid image reference {name:?}: {source}")]
    BadImageRef { name: String, source: ImageRefError },
    #[error("failed to parse platform {value}: {source}")]
    BadPlatform {
        value: String,
        source: PlatformError,
    },
    #[error(
        "invalid name for build stage: {0:?}, name can't start with a number or contain symbols"
    )]
    BadStageName(String),
    #[error("duplicate stage name {0:?}")]
    DuplicateStage(String),
    #[error("target stage {0:?} could not be found")]
    UnknownTarget(String),
    #[error("invalid stage index {0}")]
    BadStageIndex(usize),
    #[error("variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround")]
    FromExpansion,
    #[error(
        "cannot copy from stage {from:?}, it needs to be defined before current stage {stage:?}"
    )]
    StageOrder { from: String, stage: String },
    #[error("{what} is not supported yet")]
    Unsupported { what: String },
    #[error("the config of base image {0} was not provided")]
    MissingBase(ImageRef),
    #[error("build context {0} was not resolved")]
    UnresolvedContext(String),
    #[error("cannot normalize nothing: WORKDIR needs a path")]
    EmptyWorkdir,
    #[error("VOLUME specified can not be an empty string")]
    EmptyVolume,
    #[error("invalid port specification {spec:?}: {reason}")]
    BadPort { spec: String, reason: &'static str },
    #[error("unknown instruction: {0}")]
    UnknownInstruction(String),
    #[error("invalid ONBUILD trigger {trigger:?}: {reason}")]
    BadTrigger { trigger: String, reason: String },
    #[error("heredoc <<{name} is not UTF-8 text, so variables cannot be expanded in it: quote its name (<<'{name}') to copy its bytes as they are")]
    NonUtf8Heredoc { name: String },
    #[error("source can't be a URL for COPY")]
    CopyUrl,
    #[error("source can't be a git ref for COPY")]
    CopyGit,
    #[error("checksum can't be specified for multiple sources")]
    ChecksumSources,
    #[error("checksum requires HTTP(S) or Git sources")]
    ChecksumSource,
    #[error("invalid git source {src:?}: {problem}")]
    BadGitSource { src: String, problem: String },
    #[error(transparent)]
    Instruction(#[from] crate::instructions::InstructionError),
    #[error(transparent)]
    RunMount(#[from] super::mount_sources::RunMountError),
    /// Another error, at the span of the flag or word at fault (not the whole instruction).
    #[error("{error}")]
    At { error: Box<LowerError>, span: Span },
}
