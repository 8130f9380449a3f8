//! The shipped artifacts through the CLI: the static (musl) binary of
//! `scripts/release-static.sh` is a static executable that builds, RUN steps included (its
//! sandbox init re-executes `/proc/self/exe`); and rbuild's own image (`release/Dockerfile`),
//! built by that binary with `scripts/release-image.sh` offline, holds the binary, the host's
//! CA bundle and a `/tmp`, and works as a CI job's image: run inside it (as a RUN step of a
//! build `FROM` it, as root, with the image's environment and default store), its rbuild builds
//! a Dockerfile; and run by podman as a privileged container (what a GitLab runner does), with
//! its store on its volume, it builds a Dockerfile with RUN.
//!
//! The static binary is built once, outside the test binary (minutes on two cores):
//! `.ci/run` runs `scripts/release-static.sh` before the suite. The tests look for it under the
//! same target directory as the rbuild under test (or at `RBUILD_STATIC_BIN`), and skip loudly
//! without it (a failure under `RBUILD_REQUIRE_ALL=1`).

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use support::*;

const HOST_CA: &str = "/etc/ssl/certs/ca-certificates.crt";

/// The static binary, or `None` after a loud skip.
fn static_binary() -> Option<PathBuf> {
    let path = match std::env::var_os("RBUILD_STATIC_BIN") {
        Some(p) => PathBuf::from(p),
        // target/debug/rbuild → target/x86_64-unknown-linux-musl/release/rbuild
        None => Path::new(env!("CARGO_BIN_EXE_rbuild"))
            .parent()
            .and_then(Path::parent)
            .expect("target dir")
            .join("x86_64-unknown-linux-musl/release/rbuild"),
    };
    let what = format!(
        "the static binary {} (scripts/release-static.sh)",
        path.display()
    );
    // Where CI could not fetch the musl target (`.ci/run` says why), a loud skip even under
    // RBUILD_REQUIRE_ALL: the machine, not rbuild, lacks it.
    if let (false, Some(why)) = (path.is_file(), std::env::var_os("RBUILD_NO_MUSL_TARGET")) {
        eprintln!("SKIPPED: {what} is not built: {}", why.to_string_lossy());
        return None;
    }
    require(what, path.is_file()).then_some(path)
}

fn run(bin: &Path, env: &Env, args: &[&str]) -> Output {
    Command::new(bin)
        .args(args)
        .env("RBUILD_ROOT", &env.store)
        .env("RBUILD_CONFIG", &env.config)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run the static rbuild")
}

