//! [`RegistrySource`]: the [`ImageSource`] port (of `rbuild-ports`), backed by the local store
//! and registries.
//!
//! `resolve` looks, in order, at
//! 1. the local image store: a tag equal to the reference's familiar name (`busybox:latest`)
//!    or full name (`docker.io/library/busybox:latest`), or a digest-pinned reference whose
//!    manifest is already stored;
//! 2. the resolved-reference memo (`store.resolved()`), keyed by reference *and* platform
//!    (`docker.io/library/busybox:latest|linux/amd64`), when its manifest and config are stored;
//! 3. the registry (mirrors first), storing the manifest (and index) and config blobs and
//!    recording the memo.
//!
//! Steps 1 and 2 are skipped with [`RegistrySource::with_pull`]`(true)` (`--pull`).
//!
//! `pull` is lazy: it names every layer of a resolved image as a snapshot (named by its
//! diff_id) and records the layers not unpacked yet as lazy layers ([`crate::lazy`]): their
//! blob as pulled ([`LayerBlob`](rbuild_cache::LayerBlob), diff_id → blob) and the image's
//! repository as where to download it. `unpack` downloads (unless the blob is there), unpacks
//! into a prepared snapshot, checks against the config's diff_id and commits, when something
//! first reads the layer's files; up to [`MAX_PARALLEL_LAYERS`] layers at once; the registry
//! client retries (and resumes) a download that fails transiently, under its one retry policy.
//! Invariant: a snapshot is only committed once its unpacked content hashes to the diff_id the
//! image config names.

use std::fs::File;
use std::io::BufReader;
use std::sync::Arc;

use rbuild_cache::{BlobSource, CacheError, LayerInfo, SnapshotId, Store};
use rbuild_ports::{ImageSource, ResolvedImage, SourceError};
use rbuild_types::{Digest, ImageRef, Platform, Privileges};

use crate::config::{self as image_config, ParsedConfig};
use crate::manifest::ImageIndex;
use crate::manifest::{Descriptor, ImageManifest};
use crate::registry::auth::DockerCredentials;
use crate::registry::manifest::{classify, select_platform, ManifestKind};
use crate::registry::{
    Client, RegistryConfig, RegistryError, Retrier, RetryObserver, TransferObserver, CONFIG_LIMIT,
};
use crate::OciError;

use crate::lazy::SnapshotLocks;
pub use crate::lazy::MAX_PARALLEL_LAYERS;

/// Why resolving or pulling an image failed.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Image(#[from] OciError),
    #[error("store: {op}: {source}")]
    Store {
        op: String,
        #[source]
        source: CacheError,
    },
    #[error("manifest {manifest}: {layers} layers, but its config lists {diff_ids} diff_ids")]
    LayerCount {
        manifest: Digest,
        layers: usize,
        diff_ids: usize,
    },
    #[error(
        "layer {layer}: unpacked content has diff_id {actual}, the image config says {expected}"
    )]
    DiffId {
        layer: Digest,
        expected: Digest,
        actual: Digest,
    },
    #[error("stored manifest {digest}: an index without an entry for {platform}")]
    LocalPlatform { digest: Digest, platform: Platform },
    #[error("stored manifest {digest}: not an image manifest or index")]
    LocalMediaType { digest: Digest },
    #[error("reading layer blob {path}: {source}")]
    OpenBlob {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("a layer download worker stopped unexpectedly")]
    Worker,
    #[error("snapshot {snapshot} is neither unpacked nor known by its layer blob")]
    NotUnpacked { snapshot: Digest },
    #[error("blob {digest} is not in the store, and no registry is known to hold it")]
    NoBlobSource { digest: Digest },
}

pub(crate) fn store_err(op: impl Into<String>) -> impl FnOnce(CacheError) -> PullError {
    let op = op.into();
    move |source| PullError::Store { op, source }
}

