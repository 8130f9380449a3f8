//! A hardened RUN through the CLI (issue 16, item 6): Docker's default seccomp profile as an
//! allow list in both executors, `--isolation=chroot` for hosts that refuse namespaces, and a
//! build that says at its start when RUN has no outbound network.

mod support;

use std::process::Output;

use rbuild_test_support::syscall_probe;
use support::{require_tool, s, stderr, Env};

const NO_OUTBOUND: &str = "RUN has no outbound network";

fn count(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

/// Builds `ctx` with `args`, slirp4netns hidden (`RBUILD_SLIRP4NETNS` empty).
fn build_without_slirp(env: &Env, args: &[&str], ctx: &std::path::Path) -> Output {
    env.cmd()
        .env("RBUILD_SLIRP4NETNS", "")
        .args(["build", "--progress=plain"])
        .args(args)
        .arg(ctx)
        .output()
        .expect("run rbuild")
}

#[test]
fn without_slirp4netns_the_build_says_run_has_no_outbound_network() {
    let Some(env) = Env::with_busybox() else {
        return;
    };
    let addr = rbuild_test_support::http::serve("200 OK", b"hello-from-host".to_vec(), 1);
    // (Debian's busybox-static wget crashes with `-T` and with `-q -O-` into a pipe.)
    let fetch = format!(
        "FROM busybox\nRUN wget -O /tmp/got http://{addr}/ && grep -q hello-from-host /tmp/got\n"
    );
    let ctx = env.context("fetch", &[("Dockerfile", &fetch)]);

    // Default network without slirp4netns: said once, at the start, naming --network=host;
    // RUN gets loopback only, so the host's server is out of reach.
    let out = build_without_slirp(&env, &[], &ctx);
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    assert_eq!(count(&err, NO_OUTBOUND), 1, "{err}");
    assert!(
        err.contains("slirp4netns") && err.contains("--network=host"),
        "{err}"
    );
    assert!(
        err.find(NO_OUTBOUND) < err.find("RUN wget"),
        "said before the first RUN: {err}"
    );

    // --network=host reaches the host's loopback server, and nothing is said.
    let out = build_without_slirp(&env, &["--network=host"], &ctx);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert_eq!(count(&err, NO_OUTBOUND), 0, "{err}");

    // Nothing to say when no RUN uses the default network.
    let quiet = env.context(
        "quiet",
        &[("Dockerfile", "FROM busybox\nRUN --network=none true\n")],
    );
    let out = build_without_slirp(&env, &[], &quiet);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(count(&stderr(&out), NO_OUTBOUND), 0, "{}", stderr(&out));

    // The OCI runtime adapter gives loopback only: said as well.
    if let Some(runc) = require_tool("runc") {
        let plain = env.context("plain", &[("Dockerfile", "FROM busybox\nRUN true\n")]);
        let out = env.ok(&[
            "build",
            "--progress=plain",
            "--runtime",
            s(&runc),
            s(&plain),
        ]);
        let err = stderr(&out);
        assert_eq!(count(&err, NO_OUTBOUND), 1, "{err}");
        assert!(err.contains("OCI runtime"), "{err}");
    }
}

/// A context with the syscall probe and a Dockerfile whose RUN fails unless each probe gets
/// the errno Docker's default profile gives (io_uring, keyctl, mount, unshare refused; clone3
/// ENOSYS; getpid allowed).
fn seccomp_context(env: &Env) -> Option<std::path::PathBuf> {
    let ctx = env.context("seccomp", &[]);
    syscall_probe::build_probe(&ctx)?;
    let checks = [
        (format!("{} 1 0", libc::SYS_io_uring_setup), libc::EPERM),
        (format!("{} 0 -3 0", libc::SYS_keyctl), libc::EPERM),
        (format!("{} 0 0 0 0 0", libc::SYS_mount), libc::EPERM),
        (format!("{} 0x10000000", libc::SYS_unshare), libc::EPERM),
        (format!("{} 0 0", libc::SYS_clone3), libc::ENOSYS),
        (format!("{}", libc::SYS_getpid), 0),
    ];
    let run: Vec<String> = checks
        .iter()
        .map(|(args, errno)| format!("test \"$(/probe {args})\" = {errno}"))
        .collect();
    std::fs::write(
        ctx.join("Dockerfile"),
        format!(
            "FROM busybox\nCOPY probe /probe\nRUN {}\n",
            run.join(" && ")
        ),
    )
    .expect("write Dockerfile");
    Some(ctx)
}

#[test]
fn run_gets_dockers_seccomp_allow_list_in_both_executors() {
    let Some(env) = Env::with_busybox() else {
        return;
    };
    let Some(ctx) = seccomp_context(&env) else {
        return;
    };
    env.ok(&["build", "--progress=plain", s(&ctx)]);
    if let Some(runc) = require_tool("runc") {
        env.ok(&[
            "build",
            "--progress=plain",
            "--no-cache",
            "--runtime",
            s(&runc),
            s(&ctx),
        ]);
    }
}
