//! `BuildContext::select_view_excluding`: the view the solver keys and copies with gives the
//! same roots, entries and digest as the materialised `select_excluding`.

mod common;

use std::fs;

use rbuild_context::dockerignore::PatternMatcher;
use rbuild_context::{BuildContext, ContextEntry};

use common::tree;

fn context() -> (tempfile::TempDir, BuildContext) {
    let dir = tree(&[
        ("app/main.c", "c"),
        ("app/docs/a.md", "a"),
        ("app/docs/keep.md", "k"),
        ("app/tmp/x", "x"),
        ("apple/y", "y"),
        ("a.txt", "a"),
        ("b.txt", "b"),
        ("ignored.log", "i"),
    ]);
    let r = dir.path();
    fs::write(r.join(".dockerignore"), "*.log\n").expect("dockerignore");
    std::os::unix::fs::symlink("app", r.join("link")).expect("symlink");
    let ctx = BuildContext::from_dir(r, None).expect("context");
    (dir, ctx)
}

#[test]
fn view_matches_materialised_selection() {
    let (_dir, ctx) = context();
    let sources = [
        ".",
        "app",
        "app/",
        "*.txt",
        "ap*",
        "link",
        "a.txt",
        "app/docs/*",
    ];
    let excludes: [&[&str]; 3] = [&[], &["docs"], &["**/*.md", "!app/docs/keep.md", "tmp"]];
    for src in sources {
        for patterns in excludes {
            let m = PatternMatcher::new(patterns).expect("patterns");
            let sel = ctx.select_excluding(src, &m).expect("select");
            let view = ctx.select_view_excluding(src, &m).expect("view");
            assert_eq!(view.digest, sel.digest, "{src} {patterns:?}");
            let roots: Vec<ContextEntry> = view.roots().cloned().collect();
            assert_eq!(roots, sel.roots, "{src} {patterns:?}");
            let entries: Vec<ContextEntry> = (0..roots.len())
                .flat_map(|k| view.entries(&ctx, k))
                .collect();
            assert_eq!(entries, sel.entries, "{src} {patterns:?}");
            assert_eq!(view.len(), sel.roots.len() + sel.entries.len());
            assert_eq!(
                ctx.select_digest_excluding(src, &m).expect("digest"),
                sel.digest
            );
        }
    }
}

#[test]
fn view_entries_use_the_name_written() {
    let (_dir, ctx) = context();
    let view = ctx
        .select_view_excluding("link", &PatternMatcher::default())
        .expect("view");
    let rels: Vec<String> = view.entries(&ctx, 0).map(|e| e.rel).collect();
    assert_eq!(
        rels,
        [
            "link/docs",
            "link/docs/a.md",
            "link/docs/keep.md",
            "link/main.c",
            "link/tmp",
            "link/tmp/x"
        ]
    );
    assert!(view.entries(&ctx, 1).next().is_none(), "no second root");
    let app = ctx
        .select_view_excluding("app", &PatternMatcher::default())
        .expect("view");
    assert_eq!(
        app.digest, view.digest,
        "renaming the root keeps the digest"
    );
}

#[test]
fn empty_wildcard_view() {
    let (_dir, ctx) = context();
    let view = ctx
        .select_view_excluding("*.none", &PatternMatcher::default())
        .expect("view");
    assert!(view.is_empty());
    assert_eq!(view.len(), 0);
    assert_eq!(
        view.digest,
        ctx.select("*.none").expect("select").digest,
        "same digest as the materialised empty selection"
    );
}
