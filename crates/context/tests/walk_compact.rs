//! The compact walk against a naive reference: same paths, kinds, metadata and order, on
//! trees that exercise the parallel paths (a directory with more than 512 children, many
//! directories for the read-ahead workers), exceptions under excluded directories, symlinks
//! and special files.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{symlink, MetadataExt};
use std::path::Path;

use rbuild_context::dockerignore::PatternMatcher;
use rbuild_context::{walk, walk_order, BuildContext, EntryKind, Filter};
use rbuild_test_support::require;

use common::write;

/// Every path under `dir` (relative to `root`), described, by plain recursion.
fn reference(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
    for entry in fs::read_dir(dir).expect("read_dir") {
        let entry = entry.expect("entry");
        let path = entry.path();
        let rel = path
            .strip_prefix(root)
            .expect("under root")
            .to_str()
            .expect("utf-8")
            .to_string();
        let meta = fs::symlink_metadata(&path).expect("lstat");
        let ft = meta.file_type();
        let kind = if ft.is_dir() {
            "dir"
        } else if ft.is_file() {
            "file"
        } else if ft.is_symlink() {
            "symlink"
        } else {
            continue;
        };
        let target = if ft.is_symlink() {
            fs::read_link(&path)
                .expect("readlink")
                .to_string_lossy()
                .into_owned()
        } else {
            String::new()
        };
        let size = if ft.is_file() { meta.size() } else { 0 };
        out.insert(
            rel,
            format!(
                "{kind} {:o} {} {} {size} {target} {}",
                meta.mode() & 0o7777,
                meta.uid(),
                meta.gid(),
                meta.ino()
            ),
        );
        if ft.is_dir() {
            reference(root, &path, out);
        }
    }
}

fn big_tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let r = dir.path();
    for i in 0..700 {
        write(r, &format!("flat/f{i:04}.txt"), &format!("{i}"));
    }
    for d in 0..60 {
        for f in 0..5 {
            write(r, &format!("deep/d{d:02}/s/f{f}.log"), "log");
            write(r, &format!("deep/d{d:02}/s/f{f}.rs"), "rs");
        }
    }
    write(r, "deep/keep.log", "kept by exception");
    write(r, "node_modules/a/index.js", "excluded");
    write(r, "node_modules/b/keep.js", "re-included");
    write(r, "empty-excluded/x/y", "all excluded");
    write(r, "foo", "name sorts after foo.bar and foo/");
    write(r, "foo.bar", "");
    write(r, "foo-x/1", "");
    symlink("flat", r.join("link-to-dir")).expect("symlink");
    symlink("/nonexistent", r.join("dangling")).expect("symlink");
    let fifo = r.join("fifo");
    let status = std::process::Command::new("mkfifo").arg(&fifo).status();
    // Without mkfifo the tree has no special file: that part of the walk goes unchecked.
    require(
        "mkfifo (a special file in the tree)",
        matches!(status, Ok(s) if s.success()),
    );
    dir
}

#[test]
fn walk_equals_reference_unfiltered() {
    let dir = big_tree();
    let mut want = BTreeMap::new();
    reference(dir.path(), dir.path(), &mut want);
    let got = walk(dir.path(), &Filter::new()).expect("walk");
    let rels: Vec<&str> = got.iter().map(|w| w.entry.rel.as_str()).collect();
    assert!(
        rels.windows(2)
            .all(|p| walk_order(p[0], p[1]) == std::cmp::Ordering::Less),
        "walk order"
    );
    let got: BTreeMap<String, String> = got
        .iter()
        .map(|w| {
            let e = &w.entry;
            let kind = match e.kind {
                EntryKind::File => "file",
                EntryKind::Dir => "dir",
                EntryKind::Symlink => "symlink",
            };
            assert_eq!(e.host_path, dir.path().join(&e.rel));
            (
                e.rel.clone(),
                format!(
                    "{kind} {:o} {} {} {} {} {}",
                    e.mode,
                    e.uid,
                    e.gid,
                    e.size,
                    e.link_target.as_deref().unwrap_or(""),
                    w.stat.ino
                ),
            )
        })
        .collect();
    assert_eq!(got, want);
}

