//! Cache exchange through the CLI (`--cache-to` / `--cache-from type=local`), with two store
//! roots as two CI runners: runner A builds and exports its cache to a directory, runner B
//! starts with an empty store and builds from that cache.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use support::fleet::{context, Fleet as Runners, DOCKERFILE};
use support::{json_file, layout_blob, s, stderr, step_cached, Env};

/// Two runners ([`Runners`]) and one shared directory for the cache.
struct Fleet {
    runners: Runners,
    cache: PathBuf,
}

impl std::ops::Deref for Fleet {
    type Target = Runners;
    fn deref(&self) -> &Runners {
        &self.runners
    }
}

impl Fleet {
    fn new() -> Option<Fleet> {
        let runners = Runners::new()?;
        let cache = runners.a.path("cache");
        Some(Fleet { runners, cache })
    }

    fn to(&self, mode: &str) -> String {
        format!("type=local,dest={},mode={mode}", s(&self.cache))
    }

    fn from(&self) -> String {
        format!("type=local,src={}", s(&self.cache))
    }
}

/// The record of a cache directory: its index, manifest and record blob, checked to be a
/// valid OCI layout whose blobs are all present with their digests.
fn record(cache: &Path) -> serde_json::Value {
    assert!(cache.join("oci-layout").is_file());
    let index = json_file(&cache.join("index.json"));
    let manifests = index["manifests"].as_array().expect("manifests");
    assert_eq!(manifests.len(), 1, "{index}");
    let digest = manifests[0]["digest"].as_str().expect("digest");
    let manifest = json_file(&layout_blob(cache, digest));
    for blob in referenced(cache) {
        let bytes = std::fs::read(layout_blob(cache, &blob)).expect("a referenced blob exists");
        assert_eq!(
            format!("{}", rbuild_types::Digest::of(&bytes)),
            blob,
            "blob digest"
        );
    }
    json_file(&layout_blob(
        cache,
        manifest["config"]["digest"].as_str().expect("config"),
    ))
}

/// Every blob the cache directory's index reaches (manifest, record, layers).
fn referenced(cache: &Path) -> BTreeSet<String> {
    let index = json_file(&cache.join("index.json"));
    let digest = index["manifests"][0]["digest"].as_str().expect("digest");
    let manifest = json_file(&layout_blob(cache, digest));
    let mut out = BTreeSet::from([
        digest.to_string(),
        manifest["config"]["digest"].as_str().unwrap().to_string(),
    ]);
    for l in manifest["layers"].as_array().expect("layers") {
        out.insert(l["digest"].as_str().unwrap().to_string());
    }
    out
}

/// Every file in the cache directory's `blobs/sha256`, as digests.
fn stored(cache: &Path) -> BTreeSet<String> {
    std::fs::read_dir(cache.join("blobs/sha256"))
        .expect("blobs dir")
        .map(|e| format!("sha256:{}", e.unwrap().file_name().to_string_lossy()))
        .collect()
}

#[test]
fn runner_b_builds_everything_from_runner_a_cache() {
    let Some(fleet) = Fleet::new() else {
        return;
    };
    let ctx_a = context(&fleet.a, DOCKERFILE);
    let (_, built_a) = fleet.build(&fleet.a, &ctx_a, &["--cache-to", &fleet.to("min")]);
    let rec = record(&fleet.cache);
    assert_eq!(rec["version"], 2);
    assert_eq!(rec["steps"].as_array().unwrap().len(), 5, "{rec}");
    assert_eq!(
        stored(&fleet.cache),
        referenced(&fleet.cache),
        "only what the record reaches"
    );

    // Runner B: an empty store; every step comes from the cache, and the image is the same.
    let ctx_b = context(&fleet.b, DOCKERFILE);
    let (progress, built_b) = fleet.build(&fleet.b, &ctx_b, &["--cache-from", &fleet.from()]);
    for step in [
        "FROM ",
        "COPY a.txt",
        "RUN cat /a.txt",
        "COPY c.txt",
        "RUN cat /c.txt",
    ] {
        assert!(
            step_cached(&progress, step),
            "{step} not cached:\n{progress}"
        );
    }
    assert_eq!(built_a, built_b, "same image on both runners");

    // A changed file re-runs only the steps from it on (runner B's store is reset first).
    let fresh = Env::new();
    let ctx = context(&fresh, DOCKERFILE);
    std::fs::write(ctx.join("c.txt"), "changed").unwrap();
    let (progress, _) = fleet.build(&fresh, &ctx, &["--cache-from", &fleet.from()]);
    for step in ["FROM ", "COPY a.txt", "RUN cat /a.txt"] {
        assert!(
            step_cached(&progress, step),
            "{step} not cached:\n{progress}"
        );
    }
    for step in ["COPY c.txt", "RUN cat /c.txt"] {
        assert!(!step_cached(&progress, step), "{step} cached:\n{progress}");
    }
}

