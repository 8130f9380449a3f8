//! Build-cache maintenance: `rbuild prune [--all] [--keep-storage SIZE] [--filter until=DUR]`,
//! `rbuild du`, and the automatic garbage collection after a build when the configuration file
//! (`RBUILD_CONFIG`, see README) sets a limit:
//!
//! ```toml
//! [gc]
//! keep-storage = "10GB"
//! ```
//!
//! Sizes are `docker buildx prune --keep-storage` style: a number with an optional unit `B`,
//! `KB`/`K`, `MB`/`M`, `GB`/`G`, `TB`/`T` (powers of 1024, like Docker's; `KiB`… accepted too).
//! Durations are Go style (`90m`, `24h`, `1h30m`, `10s`) plus days (`7d`).

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Args;
use rbuild_cache::{CacheError, PruneOptions, Store};

use crate::report::CliError;
use crate::store_cmds::human_size;

/// Flags of `rbuild prune`.
#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Also remove base-image layers, and (without filters) every blob no tag needs
    #[arg(long)]
    pub all: bool,
    /// Keep this much build cache (e.g. `10GB`), removing the least recently used first
    #[arg(long = "keep-storage")]
    pub keep_storage: Option<String>,
    /// Only remove what matches: `until=DURATION` (not used for that long, e.g. `24h`)
    #[arg(long = "filter")]
    pub filters: Vec<String>,
}

/// Parses `10GB`, `512m`, `1.5GiB`, `1024`.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("invalid size {text:?}: expected a number and a unit, like 10GB"))?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        other => return Err(format!("invalid size {text:?}: unknown unit {other:?}")),
    };
    Ok((value * (1u64 << shift) as f64) as u64)
}

/// Parses `24h`, `1h30m`, `90s`, `7d`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("invalid duration {text:?}: expected e.g. 24h, 1h30m, 7d");
    let mut total = 0f64;
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let split = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let (num, tail) = rest.split_at(split);
        let value: f64 = num.parse().map_err(|_| bad())?;
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let secs = match unit {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "d" => 86400.0,
            _ => return Err(bad()),
        };
        total += value * secs;
        rest = tail;
    }
    Ok(Duration::from_secs_f64(total))
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The prune options the flags ask for.
pub fn options(args: &PruneArgs) -> Result<PruneOptions, CliError> {
    let mut opts = PruneOptions {
        all: args.all,
        now_unix: now_unix(),
        ..PruneOptions::default()
    };
    if let Some(size) = &args.keep_storage {
        opts.keep_storage = Some(parse_size(size).map_err(CliError::Usage)?);
    }
    for f in &args.filters {
        match f.split_once('=') {
            Some(("until", d)) => opts.until = Some(parse_duration(d).map_err(CliError::Usage)?),
            _ => {
                return Err(CliError::Usage(format!(
                    "unsupported --filter {f:?}: only until=DURATION is supported"
                )))
            }
        }
    }
    Ok(opts)
}

fn open(root: &Path) -> Result<Store, CliError> {
    Store::open(root)
        .map_err(|e| CliError::Failed(format!("opening the store at {}: {e}", root.display())))
}

/// `rbuild prune`.
pub fn prune(root: &Path, args: &PruneArgs) -> Result<(), CliError> {
    let opts = options(args)?;
    let store = open(root)?;
    let report = store
        .prune(&opts)
        .map_err(|e| CliError::Failed(e.to_string()))?;
    println!("{report}");
    if args.all {
        // Like BuildKit's prune --all: cache mounts nobody holds go too.
        let m = store
            .prune_cache_mounts()
            .map_err(|e| CliError::Failed(e.to_string()))?;
        if m.removed > 0 {
            println!(
                "removed {} cache mounts; {} bytes freed",
                m.removed, m.bytes
            );
        }
    }
    Ok(())
}

/// How long ago, for humans: `3 minutes ago`.
fn ago(then: u64, now: u64) -> String {
    if then == 0 {
        return "-".into();
    }
    let s = now.saturating_sub(then);
    let (n, unit) = match s {
        0..=59 => (s, "second"),
        60..=3599 => (s / 60, "minute"),
        3600..=86399 => (s / 3600, "hour"),
        _ => (s / 86400, "day"),
    };
    format!("{n} {unit}{} ago", if n == 1 { "" } else { "s" })
}

/// How many cache records `rbuild du` lists.
const DU_RECORDS: usize = 15;

