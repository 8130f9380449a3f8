//! Choosing the executor of RUN steps from `--runtime`: the built-in sandbox (the default,
//! re-executing this binary as the init), or an OCI runtime with runc's command line (`runc`,
//! `crun`, or a path to one) run through [`rbuild_sandbox::RuncExecutor`]. Either uses the
//! overlay snapshotter where the kernel has overlayfs and copy-and-diff otherwise;
//! `RBUILD_SNAPSHOTTER=overlay|copy` forces one.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rbuild_sandbox::Snapshotter;
use rbuild_solver::ports::Executor;

use crate::report::CliError;

/// Where runtimes are looked up besides `$PATH`: root's runc is in /usr/sbin, which a
/// non-login shell's PATH may lack.
const EXTRA_DIRS: &[&str] = &["/usr/local/sbin", "/usr/sbin", "/sbin"];

/// What `--runtime` asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Runtime {
    /// rbuild's own namespaces-and-overlayfs sandbox.
    Builtin,
    /// An external OCI runtime binary.
    Oci(PathBuf),
}

/// Parses `--runtime`: absent or `builtin` is the built-in sandbox; a value with a `/` is a
/// path to a runtime binary; any other word is a runtime looked up in `$PATH` and the sbin
/// directories.
pub fn parse_runtime(value: Option<&str>) -> Result<Runtime, CliError> {
    let Some(value) = value.filter(|v| !v.is_empty() && *v != "builtin") else {
        return Ok(Runtime::Builtin);
    };
    if value.contains('/') {
        let path = PathBuf::from(value);
        return if is_executable(&path) {
            Ok(Runtime::Oci(path))
        } else {
            Err(CliError::Usage(format!(
                "--runtime: {value} is not an executable file"
            )))
        };
    }
    let path_var = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path_var)
        .chain(EXTRA_DIRS.iter().map(PathBuf::from))
        .map(|dir| dir.join(value))
        .find(|candidate| is_executable(candidate))
        .map(Runtime::Oci)
        .ok_or_else(|| {
            CliError::Usage(format!(
                "--runtime: no executable named {value:?} in $PATH or {}",
                EXTRA_DIRS.join(", ")
            ))
        })
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The executor for `runtime`. Both kinds re-execute this binary (`/proc/self/exe`) to set up
/// the root; the OCI runtime then runs the command. The snapshotter comes from
/// `RBUILD_SNAPSHOTTER` (`overlay` or `copy`), or is detected.
pub fn executor(runtime: &Runtime) -> Result<Arc<dyn Executor>, CliError> {
    let snapshotter = snapshotter(std::env::var("RBUILD_SNAPSHOTTER").ok().as_deref())?;
    // Rootless degradations (single-id mapping, no overlayfs, no slirp4netns), said once.
    for note in rbuild_sandbox::userns::state()
        .map(|st| st.notes())
        .unwrap_or_default()
    {
        eprintln!("rbuild: {note}");
    }
    let init_exe = PathBuf::from("/proc/self/exe");
    Ok(match runtime {
        Runtime::Builtin => {
            Arc::new(rbuild_sandbox::NamespaceExecutor::new(init_exe).with_snapshotter(snapshotter))
        }
        Runtime::Oci(path) => {
            let mut exec = rbuild_sandbox::RuncExecutor::new(path.clone(), init_exe);
            exec.snapshotter = snapshotter;
            Arc::new(exec)
        }
    })
}

/// The snapshotter named by `RBUILD_SNAPSHOTTER`'s value, or the detected one when unset.
fn snapshotter(value: Option<&str>) -> Result<Snapshotter, CliError> {
    match value.filter(|v| !v.is_empty()) {
        None => Ok(Snapshotter::detect()),
        Some(name) => Snapshotter::parse(name).ok_or_else(|| {
            CliError::Usage(format!(
                "RBUILD_SNAPSHOTTER={name}: expected overlay or copy"
            ))
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_is_the_default() {
        assert_eq!(parse_runtime(None).expect("default"), Runtime::Builtin);
        assert_eq!(
            parse_runtime(Some("builtin")).expect("builtin"),
            Runtime::Builtin
        );
    }

    #[test]
    fn paths_must_be_executable_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("not-a-runtime");
        std::fs::write(&file, "").expect("write");
        let arg = file.to_str().expect("utf-8");
        assert!(matches!(parse_runtime(Some(arg)), Err(CliError::Usage(_))));
        assert!(matches!(
            parse_runtime(Some("/nonexistent/runc")),
            Err(CliError::Usage(_))
        ));
        assert_eq!(
            parse_runtime(Some("/bin/sh")).expect("executable"),
            Runtime::Oci(PathBuf::from("/bin/sh"))
        );
    }

    #[test]
    fn snapshotter_from_the_environment_value() {
        assert_eq!(snapshotter(Some("copy")).expect("copy"), Snapshotter::Copy);
        assert_eq!(
            snapshotter(Some("overlay")).expect("overlay"),
            Snapshotter::Overlay
        );
        assert_eq!(snapshotter(None).expect("detect"), Snapshotter::detect());
        assert!(matches!(snapshotter(Some("zfs")), Err(CliError::Usage(_))));
    }

    #[test]
    fn names_are_looked_up() {
        assert!(matches!(
            parse_runtime(Some("no-such-runtime-xyz")),
            Err(CliError::Usage(m)) if m.contains("no-such-runtime-xyz")
        ));
        // `sh` is in every PATH.
        assert!(matches!(parse_runtime(Some("sh")), Ok(Runtime::Oci(p)) if p.ends_with("sh")));
    }
}
