//! What runs in rbuild's process. (Layering in the crate docs.)

pub(crate) mod copydiff;
pub mod executor;
pub(crate) mod initlayer;
pub(crate) mod insecure;
pub(crate) mod mount_plan;
pub(crate) mod remove_placeholders;
pub(crate) mod run_io;
pub mod runc;
pub(crate) mod slirp;
pub mod spec;
pub mod userns;
pub(crate) mod zygote;
