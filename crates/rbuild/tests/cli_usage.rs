//! The command line as a user meets it: usage errors (exit 2) that say what is wrong,
//! `--progress=tty` without a terminal, `MAINTAINER` in the image config, and the proxy build
//! args BuildKit predefines.

mod support;

use support::{can_build_runs, s, stderr, stdout, Env};

#[test]
fn a_misspelled_subcommand_is_named_not_taken_for_a_context() {
    let env = Env::new();
    let out = env.run(&["imgaes"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("unrecognized subcommand 'imgaes'"), "{err}");
    assert!(
        err.contains("a similar subcommand exists: 'images'"),
        "{err}"
    );
    assert!(!err.contains("context"), "{err}");

    // A word close to nothing, or a path, is still a missing context.
    for arg in ["zzzz", "./imgaes"] {
        let out = env.run(&[arg]);
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert!(
            stderr(&out).contains("unable to prepare context"),
            "{arg}: {}",
            stderr(&out)
        );
    }
    // An existing directory of that name is a context.
    let dir = env.context("imgaes", &[("Dockerfile", "FROM scratch\n")]);
    let out = env
        .cmd()
        .current_dir(dir.parent().expect("parent"))
        .args(["imgaes", "--no-such-flag"])
        .output()
        .expect("run rbuild");
    assert!(
        stderr(&out).contains("--no-such-flag"),
        "parsed as a build: {}",
        stderr(&out)
    );
}

#[test]
fn a_build_arg_without_a_name_is_a_usage_error() {
    let env = Env::new();
    let ctx = env.context("ctx", &[("Dockerfile", "FROM scratch\n")]);
    for bad in ["=x", "="] {
        let out = env.run(&["build", "--build-arg", bad, s(&ctx)]);
        assert_eq!(out.status.code(), Some(2), "{bad}: {}", stderr(&out));
        assert!(stderr(&out).contains("--build-arg"), "{}", stderr(&out));
    }
    let out = env.run(&["build", "--label", "=x", s(&ctx)]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

#[test]
fn progress_tty_without_a_terminal_is_plain() {
    if !can_build_runs() {
        return;
    }
    let env = Env::new();
    let ctx = env.context(
        "ctx",
        &[("Dockerfile", "FROM scratch\nCOPY a /a\n"), ("a", "a")],
    );
    // Standard error is a pipe here: the live view would draw nothing.
    let err = stderr(&env.ok(&["build", "--progress=tty", s(&ctx)]));
    assert!(err.contains("[internal] load build definition"), "{err}");
    assert!(err.contains("COPY a /a"), "{err}");
    assert!(err.contains("DONE"), "{err}");
}

#[test]
fn maintainer_is_the_author() {
    if !can_build_runs() {
        return;
    }
    let env = Env::new();
    let ctx = env.context(
        "ctx",
        &[
            (
                "Dockerfile",
                "FROM scratch\nMAINTAINER Jane Doe <jane@example.com>\nCOPY a /a\n",
            ),
            ("a", "a"),
        ],
    );
    env.ok(&["build", "-q", "-t", "authored:1", s(&ctx)]);
    let info: serde_json::Value =
        serde_json::from_slice(&env.ok(&["inspect", "authored:1"]).stdout).expect("JSON");
    assert_eq!(info[0]["Author"], "Jane Doe <jane@example.com>");
    let history = stdout(&env.ok(&["history", "--no-trunc", "authored:1"]));
    assert!(
        history.contains("MAINTAINER Jane Doe <jane@example.com>"),
        "{history}"
    );
}

#[test]
fn proxy_build_args_reach_run_but_not_the_image_or_the_cache_key() {
    let Some(env) = Env::with_busybox() else {
        return;
    };
    let ctx = env.context(
        "ctx",
        &[(
            "Dockerfile",
            "FROM busybox\nENV http_proxy=from-env\n\
             RUN echo \"[$http_proxy][$HTTP_PROXY][$no_proxy][$NO_PROXY][$FOO]\" > /seen\n",
        )],
    );
    let build = |proxy: &str| {
        let out = env.path(&format!("out-{}", proxy.len()));
        let dest = format!("type=local,dest={}", out.display());
        let progress = stderr(&env.ok(&[
            "build",
            "--progress=plain",
            "-t",
            "proxied:1",
            "-o",
            "type=image",
            "-o",
            &dest,
            "--build-arg",
            &format!("http_proxy={proxy}"),
            "--build-arg",
            "NO_PROXY=localhost",
            "--build-arg",
            "FOO=not-declared",
            s(&ctx),
        ]));
        let seen = std::fs::read_to_string(out.join("seen")).expect("/seen");
        (seen, progress)
    };
    // Both spellings, winning over ENV (as BuildKit's oracle shows); undeclared FOO not.
    let (seen, _) = build("http://u:p@proxy:3128");
    assert_eq!(
        seen,
        "[http://u:p@proxy:3128][http://u:p@proxy:3128][localhost][localhost][]\n"
    );
    let info: serde_json::Value =
        serde_json::from_slice(&env.ok(&["inspect", "proxied:1"]).stdout).expect("JSON");
    let config = info[0]["Config"].to_string();
    assert!(!config.contains("proxy:3128"), "{config}");
    assert!(!config.contains("localhost"), "{config}");
    let history = stdout(&env.ok(&["history", "--no-trunc", "proxied:1"]));
    assert!(!history.contains("proxy:3128"), "{history}");

    // Another proxy changes no key: the RUN is cached (and keeps what it saw).
    let (seen, progress) = build("http://elsewhere:8080");
    assert!(seen.contains("proxy:3128"), "{seen}");
    let run_cached = progress
        .lines()
        .collect::<Vec<_>>()
        .windows(2)
        .any(|w| w[0].contains("RUN echo") && w[1].ends_with("CACHED"));
    assert!(run_cached, "{progress}");
}

#[test]
fn progress_json_logs_are_text_with_times() {
    let Some(env) = Env::with_busybox() else {
        return;
    };
    let ctx = env.context(
        "ctx",
        &[("Dockerfile", "FROM busybox\nRUN echo hello-json\n")],
    );
    let err = stderr(&env.ok(&["build", "--progress=json", s(&ctx)]));
    let events: Vec<serde_json::Value> = err
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let log = events
        .iter()
        .find(|e| e["event"] == "log")
        .unwrap_or_else(|| panic!("no log event:\n{err}"));
    assert_eq!(log["text"], "hello-json\n", "{log}");
    assert!(log.get("data").is_none(), "{log}");
    assert!(
        events
            .iter()
            .filter(|e| e.get("event").is_some())
            .all(|e| e["time"].as_f64().is_some_and(|t| t > 0.0)),
        "{err}"
    );
}
