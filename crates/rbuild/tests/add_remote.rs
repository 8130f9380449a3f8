//! ADD of URLs and git repositories through the CLI, against servers the tests start on
//! loopback: a small HTTP server (a thread on a `TcpListener`, with ETag/Last-Modified and
//! conditional requests) and `git daemon`. Every build is `FROM scratch` exported with
//! `-o type=local`, so no base image is needed.

mod support;

use std::collections::HashMap;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use rbuild_archive::testutil::{TarBuilder, TestEntry};
use rbuild_test_support::git::git;
use support::{require_root, require_tool, stderr, Env};

/// One file the server serves.
#[derive(Clone)]
struct Served {
    body: Vec<u8>,
    etag: Option<String>,
    last_modified: Option<String>,
}

#[derive(Default)]
struct State {
    files: HashMap<String, Served>,
    /// Every request: path and the status answered.
    log: Vec<(String, u16)>,
}

/// An HTTP/1.1 server on a free loopback port, one connection at a time, stopped on drop.
struct HttpServer {
    port: u16,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl HttpServer {
    fn start() -> HttpServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (Arc::clone(&state), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if sp.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(c) = conn {
                    let _ = serve(c, &st);
                }
            }
        });
        HttpServer {
            port,
            state,
            stop,
            thread: Some(thread),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn set(&self, path: &str, body: &[u8], etag: Option<&str>, last_modified: Option<&str>) {
        let mut s = self.state.lock().expect("state");
        s.files.insert(
            path.to_string(),
            Served {
                body: body.to_vec(),
                etag: etag.map(str::to_string),
                last_modified: last_modified.map(str::to_string),
            },
        );
    }

    fn remove(&self, path: &str) {
        self.state.lock().expect("state").files.remove(path);
    }

    /// The requests since the last call: (path, status).
    fn take_log(&self) -> Vec<(String, u16)> {
        std::mem::take(&mut self.state.lock().expect("state").log)
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Answers one request: 200 with the file, 304 when `If-None-Match` matches its ETag, 404.
fn serve(conn: TcpStream, state: &Mutex<State>) -> std::io::Result<()> {
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    // Files are looked up without the query (git's dumb protocol sends `?service=…`).
    let target = request_line.split_whitespace().nth(1).unwrap_or("/");
    let path = target.split('?').next().unwrap_or(target).to_string();
    let mut if_none_match = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            if k.eq_ignore_ascii_case("if-none-match") {
                if_none_match = Some(v.trim().to_string());
            }
        }
    }
    let mut s = state.lock().expect("state");
    let file = s.files.get(&path).cloned();
    let (status, reason, body, headers) = match file {
        None => (404, "Not Found", b"no such file\n".to_vec(), String::new()),
        Some(f) => {
            let mut headers = String::new();
            if let Some(e) = &f.etag {
                headers.push_str(&format!("ETag: {e}\r\n"));
            }
            if let Some(lm) = &f.last_modified {
                headers.push_str(&format!("Last-Modified: {lm}\r\n"));
            }
            if f.etag.is_some() && if_none_match == f.etag {
                (304, "Not Modified", Vec::new(), headers)
            } else {
                (200, "OK", f.body, headers)
            }
        }
    };
    s.log.push((path, status));
    drop(s);
    let mut conn = conn;
    write!(
        conn,
        "HTTP/1.1 {status} {reason}\r\nContent-Length: {}\r\nConnection: close\r\n{headers}\r\n",
        if status == 304 { 0 } else { body.len() }
    )?;
    conn.write_all(&body)?;
    conn.flush()
}

const LAST_MODIFIED: &str = "Thu, 02 Jan 2020 03:04:05 GMT";
const LAST_MODIFIED_UNIX: i64 = 1_577_934_245;

fn build(env: &Env, dockerfile: &str) -> (PathBuf, String) {
    let ctx = env.context("ctx", &[("Dockerfile", dockerfile)]);
    let out = env.path("out");
    let _ = fs::remove_dir_all(&out);
    let dest = format!("type=local,dest={}", out.display());
    let o = env.ok(&[
        "build",
        "--progress=plain",
        "-o",
        &dest,
        ctx.to_str().expect("utf-8"),
    ]);
    (out, stderr(&o))
}

fn build_fails(env: &Env, dockerfile: &str) -> String {
    let ctx = env.context("ctx", &[("Dockerfile", dockerfile)]);
    let out = env.run(&["build", "-q", ctx.to_str().expect("utf-8")]);
    assert!(!out.status.success(), "build should fail");
    stderr(&out)
}

