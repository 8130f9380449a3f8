//! The CI examples of `examples/ci/` (GitLab CI, GitHub Actions) are valid YAML, and their
//! rbuild command lines work as written: each example's `rbuild login` and
//! `rbuild build … --push --cache-from type=registry,… --cache-to type=registry,…,mode=max`
//! run through `sh` against the test's own registry (basic auth, plain HTTP; the examples'
//! registry host replaced by it, their CI variables given test values). A second runner (a
//! store of its own) then finds every step CACHED from the registry cache, as the CI fleets
//! the examples are for.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;

use rbuild_test_support::registry::Security;
use support::*;

const USER: &str = "ci";
const PASSWORD: &str = "ci-secret";

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/ci")
        .join(name)
}

/// The example parsed by Python's yaml (`None`, said loudly, without python3-yaml):
/// `{"doc": …, "lines": [the shell lines of `script:` lists and `run:` steps]}`.
fn parse(file: &Path) -> Option<serde_json::Value> {
    let python = require_tool("python3")?;
    let has_yaml = Command::new(&python)
        .args(["-c", "import yaml"])
        .status()
        .is_ok_and(|s| s.success());
    if !require("python3's yaml module (python3-yaml)", has_yaml) {
        return None;
    }
    const SCRIPT: &str = r#"
import json, sys, yaml
doc = yaml.safe_load(open(sys.argv[1]))
lines = []
def walk(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "script" and isinstance(value, list):
                lines.extend(value)
            elif key == "run" and isinstance(value, str):
                lines.extend(l for l in value.splitlines() if l.strip())
            else:
                walk(value)
    elif isinstance(node, list):
        for item in node:
            walk(item)
walk(doc)
json.dump({"doc": doc, "lines": lines}, sys.stdout, default=str)
"#;
    let out = Command::new(&python)
        .args(["-c", SCRIPT])
        .arg(file)
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "{} is not valid YAML: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    Some(serde_json::from_slice(&out.stdout).expect("JSON from python"))
}

/// The lines that run rbuild (after an optional `sudo` or `… |`).
fn rbuild_lines(lines: &[serde_json::Value]) -> Vec<String> {
    lines
        .iter()
        .map(|l| l.as_str().expect("a shell line").trim().to_string())
        .filter(|l| {
            l.split('|')
                .map(|part| part.trim().trim_start_matches("sudo "))
                .any(|cmd| cmd.starts_with("rbuild "))
        })
        .collect()
}

/// The test's world: a registry with basic auth, a context, a PATH with the rbuild under test
/// (`sudo` is a shell function that runs its command: the tests run as whoever runs them).
struct World {
    registry: Registry,
    env: Env,
    ctx: PathBuf,
}

impl World {
    fn new() -> Option<World> {
        let registry = Registry::start_with(&Security {
            user: Some((USER.into(), PASSWORD.into())),
            ..Security::default()
        })?;
        let env = Env::new();
        std::fs::write(
            &env.config,
            format!("[registry.\"{}\"]\nhttp = true\n", registry.addr),
        )
        .expect("write config");
        let ctx = env.context(
            "project",
            &[
                (
                    "Dockerfile",
                    "FROM scratch AS build\nCOPY src /src\nFROM scratch\nCOPY --from=build /src/app /app\n",
                ),
                ("src/app", "the app\n"),
            ],
        );
        Some(World { registry, env, ctx })
    }

    /// Runs `script` with `sh` in the project directory, as a runner with the store `store`.
    fn sh(&self, script: &str, store: &Path, vars: &[(&str, String)]) -> String {
        let bin_dir = Path::new(env!("CARGO_BIN_EXE_rbuild")).parent().unwrap();
        let path = format!(
            "{}:{}",
            bin_dir.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let out = Command::new("sh")
            .args(["-euc", &format!("sudo() {{ \"$@\"; }}\n{script}")])
            .current_dir(&self.ctx)
            .env("PATH", path)
            .env("RBUILD_ROOT", store)
            .env("RBUILD_CONFIG", &self.env.config)
            .env("DOCKER_CONFIG", self.env.path("docker"))
            .envs(vars.iter().map(|(k, v)| (k, v)))
            .output()
            .expect("run sh");
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            out.status.success(),
            "the example's lines failed:\n{script}\n{err}"
        );
        err
    }
}

/// `name:tag` of the registry has the manifest (through the registry's own API, with auth).
fn pushed(registry: &Registry, repo: &str, tag: &str) -> bool {
    let auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"))
    );
    let accept = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json";
    let resp = rbuild_test_support::http::request(
        &registry.addr,
        "GET",
        &format!("/v2/{repo}/manifests/{tag}"),
        &[("Accept", accept), ("Authorization", &auth)],
        b"",
    )
    .expect("GET manifest");
    resp.status == 200
}

