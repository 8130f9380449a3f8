//! The build flags that shape every RUN (`--add-host`, `--ulimit`, `--shm-size`, and the cgroup
//! limits `--memory`, `--cpu-quota`, `--cgroup-parent`), the ones
//! accepted for BuildKit compatibility (`--load`, `--rm`, `--force-rm`), and what an unknown
//! flag is told.

mod support;

use support::{can_build_runs, s, stderr, stdout, step_cached, Env};

#[test]
fn an_unknown_flag_is_pointed_at_the_close_one() {
    let env = Env::new();
    let ctx = env.context("ctx", &[("Dockerfile", "FROM scratch\n")]);
    let out = env.run(&["build", "--tagg", "x", s(&ctx)]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("a similar argument exists: '--tag'"),
        "{}",
        stderr(&out)
    );
    // Nothing close: no tip to pass it as a value (`-- --frobnicate`), only the usage.
    let out = env.run(&["--frobnicate", s(&ctx)]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("unexpected argument '--frobnicate'"), "{err}");
    assert!(!err.contains("-- --frobnicate"), "{err}");
    assert!(err.contains("Usage: rbuild build"), "{err}");
}

#[test]
fn malformed_run_flags_are_usage_errors() {
    let env = Env::new();
    let ctx = env.context("ctx", &[("Dockerfile", "FROM scratch\n")]);
    for (flag, value) in [
        ("--add-host", "nohost"),
        ("--add-host", "db:not-an-ip"),
        ("--ulimit", "files=1"),
        ("--ulimit", "nofile=2:1"),
        ("--shm-size", "lots"),
        ("--memory", "1k"),
        ("--cpu-quota", "5"),
        ("--cgroup-parent", "../x"),
    ] {
        let out = env.run(&["build", flag, value, s(&ctx)]);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{flag} {value}: {}",
            stderr(&out)
        );
        assert!(stderr(&out).contains(flag), "{}", stderr(&out));
    }
}

#[test]
fn load_rm_and_force_rm_are_accepted() {
    if !can_build_runs() {
        return;
    }
    let env = Env::new();
    let ctx = env.context(
        "ctx",
        &[("Dockerfile", "FROM scratch\nCOPY a /a\n"), ("a", "a")],
    );
    env.ok(&[
        "build",
        "-q",
        "--load",
        "--rm",
        "--force-rm=true",
        "-t",
        "loaded:1",
        s(&ctx),
    ]);
    env.ok(&["build", "-q", "--rm=false", "-t", "kept:1", s(&ctx)]);
    // With -o, --load also puts the image in the store (buildx: also load it into docker).
    let layout = env.path("layout");
    let dest = format!("type=oci,dest={},tar=false", s(&layout));
    env.ok(&[
        "build",
        "-q",
        "--load",
        "-o",
        &dest,
        "-t",
        "both:1",
        s(&ctx),
    ]);
    assert!(layout.join("index.json").is_file());
    let images = stdout(&env.ok(&["images"]));
    for name in ["loaded", "kept", "both"] {
        assert!(images.contains(name), "{name}: {images}");
    }
}

#[test]
fn add_host_ulimit_and_shm_size_reach_run() {
    let Some(env) = Env::with_busybox() else {
        return;
    };
    let ctx = env.context(
        "ctx",
        &[(
            "Dockerfile",
            "FROM busybox\nRUN cat /etc/hosts > /hosts && ulimit -Sn > /nofile && \
             ulimit -Hn >> /nofile && ulimit -c > /core && grep ' /dev/shm ' /proc/mounts > /shm\n",
        )],
    );
    let build = |name: &str, flags: &[&str]| {
        let out = env.path(name);
        let dest = format!("type=local,dest={}", s(&out));
        let mut args = vec!["build", "--progress=plain", "-o", &dest];
        args.extend_from_slice(flags);
        args.push(s(&ctx));
        let progress = stderr(&env.ok(&args));
        let read = |f: &str| std::fs::read_to_string(out.join(f)).expect(f);
        (
            read("hosts"),
            read("nofile"),
            read("core"),
            read("shm"),
            progress,
        )
    };
    let flags = [
        "--add-host",
        "db:10.0.0.2",
        "--add-host",
        "v6=::1",
        "--ulimit",
        "nofile=512:512",
        "--ulimit",
        "core=0",
        "--shm-size",
        "128m",
    ];
    let (hosts, nofile, core, shm, _) = build("with", &flags);
    assert!(
        hosts.starts_with("127.0.0.1\tlocalhost buildkitsandbox\n"),
        "{hosts}"
    );
    assert!(hosts.ends_with("10.0.0.2\tdb\n::1\tv6\n"), "{hosts}");
    assert_eq!(nofile, "512\n512\n");
    assert_eq!(core, "0\n");
    assert!(shm.contains("size=131072k"), "{shm}");

    // Without the flags: BuildKit's hosts file and docker's 64m /dev/shm.
    let (hosts, nofile, _, shm, progress) = build("without", &[]);
    assert!(!hosts.contains("\tdb"), "{hosts}");
    assert_ne!(nofile, "512\n512\n");
    assert!(shm.contains("size=65536k"), "{shm}");
    assert!(!step_cached(&progress, "RUN cat"), "{progress}");

    // In the key, as BuildKit's Meta: the same flags are cached, another IP runs again.
    let (_, _, _, _, progress) = build("again", &flags);
    assert!(step_cached(&progress, "RUN cat"), "{progress}");
    let mut other = flags;
    other[1] = "db:10.0.0.3";
    let (hosts, _, _, _, progress) = build("other", &other);
    assert!(hosts.contains("10.0.0.3\tdb\n"), "{hosts}");
    assert!(!step_cached(&progress, "RUN cat"), "{progress}");

    // runc gets the same spec.
    if support::require_tool("runc").is_some() {
        let mut with_runc = flags.to_vec();
        with_runc.extend_from_slice(&["--runtime", "runc", "--no-cache"]);
        let (hosts, nofile, core, shm, _) = build("runc", &with_runc);
        assert!(hosts.ends_with("10.0.0.2\tdb\n::1\tv6\n"), "{hosts}");
        assert_eq!((nofile.as_str(), core.as_str()), ("512\n512\n", "0\n"));
        assert!(shm.contains("size=131072k"), "{shm}");
    }
}

