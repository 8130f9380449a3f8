//! `--runtime`: RUN steps through an OCI runtime (Debian's runc) instead of the built-in
//! sandbox give the same image; bad values are usage errors. `RBUILD_SNAPSHOTTER=copy` (the
//! copy-and-diff snapshotter) gives the same image as overlayfs.

mod support;

use std::path::{Path, PathBuf};

use support::{require, s, stderr, Env};

const RUNC: &str = "/usr/sbin/runc";

/// Every path under `root` (relative, sorted), with a type letter and, for files, the content.
fn tree(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let path = entry.path();
        let rel = path
            .strip_prefix(root)
            .expect("under root")
            .display()
            .to_string();
        let ft = entry.file_type().expect("file type");
        if ft.is_symlink() {
            let target = std::fs::read_link(&path).expect("readlink");
            out.push(format!("l {rel} -> {}", target.display()));
        } else if ft.is_dir() {
            out.push(format!("d {rel}"));
            walk(root, &path, out);
        } else {
            let content = std::fs::read(&path).expect("read");
            out.push(format!("f {rel} {}", String::from_utf8_lossy(&content)));
        }
    }
}

const DOCKERFILE: &str = "FROM busybox\n\
RUN echo hi > /greeting && rm /bin/ls && mkdir -p /a/b && ln /greeting /a/b/h\n\
RUN id -u > /uid && hostname > /host && cat /etc/hosts >/dev/null\n\
RUN echo to-stdout && echo to-stderr >&2\n";

#[test]
fn runc_gives_the_same_image_as_the_builtin_sandbox() {
    if !require("runc (/usr/sbin/runc)", Path::new(RUNC).exists()) {
        return;
    }
    let Some(env) = Env::with_busybox() else {
        return;
    };
    let ctx = env.context("ctx", &[("Dockerfile", DOCKERFILE)]);
    let with_runc = env.path("with-runc");
    let out = env.ok(&[
        "build",
        "--progress=plain",
        "--runtime=runc",
        "-o",
        &format!("type=local,dest={}", s(&with_runc)),
        s(&ctx),
    ]);
    let log = stderr(&out);
    assert!(
        log.contains("to-stdout") && log.contains("to-stderr"),
        "{log}"
    );
    assert_eq!(
        std::fs::read_to_string(with_runc.join("greeting")).expect("greeting"),
        "hi\n"
    );
    assert!(
        !with_runc.join("bin/ls").exists(),
        "rm under runc is a whiteout"
    );
    assert_eq!(
        std::fs::read_to_string(with_runc.join("uid")).expect("uid"),
        "0\n"
    );

    // The same steps with the built-in sandbox (not from the cache: --no-cache).
    let builtin = env.path("builtin");
    env.ok(&[
        "build",
        "-q",
        "--no-cache",
        "-o",
        &format!("type=local,dest={}", s(&builtin)),
        s(&ctx),
    ]);
    assert_eq!(tree(&with_runc), tree(&builtin));
}

#[test]
fn runtime_by_path_reports_the_exit_code_of_a_failed_run() {
    if !require("runc (/usr/sbin/runc)", Path::new(RUNC).exists()) {
        return;
    }
    let Some(env) = Env::with_busybox() else {
        return;
    };
    let ctx = env.context("ctx", &[("Dockerfile", "FROM busybox\nRUN exit 3\n")]);
    let out = env.run(&["build", "--progress=plain", "--runtime", RUNC, s(&ctx)]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("exit code: 3"), "{err}");
}

#[test]
fn unknown_runtime_is_a_usage_error() {
    let env = Env::new();
    let ctx = env.context("ctx", &[("Dockerfile", "FROM scratch\nRUN true\n")]);
    for bad in ["no-such-runtime-xyz", "/nonexistent/runc"] {
        let out = env.run(&["build", "--runtime", bad, s(&ctx)]);
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains("--runtime") && err.contains(bad), "{err}");
    }
}

#[test]
fn copy_snapshotter_gives_the_same_image_as_overlay() {
    let Some(env) = Env::with_busybox() else {
        return;
    };
    let ctx = env.context("ctx", &[("Dockerfile", DOCKERFILE)]);
    let copied = env.path("copied");
    let out = env
        .cmd()
        .env("RBUILD_SNAPSHOTTER", "copy")
        .args([
            "build",
            "-q",
            "-o",
            &format!("type=local,dest={}", s(&copied)),
            s(&ctx),
        ])
        .output()
        .expect("run rbuild");
    assert!(out.status.success(), "{}", stderr(&out));
    let overlay = env.path("overlay");
    env.ok(&[
        "build",
        "-q",
        "--no-cache",
        "-o",
        &format!("type=local,dest={}", s(&overlay)),
        s(&ctx),
    ]);
    assert_eq!(tree(&copied), tree(&overlay));
    assert!(!copied.join("bin/ls").exists());

    let bad = env
        .cmd()
        .env("RBUILD_SNAPSHOTTER", "zfs")
        .args(["build", "-q", s(&ctx)])
        .output()
        .expect("run rbuild");
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
}

