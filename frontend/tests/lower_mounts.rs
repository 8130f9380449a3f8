//! `RUN --mount`, `RUN --security` and `#!` heredoc scripts lowered to the graph: every
//! mount type with its BuildKit defaults, the vertices mounts read, stage ordering and
//! pruning, errors at the flag's line:column, and what ends up in the hashed op.

mod common;

use rbuild_frontend::lower::{lower, plan, BuildOptions, Plan};
use rbuild_graph::{
    BindMount, CacheMount, CacheSharing, CopyAction, ExecOp, FileAction, Graph, ImageConfig, Mount,
    MountFrom, Op, SecretMount, SecurityMode, SshMount, TmpfsMount, Vertex,
};

use common::{bases_with, flat, opts};

fn plan_src(src: &str, o: &BuildOptions) -> Result<Plan, Vec<String>> {
    let df = rbuild_frontend::parse(src.as_bytes()).map_err(flat)?;
    plan(&df, o).map_err(flat)
}

/// Lowers `src` with `on_build` as every base image's triggers.
fn lower_with(src: &str, o: &BuildOptions, on_build: &[&str]) -> Result<Graph, Vec<String>> {
    let p = plan_src(src, o)?;
    let config = ImageConfig {
        on_build: on_build.iter().map(|s| s.to_string()).collect(),
        ..ImageConfig::default()
    };
    let g = lower(&p, &bases_with(&p, &config)).map_err(flat)?;
    g.validate().expect("lowered graph is valid");
    Ok(g)
}

fn lower_src(src: &str) -> Graph {
    lower_with(src, &opts(), &[]).unwrap_or_else(|e| panic!("{src:?}: {e:?}"))
}

#[track_caller]
fn fails_at(src: &str, at: &str, msg: &str) {
    let errs = lower_with(src, &opts(), &[]).expect_err(src);
    assert_eq!(errs.len(), 1, "{src:?}: {errs:?}");
    assert!(
        errs[0].starts_with(&format!("{at} ")) && errs[0].contains(msg),
        "{src:?}: {errs:?}"
    );
}

/// The last RUN of the graph and its vertex.
fn last_run(g: &Graph) -> (&Vertex, &ExecOp) {
    g.vertices
        .iter()
        .rev()
        .find_map(|v| match &v.op {
            Op::Exec(e) => Some((v, e)),
            _ => None,
        })
        .expect("a RUN")
}

fn vertex(g: &Graph, input: rbuild_graph::VertexId) -> &Vertex {
    &g.vertices[input.index()]
}

#[test]
fn bind_from_the_context_copies_the_source_into_scratch() {
    let g = lower_src(
        "FROM busybox\nWORKDIR /w\n\
         RUN --mount=type=bind,target=/ctx \\\n  \
             --mount=source=sub/a.txt,target=b \\\n  \
             --mount=src=../../sub/,dst=/m,rw ls\n",
    );
    let (v, run) = last_run(&g);
    let expect = [
        ("/ctx", ".", "/", false),
        ("/w/b", "sub/a.txt", "/a.txt", false),
        ("/m", "sub", "/sub", true),
    ];
    assert_eq!(run.mounts.len(), expect.len());
    for (i, (target, src, path, rw)) in expect.into_iter().enumerate() {
        let Mount::Bind(b) = &run.mounts[i] else {
            panic!("mount {i} is not a bind: {:?}", run.mounts[i]);
        };
        assert_eq!(
            (b.target.as_str(), b.path.as_str(), b.readwrite, b.source),
            (target, path, rw, i + 1)
        );
        // The mounted vertex copies exactly `src` of the context into scratch at `path`.
        let helper = vertex(&g, v.inputs[b.source]);
        assert!(
            helper.name.contains("from build context"),
            "{}",
            helper.name
        );
        assert!(matches!(vertex(&g, helper.inputs[0]).op, Op::Scratch));
        assert!(matches!(
            vertex(&g, helper.inputs[1]).op,
            Op::Context { .. }
        ));
        let Op::File(f) = &helper.op else {
            panic!("helper is not a file op")
        };
        let [FileAction::Copy(CopyAction {
            source: 1,
            src: s,
            dest,
            chown: None,
            chmod: None,
            unpack: false,
            ..
        })] = f.actions.as_slice()
        else {
            panic!("unexpected helper actions {:?}", f.actions)
        };
        assert_eq!((s.as_str(), dest.as_str()), (src, path));
    }
    // The RUN's own layer sits on the stage's root; mounts are extra inputs.
    assert!(matches!(vertex(&g, v.inputs[0]).op, Op::File(_)));
}

