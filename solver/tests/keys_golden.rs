//! Golden cache keys: a change to the key function must show up here as a diff
//! (DESIGN invariant 4). Update the expected values only for a deliberate change, and bump
//! `KEY_VERSION` with it.

use rbuild_graph::{CopyAction, ExecOp, FileAction, FileOp, ImageOp, NetworkMode, Op};
use rbuild_solver::keys::{vertex_key, KeyInputs};
use rbuild_test_support::fakes::{context_op, copy_action};
use rbuild_types::{Digest, ImageRef, Platform};

fn exec() -> Op {
    Op::Exec(ExecOp {
        platform: "linux/amd64".parse().expect("platform"),
        args: vec!["/bin/sh".into(), "-c".into(), "echo hi".into()],
        env: vec!["PATH=/bin".into()],
        cwd: "/".into(),
        user: String::new(),
        network: NetworkMode::Default,
        mounts: vec![],
        security: Default::default(),
        proxy_env: Default::default(),
        meta: Default::default(),
    })
}

fn copy() -> Op {
    Op::File(FileOp {
        actions: vec![FileAction::Copy(CopyAction {
            chmod: Some(rbuild_graph::FileMode::Octal(0o644)),
            ..copy_action(1, "a.txt", "/app/")
        })],
    })
}

fn keys() -> Vec<(&'static str, Digest)> {
    let base = Digest::of(b"manifest");
    let parent = Digest::of(b"parent");
    let selected = Digest::of(b"selected content");
    let image = Op::Image(ImageOp {
        reference: ImageRef::parse("busybox").unwrap(),
        platform: "linux/amd64".parse::<Platform>().unwrap(),
    });
    vec![
        ("scratch", vertex_key(&Op::Scratch, &KeyInputs::default())),
        (
            "image",
            vertex_key(
                &image,
                &KeyInputs {
                    manifest: Some(&base),
                    ..KeyInputs::default()
                },
            ),
        ),
        ("context", vertex_key(&context_op(), &KeyInputs::default())),
        (
            "exec",
            vertex_key(
                &exec(),
                &KeyInputs {
                    input_keys: vec![Some(parent)],
                    ..KeyInputs::default()
                },
            ),
        ),
        (
            "copy",
            vertex_key(
                &copy(),
                &KeyInputs {
                    input_keys: vec![Some(parent), None],
                    manifest: None,
                    selections: vec![Some(selected)],
                },
            ),
        ),
    ]
}

#[test]
fn keys_are_pinned() {
    let text: String = keys()
        .iter()
        .map(|(name, k)| format!("{name} {k}\n"))
        .collect();
    let golden =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/keys/golden.txt");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(golden.parent().unwrap()).unwrap();
        std::fs::write(&golden, &text).unwrap();
    }
    let expected = std::fs::read_to_string(&golden)
        .expect("testdata/keys/golden.txt (UPDATE_GOLDEN=1 writes it)");
    assert_eq!(
        text, expected,
        "cache keys changed: bump KEY_VERSION if deliberate, then UPDATE_GOLDEN=1"
    );
}

#[test]
fn every_input_matters() {
    let parent = Digest::of(b"parent");
    let other = Digest::of(b"other parent");
    let a = vertex_key(
        &exec(),
        &KeyInputs {
            input_keys: vec![Some(parent)],
            ..KeyInputs::default()
        },
    );
    let b = vertex_key(
        &exec(),
        &KeyInputs {
            input_keys: vec![Some(other)],
            ..KeyInputs::default()
        },
    );
    assert_ne!(a, b, "the parent's key is an input");
    let mut arm = exec();
    if let Op::Exec(e) = &mut arm {
        e.platform = "linux/arm64".parse().expect("platform");
    }
    let c = vertex_key(
        &arm,
        &KeyInputs {
            input_keys: vec![Some(parent)],
            ..KeyInputs::default()
        },
    );
    assert_ne!(a, c, "the platform a RUN runs as is an input");
    let sel = |d: &[u8]| {
        vertex_key(
            &copy(),
            &KeyInputs {
                input_keys: vec![Some(parent), None],
                manifest: None,
                selections: vec![Some(Digest::of(d))],
            },
        )
    };
    assert_ne!(sel(b"x"), sel(b"y"), "selected content is an input");
}

#[test]
fn proxy_build_args_are_not_in_the_key() {
    // BuildKit's ExecOp.CacheMap clears Meta.ProxyEnv: a proxy changes no key.
    let inputs = KeyInputs {
        input_keys: vec![Some(Digest::of(b"parent"))],
        ..KeyInputs::default()
    };
    let Op::Exec(mut with_proxy) = exec() else {
        unreachable!()
    };
    with_proxy.proxy_env = rbuild_graph::ProxyEnv::from_build_args([
        ("HTTP_PROXY", "http://user:pass@proxy:3128"),
        ("no_proxy", "localhost"),
    ]);
    assert_eq!(
        vertex_key(&Op::Exec(with_proxy), &inputs),
        vertex_key(&exec(), &inputs)
    );
}

#[test]
fn add_host_ulimit_and_shm_size_are_in_the_key() {
    // BuildKit's Meta.extraHosts and Meta.ulimit are in the op digest; the golden `exec` key
    // above (no such flags) is unchanged by the field's existence.
    let inputs = KeyInputs {
        input_keys: vec![Some(Digest::of(b"parent"))],
        ..KeyInputs::default()
    };
    let with = |f: &dyn Fn(&mut rbuild_graph::ExecMeta)| {
        let Op::Exec(mut e) = exec() else {
            unreachable!()
        };
        f(&mut e.meta);
        vertex_key(&Op::Exec(e), &inputs)
    };
    let plain = vertex_key(&exec(), &inputs);
    let keys = [
        plain,
        with(&|m| m.extra_hosts = vec!["db:10.0.0.2".parse().unwrap()]),
        with(&|m| m.extra_hosts = vec!["db:10.0.0.3".parse().unwrap()]),
        with(&|m| m.ulimits = vec!["nofile=512:512".parse().unwrap()]),
        with(&|m| m.ulimits = vec!["nofile=512:1024".parse().unwrap()]),
        with(&|m| m.shm_size = Some(128 << 20)),
    ];
    for (i, a) in keys.iter().enumerate() {
        for b in &keys[i + 1..] {
            assert_ne!(a, b);
        }
    }
    assert_eq!(with(&|_| {}), plain, "a default meta writes nothing");
}
