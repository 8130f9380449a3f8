//! Decoders for every compression rbuild reads (gzip with several members, bzip2, xz, zstd),
//! and telling a cut stream from a broken one when a decoder fails.

use std::io::{self, BufRead, BufReader, Read};

use crate::error::ArchiveError;
use crate::sniff::{sniff, ArchiveFormat};

/// Wraps `stream` (the archive's bytes from the start) in the decoder `format` needs, yielding
/// the plain tar stream (`Tar` passes `stream` through).
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

/// Wraps `reader` in the decoder its magic bytes call for ([`sniff`]), reading ahead through
/// a 256 KiB buffer.
pub fn decompress<'a>(reader: impl Read + 'a) -> io::Result<Box<dyn Read + 'a>> {
    let mut buffered = BufReader::with_capacity(256 * 1024, reader);
    // Files, pipes of tar streams and HTTP bodies all yield more than 6 bytes per first read.
    match sniff(buffered.fill_buf()?) {
        // The buffer is the decoder's input buffer: no second copy.
        ArchiveFormat::TarZstd => Ok(Box::new(zstd::stream::read::Decoder::with_buffer(
            buffered,
        )?)),
        format => decoder(format, buffered),
    }
}

/// Reads `rest` to its end (a tar's padding, a compressed stream's trailer, which makes the
/// decoder verify its checksum), returning how many bytes there were.
pub fn drain(mut rest: impl Read) -> Result<u64, ArchiveError> {
    io::copy(&mut rest, &mut io::sink()).map_err(|e| read_error(e, false))
}

/// The [`ArchiveError`] for a failed read of the archive stream: [`ArchiveError::Truncated`]
/// when the stream ended early (`eof_seen`, or a decoder saying so), else
/// [`ArchiveError::Read`].
pub(crate) fn read_error(e: io::Error, eof_seen: bool) -> ArchiveError {
    if eof_seen || is_unexpected_eof(&e) {
        ArchiveError::Truncated { detail: chain(&e) }
    } else {
        ArchiveError::Read { source: e }
    }
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
pub(crate) fn chain(e: &io::Error) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zstd_is_decompressed() {
        let z = zstd::encode_all(&b"hello"[..], 3).expect("zstd");
        let mut back = Vec::new();
        decompress(&z[..])
            .expect("decoder")
            .read_to_end(&mut back)
            .expect("read");
        assert_eq!(back, b"hello");
    }

    #[test]
    fn cut_streams_are_truncated() {
        let z = zstd::encode_all(&[7u8; 10_000][..], 3).expect("zstd");
        let cut = &z[..z.len() - 2];
        let err = drain(decompress(cut).expect("decoder")).expect_err("cut");
        assert!(matches!(err, ArchiveError::Truncated { .. }), "{err:?}");
        let err = read_error(io::Error::other("boom"), false);
        assert!(matches!(err, ArchiveError::Read { .. }), "{err:?}");
    }
}
