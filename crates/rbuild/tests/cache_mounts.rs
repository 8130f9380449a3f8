//! `RUN --mount=type=cache` contents through the cache exchange (`cache-mounts=true`, issue
//! 14 item 3), through the CLI, with two store roots as two CI runners: runner A's RUN fills a
//! cache mount and A exports it (`type=local`, `type=registry`); runner B, from an empty
//! store, runs a different RUN on the same cache id and sees A's files.

mod support;

use std::path::{Path, PathBuf};

use support::fleet::Fleet;
use support::{json_file, layout_blob, s, stderr, Env, Registry};

/// Runner A's step: writes `hello` into cache mount `pip`, and `x` into `small`.
const WRITE: &str = "FROM busybox\n\
                     RUN --mount=type=cache,target=/c,id=pip --mount=type=cache,target=/s,id=small \
                     sh -c 'echo hello > /c/f; printf x > /s/g; ls /c'\n";

/// Runner B's step (another command, so it runs): copies what the mounts hold into the image.
const READ: &str = "FROM busybox\n\
                    RUN --mount=type=cache,target=/c,id=pip --mount=type=cache,target=/s,id=small \
                    sh -c 'cat /c/f > /seen 2>/dev/null; cat /s/g > /seen-small 2>/dev/null; true'\n";

/// Builds `dockerfile` in `env` (on the fleet's busybox) with `extra` flags, the root
/// filesystem exported to a new directory; returns stderr and that directory.
fn build(
    fleet: &Fleet,
    env: &Env,
    name: &str,
    dockerfile: &str,
    extra: &[&str],
) -> (String, PathBuf) {
    let ctx = env.context(name, &[("Dockerfile", dockerfile)]);
    let out = env.path(&format!("{name}-out"));
    let dest = format!("type=local,dest={}", s(&out));
    let mut args = vec![
        "build",
        "--progress=plain",
        "--build-context",
        &fleet.base,
        "-o",
        &dest,
    ];
    args.extend_from_slice(extra);
    args.push(s(&ctx));
    let run = env.ok(&args);
    (stderr(&run), out)
}

/// What runner B's RUN saw in mount `pip` (and `small`): the file's contents, or "".
fn seen(out: &Path) -> (String, String) {
    let read = |f: &str| std::fs::read_to_string(out.join(f)).unwrap_or_default();
    (read("seen"), read("seen-small"))
}

