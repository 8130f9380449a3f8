//! Context hashing benchmark driver (`harness = false`), used by `benches/context/run.sh`.
//!
//! ```text
//! cargo bench -p rbuild-context --bench context_hash -- hash DIR [STAT_CACHE]
//! cargo bench -p rbuild-context --bench context_hash -- digest DIR      # as `rbuild debug context`
//! cargo bench -p rbuild-context --bench context_hash -- key DIR         # COPY . key, no entries
//! cargo bench -p rbuild-context --bench context_hash -- list DIR OUT     # included files, for tar -T
//! cargo bench -p rbuild-context --bench context_hash -- sha256-stdin     # in-process reference
//! cargo bench -p rbuild-context --bench context_hash -- gen DIR N        # N small files for memory
//! ```
//!
//! `hash` opens DIR as a context (walk with its `.dockerignore`), selects `.` as `COPY . /x`
//! is keyed (`select_view_excluding`: every included file hashed, through the stat cache when
//! given, which is saved afterwards; no entry materialised per path), and prints one line: `hash entries=N ms=T digest=D`. Timing is wall-clock
//! of that one run; the caller decides about the page cache.

use std::io::{Read, Write};
use std::path::Path;
use std::time::Instant;

use rbuild_context::{BuildContext, EntryKind};

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let result = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["hash", dir] => hash(Path::new(dir), None),
        ["hash", dir, cache] => hash(Path::new(dir), Some(Path::new(cache))),
        ["digest", dir] => digest(Path::new(dir)),
        ["key", dir] => key(Path::new(dir)),
        ["list", dir, out] => list(Path::new(dir), Path::new(out)),
        ["sha256-stdin"] => sha256_stdin(),
        ["gen", dir, n] => match n.parse() {
            Ok(n) => gen(Path::new(dir), n),
            Err(e) => Err(format!("bad count {n:?}: {e}")),
        },
        [] => {
            // `cargo bench` without arguments: nothing to measure without a context.
            eprintln!("usage: context_hash hash DIR [STAT_CACHE] | digest DIR | key DIR | list DIR OUT | sha256-stdin | gen DIR N");
            Ok(())
        }
        other => Err(format!("unknown arguments {other:?}")),
    };
    if let Err(e) = result {
        eprintln!("context_hash: {e}");
        std::process::exit(1);
    }
}

fn hash(dir: &Path, cache: Option<&Path>) -> Result<(), String> {
    let start = Instant::now();
    let mut ctx = BuildContext::from_dir(dir, None).map_err(|e| e.to_string())?;
    let walked = start.elapsed().as_secs_f64() * 1e3;
    if let Some(cache) = cache {
        ctx = ctx.with_stat_cache(cache);
    }
    let opened = start.elapsed().as_secs_f64() * 1e3;
    // As `COPY . /x` keys a step: through the view (no entry per path materialised).
    let sel = ctx
        .select_view_excluding(".", &Default::default())
        .map_err(|e| e.to_string())?;
    let ms = start.elapsed().as_secs_f64() * 1e3;
    ctx.save_stat_cache().map_err(|e| e.to_string())?;
    let saved = start.elapsed().as_secs_f64() * 1e3;
    println!(
        "hash entries={} ms={ms:.1} (walked {walked:.1}, cache loaded {opened:.1}, saved at {saved:.1}) digest={}",
        sel.len(),
        sel.digest
    );
    Ok(())
}

/// What `rbuild debug context` does: open, then the whole-context digest (no selection copy).
fn digest(dir: &Path) -> Result<(), String> {
    let start = Instant::now();
    let ctx = BuildContext::from_dir(dir, None).map_err(|e| e.to_string())?;
    let d = ctx.digest().map_err(|e| e.to_string())?;
    let ms = start.elapsed().as_secs_f64() * 1e3;
    println!("digest entries={} ms={ms:.1} digest={d}", ctx.len());
    Ok(())
}

/// What keying `COPY . /x` needs: open, then the selection digest without its entries.
fn key(dir: &Path) -> Result<(), String> {
    let start = Instant::now();
    let ctx = BuildContext::from_dir(dir, None).map_err(|e| e.to_string())?;
    let d = ctx
        .select_digest_excluding(".", &Default::default())
        .map_err(|e| e.to_string())?;
    let ms = start.elapsed().as_secs_f64() * 1e3;
    println!("key entries={} ms={ms:.1} digest={d}", ctx.len());
    Ok(())
}

fn list(dir: &Path, out: &Path) -> Result<(), String> {
    let ctx = BuildContext::from_dir(dir, None).map_err(|e| e.to_string())?;
    let mut text = String::new();
    for e in ctx.list().map_err(|e| e.to_string())? {
        if e.kind == EntryKind::File {
            text.push_str(&e.rel);
            text.push('\n');
        }
    }
    std::fs::write(out, text).map_err(|e| format!("{}: {e}", out.display()))
}

fn sha256_stdin() -> Result<(), String> {
    use sha2::Digest as _;
    let start = Instant::now();
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut stdin = std::io::stdin().lock();
    let mut total = 0u64;
    loop {
        let n = stdin.read(&mut buf).map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        total += n as u64;
        h.update(&buf[..n]);
    }
    let ms = start.elapsed().as_secs_f64() * 1e3;
    let hex: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    println!("sha256-stdin bytes={total} ms={ms:.1} {hex}");
    Ok(())
}

/// N files of 16 bytes, 1,000 per directory, plus a Dockerfile.
fn gen(dir: &Path, n: usize) -> Result<(), String> {
    let err = |p: &Path, e: std::io::Error| format!("{}: {e}", p.display());
    std::fs::create_dir_all(dir).map_err(|e| err(dir, e))?;
    std::fs::write(dir.join("Dockerfile"), "FROM scratch\nCOPY . /\n").map_err(|e| err(dir, e))?;
    for d in 0..n.div_ceil(1000) {
        let sub = dir.join(format!("d{:04}/sub", d));
        std::fs::create_dir_all(&sub).map_err(|e| err(&sub, e))?;
        for i in 0..1000.min(n - d * 1000) {
            let p = sub.join(format!("file_{i:04}.txt"));
            let mut f = std::fs::File::create(&p).map_err(|e| err(&p, e))?;
            writeln!(f, "{d:07} {i:07}").map_err(|e| err(&p, e))?;
        }
    }
    Ok(())
}
