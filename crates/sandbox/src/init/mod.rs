//! What runs in the re-executed init program. (Layering in the crate docs.)

pub(crate) mod loopback;
pub(crate) mod mounts;
pub(crate) mod root;
pub(crate) mod rootless;
pub(crate) mod run_mounts;
pub(crate) mod runc_stop;
pub(crate) mod spare_ns;
pub mod start;
pub mod user;
pub(crate) mod zygote;