#[test]
fn walk_with_exclusions_and_exceptions() {
    let dir = big_tree();
    let patterns = [
        "node_modules",
        "!node_modules/b/keep.js",
        "**/*.log",
        "!deep/keep.log",
        "empty-excluded",
        "!empty-excluded/nothing-here",
    ];
    let filter = Filter::excluding(PatternMatcher::new(&patterns).expect("patterns"));
    let got: Vec<String> = walk(dir.path(), &filter)
        .expect("walk")
        .into_iter()
        .map(|w| w.entry.rel)
        .collect();
    // The reference: Docker's rule applied to every path of the unfiltered walk, then
    // directories that are excluded but hold something listed come back.
    let m = PatternMatcher::new(&patterns).expect("patterns");
    let all = walk(dir.path(), &Filter::new()).expect("walk");
    let listed: Vec<&str> = all
        .iter()
        .map(|w| w.entry.rel.as_str())
        .filter(|rel| !m.matches_or_parent_matches(rel))
        .collect();
    let mut want: Vec<String> = all
        .iter()
        .map(|w| w.entry.rel.clone())
        .filter(|rel| {
            !m.matches_or_parent_matches(rel)
                || listed.iter().any(|l| {
                    l.strip_prefix(rel.as_str())
                        .is_some_and(|r| r.starts_with('/'))
                })
        })
        .collect();
    want.sort_by(|a, b| walk_order(a, b));
    assert_eq!(got, want);
    assert!(got.contains(&"node_modules/b/keep.js".to_string()));
    assert!(got.contains(&"node_modules".to_string()));
    assert!(!got.contains(&"node_modules/a".to_string()));
    assert!(!got.iter().any(|r| r.starts_with("empty-excluded")));
    assert!(got.contains(&"deep/keep.log".to_string()));
    assert!(!got.contains(&"deep/d00/s/f0.log".to_string()));
    assert!(got.contains(&"deep/d59/s/f4.rs".to_string()));
}

#[test]
fn context_select_and_digest_over_the_big_tree() {
    let dir = big_tree();
    let ctx = BuildContext::from_dir(dir.path(), None).expect("context");
    assert_eq!(ctx.len(), ctx.list().expect("list").len());
    let flat = ctx.select("flat").expect("select");
    assert_eq!(flat.entries.len(), 700);
    let via_link = ctx.select("link-to-dir").expect("select");
    assert_eq!(
        via_link.digest, flat.digest,
        "a followed link selects the same"
    );
    let first = ctx.digest().expect("digest");
    let again = BuildContext::from_dir(dir.path(), None)
        .expect("context")
        .digest()
        .expect("digest");
    assert_eq!(first, again);
    // The digest after a select (memoised digests) equals the one before.
    ctx.select(".").expect("select all");
    assert_eq!(ctx.digest().expect("digest"), first);
}

#[test]
fn stat_cache_sees_a_changed_file_and_hard_links() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("ctx");
    write(&root, "a", "alpha");
    write(&root, "sub/b", "beta");
    fs::hard_link(root.join("a"), root.join("sub/a-link")).expect("hard link");
    let cache = dir.path().join("cache");
    let open = || {
        BuildContext::from_dir(&root, None)
            .expect("context")
            .with_stat_cache(&cache)
    };
    let first = open();
    let d1 = first.select(".").expect("select").digest;
    first.save_stat_cache().expect("save");
    std::thread::sleep(std::time::Duration::from_millis(20));
    let second = open();
    assert_eq!(second.select(".").expect("select").digest, d1);
    second.save_stat_cache().expect("save");
    write(&root, "sub/b", "BETA");
    let third = open();
    let d3 = third.select(".").expect("select").digest;
    assert_ne!(d3, d1, "a changed file is re-hashed");
    let truth = BuildContext::from_dir(&root, None)
        .expect("context")
        .select(".")
        .expect("select")
        .digest;
    assert_eq!(d3, truth);
}
