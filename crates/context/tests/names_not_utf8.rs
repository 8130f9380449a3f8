//! File names that are not UTF-8 (Linux names are bytes): walked, matched, hashed, listed and
//! handed to the solver with their exact bytes, never replaced and never an error.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use rbuild_context::{rel_path, write_debug_listing, BuildContext, EntryKind};

fn name(bytes: &[u8]) -> &Path {
    Path::new(OsStr::from_bytes(bytes))
}

fn write(root: &Path, rel: &[u8], data: &[u8]) -> PathBuf {
    let path = root.join(name(rel));
    fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    fs::write(&path, data).expect("write");
    path
}

/// `f\xff\xfe`, `caf\xc3\xa9` (UTF-8), `ign\xfd` (ignored), `sub/d\xfc`, `link\xfb` → `f\xff\xfe`.
fn sample() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let r = dir.path();
    write(r, b"f\xff\xfe", b"named\n");
    write(r, "caf\u{e9}".as_bytes(), b"ok\n");
    write(r, b"ign\xfd", b"ignored\n");
    write(r, b"sub/d\xfc", b"x\n");
    write(r, b".dockerignore", b"ign\xfd\n");
    symlink(name(b"f\xff\xfe"), r.join(name(b"link\xfb"))).expect("symlink");
    dir
}

fn listing(ctx: &BuildContext) -> Vec<u8> {
    let mut out = Vec::new();
    write_debug_listing(ctx, &mut out).expect("listing");
    out
}

#[test]
fn names_are_walked_listed_and_ignored_by_their_bytes() {
    let dir = sample();
    let ctx = BuildContext::from_dir(dir.path(), None).expect("walk");
    let out = listing(&ctx);
    let paths: Vec<&[u8]> = out.split(|&b| b == b'\n').collect();
    assert_eq!(
        paths[..6],
        [
            b".dockerignore".as_slice(),
            "caf\u{e9}".as_bytes(),
            b"f\xff\xfe",
            b"link\xfb",
            b"sub/",
            b"sub/d\xfc",
        ]
    );
    assert!(paths[6].starts_with(b"sha256:"));
    let entries = ctx.list().expect("list");
    let link = entries
        .iter()
        .find(|e| e.kind == EntryKind::Symlink)
        .expect("the link");
    assert_eq!(link.rel_path().as_os_str().as_bytes(), b"link\xfb");
    assert_eq!(link.host_path, dir.path().join(name(b"link\xfb")));
    let target = link.link_target.as_deref().expect("a target");
    assert_eq!(rel_path(target).as_os_str().as_bytes(), b"f\xff\xfe");
    for e in &entries {
        assert!(e.host_path.symlink_metadata().is_ok(), "{:?}", e.host_path);
    }
}

#[test]
fn names_are_hashed_by_their_bytes() {
    let digest_of = |file: &[u8]| {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), file, b"same");
        let ctx = BuildContext::from_dir(dir.path(), None).expect("walk");
        let sel = ctx.select(".").expect("select");
        (ctx.digest().expect("digest"), sel.digest)
    };
    let a = digest_of(b"n\xff");
    let b = digest_of(b"n\xfe");
    let c = digest_of("n\u{FFFD}".as_bytes());
    assert_ne!(a, b);
    assert_ne!(a, c);
    assert_eq!(a, digest_of(b"n\xff"));
}

#[test]
fn wildcards_count_a_stray_byte_as_one_character() {
    let dir = sample();
    let ctx = BuildContext::from_dir(dir.path(), None).expect("walk");
    let roots = |src: &str| -> Vec<Vec<u8>> {
        ctx.select(src)
            .expect("select")
            .roots
            .iter()
            .map(|r| r.rel_path().as_os_str().as_bytes().to_vec())
            .collect()
    };
    assert_eq!(roots("f??"), vec![b"f\xff\xfe".to_vec()]);
    assert!(roots("f?").is_empty());
    assert_eq!(roots("caf?"), vec!["caf\u{e9}".as_bytes().to_vec()]);
    assert_eq!(roots("sub/d*"), vec![b"sub/d\xfc".to_vec()]);
    // A COPY source is text: a name that is UTF-8 is found as written.
    assert_eq!(roots("caf\u{e9}"), vec!["caf\u{e9}".as_bytes().to_vec()]);
    let sel = ctx.select("sub").expect("select");
    assert_eq!(
        sel.entries[0].rel_path().as_os_str().as_bytes(),
        b"sub/d\xfc"
    );
}

#[test]
fn names_of_the_escape_range_are_themselves() {
    // Names that are UTF-8 with characters of the range the escaped form uses.
    let dir = tempfile::tempdir().expect("tempdir");
    let real = "r\u{10FF80}";
    write(dir.path(), real.as_bytes(), b"1");
    write(dir.path(), b"r\xf4\x8f\xbe", b"2");
    let ctx = BuildContext::from_dir(dir.path(), None).expect("walk");
    let out = listing(&ctx);
    // Byte order: the broken sequence is a prefix of the character's encoding.
    assert!(
        out.starts_with(b"r\xf4\x8f\xbe\nr\xf4\x8f\xbe\x80\n"),
        "{out:?}"
    );
    let sel = ctx.select(real).expect("found as written");
    assert_eq!(
        sel.roots[0].rel_path().as_os_str().as_bytes(),
        real.as_bytes()
    );
    assert_eq!(fs::read(&sel.roots[0].host_path).expect("read"), b"1");
    assert_eq!(ctx.select("r?").expect("select").roots.len(), 1);
}
