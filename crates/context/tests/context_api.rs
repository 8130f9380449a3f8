//! The `BuildContext` API the solver and CLI use, on real temporary directories.

mod common;

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};

use rbuild_context::{debug_listing, BuildContext, ContextError, EntryKind};

use common::{rels, write};

fn sample() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let r = dir.path();
    write(r, "Dockerfile", "FROM scratch\n");
    write(r, "a.txt", "a");
    write(r, "b.txt", "b");
    write(r, "src/main.rs", "fn main() {}");
    write(r, "src/lib/mod.rs", "mod x;");
    write(r, "target/debug/big", "junk");
    write(r, "target/keep.txt", "keep");
    write(r, "logs/x.log", "log");
    write(
        r,
        ".dockerignore",
        "# comment\ntarget\n!target/keep.txt\n*.log\nlogs\n",
    );
    symlink("a.txt", r.join("link")).expect("symlink");
    dir
}

#[test]
fn list_honours_dockerignore_and_exceptions() {
    let dir = sample();
    let ctx = BuildContext::from_dir(dir.path(), None).expect("context");
    assert_eq!(
        rels(&ctx),
        vec![
            ".dockerignore",
            "Dockerfile",
            "a.txt",
            "b.txt",
            "link",
            "src",
            "src/lib",
            "src/lib/mod.rs",
            "src/main.rs",
            "target",
            "target/keep.txt",
        ]
    );
    let list = ctx.list().expect("list");
    let link = list.iter().find(|e| e.rel == "link").expect("link listed");
    assert_eq!(link.kind, EntryKind::Symlink);
    assert_eq!(link.link_target.as_deref(), Some("a.txt"));
    assert_eq!(ctx.root(), Some(dir.path()));
}

#[test]
fn dockerfile_specific_ignore_file_wins() {
    let dir = sample();
    write(dir.path(), "build/app.Dockerfile", "FROM scratch\n");
    write(dir.path(), "build/app.Dockerfile.dockerignore", "src\n");
    let df = dir.path().join("build/app.Dockerfile");
    let ctx = BuildContext::from_dir(dir.path(), Some(&df)).expect("context");
    let names = rels(&ctx);
    assert!(!names.iter().any(|n| n.starts_with("src")), "{names:?}");
    assert!(names.contains(&"target/debug/big".to_string()), "{names:?}");
}

#[test]
fn bad_ignore_file_names_the_file() {
    let dir = sample();
    write(dir.path(), ".dockerignore", "ok\n[\n");
    let err = BuildContext::from_dir(dir.path(), None).expect_err("bad pattern");
    assert!(matches!(err, ContextError::IgnoreFile { .. }), "{err:?}");
    assert!(err.to_string().contains(".dockerignore"), "{err}");
}

#[test]
fn digest_ignores_mtime_but_not_content_or_mode() {
    let dir = sample();
    let digest = || {
        BuildContext::from_dir(dir.path(), None)
            .expect("ctx")
            .digest()
            .expect("digest")
    };
    let d0 = digest();
    let file = dir.path().join("a.txt");
    let f = fs::File::options().write(true).open(&file).expect("open");
    f.set_modified(std::time::SystemTime::UNIX_EPOCH)
        .expect("set mtime");
    drop(f);
    let d1 = digest();
    assert_eq!(d0, d1, "mtime must not matter");
    fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).expect("chmod");
    let d2 = digest();
    assert_ne!(d1, d2, "mode matters");
    write(dir.path(), "a.txt", "changed");
    let d3 = digest();
    assert_ne!(d2, d3, "content matters");
    write(dir.path(), "logs/other.log", "ignored file");
    let d4 = digest();
    assert_eq!(d3, d4, "excluded files must not matter");
}

#[test]
fn select_file_dir_root_and_wildcards() {
    let dir = sample();
    let ctx = BuildContext::from_dir(dir.path(), None).expect("context");

    let file = ctx.select("/a.txt").expect("file");
    assert_eq!(file.roots.len(), 1);
    assert_eq!(file.roots[0].rel, "a.txt");
    assert!(file.entries.is_empty());

    let src = ctx.select("./src/").expect("dir");
    assert_eq!(src.roots[0].kind, EntryKind::Dir);
    let below: Vec<&str> = src.entries.iter().map(|e| e.rel.as_str()).collect();
    assert_eq!(below, vec!["src/lib", "src/lib/mod.rs", "src/main.rs"]);

    let all = ctx.select(".").expect("root");
    assert_eq!(all.roots[0].rel, ".");
    assert_eq!(all.entries.len(), ctx.list().expect("list").len());

    let txt = ctx.select("*.txt").expect("wildcard");
    let roots: Vec<&str> = txt.roots.iter().map(|e| e.rel.as_str()).collect();
    assert_eq!(roots, vec!["a.txt", "b.txt"]);

    let nested = ctx.select("s?c/*.rs").expect("wildcard");
    assert_eq!(nested.roots.len(), 1);
    assert_eq!(nested.roots[0].rel, "src/main.rs");

    let none = ctx.select("*.nothing").expect("empty wildcard");
    assert!(none.roots.is_empty() && none.entries.is_empty());

    let escaped = ctx.select("../../../a.txt").expect("clamped to root");
    assert_eq!(escaped.digest, file.digest);
}

