//! Every way to pass a build context on the command line: a gzip tar on stdin, `-f -` with a
//! context directory, an http(s) URL to a tarball (served by a tiny in-process HTTP server on
//! 127.0.0.1), a git URL (`file://` repository with `#ref:subdir`), and `rbuild debug context`.

mod support;

use std::process::Output;

use rbuild_archive::testutil::{compress, HeaderFormat, TarBuilder, TestEntry};
use rbuild_archive::ArchiveFormat;
use rbuild_test_support::git::git;
use support::{can_build_runs, output_with_stdin, require_tool, s, stderr, stdout, Env};

/// Runs rbuild with `args`, feeding `input` on stdin.
fn run_with_stdin(env: &Env, args: &[&str], input: &[u8]) -> Output {
    output_with_stdin(env.cmd().args(args), input)
}

/// A gzip tar of `files` (path, contents), every entry root-owned, mode 0644.
fn tar_gz(files: &[(&str, &str)]) -> Vec<u8> {
    let mut b = TarBuilder::new();
    for (path, data) in files {
        b.add(TestEntry::file(path, data).format(HeaderFormat::Gnu));
    }
    compress(&b.finish(), ArchiveFormat::TarGzip).expect("gzip")
}

fn local_dest(env: &Env, name: &str) -> (std::path::PathBuf, String) {
    let out = env.path(name);
    let dest = format!("type=local,dest={}", out.display());
    (out, dest)
}

#[test]
fn gzip_tar_on_stdin_is_the_context() {
    if !can_build_runs() {
        return;
    }
    let env = Env::new();
    let archive = tar_gz(&[
        ("Dockerfile", "FROM scratch\nCOPY . /ctx/\n"),
        ("app/hello.txt", "hello from the archive"),
        (".dockerignore", "secret.txt\n"),
        ("secret.txt", "no"),
    ]);
    let (out, dest) = local_dest(&env, "out");
    let res = run_with_stdin(&env, &["build", "-q", "-o", &dest, "-"], &archive);
    assert!(res.status.success(), "{}", stderr(&res));
    assert_eq!(
        std::fs::read_to_string(out.join("ctx/app/hello.txt")).expect("copied"),
        "hello from the archive"
    );
    assert!(
        !out.join("ctx/secret.txt").exists(),
        "the archive's .dockerignore applies"
    );

    // A truncated archive is refused, naming the problem.
    let cut = &archive[..archive.len() / 2];
    let res = run_with_stdin(&env, &["build", "-q", "-"], cut);
    assert!(!res.status.success());
    assert!(stderr(&res).contains("truncated"), "{}", stderr(&res));
}

#[test]
fn dockerfile_on_stdin_with_a_context_directory() {
    if !can_build_runs() {
        return;
    }
    let env = Env::new();
    let ctx = env.context("ctx", &[("data.txt", "from the directory")]);
    let (out, dest) = local_dest(&env, "out");
    let res = run_with_stdin(
        &env,
        &["build", "-q", "-o", &dest, "-f", "-", s(&ctx)],
        b"FROM scratch\nCOPY data.txt /data.txt\n",
    );
    assert!(res.status.success(), "{}", stderr(&res));
    assert_eq!(
        std::fs::read_to_string(out.join("data.txt")).expect("copied"),
        "from the directory"
    );
}

/// Serves `body` to `n` connections on a loopback port; returns the URL.
fn serve(body: Vec<u8>, n: usize) -> String {
    format!(
        "http://{}/context.tar.gz",
        rbuild_test_support::http::serve("200 OK", body, n)
    )
}

#[test]
fn url_to_a_tarball_is_the_context() {
    if !can_build_runs() {
        return;
    }
    let env = Env::new();
    let url = serve(
        tar_gz(&[
            (
                "build/app.Dockerfile",
                "FROM scratch\nCOPY payload.txt /p.txt\n",
            ),
            ("payload.txt", "downloaded"),
        ]),
        1,
    );
    let (out, dest) = local_dest(&env, "out");
    env.ok(&[
        "build",
        "-q",
        "-o",
        &dest,
        "-f",
        "build/app.Dockerfile",
        &url,
    ]);
    assert_eq!(
        std::fs::read_to_string(out.join("p.txt")).expect("copied"),
        "downloaded"
    );
    // A URL whose Dockerfile is missing is a clear error.
    let url = serve(tar_gz(&[("payload.txt", "x")]), 1);
    let res = env.run(&["build", "-q", &url]);
    assert!(!res.status.success());
    assert!(stderr(&res).contains("no Dockerfile"), "{}", stderr(&res));
}

#[test]
fn git_url_with_ref_and_subdir_is_the_context() {
    if !can_build_runs() || require_tool("git").is_none() {
        return;
    }
    let env = Env::new();
    let repo = env.context(
        "repo",
        &[
            ("svc/Dockerfile", "FROM scratch\nCOPY . /svc/\n"),
            ("svc/version.txt", "v1"),
            ("other.txt", "outside the subdir"),
        ],
    );
    git(&repo, &["init", "-q"]);
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "one"]);
    git(&repo, &["tag", "release"]);
    std::fs::write(repo.join("svc/version.txt"), "v2").expect("write");
    git(&repo, &["commit", "-q", "-am", "two"]);

    let url = format!("file://{}#release:svc", repo.display());
    let (out, dest) = local_dest(&env, "out");
    env.ok(&["build", "-q", "-o", &dest, &url]);
    assert_eq!(
        std::fs::read_to_string(out.join("svc/version.txt")).expect("copied"),
        "v1"
    );
    assert!(!out.join("svc/.git").exists() && !out.join("other.txt").exists());

    let bad = format!("file://{}#no-such-branch", repo.display());
    let res = env.run(&["build", "-q", &bad]);
    assert!(!res.status.success());
    assert!(stderr(&res).contains("no-such-branch"), "{}", stderr(&res));
}

#[test]
fn debug_context_lists_paths_then_the_digest() {
    let env = Env::new();
    let ctx = env.context(
        "ctx",
        &[
            ("Dockerfile", "FROM scratch\n"),
            (".dockerignore", "*.log\n"),
            ("b/z.txt", "z"),
            ("a.txt", "a"),
            ("skip.log", "x"),
        ],
    );
    let out = stdout(&env.ok(&["debug", "context", s(&ctx)]));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        &lines[..lines.len() - 1],
        &[".dockerignore", "Dockerfile", "a.txt", "b/", "b/z.txt"],
        "{out}"
    );
    let digest = lines.last().expect("digest line");
    assert!(
        digest.starts_with("sha256:") && digest.len() == 71,
        "{digest}"
    );
    // The same content elsewhere has the same digest; a changed byte changes it.
    let again = stdout(&env.ok(&["debug", "context", s(&ctx)]));
    assert_eq!(again, out);
    std::fs::write(ctx.join("a.txt"), "A").expect("write");
    let changed = stdout(&env.ok(&["debug", "context", s(&ctx)]));
    assert_ne!(changed.lines().last(), out.lines().last());
}
