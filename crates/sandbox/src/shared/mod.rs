//! Below both sides: what rbuild's executors and the sandbox init share.
//! (Layering in the crate docs.)

pub(crate) mod caps;
pub(crate) mod error;
pub(crate) mod paths;
pub(crate) mod protocol;
pub mod seccomp;
pub(crate) mod trace;
