//! What the frontend's lowering of `RUN --mount` and `#!` heredocs means once built: a script
//! heredoc runs from its read-only mount and is not in the image; bind mounts read exactly
//! the stage path, context file or context directory they name, at targets made absolute
//! against the WORKDIR. Needs root and busybox-static.

mod support;

use support::Env;

fn read(root: &std::path::Path, rel: &str) -> String {
    std::fs::read_to_string(root.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

#[test]
fn shebang_heredoc_runs_as_a_mounted_script() {
    let Some(env) = Env::with_busybox() else {
        return;
    };
    let df = "FROM busybox\nWORKDIR /app\nRUN <<EOF\n#!/bin/sh\necho \"ran $0 $(pwd)\" > /app/out\nEOF\n";
    let ctx = env.context("script", &[("Dockerfile", df)]);
    let root = env.build_local(&[], &ctx);
    assert_eq!(read(&root, "app/out"), "ran /dev/pipes/EOF /app\n");
    assert!(
        !root.join("dev/pipes/EOF").exists(),
        "the script is not part of the image"
    );
}

#[test]
fn bind_mounts_read_the_named_source() {
    let Some(env) = Env::with_busybox() else {
        return;
    };
    let df = "FROM busybox AS gen\nRUN mkdir /out && echo generated > /out/g.txt\n\
              FROM busybox\nWORKDIR /w\n\
              RUN --mount=from=gen,source=/out,target=/gen \\\n    \
                  --mount=source=sub/a.txt,target=a \\\n    \
                  --mount=source=sub,target=/sub \\\n    \
                  cat /gen/g.txt /w/a /sub/b.txt > /result && ls /sub > /listing\n";
    let ctx = env.context(
        "binds",
        &[
            ("Dockerfile", df),
            ("sub/a.txt", "A\n"),
            ("sub/b.txt", "B\n"),
            ("sub/ignored.txt", "I\n"),
            (".dockerignore", "sub/ignored.txt\n"),
        ],
    );
    let root = env.build_local(&[], &ctx);
    assert_eq!(read(&root, "result"), "generated\nA\nB\n");
    assert_eq!(read(&root, "listing"), "a.txt\nb.txt\n");
    assert!(
        !root.join("gen/g.txt").exists(),
        "a bind mount's files are not in the image"
    );
}
