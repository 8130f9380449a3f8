//! The one way a test says it cannot run here: [`require`]. A missing capability (root,
//! overlayfs, a tool, busybox-static, ...) skips the test loudly — `SKIPPED: <test> because it
//! needs <what>` on stderr — or, under `RBUILD_REQUIRE_ALL=1` (CI), fails it: nothing may be
//! skipped there. The conformance corpora have their own rule (see [`crate::corpus`]).

use std::fmt::Display;
use std::path::{Path, PathBuf};

/// The variable that turns every skip into a failure.
pub const REQUIRE_ALL: &str = "RBUILD_REQUIRE_ALL";

/// Debian's `busybox-static`: the base of every test image and sandbox fixture.
pub const BUSYBOX: &str = "/bin/busybox";

/// Whether `RBUILD_REQUIRE_ALL=1`: every skip is a failure.
pub fn require_all() -> bool {
    std::env::var_os(REQUIRE_ALL).is_some_and(|v| v == "1")
}

/// The running test's name: libtest runs each test on a thread named after it. Elsewhere (a
/// benchmark's main thread) the program's name.
pub fn test_name() -> String {
    match std::thread::current().name() {
        Some(name) if name != "main" => name.to_string(),
        _ => std::env::args()
            .next()
            .and_then(|a| Some(Path::new(&a).file_name()?.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "this program".to_string()),
    }
}

/// `ok`, or else the test cannot (fully) run here: panics under `RBUILD_REQUIRE_ALL=1`,
/// otherwise says `SKIPPED: <test> because it needs <what>` and returns false. The caller
/// returns (or leaves out the part that needs `what`).
#[track_caller]
pub fn require(what: impl Display, ok: bool) -> bool {
    require_under(require_all(), what, ok)
}

/// [`require`], with `all` in place of `RBUILD_REQUIRE_ALL=1`.
#[track_caller]
fn require_under(all: bool, what: impl Display, ok: bool) -> bool {
    if ok {
        return true;
    }
    let test = test_name();
    if all {
        panic!("{REQUIRE_ALL}=1 but {test} needs {what}");
    }
    say(&format!("SKIPPED: {test} because it needs {what}"));
    false
}

/// Writes `line` to stderr in one piece, so that the output of tests running in parallel
/// does not cut it up (`eprintln!` writes each formatted piece on its own).
pub(crate) fn say(line: &str) {
    use std::io::Write;
    let _ = std::io::stderr().write_all(format!("{line}\n").as_bytes());
}

/// Whether we run as root.
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// [`require`]s root; `why` says what for (namespaces, device nodes, ...).
#[track_caller]
pub fn require_root(why: &str) -> bool {
    require(format_args!("root ({why})"), is_root())
}

/// Where the executable `name` is: on `$PATH`, or in root's sbin directories (which a non-root
/// `$PATH` lacks: runc is in /usr/sbin).
pub fn tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// [`require`]s the tool `name` (see [`tool`]); its path when there.
#[track_caller]
pub fn require_tool(name: &str) -> Option<PathBuf> {
    let found = tool(name);
    require(format_args!("{name} (not installed)"), found.is_some());
    found
}

/// [`require`]s busybox-static at [`BUSYBOX`].
#[track_caller]
pub fn require_busybox() -> bool {
    require(
        format_args!("busybox-static ({BUSYBOX})"),
        Path::new(BUSYBOX).is_file(),
    )
}

/// Whether the kernel has overlayfs (or can load it on first mount).
pub fn has_overlayfs() -> bool {
    let listed = std::fs::read_to_string("/proc/filesystems")
        .is_ok_and(|fs| fs.lines().any(|l| l.trim_end().ends_with("\toverlay")));
    listed || Path::new("/sys/module/overlay").exists()
}

/// Whether the sandbox can run a command here: root (namespaces, mounts), overlayfs and
/// busybox-static (the test root filesystems). [`require`]s each, in that order.
#[track_caller]
pub fn can_run_sandbox() -> bool {
    require_root("namespaces and mounts")
        && require("overlayfs in the kernel", has_overlayfs())
        && require_busybox()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_capability_is_a_skip() {
        assert!(require_under(false, "nothing", true));
        let what = "nothing really (this skip is test-support's own test of the helper)";
        assert!(!require_under(false, what, false));
    }

    #[test]
    #[should_panic(
        expected = "RBUILD_REQUIRE_ALL=1 but skip::tests::a_skip_fails_under_require_all needs x"
    )]
    fn a_skip_fails_under_require_all() {
        require_under(true, "x", false);
    }

    #[test]
    fn tools_are_found_on_path_and_in_sbin() {
        assert!(tool("sh").is_some_and(|p| p.is_absolute()));
        assert_eq!(tool("no-such-tool-for-rbuild"), None);
    }
}
