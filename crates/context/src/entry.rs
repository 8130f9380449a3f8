//! The description of one path in a build context.
//!
//! Linux file names are bytes. The context keeps relative paths (and symlink targets) as
//! strings in the escaped form of [`rbuild_types::bytes`]: a name that is UTF-8 is itself
//! (nearly always), a stray byte is one private-use code point. Matching reads them with
//! [`units`](rbuild_types::bytes::units) (one unit per character or stray byte, as Go does);
//! hashing, listing and every host path use the exact bytes ([`rel_path`]).

use std::borrow::Cow;
use std::ffi::OsStr;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use rbuild_types::bytes::unescape;

/// The relative path a context path `rel` (escaped form) stands for, with its exact bytes.
pub fn rel_path(rel: &str) -> Cow<'_, Path> {
    match unescape(rel) {
        Cow::Borrowed(b) => Cow::Borrowed(Path::new(OsStr::from_bytes(b))),
        Cow::Owned(b) => Cow::Owned(PathBuf::from(std::ffi::OsString::from_vec(b))),
    }
}

/// `root` joined with context path `rel` (escaped form).
pub fn host_path(root: &Path, rel: &str) -> PathBuf {
    root.join(rel_path(rel))
}

/// The type of a context path. Other file types (sockets, FIFOs, devices) are skipped by the
/// walk and never appear.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EntryKind {
    File,
    Dir,
    Symlink,
}

/// One included path. `rel` is relative to the context root, `/`-separated, cleaned (the root
/// itself is `.`); `mode` holds the permission bits plus setuid/setgid/sticky (`& 0o7777`);
/// `size` is 0 for non-files; `link_target` is set exactly for symlinks (never followed).
/// `rel` and `link_target` are in the escaped form (see the module docs): use
/// [`ContextEntry::rel_path`] for the name's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextEntry {
    pub rel: String,
    pub kind: EntryKind,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub link_target: Option<String>,
    pub host_path: PathBuf,
}

impl ContextEntry {
    /// The relative path with its exact bytes.
    pub fn rel_path(&self) -> Cow<'_, Path> {
        rel_path(&self.rel)
    }
}
