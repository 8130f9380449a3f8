//! The solver's user-facing parts through the binary: `--explain-cache`, step logs on disk, a
//! failure cancelling other stages, `prune` filters, `du`, and automatic GC.

mod support;

use std::path::{Path, PathBuf};

use support::{s, stderr, stdout, step_cached, Env};

/// Every step log file under the store.
fn log_files(env: &Env) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(builds) = std::fs::read_dir(env.store.join("logs")) else {
        return out;
    };
    for b in builds.flatten() {
        for f in std::fs::read_dir(b.path()).unwrap().flatten() {
            out.push(f.path());
        }
    }
    out
}

#[test]
fn explain_cache_names_the_changed_arg_and_file_and_full_logs_are_kept() {
    let Some(env) = Env::with_busybox() else {
        return;
    };
    let ctx = env.context(
        "ctx",
        &[
            (
                "Dockerfile",
                "FROM busybox\nARG V=1\nCOPY a.txt /a.txt\nRUN echo v=$V; i=0; while [ $i -lt 300 ]; do i=$((i+1)); echo line $i; done\n",
            ),
            ("a.txt", "one"),
        ],
    );
    env.ok(&["build", "--progress=plain", s(&ctx)]);
    // Nothing clipped: all 300 lines are in the RUN's log file.
    let run_log = log_files(&env)
        .into_iter()
        .find(|p| std::fs::read_to_string(p).is_ok_and(|t| t.contains("v=1")))
        .expect("a log file of the RUN");
    let text = std::fs::read_to_string(&run_log).unwrap();
    assert!(
        text.contains("line 1\n") && text.ends_with("line 300\n"),
        "{text}"
    );

    let explained = || {
        stderr(&env.ok(&[
            "build",
            "--progress=plain",
            "--explain-cache",
            "--build-arg",
            "V=2",
            s(&ctx),
        ]))
    };
    let err = explained();
    assert!(
        err.contains("CACHE MISS: variable V changed: 1 -> 2"),
        "{err}"
    );

    std::fs::write(ctx.join("a.txt"), "two").unwrap();
    let err = explained();
    assert!(
        err.contains("CACHE MISS: file a.txt changed: file"),
        "{err}"
    );
    assert!(
        err.contains("CACHE MISS: the step it builds on changed: [2/3] COPY a.txt /a.txt"),
        "{err}"
    );
}

