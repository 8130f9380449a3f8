//! Targeted checks of lowering semantics (ARG/ENV scoping, stages, config rules), each on a
//! small Dockerfile run through the real parser.

mod common;

use rbuild_frontend::lower::{lower, plan, BuildOptions, Plan};
use rbuild_graph::{FileAction, Graph, ImageConfig, NetworkMode, Op};

use common::{bases_with, created_by, execs, opts};

fn plan_of(src: &str, o: &BuildOptions) -> Result<Plan, String> {
    let df = rbuild_frontend::parse(src.as_bytes()).map_err(|d| d.to_string())?;
    plan(&df, o).map_err(|d| d.to_string())
}

fn build_with(src: &str, o: &BuildOptions) -> Result<Graph, String> {
    let p = plan_of(src, o)?;
    let g = lower(&p, &bases_with(&p, &ImageConfig::default())).map_err(|d| d.to_string())?;
    g.validate().map_err(|e| e.to_string())?;
    Ok(g)
}

fn build(src: &str) -> Graph {
    build_with(src, &opts()).expect("lowering succeeds")
}

#[test]
fn build_arg_overrides_default_and_env_shadows_arg() {
    let src = "FROM busybox\nARG A=default\nARG B=b\nENV B=env\nRUN true\n";
    let mut o = opts();
    o.build_args.insert("A".into(), "cli".into());
    let g = build_with(src, &o).expect("lowers");
    let env = &execs(&g)[0].env;
    assert!(env.contains(&"A=cli".to_string()), "{env:?}");
    assert!(env.contains(&"B=env".to_string()), "{env:?}");
    assert!(!env.contains(&"B=b".to_string()), "{env:?}");
    // ARGs are not part of the image config; ENV is.
    assert_eq!(g.image.env_var("A"), None);
    assert_eq!(g.image.env_var("B"), Some("env"));
}

#[test]
fn global_arg_needs_redeclaration_inside_stage() {
    let src = "ARG V=1\nFROM busybox\nRUN echo $V\nARG V\nRUN echo $V\n";
    let g = build(src);
    let e = execs(&g);
    assert!(!e[0].env.iter().any(|kv| kv.starts_with("V=")));
    assert!(e[1].env.contains(&"V=1".to_string()));
}

#[test]
fn layers_pair_with_history() {
    let src = "FROM busybox\nWORKDIR /a\nCOPY . .\nRUN x\nENV A=1\nWORKDIR /\nADD f /f\n";
    let g = build(src);
    let layered = g.image.history.iter().filter(|h| !h.empty_layer).count();
    let file_or_exec = g
        .reachable()
        .iter()
        .filter(|id| matches!(g.vertex(**id).op, Op::Exec(_) | Op::File(_)))
        .count();
    assert_eq!(layered, file_or_exec);
}

#[test]
fn entrypoint_resets_inherited_cmd_but_not_own() {
    let base = ImageConfig {
        cmd: Some(vec!["sh".into()]),
        ..ImageConfig::default()
    };
    let src = "FROM busybox\nENTRYPOINT [\"/bin/app\"]\n";
    let p = plan_of(src, &opts()).expect("plan");
    let g = lower(&p, &bases_with(&p, &base)).expect("lower");
    assert_eq!(g.image.cmd, None);
    let g = build("FROM busybox\nCMD [\"x\"]\nENTRYPOINT [\"/bin/app\"]\n");
    assert_eq!(g.image.cmd, Some(vec!["x".to_string()]));
}

#[test]
fn base_images_are_distinct_and_skip_stages_and_scratch() {
    let src = "FROM busybox AS a\nFROM scratch AS b\nCOPY --from=a /x /x\nCOPY --from=busybox /y /y\nCOPY --from=debian:bookworm-slim /z /z\n";
    let p = plan_of(src, &opts()).expect("plan");
    let names: Vec<String> = p.base_images().iter().map(|(r, _)| r.to_string()).collect();
    assert_eq!(
        names,
        vec![
            "docker.io/library/busybox:latest",
            "docker.io/library/debian:bookworm-slim"
        ]
    );
    let g = build(src);
    let images = g
        .vertices
        .iter()
        .filter(|v| matches!(v.op, Op::Image(_)))
        .count();
    assert_eq!(images, 2, "one Image vertex per distinct reference");
}

#[test]
fn target_keeps_only_needed_stages_case_insensitively() {
    let src = "FROM busybox AS Build\nRUN a\nFROM busybox AS other\nRUN b\n";
    let mut o = opts();
    o.target = Some("BUILD".into());
    let p = plan_of(src, &o).expect("plan");
    assert_eq!(p.needed, vec![0]);
    let g = build_with(src, &o).expect("lower");
    assert_eq!(execs(&g).len(), 1);
    assert_eq!(g.vertex(g.target).name, "[build 2/2] RUN a");
}

