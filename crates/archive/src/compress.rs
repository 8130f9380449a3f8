//! Compressing what rbuild writes (layers leaving the store): gzip or zstd in parallel —
//! independent gzip members or zstd frames, concatenated, still one valid stream.

use std::io::{self, Read, Write};
use std::sync::mpsc::sync_channel;

use flate2::write::GzEncoder;
use flate2::Compression as GzLevel;

use crate::sniff::ArchiveFormat;

/// How a blob rbuild writes (or an image layer) is compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    /// The compression of a stream in `format`, if it is one a layer can have (bzip2 and xz
    /// are read in ADD and build contexts only).
    pub fn of(format: ArchiveFormat) -> Option<Compression> {
        match format {
            ArchiveFormat::Tar => Some(Compression::None),
            ArchiveFormat::TarGzip => Some(Compression::Gzip),
            ArchiveFormat::TarZstd => Some(Compression::Zstd),
            ArchiveFormat::TarBzip2 | ArchiveFormat::TarXz => None,
        }
    }
}

/// Size of the chunks compressed independently by [`compress_parallel`].
pub const GZIP_CHUNK: usize = 4 << 20;

/// How a layer is compressed for output: the algorithm, its level (`None`: rbuild's default,
/// gzip 1 / zstd 3) and how many threads may compress at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CompressSettings {
    pub compression: Compression,
    pub level: Option<i32>,
    /// Threads to use; 0 means the number of CPUs (at most 8).
    pub threads: usize,
}

impl CompressSettings {
    /// `compression` at its default level on every CPU.
    pub fn new(compression: Compression) -> Self {
        CompressSettings {
            compression,
            level: None,
            threads: 0,
        }
    }
}

/// The number of CPUs, 1 to 8.
pub fn default_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 8)
}

/// Gzip-compresses all of `input` into `out` at rbuild's default level on every CPU (see
/// [`compress_parallel`]). Returns the number of uncompressed bytes read.
pub fn gzip_parallel(input: impl Read, out: impl Write) -> io::Result<u64> {
    compress_parallel(input, out, &CompressSettings::new(Compression::Gzip))
}

/// Compresses all of `input` into `out`: chunks of [`GZIP_CHUNK`] bytes are compressed on
/// several threads into independent gzip members or zstd frames, written in order — still
/// one valid gzip (multi-member) or zstd (multi-frame) stream. The output depends only on the
/// input and the level, never on the thread count. `Compression::None` copies. Returns the
/// number of uncompressed bytes read.
///
/// Pipelined: this thread reads the next chunks and writes finished ones while the workers
/// compress. Chunk `i` goes to worker `i % threads`, so each worker's results come back in
/// order. At most 2 × threads chunks are in flight: memory is bounded by about
/// 4 × threads × chunk size whatever the input size.
pub fn compress_parallel(
    mut input: impl Read,
    mut out: impl Write,
    settings: &CompressSettings,
) -> io::Result<u64> {
    if settings.compression == Compression::None {
        let n = io::copy(&mut input, &mut out)?;
        out.flush()?;
        return Ok(n);
    }
    let threads = match settings.threads {
        0 => default_threads(),
        n => n,
    };
    let settings = *settings;
    let total = std::thread::scope(|s| -> io::Result<u64> {
        let mut to_workers = Vec::with_capacity(threads);
        let mut from_workers = Vec::with_capacity(threads);
        for _ in 0..threads {
            let (tx_in, rx_in) = sync_channel::<Vec<u8>>(1);
            let (tx_out, rx_out) = sync_channel::<io::Result<Vec<u8>>>(1);
            s.spawn(move || {
                for chunk in rx_in {
                    if tx_out.send(compress_chunk(&chunk, &settings)).is_err() {
                        return;
                    }
                }
            });
            to_workers.push(tx_in);
            from_workers.push(rx_out);
        }
        let worker_gone = || io::Error::other("compression worker stopped");
        let (mut sent, mut written, mut total) = (0usize, 0usize, 0u64);
        let write_next = |written: &mut usize, out: &mut dyn Write| -> io::Result<()> {
            let compressed = from_workers[*written % threads]
                .recv()
                .map_err(|_| worker_gone())??;
            out.write_all(&compressed)?;
            *written += 1;
            Ok(())
        };
        loop {
            let mut chunk = Vec::with_capacity(GZIP_CHUNK);
            (&mut input)
                .take(GZIP_CHUNK as u64)
                .read_to_end(&mut chunk)?;
            // Empty input still gets one (empty) member or frame.
            if chunk.is_empty() && sent > 0 {
                break;
            }
            let last = chunk.len() < GZIP_CHUNK;
            total += chunk.len() as u64;
            if sent - written >= 2 * threads {
                write_next(&mut written, &mut out)?;
            }
            to_workers[sent % threads]
                .send(chunk)
                .map_err(|_| worker_gone())?;
            sent += 1;
            if last {
                break;
            }
        }
        drop(to_workers);
        while written < sent {
            write_next(&mut written, &mut out)?;
        }
        Ok(total)
    })?;
    out.flush()?;
    Ok(total)
}

fn compress_chunk(data: &[u8], settings: &CompressSettings) -> io::Result<Vec<u8>> {
    match settings.compression {
        Compression::Zstd => zstd::bulk::compress(data, settings.level.unwrap_or(3)),
        _ => {
            let level = settings.level.unwrap_or(1).clamp(0, 9) as u32;
            let mut enc =
                GzEncoder::new(Vec::with_capacity(data.len() / 3 + 64), GzLevel::new(level));
            enc.write_all(data)?;
            enc.finish()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::decompress;
    use crate::sniff::sniff;

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
    fn parallel_output_does_not_depend_on_threads_and_zstd_round_trips() {
        let data: Vec<u8> = (0..(GZIP_CHUNK * 2 + 7)).map(|i| (i % 7) as u8).collect();
        for compression in [Compression::Gzip, Compression::Zstd, Compression::None] {
            let mut outs = Vec::new();
            for threads in [1, 3] {
                let settings = CompressSettings {
                    compression,
                    level: Some(2),
                    threads,
                };
                let mut out = Vec::new();
                compress_parallel(&data[..], &mut out, &settings).unwrap();
                assert_eq!(Compression::of(sniff(&out)), Some(compression));
                let mut back = Vec::new();
                decompress(&out[..])
                    .unwrap()
                    .read_to_end(&mut back)
                    .unwrap();
                assert_eq!(back, data);
                outs.push(out);
            }
            assert_eq!(outs[0], outs[1], "{compression:?}");
        }
    }
}
