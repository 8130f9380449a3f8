//! The one compression sniffer: what a stream is, from its first bytes (never its name), as
//! Docker's `DetectCompression` tells it. ADD, build contexts, layer import and `load` all ask
//! here.

use std::io::{self, Cursor, Read};

use crate::decode::decoder;

/// What a stream holds: a tar, plain or compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveFormat {
    Tar,
    TarGzip,
    TarBzip2,
    TarXz,
    TarZstd,
}

impl ArchiveFormat {
    /// A short name for messages (`tar`, `gzip`, `bzip2`, `xz`, `zstd`).
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

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const BZIP2_MAGIC: &[u8] = b"BZh";
const XZ_MAGIC: &[u8] = &[0xfd, b'7', b'z', b'X', b'Z', 0x00];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];

/// The compression `head` (a stream's first bytes) announces; `Tar` when it announces none.
pub fn sniff(head: &[u8]) -> ArchiveFormat {
    if head.starts_with(GZIP_MAGIC) {
        ArchiveFormat::TarGzip
    } else if head.starts_with(BZIP2_MAGIC) {
        ArchiveFormat::TarBzip2
    } else if head.starts_with(XZ_MAGIC) {
        ArchiveFormat::TarXz
    } else if head.starts_with(ZSTD_MAGIC) {
        ArchiveFormat::TarZstd
    } else {
        ArchiveFormat::Tar
    }
}

/// Whether `head` starts with a ustar (POSIX or GNU) header: `ustar` at offset 257.
pub fn is_ustar(head: &[u8]) -> bool {
    head.get(257..262) == Some(b"ustar".as_slice())
}

/// The archive format of a stream starting with `head` (give at least 512 bytes when the
/// stream has them), or `None` when it is neither compressed nor a ustar tar (a build
/// context stream is then a Dockerfile).
pub fn detect_archive(head: &[u8]) -> Option<ArchiveFormat> {
    match sniff(head) {
        ArchiveFormat::Tar if !is_ustar(head) => None,
        format => Some(format),
    }
}

/// Whether `block` is one 512-byte tar header with a correct checksum (what Go's
/// `tar.Reader.Next` needs to succeed: Docker's test for "is an archive").
pub fn valid_header(block: &[u8]) -> bool {
    if block.len() != 512 {
        return false;
    }
    let field = &block[148..156];
    let digits = field.iter().take_while(|&&b| b != 0);
    let text: String = digits.map(|&b| char::from(b)).collect();
    let Ok(stored) = u32::from_str_radix(text.trim(), 8) else {
        return false;
    };
    let sum: u32 = block
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u32::from(b)
            }
        })
        .sum();
    sum == stored
}

/// ADD's question, "is this file an archive?": reads the start of `reader`, and when it is a
/// tar (plain with ustar magic, or compressed) whose first decoded block is a valid header,
/// returns the decoded tar stream from its start. `None` (the file is copied as it is) for
/// anything else, a decoder that cannot start included.
pub fn probe_tar<'a, R: Read + 'a>(mut reader: R) -> io::Result<Option<Box<dyn Read + 'a>>> {
    let mut head = Vec::with_capacity(512);
    (&mut reader).take(512).read_to_end(&mut head)?;
    let Some(format) = detect_archive(&head) else {
        return Ok(None);
    };
    let Ok(mut decoded) = decoder(format, Cursor::new(head).chain(reader)) else {
        return Ok(None);
    };
    let mut block = Vec::with_capacity(512);
    if (&mut decoded).take(512).read_to_end(&mut block).is_err() || !valid_header(&block) {
        return Ok(None);
    }
    Ok(Some(Box::new(Cursor::new(block).chain(decoded))))
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
        let mut tar = vec![0u8; 512];
        tar[257..263].copy_from_slice(b"ustar\0");
        assert_eq!(detect_archive(&tar), Some(ArchiveFormat::Tar));
        assert_eq!(sniff(b""), ArchiveFormat::Tar);
        assert_eq!(sniff(b"ustar"), ArchiveFormat::Tar);
    }

    #[test]
    fn headers() {
        assert!(!valid_header(&[0u8; 512]));
        assert!(!valid_header(b"hello"));
        let mut h = tar::Header::new_ustar();
        assert!(h.set_path("a").is_ok());
        h.set_size(0);
        h.set_cksum();
        assert!(valid_header(h.as_bytes()));
    }

    #[test]
    fn probing() {
        let mut h = tar::Header::new_ustar();
        assert!(h.set_path("a").is_ok());
        h.set_size(0);
        h.set_cksum();
        let mut tar = h.as_bytes().to_vec();
        tar.extend_from_slice(&[0u8; 1024]);
        let mut back = Vec::new();
        let probed = probe_tar(&tar[..]).expect("probe");
        probed.expect("a tar").read_to_end(&mut back).expect("read");
        assert_eq!(back, tar);
        assert!(probe_tar(&b"just text"[..]).expect("probe").is_none());
        assert!(probe_tar(&[0x1f, 0x8b, 0, 0][..]).expect("probe").is_none());
    }
}
