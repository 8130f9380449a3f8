//! Byte progress of registry transfers through the CLI, against the test's own registry
//! holding busybox: `rbuild pull --progress=plain` shows each layer's bytes against its size,
//! a build `FROM` the registry image with `--progress=json` has transfer events with the
//! layer's size as a number, and `rbuild push` shows blobs uploading and done, then already
//! existing on a second push, and mounted when the registry has them in another repository. `-q` shows nothing.

mod support;

use rbuild_test_support::http::request;
use support::*;

const ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json";

/// `(digest, size)` of each layer of `<addr>/<repo>:latest` (through an index, its first
/// manifest), read from the registry itself.
fn layers(addr: &str, repo: &str) -> Vec<(String, u64)> {
    let get = |reference: &str| -> serde_json::Value {
        let path = format!("/v2/{repo}/manifests/{reference}");
        let resp = request(addr, "GET", &path, &[("Accept", ACCEPT)], b"").expect("manifest");
        assert_eq!(resp.status, 200, "GET {path}");
        serde_json::from_slice(&resp.body).expect("manifest JSON")
    };
    let mut manifest = get("latest");
    if let Some(first) = manifest["manifests"].get(0) {
        let digest = first["digest"].as_str().expect("child digest").to_string();
        manifest = get(&digest);
    }
    manifest["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .map(|l| {
            (
                l["digest"].as_str().expect("digest").to_string(),
                l["size"].as_u64().expect("size"),
            )
        })
        .collect()
}

/// `sha256:` and the first 12 hex characters of `digest`.
fn short(digest: &str) -> String {
    digest[..19].to_string()
}

/// rbuild's way of writing a size (`human_size`): decimal units, up to 3 decimals.
fn human(bytes: u64) -> String {
    let units = ["B", "kB", "MB", "GB"];
    let (mut size, mut unit) = (bytes as f64, 0);
    while size >= 1000.0 && unit < units.len() - 1 {
        size /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        return format!("{bytes}B");
    }
    let text = format!("{size:.3}");
    format!(
        "{}{}",
        text.trim_end_matches('0').trim_end_matches('.'),
        units[unit]
    )
}

/// The registry with busybox, a store of the test's own, and busybox's name there.
fn world() -> Option<(Registry, Env, String)> {
    let registry = Registry::with_busybox()?;
    let name = format!("{}/library/busybox:latest", registry.addr);
    Some((registry, Env::new(), name))
}

#[test]
fn pull_shows_each_layers_bytes_in_plain_mode() {
    let Some((registry, env, name)) = world() else {
        return;
    };
    let out = env.ok(&["pull", "--progress=plain", &name]);
    let err = stderr(&out);
    let layers = layers(&registry.addr, "library/busybox");
    assert!(!layers.is_empty());
    for (digest, size) in &layers {
        let total = human(*size);
        let done = format!("{} {total} / {total} ", short(digest));
        assert!(
            err.lines()
                .any(|l| l.starts_with('#') && l.contains(&done) && l.ends_with(" done")),
            "no done line {done:?} for {digest}:\n{err}"
        );
        assert!(
            err.lines()
                .any(|l| l.contains(&format!("{} 0B / {total} ", short(digest)))),
            "no start line for {digest}:\n{err}"
        );
        let lines = err.lines().filter(|l| l.contains(&short(digest))).count();
        assert!(lines <= 12, "{lines} lines for one blob:\n{err}");
    }

    // Quiet: the name on stdout, no progress.
    let env = Env::new();
    let out = env.ok(&["pull", "-q", &name]);
    assert!(!stderr(&out).contains("sha256:"), "{}", stderr(&out));
}

#[test]
fn a_build_from_the_registry_shows_layer_bytes_as_json() {
    let Some((registry, env, from)) = world() else {
        return;
    };
    let ctx = env.context(
        "ctx",
        &[("Dockerfile", &format!("FROM {from}\nLABEL progress=json\n"))],
    );
    // A root-filesystem output reads the (lazy) base layers: they are downloaded for it.
    let rootfs = env.path("rootfs.tar");
    let output = format!("type=tar,dest={}", s(&rootfs));
    let out = env.ok(&["build", "--progress=json", "-o", &output, s(&ctx)]);
    let err = stderr(&out);
    let events: Vec<serde_json::Value> = err
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v.get("transfer").is_some())
        .collect();
    for (digest, size) in layers(&registry.addr, "library/busybox") {
        let mine: Vec<&serde_json::Value> = events
            .iter()
            .filter(|v| v["transfer"]["digest"] == digest.as_str())
            .collect();
        assert!(!mine.is_empty(), "no transfer events for {digest}:\n{err}");
        for v in &mine {
            assert_eq!(v["transfer"]["total"].as_u64(), Some(size), "{v}");
            assert_eq!(v["transfer"]["direction"], "pull", "{v}");
            assert!(v["time"].as_f64().is_some_and(|t| t > 0.0), "{v}");
        }
        let phases: Vec<&str> = mine
            .iter()
            .filter_map(|v| v["transfer"]["phase"].as_str())
            .collect();
        assert!(phases.contains(&"downloading"), "{phases:?}");
        assert_eq!(phases.last(), Some(&"done"), "{phases:?}");
        let last = mine.last().expect("events");
        assert_eq!(last["transfer"]["current"].as_u64(), Some(size), "{last}");
    }
}

#[test]
fn push_shows_uploads_then_existing_blobs() {
    let Some((registry, env, source)) = world() else {
        return;
    };
    // Another registry, so that the blobs cannot be mounted from busybox's repository.
    let Some(other) = Registry::start() else {
        return;
    };
    let target = format!("{}/rbuild-test/progress:1", other.addr);
    env.ok(&["pull", "-q", &source]);
    env.ok(&["tag", &source, &target]);

    let first = stderr(&env.ok(&["push", "--progress=plain", &target]));
    let uploads: Vec<&str> = first
        .lines()
        .filter(|l| l.starts_with('#') && l.contains(" 0B / "))
        .collect();
    assert!(!uploads.is_empty(), "no upload started:\n{first}");
    assert!(
        first.lines().any(|l| l.ends_with(" done")),
        "no upload done:\n{first}"
    );

    let second = stderr(&env.ok(&["push", "--progress=plain", &target]));
    assert!(
        second.lines().any(|l| l.ends_with(" already exists")),
        "the second push does not say the blobs exist:\n{second}"
    );
    assert!(
        !second.lines().any(|l| l.ends_with(" done")),
        "the second push uploaded again:\n{second}"
    );

    // In busybox's registry, the layers are mounted from where they were pulled.
    let mounted = format!("{}/rbuild-test/progress:1", registry.addr);
    env.ok(&["tag", &source, &mounted]);
    let third = stderr(&env.ok(&["push", "--progress=plain", &mounted]));
    assert!(
        third.lines().any(|l| l.ends_with(" mounted")),
        "no blob mounted:\n{third}"
    );
}