#[test]
fn scratch_gets_default_path_and_root_workdir() {
    let g = build("FROM scratch\nCOPY a /\n");
    assert!(g.image.env_var("PATH").is_some());
    assert_eq!(g.image.working_dir, "/");
    assert_eq!(g.vertex(g.target).name, "[1/1] COPY a /");
}

#[test]
fn copy_paths_and_workdir_mkdir() {
    let g = build("FROM busybox\nUSER app\nWORKDIR /srv\nWORKDIR www\nCOPY ./x/../a.txt b/ sub/\n");
    let mut mkdirs = Vec::new();
    let mut copies = Vec::new();
    for v in &g.vertices {
        if let Op::File(f) = &v.op {
            for a in &f.actions {
                match a {
                    FileAction::Mkdir(m) => mkdirs.push((m.path.clone(), m.chown.clone())),
                    FileAction::Copy(c) => copies.push((c.src.clone(), c.dest.clone())),
                    FileAction::Mkfile(_) => {}
                }
            }
        }
    }
    assert_eq!(
        mkdirs,
        vec![
            ("/srv".to_string(), Some("app".to_string())),
            ("/srv/www".to_string(), Some("app".to_string()))
        ]
    );
    assert_eq!(
        copies,
        vec![
            ("a.txt".to_string(), "/srv/www/sub/".to_string()),
            ("b".to_string(), "/srv/www/sub/".to_string())
        ]
    );
}

#[test]
fn run_forms_shell_network_and_no_cache() {
    let src = "FROM busybox\nSHELL [\"/bin/ash\", \"-eo\", \"pipefail\", \"-c\"]\nRUN --network=none echo a | wc\nRUN [\"/bin/echo\", \"b\"]\n";
    let mut o = opts();
    o.no_cache = true;
    let g = build_with(src, &o).expect("lower");
    let e = execs(&g);
    assert_eq!(
        e[0].args,
        ["/bin/ash", "-eo", "pipefail", "-c", "echo a | wc"]
    );
    assert_eq!(e[0].network, NetworkMode::None);
    assert_eq!(e[1].args, ["/bin/echo", "b"]);
    assert!(g
        .vertices
        .iter()
        .filter(|v| matches!(v.op, Op::Exec(_)))
        .all(|v| v.ignore_cache));
}

#[test]
fn the_build_network_is_the_default_of_every_run() {
    let src = "FROM busybox\nRUN a\nRUN --network=default b\nRUN --network=host c\nRUN --network=none d\n";
    let modes = |network| {
        let mut o = opts();
        o.network = network;
        let g = build_with(src, &o).expect("lower");
        execs(&g).iter().map(|e| e.network).collect::<Vec<_>>()
    };
    use NetworkMode::{Default, Host, None};
    assert_eq!(modes(Default), [Default, Default, Host, None]);
    // `--network=default` means the build's mode, as in BuildKit.
    assert_eq!(modes(None), [None, None, Host, None]);
    assert_eq!(modes(Host), [Host, Host, Host, None]);
}

#[test]
/// Errors point at the flag at fault when there is one, else at the instruction.
fn errors_carry_the_instruction_line() {
    let cases = [
        (
            "FROM busybox\nWORKDIR /\nRUN --mount=type=cache,target=. true\n",
            "3:5",
            "invalid mount target \"/\"",
        ),
        (
            "FROM busybox\nCOPY --chmod=999 a /\n",
            "2:6",
            "invalid chmod",
        ),
        (
            "FROM busybox\nCOPY --from=$X a /\n",
            "2:6",
            "variable expansion is not supported",
        ),
        ("RUN true\nFROM busybox\n", "1:1", "no build stage"),
        (
            "FROM busybox AS 1bad\n",
            "1:1",
            "invalid name for build stage",
        ),
        (
            "FROM busybox\nRUN --network=bogus true\n",
            "2:5",
            "network mode \"bogus\" not supported",
        ),
        (
            "FROM busybox\nWORKDIR ${NOPE:?must be set}\n",
            "2:1",
            "must be set",
        ),
    ];
    for (src, at, msg) in cases {
        let err = build_with(src, &opts()).expect_err(src);
        assert!(err.starts_with(at) && err.contains(msg), "{src:?}: {err}");
    }
}