/// Builds `ctx` with `--no-cache` into `<prefix>-<runtime>` once per runtime there is: the
/// built-in sandbox, and runc when installed. Each runtime with its root filesystem.
fn build_with_each_runtime(env: &Env, ctx: &Path, prefix: &str) -> Vec<(&'static str, PathBuf)> {
    let mut runtimes = vec!["builtin"];
    if require("runc (Debian package)", Path::new(RUNC).exists()) {
        runtimes.push(RUNC);
    }
    let build = |runtime: &'static str| {
        let out = env.path(&format!("{prefix}-{}", runtime.replace('/', "_")));
        let dest = format!("type=local,dest={}", s(&out));
        let rt = format!("--runtime={runtime}");
        let mut args = vec!["build", "-q", "--no-cache", "-o", &dest];
        if runtime != "builtin" {
            args.push(&rt);
        }
        args.push(s(ctx));
        env.ok(&args);
        (runtime, out)
    };
    runtimes.into_iter().map(build).collect()
}

/// The supplementary groups of a RUN, as BuildKit gives them since the CVE-2023-25173 fix
/// (moby/buildkit#3651): the user's memberships in the image's /etc/group plus the primary
/// gid; an unset USER gets root's. The expected lines are BuildKit 0.13's output for the same
/// Dockerfile. Both executors must agree.
#[test]
fn run_gets_buildkits_supplementary_groups() {
    let Some(env) = Env::with_busybox() else {
        return;
    };
    let ctx = env.context(
        "ctx",
        &[(
            "Dockerfile",
            "FROM busybox\n\
             RUN echo 'app:x:1000:1000::/home/app:/bin/sh' >> /etc/passwd && \
                 echo 'app:x:1000:' >> /etc/group && echo 'staff:x:50:app' >> /etc/group && \
                 echo 'wheel:x:10:root,app' >> /etc/group && mkdir /o && chmod 777 /o\n\
             RUN id > /o/unset\n\
             USER 1234:5678\nRUN id > /o/numeric\n\
             USER app\nRUN id > /o/app\n\
             USER app:staff\nRUN id > /o/appstaff\n\
             USER 1000\nRUN id > /o/uid\n\
             USER root\nRUN id > /o/root\n\
             FROM scratch\nCOPY --from=0 /o /\n",
        )],
    );
    let want = [
        ("unset", "uid=0(root) gid=0(root) groups=0(root),10(wheel)"),
        ("numeric", "uid=1234 gid=5678 groups=5678"),
        (
            "app",
            "uid=1000(app) gid=1000(app) groups=10(wheel),50(staff),1000(app)",
        ),
        ("appstaff", "uid=1000(app) gid=50(staff) groups=50(staff)"),
        (
            "uid",
            "uid=1000(app) gid=1000(app) groups=10(wheel),50(staff),1000(app)",
        ),
        ("root", "uid=0(root) gid=0(root) groups=0(root),10(wheel)"),
    ];
    for (runtime, out) in build_with_each_runtime(&env, &ctx, "out") {
        for (file, line) in want {
            let got = std::fs::read_to_string(out.join(file)).expect(file);
            assert_eq!(got.trim_end(), line, "{runtime}: USER for {file}");
        }
    }
}

/// The sandbox's host name, /etc/hosts and its read-only binds are BuildKit's (executor/oci:
/// `buildkitsandbox`, `initHostsFile`, `withROBind`), with both executors: packages write the
/// host name into what they generate (ssh host keys, certificates).
#[test]
fn run_sees_buildkits_hostname_and_hosts() {
    let Some(env) = Env::with_busybox() else {
        return;
    };
    let ctx = env.context(
        "ctx",
        &[(
            "Dockerfile",
            "FROM busybox\nRUN hostname > /h && cp /etc/hosts /hosts && \
             if echo x >> /etc/hosts; then echo rw; else echo ro; fi > /w\n",
        )],
    );
    for (runtime, out) in build_with_each_runtime(&env, &ctx, "hosts") {
        let read = |f: &str| std::fs::read_to_string(out.join(f)).expect(f);
        assert_eq!(read("h"), "buildkitsandbox\n", "{runtime}");
        assert_eq!(
            read("hosts"),
            "127.0.0.1\tlocalhost buildkitsandbox\n::1\tlocalhost ip6-localhost ip6-loopback\n",
            "{runtime}"
        );
        assert_eq!(
            read("w"),
            "ro\n",
            "{runtime}: /etc/hosts is bound read-only"
        );
    }
}
