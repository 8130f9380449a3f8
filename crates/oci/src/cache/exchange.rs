//! [`LocalCache`]: the [`CacheExchange`] port over `type=local` cache directories and
//! `type=registry` references. Imports read each `--cache-from` record once, up front; when the
//! solver imports a step, each layer becomes a lazy layer of the store ([`crate::lazy`]): a
//! registry's blob is downloaded, and any layer unpacked, only when something reads it (a
//! `type=local` cache's blob is copied into the store at once). Exports turn each solved step's
//! snapshots into the blobs the final image was committed with (other layers are tarred into
//! the store as a commit would) and write one record to the `--cache-to` directory, or push it
//! to the `--cache-to` reference with its uncompressed layers compressed as an image push
//! compresses them. With `cache-mounts=true`, the cache mounts go along ([`super::mounts`]).

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rbuild_cache::{BlobSource, LayerBlob, SnapshotId, Store};
use rbuild_ports::{
    CacheExchange, CacheExchangeError, CacheExport, CacheLayer, LayerMediaType, SolvedStep,
};
use rbuild_types::{Digest, ImageRef, Privileges};

use super::layout::{read_record, write_record, LayoutError};
use super::mounts::{export_mount, unpack_mount, CacheMountsError};
use super::record::{media_type_str, CacheMountBlob, CacheRecordFile};
use super::registry::{pull_record, push_record, RegistryCacheError, RegistryCacheOptions};
use crate::compress::Compression;
use crate::images::{blob_file, compressed_layer, layer_blob, load_manifest};
use crate::manifest::{layer_compression, Descriptor};
use crate::registry::{Client, RegistryError};
use crate::source::PullError;
use crate::OciError;

/// Which steps an export records (`mode=`), as BuildKit's.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ExportMode {
    /// Only the steps whose results are the final image's layers (its stage's chain).
    #[default]
    Min,
    /// Every step of every stage.
    Max,
}

