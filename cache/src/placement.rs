//! Where new directories go on disk. On ext4 without a journal, creating an inode skips every
//! inode of its block group freed in the last half minute, checking each one
//! (`recently_deleted` in the kernel's allocator): right after a prune or any other large
//! delete, unpacking or copying thousands of files into the groups just freed costs seconds
//! of kernel time. Directories marked "top of a hierarchy" (`TOPDIR`) make the allocator place
//! each new subdirectory, and the files later created in it, in a lightly used group instead
//! of next to its parent, which spreads a new tree away from the freed one. The marking costs
//! (each `mkdir` under a `TOPDIR` parent scans every flex group: ten times a plain one on a
//! 250 GB filesystem), and filesystems with a journal never scan freed inodes, so trees are
//! spread only where [`slow_inode_reuse`] says so. The marking changes no contents.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Mutex;

pub use crate::fsutil::spread_subdirs;

/// Whether creating inodes on the filesystem holding `path` scans past recently freed ones:
/// ext4 (or ext2/3 through the ext4 driver) mounted without a journal. Linux lists a journaled
/// ext4 device under `/proc/fs/jbd2/<device>-8`. Decided once per filesystem (device) and
/// process; anything unknown counts as no.
pub fn slow_inode_reuse(path: &Path) -> bool {
    static KNOWN: Mutex<Vec<(u64, bool)>> = Mutex::new(Vec::new());
    let Ok(dev) = std::fs::metadata(path).map(|m| m.dev()) else {
        return false;
    };
    let mut known = KNOWN.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, slow)) = known.iter().find(|(d, _)| *d == dev) {
        return *slow;
    }
    let slow = is_ext4(path) && !has_journal(dev);
    known.push((dev, slow));
    slow
}

fn is_ext4(path: &Path) -> bool {
    nix::sys::statfs::statfs(path)
        .is_ok_and(|st| st.filesystem_type() == nix::sys::statfs::EXT4_SUPER_MAGIC)
}

/// Whether the block device `dev` has an ext4 journal running (its jbd2 entry in /proc).
/// A device /sys does not name (a loop or mapper device under another name) counts as
/// journaled: spreading is only ever an optimization.
fn has_journal(dev: u64) -> bool {
    let (major, minor) = (libc::major(dev), libc::minor(dev));
    let Ok(target) = std::fs::read_link(format!("/sys/dev/block/{major}:{minor}")) else {
        return true;
    };
    let Some(name) = target.file_name().and_then(|n| n.to_str()) else {
        return true;
    };
    Path::new("/proc/fs/jbd2")
        .join(format!("{name}-8"))
        .exists()
        || !Path::new("/proc/fs/jbd2").exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_journalled_or_other_filesystem_is_not_slow_and_the_answer_is_kept() {
        // tmpfs (/dev/shm) is not ext4.
        if Path::new("/dev/shm").is_dir() {
            assert!(!slow_inode_reuse(Path::new("/dev/shm")));
        }
        let t = tempfile::tempdir_in("/var/tmp").unwrap();
        let first = slow_inode_reuse(t.path());
        assert_eq!(first, slow_inode_reuse(t.path()));
        // What the answer rests on, read independently.
        let dev = std::fs::metadata(t.path()).unwrap().dev();
        assert_eq!(first, is_ext4(t.path()) && !has_journal(dev));
        assert!(!slow_inode_reuse(&t.path().join("missing")));
    }
}
