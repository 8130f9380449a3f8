//! `--build-context NAME=VALUE`, end to end through the CLI, each a real build: a directory
//! read by `COPY --from` with its own `.dockerignore` (not the main one), `FROM NAME` with a
//! `docker-image://` from the test's registry (ONBUILD triggers as for `FROM` the image), an
//! `oci-layout://` written by `rbuild -o type=oci,tar=false`, `RUN --mount from=NAME`, a stage
//! replaced by the context of its name, a git URL, an http URL (one file named `context`, an
//! archive too), and bad values (usage errors, exit 2, naming the
//! flag).

mod support;

use std::path::Path;

use rbuild_archive::testutil::{compress, HeaderFormat, TarBuilder, TestEntry};
use rbuild_archive::ArchiveFormat;
use rbuild_test_support::git::git;
use support::{require_tool, stderr, Env, Registry};

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn read(dir: &Path, rel: &str) -> String {
    std::fs::read_to_string(dir.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

#[test]
fn copy_from_a_directory_context_uses_its_own_dockerignore() {
    let Some(env) = Env::with_busybox() else {
        return;
    };
    let assets = env.context(
        "assets",
        &[
            ("logo.txt", "logo\n"),
            ("secret.key", "never copied\n"),
            (".dockerignore", "*.key\n"),
            ("css/site.css", "body{}\n"),
        ],
    );
    // The main context ignores what the named one needs: that must not apply to it.
    let ctx = env.context(
        "ctx",
        &[
            (
                "Dockerfile",
                "FROM busybox\nCOPY --from=assets / /srv/\nCOPY main.txt /main.txt\n",
            ),
            ("main.txt", "main\n"),
            (".dockerignore", "logo.txt\ncss\n"),
        ],
    );
    let arg = format!("assets={}", s(&assets));
    let out = env.build_local(&["--build-context", &arg], &ctx);
    assert_eq!(read(&out, "srv/logo.txt"), "logo\n");
    assert_eq!(read(&out, "srv/css/site.css"), "body{}\n");
    assert!(!out.join("srv/secret.key").exists());
    assert_eq!(read(&out, "main.txt"), "main\n");

    // Keyed by content: the same content again is cached, a change is not.
    let again = env.ok(&[
        "build",
        "--progress=plain",
        "--build-context",
        &arg,
        s(&ctx),
    ]);
    assert!(stderr(&again).contains("CACHED"), "{}", stderr(&again));
    std::fs::write(assets.join("logo.txt"), "logo v2\n").expect("write");
    let out = env.build_local(&["--build-context", &arg], &ctx);
    assert_eq!(read(&out, "srv/logo.txt"), "logo v2\n");
}

#[test]
fn from_a_docker_image_context_takes_its_config_and_triggers() {
    let Some(env) = Env::with_busybox() else {
        return;
    };
    let Some(registry) = Registry::with_busybox() else {
        return;
    };
    std::fs::write(
        &env.config,
        format!("[registry.\"{}\"]\nhttp = true\n", registry.addr),
    )
    .expect("config");
    // A base with ONBUILD and config, pushed to the registry.
    let base = env.context(
        "base",
        &[(
            "Dockerfile",
            "FROM busybox\nENV FLAVOUR=pushed\nWORKDIR /work\nONBUILD RUN echo triggered > /work/trigger.txt\n",
        )],
    );
    let pushed = format!("{}/team/base:1", registry.addr);
    env.ok(&["build", "-q", "-t", &pushed, "--push", s(&base)]);
    env.ok(&["rmi", &pushed]);

    let ctx = env.context(
        "ctx",
        &[(
            "Dockerfile",
            "FROM base\nRUN echo \"$FLAVOUR $(pwd)\" > /work/env.txt\n",
        )],
    );
    let arg = format!("base=docker-image://{pushed}");
    let out = env.build_local(&["--build-context", &arg], &ctx);
    assert_eq!(read(&out, "work/env.txt"), "pushed /work\n");
    assert_eq!(read(&out, "work/trigger.txt"), "triggered\n");
}

#[test]
fn from_an_oci_layout_context_reads_the_layout_offline() {
    let Some(env) = Env::with_busybox() else {
        return;
    };
    let base = env.context(
        "base",
        &[(
            "Dockerfile",
            "FROM busybox\nRUN echo from-layout > /layout.txt\n",
        )],
    );
    let layout = env.path("layout");
    let dest = format!("type=oci,tar=false,dest={}", s(&layout));
    env.ok(&["build", "-q", "-t", "laid:v1", "-o", &dest, s(&base)]);

    let ctx = env.context(
        "ctx",
        &[(
            "Dockerfile",
            "FROM scratch\nCOPY --from=tools /layout.txt /copied.txt\n\
             FROM busybox\nCOPY --from=0 /copied.txt /\nRUN cat /copied.txt > /ran.txt\n",
        )],
    );
    for value in [
        format!("oci-layout://{}", s(&layout)),
        format!("oci-layout://{}:v1", s(&layout)),
    ] {
        // A fresh store each time: the image comes from the layout, not the store.
        let env2 = Env::with_busybox().expect("busybox again");
        let arg = format!("tools={value}");
        let out = env2.build_local(&["--build-context", &arg], &ctx);
        assert_eq!(read(&out, "ran.txt"), "from-layout\n");
    }
    let arg = format!("tools=oci-layout://{}:nope", s(&layout));
    let res = env.run(&["build", "-q", "--build-context", &arg, s(&ctx)]);
    assert!(!res.status.success());
    assert!(stderr(&res).contains("nope"), "{}", stderr(&res));
}

#[test]
fn run_mount_from_a_named_context() {
    let Some(env) = Env::with_busybox() else {
        return;
    };
    let src = env.context("src", &[("a.txt", "mounted\n")]);
    let ctx = env.context(
        "ctx",
        &[(
            "Dockerfile",
            "FROM busybox\nRUN --mount=from=src,target=/src cat /src/a.txt > /out.txt\n",
        )],
    );
    let arg = format!("src={}", s(&src));
    let out = env.build_local(&["--build-context", &arg], &ctx);
    assert_eq!(read(&out, "out.txt"), "mounted\n");
}

#[test]
fn a_context_replaces_the_stage_of_its_name() {
    let Some(env) = Env::with_busybox() else {
        return;
    };
    let prebuilt = env.context("prebuilt", &[("app.bin", "prebuilt\n")]);
    let ctx = env.context(
        "ctx",
        &[(
            "Dockerfile",
            "FROM busybox AS build\nRUN exit 1\n\
             FROM busybox\nCOPY --from=build /app.bin /app.bin\n",
        )],
    );
    let arg = format!("build={}", s(&prebuilt));
    // The stage's failing RUN never runs: the context is the stage.
    let out = env.build_local(&["--build-context", &arg], &ctx);
    assert_eq!(read(&out, "app.bin"), "prebuilt\n");
}

#[test]
fn a_git_url_is_a_named_context() {
    if require_tool("git").is_none() {
        return;
    }
    let Some(env) = Env::with_busybox() else {
        return;
    };
    let repo = env.context("repo", &[("lib/v.txt", "v1\n"), ("other.txt", "x\n")]);
    git(&repo, &["init", "-q"]);
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "one"]);
    git(&repo, &["tag", "release"]);
    std::fs::write(repo.join("lib/v.txt"), "v2\n").expect("write");
    git(&repo, &["commit", "-q", "-am", "two"]);
    let ctx = env.context(
        "ctx",
        &[("Dockerfile", "FROM busybox\nCOPY --from=lib v.txt /v.txt\n")],
    );
    let arg = format!("lib=file://{}#release:lib", s(&repo));
    let out = env.build_local(&["--build-context", &arg], &ctx);
    assert_eq!(read(&out, "v.txt"), "v1\n");
}

