//! The executor of RUN steps: the built-in sandbox (the default, re-executing this binary as
//! the init), or an OCI runtime with runc's command line (`runc`, `crun`, or a path to one)
//! run through [`rbuild_sandbox::RuncExecutor`]. Either uses the overlay snapshotter where
//! the kernel has overlayfs and copy-and-diff otherwise, unless the config names one.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rbuild_sandbox::{Isolation, Snapshotter};
use rbuild_solver::ports::Executor;
use rbuild_types::Privileges;

use crate::events::{BuildEvent, EventSink};

/// Where runtimes are looked up besides `$PATH`: root's runc is in /usr/sbin, which a
/// non-login shell's PATH may lack.
const EXTRA_DIRS: &[&str] = &["/usr/local/sbin", "/usr/sbin", "/sbin"];

/// What runs RUN steps.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Runtime {
    /// rbuild's own namespaces-and-overlayfs sandbox.
    #[default]
    Builtin,
    /// An external OCI runtime binary.
    Oci(PathBuf),
}

/// Why a runtime or snapshotter name was not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuntimeError {
    #[error("--runtime: {0} is not an executable file")]
    NotExecutable(String),
    #[error("--runtime: no executable named {name:?} in $PATH or {dirs}", dirs = EXTRA_DIRS.join(", "))]
    NotFound { name: String },
    #[error("RBUILD_SNAPSHOTTER={0}: expected overlay or copy")]
    Snapshotter(String),
    #[error("--isolation={0}: expected default or chroot")]
    Isolation(String),
    #[error(
        "--isolation=chroot runs RUN in rbuild's own sandbox; it cannot be combined with --runtime"
    )]
    ChrootWithRuntime,
}

impl Runtime {
    /// Parses a `--runtime` value: absent or `builtin` is the built-in sandbox; a value with a
    /// `/` is a path to a runtime binary; any other word is a runtime looked up in `$PATH`
    /// and the sbin directories.
    pub fn parse(value: Option<&str>) -> Result<Runtime, RuntimeError> {
        let Some(value) = value.filter(|v| !v.is_empty() && *v != "builtin") else {
            return Ok(Runtime::Builtin);
        };
        if value.contains('/') {
            let path = PathBuf::from(value);
            return if is_executable(&path) {
                Ok(Runtime::Oci(path))
            } else {
                Err(RuntimeError::NotExecutable(value.to_string()))
            };
        }
        let path_var = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&path_var)
            .chain(EXTRA_DIRS.iter().map(PathBuf::from))
            .map(|dir| dir.join(value))
            .find(|candidate| is_executable(candidate))
            .map(Runtime::Oci)
            .ok_or_else(|| RuntimeError::NotFound {
                name: value.to_string(),
            })
    }
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The snapshotter a value of `RBUILD_SNAPSHOTTER` names (`overlay` or `copy`); `None` (or
/// empty) means detect it when the build starts.
pub fn parse_snapshotter(value: Option<&str>) -> Result<Option<Snapshotter>, RuntimeError> {
    match value.filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(name) => Snapshotter::parse(name)
            .map(Some)
            .ok_or_else(|| RuntimeError::Snapshotter(name.to_string())),
    }
}

/// The isolation a `--isolation` value names (`default` or absent: namespaces; `chroot`),
/// checked against `runtime` (a chroot is the built-in sandbox's).
pub fn parse_isolation(value: Option<&str>, runtime: &Runtime) -> Result<Isolation, RuntimeError> {
    let isolation = match value.filter(|v| !v.is_empty()) {
        None => Isolation::Namespaces,
        Some(name) => {
            Isolation::parse(name).ok_or_else(|| RuntimeError::Isolation(name.to_string()))?
        }
    };
    if isolation == Isolation::Chroot && *runtime != Runtime::Builtin {
        return Err(RuntimeError::ChrootWithRuntime);
    }
    Ok(isolation)
}