fn ok(out: Output, what: &str) -> Output {
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn release_static_binary_is_static_and_builds_with_run() {
    let Some(bin) = static_binary() else {
        return;
    };
    let file = Command::new(require_tool("file").expect("file"))
        .arg("-b")
        .arg(&bin)
        .output()
        .expect("file");
    let desc = String::from_utf8_lossy(&file.stdout);
    assert!(
        desc.contains("statically linked") || desc.contains("static-pie linked"),
        "{desc}"
    );
    // glibc's ldd says so of a static executable, with a failure status.
    if let Some(ldd) = tool("ldd") {
        let out = Command::new(ldd).arg(&bin).output().expect("ldd");
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(
            text.contains("not a dynamic executable") || text.contains("statically linked"),
            "{text}"
        );
    }

    // A build with RUN: the sandbox's init is the static binary re-executed.
    let Some(env) = Env::with_busybox() else {
        return;
    };
    let ctx = env.context(
        "ctx",
        &[("Dockerfile", "FROM busybox\nRUN echo static > /made\n")],
    );
    let dest = env.path("out");
    let output = format!("type=local,dest={}", dest.display());
    ok(
        run(
            &bin,
            &env,
            &["build", "--progress=plain", "-o", &output, s(&ctx)],
        ),
        "the static rbuild's build",
    );
    assert_eq!(
        std::fs::read_to_string(dest.join("made")).unwrap(),
        "static\n"
    );
}

/// Builds rbuild's image with `scripts/release-image.sh` and `args`, by the static binary.
fn release_image(bin: &Path, env: &Env, args: &[&str]) -> Output {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/release-image.sh");
    Command::new("bash")
        .arg(script)
        .args(args)
        .env("RBUILD_BIN", bin)
        .env("RBUILD_ROOT", &env.store)
        .env("RBUILD_CONFIG", &env.config)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run release-image.sh")
}

#[test]
fn release_image_is_built_by_rbuild_and_works_as_a_job_image() {
    let Some(bin) = static_binary() else {
        return;
    };
    if !require(
        "the host's CA bundle (ca-certificates)",
        Path::new(HOST_CA).is_file(),
    ) {
        return;
    }
    let env = Env::new();
    ok(
        release_image(
            &bin,
            &env,
            &["--progress=plain", "-t", "rbuild-release:test"],
        ),
        "release-image.sh",
    );
    // Its files: the binary, the CA bundle, /tmp for everyone, the home of root.
    let rootfs = env.path("rootfs");
    let output = format!("type=local,dest={}", rootfs.display());
    ok(
        release_image(&bin, &env, &["--progress=plain", "-o", &output]),
        "release-image.sh -o type=local",
    );
    assert_eq!(
        std::fs::read(rootfs.join("usr/local/bin/rbuild")).unwrap(),
        std::fs::read(&bin).unwrap()
    );
    assert_eq!(
        std::fs::read(rootfs.join("etc/ssl/certs/ca-certificates.crt")).unwrap(),
        std::fs::read(HOST_CA).unwrap()
    );
    let mode = |p: &str| {
        std::fs::metadata(rootfs.join(p))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    };
    assert_eq!(mode("tmp"), 0o1777);
    assert_eq!(mode("usr/local/bin/rbuild"), 0o755);
    let mut top: Vec<String> = std::fs::read_dir(&rootfs)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    top.sort();
    assert_eq!(top, ["etc", "root", "tmp", "usr", "workspace"]);
    // Its config: rbuild is the entrypoint, with a PATH, a HOME and the CA bundle named.
    let inspect = ok(
        Command::new(env!("CARGO_BIN_EXE_rbuild"))
            .args(["inspect", "rbuild-release:test"])
            .env("RBUILD_ROOT", &env.store)
            .env("RBUILD_CONFIG", &env.config)
            .output()
            .unwrap(),
        "inspect",
    );
    let config: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap();
    let config = &config[0]["Config"];
    assert_eq!(
        config["Entrypoint"],
        serde_json::json!(["/usr/local/bin/rbuild"])
    );
    let envs: Vec<&str> = config["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(
        config["Volumes"],
        serde_json::json!({"/var/lib/rbuild": {}})
    );
    for want in [
        "PATH=/usr/local/bin",
        "HOME=/root",
        "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
    ] {
        assert!(envs.contains(&want), "{want} not in {envs:?}");
    }

    // As a job's image: a build FROM it runs its rbuild as root, with the image's environment
    // and default store, on a project copied in; the inner build's result comes out.
    if !can_build_runs() {
        return;
    }
    let ctx = env.context(
        "job",
        &[
            (
                "Dockerfile",
                "FROM rbuild-release:test\nCOPY project /workspace\n\
                 RUN [\"rbuild\", \"build\", \"--progress=plain\", \"-o\", \"type=local,dest=/out\", \".\"]\n\
                 FROM scratch\nCOPY --from=0 /out /\n",
            ),
            ("project/Dockerfile", "FROM scratch\nCOPY hello /hello\n"),
            ("project/hello", "built inside rbuild's image\n"),
        ],
    );
    let dest = env.path("job-out");
    ok(
        env.run(&[
            "build",
            "--progress=plain",
            "-o",
            &format!("type=local,dest={}", dest.display()),
            s(&ctx),
        ]),
        "a build in rbuild's image",
    );
    assert_eq!(
        std::fs::read_to_string(dest.join("hello")).unwrap(),
        "built inside rbuild's image\n"
    );
}

#[test]
fn release_image_debug_target_has_a_shell() {
    let Some(bin) = static_binary() else {
        return;
    };
    if !require_busybox() {
        return;
    }
    let env = Env::new();
    let rootfs = env.path("debug");
    let output = format!("type=local,dest={}", rootfs.display());
    ok(
        release_image(
            &bin,
            &env,
            &["--progress=plain", "--target", "debug", "-o", &output],
        ),
        "release-image.sh --target debug",
    );
    assert!(rootfs.join("usr/local/bin/rbuild").is_file());
    assert!(rootfs.join("busybox/busybox").is_file());
    assert_eq!(
        std::fs::read_link(rootfs.join("busybox/sh")).unwrap(),
        Path::new("busybox")
    );
}

#[test]
fn release_image_runs_in_podman_as_a_job_container_privileged_or_with_chroot_isolation() {
    let Some(bin) = static_binary() else {
        return;
    };
    if !require_root("podman --privileged needs it")
        || !require_busybox()
        || require_tool("podman").is_none()
        || !require(
            "the host's CA bundle (ca-certificates)",
            Path::new(HOST_CA).is_file(),
        )
    {
        return;
    }
    let env = Env::new();
    let archive = env.path("rbuild.tar");
    let output = format!("type=docker,dest={}", archive.display());
    let tag = "localhost/rbuild-release:test";
    ok(
        release_image(&bin, &env, &["--progress=plain", "-t", tag, "-o", &output]),
        "release-image.sh -o type=docker",
    );
    let pod = env.path("podman");
    ok(
        podman(&pod)
            .arg("load")
            .arg("-i")
            .arg(&archive)
            .output()
            .unwrap(),
        "podman load",
    );
    // The project: busybox as a base of its own, and a RUN.
    let project = env.path("project");
    std::fs::create_dir_all(&project).unwrap();
    std::fs::copy(BUSYBOX, project.join("busybox")).unwrap();
    std::fs::write(
        project.join("Dockerfile"),
        "FROM scratch\nCOPY busybox /bin/busybox\n\
         RUN [\"/bin/busybox\", \"sh\", \"-c\", \"/bin/busybox echo ran in the job > /ran\"]\n",
    )
    .unwrap();
    let run = podman(&pod)
        .args([
            "run",
            "--rm",
            "--privileged",
            "--runtime",
            "runc",
            "--network",
            "none",
        ])
        .arg("-v")
        .arg(format!("{}:/workspace", project.display()))
        .args([
            tag,
            "build",
            "--progress=plain",
            "-o",
            "type=local,dest=/workspace/out",
            ".",
        ])
        .output()
        .unwrap();
    ok(run, "rbuild in podman");
    assert_eq!(
        std::fs::read_to_string(project.join("out/ran")).unwrap(),
        "ran in the job\n"
    );

    // An unprivileged job container (podman's defaults: no --privileged, its seccomp profile)
    // refuses namespaces: the error says so and names --isolation=chroot, which then works.
    let unprivileged = |extra: &[&str], dest: &str| {
        podman(&pod)
            .args(["run", "--rm", "--runtime", "runc", "--network", "none"])
            .arg("-v")
            .arg(format!("{}:/workspace", project.display()))
            .arg(tag)
            .args(["build", "--progress=plain", "-o"])
            .arg(format!("type=local,dest=/workspace/{dest}"))
            .args(extra)
            .arg(".")
            .output()
            .unwrap()
    };
    let refused = unprivileged(&[], "out-refused");
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{err}");
    assert!(
        err.contains("refuses to create namespaces") && err.contains("--isolation=chroot"),
        "{err}"
    );
    ok(
        unprivileged(&["--isolation=chroot"], "out-chroot"),
        "rbuild --isolation=chroot in an unprivileged podman container",
    );
    assert_eq!(
        std::fs::read_to_string(project.join("out-chroot/ran")).unwrap(),
        "ran in the job\n"
    );
}
