//! The copy-and-diff snapshotter gives the same layer as the overlay snapshotter: each script
//! runs on two identical fixtures, one per snapshotter, and the upper dirs are compared entry by
//! entry (type, mode, owner, content, link target, device number, opaque flag, hardlinks).

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use common::{can_run, explain, failed, init_exe, ok, runc_executor, Fixture};
use rbuild_graph::NetworkMode;
use rbuild_sandbox::{detect_privileges, NamespaceExecutor, Snapshotter};

/// A fixture with a second layer holding `/d/{1,2,sub/3}` and a hardlinked pair in `/l`.
fn fixture() -> Fixture {
    let mut f = Fixture::new();
    let layer = f.dir.path().join("layer1");
    std::fs::create_dir_all(layer.join("d/sub")).expect("mkdir");
    std::fs::create_dir_all(layer.join("l")).expect("mkdir");
    for (p, c) in [
        ("d/1", "one"),
        ("d/2", "two"),
        ("d/sub/3", "three"),
        ("l/a", "a"),
    ] {
        std::fs::write(layer.join(p), c).expect("write");
    }
    std::fs::hard_link(layer.join("l/a"), layer.join("l/b")).expect("link");
    f.layers.push(layer);
    f
}

/// One upper-dir entry as compared: everything but inode numbers and times.
fn describe(path: &Path) -> String {
    let md = std::fs::symlink_metadata(path).expect("stat");
    let ft = md.file_type();
    let kind = if ft.is_dir() {
        let opaque = xattr::get(path, "trusted.overlay.opaque")
            .ok()
            .flatten()
            .is_some_and(|v| v == b"y");
        format!("dir opaque={opaque}")
    } else if ft.is_symlink() {
        format!(
            "symlink -> {}",
            std::fs::read_link(path).expect("readlink").display()
        )
    } else if ft.is_file() {
        format!(
            "file {:?} links={}",
            String::from_utf8_lossy(&std::fs::read(path).expect("read")),
            md.nlink()
        )
    } else if ft.is_char_device() {
        format!("char {}", md.rdev())
    } else if ft.is_fifo() {
        "fifo".to_string()
    } else {
        "other".to_string()
    };
    format!("{kind} mode={:o} {}:{}", md.mode(), md.uid(), md.gid())
}

fn upper_tree(upper: &Path) -> BTreeMap<PathBuf, String> {
    common::tree(upper)
        .into_iter()
        .map(|rel| (PathBuf::from(&rel), describe(&upper.join(&rel))))
        .collect()
}

/// Runs `script` with both snapshotters and returns both upper trees.
fn both(script: &str) -> (BTreeMap<PathBuf, String>, BTreeMap<PathBuf, String>) {
    let mut trees = Vec::new();
    for snapshotter in [Snapshotter::Overlay, Snapshotter::Copy] {
        let f = fixture();
        let exec =
            NamespaceExecutor::new(init_exe(), detect_privileges()).with_snapshotter(snapshotter);
        let (res, log) = f.run_with(&exec, script, "", NetworkMode::None);
        assert!(res.is_ok(), "{snapshotter:?}: {}", explain(&res, &log));
        assert!(
            !f.work.join("copyroot").exists(),
            "{snapshotter:?}: the copied root is removed after the run"
        );
        trees.push(upper_tree(&f.upper));
    }
    let copy = trees.pop().expect("copy");
    let overlay = trees.pop().expect("overlay");
    (overlay, copy)
}

fn same_layer(script: &str) {
    if !can_run() {
        return;
    }
    let (overlay, copy) = both(script);
    assert_eq!(overlay, copy, "script: {script}");
}

#[test]
fn copy_layer_matches_overlay_for_the_issue_example() {
    same_layer("rm /etc/x && mkdir -p /a/b && echo 1 > /a/f && ln /a/f /a/h");
}

#[test]
fn copy_layer_matches_overlay_for_mount_points_and_reads() {
    same_layer("echo data > /out.txt; cat /etc/hosts /etc/resolv.conf /d/1 >/dev/null; ls /dev /proc/self /sys >/dev/null");
}

#[test]
fn copy_layer_matches_overlay_for_a_replaced_directory() {
    same_layer("rm -rf /d && mkdir /d && echo new > /d/new && rm -r /l");
}

#[test]
fn copy_layer_matches_overlay_for_metadata_and_special_files() {
    same_layer(
        "chmod 700 /tmp && chown 1000:1000 /d/2 && mkfifo /fifo && ln -s /nowhere /link \
         && echo changed > /etc/group && touch -d @0 /etc/group && echo b >> /l/b \
         && echo gone > /tmp/f && rm /tmp/f && rm /d/sub/3",
    );
}

#[test]
fn copy_snapshotter_fails_like_overlay() {
    if !can_run() {
        return;
    }
    let f = fixture();
    let exec =
        NamespaceExecutor::new(init_exe(), detect_privileges()).with_snapshotter(Snapshotter::Copy);
    failed(
        f.run_with(&exec, "echo x > /x; exit 4", "", NetworkMode::None),
        |e| matches!(e, rbuild_ports::ExecError::Exit(4)),
    );
    assert!(!f.work.join("copyroot").exists());
    // Isolation holds with a plain bind-mounted root too.
    let f = fixture();
    ok(f.run_with(
        &exec,
        "test \"$(cat /proc/1/cmdline | tr '\\0' ' ')\" != '' && ! echo 1 > /proc/sys/kernel/domainname",
        "",
        NetworkMode::None,
    ));
    assert!(f.upper_entries().is_empty(), "{:?}", f.upper_entries());
}

#[test]
fn snapshotter_names_parse() {
    assert_eq!(Snapshotter::parse("copy"), Some(Snapshotter::Copy));
    assert_eq!(Snapshotter::parse("overlay"), Some(Snapshotter::Overlay));
    assert_eq!(Snapshotter::parse("zfs"), None);
}

#[test]
fn copy_snapshotter_works_under_runc() {
    let Some(mut exec) = runc_executor() else {
        return;
    };
    let script = "rm /etc/x && mkdir -p /a/b && echo 1 > /a/f && ln /a/f /a/h && rm -rf /d";
    let (overlay, _) = both(script);
    let f = fixture();
    exec.snapshotter = Snapshotter::Copy;
    ok(f.run_with(&exec, script, "", NetworkMode::None));
    assert_eq!(upper_tree(&f.upper), overlay);
}
