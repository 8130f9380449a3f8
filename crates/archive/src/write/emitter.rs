//! [`TarEmitter`]: writes tar entries for files on the host, one at a time, keeping hardlinks
//! within the stream as hardlink entries, and computes the digest of the uncompressed stream.
//!
//! Invariant: the caller emits entries in a deterministic order with parents before children;
//! the emitter adds nothing that depends on the host besides the file's own metadata (numeric
//! uid/gid, mode, mtime clamped, the xattrs the caller hands it, contents).

use std::collections::HashMap;
use std::fs::{File, Metadata};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use rbuild_types::Digest;

use super::header::{encode, padding, EntryHeader, Kind};
use crate::digest_io::HashingWriter;
use crate::error::WriteError;

/// Digest and size of an **uncompressed** tar stream (a layer's diff_id).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LayerDigest {
    pub diff_id: Digest,
    pub size: u64,
}

impl LayerDigest {
    /// True for a tar with no entries (just the two zero end-of-archive blocks).
    pub fn is_empty_tar(&self) -> bool {
        self.size == 1024 && self.diff_id == Digest::of(&[0u8; 1024])
    }
}

/// Extended attributes of one file, sorted by name.
pub type Xattrs = Vec<(String, Vec<u8>)>;

/// Streams tar entries into a writer while hashing them.
pub struct TarEmitter<W: Write> {
    out: HashingWriter<W>,
    /// (dev, ino) of regular files already written → their entry name.
    links: HashMap<(u64, u64), Vec<u8>>,
    mtime_clamp: Option<u64>,
    entries: u64,
    /// Reused read buffer: a file's contents move in reads of up to this size, and a file no
    /// larger than it takes one read (its size is known, so no read for end-of-file).
    buf: Vec<u8>,
}

/// Where a regular file's bytes come from when its entry is written.
#[derive(Debug)]
pub enum FileBytes {
    /// Read from the open file, at most the size its metadata gave.
    Open(File),
    /// Already read whole by the caller (a walker reading ahead of the stream).
    Loaded(Vec<u8>),
}

/// What an entry's data is padded with (less than one 512-byte block).
const ZEROS: [u8; 512] = [0; 512];

/// Size of [`TarEmitter`]'s read buffer.
const READ_BUF: usize = 256 * 1024;

/// Which side of a file's copy into the stream failed.
enum Copy {
    Read(io::Error),
    Write(io::Error),
}

fn stream_err(source: io::Error) -> WriteError {
    WriteError::Stream { source }
}

impl<W: Write> TarEmitter<W> {
    /// A new stream; mtimes later than `mtime_clamp` (SOURCE_DATE_EPOCH) are lowered to it.
    pub fn new(out: W, mtime_clamp: Option<u64>) -> Self {
        TarEmitter {
            out: HashingWriter::new(out),
            links: HashMap::new(),
            mtime_clamp,
            entries: 0,
            buf: Vec::new(),
        }
    }

    /// Number of entries written so far.
    pub fn entries(&self) -> u64 {
        self.entries
    }

    fn mtime(&self, meta: &Metadata) -> u64 {
        let t = u64::try_from(meta.mtime()).unwrap_or(0);
        match self.mtime_clamp {
            Some(c) => t.min(c),
            None => t,
        }
    }

    fn base_header(&self, name: Vec<u8>, kind: Kind, meta: &Metadata) -> EntryHeader {
        EntryHeader {
            name,
            link: Vec::new(),
            kind,
            mode: meta.mode() & 0o7777,
            uid: u64::from(meta.uid()),
            gid: u64::from(meta.gid()),
            size: 0,
            mtime: self.mtime(meta),
            dev_major: 0,
            dev_minor: 0,
            xattrs: Vec::new(),
        }
    }

    fn write_header(&mut self, h: &EntryHeader) -> Result<(), WriteError> {
        self.out.write_all(&encode(h)).map_err(stream_err)?;
        self.entries += 1;
        Ok(())
    }

