//! What both sides read from a run's OCI runtime spec (building it is `launch::spec`'s job):
//! a field the run cannot do without ([`need`]), the clone flags of its namespaces
//! ([`namespace_flags`]: rbuild tells the zygote, the init unshares), and the `PATH` a
//! process gets when its environment has none ([`DEFAULT_PATH`]).

use nix::sched::CloneFlags;
use oci_spec::runtime::LinuxNamespaceType;

use crate::shared::error::{Result, SetupError};

/// Docker's PATH when the image and the RUN set none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Reads a spec field that `launch::spec::build_spec` always sets.
pub(crate) fn need<T>(value: Option<T>, field: &'static str) -> Result<T> {
    value.ok_or(SetupError::SpecField { field })
}

/// The clone flags of the namespaces `linux` asks for.
pub(crate) fn namespace_flags(linux: &oci_spec::runtime::Linux) -> CloneFlags {
    let mut flags = CloneFlags::empty();
    for ns in linux.namespaces().iter().flatten() {
        flags |= match ns.typ() {
            LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
            LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
            LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
            LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
            LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
            LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
            LinuxNamespaceType::User => CloneFlags::CLONE_NEWUSER,
            LinuxNamespaceType::Time => CloneFlags::empty(),
        };
    }
    flags
}
