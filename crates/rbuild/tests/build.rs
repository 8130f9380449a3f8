//! End-to-end builds with the real binary, the real sandbox and a busybox base image that rbuild
//! itself builds from Debian's `busybox-static`.

mod support;

use std::fs;
use std::path::{Path, PathBuf};

use rbuild_archive::testutil;
use support::{
    can_build_runs, oci_config, oci_layers, require, require_tool, s, stderr, stdout, step_cached,
    Env,
};

/// Builds `ctx` with plain progress and exports its root filesystem to `out`; returns it.
fn build_plain_local(env: &Env, ctx: &Path) -> PathBuf {
    let out = env.path("out");
    env.ok(&[
        "build",
        "--progress=plain",
        "-o",
        &format!("type=local,dest={}", s(&out)),
        s(ctx),
    ]);
    out
}

#[test]
fn run_output_lands_in_the_image_and_cmd_runs() {
    let Some(env) = Env::with_busybox() else {
        return;
    };
    let ctx = env.context(
        "ctx",
        &[("Dockerfile", "FROM busybox\nWORKDIR /app\nRUN echo hello > greeting && pwd > where\nCMD [\"cat\", \"/app/greeting\"]\n")],
    );
    let out = build_plain_local(&env, &ctx);
    assert_eq!(
        fs::read_to_string(out.join("app/greeting")).unwrap(),
        "hello\n"
    );
    assert_eq!(fs::read_to_string(out.join("app/where")).unwrap(), "/app\n");
    assert!(
        out.join("bin/busybox").is_file(),
        "base layers are in the rootfs too"
    );
    // Something from the image runs: the busybox in the exported rootfs.
    let ran = std::process::Command::new("chroot")
        .arg(&out)
        .args(["/bin/cat", "/app/greeting"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&ran.stdout), "hello\n");
}

#[test]
fn default_command_form_tags_into_the_store() {
    let Some(env) = Env::with_busybox() else {
        return;
    };
    let ctx = env.context("ctx", &[("Dockerfile", "FROM busybox\nRUN touch /made\n")]);
    // `rbuild -t app:1.0 .` form: no `build` word, context as `.`.
    let out = env
        .cmd()
        .current_dir(&ctx)
        .args(["-t", "app:1.0", "-q", "."])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let id = stdout(&out);
    assert!(
        id.trim().starts_with("sha256:"),
        "quiet prints the image id, got {id:?}"
    );
    let images = stdout(&env.ok(&["images"]));
    assert!(images.contains("app:1.0"), "{images}");
    assert!(
        images.contains(&id.trim()["sha256:".len().."sha256:".len() + 12]),
        "{images}"
    );
}

/// Every tar entry path of an OCI layer blob (gzip or plain).
fn layer_entries(blob: &Path) -> Vec<String> {
    testutil::names(fs::File::open(blob).unwrap())
        .unwrap()
        .into_iter()
        .map(|n| n.trim_end_matches('/').to_string())
        .collect()
}

#[test]
fn deleted_files_become_whiteouts() {
    let Some(env) = Env::with_busybox() else {
        return;
    };
    let ctx = env.context(
        "ctx",
        &[("Dockerfile", "FROM busybox\nRUN mkdir -p /a/b && echo x > /a/b/f && echo y > /keep\nRUN rm -r /a/b && rm /bin/ls\n")],
    );
    let layout = env.build_oci("layout", &[], &ctx);
    let layers = oci_layers(&layout);
    let last = layer_entries(layers.last().unwrap());
    assert!(last.contains(&"a/.wh.b".to_string()), "{last:?}");
    assert!(last.contains(&"bin/.wh.ls".to_string()), "{last:?}");
    assert!(
        !last.iter().any(|e| e.contains("keep")),
        "unchanged files stay out of the layer: {last:?}"
    );
}

#[test]
fn multi_stage_copy_from() {
    let Some(env) = Env::with_busybox() else {
        return;
    };
    let ctx = env.context(
        "ctx",
        &[(
            "Dockerfile",
            "FROM busybox AS build\nRUN mkdir /out && echo built > /out/result.txt\n\
             FROM scratch\nCOPY --from=build /out/result.txt /result.txt\nCOPY --from=build /out /dir/\n",
        )],
    );
    let out = env.build_local(&[], &ctx);
    assert_eq!(
        fs::read_to_string(out.join("result.txt")).unwrap(),
        "built\n"
    );
    assert_eq!(
        fs::read_to_string(out.join("dir/result.txt")).unwrap(),
        "built\n"
    );
    assert!(
        !out.join("bin").exists(),
        "the final stage is scratch: nothing of busybox"
    );
}

