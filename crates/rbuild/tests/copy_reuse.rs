//! A COPY from the context whose selection changed in a few files builds its snapshot from the
//! last run's (`rbuild_cache::CopyDonors`): unchanged files are hard links to that snapshot's,
//! changed ones are copied, and the layer is byte for byte a cold build's.

mod support;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use support::{oci_layers, require_root, s, Env};

const DOCKERFILE: &str = "FROM scratch\nCOPY --chmod=640 . /app/\n";

/// A context of 60 files in nested directories, a symlink and an executable.
fn make_context(env: &Env, name: &str) -> PathBuf {
    let mut files: Vec<(String, String)> = (0..60)
        .map(|i| (format!("src/d{}/f{i}.txt", i % 6), format!("file {i}\n")))
        .collect();
    files.push(("Dockerfile".into(), DOCKERFILE.into()));
    files.push(("run.sh".into(), "#!/bin/sh\necho hi\n".into()));
    let borrowed: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    let ctx = env.context(name, &borrowed);
    fs::set_permissions(ctx.join("run.sh"), fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::symlink("src/d0/f0.txt", ctx.join("link")).unwrap();
    // Fixed mtimes, so that a copy of the context elsewhere has the same layer.
    for entry in walk(&ctx) {
        set_mtime(&entry, 1_700_000_000);
    }
    ctx
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.symlink_metadata().unwrap().is_dir() {
            out.extend(walk(&p));
        }
        out.push(p);
    }
    out
}

fn set_mtime(path: &Path, secs: i64) {
    let t = nix::sys::time::TimeSpec::new(secs, 0);
    nix::sys::stat::utimensat(
        None,
        path,
        &t,
        &t,
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    )
    .unwrap();
}

/// The inode of `rel` in every snapshot of `store` that has it, by snapshot.
fn inodes(store: &Path, rel: &str) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for e in fs::read_dir(store.join("snapshots")).unwrap() {
        let dir = e.unwrap().path();
        if let Ok(m) = fs::symlink_metadata(dir.join(rel)) {
            out.insert(dir.file_name().unwrap().to_string_lossy().into(), m.ino());
        }
    }
    out
}

