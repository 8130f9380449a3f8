//! `RUN --mount` in the solver, with a fake executor that records what it was handed: the
//! resolved mounts and the environment. No root, no sandbox (DESIGN invariant 3).

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::sync::Arc;

use rbuild_cache::Store;
use rbuild_graph::{
    BindMount, CacheMount, CacheSharing, ExecOp, Graph, ImageConfig, Mount, MountFrom, Op,
    SecretMount, SecurityMode, SshMount, TmpfsMount, Vertex, VertexId,
};
use rbuild_solver::events::Event;
use rbuild_solver::mounts::{MountError, Secret};
use rbuild_solver::ports::MountSource;
use rbuild_solver::{SolveError, Solver, VertexError};
use rbuild_test_support::fakes::{
    busybox_op, exec_op, first_dir, vertex, FakeExecutor, FakeImages, Run,
};
use rbuild_test_support::require_root;
use rbuild_types::Digest;

fn exec(args: &[&str], mounts: Vec<Mount>) -> Op {
    Op::Exec(ExecOp {
        platform: "linux/amd64".parse().expect("platform"),
        env: vec!["PATH=/bin".into()],
        mounts,
        security: SecurityMode::Sandbox,
        ..exec_op(args)
    })
}

fn image() -> Vertex {
    vertex(busybox_op(), &[], "FROM busybox")
}

fn cache(id: &str, sharing: CacheSharing) -> Mount {
    Mount::Cache(CacheMount {
        target: "/cache".into(),
        id: id.into(),
        sharing,
        from: None,
        subdir: None,
        readonly: false,
        mode: 0o755,
        uid: 0,
        gid: 0,
    })
}

fn secret(id: &str, env: Option<&str>, required: bool) -> Mount {
    Mount::Secret(SecretMount {
        id: id.into(),
        target: Some(format!("/run/secrets/{id}")),
        env: env.map(String::from),
        required,
        mode: 0o400,
        uid: 0,
        gid: 0,
    })
}

fn ssh(required: bool) -> Mount {
    Mount::Ssh(SshMount {
        id: "default".into(),
        target: "/run/buildkit/ssh_agent.0".into(),
        required,
        mode: 0o600,
        uid: 0,
        gid: 0,
    })
}

/// image → one RUN with `mounts`.
fn one_run(args: &[&str], mounts: Vec<Mount>) -> Graph {
    Graph {
        vertices: vec![image(), vertex(exec(args, mounts), &[0], "RUN")],
        target: VertexId(1),
        image: ImageConfig::default(),
    }
}

struct World {
    _dir: tempfile::TempDir,
    store: Arc<Store>,
    exec: Arc<FakeExecutor>,
}

#[derive(Default)]
struct Given {
    secrets: Vec<(&'static str, &'static str)>,
    ssh: Option<PathBuf>,
    insecure: bool,
    explain: bool,
    jobs: usize,
}

impl World {
    fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(&dir.path().join("store")).unwrap());
        World {
            _dir: dir,
            store,
            exec: Arc::new(FakeExecutor::default()),
        }
    }

    fn solve(
        &self,
        graph: Graph,
        given: &Given,
    ) -> (Result<rbuild_solver::VertexResult, SolveError>, Vec<Event>) {
        let images = Arc::new(
            FakeImages::new(Arc::clone(&self.store)).with_layer(|_, root| {
                std::fs::create_dir_all(root.join("seed/sub")).unwrap();
                std::fs::write(root.join("seed/sub/file"), "seeded").unwrap();
            }),
        );
        let solver = Solver::new(
            Arc::clone(&self.store),
            self.exec.clone(),
            images,
            Arc::new(rbuild_test_support::fakes::NoRemote),
            rbuild_test_support::privileges(),
        )
        .with_secrets(
            given
                .secrets
                .iter()
                .map(|(k, v)| (k.to_string(), Secret::new(v.as_bytes().to_vec()))),
        )
        .with_ssh(given.ssh.iter().map(|p| ("default".to_string(), p.clone())))
        .with_allow_insecure(given.insecure)
        .with_explain_cache(given.explain)
        .with_scope("mounts-test")
        .with_jobs(given.jobs.max(2));
        common::solve(solver, graph)
    }
}

