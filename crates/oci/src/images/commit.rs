//! Committing a built image: layer snapshots → layer blobs, config and manifest blobs.

use std::collections::HashMap;

use rbuild_cache::{LayerInfo, SnapshotId, Store};
use rbuild_graph::ImageConfig;
use rbuild_types::Digest;

use crate::config;
use crate::layer::{write_tar_clamped, LayerDigest};
use crate::manifest::{
    layer_compression, oci_layer_type, Descriptor, ImageManifest, OCI_CONFIG, OCI_LAYER,
};
use crate::time::{now_unix, rfc3339};
use crate::OciError;

/// What [`commit_image`] stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoredImage {
    pub manifest_digest: Digest,
    /// The image id.
    pub config_digest: Digest,
    /// Config plus layer blob sizes, in bytes.
    pub size: u64,
}

/// One layer of the image being committed.
struct CommittedLayer {
    descriptor: Descriptor,
    diff_id: Digest,
    empty: bool,
}

/// Stores the image made of `layers` (bottom first) and `config`: each layer snapshot is
/// tarred once into a blob (skipped when its blob exists), empty layers are dropped and their
/// history entries marked `empty_layer`, history entries without a time get `created`
/// (Unix seconds; now if `None`), then the config and manifest blobs are written.
///
/// Layers pair up in order with the history entries whose `empty_layer` is false; if the counts
/// differ, nothing is written and [`OciError::HistoryMismatch`] is returned.
pub fn commit_image(
    store: &Store,
    layers: &[SnapshotId],
    config: &ImageConfig,
    created: Option<u64>,
) -> Result<StoredImage, OciError> {
    commit_image_with(
        store,
        layers,
        config,
        &CommitOptions {
            created,
            mtime_clamp: None,
        },
    )
}

/// Options of [`commit_image_with`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CommitOptions {
    /// Creation time in Unix seconds (now if `None`); SOURCE_DATE_EPOCH when set.
    pub created: Option<u64>,
    /// SOURCE_DATE_EPOCH: file mtimes later than this are lowered to it in the layers built
    /// here. Such layers are tarred afresh (their cached unclamped tar is not reused and not
    /// recorded as the snapshot's layer info); base-image layers are never rewritten.
    pub mtime_clamp: Option<u64>,
}

/// [`commit_image`] with [`CommitOptions`].
pub fn commit_image_with(
    store: &Store,
    layers: &[SnapshotId],
    config: &ImageConfig,
    options: &CommitOptions,
) -> Result<StoredImage, OciError> {
    let created = options.created;
    let with_layer: Vec<usize> = config
        .history
        .iter()
        .enumerate()
        .filter(|(_, h)| !h.empty_layer)
        .map(|(i, _)| i)
        .collect();
    if with_layer.len() != layers.len() {
        return Err(OciError::HistoryMismatch {
            layers: layers.len(),
            history: with_layer.len(),
        });
    }
    let created = rfc3339(created.unwrap_or_else(now_unix));
    let mut base_index: Option<HashMap<Digest, Descriptor>> = None;
    let mut image = config.clone();
    let mut descriptors = Vec::new();
    let mut diff_ids = Vec::new();
    for (layer, &hist) in layers.iter().zip(&with_layer) {
        let l = layer_blob(store, layer, &mut base_index, options.mtime_clamp)?;
        if l.empty {
            image.history[hist].empty_layer = true;
            continue;
        }
        descriptors.push(l.descriptor);
        diff_ids.push(l.diff_id);
    }
    for h in &mut image.history {
        if h.created.is_none() {
            h.created = Some(created.clone());
        }
    }
    let config_bytes = config::to_json(&image, &diff_ids, Some(&created));
    let config_digest = store
        .put_blob(&config_bytes)
        .map_err(OciError::store("write config blob"))?;
    let size = config_bytes.len() as u64 + descriptors.iter().map(|d| d.size).sum::<u64>();
    let manifest = ImageManifest::oci(
        Descriptor::new(OCI_CONFIG, config_digest, config_bytes.len() as u64),
        descriptors,
    );
    let manifest_digest = store
        .put_blob(&manifest.to_json())
        .map_err(OciError::store("write manifest blob"))?;
    Ok(StoredImage {
        manifest_digest,
        config_digest,
        size,
    })
}

fn empty_tar(diff_id: Digest, size: u64) -> bool {
    LayerDigest { diff_id, size }.is_empty_tar()
}