#[test]
fn a_failure_cancels_other_stages_and_prints_the_log_path() {
    let Some(env) = Env::with_busybox() else {
        return;
    };
    let ctx = env.context(
        "ctx",
        &[(
            "Dockerfile",
            "FROM busybox AS slow\nRUN sleep 120\n\
             FROM busybox AS bad\nRUN sleep 1; echo oops; exit 3\n\
             FROM busybox\nCOPY --from=slow /etc/passwd /a\nCOPY --from=bad /etc/passwd /b\n",
        )],
    );
    let out = env.run(&["build", "--progress=plain", s(&ctx)]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("CANCELED"),
        "the sleeping RUN is cancelled:\n{err}"
    );
    let path = err
        .lines()
        .find_map(|l| l.strip_prefix("full log of the step: "))
        .unwrap_or_else(|| panic!("no log path in:\n{err}"));
    assert_eq!(std::fs::read_to_string(path).unwrap(), "oops\n");
    // Nothing half-written is left in the store's staging area.
    let staging: Vec<_> = std::fs::read_dir(env.store.join("tmp"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(staging.is_empty(), "{staging:?}");
}

#[test]
fn prune_filters_du_and_automatic_gc() {
    let Some(env) = Env::with_busybox() else {
        return;
    };
    let ctx = env.context(
        "ctx",
        &[(
            "Dockerfile",
            "FROM busybox\nRUN dd if=/dev/zero of=/big bs=1024 count=300 2>/dev/null\n",
        )],
    );
    env.ok(&["build", "--progress=plain", s(&ctx)]);
    let du = stdout(&env.ok(&["du"]));
    assert!(
        du.contains("snapshots (built)") && du.contains("logs"),
        "{du}"
    );
    assert!(du.contains("[2/2] RUN dd if=/dev/zero"), "{du}");

    let usage = env.run(&["prune", "--filter", "type=regular"]);
    assert_eq!(usage.status.code(), Some(2), "{}", stderr(&usage));

    // Everything was used just now: an `until` filter keeps it all.
    let kept = stdout(&env.ok(&["prune", "--filter", "until=1h"]));
    assert!(kept.contains("0 snapshots, 0 cache records"), "{kept}");
    let again = stderr(&env.ok(&["build", "--progress=plain", s(&ctx)]));
    assert!(step_cached(&again, "RUN dd"), "{again}");

    let pruned = stdout(&env.ok(&["prune", "--keep-storage", "0"]));
    assert!(!pruned.contains(" 0 cache records"), "{pruned}");
    // The tagged busybox image is not build cache: it is still there.
    assert!(stdout(&env.ok(&["images"])).contains("busybox"));

    // Automatic GC after a build, past the configured size.
    std::fs::write(&env.config, "[gc]\nkeep-storage = \"1KB\"\n").unwrap();
    let out = env.ok(&["build", "--progress=plain", s(&ctx)]);
    let err = stderr(&out);
    assert!(err.contains("automatic garbage collection"), "{err}");
    let rebuilt = stderr(&env.ok(&["build", "--progress=plain", s(&ctx)]));
    assert!(!step_cached(&rebuilt, "RUN dd"), "{rebuilt}");
}

/// The root filesystem of `ctx` built with `args`, exported to `out-<name>`: the file `/out`.
fn built_out(env: &Env, ctx: &Path, name: &str, args: &[&str]) -> Vec<u8> {
    let dest = env.path(&format!("out-{name}"));
    let output = format!("type=local,dest={}", s(&dest));
    let mut all = vec!["build", "-q", "-o", &output];
    all.extend_from_slice(args);
    all.push(s(ctx));
    env.ok(&all);
    std::fs::read(dest.join("out")).expect("/out")
}

#[test]
fn a_step_run_again_puts_its_new_result_in_the_image() {
    let Some(env) = Env::with_busybox() else {
        return;
    };
    let ctx = env.context(
        "ctx",
        &[(
            "Dockerfile",
            "FROM busybox AS gen\n\
             RUN --mount=type=cache,target=/c head -c 16 /dev/urandom > /out\n\
             FROM gen\n\
             RUN true\n",
        )],
    );
    let first = built_out(&env, &ctx, "first", &[]);
    assert_eq!(built_out(&env, &ctx, "cached", &[]), first, "a cache hit");
    // The step runs again, and the image has what it wrote this time.
    let again = built_out(&env, &ctx, "no-cache", &["--no-cache"]);
    assert_ne!(again, first, "--no-cache must use the fresh result");
    // From now on the key gives the fresh result.
    assert_eq!(built_out(&env, &ctx, "after", &[]), again);
    let filtered = built_out(&env, &ctx, "filter", &["--no-cache-filter", "gen"]);
    assert_ne!(
        filtered, again,
        "--no-cache-filter must use the fresh result"
    );
    // A tagged image keeps its own layers when its step is run again later.
    env.ok(&["build", "-q", "-t", "kept:1", s(&ctx)]);
    let tagged = env.path("tagged");
    let output = format!("type=local,dest={}", s(&tagged));
    built_out(&env, &ctx, "rerun", &["--no-cache"]);
    let ctx2 = env.context("ctx2", &[("Dockerfile", "FROM kept:1\n")]);
    env.ok(&["build", "-q", "-o", &output, s(&ctx2)]);
    assert_eq!(std::fs::read(tagged.join("out")).expect("/out"), filtered);
}