fn mount_error(r: Result<rbuild_solver::VertexResult, SolveError>) -> (MountError, String) {
    let e = r.expect_err("the build should fail");
    let text = e.to_string();
    match e {
        SolveError::Vertex {
            source: VertexError::Mount(m),
            ..
        } => (m, text),
        other => panic!("not a mount error: {other:?}"),
    }
}

#[test]
fn bind_mounts_the_layers_of_another_stage() {
    let w = World::new();
    let graph = Graph {
        vertices: vec![
            image(),
            vertex(exec(&["write", "/built"], vec![]), &[0], "build"),
            vertex(
                exec(
                    &["record"],
                    vec![Mount::Bind(BindMount {
                        target: "/src".into(),
                        source: 1,
                        path: "/app".into(),
                        readwrite: false,
                    })],
                ),
                &[0, 1],
                "RUN --mount=type=bind,from=build",
            ),
        ],
        target: VertexId(2),
        image: ImageConfig::default(),
    };
    let (r, _) = w.solve(graph, &Given::default());
    r.unwrap();
    let runs = w.exec.runs();
    let run = runs.iter().find(|r| r.args == ["record"]).unwrap();
    assert_eq!(run.mounts.len(), 1);
    let m = &run.mounts[0];
    assert_eq!(m.target, "/src");
    assert!(m.readonly);
    let MountSource::Layers { layers, path } = &m.source else {
        panic!("not layers: {m:?}")
    };
    assert_eq!(path, "/app");
    assert_eq!(layers.len(), 2, "base + the build stage's RUN layer");
    assert!(layers[1].join("built").exists());
}

#[test]
fn cache_dir_survives_builds_and_no_cache_but_not_the_layer() {
    let w = World::new();
    let graph = || {
        one_run(
            &["cache-append", "log"],
            vec![cache("c", CacheSharing::Shared)],
        )
    };
    let (r1, _) = w.solve(graph(), &Given::default());
    let r1 = r1.unwrap();
    // --no-cache: the RUN runs again, and finds what the first build left.
    let mut again = graph();
    again.vertices[1].ignore_cache = true;
    let (r2, _) = w.solve(again, &Given::default());
    let r2 = r2.unwrap();
    assert_eq!(r1.key, r2.key, "cache-mount contents are not in the key");
    let runs = w.exec.runs();
    assert_eq!(runs.len(), 2);
    let dir = first_dir(&runs[0].mounts);
    assert_eq!(dir, first_dir(&runs[1].mounts));
    assert_eq!(
        std::fs::read_to_string(dir.join("log")).unwrap(),
        "run\nrun\n"
    );
    let top = w.store.snapshots().path(r2.layers.last().unwrap()).unwrap();
    assert_eq!(std::fs::read_dir(top).unwrap().count(), 0, "layer is empty");
    assert_eq!(w.store.cache_mounts().usage().unwrap().len(), 1);
}

#[test]
fn cache_from_seeds_a_new_dir() {
    let w = World::new();
    let mut m = cache("seeded", CacheSharing::Shared);
    if let Mount::Cache(c) = &mut m {
        c.from = Some(MountFrom {
            source: 1,
            path: "/seed".into(),
        });
    }
    let mut graph = one_run(&["record"], vec![m]);
    graph.vertices[1].inputs.push(VertexId(0)); // the base image, again, as the source
    let (r, _) = w.solve(graph, &Given::default());
    r.unwrap();
    let dir = first_dir(&w.exec.runs()[0].mounts);
    assert_eq!(
        std::fs::read_to_string(dir.join("sub/file")).unwrap(),
        "seeded"
    );
}