#[test]
fn unchanged_rebuild_is_all_cached_and_a_changed_file_reruns_exactly_its_dependents() {
    let Some(env) = Env::with_busybox() else {
        return;
    };
    let ctx = env.context(
        "ctx",
        &[
            ("a.txt", "a"),
            ("b.txt", "b"),
            ("Dockerfile", "FROM busybox\nCOPY a.txt /a.txt\nRUN cat /a.txt > /from-a\nCOPY b.txt /b.txt\nRUN cat /b.txt > /from-b\n"),
        ],
    );
    let build = || stderr(&env.ok(&["build", "--progress=plain", "-t", "cachetest", s(&ctx)]));
    build();
    let again = build();
    for step in [
        "COPY a.txt",
        "RUN cat /a.txt",
        "COPY b.txt",
        "RUN cat /b.txt",
    ] {
        assert!(
            step_cached(&again, step),
            "{step} should be CACHED:\n{again}"
        );
    }
    fs::write(ctx.join("b.txt"), "b2").unwrap();
    let changed = build();
    assert!(step_cached(&changed, "COPY a.txt"), "{changed}");
    assert!(step_cached(&changed, "RUN cat /a.txt"), "{changed}");
    assert!(!step_cached(&changed, "COPY b.txt"), "{changed}");
    assert!(!step_cached(&changed, "RUN cat /b.txt"), "{changed}");
}

#[test]
fn dockerignore_is_honoured() {
    if !can_build_runs() {
        return;
    }
    let env = Env::new();
    let ctx = env.context(
        "ctx",
        &[
            ("Dockerfile", "FROM scratch\nCOPY . /app/\n"),
            (
                ".dockerignore",
                "secret*\n**/*.log\n!keep.log\ntop-only-*.txt\n",
            ),
            ("top-only-1.txt", "x"),
            ("sub/top-only-2.txt", "anchored at the root: kept"),
            ("secret.txt", "x"),
            ("sub/app.log", "x"),
            ("keep.log", "k"),
            ("src/main.c", "int main;"),
        ],
    );
    let out = env.build_local(&[], &ctx);
    assert!(out.join("app/src/main.c").is_file());
    assert!(out.join("app/keep.log").is_file());
    assert!(!out.join("app/secret.txt").exists());
    assert!(!out.join("app/sub/app.log").exists());
    assert!(!out.join("app/top-only-1.txt").exists());
    assert!(
        out.join("app/sub/top-only-2.txt").is_file(),
        "patterns are anchored at the context root"
    );
}

#[test]
fn failing_run_reports_command_and_exit_code() {
    let Some(env) = Env::with_busybox() else {
        return;
    };
    let ctx = env.context(
        "ctx",
        &[(
            "Dockerfile",
            "FROM busybox\nRUN echo about to fail && exit 3\n",
        )],
    );
    let out = env.run(&["build", "--progress=plain", s(&ctx)]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("echo about to fail && exit 3"), "{err}");
    assert!(err.contains("exit code: 3"), "{err}");
    assert!(
        err.contains("about to fail"),
        "the last output lines are shown: {err}"
    );
}

