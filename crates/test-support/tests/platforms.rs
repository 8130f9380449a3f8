//! The multi-platform fixtures (issue 15): busybox for arm64 from busybox-static:arm64's
//! package file, the amd64+arm64 image index in a registry, QEMU's binfmt_misc handler for
//! aarch64, and Go cross-compiling (and, emulated, running) for arm64.

use std::process::Command;

use rbuild_test_support::debs::busybox_binary_for;
use rbuild_test_support::emulator::{require_emulator, BINFMT_D};
use rbuild_test_support::go::{go_command, go_toolchain, hello_go_dir, is_static_elf};
use rbuild_test_support::http::request;
use rbuild_test_support::images::{
    blob, busybox_arm64_layout, busybox_layout, busybox_multi_layout, LayoutImage, OCI_INDEX,
    OCI_MANIFEST,
};
use rbuild_test_support::registry::BUSYBOX_MULTI_REPO;
use rbuild_test_support::run::run_ok;
use rbuild_test_support::{require, require_tool, Registry};
use rbuild_types::Digest;

/// The ELF `e_machine` of aarch64.
const EM_AARCH64: u16 = 0xb7;

fn elf_machine(bytes: &[u8]) -> u16 {
    assert_eq!(&bytes[..4], b"\x7fELF", "an ELF file");
    u16::from_le_bytes([bytes[18], bytes[19]])
}

#[test]
fn arm64_busybox_layout_is_linux_arm64_v8() {
    let Some(layout) = busybox_arm64_layout() else {
        return;
    };
    let image = LayoutImage::read(&layout);
    assert_eq!(Digest::of(&image.manifest_bytes), image.manifest_digest);
    let [config, layer] = image.blobs()[..] else {
        panic!("one config and one layer: {:?}", image.blobs());
    };
    let config: serde_json::Value = serde_json::from_slice(&blob(&layout, &config)).unwrap();
    assert_eq!(config["architecture"], "arm64");
    assert_eq!(config["variant"], "v8");
    assert_eq!(config["os"], "linux");
    let out = tempfile::tempdir().unwrap();
    run_ok(
        Command::new("tar")
            .arg("-xzf")
            .arg(layout.join("blobs/sha256").join(layer.hex()))
            .arg("-C")
            .arg(out.path())
            .arg("./bin/busybox"),
        "tar -x busybox",
    );
    let binary = std::fs::read(out.path().join("bin/busybox")).unwrap();
    assert_eq!(elf_machine(&binary), EM_AARCH64);
    // The same binary as the package file's, and not the host's image.
    assert_eq!(
        binary,
        std::fs::read(busybox_binary_for("arm64").unwrap()).unwrap()
    );
    if let Some(host) = busybox_layout() {
        assert_ne!(
            LayoutImage::read(&host).manifest_digest,
            image.manifest_digest
        );
    }
    assert_eq!(busybox_arm64_layout(), Some(layout), "built once");
}

#[test]
fn the_registry_serves_the_multi_platform_index() {
    let Some(multi) = busybox_multi_layout() else {
        return;
    };
    let index = LayoutImage::read(&multi);
    assert!(index.is_index());
    let children = index.children();
    let platforms: Vec<&str> = children.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(platforms, ["linux/amd64", "linux/arm64/v8"]);
    let Some(registry) = Registry::with_busybox_multi() else {
        return;
    };
    let got = request(
        &registry.addr,
        "GET",
        &format!("/v2/{BUSYBOX_MULTI_REPO}/manifests/latest"),
        &[("Accept", OCI_INDEX)],
        b"",
    )
    .unwrap();
    assert_eq!(got.status, 200, "{got:?}");
    assert_eq!(got.body, index.manifest_bytes);
    assert_eq!(got.header("content-type"), Some(OCI_INDEX));
    for (platform, digest) in children {
        let child = request(
            &registry.addr,
            "GET",
            &format!("/v2/{BUSYBOX_MULTI_REPO}/manifests/{digest}"),
            &[("Accept", OCI_MANIFEST)],
            b"",
        )
        .unwrap();
        assert_eq!(child.status, 200, "{platform}: {child:?}");
        assert_eq!(Digest::of(&child.body), digest);
    }
}

