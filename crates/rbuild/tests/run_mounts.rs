//! `RUN --mount` end to end (frontend → solver → sandbox): cache directories persist and stay
//! out of layers, secrets are readable only during their RUN, bind mounts of the context honour
//! `.dockerignore`, tmpfs is empty and gone, an SSH agent socket is reachable, and
//! `--security=insecure` needs `--allow security.insecure`. Needs root and busybox-static.

mod support;

use std::io::{Read, Write};
use std::os::unix::net::UnixListener;
use std::path::Path;

use support::{s, stderr, stdout, Env};

/// Builds `dockerfile` in a new context with `files` and returns the exported rootfs.
fn build(env: &Env, name: &str, dockerfile: &str, files: &[(&str, &str)], args: &[&str]) -> String {
    let mut all: Vec<(&str, &str)> = vec![("Dockerfile", dockerfile)];
    all.extend_from_slice(files);
    let ctx = env.context(name, &all);
    let out = env.path(&format!("{name}-out"));
    let _ = std::fs::remove_dir_all(&out);
    let dest = format!("type=local,dest={}", out.display());
    let mut argv = vec!["build", "--progress=plain", "-o", &dest];
    argv.extend_from_slice(args);
    argv.push(s(&ctx));
    stderr(&env.ok(&argv)) + &format!("\n@out={}", out.display())
}

/// Whether any regular file under `dir` contains `needle`.
fn tree_contains(dir: &Path, needle: &[u8]) -> bool {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return false;
    };
    rd.flatten().any(|e| {
        let p = e.path();
        match e.file_type() {
            Ok(t) if t.is_dir() => tree_contains(&p, needle),
            Ok(t) if t.is_file() => {
                std::fs::read(&p).is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle))
            }
            _ => false,
        }
    })
}

fn out_dir(log: &str) -> std::path::PathBuf {
    log.rsplit_once("@out=").map(|(_, p)| p.into()).unwrap()
}

#[test]
fn cache_mount_keeps_files_between_builds_and_out_of_the_layer() {
    let Some(env) = Env::with_busybox() else {
        return;
    };
    let df = |n: &str| {
        format!(
            "FROM busybox\nRUN --mount=type=cache,target=/var/cache/app \
             echo {n} >> /var/cache/app/runs && cat /var/cache/app/runs > /seen\n"
        )
    };
    let first = build(&env, "c1", &df("one"), &[], &[]);
    assert_eq!(
        std::fs::read_to_string(out_dir(&first).join("seen")).unwrap(),
        "one\n"
    );
    let second = build(&env, "c2", &df("two"), &[], &[]);
    let root = out_dir(&second);
    assert_eq!(
        std::fs::read_to_string(root.join("seen")).unwrap(),
        "one\ntwo\n"
    );
    assert!(
        !root.join("var/cache/app/runs").exists(),
        "the cache mount's files are not in the image"
    );
    // --no-cache runs the step again but keeps the cache directory (as BuildKit does); the
    // next build sees what that run appended.
    build(&env, "c3", &df("two"), &[], &["--no-cache"]);
    let fourth = build(&env, "c4", &df("three"), &[], &[]);
    assert_eq!(
        std::fs::read_to_string(out_dir(&fourth).join("seen")).unwrap(),
        "one\ntwo\ntwo\nthree\n"
    );
    let du = stdout(&env.ok(&["du"]));
    assert!(du.contains("cache mounts"), "{du}");
    let pruned = stdout(&env.ok(&["prune", "--all"]));
    assert!(pruned.contains("removed 1 cache mounts"), "{pruned}");
}

#[test]
fn cache_mount_owner_mode_and_from_as_buildkit() {
    let Some(env) = Env::with_busybox() else {
        return;
    };
    // Checked against BuildKit (dockerd 20.10): uid/gid/mode apply to a new empty cache
    // directory; with `from`, the directory is a copy of the source's, mode and owner included.
    let df = "FROM busybox AS seed\n\
              RUN mkdir -p /data && chmod 0750 /data && chown 5:6 /data && echo seeded > /data/f\n\
              FROM busybox\n\
              RUN --mount=type=cache,target=/c,id=seeded,from=seed,source=/data,uid=1000,mode=0700 \
              stat -c '%a %u %g' /c > /from && cat /c/f > /seen\n\
              RUN --mount=type=cache,target=/d,id=owned,uid=1000,gid=1001,mode=0700 \
              stat -c '%a %u %g' /d > /owned\n\
              RUN --mount=type=cache,target=/e,id=plain stat -c '%a %u %g' /e > /plain\n";
    let log = build(&env, "owners", df, &[], &[]);
    let root = out_dir(&log);
    let read = |f: &str| std::fs::read_to_string(root.join(f)).unwrap();
    assert_eq!(read("from"), "750 5 6\n");
    assert_eq!(read("seen"), "seeded\n");
    assert_eq!(read("owned"), "700 1000 1001\n");
    assert_eq!(read("plain"), "755 0 0\n");
}