#[test]
fn dockerfile_from_stdin_with_empty_context() {
    let Some(env) = Env::with_busybox() else {
        return;
    };
    let mut child = env
        .cmd()
        .args(["build", "-q", "-t", "fromstdin", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"FROM busybox\nRUN echo ok > /ok\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&env.ok(&["images"])).contains("fromstdin:latest"));
}

#[test]
fn dockerfile_elsewhere_with_dash_f() {
    if !can_build_runs() {
        return;
    }
    let env = Env::new();
    let ctx = env.context("ctx", &[("data.txt", "d")]);
    let df = env.context(
        "dfdir",
        &[("build.Dockerfile", "FROM scratch\nCOPY data.txt /\n")],
    );
    let out = env.build_local(&["-f", s(&df.join("build.Dockerfile"))], &ctx);
    assert_eq!(fs::read_to_string(out.join("data.txt")).unwrap(), "d");
}

#[test]
fn syntax_errors_show_line_and_usage_errors_exit_2() {
    let env = Env::new();
    let ctx = env.context(
        "ctx",
        &[("Dockerfile", "FROM scratch\nCOPY --bogus=1 a /\n")],
    );
    let out = env.run(&["build", s(&ctx)]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains(":2"), "names the line: {err}");
    assert!(err.contains('^'), "shows a caret: {err}");
    let out = env.run(&["build", "-o", "type=nope,dest=x", s(&ctx)]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let out = env.run(&["build", "--no-such-flag", s(&ctx)]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn oci_archive_is_accepted_by_skopeo_and_umoci() {
    if !can_build_runs() || require_tool("skopeo").is_none() || require_tool("umoci").is_none() {
        return;
    }
    let env = Env::new();
    env.busybox();
    let ctx = env.context(
        "ctx",
        &[(
            "Dockerfile",
            "FROM busybox\nRUN echo hi > /hi\nCMD [\"cat\", \"/hi\"]\n",
        )],
    );
    let tar = env.path("out.tar");
    env.ok(&[
        "build",
        "-q",
        "-t",
        "app:1.0",
        "-o",
        &format!("type=oci,dest={}", s(&tar)),
        s(&ctx),
    ]);
    let inspect = std::process::Command::new("skopeo")
        .arg("inspect")
        .arg(format!("oci-archive:{}", s(&tar)))
        .output()
        .unwrap();
    assert!(inspect.status.success(), "skopeo: {}", stderr(&inspect));
    let info: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap();
    // busybox as Env::busybox builds it has three layers; the RUN adds one.
    assert_eq!(info["Layers"].as_array().map(Vec::len), Some(4), "{info}");
    let layout = env.path("layout");
    fs::create_dir(&layout).unwrap();
    let untar = std::process::Command::new("tar")
        .arg("-xf")
        .arg(&tar)
        .arg("-C")
        .arg(&layout)
        .status()
        .unwrap();
    assert!(untar.success());
    let bundle = env.umoci_unpack(&layout, "1.0");
    assert_eq!(
        fs::read_to_string(bundle.join("rootfs/hi")).unwrap(),
        "hi\n"
    );
}

#[test]
fn base_image_pulled_from_a_registry_mirror() {
    // Build busybox with rbuild, push it into the registry as docker.io/library/busybox.
    let Some((registry, builder)) = support::registry_and_busybox() else {
        return;
    };
    let ctx = builder.context("ctx", &[("Dockerfile", "FROM busybox\n")]);
    let tar = builder.path("busybox.tar");
    builder.ok(&[
        "build",
        "-q",
        "-t",
        "busybox:latest",
        "-o",
        &format!("type=oci,dest={}", s(&tar)),
        s(&ctx),
    ]);
    let push = std::process::Command::new("skopeo")
        .args(["copy", "--dest-tls-verify=false"])
        .arg(format!("oci-archive:{}", s(&tar)))
        .arg(format!("docker://{}/library/busybox:latest", registry.addr))
        .output()
        .unwrap();
    assert!(push.status.success(), "skopeo copy: {}", stderr(&push));

    // A fresh store that has never seen busybox pulls it through the mirror.
    let env = Env::new();
    fs::write(
        &env.config,
        format!(
            "[registry.\"docker.io\"]\nmirrors = [\"{0}\"]\n[registry.\"{0}\"]\nhttp = true\n",
            registry.addr
        ),
    )
    .unwrap();
    let ctx = env.context(
        "ctx",
        &[("Dockerfile", "FROM busybox\nRUN echo pulled > /p\n")],
    );
    let out = build_plain_local(&env, &ctx);
    assert_eq!(fs::read_to_string(out.join("p")).unwrap(), "pulled\n");
}

#[test]
fn metadata_instructions_set_the_image_config_and_user_applies_to_run() {
    let Some(env) = Env::with_busybox() else {
        return;
    };
    let ctx = env.context(
        "ctx",
        &[(
            "Dockerfile",
            "FROM busybox\n\
             ARG GREETING=hi\n\
             ENV APP_HOME=/srv/app MODE=$GREETING\n\
             RUN echo 'app:x:1000:1000::/home/app:/bin/sh' >> /etc/passwd && echo 'app:x:1000:' >> /etc/group\n\
             WORKDIR $APP_HOME\n\
             USER app\n\
             RUN id -u > /tmp/uid && pwd > /tmp/cwd && echo \"$MODE\" > /tmp/mode\n\
             LABEL org.example.name=\"demo app\" version=1\n\
             EXPOSE 8080/tcp 53/udp\n\
             ENTRYPOINT [\"/bin/sh\", \"-c\"]\n\
             CMD [\"echo $MODE\"]\n",
        )],
    );
    let layout = env.build_oci("layout", &["--build-arg", "GREETING=hello"], &ctx);
    let config = oci_config(&layout);
    let c = &config["config"];
    let envs: Vec<&str> = c["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(envs.contains(&"APP_HOME=/srv/app"), "{envs:?}");
    assert!(
        envs.contains(&"MODE=hello"),
        "ENV expands the ARG given by --build-arg: {envs:?}"
    );
    assert!(
        !envs.iter().any(|e| e.starts_with("GREETING=")),
        "ARGs do not persist: {envs:?}"
    );
    assert_eq!(c["WorkingDir"], "/srv/app");
    assert_eq!(c["User"], "app");
    assert_eq!(c["Labels"]["org.example.name"], "demo app");
    assert_eq!(c["Labels"]["version"], "1");
    assert!(
        c["ExposedPorts"].get("8080/tcp").is_some() && c["ExposedPorts"].get("53/udp").is_some(),
        "{c}"
    );
    assert_eq!(c["Entrypoint"], serde_json::json!(["/bin/sh", "-c"]));
    assert_eq!(c["Cmd"], serde_json::json!(["echo $MODE"]));
    let history = config["history"].as_array().unwrap();
    assert!(
        history.iter().any(|h| h["created_by"]
            .as_str()
            .is_some_and(|c| c.starts_with("USER app"))),
        "{history:?}"
    );
    let out = env.build_local(&["--build-arg", "GREETING=hello"], &ctx);
    assert_eq!(
        fs::read_to_string(out.join("tmp/uid")).unwrap(),
        "1000\n",
        "RUN runs as USER"
    );
    assert_eq!(
        fs::read_to_string(out.join("tmp/cwd")).unwrap(),
        "/srv/app\n",
        "RUN runs in WORKDIR"
    );
    assert_eq!(fs::read_to_string(out.join("tmp/mode")).unwrap(), "hello\n");
}

#[test]
fn tag_and_rmi_like_docker() {
    if !support::require("root (COPY keeps root ownership)", support::is_root()) {
        return;
    }
    let env = Env::new();
    let ctx = env.context(
        "ctx",
        &[("Dockerfile", "FROM scratch\nCOPY f /\n"), ("f", "x")],
    );
    env.ok(&["build", "-q", "-t", "one:1", s(&ctx)]);
    env.ok(&["tag", "one:1", "two"]);
    let images = stdout(&env.ok(&["images"]));
    assert!(
        images.contains("one:1") && images.contains("two:latest"),
        "{images}"
    );
    // A missing name is an error, but the other names are still removed.
    let out = env.run(&["rmi", "missing", "one:1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no such image: missing"),
        "{}",
        stderr(&out)
    );
    let images = stdout(&env.ok(&["images"]));
    assert!(
        !images.contains("one:1") && images.contains("two:latest"),
        "{images}"
    );
}

#[test]
fn file_op_layers_are_identical_across_stores_and_time() {
    if !require("root (COPY keeps root ownership)", support::is_root()) {
        return;
    }
    // WORKDIR and COPY create directories and add entries to them: their mtimes must not be
    // the wall clock, or identical inputs would give different layers.
    let layers = |env: &Env| -> serde_json::Value {
        let ctx = env.context(
            "ctx",
            &[
                (
                    "Dockerfile",
                    "FROM scratch\nWORKDIR /app/deep\nCOPY src /app/deep/src/\nCOPY f /etc/new/\n",
                ),
                ("src/a/b.txt", "b"),
                ("f", "f"),
            ],
        );
        // The context's own mtimes are inputs (COPY keeps them, as BuildKit does): pin them.
        let touched = std::process::Command::new("find")
            .arg(&ctx)
            .args(["-exec", "touch", "-h", "-d", "@1600000000", "{}", "+"])
            .status()
            .unwrap();
        assert!(touched.success());
        env.ok(&["build", "-q", "-t", "same:1", s(&ctx)]);
        let out = env.ok(&["inspect", "same:1"]);
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        json[0]["RootFS"]["Layers"].clone()
    };
    let first = layers(&Env::new());
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let second = layers(&Env::new());
    assert_eq!(first.as_array().map(Vec::len), Some(3), "{first}");
    assert_eq!(first, second);
}
