//! ADD of URLs and git repositories: each remote source becomes an `Http` or `Git` vertex
//! without inputs, and the ADD's `File` op copies from it like from a stage, as BuildKit's
//! `dispatchCopy` builds `llb.HTTP` / `llb.Git` states.

mod common;

use rbuild_graph::{CopyAction, FileAction, FileMode, GitOp, Graph, HttpOp, Op};

use common::{lower_bytes, opts};

fn lower_ok(src: &str) -> Graph {
    let g = lower_bytes(src.as_bytes(), &opts()).unwrap_or_else(|e| panic!("{src:?}: {e:?}"));
    g.validate().expect("valid graph");
    g
}

/// The copies of the target's `File` op, each with the op of the vertex it reads.
fn copies(g: &Graph) -> Vec<(CopyAction, Op)> {
    let v = g.vertex(g.target);
    let Op::File(f) = &v.op else {
        panic!("target is not a file op: {:?}", v.op)
    };
    f.actions
        .iter()
        .filter_map(|a| match a {
            FileAction::Copy(c) => Some((c.clone(), g.vertex(v.inputs[c.source]).op.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn url_becomes_an_http_vertex_copied_by_name() {
    let g = lower_ok("FROM busybox\nADD https://example.com/dl/tool.tar.gz?x=1 /opt/\n");
    let c = copies(&g);
    assert_eq!(c.len(), 1);
    let (copy, op) = &c[0];
    assert_eq!(
        op,
        &Op::Http(HttpOp {
            url: "https://example.com/dl/tool.tar.gz?x=1".into(),
            filename: "tool.tar.gz".into(),
            checksum: None,
        })
    );
    assert_eq!(copy.src, "/tool.tar.gz");
    assert_eq!(copy.dest, "/opt/");
    // Downloads are not extracted (only with an explicit --unpack=true).
    assert!(!copy.unpack);
    assert!(!copy.allow_empty_wildcard);
    // No build context is involved, and the vertex is named after the URL.
    assert!(!g
        .vertices
        .iter()
        .any(|v| matches!(v.op, Op::Context { .. })));
    let http = g
        .vertices
        .iter()
        .find(|v| matches!(v.op, Op::Http(_)))
        .expect("http vertex");
    assert_eq!(http.name, "https://example.com/dl/tool.tar.gz?x=1");
    assert!(http.inputs.is_empty());
    let last = g.image.history.last().expect("history");
    assert_eq!(
        last.created_by,
        "ADD https://example.com/dl/tool.tar.gz?x=1 /opt/ # buildkit"
    );
}

#[test]
fn flags_apply_to_the_copy_and_checksum_to_the_download() {
    let sum = format!("sha256:{}", "ab".repeat(32));
    let g = lower_ok(&format!(
        "FROM busybox\nWORKDIR /w\nARG SUM={sum}\n\
         ADD --chown=1:2 --chmod=755 --checksum=$SUM --unpack=true http://h/ renamed\n"
    ));
    let (copy, op) = &copies(&g)[0];
    assert_eq!(
        op,
        &Op::Http(HttpOp {
            url: "http://h/".into(),
            filename: "__unnamed__".into(),
            checksum: Some(sum.clone()),
        })
    );
    assert_eq!(copy.src, "/__unnamed__");
    assert_eq!(copy.dest, "/w/renamed");
    assert_eq!(copy.chown.as_deref(), Some("1:2"));
    assert_eq!(copy.chmod, Some(FileMode::Octal(0o755)));
    assert!(copy.unpack);
}

#[test]
fn git_sources_become_git_vertices_copied_whole() {
    let g = lower_ok(
        "FROM busybox\n\
         ADD --keep-git-dir https://example.com/r.git#v1.0:sub/dir /src/\n\
         ADD git@example.com:o/r.git /plain\n\
         ADD git://example.com/r##ref=main,subdir=x /csv\n",
    );
    let gits: Vec<&GitOp> = g
        .vertices
        .iter()
        .filter_map(|v| match &v.op {
            Op::Git(g) => Some(g),
            _ => None,
        })
        .collect();
    assert_eq!(
        gits,
        vec![
            &GitOp {
                remote: "https://example.com/r.git".into(),
                reference: Some("v1.0".into()),
                subdir: Some("sub/dir".into()),
                keep_git_dir: true,
                checksum: None,
            },
            &GitOp {
                remote: "git@example.com:o/r.git".into(),
                reference: None,
                subdir: None,
                keep_git_dir: false,
                checksum: None,
            },
            &GitOp {
                remote: "git://example.com/r".into(),
                reference: Some("main".into()),
                subdir: Some("x".into()),
                keep_git_dir: false,
                checksum: None,
            },
        ]
    );
    let (copy, op) = &copies(&g)[0];
    assert!(matches!(op, Op::Git(_)));
    assert_eq!((copy.src.as_str(), copy.dest.as_str()), ("/", "/csv"));
}

#[test]
fn local_and_remote_sources_mix_in_one_copy() {
    let g = lower_ok("FROM busybox\nADD a.txt https://h/b.txt https://h/r.git c.txt /d/\n");
    let c = copies(&g);
    let kinds: Vec<(&str, &str)> = c
        .iter()
        .map(|(copy, op)| (op.kind(), copy.src.as_str()))
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("context", "a.txt"),
            ("http", "/b.txt"),
            ("git", "/"),
            ("context", "c.txt"),
        ]
    );
    // Local archives are still extracted; downloads are not.
    assert!(c[0].0.unpack && !c[1].0.unpack);
}

#[test]
fn look_alikes_stay_local() {
    // `github.com/…` is a local path for ADD (BuildKit: indistinguishable from local), and
    // an http URL not ending in `.git` is a download.
    let g = lower_ok("FROM busybox\nADD github.com/o/r /x/\nADD https://h/r.git/raw /y/\n");
    let kinds: Vec<&str> = g.vertices.iter().map(|v| v.op.kind()).collect();
    assert!(kinds.contains(&"context") && kinds.contains(&"http"));
    assert!(!kinds.contains(&"git"));
}

#[test]
fn git_checksum_is_a_commit_prefix_carried_by_the_git_op() {
    let g = lower_ok("FROM busybox\nARG C=0aB1\nADD --checksum=$C https://h/r.git#v1 /src\n");
    let (_, op) = copies(&g).remove(0);
    let Op::Git(git) = op else {
        panic!("not a git op: {op:?}")
    };
    assert_eq!(git.checksum.as_deref(), Some("0aB1"));
    assert_eq!(git.reference.as_deref(), Some("v1"));
    // Without --checksum the op serialises as before (keys of existing builds unchanged).
    let g = lower_ok("FROM busybox\nADD https://h/r.git#v1 /src\n");
    let (_, op) = copies(&g).remove(0);
    let json = serde_json::to_string(&op).expect("json");
    assert!(!json.contains("checksum"), "{json}");
}

#[test]
fn one_vertex_per_identical_remote_source() {
    let g = lower_ok(
        "FROM busybox\nADD https://h/f.txt /a/\nADD https://h/f.txt /b/\n\
         ADD https://h/r.git#main /c/\nADD https://h/r.git#main /d/\nADD https://h/r.git#dev /e/\n",
    );
    let count = |kind: &str| g.vertices.iter().filter(|v| v.op.kind() == kind).count();
    assert_eq!((count("http"), count("git")), (1, 2));
}