#[test]
fn bind_and_cache_from_stages_and_images() {
    let src = "FROM busybox AS build\nRUN make\n\
               FROM alpine\n\
               RUN --mount=from=BUILD,source=/out,target=/in \\\n  \
                   --mount=type=bind,from=golang:1.22,target=/go \\\n  \
                   --mount=type=cache,from=build,source=out,target=/c,id=x,sharing=locked,ro \\\n  \
                   --mount=type=bind,from=scratch,target=/empty true\n";
    let p = plan_src(src, &opts()).expect("plans");
    let bases: Vec<String> = p.base_images().iter().map(|(r, _)| r.to_string()).collect();
    assert_eq!(
        bases,
        [
            "docker.io/library/busybox:latest",
            "docker.io/library/alpine:latest",
            "docker.io/library/golang:1.22"
        ]
    );
    let g = lower_src(src);
    let (v, run) = last_run(&g);
    let build_root = g
        .vertices
        .iter()
        .position(|v| v.name.contains("RUN make"))
        .expect("the build stage's RUN");
    let [Mount::Bind(a), Mount::Bind(b), Mount::Cache(c), Mount::Bind(e)] = run.mounts.as_slice()
    else {
        panic!("unexpected mounts {:?}", run.mounts)
    };
    assert_eq!(
        a,
        &BindMount {
            target: "/in".into(),
            source: 1,
            path: "/out".into(),
            readwrite: false
        }
    );
    assert_eq!(v.inputs[1].index(), build_root);
    assert_eq!((b.path.as_str(), b.source), ("/", 2));
    let Op::Image(img) = &vertex(&g, v.inputs[2]).op else {
        panic!("from=golang is not an image")
    };
    assert_eq!(img.reference.to_string(), "docker.io/library/golang:1.22");
    // The same stage mounted twice is one input.
    assert_eq!(
        c,
        &CacheMount {
            target: "/c".into(),
            id: "x".into(),
            sharing: CacheSharing::Locked,
            from: Some(MountFrom {
                source: 1,
                path: "/out".into()
            }),
            subdir: None,
            readonly: true,
            mode: 0o755,
            uid: 0,
            gid: 0,
        }
    );
    assert!(matches!(vertex(&g, v.inputs[e.source]).op, Op::Scratch));
    assert_eq!(v.inputs.len(), 4);
}

