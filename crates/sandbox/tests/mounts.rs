//! `RUN --mount`s and `--security=insecure`, run for real (needs root) with the built-in
//! executor (both snapshotters) and with runc: every mount appears at its target, read-only
//! ones refuse writes, writes under a mount never reach the layer, and neither do the mount
//! points the setup had to create.

mod common;

use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{
    can_run, explain, fixture, init_exe, ok, runc_executor, setup_error, tree, wait_for, Fixture,
    Run,
};
use rbuild_graph::{ExecOp, SecurityMode};
use rbuild_ports::{ExecError, Executor, MountSource, ResolvedMount, SecretFile};
use rbuild_sandbox::{detect_privileges, NamespaceExecutor, Snapshotter};

fn builtin() -> NamespaceExecutor {
    NamespaceExecutor::new(init_exe(), detect_privileges()).with_snapshotter(Snapshotter::Overlay)
}

fn copy_snapshotter() -> NamespaceExecutor {
    NamespaceExecutor::new(init_exe(), detect_privileges()).with_snapshotter(Snapshotter::Copy)
}

/// Runs `body` on the built-in executor, when the sandbox can run here.
fn on_builtin(body: fn(&dyn Executor)) {
    if can_run() {
        body(&builtin());
    }
}

/// Runs `body` on runc, when the sandbox can run here and runc is installed.
fn on_runc(body: fn(&dyn Executor)) {
    if let Some(exec) = runc_executor() {
        body(&exec);
    }
}

fn sh(script: &str, user: &str, security: SecurityMode) -> ExecOp {
    ExecOp {
        platform: rbuild_types::Platform::host(),
        user: user.into(),
        security,
        ..common::sh(script)
    }
}

fn run(f: &Fixture, exec: &dyn Executor, script: &str, mounts: &[ResolvedMount]) -> Run {
    f.run_mounted(exec, &sh(script, "", SecurityMode::Sandbox), mounts)
}

fn mnt(target: &str, readonly: bool, source: MountSource) -> ResolvedMount {
    ResolvedMount {
        target: target.into(),
        readonly,
        source,
    }
}

/// Two layers in overlayfs upper-dir format: the bottom one has `data/a.txt` and
/// `data/gone`, the top one `data/b.txt` and a whiteout of `data/gone`.
fn two_layers(f: &Fixture) -> Vec<PathBuf> {
    let bottom = f.dir.path().join("m-bottom");
    let top = f.dir.path().join("m-top");
    std::fs::create_dir_all(bottom.join("data")).expect("mkdir");
    std::fs::create_dir_all(top.join("data")).expect("mkdir");
    std::fs::write(bottom.join("data/a.txt"), "A\n").expect("write");
    std::fs::write(bottom.join("data/gone"), "gone\n").expect("write");
    std::fs::write(top.join("data/b.txt"), "B\n").expect("write");
    nix::sys::stat::mknod(
        &top.join("data/gone"),
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::empty(),
        0,
    )
    .expect("whiteout");
    vec![bottom, top]
}

fn layers_ro_and_rw(exec: &dyn Executor) {
    let f = Fixture::new();
    let layers = two_layers(&f);
    let before: Vec<Vec<String>> = layers.iter().map(|l| tree(l)).collect();
    let view = |path: &str, layers: Vec<PathBuf>| MountSource::Layers {
        layers,
        path: path.into(),
    };
    let mounts = [
        mnt("/src", true, view("/", layers.clone())),
        mnt("/w", false, view("/data", layers.clone())),
        mnt("/one", true, view("/data", layers[..1].to_vec())),
        mnt("/zero", true, view("/", Vec::new())),
        mnt("/zerow", false, view("/", Vec::new())),
    ];
    let script = "cat /src/data/a.txt /src/data/b.txt; test -e /src/data/gone && exit 3; \
         { touch /src/x 2>&1 | grep -q 'Read-only file system' || exit 4; }; echo new > /w/new && rm /w/a.txt && ls /w; \
         cat /one/gone; ls -A /zero | wc -l; touch /zero/x 2>/dev/null && exit 5; \
         echo z > /zerow/z && cat /zerow/z";
    let log = ok(run(&f, exec, script, &mounts));
    assert_eq!(log.stdout(), "A\nB\nb.txt\nnew\ngone\n0\nz\n");
    assert_eq!(f.upper_entries(), Vec::<String>::new());
    let after: Vec<Vec<String>> = layers.iter().map(|l| tree(l)).collect();
    assert_eq!(before, after, "the mounted layers must never change");
    // The next run sees none of the writable view's writes.
    let log = ok(run(&f, exec, "ls /w", &mounts[1..2]));
    assert_eq!(log.stdout(), "a.txt\nb.txt\n");
}