/// `rbuild du`.
pub fn du(root: &Path) -> Result<(), CliError> {
    let store = open(root)?;
    let d = store
        .usage_detail()
        .map_err(|e| CliError::Failed(e.to_string()))?;
    let t = &d.totals;
    let mounts: u64 = store
        .cache_mounts_usage()
        .map_err(|e| CliError::Failed(e.to_string()))?
        .iter()
        .map(|m| m.size)
        .sum();
    println!("{:<20} {:>10}", "TYPE", "SIZE");
    for (kind, size) in [
        ("snapshots (built)", d.built_snapshots),
        ("snapshots (base)", d.base_snapshots),
        ("blobs", t.blobs),
        ("logs", t.logs),
        ("index", t.index),
        ("cache mounts", mounts),
        ("total", t.total() + mounts),
    ] {
        println!("{kind:<20} {:>10}", human_size(size));
    }
    if d.records.is_empty() {
        return Ok(());
    }
    let now = now_unix();
    println!();
    println!("{:<10} {:<16} {:<16} STEP", "SIZE", "LAST USED", "KEY");
    for r in d.records.iter().take(DU_RECORDS) {
        println!(
            "{:<10} {:<16} {:<16} {}",
            human_size(r.size),
            ago(r.last_used_unix, now),
            &r.key.hex()[..12],
            if r.name.is_empty() { "-" } else { &r.name }
        );
    }
    if d.records.len() > DU_RECORDS {
        println!("… and {} more cache records", d.records.len() - DU_RECORDS);
    }
    Ok(())
}

/// The `[gc]` table of the configuration file.
#[derive(Debug, Default, serde::Deserialize)]
struct GcFile {
    #[serde(default)]
    gc: GcConfig,
}

#[derive(Debug, Default, serde::Deserialize)]
struct GcConfig {
    #[serde(rename = "keep-storage")]
    keep_storage: Option<String>,
}

/// The configured automatic GC limit: `[gc] keep-storage` of the first configuration file
/// that exists (the same files the registry settings come from).
pub fn configured_keep_storage() -> Result<Option<u64>, String> {
    let env = |k: &str| std::env::var_os(k).map(PathBuf::from);
    let paths = rbuild_oci::registry::config::RegistryConfig::candidate_paths(env);
    let Some(path) = paths.iter().find(|p| p.is_file()) else {
        return Ok(None);
    };
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let file: GcFile = toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    file.gc
        .keep_storage
        .map(|s| parse_size(&s).map_err(|e| format!("{}: [gc] keep-storage: {e}", path.display())))
        .transpose()
}

/// After a build: if a limit is configured and the store is over it, prune least recently
/// used build cache down to it. Skipped when another rbuild process is using the store.
/// Problems are warnings: the build itself succeeded.
pub fn auto_gc(store: &Store) {
    let limit = match configured_keep_storage() {
        Ok(Some(limit)) => limit,
        Ok(None) => return,
        Err(e) => {
            eprintln!("warning: automatic garbage collection: {e}");
            return;
        }
    };
    match store.disk_usage() {
        Ok(u) if u.total() <= limit => return,
        Ok(_) => {}
        Err(e) => {
            eprintln!("warning: automatic garbage collection: {e}");
            return;
        }
    }
    let opts = PruneOptions {
        keep_storage: Some(limit),
        now_unix: now_unix(),
        ..PruneOptions::default()
    };
    match store.prune(&opts) {
        Ok(report) => eprintln!(
            "automatic garbage collection (keep-storage {}): {report}",
            human_size(limit)
        ),
        Err(CacheError::Busy { .. }) => {}
        Err(e) => eprintln!("warning: automatic garbage collection: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1024"), Ok(1024));
        assert_eq!(parse_size("10GB"), Ok(10 << 30));
        assert_eq!(parse_size("512m"), Ok(512 << 20));
        assert_eq!(parse_size("1.5KiB"), Ok(1536));
        assert!(parse_size("ten").is_err());
        assert!(parse_size("10XB").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("24h"), Ok(Duration::from_secs(86400)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86400)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        for bad in ["", "h", "10", "10y"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn filters() {
        let args = PruneArgs {
            all: false,
            keep_storage: Some("1MB".into()),
            filters: vec!["until=1h".into()],
        };
        let o = options(&args).unwrap();
        assert_eq!(o.keep_storage, Some(1 << 20));
        assert_eq!(o.until, Some(Duration::from_secs(3600)));
        let bad = PruneArgs {
            all: false,
            keep_storage: None,
            filters: vec!["type=regular".into()],
        };
        assert!(matches!(options(&bad), Err(CliError::Usage(_))));
    }

    #[test]
    fn ago_reads_well() {
        assert_eq!(ago(100, 160), "1 minute ago");
        assert_eq!(ago(100, 105), "5 seconds ago");
        assert_eq!(ago(0, 105), "-");
    }
}