#[test]
fn cache_tmpfs_secret_and_ssh_defaults() {
    let g = lower_src(
        "FROM busybox\nARG T=cache\nWORKDIR /w\n\
         RUN --mount=type=cache,target=$T/ \\\n  \
             --mount=type=cache,target=/abs,uid=1000,gid=50,mode=0700,sharing=private \\\n  \
             --mount=type=tmpfs,target=/t,size=64m \\\n  \
             --mount=type=tmpfs,target=/u \\\n  \
             --mount=type=secret,target=/etc/tok \\\n  \
             --mount=type=secret,id=npm,required \\\n  \
             --mount=type=secret,id=api,env=API_KEY \\\n  \
             --mount=type=secret,source=aws,target=rel/creds,env=AWS,mode=0440,uid=7 \\\n  \
             --mount=type=ssh \\\n  \
             --mount=type=ssh,id=github,target=/agent,required,mode=0666 \\\n  \
             --mount=type=ssh true\n",
    );
    let (v, run) = last_run(&g);
    assert_eq!(v.inputs.len(), 1, "no mount here reads a vertex");
    let cache = |target: &str, id: &str| {
        Mount::Cache(CacheMount {
            target: target.into(),
            id: id.into(),
            sharing: CacheSharing::Shared,
            from: None,
            subdir: None,
            readonly: false,
            mode: 0o755,
            uid: 0,
            gid: 0,
        })
    };
    let secret = |id: &str, target: Option<&str>, env: Option<&str>| SecretMount {
        id: id.into(),
        target: target.map(str::to_string),
        env: env.map(str::to_string),
        required: false,
        mode: 0o400,
        uid: 0,
        gid: 0,
    };
    let ssh = |id: &str, target: &str| SshMount {
        id: id.into(),
        target: target.into(),
        required: false,
        mode: 0o600,
        uid: 0,
        gid: 0,
    };
    let want = vec![
        // The id is the target as written (BuildKit's path.Clean(target)), the mount point
        // the target joined with the WORKDIR.
        cache("/w/cache", "cache"),
        Mount::Cache(CacheMount {
            sharing: CacheSharing::Private,
            mode: 0o700,
            uid: 1000,
            gid: 50,
            ..match cache("/abs", "/abs") {
                Mount::Cache(c) => c,
                _ => unreachable!(),
            }
        }),
        Mount::Tmpfs(TmpfsMount {
            target: "/t".into(),
            size: Some(64 << 20),
        }),
        Mount::Tmpfs(TmpfsMount {
            target: "/u".into(),
            size: None,
        }),
        Mount::Secret(secret("tok", Some("/etc/tok"), None)),
        Mount::Secret(SecretMount {
            required: true,
            ..secret("npm", Some("/run/secrets/npm"), None)
        }),
        Mount::Secret(secret("api", None, Some("API_KEY"))),
        Mount::Secret(SecretMount {
            mode: 0o440,
            uid: 7,
            ..secret("aws", Some("/w/rel/creds"), Some("AWS"))
        }),
        Mount::Ssh(ssh("default", "/run/buildkit/ssh_agent.0")),
        Mount::Ssh(SshMount {
            required: true,
            mode: 0o666,
            ..ssh("github", "/agent")
        }),
        Mount::Ssh(ssh("default", "/run/buildkit/ssh_agent.2")),
    ];
    assert_eq!(run.mounts, want);
    assert_eq!(run.security, SecurityMode::Sandbox);
}

#[test]
fn security_modes() {
    let g = lower_src("FROM busybox\nRUN --security=insecure true\n");
    assert_eq!(last_run(&g).1.security, SecurityMode::Insecure);
    let g = lower_src("FROM busybox\nRUN --security=sandbox true\n");
    assert_eq!(last_run(&g).1.security, SecurityMode::Sandbox);
    let json = serde_json::to_string(last_run(&g).1).unwrap_or_default();
    assert!(
        !json.contains("security") && !json.contains("mounts"),
        "{json}"
    );
}

#[test]
fn shebang_heredoc_runs_a_mounted_script() {
    let src =
        "FROM busybox\nWORKDIR /app\nRUN <<-EOF\n#!/usr/bin/env python3\n\tprint('hi $X')\n\tEOF\n";
    let g = lower_src(src);
    let (v, run) = last_run(&g);
    assert_eq!(run.args, ["/bin/sh", "-c", "/dev/pipes/EOF"]);
    assert_eq!(
        run.mounts,
        [Mount::Bind(BindMount {
            target: "/dev/pipes".into(),
            source: 1,
            path: "/".into(),
            readwrite: false,
        })]
    );
    let script = vertex(&g, v.inputs[1]);
    assert_eq!(script.name, "[internal] preparing inline document");
    assert!(matches!(vertex(&g, script.inputs[0]).op, Op::Scratch));
    let Op::File(f) = &script.op else {
        panic!("the script is not a file op")
    };
    let [FileAction::Mkfile(mk)] = f.actions.as_slice() else {
        panic!("unexpected {:?}", f.actions)
    };
    assert_eq!((mk.path.as_str(), mk.mode), ("/EOF", 0o755));
    // Tabs stripped (`<<-`), no expansion.
    assert_eq!(
        String::from_utf8_lossy(&mk.data),
        "#!/usr/bin/env python3\nprint('hi $X')\n"
    );
    // The script is not in the RUN's op, so not in its layer.
    let json = serde_json::to_string(run).unwrap_or_default();
    assert!(!json.contains("python3"), "{json}");
    assert!(
        v.name.ends_with("RUN <<-EOF (#!/usr/bin/env python3...)"),
        "{}",
        v.name
    );
    let history = &g.image.history.last().expect("history").created_by;
    assert_eq!(history, "RUN /bin/sh -c /dev/pipes/EOF # buildkit");
    // Without `#!` the body is the shell command, as before.
    let g = lower_src("FROM busybox\nRUN <<EOF\necho hi\nEOF\n");
    assert_eq!(last_run(&g).1.args, ["/bin/sh", "-c", "echo hi\n"]);
    assert!(last_run(&g).1.mounts.is_empty());
    // BuildKit looks for `#!` before `<<-` strips tabs: an indented one is a shell body.
    let g = lower_src("FROM busybox\nRUN <<-EOF\n\t#!/bin/sh\n\techo hi\n\tEOF\n");
    assert_eq!(
        last_run(&g).1.args,
        ["/bin/sh", "-c", "#!/bin/sh\necho hi\n"]
    );
}

