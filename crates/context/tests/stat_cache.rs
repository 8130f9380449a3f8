//! The persistent stat cache: used when stat data is unchanged, ignored when racy or corrupt.

use std::fs;
use std::path::Path;
use std::time::{Duration, SystemTime};

use rbuild_context::BuildContext;
use rbuild_types::Digest;

fn ctx(root: &Path, cache: &Path) -> BuildContext {
    BuildContext::from_dir(root, None)
        .expect("context")
        .with_stat_cache(cache)
}

/// Replaces the remembered content digests of `contents` in the cache file with a bogus one
/// (the file stores raw SHA-256 digests of file contents).
fn poison(cache: &Path, contents: &[&[u8]]) {
    let mut bytes = fs::read(cache).expect("read cache");
    let bogus = Digest::of(b"bogus");
    for c in contents {
        let real = Digest::of(c);
        let at = bytes
            .windows(32)
            .position(|w| w == real.as_bytes())
            .expect("digest stored raw");
        bytes[at..at + 32].copy_from_slice(bogus.as_bytes());
    }
    fs::write(cache, bytes).expect("write cache");
}

fn set_mtime(path: &Path, t: SystemTime) {
    fs::File::options()
        .write(true)
        .open(path)
        .expect("open")
        .set_modified(t)
        .expect("set mtime");
}

#[test]
fn cache_is_used_then_racy_entries_are_rehashed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("ctx");
    fs::create_dir(&root).expect("mkdir");
    fs::write(root.join("a"), "alpha").expect("write");
    fs::write(root.join("b"), "beta").expect("write");
    let cache = dir.path().join("state/stat-cache.json");

    let truth = BuildContext::from_dir(&root, None)
        .expect("ctx")
        .digest()
        .expect("digest");
    let first = ctx(&root, &cache);
    assert_eq!(first.digest().expect("digest"), truth);
    std::thread::sleep(Duration::from_millis(50));
    first.save_stat_cache().expect("save");
    assert!(cache.is_file());

    // A trusted cache is believed: poisoned digests show up.
    std::thread::sleep(Duration::from_millis(50));
    poison(&cache, &[b"alpha", b"beta"]);
    let believed = ctx(&root, &cache).digest().expect("digest");
    assert_ne!(believed, truth, "unchanged files must come from the cache");

    // Racy: the cache file is not newer than the files, so nothing in it is trusted.
    set_mtime(&cache, SystemTime::UNIX_EPOCH + Duration::from_secs(1));
    assert_eq!(ctx(&root, &cache).digest().expect("digest"), truth);
}

#[test]
fn changed_files_and_corrupt_caches_are_rehashed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("ctx");
    fs::create_dir(&root).expect("mkdir");
    fs::write(root.join("a"), "alpha").expect("write");
    let cache = dir.path().join("cache.json");
    let c = ctx(&root, &cache);
    c.digest().expect("digest");
    std::thread::sleep(Duration::from_millis(50));
    c.save_stat_cache().expect("save");

    fs::write(root.join("a"), "changed, longer").expect("write");
    let truth = BuildContext::from_dir(&root, None)
        .expect("ctx")
        .digest()
        .expect("digest");
    assert_eq!(ctx(&root, &cache).digest().expect("digest"), truth);

    fs::write(&cache, "{ not json").expect("corrupt");
    assert_eq!(ctx(&root, &cache).digest().expect("digest"), truth);
    ctx(&root, &cache)
        .save_stat_cache()
        .expect("saving over a corrupt cache works");
}
