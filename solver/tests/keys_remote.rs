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
        "http sha256:51dd9ab16d1fd216678a2a0b868a04db1a824c16e7a692f1325ebe42880c24bb",
        "http --checksum sha256:fd7561bf36b7240ed13565df5d8ade402fbcc30e5196e8bc61801968db2d5bee",
        "git sha256:13bded3cb442fc417e7f958c61c3fc5cc34fb1384cda6123927d4fc170d3e56a",
        "git --keep-git-dir sha256:b3615d829224f922fc3dfd0f2300ebfe2b05a529939a267e96a5ac055952b39b",
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
