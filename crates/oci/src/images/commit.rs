//! Committing a built image: layer snapshots → layer blobs, config and manifest blobs.

use std::collections::BTreeMap;

use rbuild_cache::{LayerInfo, SnapshotId, Store};
use rbuild_graph::ImageConfig;
use rbuild_types::Digest;

use super::unwritten::{digest_snapshot, into_store};
use crate::config;
use crate::layer::write_tar_clamped;
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
pub(crate) struct CommittedLayer {
    pub(crate) descriptor: Descriptor,
    pub(crate) diff_id: Digest,
}

/// Stores the image made of `layers` (bottom first) and `config`: each layer snapshot is
/// tarred once into a blob (skipped when its blob exists), history entries without a time get
/// `created`
/// (Unix seconds; now if `None`), then the config and manifest blobs are written. A step whose
/// layer holds no change keeps it (the empty tar, diff_id `sha256:5f70bf18…`) and its history
/// entry stays a layer's, as BuildKit commits WORKDIR of an existing directory.
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
            ..CommitOptions::default()
        },
    )
}

/// Options of [`commit_image_with`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CommitOptions {
    /// Creation time in Unix seconds (now if `None`); SOURCE_DATE_EPOCH when set.
    pub created: Option<u64>,
    /// SOURCE_DATE_EPOCH: file mtimes later than this are lowered to it in the layers built
    /// here. Such layers are tarred afresh (their cached unclamped tar is not reused and not
    /// recorded as the snapshot's layer info); base-image layers are never rewritten.
    pub mtime_clamp: Option<u64>,
    /// `--annotation` (type `manifest`): the manifest's annotations; none when empty.
    pub annotations: BTreeMap<String, String>,
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
    let mut image = config.clone();
    let mut descriptors = Vec::new();
    let mut diff_ids = Vec::new();
    for layer in layers {
        let l = layer_blob(store, layer, options.mtime_clamp)?;
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
        .blobs()
        .put(&config_bytes)
        .map_err(OciError::store("write config blob"))?;
    let size = config_bytes.len() as u64 + descriptors.iter().map(|d| d.size).sum::<u64>();
    let config = Descriptor::new(OCI_CONFIG, config_digest, config_bytes.len() as u64);
    let annotations = (!options.annotations.is_empty()).then(|| options.annotations.clone());
    let manifest_digest = put_manifest(
        store,
        config,
        descriptors,
        annotations,
        "write manifest blob",
    )?;
    Ok(StoredImage {
        manifest_digest,
        config_digest,
        size,
    })
}

/// Stores the OCI manifest of an image made of `config` and `layers` (both stored already),
/// with `annotations`; `op` names the write in an error.
pub(crate) fn put_manifest(
    store: &Store,
    config: Descriptor,
    layers: Vec<Descriptor>,
    annotations: Option<BTreeMap<String, String>>,
    op: &'static str,
) -> Result<Digest, OciError> {
    let mut manifest = ImageManifest::oci(config, layers);
    manifest.annotations = annotations;
    store
        .blobs()
        .put(&manifest.to_json())
        .map_err(OciError::store(op))
}

