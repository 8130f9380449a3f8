//! Layer bytes are pinned: a fixed snapshot tree written as a layer tar has a known diff_id.
//! The digests were computed by the layer writer before it moved to `rbuild-archive`; any
//! change to the bytes of a layer (headers, PAX records, order, padding) shows here.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;

use rbuild_archive::testutil;
use rbuild_oci::layer::{write_tar, write_tar_clamped};

/// The diff_id of [`make_tree`]'s layer.
const PINNED: &str = "sha256:2e989a22cf556fab49588a0ea52b5dbd14cfd131565261fee8e19253dbe1e316";
/// The diff_id of the same layer with SOURCE_DATE_EPOCH=1500000000.
const PINNED_CLAMPED: &str =
    "sha256:c9874452c97bd3ae2732aa1261e21b066b4daca035d7dfbbc97f3c1ba3615996";

fn set_mtime(p: &Path, t: i64) {
    testutil::set_mtime(p, t).expect("set mtime");
}

fn chown(p: &Path, uid: u32, gid: u32) {
    nix::unistd::fchownat(
        None,
        p,
        Some(nix::unistd::Uid::from_raw(uid)),
        Some(nix::unistd::Gid::from_raw(gid)),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .expect("chown");
}

fn write(p: &Path, data: &[u8], mode: u32) {
    fs::write(p, data).expect("write");
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).expect("chmod");
}

/// Every kind of entry a layer holds, with owners, modes and mtimes fixed (needs root).
fn make_tree(root: &Path) {
    let long_dir = root.join("d".repeat(120));
    for dir in [root.join("a/b"), long_dir.clone(), root.join("opq")] {
        fs::create_dir_all(dir).expect("mkdir");
    }
    fs::set_permissions(root.join("a/b"), fs::Permissions::from_mode(0o700)).expect("chmod");
    write(&root.join("a/empty"), b"", 0o644);
    write(&root.join("a/one"), b"1", 0o600);
    write(&root.join("a/b/511"), &[5u8; 511], 0o644);
    write(&root.join("a/b/512"), &[6u8; 512], 0o644);
    write(&root.join("a/b/513"), &[7u8; 513], 0o644);
    write(&root.join("a/big"), &vec![8u8; 70_000], 0o755);
    write(&root.join("a/setuid"), b"#!/bin/sh\n", 0o4755);
    write(&long_dir.join("f".repeat(110)), b"long", 0o644);
    write(&root.join(OsStr::from_bytes(b"n\xff\xfe")), b"bytes", 0o644);
    fs::hard_link(root.join("a/one"), root.join("a/one.link")).expect("hard link");
    symlink("b/511", root.join("a/short")).expect("symlink");
    symlink("t".repeat(150), root.join("a/longlink")).expect("symlink");
    nix::unistd::mkfifo(
        &root.join("fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .expect("mkfifo");
    nix::sys::stat::mknod(
        &root.join("a/gone"),
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::empty(),
        0,
    )
    .expect("whiteout");
    xattr::set(root.join("opq"), "trusted.overlay.opaque", b"y").expect("opaque");
    write(&root.join("opq/kept"), b"k", 0o644);
    let mut all = Vec::new();
    collect(root, &mut all);
    for p in &all {
        chown(p, 0, 0);
    }
    chown(&root.join("a/b/512"), 1234, 5678);
    chown(&root.join("a/b/513"), 3_000_000, 3_000_001);
    for p in all.iter().rev() {
        set_mtime(p, 1_600_000_000);
    }
    set_mtime(&root.join("a/empty"), 1_000_000_000);
}

/// Every path below `dir`, parents first.
fn collect(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    let mut names: Vec<_> = fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").path())
        .collect();
    names.sort();
    for p in names {
        out.push(p.clone());
        if fs::symlink_metadata(&p).expect("stat").is_dir() {
            collect(&p, out);
        }
    }
}

#[test]
fn layer_bytes_are_pinned() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("SKIPPED: layer_bytes_are_pinned because owners and whiteouts need root");
        return;
    }
    let t = tempfile::tempdir().expect("tempdir");
    make_tree(t.path());
    let mut plain = Vec::new();
    let d = write_tar(t.path(), &mut plain).expect("write");
    let mut clamped = Vec::new();
    let c = write_tar_clamped(t.path(), &mut clamped, Some(1_500_000_000)).expect("write");
    println!("layer {} ({} bytes)", d.diff_id, d.size);
    println!("clamped {} ({} bytes)", c.diff_id, c.size);
    assert_eq!(d.diff_id.to_string(), PINNED);
    assert_eq!(c.diff_id.to_string(), PINNED_CLAMPED);
}