#[test]
fn arm64_busybox_runs_under_emulation() {
    let Some(busybox) = busybox_binary_for("arm64") else {
        return;
    };
    if !require_emulator("aarch64") {
        return;
    }
    let machine = run_ok(
        Command::new(&busybox).args(["uname", "-m"]),
        "arm64 busybox uname -m",
    );
    assert_eq!(machine, "aarch64");
}

#[test]
fn go_cross_compiles_hello_for_arm64() {
    let Some(mut go) = go_command() else {
        return;
    };
    let out = tempfile::tempdir().unwrap();
    let hello = out.path().join("hello");
    run_ok(
        go.current_dir(hello_go_dir())
            .env("GOARCH", "arm64")
            .args(["build", "-o"])
            .arg(&hello)
            .arg("."),
        "GOARCH=arm64 go build",
    );
    assert_eq!(elf_machine(&std::fs::read(&hello).unwrap()), EM_AARCH64);
    assert!(is_static_elf(&hello), "CGO_ENABLED=0 makes a static binary");
    if require_emulator("aarch64") {
        assert_eq!(run_ok(&mut Command::new(&hello), "hello"), "arm64 aarch64");
    }
}

#[test]
fn the_go_toolchain_is_static_and_self_contained() {
    let Some(root) = go_toolchain() else {
        return;
    };
    for arch in ["amd64", "arm64"] {
        let go = root.join(format!("bin/linux_{arch}/go"));
        assert!(is_static_elf(&go), "{}", go.display());
        for tool in ["compile", "link", "asm"] {
            let t = root.join(format!("pkg/tool/linux_{arch}/{tool}"));
            assert!(is_static_elf(&t), "{}", t.display());
        }
    }
    for dir in ["src", "src/runtime", "pkg/include"] {
        let meta = std::fs::symlink_metadata(root.join(dir)).unwrap();
        assert!(meta.is_dir(), "{dir} is a real directory, not a symlink");
    }
    let version = |arch: &str| {
        run_ok(
            Command::new(root.join(format!("bin/linux_{arch}/go")))
                .env("GOROOT", &root)
                .arg("version"),
            "go version",
        )
    };
    assert!(version("amd64").ends_with(" linux/amd64"));
    if require_emulator("aarch64") {
        assert!(version("arm64").ends_with(" linux/arm64"));
    }
}

/// The registration itself, where the kernel gives a user namespace a binfmt_misc of its own
/// (Linux 6.7+): there no handler runs arm64 busybox until `require_emulator` (through
/// `rbuild-fixture emulator`, as namespace root) registers qemu-user-static's; the machine's
/// handlers are untouched.
#[test]
fn require_emulator_registers_qemu_in_a_private_binfmt_misc() {
    let Some(busybox) = busybox_binary_for("arm64") else {
        return;
    };
    let conf = std::path::Path::new(BINFMT_D).join("qemu-aarch64.conf");
    if !require(
        format_args!("qemu-user-static ({})", conf.display()),
        conf.is_file(),
    ) {
        return;
    }
    let Some(unshare) = require_tool("unshare") else {
        return;
    };
    let userns = Command::new(&unshare).args(["-Urm", "true"]).status();
    if !require(
        "unprivileged user namespaces (unshare -Urm)",
        userns.is_ok_and(|s| s.success()),
    ) {
        return;
    }
    let script = "mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc || exit 99
        \"$2\" uname -m >/dev/null 2>&1 && exit 98
        \"$1\" emulator aarch64 >&2 && exec \"$2\" uname -m";
    let out = Command::new(&unshare)
        .args([
            "-Urm",
            "sh",
            "-c",
            script,
            "sh",
            env!("CARGO_BIN_EXE_rbuild-fixture"),
        ])
        .arg(&busybox)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !require(
        "a kernel that gives a user namespace its own binfmt_misc (Linux 6.7+)",
        out.status.code() != Some(99),
    ) {
        return;
    }
    assert_ne!(
        out.status.code(),
        Some(98),
        "the new binfmt_misc is not private"
    );
    assert!(out.status.success(), "{stderr}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "aarch64",
        "{stderr}"
    );
}