/// The blob of one layer: already stored uncompressed, a base-image blob as pulled, or a
/// tar of the snapshot — hashed only, its bytes made when an output needs them
/// ([`super::ensure_stored`]), unless SOURCE_DATE_EPOCH clamps its mtimes (then written now,
/// and not recorded). A base-image layer is one whose snapshot id is its diff_id. Also how a
/// cache export finds the blob of a layer not in the final image.
pub(crate) fn layer_blob(
    store: &Store,
    id: &SnapshotId,
    mtime_clamp: Option<u64>,
) -> Result<CommittedLayer, OciError> {
    let info = store
        .layer_info()
        .get(id)
        .map_err(OciError::store(format!("read layer info of {}", id.0)))?;
    let is_base = info.as_ref().is_some_and(|i| i.diff_id == id.0);
    let reuse = mtime_clamp.is_none() || is_base;
    if let Some(info) = info.as_ref().filter(|_| reuse) {
        if store.blobs().has(&info.diff_id) {
            return Ok(CommittedLayer {
                descriptor: Descriptor::new(OCI_LAYER, info.diff_id, info.size),
                diff_id: info.diff_id,
            });
        }
        if let Some(desc) = recorded_blob(store, &info.diff_id)? {
            return Ok(CommittedLayer {
                descriptor: desc,
                diff_id: info.diff_id,
            });
        }
    }
    let Some(dir) = store.snapshots().path(id) else {
        return lazy_blob(store, id, mtime_clamp)?.ok_or(OciError::MissingSnapshot(id.0));
    };
    if mtime_clamp.is_none() && !is_base {
        // Its blob is made when an output needs the bytes (module `unwritten`).
        let info = match info {
            Some(info) => info,
            None => {
                let tarred = digest_snapshot(&dir)?;
                let info = LayerInfo {
                    diff_id: tarred.diff_id,
                    size: tarred.size,
                };
                store
                    .layer_info()
                    .set(id, &info)
                    .map_err(OciError::store(format!("record layer info of {}", id.0)))?;
                info
            }
        };
        return Ok(CommittedLayer {
            descriptor: Descriptor::new(OCI_LAYER, info.diff_id, info.size),
            diff_id: info.diff_id,
        });
    }
    // A base layer whose pulled blob is gone, or mtimes clamped: the tar is written now (the
    // emitter hashes what it writes, the diff_id: the store takes that digest).
    let mut writer = store
        .blobs()
        .writer_hashed_by_producer()
        .map_err(OciError::store("open blob writer"))?;
    let tarred = write_tar_clamped(&dir, &mut writer, mtime_clamp).map_err(into_store(store))?;
    let (digest, size) = writer
        .commit(Some(&tarred.diff_id))
        .map_err(OciError::store(format!(
            "store layer tar of {}",
            dir.display()
        )))?;
    Ok(CommittedLayer {
        descriptor: Descriptor::new(OCI_LAYER, digest, size),
        diff_id: digest,
    })
}

/// The blob of lazy snapshot `id` (not unpacked: see [`crate::lazy`]), if it is recorded and
/// stored or downloadable. A step's layer is only reused so when no `mtime_clamp` asks for
/// its tar to be rewritten (the caller unpacks such layers first).
fn lazy_blob(
    store: &Store,
    id: &SnapshotId,
    mtime_clamp: Option<u64>,
) -> Result<Option<CommittedLayer>, OciError> {
    let Some(lazy) = store
        .lazy_layers()
        .get(id)
        .map_err(OciError::store(format!("read lazy layer {}", id.0)))?
    else {
        return Ok(None);
    };
    let is_base = lazy.diff_id == id.0;
    let Some(compression) = layer_compression(&lazy.blob.media_type) else {
        return Ok(None);
    };
    let obtainable = crate::lazy::obtainable(store, &lazy.blob.digest).map_err(OciError::store(
        format!("read the sources of blob {}", lazy.blob.digest),
    ))?;
    if !(mtime_clamp.is_none() || is_base) || !obtainable {
        return Ok(None);
    }
    Ok(Some(CommittedLayer {
        descriptor: Descriptor::new(
            oci_layer_type(compression),
            lazy.blob.digest,
            lazy.blob.size,
        ),
        diff_id: lazy.diff_id,
    }))
}

/// The blob recorded for a pulled or loaded layer (`store.layer_blobs()`), with an OCI media
/// type, if that blob is still stored and its media type is a layer type we know.
fn recorded_blob(store: &Store, diff_id: &Digest) -> Result<Option<Descriptor>, OciError> {
    let Some(blob) = store
        .layer_blobs()
        .get(diff_id)
        .map_err(OciError::store(format!("read layer blob record {diff_id}")))?
    else {
        return Ok(None);
    };
    let Some(compression) = layer_compression(&blob.media_type) else {
        return Ok(None);
    };
    if !store.blobs().has(&blob.digest) {
        return Ok(None);
    }
    Ok(Some(Descriptor::new(
        oci_layer_type(compression),
        blob.digest,
        blob.size,
    )))
}
