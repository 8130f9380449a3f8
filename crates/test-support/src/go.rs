//! Go as a build input, never copied into an image: the host's toolchain (Debian's
//! `golang-go`), handed to a build as a named context (`--build-context go=<dir>`) and bind
//! mounted where a RUN needs it (`RUN --mount=type=bind,from=go,target=/usr/local/go …`), and
//! a tiny program that says which architecture it was built for ([`hello_go_dir`]).
//!
//! The host's GOROOT ([`go_root`]) does not work inside a busybox image as it is: Debian's
//! `bin/go` is linked against glibc (cgo, for `os/user` and `net`), which busybox has not, and
//! its `src` and `pkg/include` are symlinks out of GOROOT (`../../share/go-1.19/src`) that a
//! bind mount leaves dangling. (Its `pkg/tool` binaries — compile, link, asm, … — are static.)
//! [`go_toolchain`] makes a self-contained GOROOT instead: real directories (hard links of the
//! host's sources where one filesystem allows), and for each of amd64 and arm64 a static
//! (`CGO_ENABLED=0`) `go` and tools, so one context serves a native stage, a cross-compiling
//! `FROM --platform=$BUILDPLATFORM` stage and an emulated arm64 stage alike.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use crate::images::{cached, fixtures_dir};
use crate::run::run_ok;
use crate::skip::{require, tool};

/// Bump when [`go_toolchain`]'s layout changes.
const TOOLCHAIN_VERSION: u32 = 1;

/// The architectures (GOARCH, which are OCI's names too) [`go_toolchain`] holds.
pub const TOOLCHAIN_ARCHES: [&str; 2] = ["amd64", "arm64"];

/// The `pkg/tool` programs `go build` runs (cgo only with `CGO_ENABLED=1`).
const TOOLS: [&str; 6] = ["compile", "link", "asm", "pack", "buildid", "cgo"];

/// The host's GOROOT (`go env GOROOT`, symlinks resolved), or `None` after a loud skip when Go
/// is not installed (`apt-get install golang-go`).
#[track_caller]
pub fn go_root() -> Option<PathBuf> {
    let go = tool("go");
    if !require("Go (apt-get install golang-go)", go.is_some()) {
        return None;
    }
    let root = run_ok(Command::new(go?).args(["env", "GOROOT"]), "go env GOROOT");
    Some(std::fs::canonicalize(&root).unwrap_or_else(|e| panic!("GOROOT {root}: {e}")))
}

/// The host's `go` command (for building on the host, with [`go_env`]); `None` after a loud
/// skip when Go is not installed.
#[track_caller]
pub fn go_command() -> Option<Command> {
    let go = tool("go");
    require("Go (apt-get install golang-go)", go.is_some());
    let mut cmd = Command::new(go?);
    go_env(&mut cmd);
    Some(cmd)
}

/// The environment a test's `go` runs in: a build cache in the fixture cache (a test's `HOME`
/// may be anything), no cgo, no VCS stamping, no module downloads.
pub fn go_env(cmd: &mut Command) -> &mut Command {
    cmd.env("GOCACHE", fixtures_dir().join("go-build-cache"))
        .env("GOFLAGS", "-buildvcs=false")
        .env("GOPROXY", "off")
        .env("CGO_ENABLED", "0")
}

/// A Go program (`main.go`, `go.mod`; standard library only) that prints
/// `<runtime.GOARCH> <uname machine>`: `arm64 aarch64` when built for arm64 and run under
/// emulation, `arm64 x86_64` never.
pub fn hello_go_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/hello-go")
}

