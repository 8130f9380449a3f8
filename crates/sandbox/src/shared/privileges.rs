//! [`detect`]: this process's [`Privileges`] as the kernel reports them — effective ids and
//! whether `/proc/self/uid_map` is the initial namespace's identity map. rbuild calls it once
//! at startup (before entering its own user namespace, which `launch::userns::enter` then
//! records as [`UserNamespace::Rootless`]); the re-executed init, another process, takes its
//! own view once (`init::rootless`).

use rbuild_types::{Privileges, UserNamespace};

/// This process's privileges. An unreadable `uid_map` (no `/proc`) counts as the initial
/// namespace; a non-initial namespace is [`UserNamespace::Inherited`]: only the code that
/// entered one knows it is rbuild's own.
pub fn detect() -> Privileges {
    let namespace = std::fs::read_to_string("/proc/self/uid_map")
        .map(|map| UserNamespace::from_uid_map(&map))
        .unwrap_or(UserNamespace::Initial);
    Privileges {
        uid: nix::unistd::geteuid().as_raw(),
        gid: nix::unistd::getegid().as_raw(),
        namespace,
    }
}