#[test]
fn cache_source_without_from_mounts_a_subdirectory_of_the_cache() {
    let Some(env) = Env::with_busybox() else {
        return;
    };
    // The sub-directory is created with the mount's uid/gid/mode; the whole cache sees it.
    let df = "FROM busybox\n\
              RUN --mount=type=cache,target=/c,id=subs,source=a/b,uid=7,gid=8,mode=0710 \
              stat -c '%a %u %g' /c > /sub && echo hi > /c/f\n\
              RUN --mount=type=cache,target=/all,id=subs cat /all/a/b/f > /seen\n";
    let log = build(&env, "subs", df, &[], &[]);
    let root = out_dir(&log);
    let read = |f: &str| std::fs::read_to_string(root.join(f)).unwrap();
    assert_eq!(read("sub"), "710 7 8\n");
    assert_eq!(read("seen"), "hi\n");
}

#[test]
fn locked_cache_mount_serialises_two_rbuild_processes() {
    let Some(env) = Env::with_busybox() else {
        return;
    };
    let df = |n: &str| {
        format!(
            "FROM busybox\nRUN --mount=type=cache,target=/c,id=lk,sharing=locked \
             echo start-{n} >> /c/log && sleep 1 && echo end-{n} >> /c/log\n"
        )
    };
    let children: Vec<_> = ["a", "b"]
        .iter()
        .map(|n| {
            let ctx = env.context(&format!("lk-{n}"), &[("Dockerfile", &df(n))]);
            env.cmd()
                .args(["build", "-q", s(&ctx)])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let read = "FROM busybox\nRUN --mount=type=cache,target=/c,id=lk cat /c/log > /log\n";
    let log = build(&env, "lk-read", read, &[], &[]);
    let lines = std::fs::read_to_string(out_dir(&log).join("log")).unwrap();
    let lines: Vec<&str> = lines.lines().collect();
    assert_eq!(lines.len(), 4, "{lines:?}");
    for pair in lines.chunks(2) {
        assert_eq!(
            pair[0].strip_prefix("start-"),
            pair[1].strip_prefix("end-"),
            "runs interleaved: {lines:?}"
        );
    }
}

#[test]
fn secret_is_readable_during_its_run_only() {
    let Some(env) = Env::with_busybox() else {
        return;
    };
    let secret = env.path("token.txt");
    std::fs::write(&secret, "s3cr3t-v4lue").unwrap();
    let src = format!("id=tok,src={}", secret.display());
    let df = "FROM busybox\n\
              RUN --mount=type=secret,id=tok,required=true \
              stat -c %a /run/secrets/tok > /mode && wc -c < /run/secrets/tok > /len\n\
              RUN --mount=type=secret,id=tok,env=TOK test \"$TOK\" = s3cr3t\"\"-v4lue && echo ok > /env\n\
              RUN test ! -e /run/secrets/tok && echo gone > /after\n";
    let log = build(&env, "sec", df, &[], &["--secret", &src]);
    let root = out_dir(&log);
    assert_eq!(std::fs::read_to_string(root.join("mode")).unwrap(), "400\n");
    assert_eq!(
        std::fs::read_to_string(root.join("len")).unwrap().trim(),
        "12"
    );
    assert_eq!(std::fs::read_to_string(root.join("env")).unwrap(), "ok\n");
    assert_eq!(
        std::fs::read_to_string(root.join("after")).unwrap(),
        "gone\n"
    );
    assert!(!root.join("run/secrets/tok").exists());
    assert!(!log.contains("s3cr3t-v4lue"), "{log}");
    assert!(
        !tree_contains(&env.store, b"s3cr3t-v4lue"),
        "the secret is somewhere in the store (layers, blobs, logs, index)"
    );

    // Missing and required: the build fails naming the secret (a cached step would not
    // need it, as in BuildKit, hence --no-cache).
    let ctx = env.context("sec-missing", &[("Dockerfile", df)]);
    let out = env.run(&["build", "--no-cache", "--progress=plain", s(&ctx)]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("secret tok not found"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn bind_of_the_context_does_not_see_ignored_files() {
    let Some(env) = Env::with_busybox() else {
        return;
    };
    let df = "FROM busybox\n\
              RUN --mount=type=bind,target=/src \
              ls -a /src | sort | tr '\\n' ' ' > /listing\n";
    let log = build(
        &env,
        "bind",
        df,
        &[
            (".dockerignore", "secret.env\n"),
            ("app.txt", "a"),
            ("secret.env", "no"),
        ],
        &[],
    );
    let listing = std::fs::read_to_string(out_dir(&log).join("listing")).unwrap();
    assert!(listing.contains("app.txt"), "{listing}");
    assert!(!listing.contains("secret.env"), "{listing}");
    assert!(!out_dir(&log).join("src/app.txt").exists());
}

#[test]
fn tmpfs_is_empty_and_gone() {
    let Some(env) = Env::with_busybox() else {
        return;
    };
    let df = "FROM busybox\nRUN mkdir -p /scratch && echo old > /scratch/old\n\
              RUN --mount=type=tmpfs,target=/scratch \
              ls -A /scratch | wc -l > /count && echo new > /scratch/new\n";
    let log = build(&env, "tmpfs", df, &[], &[]);
    let root = out_dir(&log);
    assert_eq!(
        std::fs::read_to_string(root.join("count")).unwrap().trim(),
        "0"
    );
    assert!(
        root.join("scratch/old").exists(),
        "the lower content is back"
    );
    assert!(!root.join("scratch/new").exists(), "tmpfs writes are gone");
}

/// A static Unix-socket client for the sandbox (busybox has none): connects to
/// `$SSH_AUTH_SOCK`, sends `hello`, prints the reply. Built with the C compiler Rust links with.
const SOCKET_CLIENT: &str = r#"
#include <sys/socket.h>
#include <sys/un.h>
#include <string.h>
#include <stdlib.h>
#include <unistd.h>
int main(void) {
    const char *p = getenv("SSH_AUTH_SOCK");
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    char buf[64];
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    if (!p || s < 0) return 2;
    strncpy(a.sun_path, p, sizeof a.sun_path - 1);
    if (connect(s, (struct sockaddr *)&a, sizeof a) != 0) return 3;
    if (write(s, "hello", 5) != 5) return 4;
    ssize_t n = read(s, buf, sizeof buf);
    if (n <= 0) return 5;
    return write(1, buf, n) == n ? 0 : 6;
}
"#;

#[test]
fn ssh_agent_socket_is_reachable_with_its_owner_and_mode() {
    let Some(env) = Env::with_busybox() else {
        return;
    };
    let df = "FROM busybox\nRUN --mount=type=ssh,required=true true\n";
    let ctx = env.context("ssh-missing", &[("Dockerfile", df)]);
    let out = env.run(&["build", "--progress=plain", s(&ctx)]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("no SSH agent"), "{}", stderr(&out));
    if !support::require("a C compiler (cc)", support::tool("cc").is_some()) {
        return;
    }
    let ctx = env.context(
        "ssh",
        &[(
            "Dockerfile",
            "FROM busybox\nCOPY client /client\n\
             RUN --mount=type=ssh,required=true,uid=1000,mode=0660 \
             stat -c '%a %u' \"$SSH_AUTH_SOCK\" > /mode && /client > /reply\n",
        )],
    );
    std::fs::write(env.path("client.c"), SOCKET_CLIENT).unwrap();
    let cc = std::process::Command::new("cc")
        .args(["-static", "-O1", "-o"])
        .arg(ctx.join("client"))
        .arg(env.path("client.c"))
        .output()
        .unwrap();
    assert!(cc.status.success(), "{}", stderr(&cc));
    // A tiny echo server stands in for the agent.
    let agent = env.path("agent.sock");
    let listener = UnixListener::bind(&agent).unwrap();
    let echo = std::thread::spawn(move || {
        let (mut c, _) = listener.accept().unwrap();
        let mut buf = [0u8; 5];
        c.read_exact(&mut buf).unwrap();
        c.write_all(&buf).unwrap();
    });
    let ssh = format!("default={}", agent.display());
    let root = env.build_local(&["--ssh", &ssh], &ctx);
    echo.join().unwrap();
    assert_eq!(
        std::fs::read_to_string(root.join("mode")).unwrap(),
        "660 1000\n"
    );
    assert_eq!(
        std::fs::read_to_string(root.join("reply")).unwrap(),
        "hello"
    );
}

#[test]
fn insecure_needs_the_entitlement() {
    let Some(env) = Env::with_busybox() else {
        return;
    };
    let df = "FROM busybox\nRUN --security=insecure echo insecure > /done\n";
    let ctx = env.context("insecure", &[("Dockerfile", df)]);
    let out = env.run(&["build", "--progress=plain", s(&ctx)]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("security.insecure is not allowed"), "{err}");
    assert!(
        err.contains("RUN --security=insecure"),
        "names the line: {err}"
    );
    let log = build(
        &env,
        "insecure-ok",
        df,
        &[],
        &["--allow", "security.insecure"],
    );
    assert!(out_dir(&log).join("done").exists());
}