/// Base images from the local store and registries.
pub struct RegistrySource {
    store: Arc<Store>,
    client: Client,
    pull: bool,
    /// rbuild's privileges: what unpacked layers can keep (owners, devices, xattrs).
    privileges: Privileges,
    /// Lazy snapshots being unpacked, one at a time each.
    unpacking: SnapshotLocks,
}

impl std::fmt::Debug for RegistrySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistrySource")
            .field("store", &self.store.root())
            .field("client", &self.client)
            .field("pull", &self.pull)
            .field("privileges", &self.privileges)
            .finish()
    }
}

impl RegistrySource {
    /// A source that pulls through `config`'s endpoints into `store`, unpacking layers with
    /// `privileges` (rbuild's, detected at startup).
    pub fn new(store: Arc<Store>, config: RegistryConfig, privileges: Privileges) -> Self {
        RegistrySource {
            store,
            client: Client::new(config),
            pull: false,
            privileges,
            unpacking: SnapshotLocks::default(),
        }
    }

    /// `always`: ask the registry even when the local store or memo knows the reference
    /// (`--pull`).
    pub fn with_pull(mut self, always: bool) -> Self {
        self.pull = always;
        self
    }

    /// Uses these credentials instead of Docker's `config.json`.
    pub fn with_credentials(mut self, credentials: DockerCredentials) -> Self {
        self.client = self.client.with_credentials(credentials);
        self
    }

    /// Tells `observer` of every retried registry request.
    pub fn with_retry_observer(mut self, observer: RetryObserver) -> Self {
        self.client = self.client.with_retry_observer(observer);
        self
    }

    /// Tells `observer` of each layer's progress (waiting, downloading, extracting, done).
    pub fn with_transfer_observer(mut self, observer: TransferObserver) -> Self {
        self.client = self.client.with_transfer_observer(observer);
        self
    }

    /// Retries registry requests under `retrier` (its policy, clock and observer).
    pub fn with_retrier(mut self, retrier: Retrier) -> Self {
        self.client = self.client.with_retrier(retrier);
        self
    }

    /// [`ImageSource::resolve`] with this module's error type.
    pub fn resolve_image(
        &self,
        reference: &ImageRef,
        platform: &Platform,
    ) -> Result<ResolvedImage, PullError> {
        if !self.pull {
            if let Some(found) = self.resolve_local(reference, platform)? {
                return Ok(found);
            }
        }
        self.resolve_remote(reference, platform)
    }

    fn memo_key(reference: &ImageRef, platform: &Platform) -> String {
        format!("{reference}|{platform}")
    }

    fn resolve_local(
        &self,
        reference: &ImageRef,
        platform: &Platform,
    ) -> Result<Option<ResolvedImage>, PullError> {
        for name in [reference.familiar(), reference.to_string()] {
            let tagged = self
                .store
                .tags()
                .get(&name)
                .map_err(store_err(format!("look up tag {name}")))?;
            if let Some(digest) = tagged {
                return self.stored_image(reference, platform, &digest).map(Some);
            }
        }
        let pinned = reference.digest.filter(|d| self.store.blobs().has(d));
        let memo = match pinned {
            Some(d) => Some(d),
            None => {
                let key = Self::memo_key(reference, platform);
                self.store
                    .resolved()
                    .get(&key)
                    .map_err(store_err(format!("look up resolved reference {key}")))?
            }
        };
        match memo {
            Some(d) if self.store.blobs().has(&d) => {
                self.stored_image(reference, platform, &d).map(Some)
            }
            _ => Ok(None),
        }
    }