#[test]
fn layers_read_only_and_writable() {
    on_builtin(layers_ro_and_rw);
}

#[test]
fn layers_read_only_and_writable_with_copy_snapshotter() {
    if can_run() {
        layers_ro_and_rw(&copy_snapshotter());
    }
}

#[test]
fn runc_layers_read_only_and_writable() {
    on_runc(layers_ro_and_rw);
}

fn nested(exec: &dyn Executor) {
    let f = Fixture::new();
    let layers = two_layers(&f);
    let cache = tempfile::tempdir().expect("tempdir");
    let mounts = [
        // Given child first: the executor mounts parents first.
        mnt("/n/data/t", false, MountSource::Tmpfs { size: None }),
        mnt("/n/c", false, MountSource::Dir(cache.path().to_path_buf())),
        mnt(
            "/n",
            true,
            MountSource::Layers {
                layers,
                path: "/".into(),
            },
        ),
    ];
    let script = "cat /n/data/a.txt; echo t > /n/data/t/f && cat /n/data/t/f; \
         echo c > /n/c/f; touch /n/x 2>/dev/null && exit 3; exit 0";
    let log = ok(run(&f, exec, script, &mounts));
    assert_eq!(log.stdout(), "A\nt\n");
    assert_eq!(
        std::fs::read_to_string(cache.path().join("f")).expect("f"),
        "c\n"
    );
    assert_eq!(f.upper_entries(), Vec::<String>::new());
}

#[test]
fn nested_mounts_parents_first() {
    on_builtin(nested);
}

#[test]
fn runc_nested_mounts_parents_first() {
    on_runc(nested);
}

const SECRET: &[u8] = b"s3cr3t-value-7781";

fn secret(exec: &dyn Executor) {
    let f = Fixture::new();
    let mounts = [mnt(
        "/run/secrets/token",
        true,
        MountSource::File(SecretFile {
            data: SECRET.to_vec(),
            mode: 0o400,
            uid: 1000,
            gid: 1000,
        }),
    )];
    let op = sh(
        "cat /run/secrets/token; echo; stat -c '%a %u %g' /run/secrets/token",
        "alice",
        SecurityMode::Sandbox,
    );
    let log = ok(f.run_mounted(exec, &op, &mounts));
    assert_eq!(
        log.stdout(),
        format!("{}\n400 1000 1000\n", String::from_utf8_lossy(SECRET))
    );
    // Root cannot write it either: the bind is read-only.
    ok(run(
        &f,
        exec,
        "( echo x > /run/secrets/token ) 2>&1 | grep -q 'Read-only file system' || exit 3",
        &mounts,
    ));
    assert_eq!(f.upper_entries(), Vec::<String>::new());
}

#[test]
fn secret_file_mode_owner_and_no_trace() {
    on_builtin(secret);
}

#[test]
fn runc_secret_file_mode_owner_and_no_trace() {
    on_runc(secret);
}

