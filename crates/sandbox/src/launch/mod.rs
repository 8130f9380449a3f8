//! What runs in rbuild's own process: the two executors, everything they prepare before a run
//! (the runtime spec, the scratch dir and its init layer, the `RUN --mount` plan), the client
//! side of the zygote, the status and output loop, what they do after a run (placeholders
//! removed, the copy-and-diff snapshotter's diff), and entering the user namespace at startup
//! (rootless). These modules use `shared` and each other, never `init`; within the layer they
//! form a DAG:
//!
//! ```text
//! executor, runc ─▶ snapshotter ─┬─▶ run_init ─┬─▶ zygote, run_io
//!        │              │        │             ├─▶ mount_plan ─▶ copydiff
//!        │              │        │             └─▶ spec ─▶ insecure
//!        └──────────────┴────────┴─▶ scratch ─▶ initlayer, mount_plan, spec, slirp
//!        │              ├─▶ copydiff, remove_placeholders
//!        │              ├─▶ userns ─▶ slirp
//!        └──────────────┴─▶ chroot ─▶ spec
//! ```

pub(crate) mod chroot;
pub(crate) mod copydiff;
pub mod executor;
pub(crate) mod initlayer;
pub(crate) mod insecure;
pub mod meta;
pub(crate) mod mount_plan;
pub mod platforms;
pub(crate) mod remove_placeholders;
pub(crate) mod run_init;
pub(crate) mod run_io;
pub mod runc;
pub(crate) mod scratch;
pub(crate) mod slirp;
pub mod snapshotter;
pub mod spec;
pub mod userns;
pub(crate) mod zygote;
