//! The content store: blobs named by the SHA-256 of their bytes.
//!
//! Invariant: a file at `blobs/sha256/<hex>` is complete, fsynced, and hashes to `<hex>`.
//! [`Blobs`] is the directory; its [`BlobWriter`] stages into `tmp/`, hashes while writing,
//! and publishes by rename only after the digest is known (and equals the expected one, if
//! given). A dropped or failed writer leaves nothing behind but, at worst after a crash, a
//! stale `tmp/` entry that the next exclusive open removes.

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use rbuild_types::{Digest, Hasher};

use crate::error::{io_err, CacheError};
use crate::fsutil;

/// The blob directory `blobs/sha256/`. Get one with [`crate::Store::blobs`].
#[derive(Clone, Copy, Debug)]
pub struct Blobs<'a> {
    /// `blobs/sha256/`, where published blobs are.
    pub(crate) dir: &'a Path,
    /// `tmp/`, where writers stage (same filesystem, so publishing is a rename).
    pub(crate) tmp: &'a Path,
}

impl Blobs<'_> {
    /// Whether the blob is published.
    pub fn has(&self, d: &Digest) -> bool {
        self.path(d).is_file()
    }

    /// Where the blob is, or would be once published.
    pub fn path(&self, d: &Digest) -> PathBuf {
        self.dir.join(d.hex())
    }

    /// A writer that stages a new blob; call [`BlobWriter::commit`] to publish it.
    pub fn writer(&self) -> Result<BlobWriter, CacheError> {
        self.staging(true)
    }

    /// A writer for a stream whose producer hashes exactly the bytes it writes (a layer tar's
    /// emitter, which must know its digest anyway): it does not hash them a second time, and
    /// [`BlobWriter::commit`] takes the producer's digest as the blob's (`expected` is then
    /// required). Hashing a 280 MB layer twice cost a third of a one-file COPY's rebuild.
    pub fn writer_hashed_by_producer(&self) -> Result<BlobWriter, CacheError> {
        self.staging(false)
    }

    fn staging(&self, hashing: bool) -> Result<BlobWriter, CacheError> {
        loop {
            let tmp = self.tmp.join(fsutil::unique_name("blob"));
            match OpenOptions::new().write(true).create_new(true).open(&tmp) {
                Ok(file) => {
                    return Ok(BlobWriter {
                        out: Some(BufWriter::with_capacity(256 * 1024, file)),
                        hasher: hashing.then(Hasher::new),
                        size: 0,
                        flushed: 0,
                        tmp,
                        dest_dir: self.dir.to_path_buf(),
                    })
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(io_err("create staging file", tmp)(e)),
            }
        }
    }

    /// Stores `bytes` as a blob and returns its digest.
    pub fn put(&self, bytes: &[u8]) -> Result<Digest, CacheError> {
        let mut w = self.writer()?;
        w.write_all(bytes)
            .map_err(io_err("write staging file", w.tmp.clone()))?;
        Ok(w.commit(None)?.0)
    }

    /// Reads a whole blob into memory (meant for manifests and configs) and checks that it
    /// still hashes to its name.
    pub fn read(&self, d: &Digest) -> Result<Vec<u8>, CacheError> {
        let path = self.path(d);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(CacheError::BlobNotFound { digest: *d, path })
            }
            Err(e) => return Err(io_err("read blob", path)(e)),
        };
        let actual = Digest::of(&bytes);
        if actual != *d {
            return Err(CacheError::CorruptBlob { path, actual });
        }
        Ok(bytes)
    }
}

/// A big blob's pages are handed to the kernel for writeback every this many bytes, so the
/// disk writes overlap with producing the rest and the final fsync has little left to do.
const WRITEBACK_CHUNK: u64 = 16 << 20;

