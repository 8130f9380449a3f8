//! What the sandbox benchmarks share: the runc peer (a bundle from `runc spec`, one timed
//! `runc run`), a log sink that drops output, and the statistics they print.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rbuild_ports::{LogSink, LogStream};

/// Debian's runc, the peer.
pub const RUNC: &str = "/usr/sbin/runc";

/// A log sink that keeps nothing.
pub struct Discard;

impl LogSink for Discard {
    fn write(&self, _: LogStream, _: &[u8]) {}
}

/// Median, 10th and 90th percentile.
pub fn stats(mut v: Vec<Duration>) -> (Duration, Duration, Duration) {
    v.sort();
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.1), at(0.9))
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The number in environment variable `name`, else `default`.
pub fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A runc bundle `name` under `dir` over `rootfs` from `runc spec`, without a terminal,
/// running `true`, with these extra spec mounts (a JSON array).
pub fn runc_bundle(dir: &Path, name: &str, rootfs: &Path, mounts: serde_json::Value) -> PathBuf {
    let bundle = dir.join(name);
    std::fs::create_dir(&bundle).expect("mkdir bundle");
    let ok = Command::new(RUNC)
        .arg("spec")
        .current_dir(&bundle)
        .status()
        .expect("runc spec");
    assert!(ok.success(), "runc spec failed");
    let path = bundle.join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).expect("read config.json")).expect("json");
    config["process"]["terminal"] = false.into();
    config["process"]["args"] = serde_json::json!(["true"]);
    config["root"]["path"] = rootfs.display().to_string().into();
    if let (Some(list), Some(extra)) = (config["mounts"].as_array_mut(), mounts.as_array()) {
        list.extend(extra.iter().cloned());
    }
    std::fs::write(&path, serde_json::to_vec(&config).expect("encode")).expect("write config");
    bundle
}

/// One timed `runc run` of `bundle` with its state under `state`, as container
/// `<id_prefix>-<pid>-<n>`.
pub fn runc_run(bundle: &Path, state: &Path, id_prefix: &str, n: u64) -> Duration {
    let id = format!("{id_prefix}-{}-{n}", std::process::id());
    let start = Instant::now();
    let st = Command::new(RUNC)
        .arg("--root")
        .arg(state)
        .arg("run")
        .arg("--bundle")
        .arg(bundle)
        .arg(&id)
        .stdin(Stdio::null())
        .status()
        .expect("runc run");
    let took = start.elapsed();
    assert!(st.success(), "runc run failed: {st}");
    took
}
