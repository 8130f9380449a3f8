//! Registry faults through the CLI: a fault-injecting proxy (`rbuild_test_support::FaultProxy`)
//! in front of the real `docker-registry` on loopback drops a connection mid-blob and
//! mid-upload, answers `429` with `Retry-After: 1`, and `503` twice; `rbuild pull` and
//! `rbuild push` of the busybox image survive each, and say so in a notice. A permanent `500`
//! fails after the bounded attempts with an error naming registry, repository, status and the
//! registry's message. `HTTP_PROXY` and `NO_PROXY` are honoured for registry traffic.

mod support;

use std::process::Output;

use rbuild_test_support::{Fault, FaultProxy};
use support::*;

/// The registry with busybox, a proxy in front of it, and a store of the test's own.
fn world() -> Option<(Registry, FaultProxy, Env)> {
    let registry = Registry::with_busybox()?;
    let proxy = FaultProxy::start(&registry.addr);
    Some((registry, proxy, Env::new()))
}

fn status(code: u16, retry_after: Option<&str>) -> Fault {
    Fault::Status {
        code,
        retry_after: retry_after.map(str::to_string),
    }
}

fn ok(env: &Env, args: &[&str]) -> Output {
    let out = env
        .cmd()
        .args(args)
        .env_remove("HTTP_PROXY")
        .env_remove("http_proxy")
        .output()
        .expect("run rbuild");
    assert!(
        out.status.success(),
        "rbuild {args:?} failed:\n{}",
        stderr(&out)
    );
    out
}

/// Pulls busybox from `from` into the store and tags it `<to>/rbuild-test/<repo>:1`, the
/// name it returns.
fn pull_and_tag(env: &Env, from: &str, to: &str, repo: &str) -> String {
    let source = format!("{from}/library/busybox:latest");
    let name = format!("{to}/rbuild-test/{repo}:1");
    ok(env, &["pull", "-q", &source]);
    ok(env, &["tag", &source, &name]);
    name
}

/// Each of `notices` is on a line of stderr that names `repo`.
fn assert_notices(out: &Output, repo: &str, notices: &[&str]) {
    let err = stderr(out);
    for notice in notices {
        assert!(
            err.lines().any(|l| l.contains(repo) && l.contains(notice)),
            "no notice {notice:?} about {repo}:\n{err}"
        );
    }
}

#[test]
fn pull_survives_a_cut_blob_a_rate_limit_and_unavailability() {
    let Some((_registry, proxy, env)) = world() else {
        return;
    };
    let name = format!("{}/library/busybox:latest", proxy.addr);
    proxy.inject("GET", "/manifests/latest", status(429, Some("1")), 1);
    proxy.inject("GET", "/manifests/", status(503, None), 2);
    proxy.inject("GET", "/blobs/sha256:", Fault::CutBody, 1);
    let started = std::time::Instant::now();
    let out = ok(&env, &["pull", &name]);
    assert_eq!(proxy.faults_applied(), 4, "{:#?}", proxy.seen());
    assert!(
        started.elapsed().as_secs() >= 1,
        "Retry-After: 1 was not waited for"
    );
    assert_notices(
        &out,
        &format!("{}/library/busybox", proxy.addr),
        &[
            "429 Too Many Requests; retrying in 1.0s (attempt 2 of 5)",
            "503 Service Unavailable; retrying in",
            "connection dropped; retrying in",
        ],
    );
    // The blob cut short was asked for again.
    let blob_gets = proxy
        .seen()
        .iter()
        .filter(|s| s.method == "GET" && s.path.contains("/blobs/"))
        .count();
    assert!(blob_gets >= 2, "{:#?}", proxy.seen());
    ok(&env, &["inspect", &name]);
}

#[test]
fn push_survives_a_dropped_upload_a_rate_limit_and_unavailability() {
    let Some((registry, proxy, env)) = world() else {
        return;
    };
    let name = pull_and_tag(&env, &registry.addr, &proxy.addr, "faulty");
    proxy.inject("POST", "/blobs/uploads/", status(429, Some("1")), 1);
    proxy.inject("PATCH", "/blobs/uploads/", Fault::Drop, 1);
    proxy.inject("PUT", "/manifests/1", status(503, None), 2);
    let out = ok(&env, &["push", &name]);
    assert_eq!(proxy.faults_applied(), 4, "{:#?}", proxy.seen());
    assert_notices(
        &out,
        &format!("{}/rbuild-test/faulty: ", proxy.addr),
        &[
            "429 Too Many Requests; retrying in 1.0s",
            "connection dropped; retrying in",
            "manifest 1: 503 Service Unavailable; retrying in",
        ],
    );
    // The dropped upload started a new session; the blobs went up in chunks.
    let seen = proxy.seen();
    assert!(seen
        .iter()
        .any(|s| s.method == "PATCH" && s.fault.is_none()));
    // What was pushed pulls back, straight from the registry, into another store.
    let back = Env::new();
    ok(
        &back,
        &[
            "pull",
            "-q",
            &format!("{}/rbuild-test/faulty:1", registry.addr),
        ],
    );
}

#[test]
fn a_permanent_server_error_fails_after_the_bounded_attempts() {
    let Some((_registry, proxy, env)) = world() else {
        return;
    };
    proxy.inject("", "/manifests/", status(500, None), usize::MAX);
    let name = format!("{}/library/busybox:latest", proxy.addr);
    let out = env.run(&["pull", &name]);
    assert!(!out.status.success());
    let err = stderr(&out);
    let tried = proxy.seen().len();
    assert_eq!(tried, 5, "{:#?}", proxy.seen());
    for part in [
        format!("{}/library/busybox: manifest latest", proxy.addr),
        "500 Internal Server Error: injected 500 (FAULT)".to_string(),
        "gave up after 5 attempts".to_string(),
    ] {
        assert!(err.contains(&part), "no {part:?} in:\n{err}");
    }
}

#[test]
fn registry_traffic_goes_through_http_proxy_unless_no_proxy_names_the_host() {
    let Some((registry, proxy, env)) = world() else {
        return;
    };
    let name = format!("{}/library/busybox:latest", registry.addr);
    let through = |no_proxy: &str| {
        let out = env
            .cmd()
            .args(["pull", "-q", &name])
            .env("HTTP_PROXY", format!("http://{}", proxy.addr))
            .env("NO_PROXY", no_proxy)
            .env_remove("http_proxy")
            .env_remove("no_proxy")
            .output()
            .expect("run rbuild");
        assert!(out.status.success(), "{}", stderr(&out));
    };
    through("");
    let proxied = proxy.seen().len();
    assert!(
        proxy
            .seen()
            .iter()
            .any(|s| s.path.starts_with("/v2/library/busybox/manifests/")),
        "{:#?}",
        proxy.seen()
    );
    through("127.0.0.1");
    assert_eq!(proxy.seen().len(), proxied, "NO_PROXY was not honoured");
}

#[test]
fn a_push_mounts_blobs_pulled_from_another_repository_of_the_registry() {
    let Some((_registry, proxy, env)) = world() else {
        return;
    };
    let name = pull_and_tag(&env, &proxy.addr, &proxy.addr, "mounted");
    let before = proxy.seen().len();
    ok(&env, &["push", &name]);
    let pushed = &proxy.seen()[before..];
    let mounts = pushed
        .iter()
        .filter(|s| s.method == "POST" && s.path.contains("mount=sha256"))
        .count();
    assert!(mounts >= 1, "{pushed:#?}");
    assert!(
        pushed.iter().all(|s| s.method != "PATCH"),
        "a mounted blob was uploaded: {pushed:#?}"
    );
}
