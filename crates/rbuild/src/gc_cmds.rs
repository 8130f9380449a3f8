//! Build-cache maintenance: `rbuild prune [--all] [--keep-storage SIZE] [--filter until=DUR] [-f]`
//! and `rbuild du`. (The automatic garbage collection after a build is the builder's,
//! `rbuild_builder::gc`.)
//!
//! Sizes are `docker buildx prune --keep-storage` style ([`parse_size`]). Durations are Go
//! style (`90m`, `24h`, `1h30m`, `10s`) plus days (`7d`).

use std::path::Path;
use std::time::Duration;

use clap::Args;
use rbuild_builder::gc::{now_unix, parse_size};
use rbuild_cache::PruneOptions;

use crate::report::CliError;
use crate::store_cmds::{human_size, open};
use crate::usage::UsageError;

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
    /// Do not prompt for confirmation (accepted as Docker's: rbuild never prompts)
    #[arg(short = 'f', long)]
    pub force: bool,
}

/// Why a duration was not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {0:?}: expected e.g. 24h, 1h30m, 7d")]
pub struct DurationError(String);

/// Parses `24h`, `1h30m`, `90s`, `7d`.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let bad = || DurationError(text.to_string());
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

/// The prune options the flags ask for.
pub fn options(args: &PruneArgs) -> Result<PruneOptions, CliError> {
    let mut opts = PruneOptions {
        all: args.all,
        now_unix: now_unix(),
        ..PruneOptions::default()
    };
    if let Some(size) = &args.keep_storage {
        opts.keep_storage = Some(parse_size(size).map_err(UsageError::from)?);
    }
    for f in &args.filters {
        match f.split_once('=') {
            Some(("until", d)) => opts.until = Some(parse_duration(d).map_err(UsageError::from)?),
            _ => return Err(UsageError::Filter(f.clone()).into()),
        }
    }
    Ok(opts)
}

/// `rbuild prune`.
pub fn prune(root: &Path, args: &PruneArgs) -> Result<(), CliError> {
    let opts = options(args)?;
    let store = open(root)?;
    let report = store.gc().prune(&opts)?;
    println!("{report}");
    if args.all {
        // Like BuildKit's prune --all: cache mounts nobody holds go too.
        let m = store.cache_mounts().prune()?;
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
    let d = store.usage().detail()?;
    let t = &d.totals;
    let mounts: u64 = store.cache_mounts().usage()?.iter().map(|m| m.size).sum();
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

#[cfg(test)]
mod tests {
    use super::*;

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
            force: false,
        };
        let o = options(&args).unwrap();
        assert_eq!(o.keep_storage, Some(1 << 20));
        assert_eq!(o.until, Some(Duration::from_secs(3600)));
        let bad = PruneArgs {
            all: false,
            keep_storage: None,
            filters: vec!["type=regular".into()],
            force: true,
        };
        assert!(matches!(
            options(&bad),
            Err(CliError::Usage(UsageError::Filter(_)))
        ));
    }

    #[test]
    fn ago_reads_well() {
        assert_eq!(ago(100, 160), "1 minute ago");
        assert_eq!(ago(100, 105), "5 seconds ago");
        assert_eq!(ago(0, 105), "-");
    }
}
