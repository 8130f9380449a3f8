//! Build checks through the CLI: a golden per rule (`testdata/checks/<case>/Dockerfile`,
//! optional `.dockerignore` and `args` (extra arguments, one a line) → `expected`, the exact
//! standard output of `rbuild --check`; `UPDATE_GOLDEN=1` rewrites them), the `# check=`
//! directive, `error=true`, the summary after a build, and `--call=outline|targets`.
//! None of them builds a RUN or needs the network: every base is `scratch` or a store image.

mod support;

use std::path::{Path, PathBuf};

use support::{s, stderr, stdout, Env};

fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/checks")
}

/// Runs rbuild in `dir` with `args` then `.`.
fn run_in(env: &Env, dir: &Path, args: &[&str]) -> std::process::Output {
    env.cmd()
        .current_dir(dir)
        .args(args)
        .arg(".")
        .output()
        .expect("run rbuild")
}

#[test]
fn each_rule_matches_its_golden() {
    let env = Env::new();
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut cases: Vec<PathBuf> = std::fs::read_dir(cases_dir())
        .expect("testdata/checks")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.join("Dockerfile").is_file())
        .collect();
    cases.sort();
    assert!(cases.len() >= 25, "only {} cases", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let extra = std::fs::read_to_string(case.join("args")).unwrap_or_default();
        let mut args = vec!["build", "--check"];
        args.extend(extra.lines().filter(|l| !l.is_empty()));
        let out = run_in(&env, case, &args);
        let got = stdout(&out);
        let expected_path = case.join("expected");
        if update {
            std::fs::write(&expected_path, &got).expect("write expected");
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        let name = case.file_name().unwrap().to_string_lossy().to_string();
        if got != expected {
            failures.push(format!(
                "{name}: stdout differs (UPDATE_GOLDEN=1 to rewrite)\n--- got\n{got}--- expected\n{expected}--- stderr\n{}",
                stderr(&out)
            ));
            continue;
        }
        // buildx's status: 1 with warnings (or an error), 0 without.
        let clean = got.contains("Check complete, no warnings found.");
        let code = out.status.code();
        if clean != (code == Some(0)) {
            failures.push(format!("{name}: exit {code:?} for\n{got}{}", stderr(&out)));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_rule_has_a_golden() {
    let all = std::fs::read_dir(cases_dir())
        .expect("testdata/checks")
        .map(|e| {
            std::fs::read_to_string(e.expect("entry").path().join("expected")).unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join("\n");
    for rule in rbuild_frontend::lint::Rule::ALL {
        if rule == rbuild_frontend::lint::Rule::InvalidBaseImagePlatform {
            continue; // needs an image of another platform: its own test below
        }
        assert!(
            all.contains(&format!("WARNING: {} ", rule.name())),
            "no golden shows {rule}"
        );
    }
}

#[test]
fn error_true_fails_the_build_before_anything_runs() {
    let env = Env::new();
    let ctx = env.context(
        "ctx",
        &[(
            "Dockerfile",
            "# check=error=true\nFROM scratch as base\nCOPY Dockerfile /\n",
        )],
    );
    let out = env.run(&["build", "--progress=plain", s(&ctx)]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("ERROR: failed to solve: lint violation found for rules: FromAsCasing"),
        "{err}"
    );
    assert!(err.contains(">>> FROM scratch as base"), "{err}");
    assert!(!err.contains("COPY Dockerfile /\n#"), "a step ran: {err}");
    // The build argument replaces the directive: skipped, the build succeeds.
    let out = env.run(&[
        "build",
        "--progress=plain",
        "--build-arg",
        "BUILDKIT_DOCKERFILE_CHECK=skip=FromAsCasing;error=true",
        s(&ctx),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    // A bad option is an error of its own.
    let bad = env.context(
        "bad",
        &[("Dockerfile", "# check=error=maybe\nFROM scratch\n")],
    );
    let out = env.run(&["build", s(&bad)]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("failed to parse check options"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_build_ends_with_the_summary_of_the_needed_stages() {
    let env = Env::new();
    let ctx = env.context(
        "ctx",
        &[(
            "Dockerfile",
            "FROM scratch AS unused\nENV a b\n\nFROM scratch as base\nMAINTAINER me\ncopy Dockerfile /\n",
        )],
    );
    let out = env.run(&["build", "--progress=plain", s(&ctx)]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    let summary = err
        .split_once("\n 3 warnings found")
        .map(|(_, s)| s)
        .unwrap_or_else(|| panic!("{err}"));
    assert_eq!(
        summary,
        " (use --debug to expand):\n \
         - FromAsCasing: 'as' and 'FROM' keywords' casing do not match (line 4)\n \
         - MaintainerDeprecated: Maintainer instruction is deprecated in favor of using label (line 5)\n \
         - ConsistentInstructionCasing: Command 'copy' should match the case of the command majority (uppercase) (line 6)\n"
    );
    // Plain progress shows each at once under the step that loaded the Dockerfile.
    assert!(
        err.contains("#1 WARN: MaintainerDeprecated: Maintainer instruction is deprecated in favor of using label (line 5)\n"),
        "{err}"
    );
    // The unused stage's LegacyKeyValueFormat is a --check finding only.
    assert!(!err.contains("LegacyKeyValueFormat"), "{err}");
    // --debug expands each: description, link, lines.
    let out = env.run(&["build", "--progress=plain", "--debug", s(&ctx)]);
    let err = stderr(&out);
    assert!(err.contains(" 3 warnings found:\n"), "{err}");
    assert!(
        err.contains(
            "More info: https://docs.docker.com/go/dockerfile/rule/maintainer-deprecated/\n"
        ),
        "{err}"
    );
    assert!(err.contains("   5 | >>> MAINTAINER me\n"), "{err}");
    // --progress=json: a JSON line per warning.
    let out = env.run(&["build", "--progress=json", s(&ctx)]);
    let rules: Vec<String> = stderr(&out)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["event"] == "warning")
        .map(|v| format!("{}:{}", v["rule"].as_str().unwrap_or_default(), v["line"]))
        .collect();
    assert_eq!(
        rules,
        [
            "FromAsCasing:4",
            "MaintainerDeprecated:5",
            "ConsistentInstructionCasing:6"
        ],
        "{}",
        stderr(&out)
    );
    // Several platforms: a violation of each plan, shown once.
    let multi = env.context("multi", &[("Dockerfile", "FROM scratch\nCMD x\n")]);
    let out = env.run(&[
        "build",
        "--progress=plain",
        "--platform",
        "linux/amd64,linux/arm64",
        "-o",
        &format!("type=oci,dest={}", s(&env.path("multi.tar"))),
        s(&multi),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out)
            .contains("\n 1 warning found (use --debug to expand):\n - JSONArgsRecommended:"),
        "{}",
        stderr(&out)
    );
    // Quiet builds print none.
    let out = env.run(&["build", "-q", s(&ctx)]);
    assert!(!stderr(&out).contains("warnings found"), "{}", stderr(&out));
}

#[test]
fn check_with_a_target_checks_the_stages_it_needs() {
    let env = Env::new();
    let dockerfile = "FROM scratch AS a\nENV x y\n\nFROM scratch AS b\nCMD x\nMAINTAINER me\n";
    let ctx = env.context("ctx", &[("Dockerfile", dockerfile)]);
    let rules = |args: &[&str]| {
        let mut all = vec!["build", "--check"];
        all.extend_from_slice(args);
        all.push(s(&ctx));
        stdout(&env.run(&all))
            .lines()
            .filter_map(|l| l.strip_prefix("WARNING: "))
            .map(|l| l.split(' ').next().unwrap_or_default().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        rules(&[]),
        [
            "LegacyKeyValueFormat",
            "JSONArgsRecommended",
            "MaintainerDeprecated"
        ]
    );
    // Rules of the tree alone (MAINTAINER) still see the whole file.
    assert_eq!(
        rules(&["--target", "a"]),
        ["LegacyKeyValueFormat", "MaintainerDeprecated"]
    );
    assert_eq!(
        rules(&["--target", "b"]),
        ["JSONArgsRecommended", "MaintainerDeprecated"]
    );
}

#[test]
fn check_json_and_ignorestatus() {
    let env = Env::new();
    let ctx = env.context("ctx", &[("Dockerfile", "FROM scratch\nMAINTAINER me\n")]);
    let out = env.run(&["build", "--call=check,format=json", s(&ctx)]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("json");
    assert_eq!(v["warnings"][0]["ruleName"], "MaintainerDeprecated");
    assert_eq!(
        v["warnings"][0]["location"]["ranges"][0]["start"]["line"],
        2
    );
    let out = env.run(&["build", "--call=check,ignorestatus=true", s(&ctx)]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).starts_with("Check complete, 1 warning has been found!\n"));
}

#[test]
fn a_base_image_of_another_platform_is_invalid_base_image_platform() {
    let env = Env::new();
    // A single-platform image for another platform, in the store under a tag.
    let other = if std::env::consts::ARCH == "aarch64" {
        "linux/amd64"
    } else {
        "linux/arm64"
    };
    let base = env.context(
        "base",
        &[("Dockerfile", "FROM scratch\nCOPY Dockerfile /\n")],
    );
    env.ok(&[
        "build",
        "-q",
        "--platform",
        other,
        "-t",
        "other:1",
        s(&base),
    ]);
    let ctx = env.context(
        "ctx",
        &[("Dockerfile", "FROM other:1\nCOPY Dockerfile /x\n")],
    );
    let out = env.run(&["build", "--check", s(&ctx)]);
    let got = stdout(&out);
    let host = rbuild_types::Platform::host().to_string();
    assert!(
        got.contains(&format!(
            "WARNING: InvalidBaseImagePlatform\nBase image other:1 was pulled with platform \"{other}\", expected \"{host}\" for current build\n"
        )),
        "{got}{}",
        stderr(&out)
    );
    assert!(got.contains("   1 | >>> FROM other:1\n"), "{got}");
    // The same in a build's summary; skipped by the directive.
    let out = env.run(&["build", "--progress=plain", s(&ctx)]);
    assert!(
        stderr(&out).contains(" - InvalidBaseImagePlatform: Base image other:1"),
        "{}",
        stderr(&out)
    );
    let skip = env.context(
        "skip",
        &[(
            "Dockerfile",
            "# check=skip=InvalidBaseImagePlatform\nFROM other:1\n",
        )],
    );
    let out = env.run(&["build", "--check", s(&skip)]);
    assert_eq!(
        stdout(&out),
        "Check complete, no warnings found.\n",
        "{}",
        stderr(&out)
    );
}

#[test]
fn targets_and_outline_list_what_the_file_offers() {
    let env = Env::new();
    let dockerfile = "# VERSION the release to build\nARG VERSION=1.0\nARG UNUSED=x\nARG SUFFIX=-${VERSION}\n\n# base the common base\nFROM scratch${SUFFIX:+} AS base\n\n# build compiles the app\nFROM base AS build\n# GOFLAGS flags for go build\nARG GOFLAGS=-trimpath\nRUN --mount=type=secret,id=token,required=true --mount=type=ssh true\n\nFROM scratch AS release\nCOPY --from=build / /\n";
    let ctx = env.context("ctx", &[("Dockerfile", dockerfile)]);
    let out = env.run(&["build", "--call=targets", s(&ctx)]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "TARGET            DESCRIPTION\nbase              the common base\nbuild             compiles the app\nrelease (default) \n"
    );
    let out = env.run(&["build", "--call=outline", "--target=build", s(&ctx)]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "TARGET:      build\nDESCRIPTION: compiles the app\n\n\
         BUILD ARG   VALUE       DESCRIPTION\n\
         VERSION     1.0         the release to build\n\
         SUFFIX      -1.0        \n\
         GOFLAGS     -trimpath   flags for go build\n\n\
         SECRET   REQUIRED\ntoken    true\n\n\
         SSH       REQUIRED\ndefault   \n\n"
    );
    let out = env.run(&[
        "build",
        "--call=outline,format=json",
        "--target=build",
        s(&ctx),
    ]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("json");
    assert_eq!(v["args"][2]["name"], "GOFLAGS");
    assert_eq!(v["secrets"][0]["required"], true);
}

#[test]
fn copy_ignored_file_reads_the_dockerignore_of_an_archive_context() {
    let env = Env::new();
    let case = cases_dir().join("copy_ignored_file");
    let tar = env.path("ctx.tar");
    let status = std::process::Command::new("tar")
        .arg("-cf")
        .arg(&tar)
        .arg("-C")
        .arg(&case)
        .args(["Dockerfile", ".dockerignore"])
        .status()
        .expect("run tar");
    assert!(status.success());
    let bytes = std::fs::read(&tar).expect("read tar");
    let out = support::output_with_stdin(env.cmd().args(["build", "--check", "-"]), &bytes);
    let got = stdout(&out);
    assert!(
        got.contains("Attempting to Copy file \"secret.txt\" that is excluded by .dockerignore"),
        "{got}{}",
        stderr(&out)
    );
    assert!(
        got.starts_with("Check complete, 2 warnings have been found!"),
        "{got}"
    );
}