/// The blob of one layer: already stored uncompressed, a base-image blob as pulled, or a
/// fresh tar of the snapshot. A base-image layer is one whose snapshot id is its diff_id.
fn layer_blob(
    store: &Store,
    id: &SnapshotId,
    base_index: &mut Option<HashMap<Digest, Descriptor>>,
    mtime_clamp: Option<u64>,
) -> Result<CommittedLayer, OciError> {
    let info = store
        .layer_info(id)
        .map_err(OciError::store(format!("read layer info of {}", id.0)))?;
    let is_base = info.as_ref().is_some_and(|i| i.diff_id == id.0);
    let reuse = mtime_clamp.is_none() || is_base;
    if let Some(info) = info.as_ref().filter(|_| reuse) {
        if store.has_blob(&info.diff_id) {
            return Ok(CommittedLayer {
                descriptor: Descriptor::new(OCI_LAYER, info.diff_id, info.size),
                diff_id: info.diff_id,
                empty: empty_tar(info.diff_id, info.size),
            });
        }
        if base_index.is_none() {
            *base_index = Some(base_layer_index(store)?);
        }
        if let Some(desc) = base_index.as_ref().and_then(|m| m.get(&info.diff_id)) {
            return Ok(CommittedLayer {
                descriptor: desc.clone(),
                diff_id: info.diff_id,
                empty: empty_tar(info.diff_id, info.size),
            });
        }
    }
    let dir = store
        .snapshot_path(id)
        .ok_or(OciError::MissingSnapshot(id.0))?;
    let mut writer = store
        .blob_writer()
        .map_err(OciError::store("open blob writer"))?;
    let tarred = write_tar_clamped(&dir, &mut writer, mtime_clamp)?;
    let (digest, size) = writer
        .commit(Some(&tarred.diff_id))
        .map_err(OciError::store(format!(
            "store layer tar of {}",
            dir.display()
        )))?;
    if info.is_none() && mtime_clamp.is_none() {
        store
            .set_layer_info(
                id,
                &LayerInfo {
                    diff_id: digest,
                    size,
                },
            )
            .map_err(OciError::store(format!("record layer info of {}", id.0)))?;
    }
    Ok(CommittedLayer {
        descriptor: Descriptor::new(OCI_LAYER, digest, size),
        diff_id: digest,
        empty: tarred.is_empty_tar(),
    })
}

/// diff_id → layer descriptor (as pulled) for every image manifest in the store, so base
/// layers are referenced by their original (compressed) blobs. Manifests are found through the
/// tags and, since pulled images need not be tagged, by scanning the blob directory for small
/// JSON blobs that parse as image manifests. Images whose blobs are missing or unreadable are
/// passed over: they cannot provide a layer anyway.
fn base_layer_index(store: &Store) -> Result<HashMap<Digest, Descriptor>, OciError> {
    let mut manifests: Vec<Digest> = store
        .tags()
        .map_err(OciError::store("list tags"))?
        .into_iter()
        .map(|(_, d)| d)
        .collect();
    manifests.extend(scan_manifest_blobs(store));
    let mut index = HashMap::new();
    for manifest_digest in manifests {
        let Ok(bytes) = store.read_blob(&manifest_digest) else {
            continue;
        };
        let Ok(manifest) = ImageManifest::parse(&bytes, &manifest_digest.to_string()) else {
            continue;
        };
        let Ok(config_bytes) = store.read_blob(&manifest.config.digest) else {
            continue;
        };
        let Ok(parsed) = config::parse(&config_bytes, &manifest.config.digest.to_string()) else {
            continue;
        };
        for (diff_id, layer) in parsed.diff_ids.iter().zip(&manifest.layers) {
            if !store.has_blob(&layer.digest) {
                continue;
            }
            let Some(compression) = layer_compression(&layer.media_type) else {
                continue;
            };
            let mut desc = layer.clone();
            desc.media_type = oci_layer_type(compression).to_string();
            index.entry(*diff_id).or_insert(desc);
        }
    }
    Ok(index)
}

/// Largest blob considered a manifest candidate by [`scan_manifest_blobs`].
const MAX_MANIFEST_SCAN: u64 = 256 * 1024;

/// Digests of the blobs, next to where the store keeps them, that look like image manifests
/// (small JSON objects mentioning `layers`). An unreadable directory yields none.
fn scan_manifest_blobs(store: &Store) -> Vec<Digest> {
    let probe = store.blob_path(&Digest::of(b""));
    let Some(dir) = probe.parent() else {
        return Vec::new();
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let Ok(digest) = format!("sha256:{}", entry.file_name().to_string_lossy()).parse() else {
            continue;
        };
        let small = entry
            .metadata()
            .is_ok_and(|m| m.is_file() && m.len() <= MAX_MANIFEST_SCAN);
        if !small {
            continue;
        }
        let Ok(bytes) = std::fs::read(entry.path()) else {
            continue;
        };
        let looks_like_manifest = bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
            && bytes.windows(8).any(|w| w == b"\"layers\"");
        if looks_like_manifest {
            out.push(digest);
        }
    }
    out.sort();
    out
}