fn cache_sub(id: &str, subdir: &str) -> Mount {
    let mut m = cache(id, CacheSharing::Shared);
    if let Mount::Cache(c) = &mut m {
        c.subdir = Some(subdir.into());
        c.mode = 0o710;
        c.uid = 1234;
        c.gid = 99;
    }
    m
}

#[test]
fn cache_source_without_from_mounts_a_created_subdir() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let w = World::new();
    // Two mounts of one cache id: the whole cache and its `a/b` (created on first use).
    let mut whole = cache("sub", CacheSharing::Shared);
    if let Mount::Cache(c) = &mut whole {
        c.target = "/whole".into();
    }
    let graph = one_run(
        &["cache-append", "log"],
        vec![cache_sub("sub", "a/b"), whole],
    );
    let (r, _) = w.solve(graph, &Given::default());
    r.unwrap();
    let run = &w.exec.runs()[0];
    let (MountSource::Dir(sub), MountSource::Dir(top)) =
        (&run.mounts[0].source, &run.mounts[1].source)
    else {
        panic!("not dirs: {:?}", run.mounts);
    };
    assert_eq!(sub, &top.join("a/b"));
    assert_eq!(
        std::fs::read_to_string(top.join("a/b/log")).unwrap(),
        "run\n"
    );
    for d in [top.join("a"), top.join("a/b")] {
        let md = std::fs::metadata(&d).unwrap();
        if require_root("to check the owner") {
            assert_eq!((md.uid(), md.gid()), (1234, 99), "{}", d.display());
        }
        assert_eq!(md.permissions().mode() & 0o7777, 0o710, "{}", d.display());
    }
    // The sub-directory keeps what earlier runs left.
    let graph = one_run(
        &["cache-append", "log", "again"],
        vec![cache_sub("sub", "a/b")],
    );
    w.solve(graph, &Given::default()).0.unwrap();
    assert_eq!(
        std::fs::read_to_string(top.join("a/b/log")).unwrap(),
        "run\nrun\n"
    );
}

#[test]
fn cache_source_never_leaves_the_cache_dir() {
    let w = World::new();
    // A first RUN creates the cache; then a symlink in it points outside.
    w.solve(
        one_run(&["record"], vec![cache("esc", CacheSharing::Shared)]),
        &Given::default(),
    )
    .0
    .unwrap();
    let top = first_dir(&w.exec.runs()[0].mounts);
    let outside = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(outside.path(), top.join("link")).unwrap();
    std::fs::write(top.join("file"), "x").unwrap();
    for (sub, why) in [
        ("link/x", "symbolic link"),
        ("file", "not a directory"),
        ("../up", "not a clean relative path"),
    ] {
        let (e, text) = mount_error(
            w.solve(
                one_run(&["record", sub], vec![cache_sub("esc", sub)]),
                &Given::default(),
            )
            .0,
        );
        assert!(matches!(e, MountError::CacheSubdir { .. }), "{sub}: {e:?}");
        assert!(text.contains(why) && text.contains("esc"), "{sub}: {text}");
    }
    assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
}

/// Two RUNs (different keys) that both use one cache mount, joined by a third.
fn two_runs_sharing(a: &[&str], b: &[&str], sharing: CacheSharing) -> Graph {
    Graph {
        vertices: vec![
            image(),
            vertex(exec(a, vec![cache("s", sharing)]), &[0], "RUN a"),
            vertex(exec(b, vec![cache("s", sharing)]), &[0], "RUN b"),
            vertex(
                exec(
                    &["join"],
                    vec![Mount::Bind(BindMount {
                        target: "/b".into(),
                        source: 1,
                        path: "/".into(),
                        readwrite: false,
                    })],
                ),
                &[1, 2],
                "RUN join",
            ),
        ],
        target: VertexId(3),
        image: ImageConfig::default(),
    }
}

