//! The merged view: precedence, whiteouts, opaque directories, symlink resolution.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use rbuild_cache::overlay::{create_whiteout, set_opaque, OPAQUE_XATTR, USER_OPAQUE_XATTR};
use rbuild_cache::{CacheError, MergedView};
use rbuild_test_support::require_root;

/// `n` empty layer directories under a tempdir, bottom first.
fn layers(n: usize) -> (tempfile::TempDir, Vec<PathBuf>) {
    let t = tempfile::tempdir().unwrap();
    let ls = (0..n)
        .map(|i| {
            let p = t.path().join(format!("l{i}"));
            fs::create_dir(&p).unwrap();
            p
        })
        .collect();
    (t, ls)
}

fn write(layer: &Path, rel: &str, content: &str) {
    let p = layer.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, content).unwrap();
}

fn read(view: &MergedView, path: &str) -> Option<String> {
    view.lookup(Path::new(path))
        .unwrap()
        .map(|e| fs::read_to_string(e.host_path).unwrap())
}

fn names(entries: &[rbuild_cache::MergedEntry]) -> Vec<String> {
    entries
        .iter()
        .map(|e| e.path.to_string_lossy().into_owned())
        .collect()
}

#[test]
fn upper_layers_win_and_directories_merge() {
    let (_t, ls) = layers(2);
    write(&ls[0], "etc/a", "lower a");
    write(&ls[0], "etc/b", "lower b");
    write(&ls[1], "etc/a", "upper a");
    write(&ls[1], "etc/c", "upper c");
    let v = MergedView::new(ls.clone());
    assert_eq!(read(&v, "/etc/a").as_deref(), Some("upper a"));
    assert_eq!(read(&v, "/etc/b").as_deref(), Some("lower b"));
    assert_eq!(read(&v, "/etc/missing"), None);
    let e = v.lookup(Path::new("/etc/./a")).unwrap().unwrap();
    assert_eq!(e.path, Path::new("/etc/a"));
    assert_eq!(e.host_path, ls[1].join("etc/a"));
    assert_eq!(
        names(&v.read_dir(Path::new("/etc")).unwrap()),
        ["/etc/a", "/etc/b", "/etc/c"]
    );
    assert_eq!(
        names(&v.walk(Path::new("/")).unwrap()),
        ["/etc", "/etc/a", "/etc/b", "/etc/c"]
    );
    // The directory entry itself comes from the topmost layer that has it.
    let etc = v.lookup(Path::new("/etc")).unwrap().unwrap();
    assert_eq!(etc.host_path, ls[1].join("etc"));
    assert!(etc.metadata.is_dir());
    let root = v.lookup(Path::new("/")).unwrap().unwrap();
    assert_eq!(root.host_path, ls[1]);
}

#[test]
fn non_directories_shadow_and_stop_merging() {
    let (_t, ls) = layers(3);
    write(&ls[0], "x/inner", "deep");
    write(&ls[1], "x", "now a file");
    write(&ls[2], "x/new", "dir again");
    let v = MergedView::new(ls[..2].to_vec());
    assert_eq!(read(&v, "/x").as_deref(), Some("now a file"));
    assert_eq!(read(&v, "/x/inner"), None, "below a file there is nothing");
    let v = MergedView::new(ls.clone());
    // The top directory merges only down to the file, which ends the merge.
    assert_eq!(names(&v.read_dir(Path::new("/x")).unwrap()), ["/x/new"]);
    assert_eq!(read(&v, "/x/inner"), None);
}

#[test]
fn whiteouts_hide_lower_entries() {
    if !require_root("to create 0:0 character devices") {
        return;
    }
    let (_t, ls) = layers(3);
    write(&ls[0], "etc/keep", "k");
    write(&ls[0], "etc/gone", "g");
    write(&ls[0], "opt/tree/deep", "d");
    fs::create_dir_all(ls[1].join("etc")).unwrap();
    create_whiteout(&ls[1].join("etc/gone")).unwrap();
    create_whiteout(&ls[1].join("opt")).unwrap();
    // Recreated above the whiteout: only the new contents are visible.
    write(&ls[2], "opt/fresh", "f");
    let v = MergedView::new(ls[..2].to_vec());
    assert_eq!(read(&v, "/etc/gone"), None);
    assert_eq!(read(&v, "/etc/keep").as_deref(), Some("k"));
    assert!(v.lookup(Path::new("/opt")).unwrap().is_none());
    assert!(v.lookup(Path::new("/opt/tree/deep")).unwrap().is_none());
    assert_eq!(
        names(&v.walk(Path::new("/")).unwrap()),
        ["/etc", "/etc/keep"]
    );
    assert!(matches!(
        v.read_dir(Path::new("/opt")),
        Err(CacheError::NotFound { .. })
    ));
    let v = MergedView::new(ls.clone());
    assert_eq!(names(&v.walk(Path::new("/opt")).unwrap()), ["/opt/fresh"]);
}