/// Whether any regular file under `dir` (not following symlinks) contains `needle`.
fn any_file_contains(dir: &Path, needle: &[u8]) -> Option<PathBuf> {
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        let Ok(ft) = entry.file_type() else { continue };
        if ft.is_dir() {
            if let Some(hit) = any_file_contains(&path, needle) {
                return Some(hit);
            }
        } else if ft.is_file() {
            let data = std::fs::read(&path).unwrap_or_default();
            if data.windows(needle.len()).any(|w| w == needle) {
                return Some(path);
            }
        }
    }
    None
}

fn secret_invisible_on_the_host(exec: &dyn Executor) {
    let f = Fixture::new();
    let signal = tempfile::tempdir().expect("tempdir");
    let mounts = [
        mnt(
            "/run/secrets/token",
            true,
            MountSource::File(SecretFile {
                data: SECRET.to_vec(),
                mode: 0o400,
                uid: 0,
                gid: 0,
            }),
        ),
        mnt("/signal", false, MountSource::Dir(signal.path().into())),
    ];
    let started = signal.path().join("started");
    std::thread::scope(|s| {
        let run = s.spawn(|| {
            run(
                &f,
                exec,
                "cat /run/secrets/token > /dev/null && touch /signal/started && sleep 2",
                &mounts,
            )
        });
        wait_for(20, || started.exists() || run.is_finished());
        assert!(started.exists(), "the command did not start");
        // While the secret is mounted: nothing the host can see holds it.
        let pid = std::process::id();
        let mut roots = vec![f.dir.path().to_path_buf()];
        for parent in [PathBuf::from("/dev/shm"), std::env::temp_dir()] {
            for entry in std::fs::read_dir(&parent).into_iter().flatten().flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with(&format!("rbuild-sandbox-{pid}-")) {
                    roots.push(entry.path());
                }
            }
        }
        assert!(roots.len() > 1, "no scratch dir found: {roots:?}");
        for root in &roots {
            assert_eq!(any_file_contains(root, SECRET), None, "under {root:?}");
        }
        ok(run.join().expect("run"));
    });
    assert_eq!(f.upper_entries(), Vec::<String>::new());
}

#[test]
fn secret_is_invisible_on_the_host_during_the_run() {
    on_builtin(secret_invisible_on_the_host);
}

#[test]
fn runc_secret_is_invisible_on_the_host_during_the_run() {
    on_runc(secret_invisible_on_the_host);
}

fn tmpfs(exec: &dyn Executor) {
    let f = Fixture::new();
    let mounts = [
        mnt("/t", false, MountSource::Tmpfs { size: None }),
        mnt(
            "/small",
            false,
            MountSource::Tmpfs {
                size: Some(1 << 20),
            },
        ),
        mnt("/rot", true, MountSource::Tmpfs { size: None }),
        // An existing target gives the tmpfs its mode (as runc, hence BuildKit, does).
        mnt("/bin/sub", false, MountSource::Tmpfs { size: None }),
    ];
    std::fs::create_dir(f.layers[0].join("bin/sub")).expect("mkdir");
    std::fs::set_permissions(
        f.layers[0].join("bin/sub"),
        std::os::unix::fs::PermissionsExt::from_mode(0o750),
    )
    .expect("chmod");
    let script =
        "stat -c %a /bin/sub; ls -A /t | wc -l; stat -c %a /t; echo hi > /t/f && cat /t/f; \
         grep ' /small ' /proc/mounts | grep -o 'size=[0-9a-z]*'; \
         grep ' /t ' /proc/mounts | grep -o nosuid; touch /rot/x 2>/dev/null && exit 3; exit 0";
    let log = ok(run(&f, exec, script, &mounts));
    assert_eq!(log.stdout(), "750\n0\n1777\nhi\nsize=1024k\nnosuid\n");
    assert_eq!(f.upper_entries(), Vec::<String>::new());
}

#[test]
fn tmpfs_is_empty_writable_and_not_in_the_layer() {
    on_builtin(tmpfs);
}

#[test]
fn runc_tmpfs_is_empty_writable_and_not_in_the_layer() {
    on_runc(tmpfs);
}

