//! The first push of a large layer built here overlaps its compression with its upload
//! (`registry::push_compressing`): the registry gets the same blob an archive output of the
//! same build holds, and the compressed form is recorded, so a second push compresses nothing.

mod support;

use std::process::Command;

use support::{raw_json, require_tool, s, stderr, Env, Registry};

/// 20 MiB that gzip does not shrink to nothing (a byte pattern that varies).
fn big_file() -> Vec<u8> {
    let mut state: u32 = 1;
    (0..20 << 20)
        .map(|_| {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (state >> 24) as u8 & 0x3f
        })
        .collect()
}

#[test]
fn a_large_layer_is_uploaded_as_it_is_compressed_and_is_the_same_blob() {
    if require_tool("skopeo").is_none() {
        return;
    }
    let Some(registry) = Registry::start() else {
        return;
    };
    let env = Env::new();
    let ctx = env.context("ctx", &[("Dockerfile", "FROM scratch\nCOPY big /big\n")]);
    std::fs::write(ctx.join("big"), big_file()).unwrap();
    let name = format!("{}/team/big:1", registry.addr);
    env.ok(&["build", "-q", "-t", &name, "--push", s(&ctx)]);
    let pushed = raw_json(&name, &[]);
    let layer = pushed["layers"][0]["digest"].as_str().unwrap().to_string();

    // The same build's OCI archive (compressed the ordinary way, in another store) holds the
    // same blob: the overlapped upload sent exactly the compressed form.
    let other = Env::new();
    let layout = other.build_oci("layout", &[], &ctx);
    let manifest = support::oci_manifest(&layout);
    assert_eq!(manifest["layers"][0]["digest"], layer.as_str());

    // The registry serves it whole (skopeo checks every digest as it copies).
    let copy = Command::new("skopeo")
        .args(["copy", "-q", "--src-tls-verify=false"])
        .arg(format!("docker://{name}"))
        .arg(format!("oci:{}:x", s(&env.path("copied"))))
        .output()
        .expect("run skopeo");
    assert!(copy.status.success(), "{}", stderr(&copy));

    // Pushed again elsewhere: the compressed form is reused, the manifest is the same.
    let again = format!("{}/team/big-again:1", registry.addr);
    env.ok(&["tag", &name, &again]);
    env.ok(&["push", &again]);
    assert_eq!(raw_json(&again, &[]), pushed);
}
