//! Pushing a stored image: every blob a manifest references (layers in parallel, then the
//! config), then the manifest itself under the target tag. An index is pushed child by child
//! (by digest), then the index.
//!
//! A blob the store knows to have come from another repository of the target registry
//! (`Store::blob_sources`) is mounted from there instead of uploaded; every blob pushed is
//! recorded as being in the target repository too.
//!
//! A lazy layer's blob (see [`crate::lazy`]) is downloaded only if the registry has it neither
//! in the target repository nor in one it can be mounted from.
//!
//! Invariant: the manifest goes up last, after every blob it references was confirmed by
//! the registry (present by `HEAD`, mounted or uploaded with `201 Created`).

use std::fs::File;
use std::io::{BufReader, Read};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use rbuild_cache::{BlobSource, CacheError, Store};
use rbuild_types::{Digest, ImageRef};

use super::client::Client;
use super::error::RegistryError;
use super::manifest::{classify, ManifestKind};
use super::push::{OpenBlob, Pushed};
use super::transfer::{CountingReader, Direction, Reporter, TransferPhase};
use crate::manifest::{ImageIndex, ImageManifest};

/// How many blobs are uploaded at the same time.
pub const MAX_PARALLEL_UPLOADS: usize = 4;

/// Why pushing a stored image failed.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("store: reading {what} {digest}: {source}")]
    Store {
        what: &'static str,
        digest: Digest,
        #[source]
        source: CacheError,
    },
    #[error("store: recording that the registry holds blob {digest}: {source}")]
    RecordSource {
        digest: Digest,
        #[source]
        source: CacheError,
    },
    #[error("blob {digest} of manifest {manifest} is not in the local store, and no registry is known to hold it")]
    MissingBlob { manifest: Digest, digest: Digest },
    #[error("stored manifest {digest}: invalid JSON: {source}")]
    Json {
        digest: Digest,
        #[source]
        source: serde_json::Error,
    },
    #[error("stored manifest {digest}: not an image manifest or index")]
    MediaType { digest: Digest },
    #[error("an upload worker stopped unexpectedly")]
    Worker,
}

/// What [`push_image`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushReport {
    /// Digest of the top-level manifest pushed (what the tag now points to).
    pub manifest: Digest,
    /// Blobs uploaded.
    pub uploaded: usize,
    /// Blobs mounted from another repository of the registry.
    pub mounted: usize,
    /// Blobs the registry already had.
    pub skipped: usize,
}

/// Pushes the stored manifest (or index) `manifest` and everything it references to
/// `target` (its tag, or its digest when the reference has no tag).
pub fn push_image(
    client: &Client,
    store: &Store,
    manifest: &Digest,
    target: &ImageRef,
) -> Result<PushReport, PushError> {
    let mut report = PushReport {
        manifest: *manifest,
        uploaded: 0,
        mounted: 0,
        skipped: 0,
    };
    let tag = target.tag.clone().unwrap_or_else(|| manifest.to_string());
    push_manifest_tree(client, store, manifest, target, &tag, &mut report)?;
    Ok(report)
}

fn push_manifest_tree(
    client: &Client,
    store: &Store,
    digest: &Digest,
    target: &ImageRef,
    reference: &str,
    report: &mut PushReport,
) -> Result<(), PushError> {
    let bytes = store
        .blobs()
        .read(digest)
        .map_err(|source| PushError::Store {
            what: "manifest",
            digest: *digest,
            source,
        })?;
    let json_err = |source| PushError::Json {
        digest: *digest,
        source,
    };
    let (kind, media_type) =
        classify(None, &bytes).ok_or(PushError::MediaType { digest: *digest })?;
    match kind {
        ManifestKind::Index => {
            let index: ImageIndex = serde_json::from_slice(&bytes).map_err(json_err)?;
            for child in &index.manifests {
                let child_ref = child.digest.to_string();
                push_manifest_tree(client, store, &child.digest, target, &child_ref, report)?;
            }
        }
        ManifestKind::Image => {
            let image: ImageManifest = serde_json::from_slice(&bytes).map_err(json_err)?;
            let mut blobs: Vec<(Digest, u64)> =
                image.layers.iter().map(|l| (l.digest, l.size)).collect();
            blobs.push((image.config.digest, image.config.size));
            push_blobs(client, store, digest, target, &blobs, report)?;
        }
    }
    client.push_manifest(target, reference, &media_type, &bytes)?;
    Ok(())
}

