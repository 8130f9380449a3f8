//! Build contexts from a tar archive (`rbuild - < ctx.tar[.gz|.bz2|.xz|.zst]`, or a downloaded
//! URL context), the format detected by magic bytes like Docker does. The archive is unpacked
//! into a private temporary directory, which then is an ordinary context directory — its own
//! `.dockerignore` applies — and lives as long as the [`BuildContext`]. Entries escaping the
//! root and truncated archives are errors, never skipped.

use std::io::{self, Cursor, Read};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::clean::{clean, clean_within_root};
use crate::context::BuildContext;
use crate::error::ContextError;

/// What a context stream holds when it is an archive.
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

/// Wraps `stream` (the archive's bytes from the start) in the decoder `format` needs, yielding
/// the plain tar stream (`Tar` passes `stream` through). Also used by ADD's archive unpacking.
pub fn decoder<'a, R: Read + 'a>(
    format: ArchiveFormat,
    stream: R,
) -> io::Result<Box<dyn Read + 'a>> {
    Ok(match format {
        ArchiveFormat::Tar => Box::new(stream),
        ArchiveFormat::TarGzip => Box::new(flate2::read::MultiGzDecoder::new(stream)),
        ArchiveFormat::TarBzip2 => Box::new(bzip2::read::MultiBzDecoder::new(stream)),
        ArchiveFormat::TarXz => Box::new(lzma_rust2::XzReader::new(stream, true)),
        ArchiveFormat::TarZstd => Box::new(zstd::stream::read::Decoder::new(stream)?),
    })
}

impl BuildContext {
    /// Reads a context archive (plain, gzip, bzip2, xz or zstd tar, detected by magic bytes)
    /// from `reader` and unpacks it into a temporary directory kept for the life of the
    /// context. `dockerfile` is the Dockerfile's path inside the archive (for
    /// `<name>.dockerignore`); when given, the archive must contain it
    /// ([`ContextError::MissingDockerfile`]).
    ///
    /// Rejected, never silently skipped: an archive that ends before its end-of-archive marker
    /// or inside a compressed stream ([`ContextError::ArchiveTruncated`]), and an entry whose
    /// path or hard-link target climbs out of the root, or that would be written through a
    /// symlink leading out of it ([`ContextError::ArchiveEntryEscapes`]).
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
        let decoded = decoder(format, stream).map_err(extract_err)?;
        let dir = tempfile::Builder::new()
            .prefix("rbuild-context-")
            .tempdir()
            .map_err(extract_err)?;
        unpack(decoded, dir.path(), format)?;
        let df = match dockerfile {
            Some(d) => {
                let path = dir.path().join(clean_within_root(d));
                if !path.is_file() {
                    return Err(ContextError::MissingDockerfile {
                        name: d.to_string(),
                        source_desc: format!("the {} context archive", format.name()),
                    });
                }
                Some(path)
            }
            None => None,
        };
        let ctx = BuildContext::from_dir(dir.path(), df.as_deref())?;
        Ok(ctx.keeping(Arc::new(dir)))
    }
}