fn cache_dir(exec: &dyn Executor) {
    let f = Fixture::new();
    let cache = tempfile::tempdir().expect("tempdir");
    std::fs::write(cache.path().join("pre"), "pre\n").expect("write");
    let mounts = [
        mnt("/root/.cache", false, MountSource::Dir(cache.path().into())),
        mnt("/ro-cache", true, MountSource::Dir(cache.path().into())),
    ];
    let script = "cat /root/.cache/pre; echo new > /root/.cache/new; \
         cat /ro-cache/new; touch /ro-cache/x 2>/dev/null && exit 3; exit 0";
    let log = ok(run(&f, exec, script, &mounts));
    assert_eq!(log.stdout(), "pre\nnew\n");
    assert_eq!(
        std::fs::read_to_string(cache.path().join("new")).expect("new"),
        "new\n"
    );
    assert!(!cache.path().join("x").exists());
    assert_eq!(f.upper_entries(), Vec::<String>::new());
}

#[test]
fn cache_dir_keeps_writes_on_the_host() {
    on_builtin(cache_dir);
}

#[test]
fn runc_cache_dir_keeps_writes_on_the_host() {
    on_runc(cache_dir);
}

/// A host Unix stream listener that echoes what it reads, and returns it.
fn echo_server(path: &Path) -> std::thread::JoinHandle<Vec<u8>> {
    let listener = std::os::unix::net::UnixListener::bind(path).expect("bind socket");
    listener.set_nonblocking(true).expect("nonblocking");
    std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            match listener.accept() {
                Ok((mut conn, _)) => {
                    conn.set_nonblocking(false).expect("blocking");
                    conn.set_read_timeout(Some(Duration::from_secs(5)))
                        .expect("timeout");
                    let mut buf = vec![0u8; 4096];
                    let n = conn.read(&mut buf).unwrap_or(0);
                    buf.truncate(n);
                    let _ = conn.write_all(&buf);
                    return buf;
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        Vec::new()
    })
}

fn socket(exec: &dyn Executor) {
    let f = Fixture::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let sock = dir.path().join("agent.sock");
    let server = echo_server(&sock);
    // busybox logger writes to /dev/log through libc's syslog(), which falls back to a
    // stream connection when the socket is one.
    let mounts = [mnt("/dev/log", false, MountSource::Socket(sock.clone()))];
    ok(run(
        &f,
        exec,
        "test -S /dev/log && logger -t rbuild hello-from-the-sandbox",
        &mounts,
    ));
    let got = server.join().expect("server");
    assert!(
        String::from_utf8_lossy(&got).contains("hello-from-the-sandbox"),
        "the host listener got {:?}",
        String::from_utf8_lossy(&got)
    );
    assert_eq!(f.upper_entries(), Vec::<String>::new());
}

#[test]
fn socket_reaches_a_host_listener() {
    on_builtin(socket);
}

#[test]
fn runc_socket_reaches_a_host_listener() {
    on_runc(socket);
}

#[test]
fn mount_points_the_setup_created_are_not_in_the_layer() {
    let Some(f) = fixture() else {
        return;
    };
    let cache = tempfile::tempdir().expect("tempdir");
    let mounts = [
        mnt("/deep/er/dir", false, MountSource::Dir(cache.path().into())),
        mnt(
            "/etc/app.conf",
            true,
            MountSource::File(SecretFile {
                data: b"k=v\n".to_vec(),
                mode: 0o444,
                uid: 0,
                gid: 0,
            }),
        ),
        mnt("/tmp/scratch", false, MountSource::Tmpfs { size: None }),
        // A view of a sub-path: its kind is only known once mounted, so the setup creates
        // the target in the upper dir (copying /etc up) and removes it after the run.
        mnt(
            "/etc/conf.d/data",
            true,
            MountSource::Layers {
                layers: two_layers(&f),
                path: "/data".into(),
            },
        ),
    ];
    // The command's own change under /etc stays; the mount points go.
    let log = ok(run(
        &f,
        &builtin(),
        "cat /etc/app.conf /etc/conf.d/data/b.txt; echo real > /etc/real",
        &mounts,
    ));
    assert_eq!(log.stdout(), "k=v\nB\n");
    assert_eq!(f.upper_entries(), vec!["etc", "etc/real"]);
    let etc = std::fs::metadata(f.upper.join("etc")).expect("etc");
    assert_eq!(etc.mode() & 0o7777, 0o755);
}

