//! What rbuild and its re-executed sandbox init say to each other.
//!
//! rbuild has the zygote fork an init with one end of a Unix socket pair as its stdin (see
//! `zygote_protocol`); the zygote says [`Status::Started`] on it, and rbuild writes one
//! [`InitConfig`] (with the `RUN --mount`s as [`RunMount`]s) as a JSON line on it. When the
//! config asks for a user-mode network (`slirp`), the init reports [`Status::NetnsReady`] once
//! its network namespace exists; rbuild attaches slirp4netns to it and then writes
//! [`NETWORK_GO`] as a line (or shuts its side down, which fails the setup). The command's
//! stdin is /dev/null. The init reports on the same socket with one JSON [`Status`] per line:
//! the placeholders it created (so rbuild can remove them from the layer afterwards), then
//! exactly one final line saying how the command ended or why the setup failed.

use std::path::PathBuf;

use oci_spec::runtime::Spec;
use rbuild_ports::SecretFile;
use rbuild_types::ByteString;
use serde::{Deserialize, Serialize};

/// The line rbuild sends once the sandbox's network is up.
pub const NETWORK_GO: &str = "network-ready";

/// Everything the init needs for one run. Paths are absolute host paths.
#[derive(Debug, Serialize, Deserialize)]
pub struct InitConfig {
    /// The runtime spec; `root.path` is the (empty) rootfs mount point, `process.user` is filled
    /// in by the init after resolving [`InitConfig::user`].
    pub spec: Spec,
    /// The private scratch directory holding `rootfs`, the layer links and generated files;
    /// overlay options are given relative to it to stay under the mount option size limit.
    pub scratch: PathBuf,
    /// Overlay lower dirs relative to `scratch`, **top first** (overlayfs order).
    pub lowers: Vec<String>,
    /// Overlay upper dir relative to `scratch` (a symlink to the request's upper dir).
    pub upper: String,
    /// Overlay work dir relative to `scratch`.
    pub work: String,
    /// The real upper directory, to record which placeholders the setup left in it (the
    /// copied root with the copy-and-diff snapshotter).
    pub upper_abs: PathBuf,
    /// Bind-mount this directory as the root instead of mounting the overlay (the
    /// copy-and-diff snapshotter).
    #[serde(default)]
    pub rootfs_bind: Option<PathBuf>,
    /// `--isolation=chroot`: run the command in a chroot of `rootfs_bind`, in rbuild's own
    /// namespaces, with no mounts (`init::chroot_stage`).
    #[serde(default)]
    pub chroot: bool,
    /// `user[:group]` as written in USER; empty = root.
    pub user: String,
    /// Bring up `lo` in the new network namespace.
    pub loopback: bool,
    /// Wait for rbuild to attach a user-mode network (slirp4netns) before running anything.
    pub slirp: bool,
    /// Hand the spec to this OCI runtime (runc, crun) instead of running it in-process; the
    /// scratch dir is then the bundle.
    pub runtime: Option<PathBuf>,
    /// The `RUN --mount`s, parents first (made by `launch::mount_plan`).
    #[serde(default)]
    pub run_mounts: Vec<RunMount>,
    /// The command's argv when an argument is not UTF-8. The spec's `process.args` can only
    /// hold text (it then shows such bytes as U+FFFD, for display only): the built-in init
    /// executes these bytes instead, and an OCI runtime (whose `config.json` is JSON text)
    /// is refused. `None` when every argument is UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub argv: Option<Vec<ByteString>>,
}

impl InitConfig {
    /// The argv to execute, as bytes: [`InitConfig::argv`], else the spec's `process.args`.
    pub fn command(&self) -> Vec<&[u8]> {
        match &self.argv {
            Some(argv) => argv.iter().map(ByteString::as_bytes).collect(),
            None => self
                .spec
                .process()
                .as_ref()
                .and_then(|p| p.args().as_ref())
                .map(|a| a.iter().map(|s| s.as_bytes()).collect())
                .unwrap_or_default(),
        }
    }
}

/// One `RUN --mount` as the init receives it.
#[derive(Debug, Serialize, Deserialize)]
pub struct RunMount {
    /// Absolute path in the sandbox.
    pub target: String,
    pub readonly: bool,
    pub source: RunSource,
}

/// What a [`RunMount`] shows at its target.
#[derive(Debug, Serialize, Deserialize)]
pub enum RunSource {
    /// `path` of the overlay of `layers` (absolute host paths, **top first**).
    Layers { layers: Vec<PathBuf>, path: String },
    /// A host path (a directory, a file or a socket), bound as it is.
    Bind(PathBuf),
    /// A new, empty tmpfs (at most `size` bytes).
    Tmpfs { size: Option<u64> },
    /// A secret, bound read-only (its `Debug` never shows the contents).
    File(SecretFile),
}

/// One line on the status pipe.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    /// The init forked by the zygote runs with this pid (in rbuild's pid namespace); it waits
    /// for its config next. Always the first line.
    Started(u32),
    /// Stage 0 has created the network namespace and waits for [`NETWORK_GO`].
    NetnsReady,
    /// The setup created this entry in the upper dir (a mount point or one of its parents,
    /// possibly copied up). `path` is relative to the upper dir; the rest is its state right
    /// after the setup. rbuild removes it after the run unless the command changed it.
    Placeholder { path: PathBuf, stamp: Stamp },
    /// The command exited with this code.
    Exited(i32),
    /// The command was killed by this signal.
    Signaled(i32),
    /// The setup failed; the message names the step and path.
    SetupFailed(String),
    /// Written by the zygote once it has reaped the init: how the init process ended. After
    /// the final line of a normal run nobody reads it.
    InitEnded(String),
}

/// The identity of an upper-dir entry, to tell whether the command touched it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    pub is_dir: bool,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub mtime: i64,
    pub mtime_nsec: i64,
}

impl Stamp {
    /// The stamp of `meta` (from `symlink_metadata`).
    pub fn of(meta: &std::fs::Metadata) -> Stamp {
        use std::os::unix::fs::MetadataExt;
        Stamp {
            is_dir: meta.is_dir(),
            mode: meta.mode(),
            uid: meta.uid(),
            gid: meta.gid(),
            size: if meta.is_dir() { 0 } else { meta.size() },
            mtime: meta.mtime(),
            mtime_nsec: meta.mtime_nsec(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_a_secret() {
        let m = RunMount {
            target: "/run/secrets/s".into(),
            readonly: true,
            source: RunSource::File(SecretFile {
                data: b"hunter2".to_vec(),
                mode: 0o400,
                uid: 0,
                gid: 0,
            }),
        };
        let shown = format!("{m:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("104, 117"),
            "{shown}"
        );
        assert!(shown.contains("len: 7"), "{shown}");
    }
}
