//! The sandbox's setup errors. Every variant names the step and the path or object involved,
//! so a failed RUN says exactly what could not be prepared (e.g.
//! `mount overlay on /tmp/.tmpX/rootfs: Invalid argument`).

use std::path::PathBuf;

use nix::errno::Errno;

/// Why preparing or tearing down a sandbox failed (not the command's own failure).
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// A filesystem operation on a host or rootfs path failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A mount(2)/umount(2)/pivot_root(2) call failed.
    #[error("mount {what} on {}: {source}", target.display())]
    Mount {
        what: String,
        target: PathBuf,
        #[source]
        source: Errno,
    },
    /// A system call that is not about one path failed (unshare, fork, setuid, capset…).
    #[error("{op}: {source}")]
    Sys {
        op: &'static str,
        #[source]
        source: Errno,
    },
    /// Starting the re-executed init program failed.
    #[error("start sandbox init {}: {source}", exe.display())]
    Spawn {
        exe: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// `init_main` was called in a process that already runs other threads.
    #[error("sandbox init must run before any thread starts (found {threads} threads)")]
    Threaded { threads: usize },
    /// rbuild closed the sandbox's stdin without confirming that the network is up.
    #[error("the sandbox network was not set up (slirp4netns failed)")]
    NetworkNotReady,
    /// slirp4netns did not bring the sandbox's network up.
    #[error("start slirp4netns {} for the sandbox network: {reason}", exe.display())]
    Slirp { exe: PathBuf, reason: String },
    /// The user named in USER does not exist in the rootfs's /etc/passwd.
    #[error("unable to find user {name}: no matching entries in passwd file")]
    UnknownUser { name: String },
    /// The group named in USER does not exist in the rootfs's /etc/group.
    #[error("unable to find group {name}: no matching entries in group file")]
    UnknownGroup { name: String },
    /// A numeric user or group id is out of range.
    #[error("invalid user or group id {value:?} in USER {spec:?}")]
    BadId { spec: String, value: String },
    /// The command's program could not be found or executed.
    #[error("exec {program:?}: {reason}")]
    Exec { program: String, reason: String },
    /// An OCI runtime was asked to run a command whose argv is not UTF-8 (its `config.json`
    /// is JSON text, which cannot carry such bytes; the built-in sandbox can).
    #[error("the OCI runtime {} cannot run this command: an argument is not UTF-8 text and config.json can only hold text (run without --runtime to pass the bytes on as they are)", runtime.display())]
    NonUtf8ForRuntime { runtime: PathBuf },
    /// A RUN asks for what only a namespace gives, under `--isolation=chroot`.
    #[error("{what} needs a {namespace} namespace, which --isolation=chroot does not make (RUN shares the host's)")]
    ChrootLacks {
        what: &'static str,
        namespace: &'static str,
    },
    /// The kernel refused to make the sandbox's namespaces (an unprivileged container, say).
    #[error("{what}: {source}: this host refuses to create namespaces; --isolation=chroot runs RUN without them (weaker isolation: RUN then shares the host's processes and network)")]
    NamespacesRefused {
        what: &'static str,
        #[source]
        source: Errno,
    },
    /// The spec handed to the init lacks something the init needs.
    #[error("runtime spec: missing {field}")]
    SpecField { field: &'static str },
    /// The spec's seccomp section uses something the built-in filter cannot express.
    #[error("seccomp: unsupported {what}")]
    Seccomp { what: String },
    /// The runtime spec could not be built.
    #[error("build runtime spec: {0}")]
    Spec(#[from] oci_spec::OciSpecError),
    /// A message between rbuild and its sandbox init was malformed.
    #[error("sandbox protocol ({what}): {source}")]
    Protocol {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    /// The sandbox init died without reporting how the command ended.
    #[error("sandbox init exited without a result ({status})")]
    InitDied { status: String },
    /// Preparing or mounting one `RUN --mount` failed (never shows a secret's contents).
    #[error("RUN --mount target {target}: {source}")]
    RunMount {
        target: String,
        #[source]
        source: Box<SetupError>,
    },
    /// The setup inside the sandbox failed; the message comes from the init process.
    #[error("{0}")]
    Remote(String),
    /// An external OCI runtime (runc, crun) failed before running the command.
    #[error("{runtime} {step}: {detail}")]
    Runtime {
        runtime: PathBuf,
        step: &'static str,
        detail: String,
    },
}

impl SetupError {
    /// Shorthand for [`SetupError::Io`].
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        SetupError::Io {
            op,
            path: path.into(),
            source,
        }
    }

    /// Shorthand for [`SetupError::Sys`].
    pub(crate) fn sys(op: &'static str, source: Errno) -> Self {
        SetupError::Sys { op, source }
    }
}

/// `e`, naming the `RUN --mount` target it happened for ([`SetupError::RunMount`]).
pub(crate) fn in_target(target: &str, e: SetupError) -> SetupError {
    SetupError::RunMount {
        target: target.to_string(),
        source: Box::new(e),
    }
}

/// Result alias of this crate.
pub type Result<T, E = SetupError> = std::result::Result<T, E>;
