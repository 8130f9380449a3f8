//! Layer compression throughput: a B3-like ~280 MB layer (mixed content: a third random bytes
//! like B3's files, a third text, a third sparse binary) streamed from a file through
//! `compress_parallel` on 1 thread and on every CPU, for gzip and zstd at rbuild's default
//! levels, interleaved and repeated. Prints the median MB/s (of uncompressed input, wall
//! clock), MB per CPU-second, the multi-thread/single-thread ratio of the same backend in the
//! same run, and the process's peak RSS (bounded by a few chunks whatever the layer size).
//!
//! `cargo bench -p rbuild-archive --bench compress` (`RBUILD_BENCH_MB=N` for another size).

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::time::Instant;

use rbuild_archive::compress::{compress_parallel, default_threads, CompressSettings, Compression};

use rbuild_archive::testutil::XorShift as Rng;

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
                    piece.extend_from_slice(&rng.next_u64().to_le_bytes());
                }
            }
            1 => {
                while piece.len() < 64 * 1024 {
                    let w = WORDS[(rng.next_u64() % WORDS.len() as u64) as usize];
                    piece.extend_from_slice(w.as_bytes());
                    piece.push(b' ');
                }
            }
            _ => {
                while piece.len() < 64 * 1024 {
                    let v = rng.next_u64();
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

/// CPU time (user + system) of the whole process so far, in seconds.
fn cpu_secs() -> f64 {
    use nix::sys::resource::{getrusage, UsageWho};
    let secs = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
    getrusage(UsageWho::RUSAGE_SELF).map_or(0.0, |u| secs(u.user_time()) + secs(u.system_time()))
}

/// One measurement: wall MB/s, CPU seconds used, compressed size.
fn run(path: &std::path::Path, compression: Compression, threads: usize) -> (f64, f64, u64) {
    let settings = CompressSettings {
        compression,
        level: None,
        threads,
    };
    let input = BufReader::with_capacity(1 << 20, File::open(path).expect("open layer"));
    let mut sink = CountingSink(0);
    let cpu = cpu_secs();
    let started = Instant::now();
    let n = compress_parallel(input, &mut sink, &settings).expect("compress");
    let secs = started.elapsed().as_secs_f64();
    (n as f64 / 1e6 / secs, cpu_secs() - cpu, sink.0)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let mb: usize = std::env::var("RBUILD_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(280);
    let reps: usize = std::env::var("RBUILD_BENCH_REPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
        .max(1);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("layer.bin");
    generate(&path, mb).expect("generate layer");
    // Warm the page cache so the first measured run does not pay for the disk.
    std::io::copy(&mut File::open(&path).expect("open"), &mut std::io::sink()).expect("read");
    let cpus = default_threads();
    println!("layer: {mb} MB mixed content; {cpus} CPUs; median of {reps} interleaved runs");
    println!(
        "{:<6} {:>8} {:>10} {:>12} {:>10} {:>8}",
        "codec", "threads", "MB/s", "MB/cpu-s", "out MB", "ratio"
    );
    for compression in [Compression::Gzip, Compression::Zstd] {
        let name = format!("{compression:?}").to_lowercase();
        let (mut single, mut multi) = (Vec::new(), Vec::new());
        let (mut single_cpu, mut multi_cpu) = (Vec::new(), Vec::new());
        let mut sizes = Vec::new();
        // Interleaved, so both see the same (shared, noisy) machine.
        for _ in 0..reps {
            let (rate, cpu, out) = run(&path, compression, 1);
            single.push(rate);
            single_cpu.push(mb as f64 / cpu);
            sizes.push(out);
            let (rate, cpu, out) = run(&path, compression, cpus);
            multi.push(rate);
            multi_cpu.push(mb as f64 / cpu);
            sizes.push(out);
        }
        assert!(
            sizes.windows(2).all(|w| w[0] == w[1]),
            "output must not depend on the thread count"
        );
        let (single, multi) = (median(single), median(multi));
        let out = sizes[0] as f64 / 1e6;
        println!(
            "{name:<6} {:>8} {single:>10.1} {:>12.1} {out:>10.1} {:>8}",
            1,
            median(single_cpu),
            "1.00x"
        );
        println!(
            "{name:<6} {cpus:>8} {multi:>10.1} {:>12.1} {out:>10.1} {:>7.2}x",
            median(multi_cpu),
            multi / single
        );
    }
    println!("peak RSS: {:.1} MB", peak_rss_mb());
}
