//! Lazy layers: a layer that is part of a result (a base image's, a step's imported through
//! `--cache-from`) is recorded by its blob (`store.lazy_layers()`), and where that blob can be
//! downloaded from (`store.blob_sources()`), instead of being downloaded and unpacked at once.
//!
//! - [`record`] notes one such layer (pulls and cache imports call it);
//! - [`unpack`] brings lazy snapshots into the store when something reads their files: the
//!   solver, before a step runs on them; the builder, before a root-filesystem output;
//! - [`fetch_image_blobs`] downloads the missing blobs of a stored image before an output
//!   copies them (OCI and Docker archives, `rbuild save`);
//! - a push needs neither when the registry has the blob or can mount it
//!   (`registry::push_image` fetches only what it must upload).
//!
//! Invariants: an unpacked snapshot hashes to the recorded diff_id (checked by
//! [`unpack_blob`]); a lazy blob is compressed (an uncompressed one is downloaded when it is
//! recorded, so that no output ever has to download it to compress it).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use rbuild_cache::{BlobSource, CacheError, LayerBlob, LazyLayer, SnapshotId, Store};
use rbuild_types::{Digest, ImageRef, Privileges};

use crate::compress::Compression;
use crate::manifest::{layer_compression, ImageIndex, ImageManifest};
use crate::registry::manifest::{classify, ManifestKind};
use crate::registry::transfer::{CountingWriter, Reporter};
use crate::registry::{Client, Direction, TransferPhase};
use crate::source::{store_err, unpack_blob, PullError};

/// How many layers are downloaded and unpacked at the same time.
pub const MAX_PARALLEL_LAYERS: usize = 4;

/// Records snapshot `id` as the lazy layer `blob` (content `diff_id`), which `source` (if any)
/// holds (recorded as the blob's source unless the blob is stored). An uncompressed blob that is not stored is downloaded now (see the invariants).
pub(crate) fn record(
    store: &Store,
    client: Option<&Client>,
    id: SnapshotId,
    diff_id: Digest,
    blob: LayerBlob,
    source: Option<&ImageRef>,
) -> Result<(), PullError> {
    // Where to download the blob matters only while the store lacks it.
    if let Some(source) = source.filter(|_| !store.blobs().has(&blob.digest)) {
        let here = BlobSource {
            registry: source.registry.clone(),
            repository: source.repository.clone(),
        };
        store
            .blob_sources()
            .add(&blob.digest, here)
            .map_err(store_err(format!(
                "record the source of blob {}",
                blob.digest
            )))?;
    }
    if store.snapshots().path(&id).is_some() {
        return Ok(());
    }
    if layer_compression(&blob.media_type) == Some(Compression::None)
        && !crate::images::ensure_stored(store, &blob.digest)?
    {
        let client = client.ok_or(PullError::NoBlobSource {
            digest: blob.digest,
        })?;
        fetch_blob(store, client, &blob.digest, blob.size)?;
    }
    store
        .lazy_layers()
        .set(&id, &LazyLayer { diff_id, blob })
        .map_err(store_err(format!("record lazy layer {}", id.0)))
}

/// The lazy snapshots among `layers` that are not a base image's (a base layer's snapshot is
/// named by its diff_id): the ones a commit must tar again when it clamps mtimes.
pub fn lazy_built_layers(
    store: &Store,
    layers: &[SnapshotId],
) -> Result<Vec<SnapshotId>, PullError> {
    let mut built = Vec::new();
    for id in layers {
        if store.snapshots().path(id).is_some() {
            continue;
        }
        let lazy = store
            .lazy_layers()
            .get(id)
            .map_err(store_err(format!("read lazy layer {}", id.0)))?;
        if lazy.is_some_and(|l| l.diff_id != id.0) {
            built.push(*id);
        }
    }
    Ok(built)
}

/// Whether blob `digest` is stored or can be downloaded from a recorded source.
pub(crate) fn obtainable(store: &Store, digest: &Digest) -> Result<bool, CacheError> {
    Ok(store.blobs().has(digest) || !store.blob_sources().get(digest)?.is_empty())
}

/// Downloads blob `digest` (of `size` bytes) into the store from the first of its recorded
/// sources that serves it. Reports byte progress through `client`'s transfer observer.
pub fn fetch_blob(
    store: &Store,
    client: &Client,
    digest: &Digest,
    size: u64,
) -> Result<(), PullError> {
    if store.blobs().has(digest) {
        return Ok(());
    }
    let mut reporter = Reporter::new(client.transfer_observer(), *digest, Direction::Pull, size);
    download(store, client, digest, size, &mut reporter)?;
    reporter.phase(TransferPhase::Done, size);
    Ok(())
}

/// [`fetch_blob`] of a blob the store lacks, reporting to `reporter` up to the end of the
/// download.
fn download(
    store: &Store,
    client: &Client,
    digest: &Digest,
    size: u64,
    reporter: &mut Reporter,
) -> Result<(), PullError> {
    let sources = store
        .blob_sources()
        .get(digest)
        .map_err(store_err(format!("read the sources of blob {digest}")))?;
    let mut last = None;
    for source in sources {
        let from = ImageRef {
            registry: source.registry,
            repository: source.repository,
            tag: None,
            digest: None,
        };
        let mut writer = store
            .blobs()
            .writer()
            .map_err(store_err(format!("stage blob {digest}")))?;
        reporter.phase(TransferPhase::Downloading, 0);
        let mut counted = CountingWriter::new(&mut writer, reporter);
        match client.fetch_blob(&from, digest, Some(size), &mut counted) {
            Ok(_) => {
                writer
                    .commit(Some(digest))
                    .map_err(store_err(format!("store blob {digest}")))?;
                return Ok(());
            }
            // The unpublished staging file goes with `writer`; try the next source.
            Err(e) => last = Some(e),
        }
    }
    Err(match last {
        Some(e) => PullError::Registry(e),
        None => PullError::NoBlobSource { digest: *digest },
    })
}

