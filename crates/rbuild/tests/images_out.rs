//! Images out of rbuild: store commands (inspect, history, save, load, pull, push), build
//! outputs (--metadata-file, compression, media types, push), SOURCE_DATE_EPOCH
//! reproducibility, and real tools (skopeo, umoci, podman) reading what rbuild writes.

mod support;

use std::fs;
use std::process::Command;

use support::{
    can_build_runs, json_file, oci_manifest, podman, require_tool, s, stderr, stdout, Env,
};

const APP: &str = "FROM busybox\nWORKDIR /app\nCOPY a.txt .\nRUN echo hi > /hi\nENV X=1\nCMD [\"cat\", \"/hi\"]\n";

#[test]
fn inspect_history_images_save_and_load() {
    let Some(env) = Env::with_busybox() else {
        return;
    };
    let ctx = env.context("ctx", &[("Dockerfile", APP), ("a.txt", "a\n")]);
    let meta = env.path("meta.json");
    env.ok(&[
        "build",
        "-q",
        "-t",
        "app:1.0",
        "-t",
        "app:latest",
        "--metadata-file",
        s(&meta),
        s(&ctx),
    ]);

    let meta = json_file(&meta);
    let id = meta["containerimage.config.digest"].as_str().unwrap();
    assert!(id.starts_with("sha256:"), "{meta}");
    assert_eq!(
        meta["image.name"],
        "docker.io/library/app:1.0,docker.io/library/app:latest"
    );
    assert_eq!(
        meta["containerimage.descriptor"]["digest"],
        meta["containerimage.digest"]
    );

    let out = env.ok(&["inspect", "app:1.0"]);
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let img = &info[0];
    assert_eq!(img["Id"], id);
    assert_eq!(
        img["RepoTags"],
        serde_json::json!(["app:1.0", "app:latest"])
    );
    assert_eq!(img["Config"]["Cmd"], serde_json::json!(["cat", "/hi"]));
    assert_eq!(img["Config"]["WorkingDir"], "/app");
    assert_eq!(img["RootFS"]["Type"], "layers");
    assert!(img["Size"].as_u64().unwrap() > 1_000_000, "{img}");
    assert_eq!(img["Os"], "linux");

    let out = stdout(&env.ok(&["history", "app:1.0"]));
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("IMAGE"), "{out}");
    assert!(lines[1].starts_with(&id[7..19]), "{out}");
    assert!(lines[1].contains("CMD"), "{out}");
    assert!(out.contains("ago"), "{out}");
    assert!(out.contains("<missing>"), "{out}");

    let out = stdout(&env.ok(&["images"]));
    assert!(
        out.lines()
            .any(|l| l.starts_with("app:1.0") && l.contains(" ago")),
        "{out}"
    );

    // docker-archive and OCI archives load into fresh stores and keep the image id; a loaded
    // image serves as a base.
    for format in ["docker", "oci"] {
        let tar = env.path(&format!("save-{format}.tar"));
        env.ok(&["save", "app:1.0", "-o", s(&tar), "--format", format]);
        let other = Env::new();
        let out = stdout(&other.ok(&["load", "-i", s(&tar)]));
        assert!(out.contains("Loaded image: app:1.0"), "{format}: {out}");
        let out = other.ok(&["inspect", "app:1.0"]);
        let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(info[0]["Id"], id, "{format}");
        if format == "oci" {
            continue; // building on a loaded image once is enough (and builds are slow)
        }
        let ctx = other.context(
            "ctx2",
            &[(
                "Dockerfile",
                "FROM app:1.0\nRUN cat /app/a.txt /hi > /both\n",
            )],
        );
        let rootfs = other.build_local(&[], &ctx);
        assert_eq!(fs::read_to_string(rootfs.join("both")).unwrap(), "a\nhi\n");
    }
}