/// Whether plain progress shows the step named `name` as `CACHED`.
fn step_cached(progress: &str, name: &str) -> bool {
    let lines: Vec<&str> = progress.lines().collect();
    lines
        .iter()
        .enumerate()
        .any(|(i, l)| l.ends_with(name) && lines.get(i + 1).is_some_and(|n| n.ends_with("CACHED")))
}

#[test]
fn add_url_names_the_file_with_mode_0600_last_modified_and_flags() {
    let env = Env::new();
    let http = HttpServer::start();
    http.set(
        "/dl/tool.txt",
        b"tool v1\n",
        Some("\"v1\""),
        Some(LAST_MODIFIED),
    );
    http.set("/", b"index\n", None, None);
    let url = http.url("/dl/tool.txt");
    let (out, _) = build(
        &env,
        &format!(
            "FROM scratch\nADD {url} /a/\nADD {url} /b/renamed\n\
             ADD --chown=1:2 --chmod=640 {url} /c/\nADD {} /d/\n",
            http.url("/")
        ),
    );
    let a = out.join("a/tool.txt");
    assert_eq!(fs::read(&a).expect("downloaded"), b"tool v1\n");
    let m = fs::metadata(&a).expect("stat");
    assert_eq!(m.permissions().mode() & 0o7777, 0o600, "BuildKit's mode");
    assert_eq!(m.mtime(), LAST_MODIFIED_UNIX, "mtime from Last-Modified");
    assert_eq!(
        fs::read(out.join("b/renamed")).expect("renamed"),
        b"tool v1\n"
    );
    let c = fs::metadata(out.join("c/tool.txt")).expect("stat");
    assert_eq!(c.permissions().mode() & 0o7777, 0o640, "--chmod applies");
    if require_root("to check the owner") {
        assert_eq!((c.uid(), c.gid()), (1, 2), "--chown applies");
    }
    let d = out.join("d/__unnamed__");
    assert_eq!(fs::read(&d).expect("unnamed"), b"index\n");
    assert_eq!(
        fs::metadata(&d).expect("stat").mtime(),
        0,
        "no Last-Modified"
    );
}

#[test]
fn rebuild_revalidates_with_the_etag_and_misses_after_a_change() {
    let env = Env::new();
    let http = HttpServer::start();
    http.set("/f.txt", b"one\n", Some("\"1\""), Some(LAST_MODIFIED));
    let df = format!("FROM scratch\nADD {} /f.txt\n", http.url("/f.txt"));
    let step = format!("ADD {} /f.txt", http.url("/f.txt"));
    let (out, progress) = build(&env, &df);
    assert_eq!(fs::read(out.join("f.txt")).expect("file"), b"one\n");
    assert!(!step_cached(&progress, &step), "{progress}");
    assert_eq!(http.take_log(), vec![("/f.txt".to_string(), 200)]);

    // Unchanged: a conditional request answered 304, and the step is cached.
    let (out, progress) = build(&env, &df);
    assert_eq!(fs::read(out.join("f.txt")).expect("file"), b"one\n");
    assert!(step_cached(&progress, &step), "{progress}");
    assert_eq!(http.take_log(), vec![("/f.txt".to_string(), 304)]);

    // Changed: downloaded again, and the step runs.
    http.set("/f.txt", b"two\n", Some("\"2\""), Some(LAST_MODIFIED));
    let (out, progress) = build(&env, &df);
    assert_eq!(fs::read(out.join("f.txt")).expect("file"), b"two\n");
    assert!(!step_cached(&progress, &step), "{progress}");
    assert_eq!(http.take_log(), vec![("/f.txt".to_string(), 200)]);
}

