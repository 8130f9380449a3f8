//! Debian package files the tests read but never install: another architecture's
//! `busybox-static` (for [`crate::images::busybox_layout_for`]). The tests do not run apt:
//! `.ci/run` downloads the files (`dpkg --add-architecture arm64`, `apt-get update`, then
//! `apt-get download busybox-static:arm64` in [`debs_dir`]); a test without them skips loudly,
//! naming those commands. A file is unpacked with `dpkg-deb -x` once per machine into the
//! fixture cache.

use std::path::{Path, PathBuf};
use std::process::Command;

use rbuild_types::Digest;

use crate::images::{cached, fixtures_dir};
use crate::skip::require;

/// Where `.ci/run` puts the package files: `$RBUILD_TEST_DEBS`, or this directory.
pub const DEBS_DIR: &str = "/var/cache/rbuild-test-debs";

/// apt's own download cache, also looked in (after [`debs_dir`]).
pub const APT_ARCHIVES: &str = "/var/cache/apt/archives";

/// `$RBUILD_TEST_DEBS`, or [`DEBS_DIR`].
pub fn debs_dir() -> PathBuf {
    std::env::var_os("RBUILD_TEST_DEBS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEBS_DIR))
}

/// The package file of `package` for Debian architecture `arch` (`<package>_<version>_<arch>.deb`)
/// in [`debs_dir`] or [`APT_ARCHIVES`]: the first directory that has one, and there the last
/// by name (the newest, for the versions one Debian release carries).
pub fn find_deb(package: &str, arch: &str) -> Option<PathBuf> {
    let (prefix, suffix) = (format!("{package}_"), format!("_{arch}.deb"));
    [debs_dir(), PathBuf::from(APT_ARCHIVES)]
        .iter()
        .find_map(|dir| {
            let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
                .ok()?
                .flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(&suffix))
                })
                .collect();
            found.sort();
            found.pop()
        })
}

/// [`find_deb`], or a loud skip naming the commands that download it.
#[track_caller]
pub fn require_deb(package: &str, arch: &str) -> Option<PathBuf> {
    let found = find_deb(package, arch);
    require(
        format_args!(
            "{package}:{arch}'s package file in {} or {APT_ARCHIVES} (as root: dpkg \
             --add-architecture {arch} && apt-get update && mkdir -p {dir} && cd {dir} && \
             apt-get download {package}:{arch}; .ci/run does this)",
            debs_dir().display(),
            dir = debs_dir().display()
        ),
        found.is_some(),
    );
    found
}

/// The busybox binary of `busybox-static:<arch>`'s package file (`arch` a Debian and OCI
/// architecture name: `arm64`, `amd64`, ...), unpacked once into the fixture cache. `None`
/// after a loud skip when the package file is not there.
pub fn busybox_binary_for(arch: &str) -> Option<PathBuf> {
    let deb = require_deb("busybox-static", arch)?;
    let bytes = std::fs::read(&deb).unwrap_or_else(|e| panic!("read {}: {e}", deb.display()));
    let key = format!("busybox-static-{arch}-{}", &Digest::of(&bytes).hex()[..16]);
    let dir = cached(&key, "busybox", |dir| unpack_busybox(&deb, dir));
    Some(dir.join("busybox"))
}

fn unpack_busybox(deb: &Path, into: &Path) {
    let work = tempfile::tempdir_in(fixtures_dir()).expect("tempdir");
    crate::run::run_ok(
        Command::new("dpkg-deb").arg("-x").arg(deb).arg(work.path()),
        "dpkg-deb -x",
    );
    let binary = work.path().join("bin/busybox");
    assert!(binary.is_file(), "{} has no /bin/busybox", deb.display());
    std::fs::rename(&binary, into.join("busybox")).expect("move busybox into the cache");
}