/// A built layer's blob is made when an output needs it, from its snapshot: a `--no-cache`
/// rebuild that replaces that snapshot, and `prune --all` after it, leave the older tagged
/// image whole (saved, loaded elsewhere, built on, with its own content).
#[test]
fn an_older_tag_survives_a_no_cache_rebuild_and_prune() {
    let Some(env) = Env::with_busybox() else {
        return;
    };
    if !can_build_runs() {
        return;
    }
    let ctx = env.context(
        "ctx",
        &[(
            "Dockerfile",
            "FROM busybox\nRUN head -c 16 /dev/urandom | od -An -tx1 > /r\n",
        )],
    );
    let id_of = |tag: &str| {
        let out = env.ok(&["inspect", tag]);
        let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        info[0]["Id"].as_str().unwrap().to_string()
    };
    env.ok(&["build", "-q", "-t", "app:old", s(&ctx)]);
    let old = id_of("app:old");
    env.ok(&["build", "-q", "--no-cache", "-t", "app:new", s(&ctx)]);
    assert_ne!(
        id_of("app:new"),
        old,
        "the step ran again with another result"
    );
    env.ok(&["prune", "--all"]);

    let tar = env.path("old.tar");
    env.ok(&["save", "app:old", "-o", s(&tar)]);
    let other = Env::new();
    other.ok(&["load", "-i", s(&tar)]);
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&other.ok(&["inspect", "app:old"]).stdout)
            .unwrap()[0]["Id"],
        old.as_str()
    );
    let read = |env: &Env, tag: &str| {
        let ctx = env.context(
            &format!("read-{}", tag.replace(':', "-")),
            &[("Dockerfile", &format!("FROM {tag}\nRUN cp /r /copied\n"))],
        );
        fs::read_to_string(env.build_local(&[], &ctx).join("copied")).unwrap()
    };
    let loaded = read(&other, "app:old");
    assert_eq!(
        loaded,
        read(&env, "app:old"),
        "the same layer in both stores"
    );
    assert_ne!(loaded, read(&env, "app:new"));
}

#[test]
fn layer_options_and_metadata_of_oci_output() {
    let Some(env) = Env::with_busybox() else {
        return;
    };
    let ctx = env.context("ctx", &[("Dockerfile", APP), ("a.txt", "a\n")]);
    for (opts, layer_type, manifest_type) in [
        (
            "compression=zstd,compression-level=5",
            "application/vnd.oci.image.layer.v1.tar+zstd",
            "application/vnd.oci.image.manifest.v1+json",
        ),
        (
            "compression=uncompressed",
            "application/vnd.oci.image.layer.v1.tar",
            "application/vnd.oci.image.manifest.v1+json",
        ),
        (
            "oci-mediatypes=false",
            "application/vnd.docker.image.rootfs.diff.tar.gzip",
            "application/vnd.docker.distribution.manifest.v2+json",
        ),
    ] {
        let layout = env.path(&format!("layout-{}", opts.len()));
        let meta = env.path("meta.json");
        env.ok(&[
            "build",
            "-q",
            "--metadata-file",
            s(&meta),
            "-o",
            &format!("type=oci,dest={},tar=false,{opts}", s(&layout)),
            s(&ctx),
        ]);
        let manifest = oci_manifest(&layout);
        assert_eq!(manifest["mediaType"], manifest_type, "{opts}");
        // The layers built here take the asked form; busybox's (built in this store too) also.
        let layers = manifest["layers"].as_array().unwrap();
        assert!(
            layers.iter().all(|l| l["mediaType"] == layer_type),
            "{opts}: {manifest}"
        );
        let meta = json_file(&meta);
        let index = json_file(&layout.join("index.json"));
        assert_eq!(
            meta["containerimage.digest"], index["manifests"][0]["digest"],
            "{opts}"
        );
        assert_eq!(
            meta["containerimage.descriptor"]["mediaType"],
            manifest_type
        );
        // What we wrote loads back.
        let other = Env::new();
        other.ok(&["load", "-i", s(&layout)]);
    }
}