    /// An image whose manifest (or index) `digest` is in the store.
    fn stored_image(
        &self,
        reference: &ImageRef,
        platform: &Platform,
        digest: &Digest,
    ) -> Result<ResolvedImage, PullError> {
        let bytes = self
            .store
            .blobs()
            .read(digest)
            .map_err(store_err(format!("read manifest {digest}")))?;
        let manifest_digest = match classify(None, &bytes).map(|(k, _)| k) {
            Some(ManifestKind::Image) => *digest,
            Some(ManifestKind::Index) => {
                let index: ImageIndex =
                    serde_json::from_slice(&bytes).map_err(|source| OciError::Json {
                        what: "image index",
                        context: digest.to_string(),
                        source,
                    })?;
                select_platform(&index, platform)
                    .map(|d| d.digest)
                    .ok_or_else(|| PullError::LocalPlatform {
                        digest: *digest,
                        platform: platform.clone(),
                    })?
            }
            None => return Err(PullError::LocalMediaType { digest: *digest }),
        };
        let (_, config) = self.stored_manifest_and_config(reference, &manifest_digest)?;
        Ok(ResolvedImage {
            reference: reference.clone(),
            platform: platform.clone(),
            manifest_digest,
            config: config.image,
        })
    }

    /// Reads a manifest and its config from the store, fetching whichever is missing from the
    /// registry of `reference` (and storing it).
    fn stored_manifest_and_config(
        &self,
        reference: &ImageRef,
        manifest_digest: &Digest,
    ) -> Result<(ImageManifest, ParsedConfig), PullError> {
        let manifest_bytes = if self.store.blobs().has(manifest_digest) {
            self.store
                .blobs()
                .read(manifest_digest)
                .map_err(store_err(format!("read manifest {manifest_digest}")))?
        } else {
            let raw = self
                .client
                .fetch_manifest(reference, &manifest_digest.to_string())?;
            self.put(&raw.bytes, "manifest")?;
            raw.bytes
        };
        let manifest = ImageManifest::parse(&manifest_bytes, &manifest_digest.to_string())?;
        let config = self.config_blob(reference, &manifest.config)?;
        Ok((manifest, config))
    }

    fn config_blob(
        &self,
        reference: &ImageRef,
        desc: &Descriptor,
    ) -> Result<ParsedConfig, PullError> {
        let digest = desc.digest;
        let bytes = if self.store.blobs().has(&digest) {
            self.store
                .blobs()
                .read(&digest)
                .map_err(store_err(format!("read config {digest}")))?
        } else {
            let bytes = self
                .client
                .fetch_blob_bytes(reference, &digest, CONFIG_LIMIT)?;
            self.put(&bytes, "config")?;
            self.record_source(reference, &digest)?;
            bytes
        };
        Ok(image_config::parse(&bytes, &digest.to_string())?)
    }

    /// Records that blob `digest` came from `reference`'s repository, so that a push to
    /// another repository of that registry can mount it.
    fn record_source(&self, reference: &ImageRef, digest: &Digest) -> Result<(), PullError> {
        let source = BlobSource {
            registry: reference.registry.clone(),
            repository: reference.repository.clone(),
        };
        self.store
            .blob_sources()
            .add(digest, source)
            .map_err(store_err(format!("record the source of blob {digest}")))
    }

    fn put(&self, bytes: &[u8], what: &str) -> Result<Digest, PullError> {
        self.store
            .blobs()
            .put(bytes)
            .map_err(store_err(format!("store {what} {}", Digest::of(bytes))))
    }

    fn resolve_remote(
        &self,
        reference: &ImageRef,
        platform: &Platform,
    ) -> Result<ResolvedImage, PullError> {
        let pulled = self.client.resolve(reference, platform)?;
        if let Some(index) = &pulled.index {
            self.put(&index.bytes, "index")?;
        }
        self.put(&pulled.manifest.bytes, "manifest")?;
        let manifest_digest = pulled.manifest.digest;
        let manifest = ImageManifest::parse(&pulled.manifest.bytes, &manifest_digest.to_string())?;
        let config = self.config_blob(reference, &manifest.config)?;
        let key = Self::memo_key(reference, platform);
        self.store
            .resolved()
            .set(&key, &manifest_digest)
            .map_err(store_err(format!("record resolved reference {key}")))?;
        // What the registry knows the image by: the index the reference named, if any.
        let in_registry = pulled.index.as_ref().map_or(manifest_digest, |i| i.digest);
        crate::images::record_repo_digest(&self.store, &manifest_digest, reference, &in_registry)?;
        Ok(ResolvedImage {
            reference: reference.clone(),
            platform: platform.clone(),
            manifest_digest,
            config: config.image,
        })
    }