#[test]
fn locked_sharing_serialises_runs() {
    let w = World::new();
    let graph = two_runs_sharing(&["hold", "300"], &["hold", "301"], CacheSharing::Locked);
    let (r, _) = w.solve(graph, &Given::default());
    r.unwrap();
    let runs: Vec<Run> = w
        .exec
        .runs()
        .into_iter()
        .filter(|r| r.args[0] == "hold")
        .collect();
    assert_eq!(runs.len(), 2);
    let (x, y) = if runs[0].started <= runs[1].started {
        (&runs[0], &runs[1])
    } else {
        (&runs[1], &runs[0])
    };
    assert!(y.started >= x.ended, "locked runs overlapped");
}

#[test]
fn private_sharing_in_use_gets_its_own_dir() {
    let w = World::new();
    // Both RUNs wait for each other inside the executor: they hold the mount at once.
    let graph = two_runs_sharing(&["barrier", "1"], &["barrier", "2"], CacheSharing::Private);
    let (r, _) = w.solve(graph, &Given::default());
    r.unwrap();
    let dirs: Vec<PathBuf> = w
        .exec
        .runs()
        .iter()
        .filter(|r| r.args[0] == "barrier")
        .map(|r| first_dir(&r.mounts))
        .collect();
    assert_eq!(dirs.len(), 2);
    assert_ne!(dirs[0], dirs[1]);
    assert!(
        dirs.iter().any(|d| !d.exists()),
        "the throwaway directory is removed after its RUN"
    );
}

#[test]
fn one_run_mounting_a_locked_cache_twice_leases_it_once() {
    let w = World::new();
    let mut second = cache("twice", CacheSharing::Locked);
    if let Mount::Cache(c) = &mut second {
        c.target = "/other".into();
    }
    let graph = one_run(
        &["record"],
        vec![cache("twice", CacheSharing::Locked), second],
    );
    w.solve(graph, &Given::default()).0.unwrap();
    let run = &w.exec.runs()[0];
    assert_eq!(run.mounts.len(), 2);
    assert_eq!(run.mounts[0].source, run.mounts[1].source);
    assert_eq!(run.mounts[1].target, "/other");
}

#[test]
fn required_secret_missing_fails_naming_it() {
    let w = World::new();
    let graph = one_run(&["record"], vec![secret("npmrc", None, true)]);
    let (m, text) = mount_error(w.solve(graph, &Given::default()).0);
    assert!(matches!(m, MountError::SecretMissing { ref id } if id == "npmrc"));
    assert!(text.contains("npmrc"), "{text}");
    assert!(w.exec.runs().is_empty());
}

#[test]
fn optional_secret_missing_is_skipped() {
    let w = World::new();
    let graph = one_run(&["record"], vec![secret("npmrc", Some("NPM"), false)]);
    w.solve(graph, &Given::default()).0.unwrap();
    let run = &w.exec.runs()[0];
    assert!(run.mounts.is_empty());
    assert!(!run.env.iter().any(|e| e.starts_with("NPM=")));
}

#[test]
fn secret_reaches_the_run_but_not_keys_events_or_explain() {
    const VALUE: &str = "s3cr3t-v4lue";
    let w = World::new();
    let graph = || one_run(&["record"], vec![secret("tok", Some("TOKEN"), true)]);
    let given = Given {
        secrets: vec![("tok", VALUE)],
        explain: true,
        ..Given::default()
    };
    let (r1, events) = w.solve(graph(), &given);
    let r1 = r1.unwrap();
    let run = &w.exec.runs()[0];
    assert!(run.env.contains(&format!("TOKEN={VALUE}")));
    let m = &run.mounts[0];
    assert_eq!(m.target, "/run/secrets/tok");
    assert!(m.readonly);
    let MountSource::File(secret) = &m.source else {
        panic!("not a file: {m:?}")
    };
    assert_eq!(
        (secret.data.as_slice(), secret.mode),
        (VALUE.as_bytes(), 0o400)
    );
    assert!(!format!("{m:?}").contains(VALUE), "Debug shows the secret");
    assert!(
        !format!("{events:?}").contains(VALUE),
        "events show the secret"
    );

    // Another value: same key, so the step is cached; the explain record never held it.
    let given2 = Given {
        secrets: vec![("tok", "other")],
        explain: true,
        ..Given::default()
    };
    let mut changed = graph();
    changed.vertices[1].ignore_cache = true;
    let (r2, events) = w.solve(changed, &given2);
    assert_eq!(r1.key, r2.unwrap().key);
    assert!(!format!("{events:?}").contains(VALUE));
    let (r3, events) = w.solve(graph(), &given2);
    r3.unwrap();
    assert!(events
        .iter()
        .any(|e| matches!(e, Event::Cached { name, .. } if name == "RUN")));
    let root = w.store.root().to_path_buf();
    assert!(
        !tree_contains(&root, VALUE.as_bytes()),
        "the store holds the secret"
    );
}