fn layer_digests(layout: &Path) -> Vec<String> {
    oci_layers(layout)
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn a_copy_changed_in_a_few_files_links_the_rest_and_gives_a_cold_builds_layer() {
    if !require_root("to give copied files their owners (reuse needs it)") {
        return;
    }
    let env = Env::new();
    let ctx = make_context(&env, "ctx");
    env.ok(&[
        "build",
        "-q",
        "-o",
        &format!("type=oci,dest={},tar=false", s(&env.path("first"))),
        s(&ctx),
    ]);

    // One file changes (content and mtime), one is only touched (same content, new mtime).
    fs::write(ctx.join("src/d1/f1.txt"), "changed\n").unwrap();
    set_mtime(&ctx.join("src/d1/f1.txt"), 1_700_000_100);
    set_mtime(&ctx.join("src/d2/f2.txt"), 1_700_000_200);
    // A directory the donor lacks: its file is copied.
    fs::create_dir_all(ctx.join("src/new")).unwrap();
    fs::write(ctx.join("src/new/n.txt"), "new\n").unwrap();
    for p in ["src/new/n.txt", "src/new", "src"] {
        set_mtime(&ctx.join(p), 1_700_000_250);
    }
    let second = env.path("second");
    env.ok(&[
        "build",
        "-q",
        "-o",
        &format!("type=oci,dest={},tar=false", s(&second)),
        s(&ctx),
    ]);

    let store = &env.store;
    let same = |rel: &str| {
        let found = inodes(store, rel);
        assert_eq!(found.len(), 2, "{rel} in both snapshots: {found:?}");
        let set: std::collections::BTreeSet<_> = found.values().collect();
        set.len() == 1
    };
    assert!(same("app/src/d0/f0.txt"), "an unchanged file is linked");
    assert!(same("app/run.sh"), "an unchanged executable is linked");
    assert!(!same("app/src/d1/f1.txt"), "a changed file is copied");
    assert!(
        !same("app/src/d2/f2.txt"),
        "a touched file (new mtime) is copied"
    );
    assert_eq!(
        inodes(store, "app/src/new/n.txt").len(),
        1,
        "a new file is copied"
    );
    let linked = fs::metadata(
        inodes(store, "app/src/d0/f0.txt")
            .keys()
            .next()
            .map(|snap| store.join("snapshots").join(snap).join("app/src/d0/f0.txt"))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(linked.mode() & 0o7777, 0o640, "--chmod applied");
    assert_eq!(linked.mtime(), 1_700_000_000);

    // A cold build of the same context elsewhere gives the same layer, byte for byte.
    let cold = Env::new();
    let copy = cold.path("ctx");
    fs::create_dir_all(&copy).unwrap();
    let status = std::process::Command::new("cp")
        .args(["-a", &format!("{}/.", s(&ctx)), s(&copy)])
        .status()
        .unwrap();
    assert!(status.success());
    let cold_layout = cold.path("cold");
    cold.ok(&[
        "build",
        "-q",
        "-o",
        &format!("type=oci,dest={},tar=false", s(&cold_layout)),
        s(&copy),
    ]);
    assert_eq!(layer_digests(&second), layer_digests(&cold_layout));
    assert_ne!(layer_digests(&second), layer_digests(&env.path("first")));

    // The donor gone (pruned), the next change still builds the same layer, by copying.
    env.ok(&["prune", "--all", "-f"]);
    assert_eq!(
        fs::read_dir(store.join("copy-donors")).map_or(0, |d| d.count()),
        0,
        "records of pruned snapshots go with them"
    );
    fs::write(ctx.join("src/d3/f3.txt"), "again\n").unwrap();
    set_mtime(&ctx.join("src/d3/f3.txt"), 1_700_000_300);
    fs::write(copy.join("src/d3/f3.txt"), "again\n").unwrap();
    set_mtime(&copy.join("src/d3/f3.txt"), 1_700_000_300);
    let third = env.path("third");
    env.ok(&[
        "build",
        "-q",
        "-o",
        &format!("type=oci,dest={},tar=false", s(&third)),
        s(&ctx),
    ]);
    let cold_third = cold.path("cold-third");
    cold.ok(&[
        "build",
        "-q",
        "-o",
        &format!("type=oci,dest={},tar=false", s(&cold_third)),
        s(&copy),
    ]);
    assert_eq!(layer_digests(&third), layer_digests(&cold_third));
}

#[test]
fn no_cache_copies_every_file_afresh() {
    if !require_root("to give copied files their owners (reuse needs it)") {
        return;
    }
    let env = Env::new();
    let ctx = make_context(&env, "ctx");
    env.ok(&["build", "-q", "-t", "reuse:1", s(&ctx)]);
    let before = inodes(&env.store, "app/src/d0/f0.txt");
    fs::write(ctx.join("src/d1/f1.txt"), "changed\n").unwrap();
    env.ok(&["build", "-q", "--no-cache", "-t", "reuse:2", s(&ctx)]);
    let after = inodes(&env.store, "app/src/d0/f0.txt");
    assert_eq!(after.len(), 2, "{after:?}");
    let distinct: std::collections::BTreeSet<_> = after.values().collect();
    assert_eq!(
        distinct.len(),
        2,
        "--no-cache links nothing: {before:?} {after:?}"
    );
}

/// More files than one parallel batch of the copy (4,096): batches are copied on a thread of
/// their own while the next is listed. Both the first copy and the linking rerun give a cold
/// build's layer.
#[test]
fn a_copy_of_several_batches_gives_a_cold_builds_layer() {
    if !require_root("to give copied files their owners (reuse needs it)") {
        return;
    }
    let env = Env::new();
    let ctx = env.context("big", &[("Dockerfile", "FROM scratch\nCOPY . /app/\n")]);
    for i in 0..9_000 {
        let dir = ctx.join(format!("d{:02}", i % 40));
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(format!("f{i}")), format!("{i}\n")).unwrap();
    }
    for entry in walk(&ctx) {
        set_mtime(&entry, 1_700_000_000);
    }
    let build = |env: &Env, ctx: &Path, out: &str| {
        let dest = env.path(out);
        env.ok(&[
            "build",
            "-q",
            "-o",
            &format!("type=oci,dest={},tar=false", s(&dest)),
            s(ctx),
        ]);
        layer_digests(&dest)
    };
    let first = build(&env, &ctx, "first");
    fs::write(ctx.join("d07/f8007"), "changed\n").unwrap();
    set_mtime(&ctx.join("d07/f8007"), 1_700_000_100);
    let second = build(&env, &ctx, "second");
    assert_ne!(first, second);
    assert_eq!(
        inodes(&env.store, "app/d00/f0").len(),
        2,
        "an unchanged file is in both snapshots"
    );
    let linked: std::collections::BTreeSet<_> =
        inodes(&env.store, "app/d00/f0").into_values().collect();
    assert_eq!(linked.len(), 1, "and linked");

    let cold = Env::new();
    let copy = cold.path("big");
    let status = std::process::Command::new("cp")
        .args(["-a", s(&ctx), s(&copy)])
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(build(&cold, &copy, "cold"), second);
}