    /// [`ImageSource::pull`] with this module's error type: records each layer that is not
    /// unpacked as a lazy layer (its blob, and this image's repository as where to get it),
    /// downloading nothing but an uncompressed blob (see [`crate::lazy`]).
    pub fn pull_image(&self, image: &ResolvedImage) -> Result<Vec<SnapshotId>, PullError> {
        let (manifest, config) =
            self.stored_manifest_and_config(&image.reference, &image.manifest_digest)?;
        if manifest.layers.len() != config.diff_ids.len() {
            return Err(PullError::LayerCount {
                manifest: image.manifest_digest,
                layers: manifest.layers.len(),
                diff_ids: config.diff_ids.len(),
            });
        }
        for (layer, diff_id) in manifest.layers.iter().zip(&config.diff_ids) {
            self.record_layer_blob(layer, diff_id)?;
            crate::lazy::record(
                &self.store,
                Some(&self.client),
                SnapshotId(*diff_id),
                *diff_id,
                layer.layer_blob(),
                Some(&image.reference),
            )?;
        }
        Ok(config.diff_ids.into_iter().map(SnapshotId).collect())
    }

    /// [`ImageSource::unpack`] with this module's error type.
    pub fn unpack_layers(&self, layers: &[SnapshotId]) -> Result<(), PullError> {
        crate::lazy::unpack(
            &self.store,
            &self.client,
            layers,
            &self.privileges,
            &self.unpacking,
        )
    }

    /// Downloads the blobs of stored image (or index) `manifest` that the store lacks (lazy
    /// layers), before an output copies them. Returns how many were downloaded.
    pub fn fetch_image_blobs(&self, manifest: &Digest) -> Result<usize, PullError> {
        crate::lazy::fetch_image_blobs(&self.store, &self.client, manifest)
    }

    /// Records which blob the layer `diff_id` is (unless a record naming a stored blob exists),
    /// so images built on it reference the blob as pulled instead of re-tarring the snapshot.
    fn record_layer_blob(&self, layer: &Descriptor, diff_id: &Digest) -> Result<(), PullError> {
        let known = self
            .store
            .layer_blobs()
            .get(diff_id)
            .map_err(store_err(format!("read layer blob record {diff_id}")))?;
        if known.is_some_and(|b| self.store.blobs().has(&b.digest)) {
            return Ok(());
        }
        self.store
            .layer_blobs()
            .set(diff_id, &layer.layer_blob())
            .map_err(store_err(format!("record layer blob {diff_id}")))
    }
}

/// Unpacks the stored blob `digest` into a new snapshot `id`, checks that its content is
/// `diff_id`, commits it and records its [`LayerInfo`]. Shared by pulls and cache imports.
pub(crate) fn unpack_blob(
    store: &Store,
    digest: &Digest,
    diff_id: &Digest,
    id: SnapshotId,
    privileges: &Privileges,
) -> Result<(), PullError> {
    let digest = *digest;
    let path = store.blobs().path(&digest);
    let file = File::open(&path).map_err(|source| PullError::OpenBlob {
        path: path.clone(),
        source,
    })?;
    let prepared = store
        .snapshots()
        .prepare()
        .map_err(store_err(format!("prepare snapshot for layer {digest}")))?;
    let unpacked = crate::layer::unpack(BufReader::new(file), &prepared.upper, privileges)?;
    if unpacked.diff_id != *diff_id {
        return Err(PullError::DiffId {
            layer: digest,
            expected: *diff_id,
            actual: unpacked.diff_id,
        });
    }
    store
        .snapshots()
        .commit(prepared, &id)
        .map_err(store_err(format!("commit snapshot {}", id.0)))?;
    store
        .layer_info()
        .set(
            &id,
            &LayerInfo {
                diff_id: *diff_id,
                size: unpacked.size,
            },
        )
        .map_err(store_err(format!("record layer info {diff_id}")))?;
    Ok(())
}