/// Two stores, the same base (loaded from one archive) and the same inputs: with
/// SOURCE_DATE_EPOCH the image digests are byte-identical; without it, layers that copy files
/// are still identical.
#[test]
fn source_date_epoch_gives_identical_digests_across_stores() {
    let Some(first) = Env::with_busybox() else {
        return;
    };
    let base = first.path("base.tar");
    first.ok(&["save", "busybox:latest", "-o", s(&base)]);
    let second = Env::new();
    second.ok(&["load", "-i", s(&base)]);
    let ctx = first.context("ctx", &[("Dockerfile", APP), ("a.txt", "a\n")]);

    let build = |env: &Env, extra: &[&str]| -> (serde_json::Value, serde_json::Value) {
        let meta = env.path("meta.json");
        let layout = env.path("layout");
        let _ = fs::remove_dir_all(&layout);
        let mut args = vec![
            "build",
            "-q",
            "--no-cache",
            "-t",
            "app:1",
            "--metadata-file",
            s(&meta),
            "-o",
            "type=image",
        ];
        let dest = format!("type=oci,dest={},tar=false", s(&layout));
        args.extend_from_slice(&["-o", &dest]);
        args.extend_from_slice(extra);
        args.push(s(&ctx));
        env.ok(&args);
        (json_file(&meta), oci_manifest(&layout))
    };
    let (m1, o1) = build(&first, &["--build-arg", "SOURCE_DATE_EPOCH=1700000000"]);
    // The second build takes it from the environment, a few seconds later.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let meta = second.path("meta.json");
    let layout = second.path("layout");
    let out = second
        .cmd()
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .args([
            "build",
            "-q",
            "-t",
            "app:1",
            "--metadata-file",
            s(&meta),
            "-o",
            "type=image",
            "-o",
            &format!("type=oci,dest={},tar=false", s(&layout)),
            s(&ctx),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let (m2, o2) = (json_file(&meta), oci_manifest(&layout));
    assert_eq!(o1, o2);
    assert_eq!(m1, m2);
    let inspect = second.ok(&["inspect", "app:1"]);
    let info: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap();
    assert_eq!(info[0]["Created"], "2023-11-14T22:13:20Z");

    // Without SOURCE_DATE_EPOCH, layers of file copies are still the same in both stores
    // (only `created` differs). Directories the copy creates or changes get the time of the
    // build (as with BuildKit), so this copies to existing directories only.
    let files = first.context(
        "files",
        &[
            ("Dockerfile", "FROM scratch\nCOPY a.txt /a.txt\nCOPY d/ /\n"),
            ("a.txt", "a\n"),
            ("d/b.txt", "b\n"),
        ],
    );
    let layers = |env: &Env| {
        let _ = fs::remove_dir_all(env.path("files-layout"));
        let layout = env.build_oci("files-layout", &[], &files);
        oci_manifest(&layout)["layers"].clone()
    };
    let l1 = layers(&first);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_eq!(l1, layers(&second));
}

#[test]
fn push_then_pull_through_a_registry() {
    let Some((registry, env)) = support::registry_and_busybox() else {
        return;
    };
    let config = format!("[registry.\"{}\"]\nhttp = true\n", registry.addr);
    fs::write(&env.config, &config).unwrap();
    let ctx = env.context("ctx", &[("Dockerfile", APP), ("a.txt", "a\n")]);
    let name = format!("{}/team/app:1", registry.addr);
    let meta = env.path("meta.json");
    env.ok(&[
        "build",
        "-q",
        "-t",
        &name,
        "--push",
        "--metadata-file",
        s(&meta),
        s(&ctx),
    ]);
    let meta = json_file(&meta);
    let (raw, manifest) = pushed_manifest(&name);
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    let digest = format!("sha256:{}", support_sha256(&raw));
    assert_eq!(meta["containerimage.digest"], digest.as_str());
    assert!(manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .all(|l| l["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip"));

    // Docker media types on request, via an image output.
    let docker_name = format!("{}/team/app:docker", registry.addr);
    env.ok(&[
        "build",
        "-q",
        "-o",
        &format!("type=image,name={docker_name},push=true,oci-mediatypes=false"),
        s(&ctx),
    ]);
    let (_, manifest) = pushed_manifest(&docker_name);
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );

    // `rbuild push` of a retag, and `rbuild pull` into a fresh store that builds on it.
    let retag = format!("{}/other/app:2", registry.addr);
    env.ok(&["tag", &name, &retag]);
    env.ok(&["push", &retag]);
    let other = Env::new();
    fs::write(&other.config, &config).unwrap();
    let out = stdout(&other.ok(&["pull", &retag]));
    assert!(out.contains("Digest: sha256:"), "{out}");
    let ctx2 = other.context(
        "ctx2",
        &[(
            "Dockerfile",
            &format!("FROM {retag}\nRUN cat /hi /app/a.txt > /both\n"),
        )],
    );
    let rootfs = other.build_local(&[], &ctx2);
    assert_eq!(fs::read_to_string(rootfs.join("both")).unwrap(), "hi\na\n");
}

/// The manifest of image `name` in a plain-HTTP registry, as skopeo reads it: its bytes, and
/// parsed.
fn pushed_manifest(name: &str) -> (Vec<u8>, serde_json::Value) {
    let raw = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{name}"))
        .output()
        .unwrap();
    assert!(raw.status.success(), "skopeo: {}", stderr(&raw));
    let manifest = serde_json::from_slice(&raw.stdout).unwrap();
    (raw.stdout, manifest)
}

fn support_sha256(bytes: &[u8]) -> String {
    let out = Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().expect("stdin").write_all(bytes)?;
            c.wait_with_output()
        })
        .expect("sha256sum");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_string()
}

