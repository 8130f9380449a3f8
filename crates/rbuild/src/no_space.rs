//! Recognising a full disk in a failure and saying which filesystem ran out of room: the
//! store's (`RBUILD_ROOT`: snapshots, blobs, the index, logs all live there) or an output's.
//!
//! The error chain is read by type, never by text: an `std::io::Error` or a store error
//! carrying `ENOSPC`/`EDQUOT`, or the solver's [`VertexError::StoreFull`] (a RUN whose
//! command failed while the store was full: its own error is only an exit code).

use std::error::Error;
use std::path::{Path, PathBuf};

use rbuild_builder::BuildError;
use rbuild_cache::CacheError;
use rbuild_oci::OciError;
use rbuild_solver::VertexError;

use crate::report::CliError;

/// Which limit was hit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Limit {
    NoSpace,
    Quota,
}

impl Limit {
    fn of(errno: Option<i32>) -> Option<Limit> {
        match errno {
            Some(libc::ENOSPC) => Some(Limit::NoSpace),
            Some(libc::EDQUOT) => Some(Limit::Quota),
            _ => None,
        }
    }

    fn text(self) -> &'static str {
        match self {
            Limit::NoSpace => "no space left on device",
            Limit::Quota => "disk quota exceeded",
        }
    }
}

/// What the chain of `err` says about a full disk.
#[derive(Debug, Default)]
struct Findings {
    limit: Option<Limit>,
    /// The store's filesystem was named as the full one.
    store: bool,
    /// The first path an image-format error named.
    path: Option<PathBuf>,
}

fn read_chain(err: &(dyn Error + 'static)) -> Findings {
    let mut found = Findings::default();
    let mut cause = Some(err);
    while let Some(c) = cause {
        // A store error is looked at where it is held: wrapped transparently, it is skipped
        // by `source()` (which goes on to what the store error wraps).
        let store_error = match c.downcast_ref::<VertexError>() {
            Some(VertexError::StoreFull { .. }) => {
                found.limit.get_or_insert(Limit::NoSpace);
                found.store = true;
                None
            }
            Some(VertexError::Cache(e)) => Some(e),
            _ => c.downcast_ref::<CacheError>(),
        };
        if let Some(limit) = store_error.and_then(|e| Limit::of(e.raw_os_error())) {
            found.limit.get_or_insert(limit);
            found.store = true;
        }
        let oci = c
            .downcast_ref::<OciError>()
            .or_else(|| c.downcast_ref::<Box<OciError>>().map(|b| b.as_ref()));
        if let Some(OciError::Io { path, .. }) = oci {
            found.path.get_or_insert_with(|| path.clone());
        }
        if let Some(e) = c.downcast_ref::<std::io::Error>() {
            if let Some(limit) = Limit::of(e.raw_os_error()) {
                found.limit.get_or_insert(limit);
            }
        }
        cause = c.source();
    }
    found
}

/// The line to add to the report of `err` when a filesystem ran out of room, naming the
/// store at `store_root` when it is the one that is full.
pub fn note(err: &CliError, store_root: &Path) -> Option<String> {
    let found = read_chain(err);
    let limit = found.limit?;
    // A solve writes only into the store; elsewhere, a path inside the store means the store.
    let in_store = found.store
        || matches!(err, CliError::Build(BuildError::Solve { .. }))
        || found
            .path
            .as_deref()
            .is_some_and(|p| p.starts_with(store_root));
    Some(if in_store {
        format!(
            "ERROR: {}: the store {} (RBUILD_ROOT) is full; free space with `rbuild prune`, or point RBUILD_ROOT at a larger filesystem",
            limit.text(),
            store_root.display()
        )
    } else if let Some(path) = found.path {
        format!(
            "ERROR: {}: the filesystem of {} is full",
            limit.text(),
            path.display()
        )
    } else {
        format!("ERROR: {}", limit.text())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::ArchiveStep;
    use rbuild_builder::{Dest, ExportError, ExportStep};

    fn enospc() -> std::io::Error {
        std::io::Error::from_raw_os_error(libc::ENOSPC)
    }

    /// A failed step of the export, as a build reports it.
    fn export(step: ExportStep, source: OciError) -> CliError {
        CliError::Build(BuildError::Export(ExportError::Oci { step, source }))
    }

    #[test]
    fn names_the_store_or_the_destination() {
        let store = Path::new("/var/lib/rbuild");
        let in_store = export(
            ExportStep::Commit,
            OciError::Io {
                op: "write a layer blob into the store",
                path: store.to_path_buf(),
                source: enospc(),
            },
        );
        let text = note(&in_store, store).unwrap();
        assert!(text.contains("no space left on device"), "{text}");
        assert!(text.contains("the store /var/lib/rbuild"), "{text}");

        let cache = export(
            ExportStep::Commit,
            OciError::Store {
                op: "store layer".into(),
                source: Box::new(CacheError::Io {
                    action: "write staging file",
                    path: "/elsewhere/x".into(),
                    source: std::io::Error::from_raw_os_error(libc::EDQUOT),
                }),
            },
        );
        let text = note(&cache, store).unwrap();
        assert!(text.contains("disk quota exceeded: the store"), "{text}");

        let dest = export(
            ExportStep::Oci(Dest::Path("/mnt/small/out.tar".into())),
            OciError::Io {
                op: "write archive",
                path: "/mnt/small/out.tar".into(),
                source: enospc(),
            },
        );
        let text = note(&dest, store).unwrap();
        assert!(
            text.contains("the filesystem of /mnt/small/out.tar"),
            "{text}"
        );
        assert!(!text.contains("store"), "{text}");

        let other = CliError::Archive {
            step: ArchiveStep::Writing("/x".into()),
            source: OciError::Io {
                op: "write",
                path: "/x".into(),
                source: std::io::Error::from_raw_os_error(libc::EIO),
            },
        };
        assert_eq!(note(&other, store), None);
        assert_eq!(note(&CliError::NoSuchImage("no space".into()), store), None);
    }

    #[test]
    fn a_store_error_inside_a_failed_step_names_the_store() {
        // VertexError::Cache is transparent: the chain skips the store error itself.
        let e = VertexError::Cache(CacheError::Io {
            action: "append to snapshot journal",
            path: "/s/tmp/j".into(),
            source: enospc(),
        });
        let found = read_chain(&e);
        assert_eq!(found.limit, Some(Limit::NoSpace));
        assert!(found.store);
    }

    #[test]
    fn a_failed_run_on_a_full_store_names_it() {
        let e = VertexError::StoreFull {
            store: "/s".into(),
            source: Box::new(VertexError::Canceled),
        };
        let found = read_chain(&e);
        assert_eq!(found.limit, Some(Limit::NoSpace));
        assert!(found.store);
    }
}