/// Every step of the build but the internal ones is CACHED in plain progress.
fn all_cached(progress: &str) {
    assert!(step_cached(progress, "COPY src /src"), "{progress}");
    assert!(
        step_cached(progress, "COPY --from=build /src/app /app"),
        "{progress}"
    );
}

#[test]
fn ci_example_gitlab_logs_in_builds_pushes_and_shares_the_cache() {
    let Some(parsed) = parse(&example("gitlab-ci.yml")) else {
        return;
    };
    let job = &parsed["doc"]["build-image"];
    assert_eq!(job["image"]["entrypoint"], serde_json::json!([""]));
    assert!(job["image"]["name"].as_str().unwrap().ends_with(":debug"));
    let lines = rbuild_lines(parsed["lines"].as_array().expect("lines"));
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[0].contains("rbuild login"), "{lines:?}");
    assert!(lines[1].contains("--cache-to \"type=registry,ref=$CACHE,mode=max"));
    let Some(world) = World::new() else {
        return;
    };
    // The job's variables, in order (GitLab expands the CI ones in them), then its script.
    let mut script = String::new();
    for (name, value) in job["variables"].as_object().expect("variables") {
        script.push_str(&format!("export {name}=\"{}\"\n", value.as_str().unwrap()));
    }
    script.push_str(&lines.join("\n"));
    let vars = |sha: &str| {
        vec![
            ("CI_REGISTRY", world.registry.addr.clone()),
            ("CI_REGISTRY_USER", USER.to_string()),
            ("CI_REGISTRY_PASSWORD", PASSWORD.to_string()),
            (
                "CI_REGISTRY_IMAGE",
                format!("{}/group/project", world.registry.addr),
            ),
            ("CI_COMMIT_SHORT_SHA", sha.to_string()),
            ("CI_PROJECT_DIR", s(&world.ctx).to_string()),
        ]
    };
    let first = world.sh(&script, &world.env.path("runner-a"), &vars("aaa111"));
    assert!(!step_cached(&first, "COPY src /src"), "{first}");
    assert!(pushed(&world.registry, "group/project", "aaa111"));
    assert!(pushed(&world.registry, "group/project/cache", "buildcache"));
    // The store went where the job's variables say: under the project directory.
    assert!(world.ctx.join(".rbuild").is_dir());

    // Another runner: a store of its own, the registry cache.
    std::fs::remove_dir_all(world.ctx.join(".rbuild")).expect("rm store");
    let second = world.sh(&script, &world.env.path("runner-b"), &vars("bbb222"));
    all_cached(&second);
    assert!(pushed(&world.registry, "group/project", "bbb222"));
}

#[test]
fn ci_example_github_actions_logs_in_builds_pushes_and_shares_the_cache() {
    let Some(parsed) = parse(&example("github-actions.yml")) else {
        return;
    };
    let job = &parsed["doc"]["jobs"]["build"];
    assert_eq!(parsed["doc"]["permissions"]["packages"], "write");
    let lines = rbuild_lines(parsed["lines"].as_array().expect("lines"));
    assert_eq!(lines.len(), 2, "{lines:?}");
    let Some(world) = World::new() else {
        return;
    };
    let addr = world.registry.addr.clone();
    // GitHub's expressions and registry, as the test's.
    let github = |text: &str, sha: &str| -> String {
        let mut out = text.replace("ghcr.io", &addr);
        for (expr, value) in [
            ("${{ github.sha }}", sha),
            ("${{ secrets.GITHUB_TOKEN }}", PASSWORD),
            ("${{ github.actor }}", USER),
        ] {
            out = out.replace(expr, value);
        }
        assert!(
            !out.contains("${{"),
            "an expression the test does not know: {out}"
        );
        out
    };
    let run = |sha: &str, store: &str| {
        let mut script = String::new();
        for (name, value) in job["env"].as_object().expect("env") {
            let value = github(value.as_str().unwrap(), sha);
            script.push_str(&format!("export {name}=\"{value}\"\n"));
        }
        for line in &lines {
            script.push_str(&github(line, sha));
            script.push('\n');
        }
        world.sh(&script, &world.env.path(store), &[])
    };
    let first = run("aaa111", "runner-a");
    assert!(!step_cached(&first, "COPY src /src"), "{first}");
    assert!(pushed(&world.registry, "example-org/app", "aaa111"));
    assert!(pushed(&world.registry, "example-org/app", "buildcache"));
    let second = run("bbb222", "runner-b");
    all_cached(&second);
    assert!(pushed(&world.registry, "example-org/app", "bbb222"));
}