#[test]
fn mount_errors_point_at_the_flag() {
    // A stage defined later, or the current one.
    fails_at(
        "FROM busybox AS a\nRUN --network=none --mount=from=b,target=/x true\nFROM busybox AS b\n",
        "2:20",
        "cannot mount from stage \"b\", it needs to be defined before current stage \"a\"",
    );
    fails_at(
        "FROM busybox AS a\nRUN --mount=type=cache,from=A,target=/x true\n",
        "2:5",
        "circular dependency detected on stage: a",
    );
    fails_at(
        "FROM busybox\nRUN --mount=from=Not_An_Image!,target=/x true\n",
        "2:5",
        "invalid mount from \"Not_An_Image!\"",
    );
    // Mount targets on / (also a relative one that resolves to it).
    fails_at(
        "FROM busybox\nRUN true --version\nRUN --mount=type=tmpfs,target=/ true\n",
        "3:5",
        "invalid mount target \"/\"",
    );
    fails_at(
        "FROM busybox\nRUN --mount=target=.. true\n",
        "2:5",
        "invalid mount target \"/\"",
    );
    fails_at(
        "FROM busybox\nRUN --mount=type=ssh,source=/a true\n",
        "2:5",
        "ssh does not support source",
    );
    fails_at(
        "FROM busybox\nRUN --mount=type=secret,env=TOKEN true\n",
        "2:5",
        "one of source, target or id required",
    );
    fails_at(
        "FROM busybox\nRUN --mount=source=*.txt,target=/c true\n",
        "2:5",
        "wildcard",
    );
    fails_at(
        "FROM busybox\nRUN --mount=type=bind,target=/x --device=/dev/fuse true\n",
        "2:33",
        "RUN --device is not supported yet",
    );
    // Every failing RUN is reported.
    let errs = lower_with(
        "FROM busybox\nRUN --mount=type=tmpfs,target=/ true\nRUN --mount=type=ssh,src=x true\n",
        &opts(),
        &[],
    )
    .expect_err("fails");
    assert_eq!(errs.len(), 2, "{errs:?}");
}

#[test]
fn target_pruning_follows_mount_dependencies() {
    let src = "FROM busybox AS deps\nRUN fetch\n\
               FROM busybox AS unused\nRUN --mount=from=nosuch/image,target=/x false\n\
               FROM busybox AS app\nRUN --mount=from=deps,target=/deps build\n\
               FROM app AS final\nRUN true\n";
    let p = plan_src(src, &opts()).expect("plans");
    assert_eq!(p.needed, [0, 2, 3]);
    assert!(
        !p.base_images()
            .iter()
            .any(|(r, _)| r.to_string().contains("nosuch")),
        "an unused stage's mount images are not resolved"
    );
    let o = BuildOptions {
        target: Some("unused".into()),
        ..opts()
    };
    let p = plan_src(src, &o).expect("plans");
    assert_eq!(p.needed, [1]);
    assert!(p
        .base_images()
        .iter()
        .any(|(r, _)| r.to_string().contains("nosuch")));
    let g = lower_src(src);
    assert!(g.vertices.iter().any(|v| v.name.contains("RUN fetch")));
    assert!(!g.vertices.iter().any(|v| v.name.contains("false")));
}

