//! Store commands as people script them (issue 16, item 5): `images -q` and `--format`,
//! `inspect --format`, `RepoDigests` after a push and a pull, `history --no-trunc`,
//! `prune -f`.

mod support;

use std::fs;

use support::{raw_json, s, stderr, stdout, Env};

/// The image id of `name`, from `inspect`.
fn image_id(env: &Env, name: &str) -> String {
    stdout(&env.ok(&["inspect", "--format", "{{.Id}}", name]))
        .trim()
        .to_string()
}

#[test]
fn images_quiet_and_format() {
    let Some(env) = Env::with_busybox() else {
        return;
    };
    env.ok(&["tag", "busybox", "copy:1"]);
    let id = image_id(&env, "busybox");
    assert!(id.starts_with("sha256:") && id.len() == 71, "{id}");

    // -q: one short id per name, as docker; --no-trunc: full ids.
    let out = stdout(&env.ok(&["images", "-q"]));
    assert_eq!(out, format!("{0}\n{0}\n", &id[7..19]));
    let out = stdout(&env.ok(&["images", "--quiet", "--no-trunc"]));
    assert_eq!(out, format!("{id}\n{id}\n"));

    // A template: fields and literal text, one line per name.
    let out = stdout(&env.ok(&["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"]));
    assert_eq!(out, format!("busybox:latest {0}\ncopy:1 {0}\n", &id[7..19]));
    let out = stdout(&env.ok(&[
        "images",
        "--format",
        "{{.Repository}}\\t{{.Size}}\\t{{.CreatedSince}}\\t{{.CreatedAt}}\\t{{.Digest}}",
    ]));
    let first: Vec<&str> = out.lines().next().unwrap().split('\t').collect();
    assert_eq!(first[0], "busybox", "{out}");
    assert!(
        first[1].ends_with("MB") || first[1].ends_with("kB"),
        "{out}"
    );
    assert!(first[2].ends_with(" ago"), "{out}");
    assert!(first[3].ends_with(" +0000 UTC"), "{out}");
    assert_eq!(first[4], "<none>", "{out}");

    // table: a header row, columns aligned.
    let out = stdout(&env.ok(&["images", "--format", "table {{.Repository}}\\t{{.Tag}}"]));
    assert_eq!(
        out,
        "REPOSITORY   TAG\nbusybox      latest\ncopy         1\n"
    );

    // An empty format, or `table` alone, is the default listing (compared without the CREATED
    // column's wording, which moves on as the seconds pass: "Less than a second ago" becomes
    // "1 second ago" between two listings).
    let same = |out: String| -> String {
        let mut out = out.replace("Less than a second ago", "recently");
        for n in (1..120).rev() {
            out = out.replace(&format!("{n} seconds ago"), "recently");
        }
        out = out.replace("1 second ago", "recently");
        out.lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let default = same(stdout(&env.ok(&["images"])));
    assert_eq!(same(stdout(&env.ok(&["images", "--format", ""]))), default);
    assert_eq!(
        same(stdout(&env.ok(&["images", "--format", "table"]))),
        default
    );

    // json: one object per line with docker's fields.
    let out = stdout(&env.ok(&["images", "--format", "json"]));
    let rows: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON object per line"))
        .collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1]["Repository"], "copy");
    assert_eq!(rows[1]["Tag"], "1");
    assert_eq!(rows[1]["ID"], &id[7..19]);
    for field in ["Digest", "CreatedSince", "CreatedAt", "Size"] {
        assert!(rows[0][field].is_string(), "{field}: {out}");
    }

    // An unknown field is a usage error naming it and the known ones.
    let out = env.run(&["images", "--format", "{{.Repo}}"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("unknown field .Repo"), "{err}");
    assert!(err.contains(".Repository, .Tag"), "{err}");
    let out = env.run(&["images", "-q", "--format", "{{.ID}}"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

#[test]
fn inspect_format_history_no_trunc_and_prune_force() {
    let Some(env) = Env::with_busybox() else {
        return;
    };
    env.ok(&["tag", "busybox", "copy:1"]);
    let id = image_id(&env, "busybox");
    let line = |format: &str| stdout(&env.ok(&["inspect", "-f", format, "busybox"]));
    assert_eq!(
        line("{{.Os}}/{{.Architecture}}"),
        format!("linux/{}\n", arch())
    );
    assert_eq!(line("{{.RepoTags}}"), "[busybox:latest copy:1]\n");
    assert_eq!(line("{{index .RepoTags 1}}"), "copy:1\n");
    assert!(line("{{.Config.Env}}").starts_with("[PATH=/usr/sbin"));
    assert_eq!(line("{{json .RepoDigests}}"), "[]\n");
    let config: serde_json::Value = serde_json::from_str(&line("{{json .Config}}")).unwrap();
    assert_eq!(config["Cmd"], serde_json::json!(["sh"]));
    // One line per image; `json` is the array of today.
    let out = stdout(&env.ok(&["inspect", "--format", "{{.Id}}", "busybox", "copy:1"]));
    assert_eq!(out, format!("{id}\n{id}\n"));
    let json = stdout(&env.ok(&["inspect", "--format", "json", "busybox"]));
    assert_eq!(json, stdout(&env.ok(&["inspect", "busybox"])));
    // No repo digest yet: index fails as Go's does (exit 1); an unknown field is usage.
    let out = env.run(&["inspect", "-f", "{{index .RepoDigests 0}}", "busybox"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("index out of range: 0"),
        "{}",
        stderr(&out)
    );
    let out = env.run(&["inspect", "-f", "{{.Bogus}}", "busybox"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("unknown field .Bogus"),
        "{}",
        stderr(&out)
    );

    // history: truncated ids and commands by default, full ones with --no-trunc.
    let out = stdout(&env.ok(&["history", "busybox"]));
    assert!(out.lines().nth(1).unwrap().starts_with(&id[7..19]), "{out}");
    assert!(!out.contains("/etc/group"), "{out}");
    assert!(out.contains('…'), "{out}");
    let out = stdout(&env.ok(&["history", "--no-trunc", "busybox"]));
    assert!(out.lines().nth(1).unwrap().starts_with(&id), "{out}");
    assert!(out.contains("> /etc/group"), "{out}");
    assert!(!out.contains('…'), "{out}");

    // prune -f / --force: accepted (rbuild never prompts), with --all too.
    let help = stdout(&env.ok(&["prune", "--help"]));
    assert!(help.contains("never prompts"), "{help}");
    env.ok(&["prune", "-f"]);
    env.ok(&["prune", "--all", "-f"]);
    env.ok(&["prune", "--force", "--all"]);
    assert_eq!(image_id(&env, "copy:1"), id);
}

/// The host's architecture as OCI names it.
fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

#[test]
fn repo_digests_after_push_and_pull() {
    let Some((registry, env)) = support::registry_and_busybox() else {
        return;
    };
    let config = format!("[registry.\"{}\"]\nhttp = true\n", registry.addr);
    fs::write(&env.config, &config).unwrap();
    let name = format!("{}/team/bb:1", registry.addr);
    env.ok(&["tag", "busybox", &name]);
    env.ok(&["push", &name]);

    // The digest of the manifest as pushed (compressed layers), as skopeo reads it.
    let out = std::process::Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", "--format", "{{.Digest}}"])
        .arg(format!("docker://{name}"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let pushed = stdout(&out).trim().to_string();
    assert!(pushed.starts_with("sha256:"), "{pushed}");
    assert_eq!(raw_json(&name, &[])["schemaVersion"], 2);
    let repo_digest = format!("{}/team/bb@{pushed}", registry.addr);
    let digests = |env: &Env, reference: &str| {
        stdout(&env.ok(&["inspect", "-f", "{{json .RepoDigests}}", reference]))
    };
    assert_eq!(digests(&env, &name), format!("[\"{repo_digest}\"]\n"));
    // The stored image is not the pushed one: the stored manifest keeps its own digest.
    let stored = stdout(&env.ok(&["inspect", "-f", "{{.ManifestDigest}}", &name]));
    assert_ne!(stored.trim(), pushed);
    // Every name of the image shows it (docker: per image); `images` shows it for its repo.
    assert_eq!(digests(&env, "busybox"), format!("[\"{repo_digest}\"]\n"));
    let rows = stdout(&env.ok(&["images", "--format", "{{.Repository}} {{.Digest}}"]));
    assert!(
        rows.contains(&format!("{}/team/bb {pushed}\n", registry.addr)),
        "{rows}"
    );
    assert!(rows.contains("busybox <none>\n"), "{rows}");
    // Kept while the image is: a prune --all leaves it.
    env.ok(&["prune", "--all", "-f"]);
    assert_eq!(digests(&env, &name), format!("[\"{repo_digest}\"]\n"));

    // A pull into a fresh store records the digest the reference resolved to.
    let other = Env::new();
    fs::write(&other.config, &config).unwrap();
    other.ok(&["pull", "-q", &name]);
    assert_eq!(digests(&other, &name), format!("[\"{repo_digest}\"]\n"));
    assert_eq!(
        stdout(&other.ok(&["inspect", "-f", "{{index .RepoDigests 0}}", &name])),
        format!("{repo_digest}\n")
    );
}

#[test]
fn a_pulled_multi_platform_image_shows_its_index_digest() {
    let Some(registry) = support::Registry::with_busybox_multi() else {
        return;
    };
    let env = Env::new();
    let config = format!("[registry.\"{}\"]\nhttp = true\n", registry.addr);
    fs::write(&env.config, &config).unwrap();
    let name = format!("{}/library/busybox-multi:latest", registry.addr);
    env.ok(&["pull", "-q", &name]);
    // Docker shows the digest the name points to in the registry: the index's.
    let raw = std::process::Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{name}"))
        .output()
        .unwrap();
    assert!(raw.status.success(), "{}", stderr(&raw));
    let index: serde_json::Value = serde_json::from_slice(&raw.stdout).unwrap();
    assert!(index["manifests"].is_array(), "{index}");
    let digest = format!("sha256:{}", sha256_hex(&raw.stdout));
    let out = stdout(&env.ok(&["inspect", "-f", "{{json .RepoDigests}}", &name]));
    assert_eq!(
        out,
        format!("[\"{}/library/busybox-multi@{digest}\"]\n", registry.addr)
    );
}

/// The SHA-256 of `bytes`, in hex (by `sha256sum`).
fn sha256_hex(bytes: &[u8]) -> String {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("sha256sum");
    child.stdin.take().unwrap().write_all(bytes).unwrap();
    let out = child.wait_with_output().unwrap();
    stdout(&out).split(' ').next().unwrap().to_string()
}

#[test]
fn repo_digests_after_build_push() {
    let Some((registry, env)) = support::registry_and_busybox() else {
        return;
    };
    let ctx = env.context("ctx", &[("Dockerfile", "FROM busybox\nENV PUSHED=1\n")]);
    let name = format!("{}/team/built:1", registry.addr);
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
    let pushed = support::json_file(&meta)["containerimage.digest"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        stdout(&env.ok(&["inspect", "-f", "{{json .RepoDigests}}", &name])),
        format!("[\"{}/team/built@{pushed}\"]\n", registry.addr)
    );
}
