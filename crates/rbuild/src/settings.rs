//! Where the store lives: `RBUILD_ROOT`, else `/var/lib/rbuild` for root, else
//! `$XDG_DATA_HOME/rbuild` (or `~/.local/share/rbuild`). Rootless rbuild runs as root of its
//! own user namespace but keeps the caller's per-user default.

use std::path::PathBuf;

use rbuild_types::Privileges;

/// The store of a process with `privileges` (the same before and after an unprivileged
/// caller enters its user namespace).
pub fn store_root(privileges: &Privileges) -> PathBuf {
    if let Some(root) = std::env::var_os("RBUILD_ROOT").filter(|v| !v.is_empty()) {
        return PathBuf::from(root);
    }
    if privileges.uid == 0 && !privileges.is_rootless() {
        return PathBuf::from("/var/lib/rbuild");
    }
    if let Some(data) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(data).join("rbuild");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    home.join(".local/share/rbuild")
}
