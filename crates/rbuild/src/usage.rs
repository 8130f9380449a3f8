//! Usage errors: a command line that asks for something wrong (exit status 2). Each names the
//! flag or value at fault.

use rbuild_builder::gc::SizeError;
use rbuild_builder::{
    AnnotationError, AttestError, ConfigError, NamedSpecError, OutputError, RuntimeError,
};
use rbuild_context::ContextError;
use rbuild_graph::MetaError;
use rbuild_types::{ImageRefError, PlatformError};

use crate::cache_flags::CacheFlagError;
use crate::format::TemplateError;
use crate::gc_cmds::DurationError;
use crate::secrets::SecretError;
use crate::stdio::TerminalRefusal;

/// What is wrong with the command line.
#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    #[error("invalid --{flag} {item:?}: the name before '=' is empty")]
    EmptyName { flag: &'static str, item: String },
    #[error("invalid --{flag} {item:?}: expected KEY=value")]
    NotKeyValue { flag: &'static str, item: String },
    #[error("invalid tag {tag:?}: {source}")]
    Tag {
        tag: String,
        #[source]
        source: ImageRefError,
    },
    #[error("invalid image name {name:?}: {source}")]
    ImageName {
        name: String,
        #[source]
        source: ImageRefError,
    },
    #[error(transparent)]
    Platform(#[from] PlatformError),
    #[error(transparent)]
    Call(#[from] crate::call::CallError),
    #[error(transparent)]
    Annotation(#[from] AnnotationError),
    #[error(transparent)]
    Attest(#[from] AttestError),
    #[error(transparent)]
    Cache(#[from] CacheFlagError),
    #[error(transparent)]
    Output(#[from] OutputError),
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error(transparent)]
    BuildContext(#[from] NamedSpecError),
    #[error("invalid --{flag} {item:?}: {source}")]
    RunMeta {
        flag: &'static str,
        item: String,
        #[source]
        source: MetaError,
    },
    #[error("invalid --shm-size {0:?}: expected a size such as 64m or 1g")]
    ShmSize(String),
    #[error("invalid --memory {0:?}: expected a size of at least 6m, such as 512m or 2g")]
    Memory(String),
    #[error("invalid {0}")]
    RunLimits(String),
    #[error("invalid SOURCE_DATE_EPOCH {0:?}: expected seconds since the Unix epoch")]
    Epoch(String),
    #[error("unable to prepare context: {0}")]
    Context(#[source] ContextError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Terminal(#[from] TerminalRefusal),
    #[error("reading standard input: {0}")]
    Stdin(#[source] std::io::Error),
    #[error("{path}: {source}")]
    ReadFile {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Size(#[from] SizeError),
    #[error(transparent)]
    Duration(#[from] DurationError),
    #[error("unsupported --filter {0:?}: only until=DURATION is supported")]
    Filter(String),
    #[error(transparent)]
    Format(#[from] TemplateError),
    #[error(transparent)]
    Bake(#[from] rbuild_bake::BakeError),
    #[error("bake target {target:?}: {message}")]
    BakeTarget { target: String, message: String },
    #[error("login needs a user name: -u USER")]
    LoginUser,
    #[error("login needs a password: --password-stdin (or -p PASSWORD)")]
    LoginPassword,
}