pub(crate) fn push_blobs(
    client: &Client,
    store: &Store,
    manifest: &Digest,
    target: &ImageRef,
    blobs: &[(Digest, u64)],
    report: &mut PushReport,
) -> Result<(), PushError> {
    for (digest, _) in blobs {
        let obtainable =
            crate::lazy::obtainable(store, digest).map_err(|source| PushError::Store {
                what: "the sources of blob",
                digest: *digest,
                source,
            })?;
        if !obtainable {
            return Err(PushError::MissingBlob {
                manifest: *manifest,
                digest: *digest,
            });
        }
    }
    let next = AtomicUsize::new(0);
    let outcome: Mutex<(Counts, Option<PushError>)> = Mutex::new((Counts::default(), None));
    let workers = blobs.len().min(MAX_PARALLEL_UPLOADS);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| loop {
                    if outcome.lock().map(|o| o.1.is_some()).unwrap_or(true) {
                        return;
                    }
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some((digest, size)) = blobs.get(i) else {
                        return;
                    };
                    let path = store.blobs().path(digest);
                    let (digest_owned, size_owned) = (*digest, *size);
                    let reporter = Arc::new(Mutex::new(Reporter::new(
                        client.transfer_observer(),
                        *digest,
                        Direction::Push,
                        *size,
                    )));
                    let progress = Arc::clone(&reporter);
                    let open = move || -> std::io::Result<Box<dyn Read + Send>> {
                        // Only a blob the registry lacks and cannot mount is read: a lazy
                        // layer's is downloaded first.
                        crate::lazy::fetch_blob(store, client, &digest_owned, size_owned)
                            .map_err(std::io::Error::other)?;
                        let file = BufReader::new(File::open(&path)?);
                        Ok(Box::new(CountingReader::new(file, Arc::clone(&progress))))
                    };
                    let result = push_one(client, store, target, digest, *size, &open);
                    if let (Ok(pushed), Ok(mut r)) = (&result, reporter.lock()) {
                        r.phase(pushed_phase(*pushed), *size);
                    }
                    let Ok(mut o) = outcome.lock() else {
                        return;
                    };
                    match result {
                        Ok(Pushed::Uploaded) => o.0.uploaded += 1,
                        Ok(Pushed::Mounted) => o.0.mounted += 1,
                        Ok(Pushed::Existed) => o.0.skipped += 1,
                        Err(e) => {
                            o.1.get_or_insert(e);
                            return;
                        }
                    }
                })
            })
            .collect();
        for h in handles {
            if h.join().is_err() {
                if let Ok(mut o) = outcome.lock() {
                    o.1.get_or_insert(PushError::Worker);
                }
            }
        }
    });
    let (counts, failure) = outcome
        .into_inner()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    report.uploaded += counts.uploaded;
    report.mounted += counts.mounted;
    report.skipped += counts.skipped;
    match failure {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// The last phase of a blob's push.
fn pushed_phase(pushed: Pushed) -> TransferPhase {
    match pushed {
        Pushed::Uploaded => TransferPhase::Done,
        Pushed::Mounted => TransferPhase::Mounted,
        Pushed::Existed => TransferPhase::Exists,
    }
}

/// What the upload workers did.
#[derive(Default)]
struct Counts {
    uploaded: usize,
    mounted: usize,
    skipped: usize,
}

/// Pushes one blob, mounting it from a repository of the same registry that the store knows
/// holds it; records that the target repository holds it now.
fn push_one(
    client: &Client,
    store: &Store,
    target: &ImageRef,
    digest: &Digest,
    size: u64,
    open: OpenBlob<'_>,
) -> Result<Pushed, PushError> {
    let sources = store
        .blob_sources()
        .get(digest)
        .map_err(|source| PushError::Store {
            what: "the sources of blob",
            digest: *digest,
            source,
        })?;
    let from = sources
        .iter()
        .find(|s| s.registry == target.registry && s.repository != target.repository)
        .map(|s| s.repository.as_str());
    let pushed = client.push_blob_from(target, digest, size, open, from)?;
    let here = BlobSource {
        registry: target.registry.clone(),
        repository: target.repository.clone(),
    };
    store
        .blob_sources()
        .add(digest, here)
        .map_err(|source| PushError::RecordSource {
            digest: *digest,
            source,
        })?;
    Ok(pushed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::auth::DockerCredentials;
    use crate::registry::{RegistryConfig, CONFIG_LIMIT};

    #[test]
    fn pushes_a_stored_image_and_it_resolves_to_the_same_manifest() {
        let Some(registry) = rbuild_test_support::Registry::with_busybox() else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store")).unwrap();
        let client =
            Client::new(RegistryConfig::default()).with_credentials(DockerCredentials::default());
        let source = ImageRef::parse(&format!("{}/library/busybox:latest", registry.addr)).unwrap();
        let platform = "linux/amd64".parse().unwrap();
        let pulled = client.resolve(&source, &platform).unwrap();
        let manifest = store.blobs().put(&pulled.manifest.bytes).unwrap();
        let config = client
            .fetch_blob_bytes(&source, &pulled.image.config.digest, CONFIG_LIMIT)
            .unwrap();
        store.blobs().put(&config).unwrap();
        let target =
            ImageRef::parse(&format!("{}/rbuild-test/pushed:latest", registry.addr)).unwrap();
        // Missing layer blobs are reported before anything is uploaded.
        let err = push_image(&client, &store, &manifest, &target).unwrap_err();
        assert!(matches!(err, PushError::MissingBlob { .. }), "{err:?}");
        for layer in &pulled.image.layers {
            let mut w = store.blobs().writer().unwrap();
            client
                .fetch_blob(&source, &layer.digest, Some(layer.size), &mut w)
                .unwrap();
            w.commit(Some(&layer.digest)).unwrap();
        }
        let report = push_image(&client, &store, &manifest, &target).unwrap();
        assert_eq!(report.manifest, manifest);
        assert_eq!(
            report.uploaded + report.skipped,
            pulled.image.layers.len() + 1
        );
        let back = client.resolve(&target, &platform).unwrap();
        assert_eq!(back.manifest.digest, manifest);
        // A second push finds every blob in place.
        let again = push_image(&client, &store, &manifest, &target).unwrap();
        assert_eq!(again.uploaded, 0);
    }
}
