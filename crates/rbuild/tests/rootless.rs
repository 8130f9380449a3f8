//! Rootless builds (issue #5, point 6): rbuild run as an unprivileged user enters a user
//! namespace (0 → the user, 1..=65536 → its /etc/subuid range) and must produce the same
//! layers — files, owners, modes, whiteouts, opaque directories — as a root build.
//!
//! The test binary runs as root: it creates the user `rbtest` (with subordinate ranges) when
//! missing and runs rbuild as that user through `setpriv`. Needs root, busybox-static,
//! setpriv (util-linux), newuidmap/newgidmap (uidmap) and useradd/usermod (passwd).

mod support;

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;

use rbuild_archive::testutil;
use support::{
    oci_layers, require, require_busybox, require_root, require_tool, s, tool, Env, BUSYBOX,
};

const USER: &str = "rbtest";
/// Subordinate ids given to the test user when it has none.
const SUB_START: u32 = 100000;

/// Everything rootless tests need, said loudly when missing.
fn can_run_rootless() -> bool {
    require_root("to create the test user")
        && require_busybox()
        && require("setpriv (util-linux)", tool("setpriv").is_some())
        && require(
            "newuidmap and newgidmap (Debian package uidmap)",
            tool("newuidmap").is_some() && tool("newgidmap").is_some(),
        )
        && require(
            "useradd and usermod (Debian package passwd)",
            tool("useradd").is_some() && tool("usermod").is_some(),
        )
}

fn sh(cmd: &str) -> Output {
    Command::new("sh")
        .args(["-c", cmd])
        .output()
        .expect("run sh")
}

/// The test user: created (with a home and subordinate ranges) when missing.
struct User {
    uid: u32,
    home: PathBuf,
}

fn test_user() -> User {
    static LOCK: Mutex<()> = Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    if !sh(&format!("id -u {USER}")).status.success() {
        let out = sh(&format!("useradd -m -s /bin/sh {USER}"));
        assert!(out.status.success(), "useradd: {}", support::stderr(&out));
    }
    for file in ["/etc/subuid", "/etc/subgid"] {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        if !text.lines().any(|l| l.starts_with(&format!("{USER}:"))) {
            let flag = if file.ends_with("uid") {
                "--add-subuids"
            } else {
                "--add-subgids"
            };
            let range = format!("{SUB_START}-{}", SUB_START + 65535);
            let out = sh(&format!("usermod {flag} {range} {USER}"));
            assert!(out.status.success(), "usermod: {}", support::stderr(&out));
        }
    }
    let uid: u32 = support::stdout(&sh(&format!("id -u {USER}")))
        .trim()
        .parse()
        .expect("uid");
    let home = support::stdout(&sh(&format!("getent passwd {USER} | cut -d: -f6")));
    User {
        uid,
        home: PathBuf::from(home.trim()),
    }
}

/// A scratch directory in the test user's home, owned by it; removed (as root) on drop.
struct UserWorld {
    dir: PathBuf,
    home: PathBuf,
}