#[test]
fn a_failed_mount_names_its_target() {
    let Some(f) = fixture() else {
        return;
    };
    let mounts = [mnt(
        "/needs/src",
        true,
        MountSource::Dir("/nonexistent/rbuild-src".into()),
    )];
    let mut execs: Vec<Box<dyn Executor>> = vec![Box::new(builtin())];
    if let Some(r) = runc_executor() {
        execs.push(Box::new(r));
    }
    for exec in &execs {
        let exec = exec.as_ref();
        let (res, log) = run(&f, exec, "true", &mounts);
        match res {
            Err(ExecError::Setup(e)) => {
                let msg = e.to_string();
                assert!(msg.contains("/needs/src"), "{msg}");
                assert!(msg.contains("/nonexistent/rbuild-src"), "{msg}");
            }
            other => panic!("{}", explain(&other, &log)),
        }
    }
    let mounts = [mnt(
        "/secret/x",
        true,
        MountSource::Layers {
            layers: vec![],
            path: "/no/such/path".into(),
        },
    )];
    let e = setup_error(run(&f, &builtin(), "true", &mounts));
    assert!(e.contains("/secret/x"), "{e}");
    assert_eq!(f.upper_entries(), Vec::<String>::new());
}

fn insecure(exec: &dyn Executor) {
    let f = Fixture::new();
    let host_forward = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").ok();
    let script = "mkdir -p /mnt; mount -t tmpfs none /mnt 2>/dev/null && echo mounted; \
         echo 1 > /proc/sys/net/ipv4/ip_forward 2>/dev/null && cat /proc/sys/net/ipv4/ip_forward; \
         grep -E '^(CapEff|Seccomp|NoNewPrivs):' /proc/self/status; exit 0";
    let log = ok(f.run_mounted(exec, &sh(script, "", SecurityMode::Sandbox), &[]));
    assert_eq!(
        log.stdout(),
        "CapEff:\t00000000a80425fb\nNoNewPrivs:\t1\nSeccomp:\t2\n"
    );
    let log = ok(f.run_mounted(exec, &sh(script, "", SecurityMode::Insecure), &[]));
    let out = log.stdout();
    assert!(out.starts_with("mounted\n1\n"), "{out}");
    assert!(out.contains("Seccomp:\t0\n"), "{out}");
    assert!(out.contains("NoNewPrivs:\t0\n"), "{out}");
    // Every capability the test (as rbuild) holds.
    let status = std::fs::read_to_string("/proc/self/status").expect("status");
    let own = status
        .lines()
        .find(|l| l.starts_with("CapEff:"))
        .expect("CapEff");
    assert!(out.contains(&format!("{own}\n")), "{out}");
    // The sysctl was the sandbox's own network namespace's.
    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").ok(),
        host_forward
    );
    assert_eq!(f.upper_entries(), vec!["mnt"]);
}

#[test]
fn insecure_allows_what_the_sandbox_forbids() {
    on_builtin(insecure);
}

#[test]
fn runc_insecure_allows_what_the_sandbox_forbids() {
    on_runc(insecure);
}

#[test]
fn copy_snapshotter_core_cases() {
    if !can_run() {
        return;
    }
    let exec = copy_snapshotter();
    nested(&exec);
    secret(&exec);
    tmpfs(&exec);
    cache_dir(&exec);
}
