//! [`privileges`]: what a test process may do, for the APIs that take rbuild's
//! [`Privileges`]. The tests' own check: rbuild detects them at startup with
//! `rbuild_sandbox::detect_privileges`, a crate this one stays below; a test process never
//! enters rbuild's user namespace, so a non-initial one is [`UserNamespace::Inherited`].

use rbuild_types::{Privileges, UserNamespace};

/// This test process's privileges.
pub fn privileges() -> Privileges {
    let namespace = std::fs::read_to_string("/proc/self/uid_map")
        .map_or(UserNamespace::Initial, |map| {
            UserNamespace::from_uid_map(&map)
        });
    Privileges {
        uid: nix::unistd::geteuid().as_raw(),
        gid: nix::unistd::getegid().as_raw(),
        namespace,
    }
}