impl UserWorld {
    fn new(user: &User, name: &str) -> UserWorld {
        let dir = user
            .home
            .join(format!("rbuild-it-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("mkdir in the user's home");
        std::os::unix::fs::chown(&dir, Some(user.uid), None).expect("chown");
        UserWorld {
            dir,
            home: user.home.clone(),
        }
    }

    /// A context directory with `files`, readable by the user.
    fn context(&self, name: &str, files: &[(&str, &[u8])]) -> PathBuf {
        let root = self.dir.join(name);
        std::fs::create_dir_all(&root).expect("mkdir context");
        for (path, contents) in files {
            std::fs::write(root.join(path), contents).expect("write context file");
        }
        if files.iter().any(|(p, _)| *p == "busybox") {
            use std::os::unix::fs::PermissionsExt;
            let perms = std::fs::Permissions::from_mode(0o755);
            std::fs::set_permissions(root.join("busybox"), perms).expect("chmod busybox");
        }
        let out = sh(&format!(
            "chown -R {USER}: {} && chmod -R a+rX {0}",
            s(&root)
        ));
        assert!(out.status.success(), "chown: {}", support::stderr(&out));
        root
    }

    /// rbuild as the test user with this world's store, ready to run with `args`.
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("setpriv");
        cmd.args([
            &format!("--reuid={USER}"),
            &format!("--regid={USER}"),
            "--init-groups",
            env!("CARGO_BIN_EXE_rbuild"),
        ])
        .args(args)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
        .env("HOME", &self.home)
        .env("RBUILD_ROOT", self.dir.join("store"))
        .env("RBUILD_CONFIG", self.dir.join("config.toml"))
        .current_dir(&self.dir)
        .stdin(Stdio::null());
        cmd
    }

    /// Runs rbuild as the test user with this world's store (and extra environment).
    fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = self.command(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().expect("run rbuild through setpriv")
    }

    /// The context `support::Env::busybox` builds `busybox:latest` from, readable by the user.
    fn busybox_context(&self) -> PathBuf {
        let busybox = std::fs::read(BUSYBOX).expect("read busybox");
        self.context(
            "busybox-ctx",
            &[
                ("Dockerfile", BUSYBOX_DOCKERFILE.as_bytes()),
                ("busybox", &busybox),
            ],
        )
    }

    /// Builds `busybox:latest` into this world's store, rootless.
    fn busybox(&self) {
        self.ok(
            &[
                "build",
                "-q",
                "-t",
                "busybox:latest",
                s(&self.busybox_context()),
            ],
            &[],
        );
    }

    fn ok(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let out = self.run(args, env);
        assert!(
            out.status.success(),
            "rootless rbuild {args:?} failed ({}):\n{}",
            out.status,
            support::stderr(&out)
        );
        out
    }
}

impl Drop for UserWorld {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The Dockerfile `support::Env::busybox` builds `busybox:latest` from.
const BUSYBOX_DOCKERFILE: &str = "FROM scratch\nCOPY busybox /bin/busybox\n\
    RUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n\
    RUN mkdir -p /etc /tmp && chmod 1777 /tmp && echo 'root:x:0:0:root:/root:/bin/sh' > /etc/passwd && echo 'root:x:0:' > /etc/group\n\
    ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin\nCMD [\"sh\"]\n";

/// Owners made by RUN and COPY --chown, a whiteout, an opaque directory, a hardlink, and RUNs
/// with each network mode.
const APP_DOCKERFILE: &str = "FROM busybox\n\
    RUN echo 'u:x:1000:1000::/:/bin/sh' >> /etc/passwd && echo 'u:x:1000:' >> /etc/group && touch /x && chown u /x && mkdir -p /o/sub && touch /o/a /o/sub/b\n\
    COPY --chown=1000:1000 f /f\n\
    COPY --chown=u:u f /g\n\
    RUN --network=none rm /bin/ls && rm -rf /o && mkdir /o && touch /o/c && ln /f /o/hard\n\
    RUN chown 123:456 /o/c && chmod 4755 /o/c && mkdir -m 1770 /sticky\n\
    USER u\n\
    RUN test \"$(id -u):$(id -g)\" = 1000:1000 && touch /tmp/by-u\n\
    USER root\n\
    RUN --network=host cat /proc/net/dev > /dev/null && mkdir /net-host\n\
    RUN --mount=type=cache,target=/var/cache/t --mount=type=tmpfs,target=/t \
        --mount=type=bind,source=f,target=/mnt/f cat /mnt/f > /copied && touch /var/cache/t/x /t/y\n";

/// One tar entry without its times: what must be equal between root and rootless layers.
fn layer_listing(blob: &Path) -> Vec<String> {
    let file = std::fs::File::open(blob).expect("open layer");
    testutil::list(file)
        .expect("tar entries")
        .into_iter()
        .map(|e| {
            let xattrs: Vec<&String> = e
                .pax_keys
                .iter()
                .filter(|k| k.starts_with("SCHILY.xattr."))
                .collect();
            format!(
                "{} type={} mode={:o} uid={} gid={} size={} link={} xattrs={xattrs:?}",
                e.name_lossy(),
                e.type_name(),
                e.mode,
                e.uid,
                e.gid,
                e.data.len(),
                String::from_utf8_lossy(e.link.as_deref().unwrap_or_default()),
            )
        })
        .collect()
}

fn listings(layout: &Path) -> Vec<Vec<String>> {
    oci_layers(layout)
        .iter()
        .map(|b| layer_listing(b))
        .collect()
}

#[test]
fn rootless_build_has_the_same_layers_as_a_root_build() {
    if !can_run_rootless() {
        return;
    }
    let user = test_user();

    // As root.
    let root = Env::new();
    root.busybox();
    let ctx = root.context("app", &[("Dockerfile", APP_DOCKERFILE), ("f", "data\n")]);
    let root_layout = root.build_oci("layout", &[], &ctx);

    // As the test user, its busybox built rootless too.
    let world = UserWorld::new(&user, "same-layers");
    world.busybox();
    let app_ctx = world.context(
        "app",
        &[("Dockerfile", APP_DOCKERFILE.as_bytes()), ("f", b"data\n")],
    );
    let user_layout = world.dir.join("layout");
    let out = world.ok(
        &[
            "build",
            "-q",
            "-o",
            &format!("type=oci,dest={},tar=false", s(&user_layout)),
            s(&app_ctx),
        ],
        &[],
    );
    // Full rootless mode: subordinate ids and overlayfs (the network note depends on the
    // host's /dev/net/tun and does not matter here).
    let err = support::stderr(&out);
    assert!(
        !err.contains("only uid/gid 0") && !err.contains("overlayfs cannot"),
        "full rootless mode expected, got notes:\n{err}"
    );

    let (want, got) = (listings(&root_layout), listings(&user_layout));
    assert_eq!(want.len(), got.len(), "layer count");
    for (i, (w, g)) in want.iter().zip(&got).enumerate() {
        assert_eq!(w, g, "layer {i} differs between root and rootless builds");
    }
    // Spot checks of what the comparison covers.
    let all: Vec<&String> = got.iter().flatten().collect();
    for needle in [
        "x type=Regular mode=644 uid=1000 gid=0",
        "f type=Regular mode=644 uid=1000 gid=1000",
        "g type=Regular mode=644 uid=1000 gid=1000",
        "bin/.wh.ls ",
        "o/.wh..wh..opq ",
        "o/c type=Regular mode=4755 uid=123 gid=456",
        "sticky/ type=Directory mode=1770",
        "tmp/by-u type=Regular mode=644 uid=1000 gid=1000",
    ] {
        assert!(
            all.iter().any(|l| l.starts_with(needle)),
            "no entry starting with {needle:?} in\n{all:#?}"
        );
    }

    // The copy-and-diff snapshotter (the fallback where overlayfs cannot be mounted in the
    // user namespace) gives the same layers too.
    let copy_layout = world.dir.join("layout-copy");
    world.ok(
        &[
            "build",
            "-q",
            "--no-cache",
            "-o",
            &format!("type=oci,dest={},tar=false", s(&copy_layout)),
            s(&app_ctx),
        ],
        &[("RBUILD_SNAPSHOTTER", "copy")],
    );
    let copied = listings(&copy_layout);
    assert_eq!(want.len(), copied.len(), "layer count (copy snapshotter)");
    for (i, (w, c)) in want.iter().zip(&copied).enumerate() {
        assert_eq!(
            w, c,
            "layer {i} differs between root and rootless copy-and-diff"
        );
    }

    // On the host, the user's store holds files of its subordinate ids (ns 1000 → host
    // SUB_START + 999), never of root.
    let owners = store_owners(&world.dir.join("store"));
    assert!(
        owners.contains_key(&(SUB_START + 999)),
        "no file of the mapped uid 1000 in the store: {owners:?}"
    );
    assert!(!owners.contains_key(&0), "root-owned files in the store");
}

/// Host uid → file count under `dir`.
fn store_owners(dir: &Path) -> BTreeMap<u32, usize> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(md) = e.path().symlink_metadata() else {
                continue;
            };
            *out.entry(md.uid()).or_default() += 1;
            if md.is_dir() {
                stack.push(e.path());
            }
        }
    }
    out
}

