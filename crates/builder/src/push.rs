//! Pushing an image of the store to a registry, in its distribution form (compressed layers,
//! OCI or Docker media types): what `--push` and `-o type=image,push=true` do after a build,
//! and what `rbuild push` does.

use rbuild_cache::Store;
use rbuild_oci::images::{
    distribution_image, distribution_index, layers_to_compress, load_index, DistOptions,
};
use rbuild_oci::registry::push_compressing::{push_compressing, OVERLAP_AT_LEAST};
use rbuild_oci::registry::{
    push_image, Client, PushError, RegistryConfig, RetryObserver, TransferObserver,
};
use rbuild_oci::OciError;
use rbuild_types::{Digest, ImageRef};

/// What a push sent as the top manifest: an image manifest, or the index of a
/// multi-platform image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pushed {
    pub manifest_digest: Digest,
    pub manifest_size: u64,
    pub media_type: &'static str,
}

/// Why a push failed.
#[derive(Debug, thiserror::Error)]
pub enum PushFailure {
    #[error("preparing {target} for push: {source}")]
    Prepare {
        target: Box<ImageRef>,
        #[source]
        source: OciError,
    },
    #[error("pushing {target}: {source}")]
    Push {
        target: Box<ImageRef>,
        #[source]
        source: Box<PushError>,
    },
}

/// Pushes stored manifest `manifest` to `target` in the form `options` ask for, through the
/// registries of `registries`, telling `retries` of every retried request and `transfers` (if
/// given) of each blob's byte progress. Returns what was pushed (the top manifest's digest,
/// size and media type).
pub fn push_stored(
    store: &Store,
    manifest: &Digest,
    target: &ImageRef,
    options: &DistOptions,
    registries: &RegistryConfig,
    retries: RetryObserver,
    transfers: Option<TransferObserver>,
) -> Result<Pushed, PushFailure> {
    let prepare = |source| PushFailure::Prepare {
        target: Box::new(target.clone()),
        source,
    };
    let mut client = Client::new(registries.clone()).with_retry_observer(retries);
    if let Some(transfers) = transfers {
        client = client.with_transfer_observer(transfers);
    }
    // A large layer built here and never compressed is uploaded while it is compressed.
    for layer in layers_to_compress(store, manifest, options, OVERLAP_AT_LEAST).map_err(prepare)? {
        push_compressing(&client, store, target, &layer, &options.compress).map_err(prepare)?;
    }
    // A multi-platform image is an index: its children go up first, in their distribution
    // form, then the index joining them.
    let dist = match load_index(store, manifest).map_err(prepare)? {
        Some(index) => {
            let dist = distribution_index(store, &index, options).map_err(prepare)?;
            Pushed {
                manifest_digest: dist.digest,
                manifest_size: dist.size,
                media_type: dist.media_type,
            }
        }
        None => {
            let dist = distribution_image(store, manifest, options).map_err(prepare)?;
            Pushed {
                manifest_digest: dist.manifest_digest,
                manifest_size: dist.manifest_size,
                media_type: dist.media_type,
            }
        }
    };
    push_image(&client, store, &dist.manifest_digest, target).map_err(|source| {
        PushFailure::Push {
            target: Box::new(target.clone()),
            source: Box::new(source),
        }
    })?;
    Ok(dist)
}