#[test]
fn real_tools_read_our_outputs() {
    if !can_build_runs()
        || require_tool("skopeo").is_none()
        || require_tool("umoci").is_none()
        || require_tool("podman").is_none()
    {
        return;
    }
    let env = Env::new();
    env.busybox();
    let ctx = env.context("ctx", &[("Dockerfile", APP), ("a.txt", "a\n")]);
    let oci = env.path("app-oci.tar");
    let docker = env.path("app-docker.tar");
    env.ok(&[
        "build",
        "-q",
        "-t",
        "app:1.0",
        "-o",
        &format!("type=oci,dest={}", s(&oci)),
        "-o",
        &format!("type=docker,dest={}", s(&docker)),
        s(&ctx),
    ]);

    // skopeo copies the OCI archive to a layout directory; umoci unpacks that.
    let layout = env.path("copied");
    let copy = Command::new("skopeo")
        .arg("copy")
        .arg(format!("oci-archive:{}", s(&oci)))
        .arg(format!("oci:{}:app", s(&layout)))
        .output()
        .unwrap();
    assert!(copy.status.success(), "skopeo copy: {}", stderr(&copy));
    let bundle = env.umoci_unpack(&layout, "app");
    assert_eq!(
        fs::read_to_string(bundle.join("rootfs/hi")).unwrap(),
        "hi\n"
    );
    assert_eq!(
        fs::read_to_string(bundle.join("rootfs/app/a.txt")).unwrap(),
        "a\n"
    );

    // podman loads the docker archive, sees our config, and runs it.
    let pod = env.path("podman");
    let load = podman(&pod)
        .arg("load")
        .arg("-i")
        .arg(&docker)
        .output()
        .unwrap();
    assert!(load.status.success(), "podman load: {}", stderr(&load));
    let inspect = podman(&pod)
        .args(["image", "inspect", "localhost/app:1.0"])
        .output()
        .unwrap();
    let inspect = if inspect.status.success() {
        inspect
    } else {
        podman(&pod)
            .args(["image", "inspect", "docker.io/library/app:1.0"])
            .output()
            .unwrap()
    };
    assert!(
        inspect.status.success(),
        "podman inspect: {}",
        stderr(&inspect)
    );
    let info: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap();
    assert_eq!(info[0]["Config"]["Cmd"], serde_json::json!(["cat", "/hi"]));
    let id = info[0]["Id"].as_str().expect("podman image id");
    let run = podman(&pod)
        .args(["run", "--rm", "--runtime", "runc", "--network", "none", id])
        .output()
        .unwrap();
    assert!(run.status.success(), "podman run: {}", stderr(&run));
    assert_eq!(stdout(&run), "hi\n");
}