#[test]
fn annotations_go_on_the_manifest_and_the_index() {
    if !can_build_runs() {
        return;
    }
    use support::{json_file, layout_blob, oci_manifest, require_tool};
    let env = Env::new();
    let ctx = env.context(
        "ctx",
        &[("Dockerfile", "FROM scratch\nCOPY a /a\n"), ("a", "a")],
    );
    let flags = [
        "--annotation",
        "org.opencontainers.image.title=App",
        "--annotation",
        "manifest:org.opencontainers.image.url=https://example.com/a?b=c",
        "--annotation",
        "index:org.opencontainers.image.vendor=Example",
    ];
    // One platform: the manifest has the manifest annotations (there is no index).
    let layout = env.build_oci("one", &flags, &ctx);
    let manifest = oci_manifest(&layout);
    let ann = &manifest["annotations"];
    assert_eq!(ann["org.opencontainers.image.title"], "App", "{manifest}");
    assert_eq!(
        ann["org.opencontainers.image.url"],
        "https://example.com/a?b=c"
    );
    assert!(
        ann.get("org.opencontainers.image.vendor").is_none(),
        "{manifest}"
    );
    if let Some(skopeo) = require_tool("skopeo") {
        let out = std::process::Command::new(skopeo)
            .args(["inspect", "--raw"])
            .arg(format!("oci:{}", s(&layout)))
            .output()
            .expect("run skopeo");
        assert!(out.status.success(), "{}", stderr(&out));
        let raw: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
        assert_eq!(raw["annotations"]["org.opencontainers.image.title"], "App");
    }

    // Two platforms: the index has the index annotations, each image the manifest ones.
    let mut two = vec!["--platform", "linux/amd64,linux/arm64"];
    two.extend_from_slice(&flags);
    let layout = env.build_oci("two", &two, &ctx);
    let index = oci_manifest(&layout);
    assert_eq!(
        index["annotations"]["org.opencontainers.image.vendor"], "Example",
        "{index}"
    );
    assert!(index["annotations"]
        .get("org.opencontainers.image.title")
        .is_none());
    let children = index["manifests"].as_array().expect("manifests");
    assert_eq!(children.len(), 2);
    for child in children {
        let m = json_file(&layout_blob(
            &layout,
            child["digest"].as_str().expect("digest"),
        ));
        assert_eq!(
            m["annotations"]["org.opencontainers.image.title"], "App",
            "{m}"
        );
    }

    let out = env.run(&["build", "--annotation", "manifest-descriptor:k=v", s(&ctx)]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--annotation"), "{}", stderr(&out));
}

#[test]
fn progress_rawjson_is_buildkits_solve_status_stream() {
    let Some(env) = Env::with_busybox() else {
        return;
    };
    let ctx = env.context(
        "ctx",
        &[("Dockerfile", "FROM busybox\nRUN echo hello-raw\n")],
    );
    let err = stderr(&env.ok(&["build", "--progress=rawjson", s(&ctx)]));
    let objects: Vec<serde_json::Value> = err
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let vertexes: Vec<&serde_json::Value> = objects
        .iter()
        .filter_map(|o| o["vertexes"].as_array())
        .flatten()
        .collect();
    let run_done = vertexes
        .iter()
        .find(|v| {
            v["name"]
                .as_str()
                .is_some_and(|n| n.contains("RUN echo hello-raw"))
                && v["completed"].is_string()
        })
        .unwrap_or_else(|| panic!("no completed RUN vertex: {err}"));
    assert!(run_done["started"]
        .as_str()
        .is_some_and(|t| t.ends_with('Z')));
    assert!(vertexes
        .iter()
        .any(|v| v["name"].as_str() == Some("[internal] load build definition from Dockerfile")));
    use base64::Engine as _;
    let logged = objects
        .iter()
        .filter_map(|o| o["logs"].as_array())
        .flatten()
        .filter(|l| l["vertex"] == run_done["digest"])
        .map(|l| {
            base64::engine::general_purpose::STANDARD
                .decode(l["data"].as_str().expect("data"))
                .expect("base64")
        })
        .collect::<Vec<_>>()
        .concat();
    assert_eq!(String::from_utf8_lossy(&logged), "hello-raw\n");
}

#[test]
fn memory_cpu_quota_and_cgroup_parent_put_each_run_in_a_limited_cgroup() {
    let Some(env) = Env::with_busybox() else {
        return;
    };
    // A RUN that touches 100 MB: fine without a limit, killed by the kernel under 32m.
    let hungry = env.context(
        "hungry",
        &[(
            "Dockerfile",
            "FROM busybox\nRUN dd if=/dev/zero of=/dev/null bs=100M count=1\n",
        )],
    );
    env.ok(&["build", "-q", "--no-cache", s(&hungry)]);
    let out = env.run(&["build", "-q", "--no-cache", "--memory", "32m", s(&hungry)]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("out of memory (the --memory limit is 33554432 bytes)"),
        "killed, and said why: {}",
        stderr(&out)
    );

    // Where the run is: its own cgroup under the parent, in the hierarchies limited.
    let ctx = env.context(
        "where",
        &[(
            "Dockerfile",
            "FROM busybox\nRUN cat /proc/self/cgroup > /cgroup\n",
        )],
    );
    let cgroup_of = |name: &str, flags: &[&str]| {
        let out = env.path(name);
        let dest = format!("type=local,dest={}", s(&out));
        let mut args = vec!["build", "-q", "--no-cache", "-o", &dest];
        args.extend_from_slice(flags);
        args.push(s(&ctx));
        env.ok(&args);
        std::fs::read_to_string(out.join("cgroup")).expect("cgroup")
    };
    let limited = cgroup_of("cpu", &["--cpu-quota", "50000", "--memory", "256m"]);
    let unified = std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
        && std::fs::read_to_string("/sys/fs/cgroup/cgroup.controllers")
            .is_ok_and(|c| c.contains("memory") && c.contains("cpu"));
    if unified {
        assert!(limited.contains("0::/rbuild/rbuild-"), "{limited}");
    } else {
        let line = |ctl: &str| {
            limited
                .lines()
                .find(|l| {
                    l.split(':')
                        .nth(1)
                        .is_some_and(|c| c.split(',').any(|x| x == ctl))
                })
                .unwrap_or_default()
                .to_string()
        };
        assert!(line("cpu").contains(":/rbuild/rbuild-"), "{limited}");
        assert!(line("memory").contains(":/rbuild/rbuild-"), "{limited}");
    }
    let parented = cgroup_of("parent", &["--cgroup-parent", "rbuild-it-parent"]);
    assert!(parented.contains("/rbuild-it-parent/rbuild-"), "{parented}");
    let unlimited = cgroup_of("none", &[]);
    assert!(
        !unlimited.contains("rbuild-"),
        "no cgroup without limits: {unlimited}"
    );

    // Each run's cgroup is gone after it (the parent stays, as docker's).
    let leftovers: Vec<_> = [
        "memory/rbuild",
        "cpu/rbuild",
        "pids/rbuild-it-parent",
        "rbuild",
    ]
    .iter()
    .filter_map(|d| std::fs::read_dir(std::path::Path::new("/sys/fs/cgroup").join(d)).ok())
    .flatten()
    .filter_map(|e| e.ok())
    .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
    .filter(|e| e.file_name().to_string_lossy().starts_with("rbuild-"))
    .map(|e| e.path())
    .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let _ = std::fs::remove_dir("/sys/fs/cgroup/pids/rbuild-it-parent");
    let _ = std::fs::remove_dir("/sys/fs/cgroup/rbuild-it-parent");

    // The same limits through runc, which applies the spec's resources itself.
    if support::require_tool("runc").is_some() {
        let out = env.run(&[
            "build",
            "-q",
            "--no-cache",
            "--runtime",
            "runc",
            "--memory",
            "32m",
            s(&hungry),
        ]);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    }
}
