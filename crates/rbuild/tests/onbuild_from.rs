//! ONBUILD triggers that read another stage or an image, end to end: a base image whose
//! triggers `COPY --from=<stage>`, `COPY --from=<image>` and `RUN --mount=from=<stage>`; a
//! child Dockerfile defining that stage (which its target does not otherwise need) builds it
//! and runs the triggers against it; a trigger naming a later stage fails with BuildKit's
//! message before anything runs.

mod support;

use support::{stderr, Env};

#[test]
fn triggers_copy_and_mount_from_child_stages_and_images() {
    let Some(env) = Env::with_busybox() else {
        return;
    };
    let tools = env.context(
        "tools",
        &[("Dockerfile", "FROM busybox\nRUN echo tool > /tool.txt\n")],
    );
    env.ok(&[
        "build",
        "-q",
        "-t",
        "tools:1",
        tools.to_str().expect("utf-8"),
    ]);
    let tmpl = env.context(
        "tmpl",
        &[(
            "Dockerfile",
            "FROM busybox\n\
             ONBUILD COPY --from=assets /out/a.txt /app/a.txt\n\
             ONBUILD COPY --from=tools:1 /tool.txt /app/tool.txt\n\
             ONBUILD RUN --mount=from=assets,target=/m cat /m/out/a.txt /m/out/a.txt > /app/m.txt\n",
        )],
    );
    env.ok(&["build", "-q", "-t", "tmpl:1", tmpl.to_str().expect("utf-8")]);

    let child = env.context(
        "child",
        &[(
            "Dockerfile",
            "FROM busybox AS assets\nRUN mkdir /out && echo asset > /out/a.txt\n\
             FROM tmpl:1\nRUN cat /app/tool.txt >> /app/m.txt\n",
        )],
    );
    let out = env.build_local(&[], &child);
    let read =
        |p: &str| std::fs::read_to_string(out.join(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
    assert_eq!(read("app/a.txt"), "asset\n");
    assert_eq!(read("app/tool.txt"), "tool\n");
    assert_eq!(read("app/m.txt"), "asset\nasset\ntool\n");
    // The stage the triggers read is not in the image: only what they copied.
    assert!(!out.join("out").exists());

    // A trigger reading a stage defined after the one it runs in.
    let later = env.context(
        "later",
        &[(
            "Dockerfile",
            "FROM tmpl:1 AS app\nFROM busybox AS assets\nCOPY --from=app /app /x\n",
        )],
    );
    let res = env.run(&["build", "-q", later.to_str().expect("utf-8")]);
    assert!(!res.status.success());
    let err = stderr(&res);
    assert!(
        err.contains(
            "cannot copy from stage \"assets\", it needs to be defined before current stage \"app\""
        ),
        "{err}"
    );
}
