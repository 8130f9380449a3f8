//! The operations a vertex can perform.

use rbuild_types::{ImageRef, Platform};
use serde::{Deserialize, Serialize};

/// What a vertex does. Inputs by op:
/// - `Scratch`, `Image`, `Context`: none.
/// - `Exec`: `inputs[0]` is the root filesystem.
/// - `File`: `inputs[0]` is the filesystem the actions write into; `CopyAction::source` indexes
///   into the vertex's inputs (a `Context` vertex or any filesystem-yielding vertex).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Op {
    /// The empty filesystem.
    Scratch,
    /// A base image from the local store or a registry.
    Image(ImageOp),
    /// A build context, by name (`context` is the main one; others come from `--build-context`).
    Context { name: String },
    /// A command run in the sandbox (RUN).
    Exec(ExecOp),
    /// Filesystem edits done in-process (COPY, ADD, WORKDIR's mkdir, heredoc files).
    File(FileOp),
}

impl Op {
    /// A short name for the kind of op, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Op::Scratch => "scratch",
            Op::Image(_) => "image",
            Op::Context { .. } => "context",
            Op::Exec(_) => "exec",
            Op::File(_) => "file",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageOp {
    pub reference: ImageRef,
    pub platform: Platform,
}

/// A RUN. Invariant: `args` is not empty; `cwd` is absolute.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecOp {
    /// argv, after the shell form has been wrapped (`["/bin/sh", "-c", "…"]`).
    pub args: Vec<String>,
    /// `KEY=value` pairs, in order, already expanded.
    pub env: Vec<String>,
    pub cwd: String,
    /// `user[:group]` by name or id, resolved against the rootfs at run time; empty = root.
    pub user: String,
    pub network: NetworkMode,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum NetworkMode {
    /// rbuild's default: isolated with outbound access where possible.
    #[default]
    Default,
    /// Only a loopback interface.
    None,
    /// The host's network namespace.
    Host,
}

/// A list of filesystem actions applied in order, yielding one new layer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileOp {
    pub actions: Vec<FileAction>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FileAction {
    Copy(CopyAction),
    Mkdir(MkdirAction),
    Mkfile(MkfileAction),
}

/// COPY/ADD of one source with Docker's semantics: a directory's *contents* are copied; a
/// `dest` ending in `/` (or several sources) means "into this directory".
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopyAction {
    /// Index into the vertex's inputs of where to copy from.
    pub source: usize,
    /// Path in the source, possibly with wildcards (`*.txt`); relative to the context root for
    /// a context, absolute for a filesystem.
    pub src: String,
    /// Absolute destination path, already joined with WORKDIR.
    pub dest: String,
    /// `--chown` value (`user[:group]`, names resolved in the destination's /etc/passwd).
    pub chown: Option<String>,
    /// `--chmod` as octal mode bits.
    pub chmod: Option<u32>,
    /// Whether a source matching nothing is fine (only for wildcard sources).
    pub allow_empty_wildcard: bool,
    /// ADD's archive handling: a source that is a regular file holding a tar archive (plain,
    /// gzip, bzip2, xz or zstd — recognised by content, not name) is extracted into `dest` as
    /// a directory instead of being copied. Extracted entries keep the archive's modes and
    /// owners (`chown` still applies; `chmod` does not, as in BuildKit).
    #[serde(default)]
    pub unpack: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MkdirAction {
    /// Absolute path.
    pub path: String,
    pub mode: u32,
    /// Create missing parents too.
    pub parents: bool,
    pub chown: Option<String>,
}

/// A file with fixed contents (heredoc COPY `<<EOF`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MkfileAction {
    /// Absolute path.
    pub path: String,
    pub data: Vec<u8>,
    pub mode: u32,
    pub chown: Option<String>,
}
