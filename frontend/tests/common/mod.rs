//! Shared helpers of the lowering tests: the build options they lower with and diagnostics
//! flattened to `line:col message` strings.

#![allow(dead_code)]

use rbuild_frontend::lower::BuildOptions;
use rbuild_frontend::Diagnostics;

/// Default options for linux/amd64.
pub fn opts() -> BuildOptions {
    BuildOptions {
        platform: "linux/amd64".parse().expect("platform"),
        ..BuildOptions::default()
    }
}

/// Every diagnostic as `line:col message`.
pub fn flat(d: Diagnostics) -> Vec<String> {
    d.0.iter()
        .map(|d| format!("{}:{} {}", d.span.line, d.span.col, d.message))
        .collect()
}