#[test]
fn single_id_mapping_builds_but_cannot_chown() {
    if !can_run_rootless() {
        return;
    }
    let user = test_user();
    let world = UserWorld::new(&user, "single");
    let single = [("RBUILD_USERNS_MAPPING", "single")];
    let bb_ctx = world.busybox_context();
    let out = world.ok(&["build", "-t", "busybox:latest", s(&bb_ctx)], &single);
    assert!(
        support::stderr(&out).contains("rootless: only uid/gid 0 is mapped"),
        "the degradation is said: {}",
        support::stderr(&out)
    );
    let ok_ctx = world.context(
        "ok",
        &[(
            "Dockerfile",
            b"FROM busybox\nRUN touch /y && test \"$(id -u)\" = 0\n",
        )],
    );
    world.ok(&["build", "-q", s(&ok_ctx)], &single);
    let bad_ctx = world.context(
        "bad",
        &[(
            "Dockerfile",
            b"FROM busybox\nRUN touch /y && chown 1000 /y\n",
        )],
    );
    let out = world.run(&["build", "-q", s(&bad_ctx)], &single);
    assert!(!out.status.success(), "chown to an unmapped id must fail");
}

#[test]
fn default_network_goes_through_slirp4netns_and_none_has_only_loopback() {
    if !can_run_rootless() || require_tool("slirp4netns").is_none() {
        return;
    }
    let user = test_user();
    let tun_ok = Command::new("setpriv")
        .args([
            &format!("--reuid={USER}"),
            &format!("--regid={USER}"),
            "--init-groups",
            "sh",
            "-c",
            "test -r /dev/net/tun && test -w /dev/net/tun",
        ])
        .status()
        .is_ok_and(|st| st.success());
    if !require(
        "/dev/net/tun usable by unprivileged users (mode 0666, Debian's default) for slirp4netns",
        tun_ok,
    ) {
        return;
    }
    let world = UserWorld::new(&user, "net");
    world.busybox();
    // The last step joins a networked spare (slirp4netns attached ahead, in the user
    // namespace) made while the first ran.
    let ctx = world.context(
        "app",
        &[(
            "Dockerfile",
            b"FROM busybox\n\
              RUN sleep 0.3; ip -o addr show tap0 | grep -q 10.0.2.100 && grep -q 10.0.2.3 /etc/resolv.conf\n\
              RUN --network=none ! ip -o link show tap0 && test \"$(ip -o link | wc -l)\" = 1\n\
              RUN ip -o addr show tap0 | grep -q 10.0.2.100\n",
        )],
    );
    let trace = world.dir.join("trace");
    let out = world.ok(
        &["build", "--progress=plain", s(&ctx)],
        &[("RBUILD_SANDBOX_TRACE", s(&trace))],
    );
    assert!(
        !support::stderr(&out).contains("loopback only"),
        "{}",
        support::stderr(&out)
    );
    let trace = std::fs::read_to_string(&trace).expect("trace");
    assert_eq!(
        trace.matches("init: joined a networked spare").count(),
        1,
        "{trace}"
    );
}

