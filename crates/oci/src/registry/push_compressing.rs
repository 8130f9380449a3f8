//! A layer pushed while it is being compressed: the first push of a layer built here (stored
//! uncompressed, no compressed form recorded) gzips it into the store and uploads the same bytes
//! at once, chunk by chunk, instead of compressing it whole and uploading it after. The
//! compressed blob is recorded as any first compression is, so the ordinary push that follows
//! finds it in the store (the same distribution manifest) and in the registry (`HEAD`).
//!
//! No `HEAD` or mount comes first: the digest is known only at the end. A registry that already
//! held the blob receives it again once, which costs the upload that overlapped the
//! compression.

use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

use rbuild_cache::Store;
use rbuild_types::{Digest, ImageRef};

use super::client::Client;
use crate::compress::CompressSettings;
use crate::images::{compress_teeing, record_compressed};
use crate::OciError;

/// Layers below this size (one upload chunk) are compressed first and pushed as usual, four
/// at a time, `HEAD` first: overlapping buys little for them.
pub const OVERLAP_AT_LEAST: u64 = 16 << 20;

/// How many compressed chunks may wait for their upload: the compressor runs ahead of the
/// upload by at most this many chunks (memory: this many times the client's chunk size).
const CHUNKS_AHEAD: usize = 3;

/// Compresses stored layer blob `layer` per `settings` into the store (recorded as its
/// compressed form) and uploads the bytes to `target`'s repository as they are made. Returns
/// whether the upload succeeded; when it did not, the blob is still made and recorded, and the
/// caller's ordinary push uploads it. Only a store failure is an error.
pub fn push_compressing(
    client: &Client,
    store: &Store,
    target: &ImageRef,
    layer: &Digest,
    settings: &CompressSettings,
) -> Result<bool, OciError> {
    let (sender, receiver) = sync_channel(CHUNKS_AHEAD);
    let chunks = ChunkWriter {
        sender,
        chunk: Vec::new(),
        size: client.upload_chunk(),
    };
    let (made, uploaded) = std::thread::scope(|scope| {
        let compressing = scope.spawn(move || compress_teeing(store, layer, settings, chunks));
        let uploaded = upload(client, target, layer, receiver);
        let made = compressing.join().unwrap_or_else(|_| {
            Err(OciError::Invalid {
                what: "compression worker",
                context: layer.to_string(),
                value: "stopped unexpectedly".into(),
            })
        });
        (made, uploaded)
    });
    let made = made?;
    record_compressed(store, layer, settings, made)?;
    Ok(uploaded == Some(made))
}

/// The streamed upload; `None` when it failed (the receiver is dropped, so the compressor
/// stops sending and finishes the store's blob alone).
fn upload(
    client: &Client,
    target: &ImageRef,
    layer: &Digest,
    receiver: Receiver<Vec<u8>>,
) -> Option<(Digest, u64)> {
    client
        .upload_chunks(target, layer, receiver.into_iter())
        .ok()
}

/// Cuts the compressed bytes into upload chunks and hands each to the uploader; the last,
/// shorter one when it is dropped (after the compressor's final flush).
struct ChunkWriter {
    sender: SyncSender<Vec<u8>>,
    chunk: Vec<u8>,
    size: usize,
}

impl std::io::Write for ChunkWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let room = self.size - self.chunk.len();
        let n = buf.len().min(room);
        self.chunk.extend_from_slice(&buf[..n]);
        if self.chunk.len() == self.size {
            let full = std::mem::replace(&mut self.chunk, Vec::with_capacity(self.size));
            self.sender
                .send(full)
                .map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for ChunkWriter {
    fn drop(&mut self) {
        if !self.chunk.is_empty() {
            let _ = self.sender.send(std::mem::take(&mut self.chunk));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compress::Compression;
    use crate::registry::auth::DockerCredentials;
    use crate::registry::RegistryConfig;

    #[test]
    fn the_upload_overlaps_the_compression_and_the_blob_is_recorded() {
        let Some(registry) = rbuild_test_support::Registry::start() else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let layer = store.blobs().put(&data).unwrap();
        let client =
            Client::new(RegistryConfig::default()).with_credentials(DockerCredentials::default());
        let target = ImageRef::parse(&format!("{}/team/stream:1", registry.addr)).unwrap();
        let settings = CompressSettings::new(Compression::Gzip);
        assert!(push_compressing(&client, &store, &target, &layer, &settings).unwrap());
        let (compressed, _) = crate::images::compressed::recorded(&store, &layer, &settings)
            .unwrap()
            .expect("recorded");
        assert!(client.blob_exists(&target, &compressed).unwrap());

        // An unreachable registry: no upload, yet the compressed form is made and recorded.
        let store2 = Store::open(&dir.path().join("two")).unwrap();
        let layer2 = store2.blobs().put(&data).unwrap();
        let nowhere = ImageRef::parse("127.0.0.1:9/team/stream:1").unwrap();
        assert!(!push_compressing(&client, &store2, &nowhere, &layer2, &settings).unwrap());
        assert_eq!(
            crate::images::compressed::recorded(&store2, &layer2, &settings).unwrap(),
            Some((
                compressed,
                store.blobs().read(&compressed).unwrap().len() as u64
            ))
        );
    }
}
