//! Commands on the local store: `tag`, `rmi` (`images`: `images_cmd`; `prune` and `du`:
//! `gc_cmds`).

use std::path::Path;

use rbuild_cache::Store;
use rbuild_types::ImageRef;

use crate::report::CliError;
use crate::usage::UsageError;

/// Opens the store at `root` (shared by the store and image commands).
pub fn open(root: &Path) -> Result<Store, CliError> {
    Store::open(root).map_err(|source| CliError::OpenStore {
        root: root.to_path_buf(),
        source,
    })
}

/// `name` parsed as an image reference (a usage error when it is not one).
pub fn parse_ref(name: &str) -> Result<ImageRef, CliError> {
    ImageRef::parse(name).map_err(|source| {
        UsageError::ImageName {
            name: name.to_string(),
            source,
        }
        .into()
    })
}

fn full_name(name: &str) -> Result<String, CliError> {
    parse_ref(name).map(|r| r.to_string())
}

/// Docker-style human size: `4.26MB`.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut size = bytes as f64;
    let mut unit = 0;
    while size >= 1000.0 && unit < UNITS.len() - 1 {
        size /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes}B")
    } else {
        format!("{size:.3}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
            + UNITS[unit]
    }
}

pub fn tag(root: &Path, source: &str, target: &str) -> Result<(), CliError> {
    let store = open(root)?;
    let src = full_name(source)?;
    let manifest = store
        .tags()
        .get(&src)?
        .ok_or_else(|| CliError::NoSuchImage(source.to_string()))?;
    Ok(store.tags().set(&full_name(target)?, &manifest)?)
}

/// Untags every name it can, like `docker rmi`: a missing name is reported and the others are
/// still removed; the command fails if any name was missing.
pub fn rmi(root: &Path, names: &[String]) -> Result<(), CliError> {
    let store = open(root)?;
    let mut missing = Vec::new();
    for name in names {
        let removed = store.tags().remove(&full_name(name)?)?;
        if removed {
            println!("Untagged: {name}");
        } else {
            missing.push(name.as_str());
        }
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(CliError::NoSuchImage(missing.join(", ")))
    }
}

#[cfg(test)]
mod tests {
    use super::human_size;

    #[test]
    fn sizes_like_docker() {
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(4_260_000), "4.26MB");
        assert_eq!(human_size(1_000_000), "1MB");
    }
}
