//! RUN's default network through the CLI: slirp4netns attached ahead of time to the sandbox
//! zygote's networked spares (`init::spare_net`). Every default-network step of a multi-RUN
//! build reaches the host, each through a namespace of its own; a `--network=none` step in the
//! same build sees `lo` alone and reaches nothing; and no slirp4netns outlives rbuild, also when
//! rbuild is killed.

mod support;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::Stdio;
use std::time::{Duration, Instant};

use support::{require, require_tool, s, stderr, Env};

/// A busybox store, slirp4netns and a host address RUN can reach, or `None` (said loudly).
fn setup() -> Option<(Env, String)> {
    require_tool("slirp4netns")?;
    let ip = rbuild_test_support::http::host_global_ipv4();
    if !require("a global IPv4 address on the host", ip.is_some()) {
        return None;
    }
    let env = Env::with_busybox()?;
    Some((env, ip.unwrap_or_default()))
}

/// Answers `pong` and the connection's number to every connection, from a thread; the port.
fn pong_server() -> u16 {
    let listener = TcpListener::bind("0.0.0.0:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for (n, conn) in listener.incoming().enumerate() {
            let Ok(mut conn) = conn else { continue };
            let mut buf = [0u8; 16];
            let _ = conn.read(&mut buf);
            let _ = conn.write_all(format!("pong {n}\n").as_bytes());
        }
    });
    port
}

/// slirp4netns processes made by a networked spare (`--netns-type=path`) whose parent is gone
/// (reparented to pid 1 or a subreaper other than a zygote) or that are zombies: leaks.
fn orphaned_spare_slirps() -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        let is_spare_slirp = args.first().is_some_and(|a| a.ends_with(b"slirp4netns"))
            && args.iter().any(|a| *a == b"--netns-type=path");
        if !is_spare_slirp {
            continue;
        }
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        // pid (comm) state ppid …
        let after = stat.rsplit_once(") ").map(|(_, rest)| rest).unwrap_or("");
        let mut fields = after.split_whitespace();
        let (state, ppid) = (fields.next().unwrap_or(""), fields.next().unwrap_or(""));
        let parent_is_zygote = std::fs::read(format!("/proc/{ppid}/cmdline"))
            .is_ok_and(|c| c.split(|b| *b == 0).any(|a| a == b"zygote"));
        if state == "Z" || !parent_is_zygote {
            found.push(format!("{stat} (parent {ppid})"));
        }
    }
    found
}

/// Waits up to 5 s for `f` to hold.
fn eventually(f: impl Fn() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(5) {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    f()
}

#[test]
fn every_default_network_step_reaches_out_and_a_none_step_has_only_lo() {
    let Some((env, ip)) = setup() else {
        return;
    };
    let port = pong_server();
    // Each default step: the host's listener answers; `tap0` is up with slirp4netns's address;
    // the step's network namespace is written down, to tell that no two steps shared one. The
    // pause gives the zygote time to make the next networked spare (≈ 4 ms of slirp4netns)
    // even on a loaded machine, so the steps after the first take the spare's way.
    let default_step = |i: usize| {
        format!(
            "RUN sleep 0.3; echo ping | nc -w 5 {ip} {port} | grep -q pong \
             && ip -4 -o addr show tap0 | grep -q 10.0.2.100 \
             && readlink /proc/self/ns/net > /net{i}\n"
        )
    };
    // The isolated step: no interface but `lo`, and the host's listener is out of reach.
    let none_step = format!(
        "RUN --network=none test \"$(grep -c : /proc/net/dev)\" = 1 && grep -q 'lo:' /proc/net/dev \
         && ! (echo ping | nc -w 2 {ip} {port}) && readlink /proc/self/ns/net > /none\n"
    );
    let mut dockerfile = String::from("FROM busybox\n");
    let defaults = 5;
    for i in 0..defaults {
        dockerfile.push_str(&default_step(i));
        if i == 1 {
            dockerfile.push_str(&none_step);
        }
    }
    let ctx = env.context("ctx", &[("Dockerfile", &dockerfile)]);
    let trace = env.path("trace");
    let out_dir = env.path("out");
    let out = env
        .cmd()
        .env("RBUILD_SANDBOX_TRACE", &trace)
        .args(["build", "--progress=plain", "-o"])
        .arg(format!("type=local,dest={}", s(&out_dir)))
        .arg(&ctx)
        .output()
        .expect("run rbuild");
    assert!(out.status.success(), "{}", stderr(&out));

    // Every step's network namespace was its own.
    let mut namespaces: Vec<String> = (0..defaults)
        .map(|i| std::fs::read_to_string(out_dir.join(format!("net{i}"))).expect("net file"))
        .collect();
    namespaces.push(std::fs::read_to_string(out_dir.join("none")).expect("none file"));
    let distinct: std::collections::HashSet<&String> = namespaces.iter().collect();
    assert_eq!(distinct.len(), namespaces.len(), "{namespaces:?}");

    // The first default step attached slirp4netns the old way; every later one joined a
    // networked spare, and the isolated step never did.
    let trace = std::fs::read_to_string(&trace).expect("trace file");
    let joined = trace
        .lines()
        .filter(|l| l.ends_with("init: joined a networked spare"))
        .count();
    assert_eq!(joined, defaults - 1, "{trace}");

    // rbuild has exited: no slirp4netns of a spare is left behind.
    assert!(
        eventually(|| orphaned_spare_slirps().is_empty()),
        "{:?}",
        orphaned_spare_slirps()
    );
}

#[test]
fn a_killed_rbuild_leaves_no_slirp4netns_behind() {
    let Some((env, _)) = setup() else {
        return;
    };
    // During the first step a networked spare is made; the second runs in it until rbuild is
    // killed (a sleep of a number no other process sleeps, to be found afterwards).
    let marker = (500_000 + std::process::id() % 100_000).to_string();
    let dockerfile = format!("FROM busybox\nRUN sleep 0.3\nRUN sleep {marker}\n");
    let ctx = env.context("ctx", &[("Dockerfile", &dockerfile)]);
    let trace = env.path("trace");
    let mut child = env
        .cmd()
        .env("RBUILD_SANDBOX_TRACE", &trace)
        .args(["build", "--progress=plain"])
        .arg(&ctx)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn rbuild");
    let spare_in_use = || {
        std::fs::read_to_string(&trace).is_ok_and(|t| {
            t.contains("init: joined a networked spare") && t.matches("command: exec").count() == 2
        })
    };
    let started = eventually(spare_in_use);
    let _ = child.kill();
    let _ = child.wait();
    assert!(started, "the second step never ran in a networked spare");
    let sleeper = format!("sleep\0{marker}\0").into_bytes();
    let sleeping = || {
        std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| std::fs::read(e.path().join("cmdline")).is_ok_and(|c| c == sleeper))
    };
    assert!(
        eventually(|| orphaned_spare_slirps().is_empty() && !sleeping()),
        "left behind: {:?}, the step's sleep: {}",
        orphaned_spare_slirps(),
        sleeping()
    );
}
