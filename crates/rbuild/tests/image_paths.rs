//! Paths inside the image resolve like BuildKit's (issue: real bases): on a merged-/usr base
//! (`/bin -> usr/bin`, `/lib -> usr/lib`, as Debian 12 and Ubuntu 24.04 ship), every path an
//! instruction writes or reads follows the image's symlinks inside the image root: COPY/ADD
//! destinations and their parents, WORKDIR, `COPY --from` sources, RUN mount targets and the
//! `/etc/passwd` that `--chown` reads. The expected layouts were checked against BuildKit 0.13.

mod support;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use support::{stderr, Env, BUSYBOX};

/// A world whose store has `mu:1`, a merged-/usr busybox base built offline: busybox and its
/// applets in /usr/bin, `/bin -> usr/bin`, `/sbin -> usr/sbin`, `/lib -> usr/lib`, and a
/// passwd whose `/etc/passwd` is itself a symlink.
fn merged_usr() -> Option<Env> {
    if !support::can_build_runs() {
        return None;
    }
    let env = Env::new();
    let ctx = env.path("mu-ctx");
    fs::create_dir_all(&ctx).expect("mkdir");
    fs::copy(BUSYBOX, ctx.join("busybox")).expect("copy busybox");
    fs::write(
        ctx.join("Dockerfile"),
        "FROM scratch\n\
         COPY busybox /usr/bin/busybox\n\
         RUN [\"/usr/bin/busybox\", \"sh\", \"-c\", \"/usr/bin/busybox --install -s /usr/bin && \
         /usr/bin/busybox mkdir -p /usr/lib /usr/sbin /etc /tmp && \
         /usr/bin/busybox ln -s usr/bin /bin && /usr/bin/busybox ln -s usr/sbin /sbin && \
         /usr/bin/busybox ln -s usr/lib /lib && \
         echo 'root:x:0:0:root:/root:/bin/sh' > /etc/passwd.real && \
         echo 'app:x:1234:4321::/home/app:/bin/sh' >> /etc/passwd.real && \
         /usr/bin/busybox ln -s passwd.real /etc/passwd && echo 'root:x:0:' > /etc/group\"]\n\
         ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin\n",
    )
    .expect("write Dockerfile");
    env.ok(&["build", "-q", "-t", "mu:1", ctx.to_str().expect("utf-8")]);
    Some(env)
}

fn is_link_to(path: &Path, target: &str) -> bool {
    fs::read_link(path).is_ok_and(|t| t == Path::new(target))
}

fn build_ctx(env: &Env, name: &str, dockerfile: &str, files: &[(&str, &str)]) -> PathBuf {
    let mut all = vec![("Dockerfile", dockerfile)];
    all.extend_from_slice(files);
    env.context(name, &all)
}

