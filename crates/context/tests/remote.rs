//! Git and URL contexts through the real adapters of the `RemoteSource` port ([`GitCli`] and
//! `rbuild-oci`'s `HttpRemote`): a local repository cloned through `file://`, and a tarball
//! served by a tiny HTTP server on 127.0.0.1 started by the test.

use std::path::Path;

use rbuild_archive::testutil::{compress, HeaderFormat, TarBuilder, TestEntry};
use rbuild_archive::ArchiveFormat;
use rbuild_context::{fetch_url, BuildContext, ContextError, ContextSource, GitCli, GitSpec};
use rbuild_oci::http::HttpRemote;
use rbuild_oci::registry::RegistryConfig;
use rbuild_test_support::git::git;
use rbuild_test_support::{http, privileges, require_tool};

fn have_git() -> bool {
    require_tool("git").is_some()
}

/// A repository with two commits on `main` and a tag `v1` on the first.
fn repo(dir: &Path) -> (String, String) {
    std::fs::create_dir_all(dir.join("app")).expect("mkdir");
    git(dir, &["init", "-q"]);
    std::fs::write(dir.join("Dockerfile"), "FROM scratch\nCOPY . /\n").expect("write");
    std::fs::write(dir.join("app/Dockerfile"), "FROM scratch\n").expect("write");
    std::fs::write(dir.join("app/v.txt"), "one").expect("write");
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", "one"]);
    git(dir, &["tag", "v1"]);
    let first = git(dir, &["rev-parse", "HEAD"]);
    std::fs::write(dir.join("app/v.txt"), "two").expect("write");
    git(dir, &["commit", "-q", "-am", "two"]);
    let second = git(dir, &["rev-parse", "HEAD"]);
    (first, second)
}

fn read(ctx: &BuildContext, rel: &str) -> String {
    let sel = ctx.select(rel).expect("select");
    std::fs::read_to_string(&sel.roots[0].host_path).expect("read")
}

fn spec(url: &str) -> GitSpec {
    match ContextSource::classify(url).expect("classify") {
        ContextSource::Git(g) => g,
        other => panic!("{other:?}"),
    }
}

#[test]
fn git_contexts_honour_ref_and_subdir() {
    if !have_git() {
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let (first, _) = repo(tmp.path());
    let url = format!("file://{}", tmp.path().display());

    let head = BuildContext::from_git(&GitCli, &spec(&url), None).expect("HEAD");
    assert_eq!(read(&head, "app/v.txt"), "two");
    let names: Vec<String> = head
        .list()
        .expect("list")
        .into_iter()
        .map(|e| e.rel)
        .collect();
    assert!(!names.iter().any(|n| n.starts_with(".git")), "{names:?}");

    let tag =
        BuildContext::from_git(&GitCli, &spec(&format!("{url}#v1:app")), None).expect("tag+subdir");
    assert_eq!(read(&tag, "v.txt"), "one");
    let commit =
        BuildContext::from_git(&GitCli, &spec(&format!("{url}#{first}")), None).expect("commit");
    assert_eq!(read(&commit, "app/v.txt"), "one");
    let branch =
        BuildContext::from_git(&GitCli, &spec(&format!("{url}#main:app")), None).expect("branch");
    assert_eq!(read(&branch, "v.txt"), "two");
}

#[test]
fn git_errors_are_clear() {
    if !have_git() {
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    repo(tmp.path());
    let url = format!("file://{}", tmp.path().display());
    let err =
        BuildContext::from_git(&GitCli, &spec(&format!("{url}#nosuchref")), None).expect_err("ref");
    assert!(matches!(err, ContextError::Git { .. }), "{err:?}");
    assert!(err.to_string().contains("nosuchref"), "{err}");
    let err =
        BuildContext::from_git(&GitCli, &spec(&format!("{url}#:nope")), None).expect_err("subdir");
    assert!(matches!(err, ContextError::GitSubdir { .. }), "{err}");
    let err =
        BuildContext::from_git(&GitCli, &spec(&format!("{url}#:../..")), None).expect_err("escape");
    assert!(matches!(err, ContextError::GitSubdir { .. }), "{err}");
    let err =
        BuildContext::from_git(&GitCli, &spec(&url), Some("missing.Dockerfile")).expect_err("df");
    assert!(
        matches!(err, ContextError::MissingDockerfile { .. }),
        "{err}"
    );
    let err = BuildContext::from_git(&GitCli, &spec("file:///nonexistent/repo.git"), None)
        .expect_err("no repo");
    assert!(err.to_string().contains("/nonexistent/repo.git"), "{err}");
}

/// The HTTP half of the `RemoteSource` port, as a build has it without a configuration file.
fn http_remote() -> HttpRemote {
    HttpRemote::new(RegistryConfig::default())
}

/// Serves `body` (with `status`) to each of `n` connections; returns the URL of a tarball.
fn serve(status: &'static str, body: Vec<u8>, n: usize) -> String {
    format!("http://{}/ctx.tar.gz", http::serve(status, body, n))
}

#[test]
fn url_contexts_download_and_unpack() {
    let raw = TarBuilder::new()
        .with(TestEntry::file("Dockerfile", "FROM scratch\n").format(HeaderFormat::Gnu))
        .finish();
    let gz = compress(&raw, ArchiveFormat::TarGzip).expect("gz");

    let url = serve("200 OK", gz.clone(), 1);
    assert_eq!(
        ContextSource::classify(&url).expect("classify"),
        ContextSource::Url(url.clone())
    );
    let bytes = fetch_url(&http_remote(), &url).expect("download");
    assert_eq!(bytes, gz);
    let ctx = BuildContext::from_tar(bytes.as_slice(), Some("Dockerfile"), &privileges())
        .expect("context");
    assert_eq!(read(&ctx, "Dockerfile"), "FROM scratch\n");

    let missing = serve("404 Not Found", b"no".to_vec(), 1);
    let err = fetch_url(&http_remote(), &missing).expect_err("404");
    assert!(err.to_string().contains("404"), "{err}");
    assert!(err.to_string().contains(&missing), "{err}");
}
