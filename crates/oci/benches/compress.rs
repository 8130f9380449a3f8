//! Layer compression throughput: a B3-like ~280 MB layer (mixed content: a third random bytes
//! like B3's files, a third text, a third sparse binary) streamed from a file through
//! `compress_parallel` on 1 thread and on every CPU, for gzip and zstd at rbuild's default
//! levels. Prints MB/s (of uncompressed input), the multi-thread/single-thread ratio of the
//! same backend in the same run, and the process's peak RSS (bounded by a few chunks
//! whatever the layer size).
//!
//! `cargo bench -p rbuild-oci --bench compress` (`RBUILD_BENCH_MB=N` for another size).

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::time::Instant;

use rbuild_oci::compress::{compress_parallel, default_threads, CompressSettings, Compression};

/// xorshift64*: deterministic filler without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

const WORDS: &[&str] = &[
    "function", "return", "const", "import", "export", "class", "self", "value", "data", "the",
    "layer", "image", "build", "let", "if", "else", "for", "while", "{", "}", "(", ")", ";", "\n",
    "    ", "=", "==", "0", "1", "42", "name", "config", "error", "result", "async",
];

/// Writes `mb` megabytes of mixed content in 64 KiB pieces (never holding more).
fn generate(path: &std::path::Path, mb: usize) -> std::io::Result<()> {
    let mut out = BufWriter::new(File::create(path)?);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut piece = Vec::with_capacity(64 * 1024);
    for i in 0..mb * 16 {
        piece.clear();
        match i % 3 {
            0 => {
                while piece.len() < 64 * 1024 {
                    piece.extend_from_slice(&rng.next().to_le_bytes());
                }
            }
            1 => {
                while piece.len() < 64 * 1024 {
                    let w = WORDS[(rng.next() % WORDS.len() as u64) as usize];
                    piece.extend_from_slice(w.as_bytes());
                    piece.push(b' ');
                }
            }
            _ => {
                while piece.len() < 64 * 1024 {
                    let v = rng.next();
                    piece.extend_from_slice(&[(v & 0x0f) as u8, 0, 0, 0, 0, 0, 0, (v >> 60) as u8]);
                }
            }
        }
        piece.truncate(64 * 1024);
        out.write_all(&piece)?;
    }
    out.flush()
}

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Counts bytes written (the compressed size) and drops them.
struct CountingSink(u64);

impl Write for CountingSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn run(path: &std::path::Path, compression: Compression, threads: usize) -> (f64, u64) {
    let settings = CompressSettings {
        compression,
        level: None,
        threads,
    };
    let input = BufReader::with_capacity(1 << 20, File::open(path).expect("open layer"));
    let mut sink = CountingSink(0);
    let started = Instant::now();
    let n = compress_parallel(input, &mut sink, &settings).expect("compress");
    let secs = started.elapsed().as_secs_f64();
    (n as f64 / 1e6 / secs, sink.0)
}

fn main() {
    let mb: usize = std::env::var("RBUILD_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(280);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("layer.bin");
    generate(&path, mb).expect("generate layer");
    // Warm the page cache so the first measured run does not pay for the disk.
    std::io::copy(&mut File::open(&path).expect("open"), &mut std::io::sink()).expect("read");
    let cpus = default_threads();
    println!("layer: {mb} MB mixed content; {cpus} CPUs");
    println!(
        "{:<6} {:>8} {:>10} {:>10} {:>8}",
        "codec", "threads", "MB/s", "out MB", "ratio"
    );
    for compression in [Compression::Gzip, Compression::Zstd] {
        let name = format!("{compression:?}").to_lowercase();
        let (single, out1) = run(&path, compression, 1);
        println!(
            "{name:<6} {:>8} {single:>10.1} {:>10.1} {:>8}",
            1,
            out1 as f64 / 1e6,
            "1.00x"
        );
        let (multi, out_n) = run(&path, compression, cpus);
        assert_eq!(out1, out_n, "output must not depend on the thread count");
        println!(
            "{name:<6} {cpus:>8} {multi:>10.1} {:>10.1} {:>7.2}x",
            out_n as f64 / 1e6,
            multi / single
        );
    }
    println!("peak RSS: {:.1} MB", peak_rss_mb());
}