#[test]
fn proxy_build_args_reach_the_run_but_not_the_key() {
    const VALUE: &str = "http://user:pa55@proxy.example:3128";
    let w = World::new();
    let graph = |proxy: &str, env: &[&str]| {
        let mut g = one_run(&["record"], vec![secret("tok", Some("http_proxy"), false)]);
        if let Op::Exec(e) = &mut g.vertices[1].op {
            e.proxy_env = rbuild_graph::ProxyEnv::from_build_args([("HTTP_PROXY", proxy)]);
            e.env.extend(env.iter().map(|s| s.to_string()));
        }
        g
    };
    let given = Given {
        explain: true,
        ..Given::default()
    };
    let (r1, events) = w.solve(graph(VALUE, &["http_proxy=from-env"]), &given);
    let r1 = r1.unwrap();
    let run = &w.exec.runs()[0];
    // Both spellings; the proxy replaces the same name from ENV (as runc's last-wins env).
    assert!(run.env.contains(&format!("HTTP_PROXY={VALUE}")), "{run:?}");
    assert!(run.env.contains(&format!("http_proxy={VALUE}")), "{run:?}");
    assert!(
        !run.env.iter().any(|e| e == "http_proxy=from-env"),
        "{run:?}"
    );
    assert!(
        !format!("{events:?}").contains(VALUE),
        "events show the proxy"
    );

    // Another proxy: same key, so the step is cached.
    let (r2, _) = w.solve(
        graph("http://elsewhere:8080", &["http_proxy=from-env"]),
        &given,
    );
    assert_eq!(r1.key, r2.unwrap().key);
    assert_eq!(w.exec.runs().len(), 1, "a changed proxy reran the step");
    assert!(
        !tree_contains(w.store.root(), VALUE.as_bytes()),
        "the store holds the proxy"
    );

    // A secret's env wins over the proxy of the same name.
    let w = World::new();
    let given = Given {
        secrets: vec![("tok", "from-secret")],
        ..Given::default()
    };
    w.solve(graph(VALUE, &[]), &given).0.unwrap();
    let run = &w.exec.runs()[0];
    assert!(
        run.env.contains(&"http_proxy=from-secret".to_string()),
        "{run:?}"
    );
    assert!(run.env.contains(&format!("HTTP_PROXY={VALUE}")), "{run:?}");
}

fn tree_contains(dir: &std::path::Path, needle: &[u8]) -> bool {
    std::fs::read_dir(dir).unwrap().flatten().any(|e| {
        let p = e.path();
        let ft = e.file_type().unwrap();
        if ft.is_dir() {
            tree_contains(&p, needle)
        } else if ft.is_file() {
            std::fs::read(&p)
                .map(|b| b.windows(needle.len()).any(|w| w == needle))
                .unwrap_or(false)
        } else {
            false
        }
    })
}

