//! Phase timings for profiling the sandbox: when `RBUILD_SANDBOX_TRACE` names a file, rbuild's
//! executor and every process of the init append one line per phase to it:
//! `<pid> <CLOCK_MONOTONIC µs> <phase>`. Off (the variable unset), a mark costs one check of a
//! cached `None`. For benchmarks and profiling only; nothing reads the file back.
//!
//! The file is opened on the first mark of a process (`O_APPEND`, close-on-exec) and kept, so
//! the init's children (forked after the init's first mark) still write to it after
//! `pivot_root`; the sandboxed command never inherits it.

use std::fs::File;
use std::io::Write;
use std::sync::OnceLock;

/// The environment variable naming the trace file.
pub const TRACE_ENV: &str = "RBUILD_SANDBOX_TRACE";

fn sink() -> Option<&'static File> {
    static SINK: OnceLock<Option<File>> = OnceLock::new();
    SINK.get_or_init(|| {
        let path = std::env::var_os(TRACE_ENV)?;
        std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)
            .ok()
    })
    .as_ref()
}

/// Records that this process reached `phase` now (no-op unless tracing is on).
pub(crate) fn mark(phase: &str) {
    let Some(mut file) = sink() else {
        return;
    };
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    let now = ts.tv_sec * 1_000_000 + ts.tv_nsec / 1000;
    // One write per line: O_APPEND keeps lines of concurrent processes whole.
    let line = format!("{} {now} {phase}\n", std::process::id());
    let _ = file.write_all(line.as_bytes());
}
