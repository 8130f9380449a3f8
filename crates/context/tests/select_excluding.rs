//! `BuildContext::select_excluding` (COPY --exclude): what is left out, and the digest.

mod common;

use rbuild_context::dockerignore::PatternMatcher;
use rbuild_context::BuildContext;

use common::{tree, write};

fn matcher(patterns: &[&str]) -> PatternMatcher {
    PatternMatcher::new(patterns).expect("valid patterns")
}

fn rels(sel: &rbuild_context::Selection) -> Vec<&str> {
    sel.entries.iter().map(|e| e.rel.as_str()).collect()
}

#[test]
fn exclusions_filter_entries_and_digest() {
    let dir = tree(&[
        ("app/main.c", "c"),
        ("app/README.md", "r"),
        ("app/docs/a.md", "a"),
        ("app/docs/keep.md", "k"),
        ("app/tmp/x", "x"),
        ("a.txt", "a"),
        ("b.txt", "b"),
    ]);
    let r = dir.path();
    let ctx = BuildContext::from_dir(r, None).expect("context");
    // No patterns: exactly `select`.
    assert_eq!(
        ctx.select_excluding("app", &PatternMatcher::default())
            .expect("select"),
        ctx.select("app").expect("select")
    );
    let m = matcher(&["**/*.md", "tmp", "!docs/keep.md"]);
    let sel = ctx.select_excluding("app", &m).expect("select");
    assert_eq!(
        rels(&sel),
        ["app/docs", "app/docs/keep.md", "app/main.c"],
        "patterns are relative to the source; exceptions keep their parents"
    );
    // Changing an excluded file keeps the digest; changing a kept one does not.
    write(r, "app/README.md", "changed");
    let ctx2 = BuildContext::from_dir(r, None).expect("context");
    assert_eq!(
        ctx2.select_excluding("app", &m).expect("select").digest,
        sel.digest
    );
    write(r, "app/main.c", "changed");
    let ctx3 = BuildContext::from_dir(r, None).expect("context");
    assert_ne!(
        ctx3.select_excluding("app", &m).expect("select").digest,
        sel.digest
    );
    // File roots (a wildcard's matches) are tested by their base name.
    let txt = ctx
        .select_excluding("*.txt", &matcher(&["b.txt"]))
        .expect("select");
    let roots: Vec<&str> = txt.roots.iter().map(|e| e.rel.as_str()).collect();
    assert_eq!(roots, ["a.txt"]);
}

#[test]
fn digest_only_selection_equals_the_full_one() {
    let dir = tree(&[
        ("app/main.c", "c"),
        ("app/docs/a.md", "a"),
        ("app/docs/keep.md", "k"),
        ("a.txt", "a"),
        ("b.log", "b"),
    ]);
    let r = dir.path();
    let ctx = BuildContext::from_dir(r, None).expect("context");
    let cases: [(&str, &[&str]); 5] = [
        (".", &[]),
        ("app", &["docs", "!docs/keep.md"]),
        ("*.txt", &[]),
        ("app/docs/a.md", &[]),
        ("*", &["*.log"]),
    ];
    for (src, patterns) in cases {
        let m = matcher(patterns);
        let full = ctx.select_excluding(src, &m).expect("select");
        let only = ctx.select_digest_excluding(src, &m).expect("digest");
        assert_eq!(only, full.digest, "{src} {patterns:?}");
    }
    assert!(ctx
        .select_digest_excluding("missing", &matcher(&[]))
        .is_err());
}
