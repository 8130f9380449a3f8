//! Multi-platform builds through the CLI (`--platform linux/amd64,linux/arm64`): one image per
//! platform joined in an OCI index, kept in the store, pushed, and written by the outputs;
//! the automatic platform args per platform; a stage on `$BUILDPLATFORM` built once; a RUN
//! for a platform nothing here runs refused with the remedy.

mod support;

use std::path::Path;
use std::process::Command;

use support::{can_build_runs, json_file, require_tool, s, stderr, stdout, Env, Registry};

const TWO: &str = "linux/amd64,linux/arm64";

/// FROM scratch, a file named by the target's architecture and variant-free platform.
const PER_PLATFORM: &str = "FROM scratch\nARG TARGETARCH\nARG TARGETPLATFORM\n\
                            COPY a.txt /arch-${TARGETARCH}\nLABEL built.for=$TARGETPLATFORM\n";

/// `rbuild build -q --platform linux/amd64,linux/arm64 <extra> -o type=local,dest=<env>/out
/// <ctx>`, which must succeed; returns the output directory (one subdirectory per platform).
fn build_local_two(env: &Env, ctx: &Path, extra: &[&str]) -> std::path::PathBuf {
    let out = env.path("out");
    let dest = format!("type=local,dest={}", s(&out));
    let mut args = vec!["build", "-q", "--platform", TWO];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["-o", &dest, s(ctx)]);
    env.ok(&args);
    out
}

/// The JSON of blob `digest` (`sha256:…`) of the OCI layout directory `layout`.
fn blob(layout: &Path, digest: &str) -> serde_json::Value {
    json_file(&support::layout_blob(layout, digest))
}