#[test]
fn missing_or_excluded_sources_are_not_found() {
    let dir = sample();
    let ctx = BuildContext::from_dir(dir.path(), None).expect("context");
    let err = ctx.select("missing.txt").expect_err("missing");
    assert_eq!(
        err.to_string(),
        "failed to compute cache key: \"/missing.txt\": not found"
    );
    assert!(matches!(
        ctx.select("logs/x.log"),
        Err(ContextError::NotFound { .. })
    ));
    assert!(matches!(
        ctx.select("target/debug/big"),
        Err(ContextError::NotFound { .. })
    ));
    assert!(ctx.select("target/keep.txt").is_ok());
}

#[test]
fn selection_digest_tracks_content_not_dir_name() {
    let one = tempfile::tempdir().expect("tempdir");
    write(one.path(), "app/x", "1");
    write(one.path(), "app/y/z", "2");
    write(one.path(), "web/x", "1");
    write(one.path(), "web/y/z", "2");
    write(one.path(), "f1", "same");
    write(one.path(), "f2", "same");
    let ctx = BuildContext::from_dir(one.path(), None).expect("context");
    let app = ctx.select("app").expect("app").digest;
    let web = ctx.select("web").expect("web").digest;
    assert_eq!(app, web, "a directory's own name does not matter to COPY");
    let f1 = ctx.select("f1").expect("f1").digest;
    let f2 = ctx.select("f2").expect("f2").digest;
    assert_ne!(f1, f2, "a file root's basename is part of the copy");
    write(one.path(), "web/y/z", "3");
    let ctx = BuildContext::from_dir(one.path(), None).expect("context");
    assert_ne!(app, ctx.select("web").expect("web").digest);
}

#[test]
fn debug_listing_format() {
    let dir = sample();
    let ctx = BuildContext::from_dir(dir.path(), None).expect("context");
    let text = debug_listing(&ctx).expect("listing");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], ".dockerignore");
    assert!(lines.contains(&"src/"));
    assert!(lines.contains(&"src/lib/"));
    assert!(lines.contains(&"link"));
    let last = lines.last().expect("digest line");
    assert_eq!(*last, ctx.digest().expect("digest").to_string());
}

#[test]
fn empty_context() {
    let ctx = BuildContext::empty();
    assert!(ctx.root().is_none());
    assert!(ctx.list().expect("list").is_empty());
    assert!(matches!(
        ctx.select("a"),
        Err(ContextError::NotFound { .. })
    ));
    assert!(ctx.select(".").expect("root").entries.is_empty());
    assert_eq!(
        debug_listing(&ctx).expect("listing").lines().count(),
        1,
        "only the digest line"
    );
}

#[test]
fn root_must_be_a_directory() {
    let dir = sample();
    let err = BuildContext::from_dir(&dir.path().join("a.txt"), None).expect_err("file root");
    assert!(matches!(err, ContextError::NotADirectory { .. }), "{err:?}");
    let err = BuildContext::from_dir(&dir.path().join("nope"), None).expect_err("missing root");
    assert!(matches!(err, ContextError::Io { .. }), "{err:?}");
}

#[test]
fn context_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<BuildContext>();
}

