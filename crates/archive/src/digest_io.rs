//! Streams that compute a SHA-256 digest and a byte count of what passes through them.

use std::io::{self, Read, Write};

use rbuild_types::{Digest, Hasher};

/// A writer that hashes and counts everything written to the inner writer.
///
/// A long stream is hashed on a thread of its own (see [`ChunkHasher`]): SHA-256 of a 280 MB
/// layer is about a fifth of tarring it, and the producer need not wait for it.
pub struct HashingWriter<W> {
    inner: W,
    hasher: ChunkHasher,
    count: u64,
}

impl<W: Write> HashingWriter<W> {
    /// Hashes what is written to `inner`.
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: ChunkHasher::default(),
            count: 0,
        }
    }

    /// The digest and size of what was written, and the inner writer.
    pub fn finish(self) -> (Digest, u64, W) {
        (self.hasher.finish(), self.count, self.inner)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Bytes gathered before a chunk is hashed or handed over.
const CHUNK: usize = 1 << 20;
/// Streams up to this long are hashed on the caller's thread (a thread costs more than it
/// saves on small layers).
const INLINE_LIMIT: u64 = 8 << 20;
/// Chunks in flight to the hashing thread: bounds the memory to a few MiB.
const IN_FLIGHT: usize = 4;

/// SHA-256 of a stream fed in pieces: gathered into 1 MiB chunks; the first
/// [`INLINE_LIMIT`] bytes are hashed in place, the rest by a thread that takes chunks through a
/// bounded channel, in order. The digest is the same either way.
#[derive(Default)]
struct ChunkHasher {
    inline: Option<Hasher>,
    pending: Vec<u8>,
    hashed_inline: u64,
    worker: Option<Worker>,
}

impl ChunkHasher {
    fn update(&mut self, bytes: &[u8]) {
        if self.pending.capacity() == 0 {
            self.pending.reserve_exact(CHUNK);
        }
        let mut rest = bytes;
        while !rest.is_empty() {
            let take = rest.len().min(CHUNK - self.pending.len());
            self.pending.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.pending.len() == CHUNK {
                let chunk = std::mem::replace(&mut self.pending, Vec::with_capacity(CHUNK));
                self.hash_chunk(chunk);
            }
        }
    }

    fn hash_chunk(&mut self, chunk: Vec<u8>) {
        if self.worker.is_none() && self.hashed_inline < INLINE_LIMIT {
            self.hashed_inline += chunk.len() as u64;
            self.inline.get_or_insert_with(Hasher::new).update(&chunk);
            return;
        }
        if self.worker.is_none() {
            self.worker = Worker::spawn();
        }
        let Some(worker) = &self.worker else {
            // No thread to be had: the hashing stays here.
            self.inline.get_or_insert_with(Hasher::new).update(&chunk);
            return;
        };
        if let Some(hasher) = self.inline.take() {
            // The state so far goes first; the chunks follow it in order.
            let _ = worker.chunks.send(Piece::Start(hasher));
        }
        // A send fails only if the thread died; `finish` then re-raises its panic.
        let _ = worker.chunks.send(Piece::Bytes(chunk));
    }

    fn finish(mut self) -> Digest {
        let last = std::mem::take(&mut self.pending);
        match self.worker.take() {
            None => {
                let mut hasher = self.inline.take().unwrap_or_default();
                hasher.update(&last);
                hasher.finish()
            }
            Some(Worker { chunks, done }) => {
                if !last.is_empty() {
                    let _ = chunks.send(Piece::Bytes(last));
                }
                drop(chunks);
                match done.join() {
                    Ok(hasher) => hasher.finish(),
                    Err(panic) => std::panic::resume_unwind(panic),
                }
            }
        }
    }
}

/// What the hashing thread receives: the state hashed so far, then the bytes after it.
enum Piece {
    Start(Hasher),
    Bytes(Vec<u8>),
}

struct Worker {
    chunks: std::sync::mpsc::SyncSender<Piece>,
    done: std::thread::JoinHandle<Hasher>,
}

impl Worker {
    /// A hashing thread, or `None` if none can be started.
    fn spawn() -> Option<Worker> {
        let (chunks, received) = std::sync::mpsc::sync_channel::<Piece>(IN_FLIGHT);
        let done = std::thread::Builder::new()
            .name("layer-hash".into())
            .spawn(move || {
                let mut hasher = Hasher::new();
                for piece in received {
                    match piece {
                        Piece::Start(state) => hasher = state,
                        Piece::Bytes(bytes) => hasher.update(&bytes),
                    }
                }
                hasher
            })
            .ok()?;
        Some(Worker { chunks, done })
    }
}

/// A reader that hashes and counts everything read from the inner reader.
pub struct HashingReader<R> {
    inner: R,
    hasher: Hasher,
    count: u64,
}

impl<R: Read> HashingReader<R> {
    /// Hashes what is read from `inner`.
    pub fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Hasher::new(),
            count: 0,
        }
    }

    /// Reads the rest of the stream (e.g. tar padding), then returns its digest and size.
    pub fn drain_and_finish(mut self) -> io::Result<(Digest, u64)> {
        io::copy(&mut self, &mut io::sink())?;
        Ok((self.hasher.finish(), self.count))
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes that differ from chunk to chunk, so a chunk hashed twice or out of order shows.
    fn stream(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 + i / 4093) as u8).collect()
    }

    #[test]
    fn the_digest_is_the_streams_whether_hashed_in_place_or_on_a_thread() {
        for len in [
            0,
            1,
            CHUNK - 1,
            CHUNK,
            INLINE_LIMIT as usize,
            INLINE_LIMIT as usize + 1,
            3 * INLINE_LIMIT as usize + 12_345,
        ] {
            let bytes = stream(len);
            let mut w = HashingWriter::new(Vec::new());
            // Odd-sized writes, as a tar emitter makes them.
            for piece in bytes.chunks(7_919) {
                w.write_all(piece).unwrap();
            }
            let (digest, size, inner) = w.finish();
            assert_eq!(digest, Digest::of(&bytes), "len {len}");
            assert_eq!(size, len as u64);
            assert_eq!(inner, bytes);
        }
    }
}
