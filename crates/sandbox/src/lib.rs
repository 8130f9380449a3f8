//! rbuild's RUN executor: the [`Executor`](rbuild_ports::Executor) port implemented
//! with Linux namespaces, overlayfs and `pivot_root`.
//!
//! One run: [`spec::build_spec`] turns the request into an OCI runtime spec (process, Docker's
//! default capabilities, namespaces, mounts, devices, masked and read-only paths, rlimits).
//! [`NamespaceExecutor`] has a zygote fork the init and passes it the spec: the zygote is the
//! rbuild binary (or any program calling [`init_main`] when its `argv[1]` is [`INIT_ARG`])
//! re-executed once per process, which clones each init as pid 1 of new pid and mount
//! namespaces into uts, ipc and (unless the network is `Host`) net namespaces it made ahead
//! (`launch::zygote`, `init::zygote`, `init::spare_ns`). The init mounts the overlay of
//! the request's layers with the upper dir as the new layer, mounts /proc, a minimal /dev,
//! read-only /sys and generated read-only /etc/hosts and /etc/resolv.conf (BuildKit's: hostname
//! `buildkitsandbox`, no /etc/hostname), pivots into the
//! rootfs, resolves the user, drops capabilities, sets no_new_privs and execs the command.
//! Output streams to the request's log sink as it is produced; mount-point placeholders never
//! reach the layer.
//!
//! Networking: `None` gets a new network namespace with only loopback up; `Default` gets one
//! with outbound access through slirp4netns when it is usable (loopback only otherwise, which
//! [`NoOutbound`] explains and the build says once; the runc adapter always gives loopback
//! only); `Host` shares the host's.
//!
//! Seccomp ([`seccomp`]): Docker's default profile, an allow list, for the RUN's capabilities.
//!
//! [`RuncExecutor`] runs the same spec with an external OCI runtime (runc, crun), started by
//! the init (`init::runtime_stage`).
//!
//! `RUN --mount`s (`launch::mount_plan`, rbuild's side, and `init::run_mounts`, the init's):
//! the request's resolved mounts are mounted after the root and the standard mounts, before
//! the command, parents first. A `Layers` source is the read-only overlay of its layers (lower
//! dirs only, an empty dir at the bottom; a throwaway upper dir when writable), a `Dir` or
//! `Socket` is bound as it is, a `Tmpfs` is a fresh tmpfs with BuildKit's options (`nosuid`,
//! mode 1777 unless the target existed), and a `File` (a secret) is written into a tmpfs that
//! only the sandbox's mount namespace sees, with its mode and owner, and bound read-only.
//! Read-only mounts are remounted read-only after all are in place (a nested target can still
//! be created). Sources are prepared in the init's private mount namespace and vanish with
//! it. Targets of a known kind join the run's init layer; others the setup creates as
//! placeholders: neither is ever part of the layer. The runc adapter expresses the same as
//! spec mounts of the bundle. With the copy snapshotter, `Layers` sources are copies.
//!
//! `RUN --security=insecure` (`launch::insecure`): every capability rbuild holds, no seccomp
//! filter, no no_new_privs, no masked or read-only paths, /sys writable, every device
//! allowed in the device cgroup and the host's fuse/tun/kvm/loop-control/kmsg nodes in /dev,
//! the namespaces kept (as BuildKit's `security.insecure`, close to `docker run
//! --privileged`).
//!
//! Snapshotters ([`Snapshotter`]): `Overlay` mounts the layers with the upper dir as the new
//! layer; where overlayfs is unavailable, `Copy` (`launch::copydiff`) copies the layers into a
//! plain root and diffs it into the upper dir afterwards, giving the same layer, slower. Below
//! the image's layers sits a tiny init layer with the mount points (`launch::initlayer`).
//!
//! `--isolation=chroot` ([`Isolation`], `launch::chroot`, `init::chroot_stage`): where
//! namespaces and mounts are refused, RUN runs in a chroot of the copy-and-diff root, in
//! rbuild's own namespaces, with no mounts (weaker; the build says so).
//!
//! Rootless: an unprivileged rbuild first enters a user namespace ([`userns::enter`]) and
//! runs everything there as its root; the init then bind-mounts host devices and mounts
//! overlayfs with `userxattr` (`init::rootless`).
//!
//! # Layers
//!
//! The code of two processes lives here, and is split by the process it runs in; what they
//! share sits below both:
//!
//! ```text
//!   launch   rbuild's process: the executors, the spec, scratch dirs, the RUN --mount plan,
//!      │     the zygote's client side, status and output, placeholders removed after a run,
//!      │     copy-and-diff, entering the user namespace at startup (rootless)
//!      │
//!      │     init     the re-executed init program: the zygote's loop and spare namespaces,
//!      │      │       stage 0, pid 1, the command's process, mounts, devices, the runtime
//!      │      │       stage of the OCI-runtime adapter
//!      ▼      ▼
//!   shared   the protocol between them (config, status lines, zygote messages), what both
//!            read from a runtime spec, errors, trace marks, the parent-death signal,
//!            secure_join, capabilities and seccomp
//! ```
//!
//! `launch` and `init` never import each other, `shared` imports neither, and within each
//! layer the modules form a DAG (drawn in `init/mod.rs` and `launch/mod.rs`). The test
//! `tests/layers.rs` checks both over the `crate::` and `super::` paths of `src/`. The crate
//! root only re-exports the public items below.

mod init;
mod launch;
mod shared;

pub use init::entry::init_main;
pub use init::user::{resolve as resolve_user, ExecUser};
pub use launch::chroot::Isolation;
pub use launch::executor::NamespaceExecutor;
pub use launch::runc::RuncExecutor;
pub use launch::slirp::{no_outbound_note, NoOutbound, SLIRP_ENV};
pub use launch::snapshotter::Snapshotter;
pub use launch::{platforms, spec, userns};
pub use shared::cgroups::RunLimits;
pub use shared::error::SetupError;
pub use shared::privileges::detect as detect_privileges;
pub use shared::seccomp;
pub use shared::zygote_protocol::INIT_ARG;