#[test]
fn checksum_keys_without_downloading_and_a_mismatch_fails() {
    let env = Env::new();
    let http = HttpServer::start();
    http.set("/c.bin", b"checked\n", None, None);
    let url = http.url("/c.bin");
    let good = format!("sha256:{}", sha256_hex(b"checked\n"));
    let df = format!("FROM scratch\nADD --checksum={good} {url} /c.bin\n");
    let (out, _) = build(&env, &df);
    assert_eq!(fs::read(out.join("c.bin")).expect("file"), b"checked\n");
    // Keyed on the checksum: the rebuild needs no server at all.
    http.take_log();
    http.remove("/c.bin");
    let (out, progress) = build(&env, &df);
    assert_eq!(fs::read(out.join("c.bin")).expect("file"), b"checked\n");
    assert!(progress.contains("CACHED"), "{progress}");
    assert!(http.take_log().is_empty(), "nothing is downloaded");

    http.set("/c.bin", b"tampered\n", None, None);
    let bad = format!("sha256:{}", sha256_hex(b"something else"));
    let err = build_fails(
        &env,
        &format!("FROM scratch\nADD --checksum={bad} {url} /c.bin\n"),
    );
    assert!(
        err.contains(&url) && err.contains(&bad) && err.contains(&sha256_hex(b"tampered\n")),
        "names URL, expected and actual digest: {err}"
    );
}

#[test]
fn http_errors_name_the_url_and_status() {
    let env = Env::new();
    let http = HttpServer::start();
    let url = http.url("/missing.txt");
    let err = build_fails(&env, &format!("FROM scratch\nADD {url} /x\n"));
    assert!(err.contains(&url) && err.contains("404"), "{err}");
    let err = build_fails(&env, &format!("FROM scratch\nCOPY {url} /x\n"));
    assert!(err.contains("source can't be a URL for COPY"), "{err}");
}

#[test]
fn downloads_are_extracted_only_with_unpack_true() {
    let env = Env::new();
    let http = HttpServer::start();
    let archive = TarBuilder::new()
        .with(TestEntry::file("inside.txt", "in\n"))
        .finish();
    http.set("/a.tar", &archive, None, None);
    let url = http.url("/a.tar");
    let (out, _) = build(
        &env,
        &format!("FROM scratch\nADD {url} /kept/\nADD --unpack=true {url} /x/\n"),
    );
    assert_eq!(fs::read(out.join("kept/a.tar")).expect("copied"), archive);
    assert_eq!(
        fs::read(out.join("x/inside.txt")).expect("extracted"),
        b"in\n"
    );
    assert!(!out.join("x/a.tar").exists());
}

fn sha256_hex(data: &[u8]) -> String {
    rbuild_types::Digest::of(data).hex()
}

/// `git daemon` serving every repository under `base`, stopped on drop.
struct GitDaemon {
    child: Child,
    port: u16,
}

impl GitDaemon {
    fn start(base: &Path) -> GitDaemon {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let child = Command::new("git")
            .args([
                "daemon",
                "--export-all",
                "--reuseaddr",
                "--listen=127.0.0.1",
                &format!("--port={port}"),
                &format!("--base-path={}", base.display()),
                &base.display().to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // `git daemon` runs `git-daemon` as a child: its own group, so both are stopped.
            .process_group(0)
            .spawn()
            .expect("start git daemon");
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "git daemon did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        GitDaemon { child, port }
    }

    fn url(&self, repo: &str) -> String {
        format!("git://127.0.0.1:{}/{repo}", self.port)
    }
}

impl Drop for GitDaemon {
    fn drop(&mut self) {
        if let Ok(pgid) = i32::try_from(self.child.id()) {
            // The process group this test created.
            let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
        }
        let _ = self.child.wait();
    }
}

/// A repository `repo.git` under `base`: commit 1 (tagged `v1`, annotated) with
/// `sub/dir/f.txt` = "one", then commit 2 on `main` with "two". Returns commit 1's id.
fn make_repo(base: &Path) -> String {
    let repo = base.join("repo.git");
    fs::create_dir_all(repo.join("sub/dir")).expect("mkdir");
    git(&repo, &["init", "-q"]);
    fs::write(repo.join("README"), "readme\n").expect("write");
    fs::write(repo.join("sub/dir/f.txt"), "one\n").expect("write");
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "one"]);
    git(&repo, &["tag", "-a", "v1", "-m", "v1"]);
    let first = git(&repo, &["rev-parse", "HEAD"]);
    fs::write(repo.join("sub/dir/f.txt"), "two\n").expect("write");
    git(&repo, &["commit", "-q", "-am", "two"]);
    first
}