#[test]
fn two_platforms_make_an_index_in_every_output() {
    let env = Env::new();
    let ctx = env.context("ctx", &[("Dockerfile", PER_PLATFORM), ("a.txt", "a")]);

    // An OCI layout: its one entry is the index; each child is its platform's image.
    let meta = env.path("meta.json");
    let layout = env.build_oci(
        "layout",
        &["--platform", TWO, "--metadata-file", s(&meta)],
        &ctx,
    );
    let top = json_file(&layout.join("index.json"));
    let entry = &top["manifests"][0];
    assert_eq!(
        entry["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    let meta = json_file(&meta);
    assert_eq!(meta["containerimage.digest"], entry["digest"]);
    assert!(meta.get("containerimage.config.digest").is_none(), "{meta}");
    let index = blob(&layout, entry["digest"].as_str().unwrap());
    let children = index["manifests"].as_array().unwrap();
    assert_eq!(children.len(), 2);
    for (child, arch) in children.iter().zip(["amd64", "arm64"]) {
        assert_eq!(child["platform"]["architecture"], arch, "{index}");
        let manifest = blob(&layout, child["digest"].as_str().unwrap());
        let config = blob(&layout, manifest["config"]["digest"].as_str().unwrap());
        assert_eq!(config["architecture"], arch);
        assert_eq!(config["os"], "linux");
        assert_eq!(
            config["config"]["Labels"]["built.for"],
            format!("linux/{arch}")
        );
    }

    // A local output: one directory per platform, as BuildKit's.
    let out = build_local_two(&env, &ctx, &[]);
    assert!(out.join("linux_amd64/arch-amd64").is_file());
    assert!(out.join("linux_arm64/arch-arm64").is_file());
    assert!(!out.join("linux_arm64/arch-amd64").exists());

    // The store: one line in `images`, and `inspect` lists the platforms.
    env.ok(&["build", "-q", "--platform", TWO, "-t", "multi:1", s(&ctx)]);
    let listed = stdout(&env.ok(&["images"]));
    assert_eq!(
        listed.lines().filter(|l| l.starts_with("multi:1 ")).count(),
        1,
        "{listed}"
    );
    let inspect: serde_json::Value =
        serde_json::from_str(&stdout(&env.ok(&["inspect", "multi:1"]))).unwrap();
    assert_eq!(
        inspect[0]["Platforms"],
        serde_json::json!(["linux/amd64", "linux/arm64"])
    );

    // A docker archive holds one platform's image: refused, as BuildKit's docker exporter.
    let refused = env.run(&[
        "build",
        "-q",
        "--platform",
        TWO,
        "-o",
        &format!("type=docker,dest={}", s(&env.path("d.tar"))),
        s(&ctx),
    ]);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("multi-platform"),
        "{}",
        stderr(&refused)
    );
}

#[test]
fn a_pushed_index_serves_each_platform() {
    if require_tool("skopeo").is_none() {
        return;
    }
    let Some(registry) = Registry::start() else {
        return;
    };
    let env = Env::new();
    let ctx = env.context("ctx", &[("Dockerfile", PER_PLATFORM), ("a.txt", "a")]);
    for (tag, extra, media_type) in [
        ("oci", "", "application/vnd.oci.image.index.v1+json"),
        (
            "docker",
            ",oci-mediatypes=false",
            "application/vnd.docker.distribution.manifest.list.v2+json",
        ),
    ] {
        let name = format!("{}/team/multi:{tag}", registry.addr);
        env.ok(&[
            "build",
            "-q",
            "--platform",
            TWO,
            "-o",
            &format!("type=image,name={name},push=true{extra}"),
            s(&ctx),
        ]);
        let raw = support::raw_json(&name, &[]);
        assert_eq!(raw["mediaType"], media_type, "{raw}");
        for arch in ["amd64", "arm64"] {
            let out = Command::new("skopeo")
                .args(["--override-arch", arch, "inspect", "--tls-verify=false"])
                .arg(format!("docker://{name}"))
                .output()
                .expect("run skopeo");
            assert!(out.status.success(), "{}", stderr(&out));
            let image: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
            assert_eq!(image["Architecture"], arch, "{image}");
            assert_eq!(image["Labels"]["built.for"], format!("linux/{arch}"));
        }
    }
}

#[test]
fn a_stage_on_the_build_platform_is_built_once_for_both() {
    let Some(env) = Env::with_busybox() else {
        return;
    };
    // The build stage runs on the host for every target; only the final stages differ.
    // (An ARG in scope is in a RUN's environment, hence its key: TARGETARCH comes after.)
    let dockerfile = "FROM --platform=$BUILDPLATFORM busybox AS build\n\
                      RUN echo compiled-on-$(uname -m) > /out\n\
                      ARG TARGETARCH\nRUN echo for-$TARGETARCH > /target\n\
                      FROM scratch\nCOPY --from=build /out /target /\n";
    let ctx = env.context("ctx", &[("Dockerfile", dockerfile)]);
    let out = env.path("out");
    let progress = stderr(&env.ok(&[
        "build",
        "--progress=plain",
        "--platform",
        TWO,
        "-o",
        &format!("type=local,dest={}", s(&out)),
        s(&ctx),
    ]));
    // `RUN echo compiled-on…` has one key for both platforms: it ran once.
    let ran = progress
        .lines()
        .filter(|l| l.contains("RUN echo compiled-on") && l.starts_with('#'))
        .count();
    let compiled: Vec<&str> = progress
        .lines()
        .filter(|l| l.contains("compiled-on"))
        .collect();
    assert!(ran >= 2, "one line per platform:\n{progress}");
    assert!(
        support::step_cached(&progress, "linux/amd64 build 2/3] RUN echo compiled-on")
            != support::step_cached(&progress, "linux/arm64 build 2/3] RUN echo compiled-on"),
        "one ran, one shared its result:\n{compiled:?}\n{progress}"
    );
    let host = std::fs::read_to_string(out.join("linux_amd64/out")).unwrap();
    assert_eq!(
        std::fs::read_to_string(out.join("linux_arm64/out")).unwrap(),
        host
    );
    assert_eq!(
        std::fs::read_to_string(out.join("linux_arm64/target")).unwrap(),
        "for-arm64\n"
    );
    assert_eq!(
        std::fs::read_to_string(out.join("linux_amd64/target")).unwrap(),
        "for-amd64\n"
    );
}

#[test]
fn a_run_for_a_platform_nothing_here_runs_is_refused_with_the_remedy() {
    if !can_build_runs() {
        return;
    }
    let Some(env) = Env::with_busybox() else {
        return;
    };
    // No emulator takes loong64 here (rbuild knows no binfmt handler for it).
    let dockerfile = "FROM --platform=linux/loong64 busybox\nRUN echo never\n";
    let ctx = env.context("ctx", &[("Dockerfile", dockerfile)]);
    let out = env.run(&["build", "--progress=plain", s(&ctx)]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("linux/loong64"), "{err}");
    assert!(err.contains("cannot run"), "{err}");
    assert!(err.contains("rbuild debug platforms"), "{err}");
    assert!(!err.contains("\nnever"), "{err}");
    // The base image is amd64 only: said, as BuildKit's InvalidBaseImagePlatform.
    assert!(
        err.contains("- InvalidBaseImagePlatform: Base image busybox was pulled with platform \"linux/amd64\", expected \"linux/loong64\" for current build (line 1)"),
        "{err}"
    );
}

/// The ELF machine of the file at `path` (`e_machine`, little-endian): 62 x86-64, 183 aarch64.
fn elf_machine(path: &Path) -> u16 {
    let bytes = std::fs::read(path).expect("read the binary");
    assert_eq!(&bytes[..4], b"\x7fELF", "{} is not ELF", path.display());
    u16::from_le_bytes([bytes[18], bytes[19]])
}

#[test]
fn an_emulated_run_says_aarch64_on_arm64() {
    if !can_build_runs() || !rbuild_test_support::emulator::require_emulator("aarch64") {
        return;
    }
    let Some(registry) = Registry::with_busybox_multi() else {
        return;
    };
    let env = Env::new();
    let dockerfile = format!(
        "FROM {}/{}\nRUN uname -m > /machine\n",
        registry.addr,
        rbuild_test_support::registry::BUSYBOX_MULTI_REPO
    );
    let ctx = env.context("ctx", &[("Dockerfile", &dockerfile)]);
    let out = build_local_two(&env, &ctx, &[]);
    let machine = |p: &str| std::fs::read_to_string(out.join(p).join("machine")).unwrap();
    assert_eq!(machine("linux_arm64"), "aarch64\n");
    let host = stdout(&Command::new("uname").arg("-m").output().expect("uname"));
    assert_eq!(machine("linux_amd64"), host);
    // Each platform's busybox is its own architecture's binary.
    assert_eq!(elf_machine(&out.join("linux_arm64/bin/busybox")), 183);
    assert_eq!(elf_machine(&out.join("linux_amd64/bin/busybox")), 62);

    // Pushed, each platform's image says its architecture and runs it.
    let name = format!("{}/team/uname:1", registry.addr);
    env.ok(&[
        "build",
        "-q",
        "--platform",
        TWO,
        "-t",
        &name,
        "--push",
        s(&ctx),
    ]);
    if require_tool("skopeo").is_some() {
        let out = Command::new("skopeo")
            .args([
                "--override-arch",
                "arm64",
                "inspect",
                "--config",
                "--tls-verify=false",
            ])
            .arg(format!("docker://{name}"))
            .output()
            .expect("run skopeo");
        let config: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
        assert_eq!(config["architecture"], "arm64", "{config}");
    }
}

#[test]
fn cross_compiling_on_the_build_platform_makes_an_arm64_binary_without_emulation() {
    if !can_build_runs() {
        return;
    }
    let (Some(registry), Some(go)) = (
        Registry::with_busybox_multi(),
        rbuild_test_support::go::go_toolchain(),
    ) else {
        return;
    };
    let env = Env::new();
    let hello = rbuild_test_support::go::hello_go_dir();
    let dockerfile = format!(
        "FROM --platform=$BUILDPLATFORM {}/{} AS build\n\
         ARG BUILDARCH\nARG TARGETARCH\n\
         COPY hello-go /src\n\
         RUN --mount=type=bind,from=go,target=/usr/local/go \
             cd /src && uname -m > /built-on && \
             GOROOT=/usr/local/go GOARCH=$TARGETARCH CGO_ENABLED=0 GOCACHE=/tmp/gocache \
             GOFLAGS=-mod=mod GOPROXY=off /usr/local/go/bin/linux_$BUILDARCH/go build -o /hello .\n\
         FROM scratch\nCOPY --from=build /hello /built-on /\n",
        registry.addr,
        rbuild_test_support::registry::BUSYBOX_MULTI_REPO
    );
    let ctx = env.context(
        "ctx",
        &[
            ("Dockerfile", &dockerfile),
            (
                "hello-go/main.go",
                &std::fs::read_to_string(hello.join("main.go")).unwrap(),
            ),
            (
                "hello-go/go.mod",
                &std::fs::read_to_string(hello.join("go.mod")).unwrap(),
            ),
        ],
    );
    let go_context = format!("go={}", s(&go));
    let out = build_local_two(&env, &ctx, &["--build-context", &go_context]);
    // Both were compiled on the host's CPU: no emulation ran the compiler.
    let host = stdout(&Command::new("uname").arg("-m").output().expect("uname"));
    for p in ["linux_amd64", "linux_arm64"] {
        assert_eq!(
            std::fs::read_to_string(out.join(p).join("built-on")).unwrap(),
            host,
            "{p}"
        );
    }
    assert_eq!(elf_machine(&out.join("linux_arm64/hello")), 183);
    assert_eq!(elf_machine(&out.join("linux_amd64/hello")), 62);
    if rbuild_test_support::emulator::require_emulator("aarch64") {
        let ran = Command::new(out.join("linux_arm64/hello"))
            .output()
            .expect("run the arm64 binary");
        assert_eq!(stdout(&ran), "arm64 aarch64\n");
    }
}