/// The record of a `type=local` cache directory, and its manifest's layer digests.
fn local_record(cache: &Path) -> (serde_json::Value, Vec<String>) {
    let index = json_file(&cache.join("index.json"));
    let digest = index["manifests"][0]["digest"].as_str().expect("digest");
    let manifest = json_file(&layout_blob(cache, digest));
    let layers = manifest["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect();
    let config = manifest["config"]["digest"].as_str().expect("config");
    (json_file(&layout_blob(cache, config)), layers)
}

/// The record's cache mount ids.
fn mount_ids(record: &serde_json::Value) -> Vec<String> {
    record["cacheMounts"]
        .as_array()
        .map(|ms| {
            ms.iter()
                .map(|m| m["id"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_cache_mount_travels_through_a_local_cache_when_asked() {
    let Some(fleet) = Fleet::new() else {
        return;
    };
    let cache = fleet.a.path("cache");
    let to = format!("type=local,dest={},cache-mounts=true", s(&cache));
    build(&fleet, &fleet.a, "a", WRITE, &["--cache-to", &to]);
    let (record, layers) = local_record(&cache);
    assert_eq!(record["version"], 2, "{record}");
    assert_eq!(mount_ids(&record), ["pip", "small"], "{record}");
    for m in record["cacheMounts"].as_array().unwrap() {
        let digest = m["digest"].as_str().unwrap();
        assert!(layers.iter().any(|l| l == digest), "listed as a layer: {m}");
        assert!(layout_blob(&cache, digest).is_file());
    }

    // Without cache-mounts=true on the import, nothing of the mounts comes along.
    let plain = format!("type=local,src={}", s(&cache));
    let c = Env::new();
    let (_, out) = build(&fleet, &c, "c", READ, &["--cache-from", &plain]);
    assert_eq!(seen(&out), (String::new(), String::new()));

    // With it, runner B's different RUN sees what runner A's wrote.
    let from = format!("{plain},cache-mounts=true");
    let (_, out) = build(&fleet, &fleet.b, "b", READ, &["--cache-from", &from]);
    assert_eq!(seen(&out), ("hello\n".to_string(), "x".to_string()));

    // Without cache-mounts=true on the export, the record has none.
    let plain_to = format!("type=local,dest={}", s(&cache));
    build(&fleet, &fleet.a, "a2", WRITE, &["--cache-to", &plain_to]);
    let (record, _) = local_record(&cache);
    assert!(record.get("cacheMounts").is_none(), "{record}");
}

#[test]
fn an_existing_local_mount_is_not_overwritten_by_an_import() {
    let Some(fleet) = Fleet::new() else {
        return;
    };
    let cache = fleet.a.path("cache");
    let to = format!("type=local,dest={},cache-mounts=true", s(&cache));
    build(&fleet, &fleet.a, "a", WRITE, &["--cache-to", &to]);

    // Runner B already has mount `pip`, with its own file.
    let own = "FROM busybox\nRUN --mount=type=cache,target=/c,id=pip sh -c 'echo mine > /c/f'\n";
    build(&fleet, &fleet.b, "own", own, &[]);
    let from = format!("type=local,src={},cache-mounts=true", s(&cache));
    let (_, out) = build(&fleet, &fleet.b, "b", READ, &["--cache-from", &from]);
    assert_eq!(
        seen(&out),
        ("mine\n".to_string(), "x".to_string()),
        "pip kept as it was; small, new here, seeded"
    );
}

#[test]
fn a_mount_over_the_size_limit_is_skipped_with_a_warning() {
    let Some(fleet) = Fleet::new() else {
        return;
    };
    let cache = fleet.a.path("cache");
    let to = format!(
        "type=local,dest={},cache-mounts=true,cache-mounts-max-size=4",
        s(&cache)
    );
    let (progress, _) = build(&fleet, &fleet.a, "a", WRITE, &["--cache-to", &to]);
    assert!(
        progress.contains(
            "cache mount \"pip\" not exported: it holds 6 bytes, over cache-mounts-max-size (4 bytes)"
        ),
        "{progress}"
    );
    let (record, _) = local_record(&cache);
    assert_eq!(mount_ids(&record), ["small"], "{record}");
    assert_eq!(record["steps"].as_array().unwrap().len(), 2, "{record}");

    let from = format!("type=local,src={},cache-mounts=true", s(&cache));
    let (_, out) = build(&fleet, &fleet.b, "b", READ, &["--cache-from", &from]);
    assert_eq!(seen(&out), (String::new(), "x".to_string()));
}

#[test]
fn a_cache_mount_travels_through_a_registry_cache_in_every_shape() {
    let Some(fleet) = Fleet::new() else {
        return;
    };
    let Some(registry) = Registry::start() else {
        return;
    };
    for (tag, extra) in [
        ("index", ""),
        ("manifest", ",image-manifest=true"),
        ("list", ",oci-mediatypes=false"),
    ] {
        let reference = format!("{}/ci/mounts-cache:{tag}", registry.addr);
        let a = Env::new();
        let to = format!("type=registry,ref={reference},cache-mounts=true{extra}");
        build(&fleet, &a, "a", WRITE, &["--cache-to", &to]);

        let plain = format!("type=registry,ref={reference}");
        let c = Env::new();
        let (_, out) = build(&fleet, &c, "c", READ, &["--cache-from", &plain]);
        assert_eq!(seen(&out), (String::new(), String::new()), "{tag}");

        let b = Env::new();
        let from = format!("{plain},cache-mounts=true");
        let (_, out) = build(&fleet, &b, "b", READ, &["--cache-from", &from]);
        assert_eq!(
            seen(&out),
            ("hello\n".to_string(), "x".to_string()),
            "{tag}"
        );
    }
}

#[test]
fn inline_cannot_carry_cache_mounts() {
    let env = Env::new();
    let ctx = env.context("ctx", &[("Dockerfile", "FROM scratch\n")]);
    let out = env.run(&[
        "build",
        "--cache-to",
        "type=inline,cache-mounts=true",
        s(&ctx),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("type=inline cannot export cache mounts"),
        "{}",
        stderr(&out)
    );
}
