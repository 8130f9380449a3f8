//! Cache exchange for one build: `--cache-from` read before the solve (each source that
//! cannot be read is a [`Warning`], and the build goes on without it), `--cache-to` written
//! after the image is committed (a failure fails the build unless `ignore-error=true`).
//! The formats are `rbuild-oci`'s ([`rbuild_oci::cache`]); the solver sees only the
//! `CacheExchange` port.
//!
//! With `cache-mounts=true` a `--cache-to` also exports the `RUN --mount=type=cache`
//! directories of the build's RUN steps (every reachable RUN's, whether it ran or was cached,
//! when the store has the directory), each held shared while it is tarred; one over the
//! destination's size limit is left out with a [`Warning::CacheMountTooLarge`]. A
//! `--cache-from` with `cache-mounts=true` lets the solver seed a mount it creates from the
//! imported contents.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

use rbuild_cache::{CacheMountLease, SnapshotId, Store};
use rbuild_graph::{Graph, Mount, Op};
use rbuild_oci::cache::inline::embed;
use rbuild_oci::cache::{ExportMode, LocalCache, LocalCacheError, RegistryCacheOptions};
use rbuild_oci::images::StoredImage;
use rbuild_oci::registry::{Client, RegistryConfig, RetryObserver};
use rbuild_solver::keys::KEY_VERSION;
use rbuild_solver::ports::{
    CacheExchange, CacheExchangeError, CacheExport, CacheImage, CacheMountExport, SolvedStep,
};
use rbuild_types::{ImageRef, Privileges};

use crate::events::{BuildEvent, EventSink, Warning};

/// A `--cache-from` source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CacheFrom {
    /// `type=local,src=DIR`: an OCI layout directory a `--cache-to type=local` wrote.
    /// `cache_mounts`: `cache-mounts=true`, the cache mounts it holds are imported too.
    Local { src: PathBuf, cache_mounts: bool },
    /// `type=registry,ref=REF` (or just `REF`): a reference a `--cache-to type=registry`
    /// pushed.
    Registry {
        reference: ImageRef,
        cache_mounts: bool,
    },
}

/// The default of `cache-mounts-max-size`: 1 GiB.
pub const DEFAULT_CACHE_MOUNT_MAX_SIZE: u64 = 1 << 30;

/// A `--cache-to` destination.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheTo {
    pub kind: CacheToKind,
    /// `ignore-error=true`: a failed export is a warning, not a failed build.
    pub ignore_error: bool,
    /// `cache-mounts=true[,cache-mounts-max-size=SIZE]`: the build's cache mounts are
    /// exported too, each only up to this many bytes (`type=local` and `type=registry`).
    pub cache_mounts: Option<u64>,
}

/// Where a `--cache-to` writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CacheToKind {
    /// `type=local,dest=DIR[,mode=min|max]`.
    Local { dest: PathBuf, mode: ExportMode },
    /// `type=registry,ref=REF[,mode=…][,image-manifest=…][,oci-mediatypes=…][,compression=…]`.
    Registry {
        reference: ImageRef,
        mode: ExportMode,
        options: RegistryCacheOptions,
    },
    /// `type=inline`: the `mode=min` record in the image's config (written as the image is
    /// committed, see [`with_inline_record`]; nothing is exported after the build).
    Inline,
}

/// The registries a cache exchange talks to, and who hears of its retries.
pub(crate) struct Registries<'a> {
    pub config: &'a RegistryConfig,
    pub retries: &'a RetryObserver,
}

impl Registries<'_> {
    fn client(&self) -> Client {
        Client::new(self.config.clone()).with_retry_observer(self.retries.clone())
    }
}

/// The exchange the solver consults, with every readable `--cache-from` loaded; `None` when
/// no source was given.
pub(crate) fn importer(
    store: &Arc<Store>,
    privileges: Privileges,
    sources: &[CacheFrom],
    registries: &Registries<'_>,
    events: &EventSink,
) -> Option<Arc<dyn CacheExchange>> {
    if sources.is_empty() {
        return None;
    }
    let mut cache = LocalCache::new(Arc::clone(store), privileges, KEY_VERSION);
    for source in sources {
        let (src, imported) = match source {
            CacheFrom::Local { src, cache_mounts } => (
                src.display().to_string(),
                cache.import_from(src, *cache_mounts),
            ),
            CacheFrom::Registry {
                reference,
                cache_mounts,
            } => (
                reference.to_string(),
                cache.import_from_registry(registries.client(), reference.clone(), *cache_mounts),
            ),
        };
        if let Err(source) = imported {
            events(BuildEvent::Warning(Warning::CacheImport { src, source }));
        }
    }
    Some(Arc::new(cache))
}

