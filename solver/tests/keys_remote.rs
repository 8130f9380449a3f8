//! Keys of the remote-source ops (`Http`, `Git`): golden values, and what they depend on.
//! A change to the key function must show up here as a diff (DESIGN invariant 4).

use rbuild_graph::{GitOp, HttpOp, Op};
use rbuild_solver::keys::{vertex_key, KeyInputs};
use rbuild_types::Digest;

fn http(checksum: Option<&str>) -> Op {
    Op::Http(HttpOp {
        url: "https://example.com/f.tar.gz".into(),
        filename: "f.tar.gz".into(),
        checksum: checksum.map(str::to_string),
    })
}

fn git(keep_git_dir: bool) -> Op {
    Op::Git(GitOp {
        remote: "https://example.com/r.git".into(),
        reference: Some("main".into()),
        subdir: Some("sub".into()),
        keep_git_dir,
        checksum: None,
    })
}

fn key(op: &Op, resolved: Option<&Digest>) -> Digest {
    vertex_key(
        op,
        &KeyInputs {
            input_keys: vec![],
            manifest: resolved,
            selections: vec![],
        },
    )
}

#[test]
fn golden_remote_keys() {
    let body = Digest::of(b"body and last-modified");
    let commit = Digest::of(b"commit");
    let sum = format!("sha256:{}", "ab".repeat(32));
    let got = [
        ("http", key(&http(None), Some(&body))),
        ("http --checksum", key(&http(Some(&sum)), None)),
        ("git", key(&git(false), Some(&commit))),
        ("git --keep-git-dir", key(&git(true), Some(&commit))),
    ];
    let text: Vec<String> = got.iter().map(|(n, k)| format!("{n} {k}")).collect();
    let expected = [
        "http sha256:f25e063243ba38ab1776985e49587354455495ec2a07353ec512a323909db623",
        "http --checksum sha256:78889ccada23a3b1a3c5465b035a4e63b54ff34d608d04b9919ab3941ceeaf08",
        "git sha256:a66a18e7d250a7aa5d54e70f0dd9950d6198d94929b1f2a9145c6813bb9fdf01",
        "git --keep-git-dir sha256:e0768fed6b5148372edff032b12184992014f40cb0f927cdf8d96c96cc10b94e",
    ];
    assert_eq!(text, expected, "remote keys changed");
}

#[test]
fn keys_follow_what_was_resolved_and_the_op() {
    let (a, b) = (Digest::of(b"a"), Digest::of(b"b"));
    assert_ne!(key(&http(None), Some(&a)), key(&http(None), Some(&b)));
    assert_ne!(key(&git(false), Some(&a)), key(&git(false), Some(&b)));
    assert_ne!(key(&git(false), Some(&a)), key(&git(true), Some(&a)));
    let s1 = format!("sha256:{}", "01".repeat(32));
    let s2 = format!("sha256:{}", "02".repeat(32));
    assert_ne!(key(&http(Some(&s1)), None), key(&http(Some(&s2)), None));
    // The two kinds never collide, whatever the fields.
    assert_ne!(key(&http(None), Some(&a)), key(&git(false), Some(&a)));
}
