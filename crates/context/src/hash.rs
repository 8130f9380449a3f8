//! Per-path digests. A path's digest covers its type, mode bits, uid/gid, symlink target and
//! (for files) content — never its name (the caller adds the name it cares about), never mtime.

use std::fs::File;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use rbuild_types::{Digest, Hasher};

use crate::entry::{ContextEntry, EntryKind};
use crate::error::ContextError;
use crate::walk::StatKey;

/// SHA-256 of a file's bytes, streamed.
pub fn content_digest(path: &Path) -> Result<Digest, ContextError> {
    let mut file = File::open(path).map_err(ContextError::io(path))?;
    let mut hasher = Hasher::new();
    io::copy(&mut file, &mut hasher).map_err(ContextError::io(path))?;
    Ok(hasher.finish())
}

/// SHA-256 of the bytes of the file at `path`, and whether the open file's stat data still
/// equal `expected` after reading (dev, inode, size, mtime, ctime): only then may the digest
/// be remembered for those stat data.
pub fn content_digest_checked(
    path: &Path,
    expected: &StatKey,
) -> Result<(Digest, bool), ContextError> {
    let mut file = File::open(path).map_err(ContextError::io(path))?;
    let mut hasher = Hasher::new();
    io::copy(&mut file, &mut hasher).map_err(ContextError::io(path))?;
    let meta = file.metadata().map_err(ContextError::io(path))?;
    let now = StatKey {
        dev: meta.dev(),
        ino: meta.ino(),
        size: meta.size(),
        mtime_ns: meta
            .mtime()
            .saturating_mul(1_000_000_000)
            .saturating_add(meta.mtime_nsec()),
        ctime_ns: meta
            .ctime()
            .saturating_mul(1_000_000_000)
            .saturating_add(meta.ctime_nsec()),
    };
    Ok((hasher.finish(), now == *expected))
}

/// The digest of one entry's metadata plus its content digest (`None` for non-files).
pub fn entry_digest(entry: &ContextEntry, content: Option<Digest>) -> Digest {
    digest_fields(
        entry.kind,
        entry.mode,
        entry.uid,
        entry.gid,
        entry.link_target.as_deref(),
        content,
    )
}

/// [`entry_digest`] from the fields themselves (what the compact table holds).
pub fn digest_fields(
    kind: EntryKind,
    mode: u32,
    uid: u32,
    gid: u32,
    link_target: Option<&str>,
    content: Option<Digest>,
) -> Digest {
    let mut h = Hasher::new();
    let tag: &[u8] = match kind {
        EntryKind::File => b"file",
        EntryKind::Dir => b"dir",
        EntryKind::Symlink => b"symlink",
    };
    h.field(tag);
    h.field(&mode.to_le_bytes());
    h.field(&uid.to_le_bytes());
    h.field(&gid.to_le_bytes());
    h.field(&rbuild_types::bytes::unescape(link_target.unwrap_or("")));
    match content {
        Some(d) => h.field(d.as_bytes()),
        None => h.field(b""),
    }
    h.finish()
}

/// Hashes one entry, reading its content if it is a file.
#[cfg(test)]
fn hash_entry(entry: &ContextEntry) -> Result<Digest, ContextError> {
    let content = match entry.kind {
        EntryKind::File => Some(content_digest(&entry.host_path)?),
        EntryKind::Dir | EntryKind::Symlink => None,
    };
    Ok(entry_digest(entry, content))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn entry(mode: u32) -> ContextEntry {
        ContextEntry {
            rel: "a".into(),
            kind: EntryKind::File,
            mode,
            uid: 0,
            gid: 0,
            size: 1,
            link_target: None,
            host_path: PathBuf::from("/nonexistent"),
        }
    }

    #[test]
    fn mode_and_content_matter_name_does_not() {
        let c = Some(Digest::of(b"x"));
        let mut renamed = entry(0o644);
        renamed.rel = "b".into();
        assert_eq!(entry_digest(&entry(0o644), c), entry_digest(&renamed, c));
        assert_ne!(
            entry_digest(&entry(0o644), c),
            entry_digest(&entry(0o755), c)
        );
        assert_ne!(
            entry_digest(&entry(0o644), c),
            entry_digest(&entry(0o644), Some(Digest::of(b"y")))
        );
    }

    #[test]
    fn missing_file_names_its_path() {
        let err = hash_entry(&entry(0o644)).expect_err("file is missing");
        assert!(err.to_string().contains("/nonexistent"), "{err}");
    }
}