fn source_error(reference: &ImageRef, e: PullError) -> SourceError {
    SourceError {
        reference: reference.familiar(),
        source: Box::new(e),
    }
}

impl ImageSource for RegistrySource {
    fn resolve(
        &self,
        reference: &ImageRef,
        platform: &Platform,
    ) -> Result<ResolvedImage, SourceError> {
        self.resolve_image(reference, platform)
            .map_err(|e| source_error(reference, e))
    }

    fn pull(&self, image: &ResolvedImage) -> Result<Vec<SnapshotId>, SourceError> {
        self.pull_image(image)
            .map_err(|e| source_error(&image.reference, e))
    }

    fn unpack(&self, layers: &[SnapshotId]) -> Result<(), SourceError> {
        self.unpack_layers(layers).map_err(|e| SourceError {
            reference: "layers".to_string(),
            source: Box::new(e),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::testutil::{FakeServer, Reply};
    use rbuild_test_support::{privileges, require_root, Registry};
    use std::sync::atomic::Ordering;

    fn temp_store() -> (tempfile::TempDir, Arc<Store>) {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(&dir.path().join("store")).unwrap());
        (dir, store)
    }

    /// A source over `store` with `config` and no credentials.
    fn source_with(store: &Arc<Store>, config: RegistryConfig) -> RegistrySource {
        RegistrySource::new(store.clone(), config, privileges())
            .with_credentials(DockerCredentials::default())
    }

    /// A configuration under which every request to the registry at `addr` fails (HTTPS to a
    /// plain HTTP server), so a success proves nothing was asked of it.
    fn unreachable_config(addr: &str) -> RegistryConfig {
        RegistryConfig::from_toml_str(&format!(
            "[registry.\"{addr}\"]\nhttp = false\n[registry.\"docker.io\"]\nmirrors = [\"https://{addr}\"]\n"
        ))
        .unwrap()
    }

    fn amd64() -> Platform {
        "linux/amd64".parse().unwrap()
    }

    #[test]
    fn resolves_and_pulls_busybox_then_reuses_store_and_memo() {
        if !require_root("to unpack layers with owners") {
            return;
        }
        let Some(registry) = Registry::with_busybox() else {
            return;
        };
        let (_dir, store) = temp_store();
        let cfg = RegistryConfig::from_toml_str(&format!(
            "[registry.\"docker.io\"]\nmirrors = [\"{}\"]\n",
            registry.addr
        ))
        .unwrap();
        let source = source_with(&store, cfg);
        let reference = ImageRef::parse("busybox").unwrap();
        let resolved = source.resolve(&reference, &amd64()).unwrap();
        assert!(store.blobs().has(&resolved.manifest_digest));
        assert_eq!(
            store
                .resolved()
                .get("docker.io/library/busybox:latest|linux/amd64")
                .unwrap(),
            Some(resolved.manifest_digest)
        );
        assert_eq!(resolved.config.platform.architecture, "amd64");
        assert!(resolved.config.env_var("PATH").is_some());

        let ids = source.pull(&resolved).unwrap();
        assert!(!ids.is_empty());
        // Lazy: known by their blobs, nothing downloaded or unpacked until asked.
        for id in &ids {
            assert!(store.snapshots().path(id).is_none());
            let lazy = store.lazy_layers().get(id).unwrap().expect("lazy layer");
            assert_eq!(lazy.diff_id, id.0);
            assert!(!store.blobs().has(&lazy.blob.digest));
        }
        source.unpack(&ids).unwrap();
        for id in &ids {
            let path = store.snapshots().path(id).expect("snapshot committed");
            let info = store
                .layer_info()
                .get(id)
                .unwrap()
                .expect("layer info recorded");
            assert_eq!(info.diff_id, id.0);
            let blob = store
                .layer_blobs()
                .get(&id.0)
                .unwrap()
                .expect("layer blob recorded");
            assert!(store.blobs().has(&blob.digest));
            assert!(path.is_dir());
        }
        let top = store.snapshots().path(&ids[0]).unwrap();
        assert!(top.join("bin").exists(), "busybox layer has /bin");
        // Pulling again finds every snapshot in place.
        assert_eq!(source.pull(&resolved).unwrap(), ids);

        // A source that cannot reach any registry resolves from the memo ...
        let offline = source_with(&store, unreachable_config(&registry.addr));
        let again = offline.resolve(&reference, &amd64()).unwrap();
        assert_eq!(again.manifest_digest, resolved.manifest_digest);
        assert_eq!(offline.pull(&again).unwrap(), ids);
        // ... but not with --pull.
        let forced = source_with(&store, unreachable_config(&registry.addr)).with_pull(true);
        let err = forced.resolve(&reference, &amd64()).unwrap_err();
        assert!(err.to_string().starts_with("busybox:latest: "), "{err}");

        // A local tag wins over the registry, by familiar or full name.
        store
            .tags()
            .set("mine:1", &resolved.manifest_digest)
            .unwrap();
        let local = offline
            .resolve(&ImageRef::parse("mine:1").unwrap(), &amd64())
            .unwrap();
        assert_eq!(local.manifest_digest, resolved.manifest_digest);
        store
            .tags()
            .set("example.com/team/app:2", &resolved.manifest_digest)
            .unwrap();
        let local = offline
            .resolve(
                &ImageRef::parse("example.com/team/app:2").unwrap(),
                &amd64(),
            )
            .unwrap();
        assert_eq!(local.manifest_digest, resolved.manifest_digest);
    }

    #[test]
    fn resolves_a_registry_image_directly_and_reports_missing_images() {
        let Some(registry) = Registry::with_busybox() else {
            return;
        };
        let addr = &registry.addr;
        let (_dir, store) = temp_store();
        let source = source_with(&store, RegistryConfig::default());
        let image = ImageRef::parse(&format!("{addr}/busybox:latest")).unwrap();
        let resolved = source.resolve(&image, &amd64()).unwrap();
        assert!(store.blobs().has(&resolved.manifest_digest));
        let err = source
            .resolve(
                &ImageRef::parse(&format!("{addr}/library/nope")).unwrap(),
                &amd64(),
            )
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{addr}/library/nope:latest: {addr}/library/nope: manifest latest: 404 Not Found: \
                 manifest unknown (MANIFEST_UNKNOWN)"
            )
        );
    }

