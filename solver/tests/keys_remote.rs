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
        "http sha256:12f4871335ecf6e64ad82ffe38cca896d56aa3971e3801ec09bcb34ba926ad29",
        "http --checksum sha256:565dab0697f769e10a8300b685021b148f968c2ad9bb08900f44d452b7a2c83c",
        "git sha256:c97e69b050ebc20db5a5d3e9a63802e018bc441cdf6b50195b7f9a0aaf43f62f",
        "git --keep-git-dir sha256:2e2583d75664b6f32a36099910854119e9f09dd8bbf48f4405ad73489a9c6780",
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
