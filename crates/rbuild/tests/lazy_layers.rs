//! Lazy layers through the CLI: a CI runner with an empty store that builds from a registry
//! cache and pushes downloads none of the cached layers (the registry mounts them), and the
//! layers are downloaded only by what reads them: a step that runs, a root-filesystem output,
//! `rbuild save`.

mod support;

use std::path::Path;
use std::process::Command;

use support::fleet::assert_cached;
use support::{can_build_runs, raw_json, require_tool, s, stderr, Env, Registry};

/// A base from the test registry, a copied file and a RUN on it.
fn dockerfile(registry: &Registry) -> String {
    format!(
        "FROM {}/library/busybox\nCOPY a.txt /a.txt\nRUN cat /a.txt > /b.txt && echo built >> /b.txt\n",
        registry.addr
    )
}

const STEPS: [&str; 3] = ["FROM ", "COPY a.txt", "RUN cat /a.txt"];

/// `rbuild build --progress=plain` in `env` of `ctx` with `extra`; returns the progress.
fn build(env: &Env, ctx: &Path, extra: &[&str]) -> String {
    let mut args = vec!["build", "--progress=plain"];
    args.extend_from_slice(extra);
    args.push(s(ctx));
    stderr(&env.ok(&args))
}

/// The layer digests of `reference` on the plain-HTTP test registry (skopeo).
fn layer_digests(reference: &str) -> Vec<String> {
    raw_json(reference, &[])["layers"]
        .as_array()
        .expect("an image manifest")
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect()
}

/// Whether `env`'s store holds blob `digest` (`sha256:…`).
fn has_blob(env: &Env, digest: &str) -> bool {
    let hex = digest.trim_start_matches("sha256:");
    env.store.join("blobs/sha256").join(hex).exists()
}

/// How many layers `env`'s store has unpacked.
fn snapshots(env: &Env) -> usize {
    std::fs::read_dir(env.store.join("snapshots"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[test]
fn a_runner_pushes_from_the_cache_without_downloading_a_layer() {
    if !can_build_runs() || require_tool("skopeo").is_none() {
        return;
    }
    let Some(registry) = Registry::with_busybox() else {
        return;
    };
    let cache = format!("type=registry,ref={}/ci/lazy-cache,mode=max", registry.addr);
    let from = format!("type=registry,ref={}/ci/lazy-cache", registry.addr);

    // Runner A builds, pushes the image and the cache.
    let a = Env::new();
    let ctx_a = a.context(
        "ctx",
        &[("Dockerfile", &dockerfile(&registry)), ("a.txt", "a")],
    );
    let image_a = format!("{}/ci/lazy:a", registry.addr);
    build(
        &a,
        &ctx_a,
        &["-t", &image_a, "--push", "--cache-to", &cache],
    );
    let layers_a = layer_digests(&image_a);
    assert_eq!(layers_a.len(), 3, "busybox, COPY and RUN");

    // Runner B, empty: every step is cached, the push mounts every layer, and the store has
    // neither a layer blob nor an unpacked layer.
    let b = Env::new();
    let ctx_b = b.context(
        "ctx",
        &[("Dockerfile", &dockerfile(&registry)), ("a.txt", "a")],
    );
    let image_b = format!("{}/ci/lazy:b", registry.addr);
    let progress = build(
        &b,
        &ctx_b,
        &["-t", &image_b, "--push", "--cache-from", &from],
    );
    assert_cached(&progress, &STEPS, true);
    assert_eq!(layer_digests(&image_b), layers_a);
    for layer in &layers_a {
        assert!(
            !has_blob(&b, layer),
            "runner B downloaded {layer}:\n{progress}"
        );
    }
    assert_eq!(snapshots(&b), 0, "runner B unpacked a layer:\n{progress}");

    // The image in B's store is whole: `rbuild save` downloads its layers into the archive.
    let archive = b.path("b.tar");
    b.ok(&["save", "-o", s(&archive), &image_b]);
    let inspect = Command::new("skopeo")
        .arg("inspect")
        .arg(format!("docker-archive:{}", s(&archive)))
        .output()
        .expect("run skopeo");
    assert!(
        inspect.status.success(),
        "{}",
        String::from_utf8_lossy(&inspect.stderr)
    );
    assert!(layers_a.iter().all(|l| has_blob(&b, l)));

    // A step that runs on the cached result unpacks what it reads, from the registry.
    let ctx_c = b.context(
        "ctx-c",
        &[
            (
                "Dockerfile",
                &format!("{}RUN cat /b.txt\n", dockerfile(&registry)),
            ),
            ("a.txt", "a"),
        ],
    );
    let c = Env::new();
    let out = c.path("rootfs");
    let progress = build(
        &c,
        &ctx_c,
        &[
            "--cache-from",
            &from,
            "-o",
            &format!("type=local,dest={}", s(&out)),
        ],
    );
    assert_cached(&progress, &STEPS, true);
    assert_cached(&progress, &["RUN cat /b.txt"], false);
    assert_eq!(
        std::fs::read_to_string(out.join("b.txt")).unwrap(),
        "abuilt\n"
    );

    // A root-filesystem output of a fully cached build unpacks the layers it writes.
    let d = Env::new();
    let ctx_d = d.context(
        "ctx",
        &[("Dockerfile", &dockerfile(&registry)), ("a.txt", "a")],
    );
    let out = d.path("rootfs");
    let progress = build(
        &d,
        &ctx_d,
        &[
            "--cache-from",
            &from,
            "-o",
            &format!("type=local,dest={}", s(&out)),
        ],
    );
    assert_cached(&progress, &STEPS, true);
    assert_eq!(
        std::fs::read_to_string(out.join("b.txt")).unwrap(),
        "abuilt\n"
    );
    assert!(out.join("bin/busybox").exists());
}

#[test]
fn a_base_image_is_downloaded_only_when_a_step_reads_it() {
    if !can_build_runs() || require_tool("skopeo").is_none() {
        return;
    }
    let Some(registry) = Registry::with_busybox() else {
        return;
    };
    let env = Env::new();
    // FROM and metadata only: pushing the image mounts the base layer from its repository.
    let ctx = env.context(
        "ctx",
        &[(
            "Dockerfile",
            &format!("FROM {}/library/busybox\nENV A=1\n", registry.addr),
        )],
    );
    let image = format!("{}/ci/lazy-base:1", registry.addr);
    build(&env, &ctx, &["-t", &image, "--push"]);
    let layers = layer_digests(&image);
    assert_eq!(layers.len(), 1);
    assert!(!has_blob(&env, &layers[0]));
    assert_eq!(snapshots(&env), 0);

    // A RUN reads the base: now it is downloaded and unpacked, once.
    let ctx = env.context(
        "ctx-run",
        &[(
            "Dockerfile",
            &format!(
                "FROM {}/library/busybox\nRUN echo hi > /hi\n",
                registry.addr
            ),
        )],
    );
    build(&env, &ctx, &[]);
    assert!(has_blob(&env, &layers[0]));
    assert_eq!(snapshots(&env), 2, "the base layer and the RUN's");
}
