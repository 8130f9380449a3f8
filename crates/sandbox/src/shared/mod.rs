//! Below both sides: what rbuild's executors (`launch`) and the re-executed init program
//! (`init`) share. The protocol between the processes (`protocol`: the config and the status
//! lines; `zygote_protocol`: how the zygote is started and told about runs), what both read
//! from a runtime spec (`runtime_spec`), and helpers both need: setup errors, trace marks,
//! the parent-death signal, the process's privileges (`privileges`), private mount
//! propagation (`propagation`), `secure_join`,
//! capabilities and seccomp (whose spec section rbuild writes and whose filter the init
//! compiles), and cgroup limits (`cgroups`: rbuild writes them into the spec, the init enters
//! the cgroup, rbuild removes it). Nothing here imports `init` or `launch`.

pub(crate) mod caps;
pub(crate) mod cgroups;
pub(crate) mod error;
pub(crate) mod paths;
pub(crate) mod pdeathsig;
pub(crate) mod privileges;
pub(crate) mod propagation;
pub(crate) mod protocol;
pub(crate) mod runtime_spec;
pub mod seccomp;
pub(crate) mod seccomp_profile;
pub(crate) mod trace;
pub(crate) mod zygote_protocol;
