//! Build contexts from a tar archive on stdin (`rbuild - < ctx.tar[.gz|.zst]`), the format
//! detected by magic bytes like Docker does. The archive is unpacked into a private temporary
//! directory (entries that would land outside it are skipped by the `tar` crate), which then
//! is an ordinary context directory — its own `.dockerignore` applies — and lives as long as
//! the [`BuildContext`].

use std::io::{self, Cursor, Read};
use std::sync::Arc;

use crate::clean::clean_within_root;
use crate::context::BuildContext;
use crate::error::ContextError;

/// What stdin holds when it is an archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveFormat {
    Tar,
    TarGzip,
    TarBzip2,
    TarXz,
    TarZstd,
}

impl ArchiveFormat {
    /// A short name for messages.
    pub fn name(self) -> &'static str {
        match self {
            ArchiveFormat::Tar => "tar",
            ArchiveFormat::TarGzip => "gzip",
            ArchiveFormat::TarBzip2 => "bzip2",
            ArchiveFormat::TarXz => "xz",
            ArchiveFormat::TarZstd => "zstd",
        }
    }
}

/// The archive format of a stream starting with `head` (give at least 512 bytes when the
/// stream has them), or `None` when it is not an archive (then it is a Dockerfile).
pub fn detect_archive(head: &[u8]) -> Option<ArchiveFormat> {
    if head.starts_with(&[0x1f, 0x8b]) {
        Some(ArchiveFormat::TarGzip)
    } else if head.starts_with(b"BZh") {
        Some(ArchiveFormat::TarBzip2)
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
        Some(ArchiveFormat::TarXz)
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Some(ArchiveFormat::TarZstd)
    } else if head.get(257..262) == Some(b"ustar".as_slice()) {
        Some(ArchiveFormat::Tar)
    } else {
        None
    }
}

impl BuildContext {
    /// Reads a context archive (plain, gzip or zstd tar) from `reader` and unpacks it into a
    /// temporary directory kept for the life of the context. `dockerfile` is the Dockerfile's
    /// path inside the archive (for `<name>.dockerignore`). bzip2 and xz are detected but not
    /// supported ([`ContextError::UnsupportedCompression`]).
    pub fn from_tar<R: Read>(
        mut reader: R,
        dockerfile: Option<&str>,
    ) -> Result<BuildContext, ContextError> {
        let extract_err = |source: io::Error| ContextError::Archive { source };
        let mut head = Vec::with_capacity(512);
        (&mut reader)
            .take(512)
            .read_to_end(&mut head)
            .map_err(extract_err)?;
        let format = detect_archive(&head).unwrap_or(ArchiveFormat::Tar);
        let stream = Cursor::new(head).chain(reader);
        let decoded: Box<dyn Read> = match format {
            ArchiveFormat::Tar => Box::new(stream),
            ArchiveFormat::TarGzip => Box::new(flate2::read::MultiGzDecoder::new(stream)),
            ArchiveFormat::TarZstd => {
                Box::new(zstd::stream::read::Decoder::new(stream).map_err(extract_err)?)
            }
            ArchiveFormat::TarBzip2 | ArchiveFormat::TarXz => {
                return Err(ContextError::UnsupportedCompression {
                    format: format.name(),
                })
            }
        };
        let dir = tempfile::Builder::new()
            .prefix("rbuild-context-")
            .tempdir()
            .map_err(extract_err)?;
        let mut archive = tar::Archive::new(decoded);
        archive.set_preserve_permissions(true);
        archive.set_preserve_ownerships(is_root());
        archive.set_unpack_xattrs(false);
        archive.set_overwrite(true);
        archive.unpack(dir.path()).map_err(extract_err)?;
        let df = dockerfile.map(|d| dir.path().join(clean_within_root(d)));
        let ctx = BuildContext::from_dir(dir.path(), df.as_deref())?;
        Ok(ctx.keeping(Arc::new(dir)))
    }
}

/// Whether we run as root (only root can give unpacked files the archive's owners).
/// `/proc/self` is owned by the process's effective uid (proc(5)); unknown means "no".
fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_bytes() {
        assert_eq!(detect_archive(b"FROM busybox\n"), None);
        assert_eq!(
            detect_archive(&[0x1f, 0x8b, 8, 0]),
            Some(ArchiveFormat::TarGzip)
        );
        assert_eq!(detect_archive(b"BZh91AY"), Some(ArchiveFormat::TarBzip2));
        assert_eq!(
            detect_archive(&[0x28, 0xb5, 0x2f, 0xfd, 0]),
            Some(ArchiveFormat::TarZstd)
        );
        let mut tar = vec![0u8; 512];
        tar[257..263].copy_from_slice(b"ustar\0");
        assert_eq!(detect_archive(&tar), Some(ArchiveFormat::Tar));
    }
}