/// What a finished build hands to each `--cache-to`.
pub(crate) struct Finished<'a> {
    pub steps: &'a [SolvedStep],
    /// The final images, one per platform.
    pub images: &'a [CacheImage],
    /// The cache ids of the `RUN --mount=type=cache` mounts of the build ([`cache_mount_ids`]).
    pub cache_mount_ids: &'a [String],
}

/// The cache ids the reachable RUN steps of `graph` mount, each once, sorted.
pub(crate) fn cache_mount_ids(graph: &Graph) -> Vec<String> {
    let mut ids = BTreeSet::new();
    for id in graph.reachable() {
        if let Op::Exec(exec) = &graph.vertex(id).op {
            for mount in &exec.mounts {
                if let Mount::Cache(c) = mount {
                    ids.insert(c.id.clone());
                }
            }
        }
    }
    ids.into_iter().collect()
}

/// The cache mounts of `ids` the store has, held for reading, each up to `limit` bytes; a
/// larger one is left out with a warning.
fn held_mounts(
    store: &Store,
    ids: &[String],
    limit: u64,
    events: &EventSink,
) -> Result<Vec<(CacheMountExport, CacheMountLease)>, CacheExchangeError> {
    let mut out = Vec::new();
    for id in ids {
        let failed = |e: Box<dyn std::error::Error + Send + Sync>| CacheExchangeError {
            what: format!("reading cache mount {id:?} for export"),
            source: e,
        };
        let Some(lease) = store
            .cache_mounts()
            .hold(id, &|| false)
            .map_err(|e| failed(Box::new(e)))?
        else {
            continue;
        };
        let size = lease.size().map_err(|e| failed(Box::new(e)))?;
        if size > limit {
            events(BuildEvent::Warning(Warning::CacheMountTooLarge {
                id: id.clone(),
                size,
                limit,
            }));
            continue;
        }
        let mount = CacheMountExport {
            id: id.clone(),
            dir: lease.path().to_path_buf(),
        };
        out.push((mount, lease));
    }
    Ok(out)
}

/// The image `image` with the `mode=min` record of `steps` in its config, when a `--cache-to
/// type=inline` asks for it; else `image` itself.
pub(crate) fn with_inline_record(
    store: &Arc<Store>,
    privileges: Privileges,
    destinations: &[CacheTo],
    steps: &[SolvedStep],
    image: StoredImage,
    image_layers: &[SnapshotId],
) -> Result<StoredImage, LocalCacheError> {
    if !destinations.iter().any(|d| d.kind == CacheToKind::Inline) {
        return Ok(image);
    }
    let build = CacheExport {
        steps: steps.to_vec(),
        images: vec![CacheImage {
            layers: image_layers.to_vec(),
            manifest: image.manifest_digest,
        }],
        cache_mounts: Vec::new(),
    };
    let cache = LocalCache::new(Arc::clone(store), privileges, KEY_VERSION);
    let record = cache.record(&build, ExportMode::Min)?;
    Ok(embed(store, &image.manifest_digest, &record, KEY_VERSION)?)
}

/// Writes the cache of a finished build to every `--cache-to`.
pub(crate) fn export(
    store: &Arc<Store>,
    privileges: Privileges,
    destinations: &[CacheTo],
    finished: &Finished<'_>,
    registries: &Registries<'_>,
    events: &EventSink,
) -> Result<(), CacheExchangeError> {
    let mut build = CacheExport {
        steps: finished.steps.to_vec(),
        images: finished.images.to_vec(),
        cache_mounts: Vec::new(),
    };
    for to in destinations {
        let held = match to.cache_mounts {
            Some(limit) if to.kind != CacheToKind::Inline => {
                match held_mounts(store, finished.cache_mount_ids, limit, events) {
                    Ok(held) => held,
                    Err(e) if to.ignore_error => {
                        events(BuildEvent::Warning(Warning::CacheExport(e)));
                        continue;
                    }
                    Err(e) => return Err(e),
                }
            }
            _ => Vec::new(),
        };
        build.cache_mounts = held.iter().map(|(m, _)| m.clone()).collect();
        let cache = LocalCache::new(Arc::clone(store), privileges, KEY_VERSION)
            .with_client(registries.client());
        let exchange = match &to.kind {
            // Written into the image as it was committed.
            CacheToKind::Inline => continue,
            CacheToKind::Local { dest, mode } => cache.with_destination(dest.clone(), *mode),
            CacheToKind::Registry {
                reference,
                mode,
                options,
            } => cache.with_registry_destination(
                registries.client(),
                reference.clone(),
                *mode,
                *options,
            ),
        };
        match exchange.export(&build) {
            Ok(()) => {}
            Err(e) if to.ignore_error => events(BuildEvent::Warning(Warning::CacheExport(e))),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
