//! The context directory is opened (its `.dockerignore` read, its tree walked) only after the
//! Dockerfile is parsed and lowered, and only when a step reads it. The context here is a trap:
//! its `.dockerignore` is a directory, so opening it fails for any user, root included (an
//! unreadable subdirectory would not stop root's walk). A build that opened it would fail
//! with `build context …`; the control case shows that it does.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rbuild_builder::{
    build, BuildConfig, BuildError, BuildEvent, BuildIo, ContextSpec, DockerfileSpec,
};

/// A context directory whose opening fails, with `dockerfile` as its Dockerfile.
fn trap(dir: &Path, dockerfile: &str) -> PathBuf {
    let ctx = dir.join("ctx");
    std::fs::create_dir_all(ctx.join(".dockerignore")).expect("mkdir");
    std::fs::create_dir_all(ctx.join("tree/deeper")).expect("mkdir");
    std::fs::write(ctx.join("tree/deeper/file"), "x").expect("write");
    std::fs::write(ctx.join("Dockerfile"), dockerfile).expect("write");
    ctx
}

/// Builds the directory context `ctx` into a store under `dir`; returns the result and the
/// names of the steps the events reported.
fn run(dir: &Path, ctx: &Path) -> (Result<rbuild_builder::Exported, BuildError>, Vec<String>) {
    let mut config = BuildConfig::new(
        DockerfileSpec::Default,
        ContextSpec::Dir(ctx.to_path_buf()),
        dir.join("store"),
        rbuild_sandbox::detect_privileges(),
    );
    config.tags = vec!["lazy:1".parse().expect("name")];
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    let io = BuildIo {
        events: Arc::new(move |e| {
            let name = match e {
                BuildEvent::Internal { name, .. } => name,
                BuildEvent::Step(e) => format!("{e:?}"),
                other => format!("{other:?}"),
            };
            sink.lock().expect("lock").push(name);
        }),
        stdin: None,
        stdout: None,
    };
    let result = build(config, io);
    let seen = seen.lock().expect("lock").clone();
    (result, seen)
}

#[test]
fn a_syntax_error_fails_before_the_context_is_opened() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ctx = trap(dir.path(), "FROM scratch\nCOPY . /\nRUN <<EOF\necho\n");
    let (result, events) = run(dir.path(), &ctx);
    let err = result.expect_err("the Dockerfile is wrong");
    let text = err.to_string();
    assert!(matches!(err, BuildError::Dockerfile(_)), "{err:?}");
    assert!(
        text.contains("Dockerfile:3:1: error: unterminated heredoc"),
        "{text}"
    );
    assert!(text.contains('^'), "a caret: {text}");
    assert!(!text.contains("build context"), "{text}");
    // Nothing was loaded, not even the build definition.
    assert!(events.is_empty(), "{events:?}");
}

#[test]
fn a_dockerfile_that_reads_no_context_never_opens_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ctx = trap(dir.path(), "FROM scratch\nLABEL a=b\nENV X=1\n");
    let (result, events) = run(dir.path(), &ctx);
    let built = result.unwrap_or_else(|e| panic!("builds without its context: {e}"));
    assert_eq!(built.names, ["docker.io/library/lazy:1"]);
    assert!(
        events.iter().any(|e| e == "exporting to image"),
        "{events:?}"
    );
}

#[test]
fn a_copy_of_the_context_opens_it() {
    // The control: the trap fires when a step does read the context.
    let dir = tempfile::tempdir().expect("tempdir");
    let ctx = trap(dir.path(), "FROM scratch\nCOPY tree /tree\n");
    let (result, events) = run(dir.path(), &ctx);
    let err = result.expect_err("the context cannot be opened");
    assert!(matches!(err, BuildError::Context { .. }), "{err:?}");
    assert!(err.to_string().starts_with("build context "), "{err}");
    // The Dockerfile was parsed and lowered first; no step ran.
    assert!(
        events
            .iter()
            .any(|e| e.starts_with("[internal] load build definition")),
        "{events:?}"
    );
    assert!(
        !events.iter().any(|e| e.starts_with("Started")),
        "{events:?}"
    );
}
