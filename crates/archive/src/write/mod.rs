//! Writing tars: [`TarEmitter`] streams deterministic layer tars (ustar headers, PAX records
//! only where needed, hard links kept, the stream's digest computed on the way), and
//! [`ArchiveWriter`] writes the fixed-header tars of image archives.

mod emitter;
mod files;
mod header;

pub use emitter::{FileBytes, LayerDigest, TarEmitter, Xattrs};
pub use files::ArchiveWriter;
