//! The compressed form of a layer built here (stored uncompressed, its digest = its diff_id),
//! as pushes, archive outputs and registry cache exports need it: made once and recorded in
//! the `layer_blobs` table, then reused. Only the default level is recorded and reused (the
//! compressor is deterministic, so that blob is what a new run would make).
//!
//! A push may make it while it uploads it ([`compress_teeing`] writes the store's blob and the
//! upload's stream at once; see `registry::push_compressing`).

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};

use rbuild_cache::{LayerBlob, Store};
use rbuild_types::Digest;

use super::distribute::DistOptions;
use super::load_manifest;
use crate::compress::{compress_parallel, CompressSettings, Compression};
use crate::manifest::{layer_compression, oci_layer_type};
use crate::OciError;

/// The compressed form of stored layer blob `digest` per `settings`: the recorded one, or a
/// new one, recorded.
pub(crate) fn compressed_layer(
    store: &Store,
    digest: &Digest,
    settings: &CompressSettings,
) -> Result<(Digest, u64), OciError> {
    if let Some(known) = recorded(store, digest, settings)? {
        return Ok(known);
    }
    let made = compress_teeing(store, digest, settings, std::io::sink())?;
    record(store, digest, settings, made)?;
    Ok(made)
}

/// The recorded compressed form of layer `digest` per `settings`, if its blob is stored.
pub(crate) fn recorded(
    store: &Store,
    digest: &Digest,
    settings: &CompressSettings,
) -> Result<Option<(Digest, u64)>, OciError> {
    if settings.level.is_some() {
        return Ok(None);
    }
    let wanted = oci_layer_type(settings.compression);
    let known = store
        .layer_blobs()
        .get(digest)
        .map_err(OciError::store(format!("read layer blob record {digest}")))?;
    Ok(known
        .filter(|b| b.media_type == wanted && store.blobs().has(&b.digest))
        .map(|b| (b.digest, b.size)))
}

/// Records `made` as the compressed form of layer `digest` per `settings` (default level only).
pub(crate) fn record(
    store: &Store,
    digest: &Digest,
    settings: &CompressSettings,
    made: (Digest, u64),
) -> Result<(), OciError> {
    if settings.level.is_some() {
        return Ok(());
    }
    let blob = LayerBlob {
        digest: made.0,
        media_type: oci_layer_type(settings.compression).to_string(),
        size: made.1,
    };
    store
        .layer_blobs()
        .set(digest, &blob)
        .map_err(OciError::store(format!("record layer blob {digest}")))
}

/// Compresses the stored uncompressed blob `digest` into a new blob of the store, writing the
/// same bytes to `also` as they are made (an upload's stream; once `also` fails it is left
/// out and the store's blob is still made). Returns the blob's digest and size. Streams:
/// memory is bounded by the compressor's buffers, whatever the layer size.
pub(crate) fn compress_teeing(
    store: &Store,
    digest: &Digest,
    settings: &CompressSettings,
    also: impl Write,
) -> Result<(Digest, u64), OciError> {
    if !super::ensure_stored(store, digest)? {
        return Err(OciError::MissingBlob(*digest));
    }
    let src = store.blobs().path(digest);
    let input = File::open(&src).map_err(OciError::io("open", &src))?;
    let writer = store
        .blobs()
        .writer()
        .map_err(OciError::store("open blob writer"))?;
    let mut tee = Tee {
        store: BufWriter::with_capacity(1 << 20, writer),
        also: Some(also),
    };
    compress_parallel(BufReader::new(input), &mut tee, settings)
        .map_err(OciError::io("compress", &src))?;
    tee.also = None;
    let writer = tee
        .store
        .into_inner()
        .map_err(|e| OciError::io("compress", &src)(e.into_error()))?;
    writer
        .commit(None)
        .map_err(OciError::store(format!("store compressed layer {digest}")))
}

/// The layers of stored image (or index) `manifest` of at least `min_size` bytes whose
/// compressed form per `options` is yet to be made: stored uncompressed, a compression asked
/// for, none recorded.
pub fn layers_to_compress(
    store: &Store,
    manifest: &Digest,
    options: &DistOptions,
    min_size: u64,
) -> Result<Vec<Digest>, OciError> {
    let settings = &options.compress;
    if settings.compression == Compression::None {
        return Ok(Vec::new());
    }
    let manifests = match super::load_index(store, manifest)? {
        Some(index) => index.manifests.into_iter().map(|m| m.digest).collect(),
        None => vec![*manifest],
    };
    let mut out = Vec::new();
    for m in manifests {
        for layer in load_manifest(store, &m)?.manifest.layers {
            let uncompressed = layer_compression(&layer.media_type) == Some(Compression::None);
            if uncompressed
                && layer.size >= min_size
                && !out.contains(&layer.digest)
                && recorded(store, &layer.digest, settings)?.is_none()
                && super::ensure_stored(store, &layer.digest)?
            {
                out.push(layer.digest);
            }
        }
    }
    Ok(out)
}

/// Writes to the store's blob and, while it accepts bytes, to `also`.
struct Tee<S: Write, A: Write> {
    store: S,
    also: Option<A>,
}

impl<S: Write, A: Write> Write for Tee<S, A> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.store.write_all(buf)?;
        if let Some(also) = &mut self.also {
            if also.write_all(buf).is_err() {
                self.also = None;
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.store.flush()?;
        if let Some(also) = &mut self.also {
            if also.flush().is_err() {
                self.also = None;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_compressed_form_is_made_once_and_a_teed_copy_has_the_same_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let layer = store.blobs().put(&vec![7u8; 300_000]).unwrap();
        let settings = CompressSettings::new(Compression::Gzip);
        let mut copy = Vec::new();
        let teed = compress_teeing(&store, &layer, &settings, &mut copy).unwrap();
        assert_eq!(Digest::of(&copy), teed.0);
        assert_eq!(recorded(&store, &layer, &settings).unwrap(), None);
        let made = compressed_layer(&store, &layer, &settings).unwrap();
        assert_eq!(made, teed, "deterministic");
        assert_eq!(recorded(&store, &layer, &settings).unwrap(), Some(made));
        // Another level is neither recorded nor taken from the record.
        let level9 = CompressSettings {
            level: Some(9),
            ..settings
        };
        assert_eq!(recorded(&store, &layer, &level9).unwrap(), None);
    }
}
