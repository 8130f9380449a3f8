//! Compression: detecting gzip/zstd/plain streams by their magic bytes, and compressing layers
//! with gzip in parallel (independent gzip members, concatenated — still one valid gzip stream).

use std::io::{self, BufRead, BufReader, Read, Write};

use flate2::write::GzEncoder;
use flate2::Compression as GzLevel;

/// How a blob is compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// Detects the compression of a stream from its first bytes.
pub fn detect(head: &[u8]) -> Compression {
    if head.starts_with(&GZIP_MAGIC) {
        Compression::Gzip
    } else if head.starts_with(&ZSTD_MAGIC) {
        Compression::Zstd
    } else {
        Compression::None
    }
}

/// Wraps `reader` in the decompressor its magic bytes call for (gzip with multiple members,
/// zstd, or none).
pub fn decompress<'a>(reader: impl Read + 'a) -> io::Result<Box<dyn Read + 'a>> {
    let mut buffered = BufReader::with_capacity(256 * 1024, reader);
    // Files, pipes of tar streams and HTTP bodies all yield more than 4 bytes per first read.
    let head = buffered.fill_buf()?.to_vec();
    Ok(match detect(&head) {
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(buffered)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(buffered)?),
        Compression::None => Box::new(buffered),
    })
}

/// Size of the chunks compressed independently by [`gzip_parallel`].
pub const GZIP_CHUNK: usize = 4 << 20;

/// Gzip-compresses all of `input` into `out`, compressing chunks of [`GZIP_CHUNK`] bytes on
/// several threads and writing them, in order, as concatenated gzip members. Returns the number
/// of uncompressed bytes read. Memory use is bounded by threads × chunk size × 2.
pub fn gzip_parallel(mut input: impl Read, mut out: impl Write) -> io::Result<u64> {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 8);
    let mut total = 0u64;
    loop {
        let mut chunks = Vec::with_capacity(threads);
        for _ in 0..threads {
            let mut chunk = Vec::with_capacity(GZIP_CHUNK);
            (&mut input)
                .take(GZIP_CHUNK as u64)
                .read_to_end(&mut chunk)?;
            if chunk.is_empty() {
                break;
            }
            total += chunk.len() as u64;
            chunks.push(chunk);
        }
        let last_round = chunks.len() < threads || chunks.last().map(Vec::len) != Some(GZIP_CHUNK);
        if chunks.is_empty() {
            if total == 0 {
                // Empty input still gets one (empty) gzip member.
                out.write_all(&gzip_chunk(&[])?)?;
            }
            break;
        }
        let compressed: Vec<io::Result<Vec<u8>>> = std::thread::scope(|s| {
            let handles: Vec<_> = chunks
                .iter()
                .map(|c| s.spawn(move || gzip_chunk(c)))
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(io::Error::other("gzip compression thread panicked"))
                    })
                })
                .collect()
        });
        for c in compressed {
            out.write_all(&c?)?;
        }
        if last_round {
            break;
        }
    }
    out.flush()?;
    Ok(total)
}

fn gzip_chunk(data: &[u8]) -> io::Result<Vec<u8>> {
    let mut enc = GzEncoder::new(Vec::with_capacity(data.len() / 3 + 64), GzLevel::fast());
    enc.write_all(data)?;
    enc.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_magic() {
        assert_eq!(detect(&[0x1f, 0x8b, 8]), Compression::Gzip);
        assert_eq!(detect(&ZSTD_MAGIC), Compression::Zstd);
        assert_eq!(detect(b"ustar"), Compression::None);
        assert_eq!(detect(b""), Compression::None);
    }

    #[test]
    fn parallel_gzip_round_trips_multi_member() {
        let data: Vec<u8> = (0..(GZIP_CHUNK * 3 + 123))
            .map(|i| (i % 251) as u8)
            .collect();
        let mut gz = Vec::new();
        assert_eq!(
            gzip_parallel(&data[..], &mut gz).unwrap(),
            data.len() as u64
        );
        let mut back = Vec::new();
        decompress(&gz[..]).unwrap().read_to_end(&mut back).unwrap();
        assert_eq!(back, data);
        let mut gz = Vec::new();
        gzip_parallel(&b""[..], &mut gz).unwrap();
        let mut back = Vec::new();
        decompress(&gz[..]).unwrap().read_to_end(&mut back).unwrap();
        assert!(back.is_empty());
    }

    #[test]
    fn zstd_is_decompressed() {
        let z = zstd::encode_all(&b"hello"[..], 3).unwrap();
        let mut back = Vec::new();
        decompress(&z[..]).unwrap().read_to_end(&mut back).unwrap();
        assert_eq!(back, b"hello");
    }
}
