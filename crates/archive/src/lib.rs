//! rbuild-archive: the one home of tar and compression (invariant: no other crate reads or
//! writes a tar or a compressed stream).
//!
//! - Reading: [`sniff`] / [`detect_archive`] (the one compression sniffer, by magic bytes),
//!   [`decoder`] / [`decompress`] (gzip, bzip2, xz, zstd), [`probe_tar`] (ADD's "is this an
//!   archive?"), and [`extract`]: the one extraction engine, with the one name sanitizer
//!   ([`sanitize`]), handing each [`Entry`] to a [`Sink`] — the destination's own placement
//!   rules. [`DirSink`] is the plain confined directory (build contexts, image archives);
//!   ADD's sink lives in `rbuild-solver`, the layer sink (whiteouts) in `rbuild-oci`.
//! - Writing: [`TarEmitter`] (deterministic layer tars, their digest computed on the way),
//!   [`ArchiveWriter`] (fixed-header tars of image archives), [`compress`] (parallel gzip and
//!   zstd for layers leaving the store).
//! - [`digest_io`]: readers and writers that hash what passes through them.
//! - `testutil` (feature `test-util`): building hostile tars and reading tars back, for the
//!   tests of other crates.
//!
//! Names are bytes everywhere (invariant 10); nothing here prints; no input makes it panic
//! (the extractor is fuzzed: `crates/archive/fuzz`).

pub mod compress;
mod decode;
pub mod digest_io;
mod error;
mod extract;
mod name;
mod sniff;
#[cfg(feature = "test-util")]
pub mod testutil;
mod write;

pub use compress::{CompressSettings, Compression};
pub use decode::{decoder, decompress, drain};
pub use error::{ArchiveError, NameError, PathError, WriteError};
pub use extract::{
    extract, DirSink, DirSinkError, Ended, Entry, EntryKind, ExtractError, Extracted, Sink,
};
pub use name::{sanitize, EntryPath, NamePolicy};
pub use sniff::{detect_archive, is_ustar, probe_tar, sniff, valid_header, ArchiveFormat};
pub use write::{ArchiveWriter, FileBytes, LayerDigest, TarEmitter, Xattrs};
