//! Cache exchange for one build: `--cache-from` read before the solve (each source that
//! cannot be read is a [`Warning`], and the build goes on without it), `--cache-to` written
//! after the image is committed (a failure fails the build unless `ignore-error=true`).
//! The formats are `rbuild-oci`'s ([`rbuild_oci::cache`]); the solver sees only the
//! `CacheExchange` port.

use std::path::PathBuf;
use std::sync::Arc;

use rbuild_cache::{SnapshotId, Store};
use rbuild_oci::cache::{ExportMode, LocalCache};
use rbuild_solver::keys::KEY_VERSION;
use rbuild_solver::ports::{CacheExchange, CacheExchangeError, CacheExport, SolvedStep};
use rbuild_types::{Digest, Privileges};

use crate::events::{BuildEvent, EventSink, Warning};

/// A `--cache-from` source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CacheFrom {
    /// `type=local,src=DIR`: an OCI layout directory a `--cache-to type=local` wrote.
    Local { src: PathBuf },
}

/// A `--cache-to` destination.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheTo {
    pub kind: CacheToKind,
    /// `ignore-error=true`: a failed export is a warning, not a failed build.
    pub ignore_error: bool,
}

/// Where a `--cache-to` writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CacheToKind {
    /// `type=local,dest=DIR[,mode=min|max]`.
    Local { dest: PathBuf, mode: ExportMode },
}

/// The exchange the solver consults, with every readable `--cache-from` loaded; `None` when
/// no source was given.
pub(crate) fn importer(
    store: &Arc<Store>,
    privileges: Privileges,
    sources: &[CacheFrom],
    events: &EventSink,
) -> Option<Arc<dyn CacheExchange>> {
    if sources.is_empty() {
        return None;
    }
    let mut cache = LocalCache::new(Arc::clone(store), privileges, KEY_VERSION);
    for source in sources {
        match source {
            CacheFrom::Local { src } => {
                if let Err(e) = cache.import_from(src) {
                    events(BuildEvent::Warning(Warning::CacheImport {
                        src: src.clone(),
                        source: e,
                    }));
                }
            }
        }
    }
    Some(Arc::new(cache))
}

/// What a finished build hands to each `--cache-to`.
pub(crate) struct Finished<'a> {
    pub steps: &'a [SolvedStep],
    pub image_layers: &'a [SnapshotId],
    pub image_manifest: Digest,
}

/// Writes the cache of a finished build to every `--cache-to`.
pub(crate) fn export(
    store: &Arc<Store>,
    privileges: Privileges,
    destinations: &[CacheTo],
    finished: &Finished<'_>,
    events: &EventSink,
) -> Result<(), CacheExchangeError> {
    let build = CacheExport {
        steps: finished.steps.to_vec(),
        image_layers: finished.image_layers.to_vec(),
        image_manifest: finished.image_manifest,
    };
    for to in destinations {
        let exchange = match &to.kind {
            CacheToKind::Local { dest, mode } => {
                LocalCache::new(Arc::clone(store), privileges, KEY_VERSION)
                    .with_destination(dest.clone(), *mode)
            }
        };
        match exchange.export(&build) {
            Ok(()) => {}
            Err(e) if to.ignore_error => events(BuildEvent::Warning(Warning::CacheExport(e))),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
