//! Phase timings for profiling the sandbox: when `RBUILD_SANDBOX_TRACE` names a file, rbuild's
//! executor and every process of the init append one line per phase to it:
//! `<pid> <CLOCK_MONOTONIC µs> <phase>`. Off (the variable unset), a mark costs one check of a
//! cached `None`. For benchmarks and profiling only; nothing reads the file back.
//!
//! The file is opened on the first mark of a process (`O_APPEND`, close-on-exec) and kept, so
//! the init's children (forked after the init's first mark) still write to it after
//! `pivot_root`; the sandboxed command never inherits it. The zygote's children, which close
//! every inherited descriptor, open their own ([`descriptors_closed`]).

use std::fs::File;
use std::io::Write;
use std::sync::{Mutex, OnceLock};

/// The environment variable naming the trace file.
pub const TRACE_ENV: &str = "RBUILD_SANDBOX_TRACE";

/// The trace file's path, read once per process image.
fn path() -> Option<&'static std::path::Path> {
    static PATH: OnceLock<Option<std::path::PathBuf>> = OnceLock::new();
    PATH.get_or_init(|| std::env::var_os(TRACE_ENV).map(Into::into))
        .as_deref()
}

/// This process's open trace file (inherited across fork).
static SINK: Mutex<Option<File>> = Mutex::new(None);

fn with_sink(write: impl FnOnce(&mut File)) {
    let Some(path) = path() else {
        return;
    };
    let mut sink = SINK.lock().unwrap_or_else(|e| e.into_inner());
    if sink.is_none() {
        *sink = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)
            .ok();
    }
    if let Some(file) = sink.as_mut() {
        write(file);
    }
}

/// For a forked child that has closed every inherited descriptor: forgets (never closes: the
/// number may be reused by now) the inherited trace file, so the next mark opens its own.
pub(crate) fn descriptors_closed() {
    if path().is_some() {
        if let Some(stale) = SINK.lock().unwrap_or_else(|e| e.into_inner()).take() {
            std::mem::forget(stale);
        }
    }
}

/// Records that this process reached `phase` now (no-op unless tracing is on).
pub(crate) fn mark(phase: &str) {
    if path().is_none() {
        return;
    }
    let now = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .map_or(0, |ts| ts.tv_sec() * 1_000_000 + ts.tv_nsec() / 1000);
    // One write per line: O_APPEND keeps lines of concurrent processes whole.
    let line = format!("{} {now} {phase}\n", std::process::id());
    with_sink(|file| {
        let _ = file.write_all(line.as_bytes());
    });
}