#[test]
fn copy_and_workdir_follow_the_images_links_and_keep_them() {
    let Some(env) = merged_usr() else { return };
    let ctx = build_ctx(
        &env,
        "ctx",
        "FROM mu:1\n\
         COPY tool /bin/tool\n\
         RUN tool > /ran\n\
         COPY tree/ /bin/\n\
         RUN mkdir -p /srv/data && ln -s /srv/data /data && echo old > /etc/target && \
             ln -s /etc/target /lf && ln -s /nonexist/y /dangling && ln -s ../../../../../etc /up\n\
         COPY f /data/\n\
         WORKDIR /data/sub\n\
         COPY f g\n\
         WORKDIR /data/new/deeper\n\
         COPY f /lf\n\
         COPY f /dangling\n\
         COPY f /up/x\n\
         COPY --chown=app f /owned\n",
        &[
            ("tool", "#!/bin/sh\necho tool ran\n"),
            ("tree/x", "x"),
            ("f", "f"),
        ],
    );
    fs::set_permissions(
        ctx.join("tool"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod");
    let out = env.build_local(&[], &ctx);
    assert!(is_link_to(&out.join("bin"), "usr/bin"), "/bin stays a link");
    assert!(is_link_to(&out.join("lib"), "usr/lib"));
    assert_eq!(
        fs::read_to_string(out.join("ran")).expect("ran"),
        "tool ran\n"
    );
    assert!(out.join("usr/bin/tool").is_file());
    assert_eq!(fs::read_to_string(out.join("usr/bin/x")).expect("x"), "x");
    assert!(
        is_link_to(&out.join("data"), "/srv/data"),
        "/data stays a link"
    );
    assert!(out.join("srv/data/f").is_file());
    assert!(out.join("srv/data/sub/g").is_file());
    assert!(out.join("srv/data/new/deeper").is_dir());
    // A last component that is a link is written through, inside the image.
    assert!(is_link_to(&out.join("lf"), "/etc/target"));
    assert_eq!(
        fs::read_to_string(out.join("etc/target")).expect("target"),
        "f"
    );
    assert!(is_link_to(&out.join("dangling"), "/nonexist/y"));
    assert_eq!(fs::read_to_string(out.join("nonexist/y")).expect("y"), "f");
    // `..` past the root stops at the image root.
    assert!(is_link_to(&out.join("up"), "../../../../../etc"));
    assert_eq!(fs::read_to_string(out.join("etc/x")).expect("x"), "f");
    // `--chown=app` read the /etc/passwd link.
    let owned = fs::metadata(out.join("owned")).expect("owned");
    assert_eq!((owned.uid(), owned.gid()), (1234, 4321));
}

#[test]
fn copy_from_follows_source_links_and_mounts_land_through_links() {
    let Some(env) = merged_usr() else { return };
    let ctx = build_ctx(
        &env,
        "ctx",
        "FROM mu:1 AS src\n\
         RUN mkdir -p /x/real && echo hi > /x/real/file && ln -s real /x/ldir && \
             ln -s file /x/real/lfile && ln -s /x/real/lfile /x/abs\n\
         FROM mu:1\n\
         COPY --from=src /x/ldir/lfile /o1\n\
         COPY --from=src /x/abs /o2\n\
         COPY --from=src /x/ldir /o3\n\
         COPY --from=src /x/ldir/* /o4/\n\
         COPY --from=src /x/l* /o5/\n\
         RUN mkdir -p /srv/d && ln -s /srv/d /mnt2\n\
         RUN --mount=type=tmpfs,target=/mnt2/tmp test -d /srv/d/tmp && echo > /mnt2/tmp/x && \
             ls /srv/d > /listing\n",
        &[],
    );
    let out = env.build_local(&[], &ctx);
    let file = |p: &str| fs::symlink_metadata(out.join(p)).expect(p);
    assert!(file("o1").is_file(), "a source link is followed");
    assert!(file("o2").is_file());
    assert!(file("o3").is_dir() && file("o3/file").is_file());
    assert!(
        is_link_to(&out.join("o3/lfile"), "file"),
        "links below are kept"
    );
    assert!(
        file("o4/lfile").is_file(),
        "each wildcard match is followed"
    );
    assert!(file("o5/file").is_file() && is_link_to(&out.join("o5/lfile"), "file"));
    assert!(!out.join("o5/ldir").exists());
    // The tmpfs landed on /srv/d/tmp; its mount point leaves no trace in the layer.
    assert_eq!(
        fs::read_to_string(out.join("listing")).expect("listing"),
        "tmp\n"
    );
}

#[test]
fn conflicts_and_loops_are_errors_like_buildkits() {
    let Some(env) = merged_usr() else { return };
    for (name, dockerfile, want) in [
        (
            "dir-over-link",
            "FROM mu:1\nCOPY tree/ /\n",
            "cannot copy to non-directory: /bin",
        ),
        (
            "dir-over-file",
            "FROM mu:1\nRUN mkdir /d && echo a > /d/file\nCOPY tree /d/file/\n",
            "mkdir /d/file: not a directory",
        ),
        (
            "file-over-dir",
            "FROM mu:1\nRUN mkdir -p /d/f/inner\nCOPY f /d/\n",
            "cannot replace to directory /d/f with file",
        ),
        (
            "loop",
            "FROM mu:1\nRUN ln -s /l2 /l1 && ln -s /l1 /l2\nCOPY f /l1/x\n",
            "too many levels of symbolic links resolving /l1/x",
        ),
        (
            "workdir-loop",
            "FROM mu:1\nRUN ln -s /l2 /l1 && ln -s /l1 /l2\nWORKDIR /l1/x\n",
            "too many levels of symbolic links resolving /l1/x",
        ),
    ] {
        let ctx = build_ctx(&env, name, dockerfile, &[("tree/bin/x", "x"), ("f", "f")]);
        let out = env.run(&["build", "-q", ctx.to_str().expect("utf-8")]);
        assert!(!out.status.success(), "{name} must fail");
        let err = stderr(&out);
        assert!(err.contains(want), "{name}: {err}");
    }
}

#[test]
fn a_link_to_a_host_path_is_followed_inside_the_image() {
    let Some(env) = merged_usr() else { return };
    // A directory of the host that an absolute link names: nothing may reach it.
    let host = env.path("host-target");
    fs::create_dir_all(&host).expect("mkdir");
    let host_str = host.to_str().expect("utf-8").to_string();
    let ctx = build_ctx(
        &env,
        "ctx",
        &format!(
            "FROM mu:1\nRUN ln -s {host_str} /data\nCOPY f /data/f\nWORKDIR /data/w\n\
             RUN --mount=type=tmpfs,target=/data/t true\n"
        ),
        &[("f", "f")],
    );
    let out = env.build_local(&[], &ctx);
    assert_eq!(
        fs::read_dir(&host).expect("host dir").count(),
        0,
        "host untouched"
    );
    let inside = out.join(host_str.trim_start_matches('/'));
    assert_eq!(fs::read_to_string(inside.join("f")).expect("inside"), "f");
    assert!(inside.join("w").is_dir());
}
