//! What runs in the re-executed init program (rbuild or a dedicated binary run with
//! `INIT_ARG`): the zygote's loop and its spare namespaces, each run's init (stage 0, pid 1,
//! the command's process), its mounts, and the runtime stage of the OCI-runtime adapter.
//! These modules use `shared` and each other, never `launch`; within the layer they form a
//! DAG, from the entry point down:
//!
//! ```text
//! entry ─▶ zygote ─▶ spare_ns ─▶ loopback
//!            └─────▶ spare_net ─▶ spare_ns, loopback
//!   │        │                             (entry ─▶ rootless: the init's privileges)
//!   └────────┴─▶ start ─▶ runtime_stage ─┬─▶ runc_stop
//!                  ├──▶ chroot_stage ──▶ pid1, command, status
//!                  │                     │
//!                  └──▶ pid1 ────────────┼─▶ command ─▶ user, rootless
//!                         │              ├─▶ run_mounts ─▶ root ─▶ rootless
//!                         │              ├─▶ mounts, devices ─▶ placeholders, rootless
//!                         └──────────────┴─▶ status, user, pending (start ─▶ pending too)
//! ```

pub(crate) mod chroot_stage;
pub(crate) mod command;
pub(crate) mod devices;
pub mod entry;
pub(crate) mod loopback;
pub(crate) mod mounts;
pub(crate) mod pending;
pub(crate) mod pid1;
pub(crate) mod placeholders;
pub(crate) mod root;
pub(crate) mod rootless;
pub(crate) mod run_mounts;
pub(crate) mod runc_stop;
pub(crate) mod runtime_stage;
pub(crate) mod spare_net;
pub(crate) mod spare_ns;
pub(crate) mod start;
pub(crate) mod status;
pub mod user;
pub(crate) mod zygote;
