//! Layer tar writer and unpacker: round trips, determinism, whiteouts, escapes.

use std::fs;
use std::io::Read;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::Path;

use rbuild_archive::testutil::{self, HeaderFormat, TarBuilder, TestEntry};
use rbuild_archive::ArchiveFormat;
use rbuild_oci::layer::{unpack, write_tar, write_tar_clamped, OPAQUE_MARKER};
use rbuild_oci::OciError;
use rbuild_test_support::{is_root, privileges, require_root};

fn set_mtime(p: &Path, t: i64) {
    testutil::set_mtime(p, t).expect("set mtime");
}

/// A tree with every kind of entry a layer can hold (devices and whiteouts only as root).
fn make_tree(root: &Path) {
    fs::create_dir_all(root.join("etc/deep")).unwrap();
    fs::write(root.join("etc/hosts"), b"127.0.0.1 localhost\n").unwrap();
    fs::write(root.join("etc/deep/big"), vec![7u8; 70_000]).unwrap();
    fs::set_permissions(root.join("etc/hosts"), fs::Permissions::from_mode(0o640)).unwrap();
    fs::hard_link(root.join("etc/hosts"), root.join("etc/hosts.link")).unwrap();
    symlink("../etc/hosts", root.join("etc/deep/sym")).unwrap();
    symlink("t".repeat(150), root.join("etc/longlink")).unwrap();
    let long = "d".repeat(120);
    fs::create_dir_all(root.join(&long)).unwrap();
    fs::write(root.join(&long).join("f".repeat(110)), b"long").unwrap();
    nix::unistd::mkfifo(
        &root.join("fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .unwrap();
    let _ = xattr::set(root.join("etc/hosts"), "user.note", b"hello");
    if require_root("for device nodes, whiteouts and ownership in the tree") {
        let dev = nix::sys::stat::makedev(1, 3);
        nix::sys::stat::mknod(
            &root.join("null"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::from_bits_truncate(0o666),
            dev,
        )
        .unwrap();
        nix::sys::stat::mknod(
            &root.join("etc/gone"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::empty(),
            0,
        )
        .unwrap();
        fs::create_dir(root.join("opq")).unwrap();
        xattr::set(root.join("opq"), "trusted.overlay.opaque", b"y").unwrap();
        fs::write(root.join("opq/kept"), b"k").unwrap();
        nix::unistd::chown(
            &root.join("etc/deep/big"),
            Some(nix::unistd::Uid::from_raw(1234)),
            Some(nix::unistd::Gid::from_raw(5678)),
        )
        .unwrap();
    }
    touch_all(root, 1_600_000_000);
}

/// Sets every mtime under `dir` (children before their directory) to `t`.
fn touch_all(dir: &Path, t: i64) {
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if fs::symlink_metadata(&p).unwrap().is_dir() {
            touch_all(&p, t);
        }
        set_mtime(&p, t);
    }
}

fn entry_names(tar_bytes: &[u8]) -> Vec<String> {
    testutil::names(tar_bytes).unwrap()
}

#[test]
fn write_unpack_write_gives_same_bytes() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    fs::create_dir(&src).unwrap();
    make_tree(&src);
    let mut first = Vec::new();
    let d1 = write_tar(&src, &mut first).unwrap();
    assert_eq!(d1.size, first.len() as u64);
    assert_eq!(d1.diff_id, rbuild_types::Digest::of(&first));

    let dst = t.path().join("dst");
    fs::create_dir(&dst).unwrap();
    let d2 = unpack(&first[..], &dst, &privileges()).unwrap();
    assert_eq!(d1, d2, "unpack reports the diff_id of the stream");

    let mut second = Vec::new();
    let d3 = write_tar(&dst, &mut second).unwrap();
    assert_eq!(d1, d3, "write → unpack → write is stable");
    assert_eq!(first, second);

    // Hardlinks stay hardlinks, symlinks stay symlinks, mtimes are kept.
    let a = fs::metadata(dst.join("etc/hosts")).unwrap();
    let b = fs::metadata(dst.join("etc/hosts.link")).unwrap();
    assert_eq!(a.ino(), b.ino());
    assert_eq!(a.mode() & 0o7777, 0o640);
    assert_eq!(a.mtime(), 1_600_000_000);
    assert_eq!(
        fs::read_link(dst.join("etc/deep/sym")).unwrap(),
        Path::new("../etc/hosts")
    );
    assert_eq!(
        fs::read(dst.join("etc/deep/big")).unwrap(),
        vec![7u8; 70_000]
    );
    let names = entry_names(&first);
    assert!(
        names.iter().any(|n| n.len() > 200),
        "long names kept via PAX"
    );
    if is_root() {
        assert!(names.contains(&"etc/.wh.gone".to_string()));
        assert!(names.contains(&format!("opq/{OPAQUE_MARKER}")));
        let gone = fs::symlink_metadata(dst.join("etc/gone")).unwrap();
        assert_eq!(gone.rdev(), 0);
        assert_eq!(
            xattr::get(dst.join("opq"), "trusted.overlay.opaque").unwrap(),
            Some(b"y".to_vec())
        );
        assert_eq!(fs::metadata(dst.join("etc/deep/big")).unwrap().uid(), 1234);
    }
}

#[test]
fn tar_layout_is_deterministic_and_clean() {
    let t = tempfile::tempdir().unwrap();
    let (a, b) = (t.path().join("a"), t.path().join("b"));
    for d in [&a, &b] {
        fs::create_dir(d).unwrap();
        make_tree(d);
    }
    let (mut ta, mut tb) = (Vec::new(), Vec::new());
    assert_eq!(
        write_tar(&a, &mut ta).unwrap(),
        write_tar(&b, &mut tb).unwrap()
    );
    assert_eq!(ta, tb);
    let names = entry_names(&ta);
    // Parents first, sorted, no overlay xattrs or uname/gname.
    let idx = |n: &str| names.iter().position(|x| x == n).unwrap();
    assert!(idx("etc/") < idx("etc/deep/"));
    assert!(idx("etc/deep/") < idx("etc/deep/big"));
    for e in testutil::list(&ta[..]).unwrap() {
        assert_eq!(e.uname, b"");
        for k in e.pax_keys {
            assert!(
                !k.contains("overlay") && k != "atime" && k != "ctime",
                "{k}"
            );
        }
    }
}

#[test]
fn mtime_clamp_lowers_newer_times() {
    let t = tempfile::tempdir().unwrap();
    fs::write(t.path().join("f"), b"x").unwrap();
    set_mtime(&t.path().join("f"), 2_000_000_000);
    let mut out = Vec::new();
    write_tar_clamped(t.path(), &mut out, Some(1_000)).unwrap();
    let e = testutil::list(&out[..]).unwrap().remove(0);
    assert_eq!(e.mtime, 1_000);
}

#[test]
fn sockets_are_left_out() {
    let t = tempfile::tempdir().unwrap();
    let _sock = std::os::unix::net::UnixListener::bind(t.path().join("sock")).unwrap();
    fs::write(t.path().join("file"), b"f").unwrap();
    let mut out = Vec::new();
    write_tar(t.path(), &mut out).unwrap();
    assert_eq!(entry_names(&out), vec!["file".to_string()]);
}

#[test]
fn empty_dir_is_empty_tar() {
    let t = tempfile::tempdir().unwrap();
    let mut out = Vec::new();
    let d = write_tar(t.path(), &mut out).unwrap();
    assert!(d.is_empty_tar());
    assert_eq!(out, vec![0u8; 1024]);
}

/// A raw tar (old-style headers) of entries: name, type flag, link target, data.
fn raw_tar(entries: &[(&str, u8, &str, &[u8])]) -> Vec<u8> {
    let mut b = TarBuilder::new();
    for (name, kind, link, data) in entries {
        let mut e = TestEntry::file(name, data)
            .flag(*kind)
            .format(HeaderFormat::V7);
        e.link = link.as_bytes().to_vec();
        b.add(e);
    }
    b.finish()
}

#[test]
fn escapes_are_rejected() {
    let cases: Vec<Vec<u8>> = vec![
        raw_tar(&[("../evil", b'0', "", b"x")]),
        raw_tar(&[("a/../../evil", b'0', "", b"x")]),
        raw_tar(&[("/abs", b'0', "", b"x")]),
        raw_tar(&[("link", b'2', "/", b""), ("link/evil", b'0', "", b"x")]),
        raw_tar(&[("link", b'2', "../..", b""), ("link/evil", b'0', "", b"x")]),
        raw_tar(&[("hl", b'1', "../outside", b"")]),
    ];
    for (i, tar_bytes) in cases.iter().enumerate() {
        let t = tempfile::tempdir().unwrap();
        let dest = t.path().join("dest");
        fs::create_dir(&dest).unwrap();
        let err = unpack(&tar_bytes[..], &dest, &privileges()).unwrap_err();
        assert!(matches!(err, OciError::Escape { .. }), "case {i}: {err}");
        assert!(!t.path().join("evil").exists());
    }
}

#[test]
fn gzip_and_zstd_layers_unpack_with_plain_diff_id() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("a"), b"aaa").unwrap();
    let mut plain = Vec::new();
    let d = write_tar(&src, &mut plain).unwrap();
    let mut gz = Vec::new();
    rbuild_oci::compress::gzip_parallel(&plain[..], &mut gz).unwrap();
    let zst = testutil::compress(&plain, ArchiveFormat::TarZstd).unwrap();
    for blob in [gz, zst] {
        let dest = tempfile::tempdir().unwrap();
        assert_eq!(unpack(&blob[..], dest.path(), &privileges()).unwrap(), d);
        let mut s = String::new();
        fs::File::open(dest.path().join("a"))
            .unwrap()
            .read_to_string(&mut s)
            .unwrap();
        assert_eq!(s, "aaa");
    }
}

#[test]
fn oci_whiteouts_become_overlay_format() {
    if !require_root("for mknod") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let tar_bytes = raw_tar(&[
        ("dir/", b'5', "", b""),
        ("dir/.wh..wh..opq", b'0', "", b""),
        ("dir/new", b'0', "", b"n"),
        (".wh.removed", b'0', "", b""),
    ]);
    unpack(&tar_bytes[..], t.path(), &privileges()).unwrap();
    let wh = fs::symlink_metadata(t.path().join("removed")).unwrap();
    assert!(std::os::unix::fs::FileTypeExt::is_char_device(
        &wh.file_type()
    ));
    assert_eq!(wh.rdev(), 0);
    assert_eq!(
        xattr::get(t.path().join("dir"), "trusted.overlay.opaque").unwrap(),
        Some(b"y".to_vec())
    );
    assert!(!t.path().join("dir/.wh..wh..opq").exists());
    assert!(!t.path().join(".wh.removed").exists());
}