/// Unpacks every entry of the (decoded) tar stream into `dest`, checking each entry's path.
fn unpack<'a>(
    decoded: Box<dyn Read + 'a>,
    dest: &Path,
    format: ArchiveFormat,
) -> Result<(), ContextError> {
    let eof = Arc::new(AtomicBool::new(false));
    let counted = EofFlag {
        inner: decoded,
        eof: Arc::clone(&eof),
    };
    let truncated = |e: io::Error| {
        if is_unexpected_eof(&e) {
            ContextError::ArchiveTruncated {
                format: format.name(),
                detail: chain(&e),
            }
        } else {
            ContextError::Archive { source: e }
        }
    };
    let mut archive = tar::Archive::new(counted);
    archive.set_preserve_permissions(true);
    archive.set_preserve_ownerships(is_root());
    archive.set_unpack_xattrs(false);
    archive.set_overwrite(true);
    for entry in archive.entries().map_err(truncated)? {
        let mut entry = entry.map_err(truncated)?;
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        if escapes_root(&name) {
            return Err(ContextError::ArchiveEntryEscapes {
                entry: name,
                detail: "its path climbs out of the context root".into(),
            });
        }
        if entry.header().entry_type().is_hard_link() {
            if let Some(target) = entry.link_name_bytes() {
                let target = String::from_utf8_lossy(&target).into_owned();
                if escapes_root(&target) {
                    return Err(ContextError::ArchiveEntryEscapes {
                        entry: name,
                        detail: format!("its hard-link target {target:?} is outside the context"),
                    });
                }
            }
        }
        let size = entry.header().entry_size().unwrap_or(0);
        match entry.unpack_in(dest) {
            Ok(true) => {}
            Ok(false) => {
                return Err(ContextError::ArchiveEntryEscapes {
                    entry: name,
                    detail: "it would be written outside the context root".into(),
                })
            }
            Err(e) if eof.load(Ordering::Relaxed) || is_unexpected_eof(&e) => {
                return Err(ContextError::ArchiveTruncated {
                    format: format.name(),
                    detail: format!("entry {name:?} ({size} bytes) is cut short: {}", chain(&e)),
                })
            }
            Err(e) if chain(&e).contains("outside of") => {
                return Err(ContextError::ArchiveEntryEscapes {
                    entry: name,
                    detail: chain(&e),
                })
            }
            Err(e) => return Err(ContextError::Archive { source: e }),
        }
    }
    // The tar reader stops at the first zero block of the end-of-archive marker without
    // reading further; reaching the end of the stream first means the archive was cut.
    if eof.load(Ordering::Relaxed) {
        return Err(ContextError::ArchiveTruncated {
            format: format.name(),
            detail: "the stream ended before the end-of-archive marker".into(),
        });
    }
    // Read the rest (padding, a compressed stream's trailer) so the decoder verifies its
    // checksum and notices a stream cut after the last entry.
    let mut rest = archive.into_inner();
    io::copy(&mut rest, &mut io::sink()).map_err(truncated)?;
    Ok(())
}

/// Whether `e` or an error it wraps is an unexpected end of stream (a decoder or the tar
/// reader ran out of input), possibly spelled out only in a decoder's message.
fn is_unexpected_eof(e: &io::Error) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<io::Error>() {
            if io.kind() == io::ErrorKind::UnexpectedEof {
                return true;
            }
        }
        let text = err.to_string().to_ascii_lowercase();
        if text.contains("unexpected end")
            || text.contains("unexpected eof")
            || text.contains("incomplete")
        {
            return true;
        }
        cur = err.source();
    }
    false
}

/// The messages of `e` and every error below it, joined by `: ` (the tar crate's own message
/// hides its cause).
fn chain(e: &io::Error) -> String {
    let mut out = e.to_string();
    let mut cur = std::error::Error::source(e);
    if cur.is_none() {
        // io::Error::new(kind, inner) shows inner's message but has no source; get_ref reaches it.
        cur = e.get_ref().and_then(|inner| inner.source());
    }
    while let Some(err) = cur {
        out.push_str(": ");
        out.push_str(&err.to_string());
        cur = err.source();
    }
    out
}

/// Whether an archive entry name leaves the root (a leading `/` is dropped, as Docker does).
fn escapes_root(name: &str) -> bool {
    let cleaned = clean(name.trim_start_matches('/'));
    cleaned == ".." || cleaned.starts_with("../")
}

/// A reader that remembers whether its inner reader ever reported end of stream.
struct EofFlag<'a> {
    inner: Box<dyn Read + 'a>,
    eof: Arc<AtomicBool>,
}

impl Read for EofFlag<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.eof.store(true, Ordering::Relaxed);
        }
        Ok(n)
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
            detect_archive(&[0xfd, b'7', b'z', b'X', b'Z', 0, 0]),
            Some(ArchiveFormat::TarXz)
        );
        assert_eq!(
            detect_archive(&[0x28, 0xb5, 0x2f, 0xfd, 0]),
            Some(ArchiveFormat::TarZstd)
        );
        assert!(escapes_root("../x"));
        assert!(escapes_root("a/../../x"));
        assert!(!escapes_root("/etc/passwd"), "a leading / is dropped");
        assert!(!escapes_root("a/../b"));
        let mut tar = vec![0u8; 512];
        tar[257..263].copy_from_slice(b"ustar\0");
        assert_eq!(detect_archive(&tar), Some(ArchiveFormat::Tar));
    }
}