fn opaque_dirs_hide_lower_contents_with(xattr: &str) {
    let (_t, ls) = layers(3);
    write(&ls[0], "var/old", "o");
    write(&ls[0], "var/sub/older", "o");
    write(&ls[1], "var/mid", "m");
    write(&ls[2], "var/new", "n");
    set_opaque(&ls[1].join("var"), xattr).unwrap();
    let v = MergedView::new(ls.clone());
    assert_eq!(
        names(&v.walk(Path::new("/var")).unwrap()),
        ["/var/mid", "/var/new"]
    );
    assert_eq!(read(&v, "/var/old"), None);
    assert!(v.lookup(Path::new("/var/sub/older")).unwrap().is_none());
}

#[test]
fn opaque_dirs_hide_lower_contents_user_xattr() {
    opaque_dirs_hide_lower_contents_with(USER_OPAQUE_XATTR);
}

#[test]
fn opaque_dirs_hide_lower_contents_trusted_xattr() {
    if !require_root("to set trusted.* xattrs") {
        return;
    }
    opaque_dirs_hide_lower_contents_with(OPAQUE_XATTR);
}

#[test]
fn intermediate_symlinks_resolve_inside_the_image() {
    let (_t, ls) = layers(2);
    write(&ls[0], "real/dir/file", "content");
    symlink("/real", ls[0].join("abs")).unwrap();
    symlink("real/dir", ls[1].join("rel")).unwrap();
    // Escapes are clamped at the image root.
    symlink("../../../../real", ls[1].join("up")).unwrap();
    // A link to a host path resolves in the image, where /etc does not exist.
    symlink("/etc", ls[1].join("hostetc")).unwrap();
    fs::create_dir(ls[1].join("real")).unwrap();
    symlink("../real/dir", ls[1].join("real/back")).unwrap();
    let v = MergedView::new(ls.clone());

    assert_eq!(read(&v, "/abs/dir/file").as_deref(), Some("content"));
    assert_eq!(read(&v, "/rel/file").as_deref(), Some("content"));
    assert_eq!(read(&v, "/up/dir/file").as_deref(), Some("content"));
    assert_eq!(read(&v, "/real/back/file").as_deref(), Some("content"));
    assert!(v.lookup(Path::new("/hostetc/passwd")).unwrap().is_none());
    let e = v.lookup(Path::new("/abs/dir/file")).unwrap().unwrap();
    assert_eq!(
        e.path,
        Path::new("/abs/dir/file"),
        "paths are reported as asked"
    );
    assert_eq!(e.host_path, ls[0].join("real/dir/file"));

    // The final component is not followed by lookup, but is by read_dir.
    let link = v.lookup(Path::new("/abs")).unwrap().unwrap();
    assert!(link.metadata.file_type().is_symlink());
    assert_eq!(
        names(&v.read_dir(Path::new("/abs")).unwrap()),
        ["/abs/back", "/abs/dir"]
    );
    // walk lists symlinks without descending into them.
    assert_eq!(
        names(&v.walk(Path::new("/")).unwrap()),
        [
            "/abs",
            "/hostetc",
            "/real",
            "/real/back",
            "/real/dir",
            "/real/dir/file",
            "/rel",
            "/up"
        ]
    );
}

#[test]
fn symlink_loops_and_bad_paths_are_errors() {
    let (_t, ls) = layers(1);
    symlink("/l2", ls[0].join("l1")).unwrap();
    symlink("l1", ls[0].join("l2")).unwrap();
    write(&ls[0], "file", "f");
    let v = MergedView::new(ls);
    assert!(matches!(
        v.lookup(Path::new("/l1/x")),
        Err(CacheError::TooManySymlinks { .. })
    ));
    assert!(
        v.lookup(Path::new("/l1")).unwrap().is_some(),
        "not followed"
    );
    assert!(matches!(
        v.lookup(Path::new("relative")),
        Err(CacheError::RelativePath { .. })
    ));
    assert!(v.lookup(Path::new("/file/below")).unwrap().is_none());
    assert!(matches!(
        v.read_dir(Path::new("/file")),
        Err(CacheError::NotADirectory { .. })
    ));
    assert!(matches!(
        v.walk(Path::new("/nope")),
        Err(CacheError::NotFound { .. })
    ));
}

#[test]
fn empty_view_has_nothing() {
    let v = MergedView::new(Vec::new());
    assert!(v.lookup(Path::new("/")).unwrap().is_none());
    assert!(v.lookup(Path::new("/etc")).unwrap().is_none());
}
