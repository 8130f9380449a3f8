//! Prints where a test fixture is, building it first (once per machine), for the benchmark
//! scripts, which are not Rust:
//!
//! ```text
//! rbuild-fixture busybox [ARCH]    the busybox OCI layout (tag latest) for linux/ARCH [host]
//! rbuild-fixture busybox-multi     the amd64+arm64 busybox image index layout (tag latest)
//! rbuild-fixture go-toolchain      the static Go toolchain for amd64 and arm64 (a GOROOT)
//! rbuild-fixture hello-go          the Go program that prints its architecture
//! rbuild-fixture emulator ARCH     require_emulator(ARCH) (uname -m name): registers QEMU's
//!                                  binfmt_misc handler where missing; prints how ARCH runs
//! ```
//!
//! Exits 1 after the helper's SKIPPED line when what the fixture needs is missing.

use std::path::PathBuf;

use rbuild_test_support::{emulator, go, images};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let path: Option<PathBuf> = match args[..] {
        ["busybox"] => images::busybox_layout(),
        ["busybox", arch] => images::busybox_layout_for(arch),
        ["busybox-multi"] => images::busybox_multi_layout(),
        ["go-toolchain"] => go::go_toolchain(),
        ["hello-go"] => Some(go::hello_go_dir()),
        ["emulator", arch] => emulator::require_emulator(arch)
            .then(|| PathBuf::from(format!("{:?}", emulator::ensure_emulator(arch)))),
        _ => {
            eprintln!(
                "usage: rbuild-fixture busybox [ARCH] | busybox-multi | go-toolchain | hello-go | emulator ARCH"
            );
            std::process::exit(2);
        }
    };
    match path {
        Some(p) => println!("{}", p.display()),
        None => std::process::exit(1),
    }
}
