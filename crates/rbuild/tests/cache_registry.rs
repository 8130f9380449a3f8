//! The registry cache through the CLI (`--cache-to` / `--cache-from type=registry`), with two
//! store roots as two CI runners and a registry of the test's own: runner A builds and pushes
//! its cache, runner B starts with an empty store and builds from it.

mod support;

use support::fleet::{assert_cached, context, Fleet, DOCKERFILE};
use support::{raw_json, require_tool, Env, Registry};

const STEPS: [&str; 5] = [
    "FROM ",
    "COPY a.txt",
    "RUN cat /a.txt",
    "COPY c.txt",
    "RUN cat /c.txt",
];

/// Runners, a registry (with the busybox image, so it is not an empty one), and skopeo.
fn setup() -> Option<(Fleet, Registry)> {
    require_tool("skopeo")?;
    let fleet = Fleet::new()?;
    Some((fleet, Registry::with_busybox()?))
}

#[test]
fn runner_b_builds_everything_from_the_cache_runner_a_pushed() {
    let Some((fleet, registry)) = setup() else {
        return;
    };
    for (tag, extra, media_type, record_at) in [
        (
            "index",
            "",
            "application/vnd.oci.image.index.v1+json",
            "/manifests",
        ),
        (
            "manifest",
            ",image-manifest=true",
            "application/vnd.oci.image.manifest.v1+json",
            "/config",
        ),
        (
            "list",
            ",oci-mediatypes=false",
            "application/vnd.docker.distribution.manifest.list.v2+json",
            "/manifests",
        ),
    ] {
        let reference = format!("{}/ci/app-cache:{tag}", registry.addr);
        let to = format!("type=registry,ref={reference},mode=max{extra}");
        let a = Env::new();
        let ctx_a = context(&a, DOCKERFILE);
        let (_, built_a) = fleet.build(&a, &ctx_a, &["--cache-to", &to]);

        let raw = raw_json(&reference, &[]);
        assert_eq!(raw["mediaType"], media_type, "{raw}");
        let record = match record_at {
            "/config" => raw["config"].clone(),
            _ => raw["manifests"].as_array().unwrap().last().unwrap().clone(),
        };
        assert_eq!(
            record["mediaType"], "application/vnd.rbuild.cache.record.v2+json",
            "{raw}"
        );

        // Runner B: an empty store; every step comes from the cache, and the image is the same.
        let b = Env::new();
        let ctx_b = context(&b, DOCKERFILE);
        let from = format!("type=registry,ref={reference}");
        let (progress, built_b) = fleet.build(&b, &ctx_b, &["--cache-from", &from]);
        assert_cached(&progress, &STEPS, true);
        assert_eq!(built_a, built_b, "{tag}: same image id and manifest");
    }

    // A changed file re-runs only the steps from it on; BuildKit's shorthand names the cache.
    let fresh = Env::new();
    let ctx = context(&fresh, DOCKERFILE);
    std::fs::write(ctx.join("c.txt"), "changed").unwrap();
    let reference = format!("{}/ci/app-cache:index", registry.addr);
    let (progress, _) = fleet.build(&fresh, &ctx, &["--cache-from", &reference]);
    assert_cached(&progress, &STEPS[..3], true);
    assert_cached(&progress, &STEPS[3..], false);
}

#[test]
fn an_unreachable_or_foreign_registry_cache_warns_and_the_others_still_serve() {
    let Some((fleet, registry)) = setup() else {
        return;
    };
    let reference = format!("{}/ci/app-cache:min", registry.addr);
    let ctx_a = context(&fleet.a, DOCKERFILE);
    fleet.build(
        &fleet.a,
        &ctx_a,
        &[
            "--cache-to",
            &format!("type=registry,ref={reference},compression=zstd"),
        ],
    );
    let raw = raw_json(&reference, &[]);
    let layers: Vec<&str> = raw["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["mediaType"].as_str())
        .filter(|m| m.contains("layer"))
        .collect();
    assert!(
        !layers.is_empty()
            && layers
                .iter()
                .all(|m| m.ends_with("tar+zstd") || m.ends_with("tar+gzip")),
        "built layers compressed with zstd, the base's as pulled: {raw}"
    );

    let ctx_b = context(&fleet.b, DOCKERFILE);
    // A port nothing listens on; an image that is no cache; then the cache.
    let unreachable = "127.0.0.1:1/ci/none:cache";
    let foreign = format!("{}/library/busybox:latest", registry.addr);
    let (progress, _) = fleet.build(
        &fleet.b,
        &ctx_b,
        &[
            "--cache-from",
            &format!("type=registry,ref={unreachable}"),
            "--cache-from",
            &format!("type=registry,ref={foreign}"),
            "--cache-from",
            &format!("type=registry,ref={reference}"),
        ],
    );
    assert!(
        progress.contains(&format!("warning: cache import from {unreachable}")),
        "{progress}"
    );
    assert!(
        progress.contains(&format!("warning: cache import from {foreign}"))
            && progress.contains("holds no rbuild cache record"),
        "{progress}"
    );
    assert_cached(&progress, &STEPS, true);
}

#[test]
fn an_inline_cache_travels_in_the_pushed_image() {
    let Some((fleet, registry)) = setup() else {
        return;
    };
    let image = format!("{}/ci/app:inline", registry.addr);
    let ctx_a = context(&fleet.a, DOCKERFILE);
    let inline = ["--cache-to", "type=inline"];
    let (_, built_a) = fleet.build(
        &fleet.a,
        &ctx_a,
        &[inline[0], inline[1], "-t", &image, "--push"],
    );
    let config = raw_json(&image, &["--config"]);
    let record = &config["rbuild.cache.v1"];
    assert_eq!(record["version"], 2, "{config}");
    assert_eq!(record["steps"].as_array().unwrap().len(), 5, "{config}");

    // BuildKit's shorthand: the image itself is the cache, its layers the cached ones.
    let ctx_b = context(&fleet.b, DOCKERFILE);
    let (progress, built_b) = fleet.build(
        &fleet.b,
        &ctx_b,
        &["--cache-from", &image, inline[0], inline[1]],
    );
    assert_cached(&progress, &STEPS, true);
    // The image id (A reports the pushed manifest, B the stored one).
    let id = |ids: &str| ids.split(' ').next().unwrap_or_default().to_string();
    assert_eq!(
        id(&built_a),
        id(&built_b),
        "same image, inline record included"
    );
}