/// A self-contained, static Go toolchain for [`TOOLCHAIN_ARCHES`], made once per machine from
/// the host's: `VERSION`, `src/`, `pkg/include/`, and for each architecture `A`
/// `bin/linux_A/go` and `pkg/tool/linux_A/{compile,link,asm,…}`. Pass it as a build context
/// and mount it at `/usr/local/go` with `GOROOT=/usr/local/go`, then run
/// `/usr/local/go/bin/linux_$BUILDARCH/go` (or `$TARGETARCH` in an emulated stage); give it
/// a writable `GOCACHE` and `CGO_ENABLED=0`. Building it takes about two minutes the first
/// time (the arm64 tools). `None` after a loud skip when Go is not installed.
pub fn go_toolchain() -> Option<PathBuf> {
    let root = go_root()?;
    static BUILDING: Mutex<()> = Mutex::new(());
    let _one = BUILDING.lock().unwrap_or_else(|p| p.into_inner());
    let version = std::fs::read_to_string(root.join("VERSION"))
        .ok()
        .and_then(|v| v.lines().next().map(str::to_string))
        .unwrap_or_else(|| "unknown".into());
    let key = format!(
        "go-toolchain-v{TOOLCHAIN_VERSION}-{version}-{}",
        TOOLCHAIN_ARCHES.join("-")
    );
    Some(cached(&key, "VERSION", |dir| build_toolchain(&root, dir)))
}

fn build_toolchain(root: &Path, dir: &Path) {
    link_tree(&root.join("src"), &dir.join("src"));
    link_tree(&root.join("pkg/include"), &dir.join("pkg/include"));
    let host_tools = root.join(format!("pkg/tool/linux_{}", go_host_arch()));
    for arch in TOOLCHAIN_ARCHES {
        let bin = dir.join(format!("bin/linux_{arch}"));
        let tools = dir.join(format!("pkg/tool/linux_{arch}"));
        std::fs::create_dir_all(&bin).expect("mkdir bin");
        std::fs::create_dir_all(&tools).expect("mkdir pkg/tool");
        let mut build: Vec<&str> = vec![];
        for t in TOOLS {
            let host = host_tools.join(t);
            if arch == go_host_arch() && is_static_elf(&host) {
                std::fs::copy(&host, tools.join(t)).expect("copy a static tool");
            } else {
                build.push(t);
            }
        }
        go_build(root, arch, &["cmd/go"], &bin);
        if !build.is_empty() {
            let pkgs: Vec<String> = build.iter().map(|t| format!("cmd/{t}")).collect();
            let pkgs: Vec<&str> = pkgs.iter().map(String::as_str).collect();
            go_build(root, arch, &pkgs, &tools);
        }
    }
    // Last: `cached` takes the toolchain as built once VERSION is there.
    std::fs::copy(root.join("VERSION"), dir.join("VERSION")).expect("copy VERSION");
}

/// `GOARCH=<arch> CGO_ENABLED=0 go build -o <out>/ <pkgs>` with the host's Go.
fn go_build(root: &Path, arch: &str, pkgs: &[&str], out: &Path) {
    let mut cmd = Command::new(root.join("bin/go"));
    go_env(&mut cmd)
        .env("GOROOT", root)
        .env("GOOS", "linux")
        .env("GOARCH", arch)
        .arg("build")
        .arg("-trimpath")
        .arg("-o")
        .arg(format!("{}/", out.display()))
        .args(pkgs);
    run_ok(
        &mut cmd,
        &format!("GOARCH={arch} go build {}", pkgs.join(" ")),
    );
}

/// A copy of the tree `from` (symlinks followed) at `to`: hard links where the two are on one
/// filesystem, else copies.
fn link_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to.parent().expect("a parent")).expect("mkdir");
    let linked = Command::new("cp")
        .arg("-rlL")
        .arg(from)
        .arg(to)
        .status()
        .is_ok_and(|s| s.success());
    if !linked {
        let _ = std::fs::remove_dir_all(to);
        run_ok(
            Command::new("cp").arg("-rL").arg(from).arg(to),
            "cp -rL GOROOT",
        );
    }
}

/// The host's GOARCH.
fn go_host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// Whether `path` is an ELF executable without a program interpreter (statically linked).
pub fn is_static_elf(path: &Path) -> bool {
    let Ok(b) = std::fs::read(path) else {
        return false;
    };
    if b.len() < 64 || &b[..4] != b"\x7fELF" || b[4] != 2 || b[5] != 1 {
        return false; // only 64-bit little-endian is read
    }
    let u16_at = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(b[0x20..0x28].try_into().expect("8 bytes")) as usize;
    let (size, count) = (u16_at(0x36), u16_at(0x38));
    (0..count).all(|i| {
        let at = phoff + i * size;
        // PT_INTERP = 3
        b.get(at..at + 4)
            .is_some_and(|t| u32::from_le_bytes(t.try_into().expect("4 bytes")) != 3)
    })
}