#[test]
fn add_git_repository_by_branch_tag_and_commit_with_subdir_and_git_dir() {
    if require_tool("git").is_none() {
        return;
    }
    let env = Env::new();
    let base = env.path("repos");
    let first = make_repo(&base);
    let daemon = GitDaemon::start(&base);
    let url = daemon.url("repo.git");
    let (out, _) = build(
        &env,
        &format!(
            "FROM scratch\nADD {url}#main:sub /branch/\nADD --keep-git-dir {url}#v1 /tag/\n\
             ADD {url}#{first} /commit/\nADD {url} /head/\n"
        ),
    );
    let read = |p: &str| fs::read_to_string(out.join(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
    assert_eq!(read("branch/dir/f.txt"), "two\n", "the subdir's contents");
    assert!(!out.join("branch/README").exists());
    assert!(!out.join("branch/.git").exists());
    assert_eq!(
        read("tag/sub/dir/f.txt"),
        "one\n",
        "the annotated tag's commit"
    );
    assert!(out.join("tag/.git").is_dir(), "--keep-git-dir keeps .git");
    assert_eq!(git(&out.join("tag"), &["rev-parse", "HEAD"]), first);
    assert_eq!(read("commit/sub/dir/f.txt"), "one\n");
    assert!(!out.join("commit/.git").exists());
    assert_eq!(read("head/README"), "readme\n");

    // A new commit on the branch: the next build sees it (the ref is resolved each build).
    let repo = base.join("repo.git");
    fs::write(repo.join("sub/dir/f.txt"), "three\n").expect("write");
    git(&repo, &["commit", "-q", "-am", "three"]);
    let df = format!("FROM scratch\nADD {url}#main:sub/dir /d/\n");
    let (out, _) = build(&env, &df);
    assert_eq!(
        fs::read_to_string(out.join("d/f.txt")).expect("file"),
        "three\n"
    );
    let (_, progress) = build(&env, &df);
    assert!(
        step_cached(&progress, &format!("ADD {url}#main:sub/dir /d/")),
        "{progress}"
    );

    let err = build_fails(&env, &format!("FROM scratch\nADD {url}#nosuch /x/\n"));
    assert!(err.contains(&url) && err.contains("nosuch"), "{err}");
    let err = build_fails(&env, &format!("FROM scratch\nADD {url}#main:nodir /x/\n"));
    assert!(
        err.contains("nodir") && err.contains("does not exist"),
        "{err}"
    );
}

#[test]
fn add_git_checks_out_submodules_without_their_git_files() {
    if require_tool("git").is_none() {
        return;
    }
    let env = Env::new();
    let base = env.path("repos");
    let sub = base.join("sub.git");
    fs::create_dir_all(&sub).expect("mkdir");
    git(&sub, &["init", "-q"]);
    fs::write(sub.join("s.txt"), "sub\n").expect("write");
    git(&sub, &["add", "."]);
    git(&sub, &["commit", "-q", "-m", "sub"]);
    let daemon = GitDaemon::start(&base);
    let top = base.join("top.git");
    fs::create_dir_all(&top).expect("mkdir");
    git(&top, &["init", "-q"]);
    fs::write(top.join("a.txt"), "a\n").expect("write");
    git(
        &top,
        &["submodule", "add", "-q", &daemon.url("sub.git"), "mod"],
    );
    git(&top, &["add", "."]);
    git(&top, &["commit", "-q", "-m", "top"]);
    let url = daemon.url("top.git");
    let (out, _) = build(
        &env,
        &format!("FROM scratch\nADD {url} /m/\nADD --keep-git-dir {url} /k/\n"),
    );
    assert_eq!(
        fs::read_to_string(out.join("m/mod/s.txt")).expect("submodule"),
        "sub\n"
    );
    assert!(out.join("m/.gitmodules").is_file());
    assert!(
        !out.join("m/mod/.git").exists(),
        "no dangling submodule .git"
    );
    assert!(!out.join("m/.git").exists());
    assert_eq!(
        fs::read_to_string(out.join("k/mod/s.txt")).expect("submodule"),
        "sub\n"
    );
    assert!(out.join("k/mod/.git").exists() && out.join("k/.git").is_dir());
}

/// Every regular file under `dir`, relative to it.
fn files_under(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).expect("read_dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).expect("under dir");
                out.push((rel.display().to_string(), fs::read(&p).expect("read")));
            }
        }
    }
    out
}