#[test]
fn select_follows_symlinks_inside_the_root() {
    let dir = tempfile::tempdir().expect("tempdir");
    let r = dir.path();
    write(r, "real/x", "1");
    write(r, "real/sub/y", "2");
    write(r, "file.txt", "content");
    symlink("real", r.join("dirlink")).expect("symlink");
    symlink("/file.txt", r.join("abslink")).expect("symlink");
    symlink("../../../file.txt", r.join("real/escape")).expect("symlink");
    symlink("nowhere", r.join("dangling")).expect("symlink");
    symlink("loop2", r.join("loop1")).expect("symlink");
    symlink("loop1", r.join("loop2")).expect("symlink");
    let ctx = BuildContext::from_dir(r, None).expect("context");

    let via_link = ctx.select("dirlink").expect("dir link");
    assert_eq!(via_link.roots[0].rel, "dirlink");
    assert_eq!(via_link.roots[0].kind, EntryKind::Dir);
    let rels: Vec<&str> = via_link.entries.iter().map(|e| e.rel.as_str()).collect();
    assert_eq!(
        rels,
        vec![
            "dirlink/escape",
            "dirlink/sub",
            "dirlink/sub/y",
            "dirlink/x"
        ]
    );
    assert_eq!(via_link.digest, ctx.select("real").expect("real").digest);

    let through = ctx.select("dirlink/sub/y").expect("parent link");
    assert_eq!(through.roots[0].rel, "dirlink/sub/y");
    assert_eq!(through.roots[0].host_path, r.join("real/sub/y"));

    let abs = ctx.select("abslink").expect("absolute link");
    assert_eq!(abs.roots[0].kind, EntryKind::File);
    assert_eq!(abs.roots[0].host_path, r.join("file.txt"));

    let esc = ctx.select("real/escape").expect("clamped link");
    assert_eq!(esc.roots[0].host_path, r.join("file.txt"));

    assert!(matches!(
        ctx.select("dangling"),
        Err(ContextError::NotFound { .. })
    ));
    assert!(matches!(
        ctx.select("loop1"),
        Err(ContextError::SymlinkLoop { .. })
    ));
}

#[test]
fn root_given_through_a_symlink_is_walked() {
    let dir = sample();
    let outer = tempfile::tempdir().expect("tempdir");
    let link = outer.path().join("ctx");
    symlink(dir.path(), &link).expect("symlink");
    let via_link = BuildContext::from_dir(&link, None).expect("context");
    let direct = BuildContext::from_dir(dir.path(), None).expect("context");
    assert_eq!(rels(&via_link), rels(&direct));
    assert_eq!(
        via_link.digest().expect("digest"),
        direct.digest().expect("digest")
    );
}

#[test]
fn excluded_unreadable_directories_are_never_opened() {
    let dir = sample();
    let locked = dir.path().join("logs");
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o000)).expect("chmod");
    let result = BuildContext::from_dir(dir.path(), None);
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o755)).expect("chmod back");
    let ctx = result.expect("excluded dir is pruned before it is read");
    assert!(!rels(&ctx).iter().any(|r| r.starts_with("logs")));
}

#[test]
fn wildcards_look_through_symlinked_directories() {
    let dir = tempfile::tempdir().expect("tempdir");
    let r = dir.path();
    write(r, "real/a.txt", "a");
    write(r, "real/b.md", "b");
    write(r, "other/a.txt", "other");
    symlink("real", r.join("dirlink")).expect("symlink");
    let ctx = BuildContext::from_dir(r, None).expect("context");

    let sel = ctx.select("dirlink/*.txt").expect("wildcard through link");
    assert_eq!(sel.roots.len(), 1);
    assert_eq!(sel.roots[0].rel, "dirlink/a.txt");
    assert_eq!(sel.roots[0].host_path, r.join("real/a.txt"));

    let sel = ctx.select("*/a.txt").expect("wildcard dirs");
    let roots: Vec<&str> = sel.roots.iter().map(|e| e.rel.as_str()).collect();
    assert_eq!(roots, vec!["dirlink/a.txt", "other/a.txt", "real/a.txt"]);

    let sel = ctx.select("dir*").expect("wildcard matching a dir link");
    assert_eq!(sel.roots[0].kind, EntryKind::Dir);
    let below: Vec<&str> = sel.entries.iter().map(|e| e.rel.as_str()).collect();
    assert_eq!(below, vec!["dirlink/a.txt", "dirlink/b.md"]);
}

#[test]
fn streamed_listing_equals_text_and_reports_write_errors() {
    struct Broken;
    impl std::io::Write for Broken {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::from(std::io::ErrorKind::BrokenPipe))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let dir = sample();
    let ctx = BuildContext::from_dir(dir.path(), None).expect("context");
    let mut out = Vec::new();
    rbuild_context::write_debug_listing(&ctx, &mut out).expect("write");
    assert_eq!(
        String::from_utf8(out).expect("utf-8"),
        debug_listing(&ctx).expect("listing")
    );
    let err = rbuild_context::write_debug_listing(&ctx, Broken).expect_err("broken pipe");
    assert!(matches!(err, ContextError::Output { .. }), "{err}");
}