#[test]
fn mounts_change_the_hashed_op() {
    let op_json = |src: &str| {
        let g = lower_src(src);
        serde_json::to_string(&vertex(&g, g.target).op).unwrap_or_default()
    };
    let variants = [
        "RUN make\n",
        "RUN --mount=type=cache,target=/c make\n",
        "RUN --mount=type=cache,target=/c,id=other make\n",
        "RUN --mount=type=cache,target=/c,sharing=locked make\n",
        "RUN --mount=type=tmpfs,target=/c make\n",
        "RUN --mount=type=secret,id=c make\n",
        "RUN --mount=type=ssh make\n",
        "RUN --mount=target=/c make\n",
        "RUN --mount=target=/c,rw make\n",
        "RUN --security=insecure make\n",
    ];
    let mut seen = std::collections::BTreeSet::new();
    for v in variants {
        let json = op_json(&format!("FROM busybox\n{v}"));
        assert!(
            seen.insert(json.clone()),
            "{v:?} has the same op as another: {json}"
        );
    }
    // A RUN without mounts keeps the JSON (and so the key) it had before mounts existed.
    let plain = op_json("FROM busybox\nRUN make\n");
    assert!(
        !plain.contains("mounts") && !plain.contains("security"),
        "{plain}"
    );
}

#[test]
fn names_mask_secret_env_and_show_the_stage() {
    let g = lower_src(
        "FROM busybox\nENV TOKEN=visible\nRUN --mount=type=secret,id=t,env=TOKEN echo $TOKEN $HOME\n",
    );
    let (v, _) = last_run(&g);
    // A mount is a source state in BuildKit, so even one stage shows its name.
    assert_eq!(
        v.name,
        "[stage-0 2/2] RUN --mount=type=secret,id=t,env=TOKEN echo **** $HOME"
    );
    let g = lower_src("FROM busybox\nRUN true\n");
    assert_eq!(last_run(&g).0.name, "[2/2] RUN true");
}

#[test]
fn onbuild_triggers_with_mounts() {
    let g = lower_with(
        "FROM base\nRUN true\n",
        &opts(),
        &["RUN --mount=type=cache,target=/root/.cache --mount=type=secret,id=s build"],
    )
    .expect("lowers");
    let run = g
        .vertices
        .iter()
        .find_map(|v| match &v.op {
            Op::Exec(e) if v.name.contains("ONBUILD") => Some(e),
            _ => None,
        })
        .expect("the trigger's RUN");
    assert_eq!(run.mounts.len(), 2);
    assert!(matches!(&run.mounts[0], Mount::Cache(c) if c.id == "/root/.cache"));
    // A trigger mounting a stage defined after this one is an error (an earlier stage,
    // even one the target does not otherwise need, is built: see lower_onbuild_from.rs).
    let errs = lower_with(
        "FROM base\nRUN true\nFROM busybox AS later\nCOPY --from=0 / /\n",
        &opts(),
        &["RUN --mount=from=later,target=/x true"],
    )
    .expect_err("fails");
    assert!(
        errs[0].contains("cannot mount from stage \"later\""),
        "{errs:?}"
    );
}

#[test]
fn no_cache_reruns_the_run_but_not_the_context_copy() {
    let o = BuildOptions {
        no_cache: true,
        ..opts()
    };
    let g = lower_with(
        "FROM busybox\nRUN --mount=target=/ctx <<EOF\n#!/bin/sh\nls /ctx\nEOF\n",
        &o,
        &[],
    )
    .expect("lowers");
    let (v, run) = last_run(&g);
    assert!(v.ignore_cache);
    // The script, then the context copy: both pure functions of their content.
    for m in &run.mounts {
        let Mount::Bind(b) = m else { panic!("{m:?}") };
        assert!(!vertex(&g, v.inputs[b.source]).ignore_cache, "{m:?}");
    }
}

#[test]
fn cache_source_without_from_is_a_subdir_of_the_cache() {
    let g = lower_src(
        "FROM busybox\nRUN --mount=type=cache,target=/c,source=a/./b/ \\\n  \
         --mount=type=cache,target=/d,id=d,source=../../x \\\n  \
         --mount=type=cache,target=/e,source=/ true\n",
    );
    let (_, e) = last_run(&g);
    let subdirs: Vec<Option<&str>> = e
        .mounts
        .iter()
        .map(|m| match m {
            Mount::Cache(c) => {
                assert!(c.from.is_none());
                c.subdir.as_deref()
            }
            other => panic!("not a cache mount: {other:?}"),
        })
        .collect();
    // Cleaned as BuildKit's path.Join("/", source): `..` cannot leave the cache; `/` is all.
    assert_eq!(subdirs, vec![Some("a/b"), Some("x"), None]);
}