#[test]
fn add_git_over_dumb_http_falls_back_to_a_full_fetch() {
    if require_tool("git").is_none() {
        return;
    }
    let env = Env::new();
    let base = env.path("repos");
    make_repo(&base);
    // A bare copy with the dumb-protocol index, served as static files.
    let bare = env.path("bare.git");
    git(
        env.dir.path(),
        &[
            "clone",
            "-q",
            "--bare",
            &base.join("repo.git").display().to_string(),
            &bare.display().to_string(),
        ],
    );
    git(&bare, &["update-server-info"]);
    let http = HttpServer::start();
    for (rel, data) in files_under(&bare) {
        http.set(&format!("/git/repo.git/{rel}"), &data, None, None);
    }
    let url = http.url("/git/repo.git");
    let (out, _) = build(
        &env,
        &format!("FROM scratch\nADD --keep-git-dir {url}#v1:sub /t/\nADD {url} /h/\n"),
    );
    assert_eq!(
        fs::read_to_string(out.join("t/dir/f.txt")).expect("file"),
        "one\n"
    );
    assert!(!out.join("t/.git").exists(), ".git is outside the subdir");
    assert_eq!(
        fs::read_to_string(out.join("h/sub/dir/f.txt")).expect("file"),
        "two\n"
    );
    assert!(!out.join("h/.git").exists());
}

#[test]
fn add_git_checksum_is_a_commit_prefix_and_explain_names_a_moved_ref() {
    if require_tool("git").is_none() {
        return;
    }
    let env = Env::new();
    let base = env.path("repos");
    let first = make_repo(&base);
    let daemon = GitDaemon::start(&base);
    let url = daemon.url("repo.git");
    let repo = base.join("repo.git");
    let head = git(&repo, &["rev-parse", "HEAD"]);
    let tag_object = git(&repo, &["rev-parse", "v1"]);

    // A full or abbreviated commit id, any case; an annotated tag's object id matches too.
    let (out, _) = build(
        &env,
        &format!(
            "FROM scratch\nADD --checksum={head} {url}#main /a/\n\
             ADD --checksum={} {url}#v1 /b/\nADD --checksum={} {url}#v1 /c/\n",
            first[..7].to_ascii_uppercase(),
            &tag_object[..10]
        ),
    );
    assert_eq!(
        fs::read_to_string(out.join("a/sub/dir/f.txt")).expect("a"),
        "two\n"
    );
    assert_eq!(
        fs::read_to_string(out.join("b/sub/dir/f.txt")).expect("b"),
        "one\n"
    );
    let err = build_fails(
        &env,
        &format!("FROM scratch\nADD --checksum={first} {url}#main /x/\n"),
    );
    assert!(
        err.contains(&format!("expected checksum to match {first}, got {head}")),
        "{err}"
    );
    let err = build_fails(
        &env,
        &format!("FROM scratch\nADD --checksum=foobar {url}#main /x/\n"),
    );
    assert!(
        err.contains("invalid checksum") && err.contains("expected hex commit hash"),
        "{err}"
    );

    // --explain-cache: the branch moved.
    let ctx = env.context(
        "explain",
        &[("Dockerfile", &format!("FROM scratch\nADD {url}#main /d/\n"))],
    );
    let ctx = ctx.to_str().expect("utf-8");
    env.ok(&["build", "--progress=plain", "--explain-cache", ctx]);
    fs::write(repo.join("README"), "moved\n").expect("write");
    git(&repo, &["commit", "-q", "-am", "moved"]);
    let moved = git(&repo, &["rev-parse", "HEAD"]);
    let o = env.ok(&["build", "--progress=plain", "--explain-cache", ctx]);
    let progress = stderr(&o);
    assert!(
        progress.contains(&format!(
            "CACHE MISS: git {url} main moved: {head} → {moved}"
        )),
        "{progress}"
    );
}

#[test]
fn explain_names_a_changed_download() {
    let env = Env::new();
    let http = HttpServer::start();
    http.set("/f.txt", b"one\n", None, Some(LAST_MODIFIED));
    let url = http.url("/f.txt");
    let ctx = env.context(
        "ctx",
        &[("Dockerfile", &format!("FROM scratch\nADD {url} /f.txt\n"))],
    );
    let ctx = ctx.to_str().expect("utf-8");
    env.ok(&["build", "--progress=plain", "--explain-cache", ctx]);
    http.set("/f.txt", b"two\n", None, Some(LAST_MODIFIED));
    let o = env.ok(&["build", "--progress=plain", "--explain-cache", ctx]);
    let progress = stderr(&o);
    let want = format!(
        "CACHE MISS: download {url} changed: sha256:{} → sha256:{}",
        sha256_hex(b"one\n"),
        sha256_hex(b"two\n")
    );
    assert!(progress.contains(&want), "{want}\n{progress}");
}
