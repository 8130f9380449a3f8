//! A store on a filesystem that fills up (a small tmpfs as `RBUILD_ROOT`): the failure says
//! "no space left on device" and names the store, and the store stays usable and holds no
//! partial data afterwards (nothing in `tmp/`, no snapshot nothing names).

mod support;

use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};

use support::{can_build_runs, require, s, stderr, Env};

/// A tmpfs of `megabytes` mounted at a path; unmounted on drop (also when a test fails).
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, megabytes: u32) -> Option<Tmpfs> {
        std::fs::create_dir_all(at).expect("mkdir mount point");
        let data = format!("size={megabytes}m");
        let mounted = mount(
            Some("tmpfs"),
            at,
            Some("tmpfs"),
            MsFlags::empty(),
            Some(data.as_str()),
        );
        require("mounting a tmpfs (root, mount(2) allowed)", mounted.is_ok())
            .then(|| Tmpfs(at.into()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = umount2(&self.0, MntFlags::MNT_DETACH);
    }
}

/// Names in a store directory.
fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Asserts that a failed build said the store is full and left no partial data: nothing
/// in `tmp/`, and no snapshot that only `prune --all` would find (after a plain `prune`,
/// which drops the cache records, exactly the tagged images' layers, `tagged`, are left).
fn assert_full_store_failure(env: &Env, out: &std::process::Output, tagged: &[String]) {
    assert_eq!(out.status.code(), Some(1), "{}", stderr(out));
    let err = stderr(out);
    assert!(err.contains("no space left on device"), "{err}");
    assert!(
        err.contains(&format!("the store {}", env.store.display())),
        "{err}"
    );
    assert_eq!(entries(&env.store.join("tmp")), Vec::<String>::new());
    env.ok(&["prune"]);
    assert_eq!(entries(&env.store.join("snapshots")), tagged);
}

#[test]
fn a_full_store_is_named_and_stays_clean_and_usable() {
    if !can_build_runs() {
        return;
    }
    let env = Env::new();
    let Some(_tmpfs) = Tmpfs::mount(&env.store, 48) else {
        return;
    };
    env.busybox();
    // Used once as a base, busybox's layers are also kept by diff_id (as pulled layers are).
    let warm = env.context(
        "warm",
        &[("Dockerfile", "FROM busybox\nRUN echo warm > /warm\n")],
    );
    env.ok(&["build", "-q", s(&warm)]);
    env.ok(&["prune"]);
    let base = entries(&env.store.join("snapshots"));

    // The command itself runs out of room.
    let ctx = env.context(
        "run-fails",
        &[(
            "Dockerfile",
            "FROM busybox\nRUN dd if=/dev/zero of=/big bs=1M count=200\n",
        )],
    );
    let out = env.run(&["build", "--progress=plain", s(&ctx)]);
    assert_full_store_failure(&env, &out, &base);
    assert!(stderr(&out).contains("exit code: 1"), "{}", stderr(&out));

    // The command ignores the error and succeeds: storing its layer fails.
    let ctx = env.context(
        "commit-fails",
        &[(
            "Dockerfile",
            "FROM busybox\nRUN echo warm > /warm\nRUN dd if=/dev/zero of=/big bs=1M count=200; echo done\n",
        )],
    );
    let out = env.run(&["build", "--progress=plain", s(&ctx)]);
    assert_full_store_failure(&env, &out, &base);

    // A COPY that does not fit.
    let big = vec![7u8; 60 * 1024 * 1024];
    let ctx = env.context(
        "copy-fails",
        &[("Dockerfile", "FROM busybox\nCOPY big /big\n")],
    );
    std::fs::write(ctx.join("big"), &big).expect("write big file");
    let out = env.run(&["build", "--progress=plain", s(&ctx)]);
    assert_full_store_failure(&env, &out, &base);

    // The store is usable: a small build works.
    let ctx = env.context(
        "fits",
        &[("Dockerfile", "FROM busybox\nRUN echo fits > /fits\n")],
    );
    env.ok(&["build", "-q", "-t", "fits:1", s(&ctx)]);
    env.ok(&["prune", "--all"]);
    assert_eq!(entries(&env.store.join("tmp")), Vec::<String>::new());
}