#[test]
fn ssh_missing_required_fails_optional_skips() {
    let w = World::new();
    let (m, _) = mount_error(
        w.solve(one_run(&["record"], vec![ssh(true)]), &Given::default())
            .0,
    );
    assert!(matches!(m, MountError::SshMissing { ref id } if id == "default"));
    w.solve(
        one_run(&["record", "2"], vec![ssh(false)]),
        &Given::default(),
    )
    .0
    .unwrap();
    let run = &w.exec.runs()[0];
    assert!(run.mounts.is_empty());
    assert!(!run.env.iter().any(|e| e.starts_with("SSH_AUTH_SOCK=")));
}

#[test]
fn ssh_agent_is_reachable_through_the_proxy() {
    let w = World::new();
    let agent_dir = tempfile::tempdir().unwrap();
    let agent = agent_dir.path().join("agent.sock");
    let listener = UnixListener::bind(&agent).unwrap();
    let echo = std::thread::spawn(move || {
        let (mut c, _) = listener.accept().unwrap();
        let mut buf = [0u8; 4];
        c.read_exact(&mut buf).unwrap();
        c.write_all(&buf).unwrap();
    });
    let given = Given {
        ssh: Some(agent.clone()),
        ..Given::default()
    };
    w.solve(one_run(&["ssh-echo"], vec![ssh(true)]), &given)
        .0
        .unwrap();
    echo.join().unwrap();
    let run = &w.exec.runs()[0];
    assert!(run
        .env
        .contains(&"SSH_AUTH_SOCK=/run/buildkit/ssh_agent.0".to_string()));
    let MountSource::Socket(proxy) = &run.mounts[0].source else {
        panic!("not a socket")
    };
    assert_ne!(proxy, &agent, "a proxy, not the agent itself");
    assert!(!proxy.exists(), "the proxy is torn down after the RUN");
}

#[test]
fn tmpfs_resolves_to_tmpfs() {
    let w = World::new();
    let m = Mount::Tmpfs(TmpfsMount {
        target: "/tmp".into(),
        size: Some(1 << 20),
    });
    w.solve(one_run(&["record"], vec![m]), &Given::default())
        .0
        .unwrap();
    let run = &w.exec.runs()[0];
    assert_eq!(
        run.mounts[0].source,
        MountSource::Tmpfs {
            size: Some(1 << 20)
        }
    );
}

#[test]
fn insecure_needs_the_entitlement() {
    let w = World::new();
    let mut graph = one_run(&["record"], vec![]);
    if let Op::Exec(e) = &mut graph.vertices[1].op {
        e.security = SecurityMode::Insecure;
    }
    let (m, text) = mount_error(w.solve(graph.clone(), &Given::default()).0);
    assert!(matches!(m, MountError::InsecureNotAllowed));
    assert!(text.contains("security.insecure"), "{text}");
    assert!(w.exec.runs().is_empty());
    let given = Given {
        insecure: true,
        ..Given::default()
    };
    w.solve(graph, &given).0.unwrap();
    assert_eq!(w.exec.runs().len(), 1);
}

#[test]
fn mount_specs_are_in_the_key_and_pinned() {
    use rbuild_solver::keys::{vertex_key, KeyInputs};
    let inputs = KeyInputs {
        input_keys: vec![Some(Digest::of(b"parent"))],
        ..KeyInputs::default()
    };
    let plain = vertex_key(&exec(&["x"], vec![]), &inputs);
    let with_cache = vertex_key(
        &exec(&["x"], vec![cache("a", CacheSharing::Shared)]),
        &inputs,
    );
    let other_cache = vertex_key(
        &exec(&["x"], vec![cache("b", CacheSharing::Shared)]),
        &inputs,
    );
    assert_ne!(plain, with_cache);
    assert_ne!(with_cache, other_cache);
    // Pinned: a change to how mounts enter keys must be deliberate (bump KEY_VERSION).
    assert_eq!(
        with_cache.to_string(),
        "sha256:c6452ced34cf648cea5929cfa6e60d6b7d005de89e4af0a7527144277d6f69a8"
    );
}
