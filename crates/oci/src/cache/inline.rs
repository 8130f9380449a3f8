//! The `type=inline` cache: the `mode=min` record carried in the image's own config, as
//! BuildKit carries its cache config in the config field `moby.buildkit.cache.v0`. Ours is
//! the config field [`INLINE_KEY`] (`rbuild.cache.v1`), whose value is the record's JSON
//! object ([`super::record`], versioned as ever). Runtimes ignore fields they do not know.
//!
//! The record is made from the committed image, so its layer blobs are the committed ones;
//! a reader takes each layer's blob from the manifest it pulled instead (matched by
//! diff_id, so whatever compression the push chose), and drops a step whose layers the image
//! does not have.

use rbuild_cache::Store;
use rbuild_types::Digest;
use serde_json::Value;

use super::exchange::cache_layer;
use super::record::{CacheRecordFile, RecordError};
use crate::images::{load_manifest, put_manifest, StoredImage};
use crate::manifest::{Descriptor, ImageManifest, OCI_CONFIG};
use crate::OciError;

/// The image config field that holds the inline record.
pub const INLINE_KEY: &str = "rbuild.cache.v1";

/// Why an inline record could not be embedded or read.
#[derive(Debug, thiserror::Error)]
pub enum InlineError {
    #[error(transparent)]
    Image(#[from] OciError),
    #[error("image config {digest}: not a JSON object: {source}")]
    Config {
        digest: Digest,
        #[source]
        source: serde_json::Error,
    },
    #[error("image config field {INLINE_KEY}: {0}")]
    Record(#[source] RecordError),
}

/// Stores a copy of image `manifest` whose config also holds `record` (its layers the same);
/// returns it.
pub fn embed(
    store: &Store,
    manifest: &Digest,
    record: &CacheRecordFile,
    key_version: &str,
) -> Result<StoredImage, InlineError> {
    let image = load_manifest(store, manifest)?;
    let digest = image.manifest.config.digest;
    let config_err = |source| InlineError::Config { digest, source };
    let mut config: serde_json::Map<String, Value> =
        serde_json::from_slice(&image.config_bytes).map_err(config_err)?;
    let record: Value = serde_json::from_slice(&record.encode(key_version)).map_err(config_err)?;
    config.insert(INLINE_KEY.to_string(), record);
    let bytes = serde_json::to_vec(&config).map_err(config_err)?;
    let config_digest = store
        .blobs()
        .put(&bytes)
        .map_err(OciError::store("write config blob with the inline cache"))?;
    let layers = image.manifest.layers;
    let annotations = image.manifest.annotations;
    let size = bytes.len() as u64 + layers.iter().map(|l| l.size).sum::<u64>();
    let config = Descriptor::new(OCI_CONFIG, config_digest, bytes.len() as u64);
    let manifest_digest = put_manifest(
        store,
        config,
        layers,
        annotations,
        "write manifest with the inline cache",
    )?;
    Ok(StoredImage {
        manifest_digest,
        config_digest,
        size,
    })
}

/// The inline record of an image (`None` when its config has none), its layers described by
/// the image manifest `manifest`'s blobs.
pub fn extract(
    config_bytes: &[u8],
    config_digest: Digest,
    manifest: &ImageManifest,
    key_version: &str,
) -> Result<Option<CacheRecordFile>, InlineError> {
    let config_err = |source| InlineError::Config {
        digest: config_digest,
        source,
    };
    let config: serde_json::Map<String, Value> =
        serde_json::from_slice(config_bytes).map_err(config_err)?;
    let Some(record) = config.get(INLINE_KEY) else {
        return Ok(None);
    };
    let bytes = serde_json::to_vec(record).map_err(config_err)?;
    let mut record = CacheRecordFile::decode(&bytes, key_version).map_err(InlineError::Record)?;
    let diff_ids: Vec<Digest> = config
        .get("rootfs")
        .and_then(|r| r.get("diff_ids"))
        .and_then(|d| serde_json::from_value(d.clone()).ok())
        .unwrap_or_default();
    let pushed = |diff_id: &Digest| {
        let i = diff_ids.iter().position(|d| d == diff_id)?;
        manifest.layers.get(i)
    };
    // An image carries no cache-mount blobs (`type=inline` cannot export them).
    record.cache_mounts.clear();
    record.steps.retain(|_, layers| {
        layers.iter_mut().all(|l| {
            match pushed(&l.diff_id).and_then(|d| cache_layer(l.snapshot, d, l.diff_id).ok()) {
                Some(found) => {
                    *l = found;
                    true
                }
                None => false,
            }
        })
    });
    Ok(Some(record))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use rbuild_ports::{CacheLayer, LayerMediaType};
    use rbuild_types::SnapshotId;

    use super::*;
    use crate::manifest::OCI_LAYER_GZIP;

    fn layer(name: &[u8]) -> CacheLayer {
        CacheLayer {
            snapshot: SnapshotId(Digest::of(name)),
            digest: Digest::of(name),
            size: 1,
            media_type: LayerMediaType::Tar,
            diff_id: Digest::of(name),
        }
    }

    #[test]
    fn layers_become_the_pushed_blobs_and_other_versions_are_refused() {
        let (a, b) = (layer(b"a"), layer(b"b"));
        let record = CacheRecordFile {
            steps: BTreeMap::from([
                (Digest::of(b"in image"), vec![a.clone()]),
                (Digest::of(b"not in image"), vec![a.clone(), b]),
            ]),
            ..CacheRecordFile::default()
        };
        let mut config: serde_json::Map<String, Value> = serde_json::from_value(
            serde_json::json!({"rootfs": {"type": "layers", "diff_ids": [a.diff_id]}}),
        )
        .unwrap();
        config.insert(
            INLINE_KEY.into(),
            serde_json::from_slice(&record.encode("kv")).unwrap(),
        );
        let bytes = serde_json::to_vec(&config).unwrap();
        let pushed = Descriptor::new(OCI_LAYER_GZIP, Digest::of(b"gz"), 9);
        let manifest = ImageManifest::oci(
            Descriptor::new(OCI_CONFIG, Digest::of(&bytes), 1),
            vec![pushed.clone()],
        );
        let got = extract(&bytes, Digest::of(&bytes), &manifest, "kv")
            .unwrap()
            .unwrap();
        assert_eq!(
            got.steps.len(),
            1,
            "the step with a layer the image lacks is dropped"
        );
        let l = &got.steps[&Digest::of(b"in image")][0];
        assert_eq!(
            (l.digest, l.media_type),
            (pushed.digest, LayerMediaType::TarGzip)
        );
        assert_eq!((l.diff_id, l.snapshot), (a.diff_id, a.snapshot));

        assert!(matches!(
            extract(&bytes, Digest::of(&bytes), &manifest, "other"),
            Err(InlineError::Record(RecordError::KeyVersion { .. }))
        ));
        let plain = br#"{"rootfs":{"type":"layers","diff_ids":[]}}"#;
        assert!(extract(plain, Digest::of(plain), &manifest, "kv")
            .unwrap()
            .is_none());
    }
}
