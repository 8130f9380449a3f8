//! Cache exchange for one build: `--cache-from` read before the solve (each source that
//! cannot be read is a [`Warning`], and the build goes on without it), `--cache-to` written
//! after the image is committed (a failure fails the build unless `ignore-error=true`).
//! The formats are `rbuild-oci`'s ([`rbuild_oci::cache`]); the solver sees only the
//! `CacheExchange` port.

use std::path::PathBuf;
use std::sync::Arc;

use rbuild_cache::{SnapshotId, Store};
use rbuild_oci::cache::inline::embed;
use rbuild_oci::cache::{ExportMode, LocalCache, LocalCacheError, RegistryCacheOptions};
use rbuild_oci::images::StoredImage;
use rbuild_oci::registry::{Client, RegistryConfig, RetryObserver};
use rbuild_solver::keys::KEY_VERSION;
use rbuild_solver::ports::{CacheExchange, CacheExchangeError, CacheExport, SolvedStep};
use rbuild_types::{Digest, ImageRef};

use crate::events::{BuildEvent, EventSink, Warning};

/// A `--cache-from` source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CacheFrom {
    /// `type=local,src=DIR`: an OCI layout directory a `--cache-to type=local` wrote.
    Local { src: PathBuf },
    /// `type=registry,ref=REF` (or just `REF`): a reference a `--cache-to type=registry`
    /// pushed.
    Registry { reference: ImageRef },
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
    sources: &[CacheFrom],
    registries: &Registries<'_>,
    events: &EventSink,
) -> Option<Arc<dyn CacheExchange>> {
    if sources.is_empty() {
        return None;
    }
    let mut cache = LocalCache::new(Arc::clone(store), KEY_VERSION);
    for source in sources {
        let (src, imported) = match source {
            CacheFrom::Local { src } => (src.display().to_string(), cache.import_from(src)),
            CacheFrom::Registry { reference } => (
                reference.to_string(),
                cache.import_from_registry(registries.client(), reference.clone()),
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
    pub image_layers: &'a [SnapshotId],
    pub image_manifest: Digest,
}

/// The image `image` with the `mode=min` record of `steps` in its config, when a `--cache-to
/// type=inline` asks for it; else `image` itself.
pub(crate) fn with_inline_record(
    store: &Arc<Store>,
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
        image_layers: image_layers.to_vec(),
        image_manifest: image.manifest_digest,
    };
    let cache = LocalCache::new(Arc::clone(store), KEY_VERSION);
    let record = cache.record(&build, ExportMode::Min)?;
    Ok(embed(store, &image.manifest_digest, &record, KEY_VERSION)?)
}

/// Writes the cache of a finished build to every `--cache-to`.
pub(crate) fn export(
    store: &Arc<Store>,
    destinations: &[CacheTo],
    finished: &Finished<'_>,
    registries: &Registries<'_>,
    events: &EventSink,
) -> Result<(), CacheExchangeError> {
    let build = CacheExport {
        steps: finished.steps.to_vec(),
        image_layers: finished.image_layers.to_vec(),
        image_manifest: finished.image_manifest,
    };
    for to in destinations {
        let cache =
            LocalCache::new(Arc::clone(store), KEY_VERSION).with_client(registries.client());
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