#[test]
fn mode_min_exports_the_final_stage_and_max_every_stage() {
    let Some(fleet) = Fleet::new() else {
        return;
    };
    let dockerfile = "FROM busybox AS build\nRUN echo built > /out\n\
                      FROM busybox\nCOPY --from=build /out /out\nRUN cat /out > /copy\n";
    let ctx = context(&fleet.a, dockerfile);
    fleet.build(&fleet.a, &ctx, &["--cache-to", &fleet.to("min")]);
    let min = record(&fleet.cache)["steps"].as_array().unwrap().len();
    let ctx_b = context(&fleet.b, dockerfile);
    let (progress, _) = fleet.build(&fleet.b, &ctx_b, &["--cache-from", &fleet.from()]);
    assert!(!step_cached(&progress, "RUN echo built"), "{progress}");
    assert!(step_cached(&progress, "COPY --from=build"), "{progress}");
    assert!(step_cached(&progress, "RUN cat /out"), "{progress}");

    fleet.build(&fleet.a, &ctx, &["--cache-to", &fleet.to("max")]);
    let max = record(&fleet.cache)["steps"].as_array().unwrap().len();
    assert_eq!(
        (min, max),
        (3, 4),
        "FROM, COPY, RUN; and the build stage's RUN"
    );
    let fresh = Env::new();
    let ctx_c = context(&fresh, dockerfile);
    let (progress, _) = fleet.build(&fresh, &ctx_c, &["--cache-from", &fleet.from()]);
    for step in ["RUN echo built", "COPY --from=build", "RUN cat /out"] {
        assert!(
            step_cached(&progress, step),
            "{step} not cached:\n{progress}"
        );
    }
}

#[test]
fn a_garbled_or_missing_cache_warns_and_the_build_goes_on() {
    let Some(fleet) = Fleet::new() else {
        return;
    };
    let garbled = fleet.a.path("garbled");
    std::fs::create_dir_all(&garbled).unwrap();
    std::fs::write(garbled.join("index.json"), "{not json").unwrap();
    let ctx = context(&fleet.a, DOCKERFILE);
    let (progress, _) = fleet.build(
        &fleet.a,
        &ctx,
        &[
            "--cache-from",
            &format!("type=local,src={}", s(&garbled)),
            "--cache-from",
            "type=local,src=/nonexistent/rbuild-cache",
        ],
    );
    assert!(
        progress.contains(&format!("warning: cache import from {}", s(&garbled)))
            && progress.contains("index.json: not valid JSON"),
        "{progress}"
    );
    assert!(
        progress.contains("warning: cache import from /nonexistent/rbuild-cache: read"),
        "{progress}"
    );
    assert!(!step_cached(&progress, "RUN cat /a.txt"), "{progress}");
}

#[test]
fn concurrent_exporters_leave_a_valid_layout_and_old_blobs_are_pruned() {
    let Some(fleet) = Fleet::new() else {
        return;
    };
    let ctx_a = context(&fleet.a, DOCKERFILE);
    let ctx_b = context(&fleet.b, DOCKERFILE);
    std::fs::write(ctx_b.join("a.txt"), "other").unwrap();
    let to = fleet.to("max");
    std::thread::scope(|scope| {
        let a = scope.spawn(|| fleet.build(&fleet.a, &ctx_a, &["--cache-to", &to]));
        let b = scope.spawn(|| fleet.build(&fleet.b, &ctx_b, &["--cache-to", &to]));
        a.join().expect("runner A");
        b.join().expect("runner B");
    });
    record(&fleet.cache);
    assert_eq!(stored(&fleet.cache), referenced(&fleet.cache));
    assert!(!fleet
        .cache
        .join("blobs/sha256")
        .read_dir()
        .unwrap()
        .any(|e| e.unwrap().file_name().to_string_lossy().starts_with('.')));

    // A's build, exported again, replaces the record: the other build's layers go.
    std::fs::write(ctx_a.join("c.txt"), "again").unwrap();
    let before = stored(&fleet.cache);
    fleet.build(&fleet.a, &ctx_a, &["--cache-to", &to]);
    record(&fleet.cache);
    let after = stored(&fleet.cache);
    assert_eq!(after, referenced(&fleet.cache));
    assert!(before.difference(&after).count() > 0, "old blobs pruned");

    // The directory is still a cache a fresh runner builds from.
    let fresh = Env::new();
    let ctx = context(&fresh, DOCKERFILE);
    std::fs::write(ctx.join("c.txt"), "again").unwrap();
    let (progress, _) = fleet.build(&fresh, &ctx, &["--cache-from", &fleet.from()]);
    assert!(step_cached(&progress, "RUN cat /c.txt"), "{progress}");
}

#[test]
fn other_cache_types_are_usage_errors() {
    let env = Env::new();
    let ctx = env.context("ctx", &[("Dockerfile", "FROM scratch\n")]);
    for (flag, spec) in [
        ("--cache-to", "type=s3,bucket=b"),
        ("--cache-from", "type=gha"),
        ("--cache-to", "type=azblob"),
    ] {
        let out = env.run(&["build", flag, spec, s(&ctx)]);
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert!(
            stderr(&out).contains("not supported yet"),
            "{}",
            stderr(&out)
        );
    }
}
