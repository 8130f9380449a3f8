//! Two store roots as two CI runners sharing a base: the busybox fixture as the `busybox`
//! build context of both (`--build-context busybox=oci-layout://…`), so neither pulls it.
//! The cache tests (`cache_exchange`, `cache_registry`) build with these.

use std::path::{Path, PathBuf};

use rbuild_test_support::images::busybox_layout;

use super::{can_build_runs, json_file, s, stderr, step_cached, Env};

/// A Dockerfile of a base and four steps, two reading `a.txt` and two `c.txt`.
pub const DOCKERFILE: &str = "FROM busybox\nCOPY a.txt /a.txt\nRUN cat /a.txt > /b.txt\n\
                              COPY c.txt /c.txt\nRUN cat /c.txt > /d.txt\n";

/// Runners A and B, and the base both build on.
pub struct Fleet {
    pub a: Env,
    pub b: Env,
    pub base: String,
}

impl Fleet {
    /// `None` (said loudly) when RUN cannot work here.
    pub fn new() -> Option<Fleet> {
        if !can_build_runs() {
            return None;
        }
        let layout = busybox_layout()?;
        Some(Fleet {
            a: Env::new(),
            b: Env::new(),
            base: format!("busybox=oci-layout://{}", s(&layout)),
        })
    }

    /// `rbuild build --progress=plain` in `env` of `ctx` with `extra` flags; returns stderr
    /// and the image id and manifest digest it reports.
    pub fn build(&self, env: &Env, ctx: &Path, extra: &[&str]) -> (String, String) {
        let meta = env.path("meta.json");
        let mut args = vec![
            "build",
            "--progress=plain",
            "--build-context",
            &self.base,
            "--build-arg",
            "SOURCE_DATE_EPOCH=1700000000",
            "--metadata-file",
            s(&meta),
        ];
        args.extend_from_slice(extra);
        args.push(s(ctx));
        let out = env.ok(&args);
        let meta = json_file(&meta);
        let ids = format!(
            "{} {}",
            meta["containerimage.config.digest"], meta["containerimage.digest"]
        );
        (stderr(&out), ids)
    }
}

/// A context of `dockerfile` with `a.txt` and `c.txt`.
pub fn context(env: &Env, dockerfile: &str) -> PathBuf {
    env.context(
        "ctx",
        &[("Dockerfile", dockerfile), ("a.txt", "a"), ("c.txt", "c")],
    )
}

/// Asserts that each of `steps` (a needle of its progress line) is CACHED in `progress`, or
/// when not `cached`, that none is.
#[track_caller]
pub fn assert_cached(progress: &str, steps: &[&str], cached: bool) {
    for step in steps {
        assert_eq!(
            step_cached(progress, step),
            cached,
            "{step}: cached should be {cached}:\n{progress}"
        );
    }
}
