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

const CHROOT_WARNING: &str = "--isolation=chroot: RUN runs in a chroot without namespaces";

/// rbuild as in an unprivileged container: root without CAP_SYS_ADMIN (no namespaces, no
/// mounts), through util-linux's setpriv; `None` (a loud skip) without it.
fn unprivileged(env: &Env) -> Option<std::process::Command> {
    let setpriv = require_tool("setpriv")?;
    let mut cmd = std::process::Command::new(setpriv);
    cmd.args(["--bounding-set=-sys_admin", "--inh-caps=-sys_admin", "--"])
        .arg(env!("CARGO_BIN_EXE_rbuild"))
        .env("RBUILD_ROOT", &env.store)
        .env("RBUILD_CONFIG", &env.config)
        .stdin(std::process::Stdio::null());
    Some(cmd)
}

const CHROOT_DOCKERFILE: &str = "FROM busybox\n\
    RUN echo 'app:x:1000:1000::/home/app:/bin/sh' >> /etc/passwd \\\n\
     && echo 'app:x:1000:' >> /etc/group && mkdir -p /home/app && chown 1000:1000 /home/app\n\
    RUN echo data > /data.txt && rm /bin/vi && echo gone > /dev/null && grep -q . /etc/resolv.conf\n\
    USER app\n\
    WORKDIR /home/app\n\
    RUN test \"$(id -u):$(id -g)\" = 1000:1000 && echo mine > made-by-app && test -O made-by-app\n\
    RUN setsid sleep 7717 >/dev/null 2>&1 & (sleep 7718 >/dev/null 2>&1 &) ; true\n";

/// Whether a process runs `sleep SECONDS` (left behind by a RUN).
fn sleeping(seconds: &str) -> bool {
    let wanted = format!("sleep\0{seconds}\0");
    std::fs::read_dir("/proc")
        .expect("read /proc")
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .any(|cmdline| cmdline == wanted.as_bytes())
}

/// The layers' diff IDs of the image an OCI layout at `layout` holds.
fn diff_ids(layout: &std::path::Path) -> Vec<serde_json::Value> {
    support::oci_config(layout)["rootfs"]["diff_ids"]
        .as_array()
        .expect("diff_ids")
        .clone()
}

#[test]
fn chroot_isolation_builds_where_namespaces_are_refused_with_the_same_layers() {
    let Some(env) = Env::with_busybox() else {
        return;
    };
    let Some(mut pod) = unprivileged(&env) else {
        return;
    };
    let ctx = env.context("chroot", &[("Dockerfile", CHROOT_DOCKERFILE)]);
    let chroot_out = env.path("chroot-layout");
    let out = pod
        .env("SOURCE_DATE_EPOCH", "1")
        .args(["build", "--progress=plain", "--isolation=chroot", "-o"])
        .arg(format!("type=oci,dest={},tar=false", s(&chroot_out)))
        .arg(&ctx)
        .output()
        .expect("run rbuild");
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert_eq!(count(&err, CHROOT_WARNING), 1, "said once: {err}");
    assert!(err.contains("weaker"), "{err}");
    // What the RUN left running (in its own session too) was killed when it ended.
    assert!(!sleeping("7717") && !sleeping("7718"));

    // The same Dockerfile in the namespaced sandbox gives the same layers: a file written, a
    // base file deleted (a whiteout), a file owned by USER; nothing of the chroot's furniture
    // (/etc/resolv.conf, /dev/null).
    let default_out = env.path("default-layout");
    let out = env
        .cmd()
        .env("SOURCE_DATE_EPOCH", "1")
        .args(["build", "--progress=plain", "--no-cache", "-o"])
        .arg(format!("type=oci,dest={},tar=false", s(&default_out)))
        .arg(&ctx)
        .output()
        .expect("run rbuild");
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert_eq!(count(&err, CHROOT_WARNING), 0, "{err}");
    let (chroot_ids, default_ids) = (diff_ids(&chroot_out), diff_ids(&default_out));
    // busybox's three layers, four RUNs and WORKDIR.
    assert_eq!(chroot_ids.len(), 8, "{chroot_ids:?}");
    assert_eq!(chroot_ids, default_ids);

    // Without mounts there is no /proc, but the device nodes and /etc files are there.
    let bare = env.context(
        "bare",
        &[(
            "Dockerfile",
            "FROM busybox\nRUN test ! -e /proc/self && test -c /dev/null && grep -q localhost /etc/hosts\n",
        )],
    );
    let mut pod = unprivileged(&env).expect("setpriv");
    let out = pod
        .args(["build", "--progress=plain", "--isolation=chroot"])
        .arg(&bare)
        .output()
        .expect("run rbuild");
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn refused_namespaces_name_chroot_isolation_and_chroot_refuses_what_needs_them() {
    let Some(env) = Env::with_busybox() else {
        return;
    };
    let Some(mut pod) = unprivileged(&env) else {
        return;
    };
    let ctx = env.context("plain", &[("Dockerfile", "FROM busybox\nRUN true\n")]);
    let out = pod
        .args(["build", "--progress=plain"])
        .arg(&ctx)
        .output()
        .expect("run rbuild");
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("refuses to create namespaces") && err.contains("--isolation=chroot"),
        "{err}"
    );

    for (dockerfile, needs) in [
        (
            "FROM busybox\nRUN --network=none true\n",
            "network namespace",
        ),
        (
            "FROM busybox\nRUN --mount=type=tmpfs,target=/t true\n",
            "mount namespace",
        ),
    ] {
        let ctx = env.context("needs", &[("Dockerfile", dockerfile)]);
        let out = env.run(&["build", "--progress=plain", "--isolation=chroot", s(&ctx)]);
        let err = stderr(&out);
        assert!(!out.status.success(), "{err}");
        assert!(
            err.contains(needs) && err.contains("--isolation=chroot"),
            "{err}"
        );
    }
    let out = env.run(&["build", "--isolation=chroot", "--runtime=runc", s(&ctx)]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let out = env.run(&["build", "--isolation=vm", s(&ctx)]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

#[test]
fn an_emulated_run_works_in_a_chroot_under_the_seccomp_profile() {
    if !support::can_build_runs() || !rbuild_test_support::emulator::require_emulator("aarch64") {
        return;
    }
    let Some(registry) = support::Registry::with_busybox_multi() else {
        return;
    };
    // QEMU runs on the host's side of the filter: the emulator's own syscalls must pass
    // Docker's profile, in the sandbox and in a chroot (binfmt_misc opens the interpreter
    // when it is registered, so the chroot need not hold it).
    let env = Env::new();
    let dockerfile = format!(
        "FROM {}/{}\nRUN uname -m > /machine\n",
        registry.addr,
        rbuild_test_support::registry::BUSYBOX_MULTI_REPO
    );
    let ctx = env.context("ctx", &[("Dockerfile", &dockerfile)]);
    for isolation in ["default", "chroot"] {
        let out = env.path(isolation);
        env.ok(&[
            "build",
            "-q",
            "--no-cache",
            "--platform",
            "linux/arm64",
            "--isolation",
            isolation,
            "-o",
            &format!("type=local,dest={}", s(&out)),
            s(&ctx),
        ]);
        assert_eq!(
            std::fs::read_to_string(out.join("machine")).expect("machine"),
            "aarch64\n",
            "{isolation}"
        );
    }
}