    /// Writes the entry for host file `host` (metadata `meta`, from lstat; extended
    /// attributes `xattrs`, sorted by name) under the name `rel` (relative, no leading or
    /// trailing slash). Directories get a trailing `/`. Sockets are left out (tar cannot
    /// represent them), as Docker does; a hard link to a file already written carries no
    /// xattrs (it shares them).
    pub fn emit(
        &mut self,
        rel: &[u8],
        host: &Path,
        meta: &Metadata,
        xattrs: Xattrs,
    ) -> Result<(), WriteError> {
        let ft = meta.file_type();
        if ft.is_dir() {
            let mut name = rel.to_vec();
            name.push(b'/');
            let mut h = self.base_header(name, Kind::Dir, meta);
            h.xattrs = xattrs;
            return self.write_header(&h);
        }
        if ft.is_symlink() {
            let target = std::fs::read_link(host).map_err(WriteError::io("read symlink", host))?;
            let mut h = self.base_header(rel.to_vec(), Kind::Symlink, meta);
            h.link = target.as_os_str().as_bytes().to_vec();
            h.xattrs = xattrs;
            return self.write_header(&h);
        }
        if ft.is_char_device() || ft.is_block_device() || ft.is_fifo() {
            let kind = if ft.is_char_device() {
                Kind::Char
            } else if ft.is_block_device() {
                Kind::Block
            } else {
                Kind::Fifo
            };
            let mut h = self.base_header(rel.to_vec(), kind, meta);
            if kind != Kind::Fifo {
                let rdev = meta.rdev();
                // libc's (safe) glibc encoding: nix 0.29 has makedev but no major/minor.
                h.dev_major = u64::from(libc::major(rdev));
                h.dev_minor = u64::from(libc::minor(rdev));
            }
            h.xattrs = xattrs;
            return self.write_header(&h);
        }
        if ft.is_socket() {
            // Tar cannot hold sockets; like Docker, a layer leaves them out.
            return Ok(());
        }
        if !ft.is_file() {
            return Err(WriteError::UnsupportedFile {
                path: host.to_path_buf(),
            });
        }
        self.emit_file(rel, host, meta, xattrs, || {
            File::open(host).map(FileBytes::Open)
        })
    }

