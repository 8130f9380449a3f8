//! The description of one path in a build context.

use std::path::PathBuf;

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
