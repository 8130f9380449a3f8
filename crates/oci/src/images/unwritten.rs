//! Layer blobs made when an output needs their bytes, not when the image is committed.
//!
//! A layer built here is its snapshot. An image in the local store needs of it only its
//! digest (the diff_id, in the config) and size (in the manifest), so a commit tars the
//! snapshot into a hash and writes nothing ([`digest_snapshot`]); the `layer_info` table
//! records both. A push, an archive, a cache export or an unpack that needs the bytes calls
//! [`ensure_stored`], which tars a snapshot recorded with that diff_id again into the blob
//! store and publishes it only if it hashes to the diff_id: the tar of a snapshot is a
//! function of its files, which never change once committed.
//!
//! Invariants kept elsewhere: GC keeps a snapshot while a tagged image names its diff_id
//! (`rbuild_cache` module `roots`), and a `--no-cache` rerun that replaces a snapshot whose
//! blob was not written keeps the old one under its diff_id (`Snapshots::replace`).

use std::path::Path;

use rbuild_cache::Store;
use rbuild_types::Digest;

use crate::error::ChangedLayer;
use crate::layer::{write_tar, LayerDigest};
use crate::OciError;

/// The diff_id and size of the tar of snapshot directory `dir`, written nowhere.
pub(crate) fn digest_snapshot(dir: &Path) -> Result<LayerDigest, OciError> {
    write_tar(dir, std::io::sink())
}

/// Names the store in a failure of the stream a layer tar is written to when that stream is a
/// blob being written into the store.
pub(crate) fn into_store(store: &Store) -> impl FnOnce(OciError) -> OciError + '_ {
    |e| match e {
        OciError::Stream { source, .. } => OciError::Io {
            op: "write a layer blob into the store",
            path: store.root().to_path_buf(),
            source,
        },
        other => other,
    }
}

/// Makes layer blob `digest` from its snapshot if the blob store lacks it and a snapshot
/// recorded with that diff_id is here. Returns whether the blob is stored now: `false` when
/// it is neither stored nor makeable (a lazy layer's, or gone), which callers handle as they
/// handle a missing blob.
pub(crate) fn ensure_stored(store: &Store, digest: &Digest) -> Result<bool, OciError> {
    if store.blobs().has(digest) {
        return Ok(true);
    }
    let candidates = store
        .layer_info()
        .snapshots_of(digest)
        .map_err(OciError::store(format!(
            "find the snapshot of layer {digest}"
        )))?;
    let mut changed = None;
    for id in candidates {
        let Some(dir) = store.snapshots().path(&id) else {
            continue;
        };
        let mut writer = store
            .blobs()
            .writer_hashed_by_producer()
            .map_err(OciError::store("open blob writer"))?;
        let tarred = write_tar(&dir, &mut writer).map_err(into_store(store))?;
        if tarred.diff_id != *digest {
            // Dropping the writer removes what it staged.
            changed = Some((id, tarred.diff_id));
            continue;
        }
        writer
            .commit(Some(&tarred.diff_id))
            .map_err(OciError::store(format!("store layer {digest}")))?;
        return Ok(true);
    }
    match changed {
        Some((snapshot, actual)) => Err(OciError::LayerChanged(Box::new(ChangedLayer {
            digest: *digest,
            snapshot: snapshot.0,
            actual,
        }))),
        None => Ok(false),
    }
}