    /// [`TarEmitter::emit`] of regular file `host`, opened by `open` only if its bytes go
    /// into the stream (not for a hard link to a file already written): a caller that opens
    /// files relative to their directory spares the whole path's lookup.
    pub fn emit_file(
        &mut self,
        rel: &[u8],
        host: &Path,
        meta: &Metadata,
        xattrs: Xattrs,
        open: impl FnOnce() -> io::Result<FileBytes>,
    ) -> Result<(), WriteError> {
        if meta.nlink() > 1 {
            let key = (meta.dev(), meta.ino());
            if let Some(first) = self.links.get(&key).cloned() {
                let mut h = self.base_header(rel.to_vec(), Kind::HardLink, meta);
                h.link = first;
                return self.write_header(&h);
            }
            self.links.insert(key, rel.to_vec());
        }
        let mut h = self.base_header(rel.to_vec(), Kind::File, meta);
        h.size = meta.len();
        h.xattrs = xattrs;
        self.write_header(&h)?;
        let copied = match open().map_err(WriteError::io("open", host))? {
            FileBytes::Open(file) => self.copy_contents(file, h.size),
            FileBytes::Loaded(bytes) => self.write_loaded(&bytes, h.size),
        };
        let copied = copied.map_err(|e| match e {
            Copy::Read(source) => WriteError::io("read", host)(source),
            // The stream failed (e.g. its disk is full), not the file being read.
            Copy::Write(source) => stream_err(source),
        })?;
        if copied != h.size {
            return Err(WriteError::io("read", host)(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "file shrank from {} to {copied} bytes while being archived",
                    h.size
                ),
            )));
        }
        self.out
            .write_all(&ZEROS[..padding(h.size)])
            .map_err(stream_err)
    }

    /// Copies up to `size` bytes of `file` into the stream; returns how many there were.
    fn copy_contents(&mut self, mut file: File, size: u64) -> Result<u64, Copy> {
        if self.buf.is_empty() {
            self.buf = vec![0u8; READ_BUF];
        }
        let mut copied = 0u64;
        while copied < size {
            let want = usize::try_from(size - copied).map_or(READ_BUF, |r| r.min(READ_BUF));
            let n = match file.read(&mut self.buf[..want]) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Copy::Read(e)),
            };
            self.out.write_all(&self.buf[..n]).map_err(Copy::Write)?;
            copied += n as u64;
        }
        Ok(copied)
    }

    /// Writes up to `size` bytes of a file read whole; returns how many there were.
    fn write_loaded(&mut self, bytes: &[u8], size: u64) -> Result<u64, Copy> {
        let n = usize::try_from(size).map_or(bytes.len(), |s| s.min(bytes.len()));
        self.out.write_all(&bytes[..n]).map_err(Copy::Write)?;
        Ok(n as u64)
    }

    /// Writes an empty regular file named `name` (a `.wh.` whiteout or opaque marker), with
    /// ownership and mtime from `meta` and mode 0.
    pub fn emit_marker(&mut self, name: &[u8], meta: &Metadata) -> Result<(), WriteError> {
        let mut h = self.base_header(name.to_vec(), Kind::File, meta);
        h.mode = 0;
        self.write_header(&h)
    }

    /// Writes a regular file `name` holding `data`, owned by 0:0 with permissions `mode`,
    /// modified at `mtime` (not clamped): a file the writer makes rather than reads from the
    /// host (an attestation statement in a root filesystem tar).
    pub fn emit_bytes(
        &mut self,
        name: &[u8],
        data: &[u8],
        mode: u32,
        mtime: u64,
    ) -> Result<(), WriteError> {
        let h = EntryHeader {
            name: name.to_vec(),
            link: Vec::new(),
            kind: Kind::File,
            mode: mode & 0o7777,
            uid: 0,
            gid: 0,
            size: data.len() as u64,
            mtime,
            dev_major: 0,
            dev_minor: 0,
            xattrs: Vec::new(),
        };
        self.write_header(&h)?;
        self.out.write_all(data).map_err(stream_err)?;
        self.out
            .write_all(&ZEROS[..padding(h.size)])
            .map_err(stream_err)
    }

    /// Ends the archive (two zero blocks) and returns the digest and size of the whole stream.
    pub fn finish(mut self) -> Result<(LayerDigest, W), WriteError> {
        self.out.write_all(&[0u8; 1024]).map_err(stream_err)?;
        self.out.flush().map_err(stream_err)?;
        let (diff_id, size, inner) = self.out.finish();
        Ok((LayerDigest { diff_id, size }, inner))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An octal field of a ustar header.
    fn octal(field: &[u8]) -> u64 {
        let text = String::from_utf8_lossy(field);
        u64::from_str_radix(text.trim_matches(|c: char| c == '\0' || c == ' '), 8).unwrap()
    }

    #[test]
    fn bytes_are_a_regular_file_of_root_with_the_given_mode_and_time() {
        let mut emitter = TarEmitter::new(Vec::new(), Some(5));
        emitter
            .emit_bytes(b"provenance.json", b"{}\n", 0o600, 1_700_000_000)
            .unwrap();
        let (_, tar) = emitter.finish().unwrap();
        let h = &tar[..512];
        assert!(h.starts_with(b"provenance.json\0"));
        assert_eq!(octal(&h[100..108]), 0o600);
        assert_eq!((octal(&h[108..116]), octal(&h[116..124])), (0, 0));
        assert_eq!(octal(&h[124..136]), 3);
        // Given, so not clamped.
        assert_eq!(octal(&h[136..148]), 1_700_000_000);
        assert_eq!(h[156], b'0');
        assert_eq!(&tar[512..515], b"{}\n");
        assert_eq!(tar.len(), 512 + 512 + 1024);
    }
}