#[test]
fn an_http_url_is_one_file_named_context() {
    // As BuildKit's named URL context (dockerui/namedcontext.go: `llb.HTTP(url,
    // llb.Filename("context"))`): the body is one file, `context`, mode 0600, an archive too
    // (never unpacked); it is a root filesystem for FROM and a source for COPY --from.
    let Some(env) = Env::with_busybox() else {
        return;
    };
    let mut tar = TarBuilder::new();
    tar.add(TestEntry::file("pkg/lib.txt", "from the archive").format(HeaderFormat::Gnu));
    let archive = compress(&tar.finish(), ArchiveFormat::TarGzip).expect("gzip");
    let served = |body: Vec<u8>| {
        format!(
            "http://{}/x.tar.gz",
            rbuild_test_support::http::serve("200 OK", body, 1)
        )
    };
    let ctx = env.context(
        "ctx",
        &[(
            "Dockerfile",
            "FROM busybox
COPY --from=lib context /lib.tgz
COPY --from=note context /note.txt
RUN stat -c %a /note.txt > /note.mode
",
        )],
    );
    let lib = format!("lib={}", served(archive.clone()));
    let note = format!("note={}", served(b"plain text".to_vec()));
    let out = env.build_local(&["--build-context", &lib, "--build-context", &note], &ctx);
    assert_eq!(
        std::fs::read(out.join("lib.tgz")).expect("lib.tgz"),
        archive
    );
    assert!(!out.join("pkg").exists(), "an archive is not unpacked");
    assert_eq!(read(&out, "note.txt"), "plain text");
    assert_eq!(read(&out, "note.mode"), "600\n");
}

#[test]
fn bad_values_are_usage_errors_naming_the_flag() {
    let env = Env::new();
    let ctx = env.context("ctx", &[("Dockerfile", "FROM scratch\n")]);
    for value in [
        "novalue",
        "x=/does/not/exist",
        "Bad Name=.",
        "scratch=.",
        "i=docker-image://Bad Ref",
        "o=oci-layout:///does/not/exist",
    ] {
        let res = env.run(&["build", "-q", "--build-context", value, s(&ctx)]);
        assert_eq!(res.status.code(), Some(2), "{value}: {}", stderr(&res));
        assert!(
            stderr(&res).contains("--build-context"),
            "{value}: {}",
            stderr(&res)
        );
    }
}