#[test]
fn maintainer_sets_the_author_and_a_history_entry() {
    // BuildKit's dispatchMaintainer: `author` in the config, `MAINTAINER …` in the history.
    let g = build("FROM busybox\nMAINTAINER Jane Doe <jane@example.com>\nRUN true\n");
    assert_eq!(
        g.image.author.as_deref(),
        Some("Jane Doe <jane@example.com>")
    );
    let h = &g.image.history[0];
    assert_eq!(h.created_by, "MAINTAINER Jane Doe <jane@example.com>");
    assert!(h.empty_layer);
    // The base image's author stays unless MAINTAINER replaces it; later stages inherit it.
    let base = ImageConfig {
        author: Some("base author".into()),
        ..ImageConfig::default()
    };
    let src = "FROM busybox AS a\nRUN true\nFROM a\nRUN true\n";
    let p = plan_of(src, &opts()).expect("plan");
    let g = lower(&p, &bases_with(&p, &base)).expect("lower");
    assert_eq!(g.image.author.as_deref(), Some("base author"));
    let g = build("FROM busybox AS a\nMAINTAINER first\nFROM a\nMAINTAINER second\n");
    assert_eq!(g.image.author.as_deref(), Some("second"));
    // Without MAINTAINER nothing is set (and the graph's JSON has no `author`).
    let g = build("FROM busybox\nRUN true\n");
    assert_eq!(g.image.author, None);
    let json = serde_json::to_string(&g).expect("json");
    assert!(!json.contains("author"), "{json}");
}

#[test]
fn proxy_build_args_reach_run_without_arg_but_stay_out_of_key_config_and_history() {
    let mut o = opts();
    o.build_args
        .insert("http_proxy".into(), "http://u:p@proxy:3128".into());
    o.build_args.insert("NO_PROXY".into(), "localhost".into());
    o.build_args.insert("FOO".into(), "bar".into());
    let g = build_with(
        "FROM busybox\nRUN echo $http_proxy\nFROM busybox\nRUN b\n",
        &o,
    )
    .expect("lowers");
    for e in execs(&g) {
        // Every RUN, every stage: the proxy env rides along, outside `env` (the keyed part).
        assert_eq!(
            e.proxy_env.get(rbuild_graph::ProxyVar::Http),
            Some("http://u:p@proxy:3128")
        );
        assert_eq!(
            e.proxy_env.get(rbuild_graph::ProxyVar::No),
            Some("localhost")
        );
        assert!(
            !e.env.iter().any(|kv| kv.to_lowercase().contains("proxy")),
            "{e:?}"
        );
        assert!(!e.env.iter().any(|kv| kv.starts_with("FOO=")), "{e:?}");
    }
    let json = serde_json::to_string(&g).expect("json");
    assert!(!json.contains("proxy:3128"), "{json}");
    assert!(g
        .image
        .history
        .iter()
        .all(|h| !h.created_by.contains("proxy")));
    assert!(g.image.env.iter().all(|kv| !kv.contains("proxy")));

    // A declared ARG makes it an ordinary build arg too: in env (so in the key) and in the
    // RUN's history text, as BuildKit documents for `ARG HTTP_PROXY`.
    let g = build_with("FROM busybox\nARG http_proxy\nRUN true\n", &o).expect("lowers");
    let e = execs(&g)[0];
    assert!(
        e.env
            .contains(&"http_proxy=http://u:p@proxy:3128".to_string()),
        "{e:?}"
    );
    assert!(!e.proxy_env.is_empty());
    let run = g.image.history.last().expect("history");
    assert!(
        run.created_by
            .starts_with("RUN |1 http_proxy=http://u:p@proxy:3128 "),
        "{}",
        run.created_by
    );

    // No proxy args: nothing.
    let g = build("FROM busybox\nRUN true\n");
    assert!(execs(&g)[0].proxy_env.is_empty());
}

/// BuildKit 0.13 and today's NormalizeWorkdir: an absolute WORKDIR is recorded as written
/// (slashes, `..` and all) in the config and history; a relative one is joined and cleaned.
/// RUN works in, and the mkdir creates, the cleaned path.
#[test]
fn workdir_records_an_absolute_path_as_written() {
    let g = build("FROM busybox\nWORKDIR /a/../b//c/\nRUN pwd\nWORKDIR d/\nRUN pwd\n");
    let history = created_by(&g);
    assert!(history.contains(&"WORKDIR /a/../b//c/"), "{history:?}");
    assert!(history.contains(&"WORKDIR /b/c/d"), "{history:?}");
    assert_eq!(g.image.working_dir, "/b/c/d");
    let cwds: Vec<&str> = execs(&g).iter().map(|e| e.cwd.as_str()).collect();
    assert_eq!(cwds, ["/b/c", "/b/c/d"]);
    let mkdirs: Vec<&str> = g
        .vertices
        .iter()
        .filter_map(|v| match &v.op {
            Op::File(f) => match &f.actions[0] {
                FileAction::Mkdir(m) => Some(m.path.as_str()),
                _ => None,
            },
            _ => None,
        })
        .collect();
    assert_eq!(mkdirs, ["/b/c", "/b/c/d"]);
    let g = build("FROM busybox\nWORKDIR /srv/app/\n");
    assert_eq!(g.image.working_dir, "/srv/app/");
}