/// Pids of processes whose command line is exactly `cmdline` (NUL-separated in /proc).
fn pids_running(cmdline: &[u8]) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .expect("list /proc")
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == cmdline))
        .collect()
}

#[test]
fn killing_rootless_rbuild_leaves_nothing_running() {
    if !can_run_rootless() {
        return;
    }
    let user = test_user();
    let world = UserWorld::new(&user, "kill");
    world.busybox();
    let marker = format!("{}", 40000 + std::process::id() % 10000);
    let ctx = world.context(
        "app",
        &[(
            "Dockerfile",
            format!("FROM busybox\nRUN sleep {marker} & sleep {marker}\n").as_bytes(),
        )],
    );
    let cmdline = format!("sleep\0{marker}\0").into_bytes();
    for signal in ["TERM", "KILL"] {
        let mut child = world
            .command(&["build", "-q", "--no-cache", s(&ctx)])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start rootless rbuild");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while pids_running(&cmdline).len() < 2 {
            assert!(
                std::time::Instant::now() < deadline,
                "the RUN's sleeps never started"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        // setpriv execs rbuild: the child is the process waiting outside the namespace.
        let out = sh(&format!("kill -{signal} {}", child.id()));
        assert!(out.status.success(), "kill: {}", support::stderr(&out));
        let status = child.wait().expect("wait");
        assert!(!status.success(), "killed rbuild reported success");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !pids_running(&cmdline).is_empty() {
            assert!(
                std::time::Instant::now() < deadline,
                "after SIG{signal} the RUN's processes still run: {:?}",
                pids_running(&cmdline)
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}

#[test]
fn chroot_isolation_runs_rootless() {
    if !can_run_rootless() {
        return;
    }
    let user = test_user();
    let world = UserWorld::new(&user, "chroot");
    world.busybox();
    // In the user namespace mknod is refused: the device nodes are the host's, bound over
    // placeholders in the init's mount namespace, and none of them reaches the layer.
    let ctx = world.context(
        "app",
        &[(
            "Dockerfile",
            b"FROM busybox\n\
              RUN echo x > /dev/null && test -c /dev/null && test -d /proc/self \
                  && echo data > /data.txt && rm /bin/vi\n",
        )],
    );
    let dest = world.dir.join("rootfs");
    let out = world.ok(
        &[
            "build",
            "--progress=plain",
            "--isolation=chroot",
            "-o",
            &format!("type=local,dest={}", s(&dest)),
            s(&ctx),
        ],
        &[],
    );
    let err = support::stderr(&out);
    assert!(
        err.contains("--isolation=chroot: RUN runs in a chroot"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(dest.join("data.txt")).expect("data.txt"),
        "data\n"
    );
    assert!(!dest.join("bin/vi").exists());
    assert!(
        std::fs::read_dir(dest.join("dev")).map_or(true, |mut d| d.next().is_none()),
        "the chroot's device nodes reached the image"
    );
}
