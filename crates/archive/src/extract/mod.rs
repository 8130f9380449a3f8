//! The one extraction engine: it reads a (decoded) tar stream entry by entry, sanitizes every
//! name and hard-link target once ([`crate::sanitize`]), classifies each entry (refusing
//! types it does not extract), applies PAX and GNU long names and PAX metadata, and hands
//! each [`Entry`] to a [`Sink`] that places it by its own rules: the image resolver for ADD
//! (`rbuild-solver`), whiteout conversion for layers (`rbuild-oci`), or a plain confined
//! directory ([`DirSink`]: build contexts, image archives).
//!
//! Invariants: a sink never sees an unsanitized name, an entry type outside [`EntryKind`], or
//! more data than the entry holds; a stream that ends inside an entry is
//! [`ArchiveError::Truncated`], whatever the sink made of the short read; the engine itself
//! never panics on any input (fuzzed: `crates/archive/fuzz`).

mod dir;
mod eof;
mod header;

use std::cell::Cell;
use std::io::Read;
use std::rc::Rc;

use rbuild_types::ByteString;

use crate::decode::read_error;
use crate::error::ArchiveError;
use crate::name::{EntryPath, NamePolicy};
use eof::{Contents, EofWatch};
use header::{classify, Classified};

pub use dir::{DirSink, DirSinkError};

/// What an entry is, with what its kind needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EntryKind {
    Dir,
    /// A regular file; its data is the `contents` handed to [`Sink::entry`].
    File,
    /// A symbolic link to `target` (any bytes but NUL, not empty; never sanitized: resolving
    /// it is the sink's business).
    Symlink {
        target: Vec<u8>,
    },
    /// A hard link to an earlier entry (sanitized like a name, never the root).
    HardLink {
        target: EntryPath,
    },
    CharDevice {
        major: u32,
        minor: u32,
    },
    BlockDevice {
        major: u32,
        minor: u32,
    },
    Fifo,
}

/// One entry, ready to place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The name as the archive spells it (for messages).
    pub name: ByteString,
    /// The sanitized name, never the root.
    pub path: EntryPath,
    pub kind: EntryKind,
    /// Permission bits with setuid, setgid and sticky (`& 0o7777`).
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    /// Seconds since the epoch (PAX fractions dropped).
    pub mtime: u64,
    /// Data size (0 but for regular files).
    pub size: u64,
    /// `SCHILY.xattr.*` PAX records, sorted by name.
    pub xattrs: Vec<(String, Vec<u8>)>,
}

/// A destination for extracted entries.
pub trait Sink {
    type Error;

    /// Places one entry. A regular file's data is read from `contents` (which ends after
    /// `entry.size` bytes); data left unread is skipped.
    fn entry(&mut self, entry: &Entry, contents: &mut dyn Read) -> Result<(), Self::Error>;

    /// Called once after the last entry (directory times, typically).
    fn finish(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// Why an extraction failed: the archive, or the sink.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError<E> {
    #[error(transparent)]
    Archive(ArchiveError),
    #[error(transparent)]
    Sink(E),
}

/// How the tar stream ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    /// At its end-of-archive marker (a zero block).
    Marker,
    /// The stream ran out at a header boundary without a marker (Go's reader accepts this;
    /// build contexts call it truncated).
    Eof,
}

/// A finished extraction: how the tar ended, and the stream positioned after it (to drain:
/// padding, a decoder's trailer, bytes still to hash).
#[derive(Debug)]
pub struct Extracted<R> {
    pub ended: Ended,
    pub rest: R,
}

/// Extracts every entry of the tar stream `reader` (already decoded) into `sink`, names read
/// under `policy`.
pub fn extract<R: Read, S: Sink>(
    reader: R,
    policy: NamePolicy,
    sink: &mut S,
) -> Result<Extracted<R>, ExtractError<S::Error>> {
    let eof = Rc::new(Cell::new(false));
    let mut archive = tar::Archive::new(EofWatch {
        inner: reader,
        eof: Rc::clone(&eof),
    });
    {
        let stream_err = |e| ExtractError::Archive(read_error(e, eof.get()));
        let entries = archive.entries().map_err(stream_err)?;
        for entry in entries {
            let mut entry = entry.map_err(stream_err)?;
            let entry_info = match classify(&mut entry, policy).map_err(ExtractError::Archive)? {
                Classified::Skip => continue,
                Classified::Entry(e) => e,
            };
            let mut contents = Contents {
                inner: &mut entry,
                left: entry_info.size,
                failed: None,
            };
            let placed = sink.entry(&entry_info, &mut contents);
            if let Some(e) = contents.failed.take() {
                return Err(ExtractError::Archive(cut_short(&entry_info, e)));
            }
            placed.map_err(ExtractError::Sink)?;
        }
    }
    sink.finish().map_err(ExtractError::Sink)?;
    Ok(Extracted {
        // The tar reader stops at the first zero block without reading further; reaching the
        // end of the stream first means the marker was missing.
        ended: if eof.get() { Ended::Eof } else { Ended::Marker },
        rest: archive.into_inner().inner,
    })
}

/// The error for an entry whose data could not be read.
fn cut_short(entry: &Entry, e: std::io::Error) -> ArchiveError {
    match read_error(e, false) {
        ArchiveError::Truncated { detail } => ArchiveError::Truncated {
            detail: format!(
                "entry {:?} ({} bytes) is cut short: {detail}",
                entry.name.lossy(),
                entry.size
            ),
        },
        other => other,
    }
}
