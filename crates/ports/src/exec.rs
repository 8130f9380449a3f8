//! The [`Executor`] port: running one RUN ([`ExecRequest`]) in an isolated root filesystem,
//! with its `--mount`s resolved to host resources ([`ResolvedMount`]) and its output streamed
//! to a [`LogSink`]. Implemented by `rbuild-sandbox` (namespaces, or an OCI runtime).

use std::path::{Path, PathBuf};

use rbuild_graph::ExecOp;

use crate::cancel::CancelToken;

/// Which output stream a log chunk came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum LogStream {
    Stdout,
    Stderr,
}

/// Receives the output of a running command, chunk by chunk, as it is produced.
pub trait LogSink: Send + Sync {
    fn write(&self, stream: LogStream, data: &[u8]);
}

/// One RUN to execute.
pub struct ExecRequest<'a> {
    pub op: &'a ExecOp,
    /// Snapshot directories of the root filesystem's layers, **bottom first**. They are in
    /// overlayfs format (whiteouts are 0:0 character devices, opaque directories carry the
    /// `trusted.overlay.opaque=y` xattr) and must not be modified.
    pub layers: &'a [PathBuf],
    /// An empty directory that receives every change the command makes, in overlayfs upper-dir
    /// format; it becomes the new layer.
    pub upper: &'a Path,
    /// An empty scratch directory on the same filesystem as `upper` (overlayfs workdir).
    pub work: &'a Path,
    /// The RUN's `--mount`s, resolved to host resources, in `op.mounts` order (a secret the
    /// build was not given and does not require is left out). The executor mounts each at
    /// its target, after the root filesystem and before the command starts; none of them, nor
    /// the mount points it had to create, may end up in `upper`.
    pub mounts: &'a [ResolvedMount],
    pub log: &'a dyn LogSink,
    /// Cancelled when another vertex of the build failed: the executor must stop the command
    /// promptly (kill it) and return an error. Executors register with
    /// [`CancelToken::on_cancel`] or poll it.
    pub cancel: &'a CancelToken,
}

/// One `RUN --mount`, resolved by the solver to something on the host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedMount {
    /// Absolute path in the sandbox.
    pub target: String,
    pub readonly: bool,
    pub source: MountSource,
}

/// What a resolved mount shows at its target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MountSource {
    /// `path` (absolute) of the filesystem made of these snapshot layers (**bottom first**,
    /// overlayfs upper-dir format, never modified). A writable one gets a throwaway upper
    /// layer: what the command writes there is discarded after the run.
    Layers { layers: Vec<PathBuf>, path: String },
    /// A host directory, mounted as it is: writes persist (a cache mount).
    Dir(PathBuf),
    /// A new, empty tmpfs.
    Tmpfs { size: Option<u64> },
    /// A file held in memory only (a secret).
    File(SecretFile),
    /// A Unix socket on the host (an SSH agent, or the solver's proxy of one).
    Socket(PathBuf),
}

/// A file with these contents, mode and owner, held in memory only (a secret mount).
/// Invariant: its `Debug` never shows the contents, only their length, so no log, event or
/// error that prints a mount can leak a secret.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SecretFile {
    pub data: Vec<u8>,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

impl std::fmt::Debug for SecretFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretFile")
            .field("len", &self.data.len())
            .field("mode", &format_args!("{:o}", self.mode))
            .field("uid", &self.uid)
            .field("gid", &self.gid)
            .finish()
    }
}

/// Why a RUN did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("exit code: {0}")]
    Exit(i32),
    #[error("killed by signal {0}")]
    Signal(i32),
    /// Killed by the kernel for going over the build's `--memory` limit.
    #[error("killed by signal 9: out of memory (the --memory limit is {limit} bytes)")]
    OutOfMemory { limit: u64 },
    #[error("sandbox setup failed: {0}")]
    Setup(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The RUN's platform is neither the host's nor one a registered emulator runs: it is
    /// refused before anything runs, never run as the wrong architecture.
    #[error("this RUN is for {platform}, which this {host} machine cannot run: {remedy} (see `rbuild debug platforms`)")]
    Platform {
        platform: String,
        host: String,
        remedy: &'static str,
    },
}

/// Runs commands in an isolated root filesystem. Blocking: the solver calls it off the async
/// runtime.
pub trait Executor: Send + Sync {
    fn run(&self, req: ExecRequest<'_>) -> Result<(), ExecError>;
}