/// Stages a blob, hashing and counting bytes as they are written.
///
/// Invariant: nothing is visible in the store until [`BlobWriter::commit`] succeeds; dropping
/// the writer removes the staging file.
pub struct BlobWriter {
    out: Option<BufWriter<File>>,
    /// `None` when the producer hashes what it writes ([`Blobs::writer_hashed_by_producer`]).
    hasher: Option<Hasher>,
    size: u64,
    /// Bytes handed to the kernel for writeback so far ([`WRITEBACK_CHUNK`] at a time).
    flushed: u64,
    tmp: PathBuf,
    dest_dir: PathBuf,
}

impl std::fmt::Debug for BlobWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobWriter")
            .field("tmp", &self.tmp)
            .field("size", &self.size)
            .finish()
    }
}

impl BlobWriter {
    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Flushes, fsyncs and verifies the content, then publishes it under its digest. If
    /// `expected` is given and differs, nothing is published and
    /// [`CacheError::DigestMismatch`] is returned. Publishing a blob that already exists is a
    /// no-op success. Returns the digest and size.
    pub fn commit(mut self, expected: Option<&Digest>) -> Result<(Digest, u64), CacheError> {
        let out = match self.out.take() {
            Some(o) => o,
            None => {
                return Err(CacheError::Io {
                    action: "commit blob (writer already failed)",
                    path: self.tmp.clone(),
                    source: std::io::Error::from(std::io::ErrorKind::BrokenPipe),
                })
            }
        };
        let file = out
            .into_inner()
            .map_err(|e| io_err("flush staging file", self.tmp.clone())(e.into_error()))?;
        file.sync_all()
            .map_err(io_err("fsync staging file", self.tmp.clone()))?;
        drop(file);
        let actual = match (self.hasher.take(), expected) {
            (Some(hasher), _) => hasher.finish(),
            (None, Some(producers)) => *producers,
            (None, None) => {
                return Err(CacheError::Io {
                    action: "commit blob (no digest given for a producer-hashed stream)",
                    path: self.tmp.clone(),
                    source: std::io::Error::from(std::io::ErrorKind::InvalidInput),
                })
            }
        };
        if let Some(exp) = expected {
            if *exp != actual {
                return Err(CacheError::DigestMismatch {
                    expected: *exp,
                    actual,
                });
            }
        }
        let dest = self.dest_dir.join(actual.hex());
        if dest.is_file() {
            // Same name, same content: keep the published one (Drop removes the staging file).
            return Ok((actual, self.size));
        }
        fs::rename(&self.tmp, &dest).map_err(io_err("publish blob", dest.clone()))?;
        fsutil::fsync_dir(&self.dest_dir)?;
        Ok((actual, self.size))
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let out = self
            .out
            .as_mut()
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::BrokenPipe))?;
        let n = out.write(buf)?;
        if let Some(hasher) = &mut self.hasher {
            hasher.update(&buf[..n]);
        }
        self.size += n as u64;
        let in_file = self.size - out.buffer().len() as u64;
        if in_file - self.flushed >= WRITEBACK_CHUNK {
            start_writeback(out.get_ref(), self.flushed, in_file - self.flushed);
            self.flushed = in_file;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self.out.as_mut() {
            Some(o) => o.flush(),
            None => Ok(()),
        }
    }
}

/// Starts asynchronous writeback of `len` bytes at `offset` (`sync_file_range` with
/// `SYNC_FILE_RANGE_WRITE`: no waiting, no durability promise — the fsync in
/// [`BlobWriter::commit`] still provides that). Best effort: errors show up at that fsync.
fn start_writeback(file: &File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    let (Ok(off), Ok(len)) = (
        libc::off64_t::try_from(offset),
        libc::off64_t::try_from(len),
    ) else {
        return;
    };
    // libc: nix 0.29 has no sync_file_range.
    // SAFETY: `file` is an open descriptor for the whole call; the call only reads its args.
    let _ =
        unsafe { libc::sync_file_range(file.as_raw_fd(), off, len, libc::SYNC_FILE_RANGE_WRITE) };
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        drop(self.out.take());
        // After a successful rename the staging name no longer exists; ignore that.
        let _ = fs::remove_file(&self.tmp);
    }
}