/// The executor for `runtime`. Both kinds re-execute this binary (`/proc/self/exe`) to set up
/// the root; the OCI runtime then runs the command. Rootless degradations (single-id mapping,
/// no overlayfs) go out as notices, once, and so does a missing outbound network when
/// `default_network` (some RUN of the build uses the default network): no usable slirp4netns,
/// or the OCI runtime adapter, means loopback only; and chroot `isolation`'s warning.
pub(crate) fn executor(
    runtime: &Runtime,
    snapshotter: Option<Snapshotter>,
    isolation: Isolation,
    privileges: Privileges,
    limits: &rbuild_sandbox::RunLimits,
    default_network: bool,
    events: &EventSink,
) -> Arc<dyn Executor> {
    let snapshotter = snapshotter.unwrap_or_else(Snapshotter::detect);
    for note in rbuild_sandbox::userns::state()
        .map(|st| st.notes())
        .unwrap_or_default()
    {
        events(BuildEvent::Notice(note));
    }
    let init_exe = PathBuf::from("/proc/self/exe");
    match runtime {
        Runtime::Builtin => {
            let exec = rbuild_sandbox::NamespaceExecutor::new(init_exe, privileges)
                .with_snapshotter(snapshotter)
                .with_isolation(isolation)
                .with_limits(limits.clone());
            if let Some(warning) = isolation.warning() {
                events(BuildEvent::Notice(warning.to_string()));
            }
            if let Some(why) = exec.no_outbound().filter(|_| default_network) {
                events(BuildEvent::Notice(rbuild_sandbox::no_outbound_note(why)));
            }
            Arc::new(exec)
        }
        Runtime::Oci(path) => {
            let mut exec = rbuild_sandbox::RuncExecutor::new(path.clone(), init_exe, privileges);
            exec.snapshotter = snapshotter;
            exec.limits = limits.clone();
            if default_network {
                let why = rbuild_sandbox::NoOutbound::OciRuntime;
                events(BuildEvent::Notice(rbuild_sandbox::no_outbound_note(&why)));
            }
            Arc::new(exec)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_is_the_default() {
        assert_eq!(Runtime::parse(None).expect("default"), Runtime::Builtin);
        assert_eq!(
            Runtime::parse(Some("builtin")).expect("builtin"),
            Runtime::Builtin
        );
    }

    #[test]
    fn paths_must_be_executable_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("not-a-runtime");
        std::fs::write(&file, "").expect("write");
        let arg = file.to_str().expect("utf-8");
        assert!(matches!(
            Runtime::parse(Some(arg)),
            Err(RuntimeError::NotExecutable(_))
        ));
        assert!(matches!(
            Runtime::parse(Some("/nonexistent/runc")),
            Err(RuntimeError::NotExecutable(_))
        ));
        assert_eq!(
            Runtime::parse(Some("/bin/sh")).expect("executable"),
            Runtime::Oci(PathBuf::from("/bin/sh"))
        );
    }

    #[test]
    fn snapshotter_from_the_environment_value() {
        assert_eq!(
            parse_snapshotter(Some("copy")).expect("copy"),
            Some(Snapshotter::Copy)
        );
        assert_eq!(
            parse_snapshotter(Some("overlay")).expect("overlay"),
            Some(Snapshotter::Overlay)
        );
        assert_eq!(parse_snapshotter(None).expect("detect"), None);
        assert_eq!(parse_snapshotter(Some("")).expect("detect"), None);
        assert!(matches!(
            parse_snapshotter(Some("zfs")),
            Err(RuntimeError::Snapshotter(_))
        ));
    }

    #[test]
    fn isolation_values() {
        let builtin = Runtime::Builtin;
        assert_eq!(parse_isolation(None, &builtin), Ok(Isolation::Namespaces));
        assert_eq!(
            parse_isolation(Some("default"), &builtin),
            Ok(Isolation::Namespaces)
        );
        assert_eq!(
            parse_isolation(Some("chroot"), &builtin),
            Ok(Isolation::Chroot)
        );
        assert_eq!(
            parse_isolation(Some("vm"), &builtin),
            Err(RuntimeError::Isolation("vm".into()))
        );
        let runc = Runtime::Oci(PathBuf::from("/usr/sbin/runc"));
        assert_eq!(
            parse_isolation(Some("chroot"), &runc),
            Err(RuntimeError::ChrootWithRuntime)
        );
    }

    #[test]
    fn names_are_looked_up() {
        assert!(matches!(
            Runtime::parse(Some("no-such-runtime-xyz")),
            Err(e @ RuntimeError::NotFound { .. }) if e.to_string().contains("no-such-runtime-xyz")
        ));
        // `sh` is in every PATH.
        assert!(matches!(Runtime::parse(Some("sh")), Ok(Runtime::Oci(p)) if p.ends_with("sh")));
    }
}