/// Why a local cache could not be imported from or exported to.
#[derive(Debug, thiserror::Error)]
pub enum LocalCacheError {
    #[error(transparent)]
    Layout(#[from] LayoutError),
    #[error(transparent)]
    Image(#[from] OciError),
    #[error(transparent)]
    Unpack(#[from] PullError),
    #[error(transparent)]
    Registry(Box<RegistryCacheError>),
    #[error(transparent)]
    Inline(#[from] super::inline::InlineError),
    #[error(transparent)]
    CacheMount(Box<CacheMountsError>),
    #[error("downloading layer {digest} from {source_ref}: {source}")]
    Download {
        digest: Digest,
        source_ref: String,
        #[source]
        source: Box<RegistryError>,
    },
    #[error("store: {op}: {source}")]
    Store {
        op: String,
        #[source]
        source: rbuild_cache::CacheError,
    },
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the final image has {manifest} layers, the build {built}")]
    ImageLayers { manifest: usize, built: usize },
    #[error("layer {digest} has media type {media_type:?}, which a cache cannot hold")]
    MediaType { digest: Digest, media_type: String },
    #[error("layer {0} is in no imported cache")]
    UnknownBlob(Digest),
    #[error("no export destination")]
    NoDestination,
}

impl From<RegistryCacheError> for LocalCacheError {
    fn from(e: RegistryCacheError) -> Self {
        LocalCacheError::Registry(Box::new(e))
    }
}

impl From<CacheMountsError> for LocalCacheError {
    fn from(e: CacheMountsError) -> Self {
        LocalCacheError::CacheMount(Box::new(e))
    }
}

fn store_err(op: impl Into<String>) -> impl FnOnce(rbuild_cache::CacheError) -> LocalCacheError {
    let op = op.into();
    move |source| LocalCacheError::Store { op, source }
}

/// Where an imported layer's blob is.
enum BlobOrigin {
    /// A `type=local` cache directory.
    Dir(Arc<PathBuf>),
    /// A `type=registry` reference's repository.
    Registry(Arc<(Client, ImageRef)>),
}

/// Where an export goes.
enum Destination {
    Dir(PathBuf),
    Registry(Box<RegistryDestination>),
}

/// A `type=registry` export's reference, and the client and options it is pushed with.
struct RegistryDestination {
    client: Client,
    target: ImageRef,
    options: RegistryCacheOptions,
}

/// `type=local` and `type=registry` caches: imports from any number of directories and
/// references, exports to one.
pub struct LocalCache {
    store: Arc<Store>,
    /// What unpacked cache mounts can keep (owners, devices, xattrs).
    privileges: Privileges,
    /// The solver's `KEY_VERSION`: records of other key versions are refused.
    key_version: String,
    /// Each imported key's layers, bottom first.
    imported: HashMap<Digest, Vec<CacheLayer>>,
    /// Where layer blobs of imported steps are (by blob digest), and cache-mount blobs.
    blob_origins: HashMap<Digest, BlobOrigin>,
    /// Imported cache mounts by id (from sources read with `cache-mounts=true`).
    imported_mounts: HashMap<String, CacheMountBlob>,
    dest: Option<(Destination, ExportMode)>,
    /// One import at a time: steps share layers, and a snapshot is committed once.
    importing: Mutex<()>,
    /// Downloads lazy layers' blobs that an export copies (see [`LocalCache::with_client`]).
    client: Option<Client>,
}

impl LocalCache {
    /// A cache with nothing imported and no destination.
    pub fn new(store: Arc<Store>, privileges: Privileges, key_version: &str) -> Self {
        LocalCache {
            store,
            privileges,
            key_version: key_version.to_string(),
            imported: HashMap::new(),
            blob_origins: HashMap::new(),
            imported_mounts: HashMap::new(),
            dest: None,
            importing: Mutex::new(()),
            client: None,
        }
    }

    /// Lazy layers (not in the store, see [`crate::lazy`]) that a `type=local` export copies
    /// are downloaded through `client`.
    pub fn with_client(mut self, client: Client) -> Self {
        self.client = Some(client);
        self
    }

    /// Exports go to the cache directory `dest`, recording the steps `mode` selects.
    pub fn with_destination(mut self, dest: PathBuf, mode: ExportMode) -> Self {
        self.dest = Some((Destination::Dir(dest), mode));
        self
    }

    /// Exports are pushed to `target` through `client`, recording the steps `mode` selects.
    pub fn with_registry_destination(
        mut self,
        client: Client,
        target: ImageRef,
        mode: ExportMode,
        options: RegistryCacheOptions,
    ) -> Self {
        let to = Destination::Registry(Box::new(RegistryDestination {
            client,
            target,
            options,
        }));
        self.dest = Some((to, mode));
        self
    }

    /// Reads the record of the cache directory `dir` (`--cache-from type=local,src=DIR`); keys
    /// an earlier directory had keep its result, and so do cache mounts (taken only with
    /// `cache_mounts`, `cache-mounts=true`). An error leaves this cache as it was.
    pub fn import_from(
        &mut self,
        dir: &Path,
        cache_mounts: bool,
    ) -> Result<usize, LocalCacheError> {
        let record = read_record(dir, &self.key_version)?;
        let dir = Arc::new(dir.to_path_buf());
        Ok(self.add(record, cache_mounts, || BlobOrigin::Dir(Arc::clone(&dir))))
    }

    /// Reads the record that `source` names (`--cache-from type=registry,ref=…`), to be
    /// downloaded through `client`; like [`LocalCache::import_from`] otherwise.
    pub fn import_from_registry(
        &mut self,
        client: Client,
        source: ImageRef,
        cache_mounts: bool,
    ) -> Result<usize, LocalCacheError> {
        let record = pull_record(&client, &source, &self.key_version)?;
        let origin = Arc::new((client, source));
        Ok(self.add(record, cache_mounts, || {
            BlobOrigin::Registry(Arc::clone(&origin))
        }))
    }

    /// Adds the steps of `record` that no earlier record had (and, with `cache_mounts`, its
    /// cache mounts likewise); `origin` says where its blobs are. Returns how many steps the
    /// record has.
    fn add(
        &mut self,
        record: CacheRecordFile,
        cache_mounts: bool,
        origin: impl Fn() -> BlobOrigin,
    ) -> usize {
        let count = record.steps.len();
        for (id, blob) in record.cache_mounts.into_iter().filter(|_| cache_mounts) {
            self.blob_origins.entry(blob.digest).or_insert_with(&origin);
            self.imported_mounts.entry(id).or_insert(blob);
        }
        for (key, layers) in record.steps {
            for l in &layers {
                self.blob_origins.entry(l.digest).or_insert_with(&origin);
            }
            self.imported.entry(key).or_insert(layers);
        }
        count
    }

    /// Copies (or downloads) the blob of `layer` into the content store.
    fn fetch_blob(&self, layer: &CacheLayer) -> Result<(), LocalCacheError> {
        let origin = self
            .blob_origins
            .get(&layer.digest)
            .ok_or(LocalCacheError::UnknownBlob(layer.digest))?;
        let blobs = self.store.blobs();
        let mut writer = blobs
            .writer()
            .map_err(store_err(format!("stage layer {}", layer.digest)))?;
        match origin {
            BlobOrigin::Dir(dir) => {
                let path = blob_file(dir, &layer.digest);
                let mut from = File::open(&path).map_err(|source| LocalCacheError::Read {
                    path: path.clone(),
                    source,
                })?;
                std::io::copy(&mut from, &mut writer)
                    .map_err(|source| LocalCacheError::Read { path, source })?;
            }
            BlobOrigin::Registry(origin) => {
                let (client, source) = origin.as_ref();
                client
                    .fetch_blob(source, &layer.digest, Some(layer.size), &mut writer)
                    .map_err(|e| LocalCacheError::Download {
                        digest: layer.digest,
                        source_ref: source.to_string(),
                        source: Box::new(e),
                    })?;
                let here = BlobSource {
                    registry: source.registry.clone(),
                    repository: source.repository.clone(),
                };
                self.store
                    .blob_sources()
                    .add(&layer.digest, here)
                    .map_err(store_err(format!("record source of {}", layer.digest)))?;
            }
        }
        writer
            .commit(Some(&layer.digest))
            .map_err(store_err(format!("store layer {}", layer.digest)))?;
        Ok(())
    }

    /// Records one layer as a lazy layer of the store (see [`crate::lazy`]): downloaded and
    /// unpacked only when something reads it. A `type=local` cache's blob is copied into the
    /// store now (it is at hand); a registry's stays there, recorded as the blob's source.
    fn import_layer(&self, layer: &CacheLayer) -> Result<(), LocalCacheError> {
        if self.store.snapshots().path(&layer.snapshot).is_some() {
            return Ok(());
        }
        let origin = self
            .blob_origins
            .get(&layer.digest)
            .ok_or(LocalCacheError::UnknownBlob(layer.digest))?;
        let (client, source) = match origin {
            BlobOrigin::Dir(_) => {
                if !self.store.blobs().has(&layer.digest) {
                    self.fetch_blob(layer)?;
                }
                (None, None)
            }
            BlobOrigin::Registry(origin) => (Some(&origin.0), Some(&origin.1)),
        };
        let blob = LayerBlob {
            digest: layer.digest,
            media_type: media_type_str(layer.media_type).to_string(),
            size: layer.size,
        };
        crate::lazy::record(
            &self.store,
            client,
            layer.snapshot,
            layer.diff_id,
            blob,
            source,
        )?;
        Ok(())
    }

    /// The record of a finished build: the steps `mode` selects, each layer described by the
    /// blob the final image has for it, or else its layer blob in the store.
    pub fn record(
        &self,
        build: &CacheExport,
        mode: ExportMode,
    ) -> Result<CacheRecordFile, LocalCacheError> {
        let mut described: HashMap<SnapshotId, CacheLayer> = HashMap::new();
        for built in &build.images {
            let image = load_manifest(&self.store, &built.manifest)?;
            if image.manifest.layers.len() != built.layers.len()
                || image.config.diff_ids.len() != built.layers.len()
            {
                return Err(LocalCacheError::ImageLayers {
                    manifest: image.manifest.layers.len(),
                    built: built.layers.len(),
                });
            }
            for ((snapshot, desc), diff_id) in built
                .layers
                .iter()
                .zip(&image.manifest.layers)
                .zip(&image.config.diff_ids)
            {
                described.insert(*snapshot, cache_layer(*snapshot, desc, *diff_id)?);
            }
        }
        let mut record = CacheRecordFile::default();
        for step in build.steps.iter().filter(|s| selected(s, build, mode)) {
            let mut chain = Vec::new();
            for snapshot in &step.layers {
                if let Some(l) = described.get(snapshot) {
                    chain.push(l.clone());
                    continue;
                }
                let l = layer_blob(&self.store, snapshot, None)?;
                let l = cache_layer(*snapshot, &l.descriptor, l.diff_id)?;
                described.insert(*snapshot, l.clone());
                chain.push(l);
            }
            record.steps.insert(step.key, chain);
        }
        Ok(record)
    }

    /// Downloads the blobs of `record` that are lazy layers' (not in the store), which a
    /// `type=local` export copies.
    fn fetch_lazy_blobs(&self, record: &CacheRecordFile) -> Result<(), LocalCacheError> {
        for layer in record.steps.values().flatten() {
            if crate::images::ensure_stored(&self.store, &layer.digest)? {
                continue;
            }
            let client = self
                .client
                .as_ref()
                .ok_or(LocalCacheError::UnknownBlob(layer.digest))?;
            crate::lazy::fetch_blob(&self.store, client, &layer.digest, layer.size)?;
        }
        Ok(())
    }

    /// `record` with each uncompressed layer replaced by its blob compressed per `options`
    /// (written into the store), as an image push compresses it.
    fn compressed(
        &self,
        mut record: CacheRecordFile,
        options: &RegistryCacheOptions,
    ) -> Result<CacheRecordFile, LocalCacheError> {
        let media_type = match options.compress.compression {
            Compression::None => {
                // Pushed as they are: a layer built here is made from its snapshot first.
                for layer in record.steps.values().flatten() {
                    crate::images::ensure_stored(&self.store, &layer.digest)?;
                }
                return Ok(record);
            }
            Compression::Gzip => LayerMediaType::TarGzip,
            Compression::Zstd => LayerMediaType::TarZstd,
        };
        let mut done: HashMap<Digest, (Digest, u64)> = HashMap::new();
        for layer in record.steps.values_mut().flatten() {
            if layer.media_type != LayerMediaType::Tar {
                continue;
            }
            let (digest, size) = match done.get(&layer.digest) {
                Some(d) => *d,
                None => {
                    let d = compressed_layer(&self.store, &layer.digest, &options.compress)?;
                    done.insert(layer.digest, d);
                    d
                }
            };
            layer.digest = digest;
            layer.size = size;
            layer.media_type = media_type;
        }
        Ok(record)
    }

    /// Writes `build`'s record to `to`.
    fn export_to(
        &self,
        build: &CacheExport,
        to: &Destination,
        mode: ExportMode,
    ) -> Result<(), LocalCacheError> {
        let mut record = self.record(build, mode)?;
        let compress = match to {
            Destination::Dir(_) => None,
            Destination::Registry(to) => Some(&to.options.compress),
        };
        for mount in &build.cache_mounts {
            let blob = export_mount(&self.store, mount, compress)?;
            record.cache_mounts.insert(mount.id.clone(), blob);
        }
        match to {
            Destination::Dir(dest) => {
                self.fetch_lazy_blobs(&record)?;
                write_record(dest, &record, &self.key_version, |d| {
                    self.store.blobs().path(d)
                })
                .map_err(LocalCacheError::from)
            }
            Destination::Registry(to) => {
                let record = self.compressed(record, &to.options)?;
                push_record(
                    &to.client,
                    &self.store,
                    &to.target,
                    &record,
                    &self.key_version,
                    &to.options,
                )?;
                Ok(())
            }
        }
    }
}

/// Whether `mode` exports `step`: with `Min`, only steps whose result is a bottom part of a
/// final image (the final stage's chain, per platform).
fn selected(step: &SolvedStep, build: &CacheExport, mode: ExportMode) -> bool {
    match mode {
        ExportMode::Max => true,
        ExportMode::Min => build
            .images
            .iter()
            .any(|i| i.layers.starts_with(&step.layers)),
    }
}

pub(super) fn cache_layer(
    snapshot: SnapshotId,
    desc: &Descriptor,
    diff_id: Digest,
) -> Result<CacheLayer, LocalCacheError> {
    let media_type = match layer_compression(&desc.media_type) {
        Some(Compression::None) => LayerMediaType::Tar,
        Some(Compression::Gzip) => LayerMediaType::TarGzip,
        Some(Compression::Zstd) => LayerMediaType::TarZstd,
        None => {
            return Err(LocalCacheError::MediaType {
                digest: desc.digest,
                media_type: desc.media_type.clone(),
            })
        }
    };
    Ok(CacheLayer {
        snapshot,
        digest: desc.digest,
        size: desc.size,
        media_type,
        diff_id,
    })
}

fn exchange_error(what: String) -> impl FnOnce(LocalCacheError) -> CacheExchangeError {
    move |e| CacheExchangeError {
        what,
        source: Box::new(e),
    }
}

impl CacheExchange for LocalCache {
    fn lookup(&self, key: &Digest) -> Option<Vec<CacheLayer>> {
        self.imported.get(key).cloned()
    }

    fn import(&self, layers: &[CacheLayer]) -> Result<Vec<SnapshotId>, CacheExchangeError> {
        let _one = self.importing.lock().unwrap_or_else(|p| p.into_inner());
        for layer in layers {
            self.import_layer(layer).map_err(exchange_error(format!(
                "importing layer {} from the cache",
                layer.digest
            )))?;
        }
        Ok(layers.iter().map(|l| l.snapshot).collect())
    }

    fn export(&self, build: &CacheExport) -> Result<(), CacheExchangeError> {
        let Some((dest, mode)) = &self.dest else {
            return Err(exchange_error("exporting the cache".into())(
                LocalCacheError::NoDestination,
            ));
        };
        let what = match dest {
            Destination::Dir(dir) => format!("exporting the cache to {}", dir.display()),
            Destination::Registry(to) => format!("exporting the cache to {}", to.target),
        };
        self.export_to(build, dest, *mode)
            .map_err(exchange_error(what))
    }

    fn seed_cache_mount(&self, id: &str, dir: &Path) -> Result<bool, CacheExchangeError> {
        let Some(blob) = self.imported_mounts.get(id) else {
            return Ok(false);
        };
        let what = format!("seeding cache mount {id:?} from the cache");
        if !self.store.blobs().has(&blob.digest) {
            // `fetch_blob` reads only the blob's digest and size.
            let as_layer = CacheLayer {
                snapshot: SnapshotId(blob.diff_id),
                digest: blob.digest,
                size: blob.size,
                media_type: blob.media_type,
                diff_id: blob.diff_id,
            };
            self.fetch_blob(&as_layer)
                .map_err(exchange_error(what.clone()))?;
        }
        unpack_mount(&self.store, id, blob, dir, &self.privileges)
            .map_err(|e| exchange_error(what)(e.into()))?;
        Ok(true)
    }
}
