//! Automatic garbage collection after a build, when the configuration file sets a limit
//! (`[gc] keep-storage = "10GB"`, see [`Settings`](crate::Settings)), and the size syntax it
//! (and `rbuild prune --keep-storage`) uses: a number with an optional unit `B`, `KB`/`K`,
//! `MB`/`M`, `GB`/`G`, `TB`/`T` (powers of 1024, like Docker's; `KiB`… accepted too).

use std::time::{SystemTime, UNIX_EPOCH};

use rbuild_cache::{CacheError, PruneOptions, Store};

use crate::events::{BuildEvent, EventSink, Warning};
use crate::settings::{GcConfigError, GcSettings};

/// Why a size was not understood.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SizeError {
    #[error("invalid size {0:?}: expected a number and a unit, like 10GB")]
    Number(String),
    #[error("invalid size {text:?}: unknown unit {unit:?}")]
    Unit { text: String, unit: String },
}

/// Why automatic garbage collection did not run.
#[derive(Debug, thiserror::Error)]
pub enum GcError {
    #[error(transparent)]
    Config(#[from] GcConfigError),
    #[error(transparent)]
    Store(#[from] CacheError),
}

/// Parses `10GB`, `512m`, `1.5GiB`, `1024`.
pub fn parse_size(text: &str) -> Result<u64, SizeError> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| SizeError::Number(text.to_string()))?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        other => {
            return Err(SizeError::Unit {
                text: text.to_string(),
                unit: other.to_string(),
            })
        }
    };
    Ok((value * (1u64 << shift) as f64) as u64)
}

/// Seconds since the Unix epoch (0 if the clock is before it).
pub fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// After a build: if a limit is configured and the store is over it, prunes least recently
/// used build cache down to it. Skipped when another rbuild process is using the store.
/// Problems are warnings: the build itself succeeded.
pub(crate) fn auto_gc(store: &Store, settings: &GcSettings, events: &EventSink) {
    let warn = |e: GcError| events(BuildEvent::Warning(Warning::AutoGc(e)));
    let limit = match settings {
        GcSettings::Off => return,
        GcSettings::KeepStorage(limit) => *limit,
        GcSettings::Invalid(e) => return warn(e.clone().into()),
    };
    match store.usage().totals() {
        Ok(u) if u.total() <= limit => return,
        Ok(_) => {}
        Err(e) => return warn(e.into()),
    }
    let opts = PruneOptions {
        keep_storage: Some(limit),
        now_unix: now_unix(),
        ..PruneOptions::default()
    };
    match store.gc().prune(&opts) {
        Ok(report) => events(BuildEvent::AutoGc {
            keep_storage: limit,
            report,
        }),
        Err(CacheError::Busy { .. }) => {}
        Err(e) => warn(e.into()),
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
}