    /// A one-file layer tar and its digest.
    fn tiny_layer() -> (Vec<u8>, Digest) {
        use rbuild_archive::testutil::{HeaderFormat, TarBuilder, TestEntry};
        let bytes = TarBuilder::new()
            .with(TestEntry::file("hello.txt", "hello").format(HeaderFormat::Gnu))
            .finish();
        let digest = Digest::of(&bytes);
        (bytes, digest)
    }

    /// Serves one image made of the tiny layer `repeat` times, whose config names `diff_id`
    /// for it.
    fn serve_image(diff_id: Digest, repeat: usize) -> (FakeServer, ImageRef) {
        serve_flaky_image(diff_id, repeat, 0)
    }

    /// Like `serve_image`, answering the first `failures` layer downloads with 503.
    fn serve_flaky_image(
        diff_id: Digest,
        repeat: usize,
        failures: usize,
    ) -> (FakeServer, ImageRef) {
        let failed = std::sync::atomic::AtomicUsize::new(0);
        let (layer, layer_digest) = tiny_layer();
        let diff_ids = vec![format!("\"{diff_id}\""); repeat].join(",");
        let config = format!(
            r#"{{"architecture":"amd64","os":"linux","config":{{"Env":["A=1"]}},"rootfs":{{"type":"layers","diff_ids":[{diff_ids}]}}}}"#
        )
        .into_bytes();
        let config_digest = Digest::of(&config);
        let layer_desc = format!(
            r#"{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{layer_digest}","size":{}}}"#,
            layer.len()
        );
        let layers = vec![layer_desc; repeat].join(",");
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config_digest}","size":{}}},"layers":[{layers}]}}"#,
            config.len()
        )
        .into_bytes();
        let server = FakeServer::start(20, move |req, _| {
            if req.target == "/v2/app/manifests/v1" {
                Reply::new(200, manifest.clone())
                    .header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
            } else if req.target == format!("/v2/app/blobs/{config_digest}") {
                Reply::new(200, config.clone())
            } else if req.target == format!("/v2/app/blobs/{layer_digest}") {
                if failed.fetch_add(1, Ordering::SeqCst) < failures {
                    Reply::new(503, "")
                } else {
                    Reply::new(200, layer.clone())
                }
            } else {
                Reply::new(404, "{}")
            }
        });
        let reference = ImageRef::parse(&format!("{}/app:v1", server.host())).unwrap();
        (server, reference)
    }

    #[test]
    fn pulls_a_layer_and_checks_its_diff_id() {
        let (layer, _) = tiny_layer();
        let good = Digest::of(&layer);
        let (server, reference) = serve_image(good, 3);
        let (_dir, store) = temp_store();
        let source = source_with(&store, RegistryConfig::default());
        let resolved = source.resolve(&reference, &amd64()).unwrap();
        assert_eq!(resolved.config.env, vec!["A=1"]);
        let ids = source.pull(&resolved).unwrap();
        assert_eq!(ids, vec![SnapshotId(good); 3]);
        source.unpack(&ids).unwrap();
        // A repeated layer is downloaded once.
        let layer_gets = server
            .requests()
            .iter()
            .filter(|r| r.target.ends_with(&good.to_string()))
            .count();
        assert_eq!(layer_gets, 1);
        let snap = store.snapshots().path(&ids[0]).unwrap();
        assert_eq!(std::fs::read(snap.join("hello.txt")).unwrap(), b"hello");
        // The blob the layer came as is recorded for images built on it.
        let blob = store
            .layer_blobs()
            .get(&good)
            .unwrap()
            .expect("layer blob recorded");
        assert_eq!((blob.digest, blob.size), (good, layer.len() as u64));
    }

    #[test]
    fn layer_with_wrong_diff_id_is_not_committed() {
        let wrong = Digest::of(b"not the layer");
        let (_server, reference) = serve_image(wrong, 1);
        let (_dir, store) = temp_store();
        let source = source_with(&store, RegistryConfig::default());
        let resolved = source.resolve(&reference, &amd64()).unwrap();
        let ids = source.pull(&resolved).unwrap();
        let err = source.unpack(&ids).unwrap_err();
        assert!(err.to_string().contains("diff_id"), "{err}");
        assert!(store.snapshots().path(&SnapshotId(wrong)).is_none());
    }

    #[test]
    fn transient_download_failures_are_retried() {
        let (layer, _) = tiny_layer();
        let good = Digest::of(&layer);
        let policy = crate::registry::RetryPolicy {
            base: std::time::Duration::from_millis(1),
            ..Default::default()
        };
        let attempts = policy.attempts as usize;
        let fast = || {
            Retrier::new(
                policy.clone(),
                Arc::new(crate::registry::retry::SystemClock),
            )
        };
        let (_server, reference) = serve_flaky_image(good, 1, 2);
        let (_dir, store) = temp_store();
        let source = source_with(&store, RegistryConfig::default()).with_retrier(fast());
        let resolved = source.resolve(&reference, &amd64()).unwrap();
        assert_eq!(source.pull(&resolved).unwrap(), vec![SnapshotId(good)]);

        let (_server, reference) = serve_flaky_image(good, 1, attempts);
        let (_dir2, store2) = temp_store();
        let source = source_with(&store2, RegistryConfig::default()).with_retrier(fast());
        let resolved = source.resolve(&reference, &amd64()).unwrap();
        let err = source.pull(&resolved).unwrap_err();
        assert!(err.to_string().contains("503 Service Unavailable"), "{err}");
        assert!(!store2.blobs().has(&good));
    }
}
