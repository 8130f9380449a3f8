//! Where the store lives: `RBUILD_ROOT`, else `/var/lib/rbuild` for root, else
//! `$XDG_DATA_HOME/rbuild` (or `~/.local/share/rbuild`). Rootless rbuild runs as root of its
//! own user namespace but keeps the caller's per-user default.

use std::path::PathBuf;

pub fn store_root() -> PathBuf {
    if let Some(root) = std::env::var_os("RBUILD_ROOT").filter(|v| !v.is_empty()) {
        return PathBuf::from(root);
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 && rbuild_sandbox::userns::state().is_none() {
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