/// Downloads every blob of stored manifest (or index) `manifest` that the store lacks.
/// Returns how many were downloaded.
pub fn fetch_image_blobs(
    store: &Store,
    client: &Client,
    manifest: &Digest,
) -> Result<usize, PullError> {
    let bytes = store
        .blobs()
        .read(manifest)
        .map_err(store_err(format!("read manifest {manifest}")))?;
    let json = |source| crate::OciError::Json {
        what: "manifest",
        context: manifest.to_string(),
        source,
    };
    match classify(None, &bytes).map(|(kind, _)| kind) {
        Some(ManifestKind::Index) => {
            let index: ImageIndex = serde_json::from_slice(&bytes).map_err(json)?;
            let mut fetched = 0;
            for child in &index.manifests {
                if store.blobs().has(&child.digest) {
                    fetched += fetch_image_blobs(store, client, &child.digest)?;
                }
            }
            Ok(fetched)
        }
        Some(ManifestKind::Image) => {
            let image: ImageManifest = serde_json::from_slice(&bytes).map_err(json)?;
            let mut missing = Vec::new();
            for l in &image.layers {
                // A layer built here is made from its snapshot, not downloaded.
                if !crate::images::ensure_stored(store, &l.digest)? {
                    missing.push(l);
                }
            }
            parallel(&missing, |l| fetch_blob(store, client, &l.digest, l.size))?;
            Ok(missing.len())
        }
        None => Err(PullError::LocalMediaType { digest: *manifest }),
    }
}

/// Unpacks the snapshots among `ids` that are not in the store, from their lazy records
/// (downloading blobs through `client` as needed), up to [`MAX_PARALLEL_LAYERS`] at once.
/// `locks` keeps two callers from unpacking the same snapshot at the same time.
pub(crate) fn unpack(
    store: &Store,
    client: &Client,
    ids: &[SnapshotId],
    privileges: &Privileges,
    locks: &SnapshotLocks,
) -> Result<(), PullError> {
    let mut seen = std::collections::HashSet::new();
    let missing: Vec<SnapshotId> = ids
        .iter()
        .copied()
        .filter(|id| seen.insert(*id) && store.snapshots().path(id).is_none())
        .collect();
    let mut jobs = Vec::with_capacity(missing.len());
    for id in missing {
        let lazy = store
            .lazy_layers()
            .get(&id)
            .map_err(store_err(format!("read lazy layer {}", id.0)))?
            .ok_or(PullError::NotUnpacked { snapshot: id.0 })?;
        Reporter::new(
            client.transfer_observer(),
            lazy.blob.digest,
            Direction::Pull,
            lazy.blob.size,
        )
        .phase(TransferPhase::Waiting, 0);
        jobs.push((id, lazy));
    }
    parallel(&jobs, |(id, lazy)| {
        let lock = locks.of(id);
        let _held = lock.lock().unwrap_or_else(|p| p.into_inner());
        if store.snapshots().path(id).is_some() {
            return Ok(());
        }
        let blob = &lazy.blob;
        let mut reporter = Reporter::new(
            client.transfer_observer(),
            blob.digest,
            Direction::Pull,
            blob.size,
        );
        if !crate::images::ensure_stored(store, &blob.digest)? {
            download(store, client, &blob.digest, blob.size, &mut reporter)?;
        }
        reporter.phase(TransferPhase::Extracting, blob.size);
        unpack_blob(store, &blob.digest, &lazy.diff_id, *id, privileges)?;
        if layer_compression(&blob.media_type).is_some_and(|c| c != Compression::None) {
            // An image built on this layer references the blob as it came.
            store
                .layer_blobs()
                .set(&lazy.diff_id, blob)
                .map_err(store_err(format!("record layer blob {}", lazy.diff_id)))?;
        }
        reporter.phase(TransferPhase::Done, blob.size);
        Ok(())
    })
}

/// One lock per snapshot being unpacked by this process.
#[derive(Default)]
pub(crate) struct SnapshotLocks(Mutex<HashMap<SnapshotId, Arc<Mutex<()>>>>);

impl SnapshotLocks {
    fn of(&self, id: &SnapshotId) -> Arc<Mutex<()>> {
        let mut locks = self.0.lock().unwrap_or_else(|p| p.into_inner());
        Arc::clone(locks.entry(*id).or_default())
    }
}

/// Runs `job` over `items` on up to [`MAX_PARALLEL_LAYERS`] threads; the first error stops
/// the workers from taking more and is returned.
pub(crate) fn parallel<T: Sync>(
    items: &[T],
    job: impl Fn(&T) -> Result<(), PullError> + Sync,
) -> Result<(), PullError> {
    let next = AtomicUsize::new(0);
    let failure: Mutex<Option<PullError>> = Mutex::new(None);
    let workers = items.len().min(MAX_PARALLEL_LAYERS);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| loop {
                    if failure.lock().map(|f| f.is_some()).unwrap_or(true) {
                        return;
                    }
                    let Some(item) = items.get(next.fetch_add(1, Ordering::SeqCst)) else {
                        return;
                    };
                    if let Err(e) = job(item) {
                        if let Ok(mut slot) = failure.lock() {
                            slot.get_or_insert(e);
                        }
                        return;
                    }
                })
            })
            .collect();
        for h in handles {
            if h.join().is_err() {
                if let Ok(mut slot) = failure.lock() {
                    slot.get_or_insert(PullError::Worker);
                }
            }
        }
    });
    match failure.into_inner().unwrap_or_else(|p| p.into_inner()) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
