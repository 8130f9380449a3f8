//! Attestation statements as files of a root filesystem output (`-o type=local`), as
//! BuildKit's local exporter writes them beside the image's files: `provenance.json`,
//! `sbom.spdx.json`, mode 0600, modified at the build's time (`SOURCE_DATE_EPOCH` when set).
//! Written through the output's confined directory, so a link already in the output is
//! replaced, never written through.

use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use super::confined::ConfinedDir;
use crate::OciError;

/// Writes each `(name, bytes)` of `files` into directory `dest` (mode 0600, modified at
/// `mtime`, Unix seconds).
pub fn write_statement_files(
    dest: &Path,
    files: &[(&str, Vec<u8>)],
    mtime: u64,
) -> Result<(), OciError> {
    let root = ConfinedDir::open_root(dest)?;
    let at = UNIX_EPOCH + Duration::from_secs(mtime);
    for (name, bytes) in files {
        root.write_file_with(name, bytes, 0o600, at)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    #[test]
    fn statements_replace_a_link_in_the_output_and_keep_mode_and_time() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let target = outside.path().join("victim");
        std::fs::write(&target, "keep").unwrap();
        std::os::unix::fs::symlink(&target, dir.path().join("provenance.json")).unwrap();
        write_statement_files(
            dir.path(),
            &[("provenance.json", b"{}".to_vec())],
            1_700_000_000,
        )
        .unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
        let meta = std::fs::symlink_metadata(dir.path().join("provenance.json")).unwrap();
        assert!(meta.is_file());
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(meta.mtime(), 1_700_000_000);
    }
}
