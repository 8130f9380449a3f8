//! What rbuild's tests share, so that they stand alone: a clone of this repository and the
//! Debian packages `.ci/run` installs are all they need.
//!
//! - [`skip`]: the one capability check, [`require`]. A test that cannot run here (no root,
//!   no overlayfs, a tool missing) says `SKIPPED: <test> because it needs <what>` — and fails
//!   instead under `RBUILD_REQUIRE_ALL=1`, as in CI.
//! - [`corpus`]: the conformance corpora of `../shared/conformance/`, which a clone does not
//!   have: their tests skip loudly without them and count their cases with them.
//! - [`images`]: base images built offline as OCI layouts (busybox from busybox-static; arm64's
//!   from busybox-static:arm64's package file, [`debs`]; an amd64+arm64 image index), cached
//!   in one place ([`images::fixtures_dir`]).
//! - [`emulator`]: [`emulator::require_emulator`], another architecture's binaries run here
//!   through QEMU's binfmt_misc handler (registered where missing), or a loud skip.
//! - [`go`]: the host's Go as a build input (a static toolchain for amd64 and arm64 to mount
//!   as a named context) and a tiny Go program that prints its architecture.
//! - [`registry`]: a `docker-registry` of the test's own on a free loopback port, with the
//!   busybox image pushed to it, or secured: HTTPS with a test CA ([`certs`], made with the
//!   `openssl` CLI), client certificates, htpasswd basic authentication, or bearer tokens
//!   from a [`token_server`] of the test's own (JWTs signed with the `openssl` CLI).
//! - [`fakes`]: an executor, an image source, a remote source and a log sink without root,
//!   sandbox or network, and builders of ops and vertices.
//! - [`fault_proxy`]: an HTTP proxy in front of a registry that injects faults (a status
//!   with `Retry-After`, a dropped connection, a body cut short), usable as the registry
//!   itself or through `HTTP_PROXY`.
//! - [`http`] and [`git`]: a loopback HTTP server (also one answering canned bytes) and
//!   client, and git with a fixed identity.
//! - [`privileges`]: the test process's `Privileges`, for the APIs that take rbuild's.
//! - [`run`]: running a tool (git, openssl) that must succeed.
//! - [`golden`]: expected outputs kept in files, rewritten under `UPDATE_GOLDEN=1`.
//! - [`syscall_probe`]: a static program making one raw syscall and printing its errno
//!   (built with the host's gcc), to test seccomp filters.
//!
//! Helper child processes of tests (a process to kill mid-work, say) are not in here: they are
//! `[[bin]]` targets of the crate under test, found through `CARGO_BIN_EXE_<name>`, because
//! Cargo gives a test the binaries of its own package only.

pub mod certs;
pub mod corpus;
pub mod debs;
pub mod emulator;
pub mod fakes;
pub mod fault_proxy;
pub mod git;
pub mod go;
pub mod golden;
pub mod http;
pub mod images;
pub mod privileges;
pub mod registry;
pub mod run;
pub mod skip;
pub mod syscall_probe;
pub mod token_server;

pub use corpus::{assert_ran, corpus};
pub use emulator::require_emulator;
pub use fault_proxy::{Fault, FaultProxy};
pub use privileges::privileges;
pub use registry::{Registry, Security};
pub use skip::{
    can_run_sandbox, is_root, require, require_busybox, require_root, require_tool, tool,
};
pub use token_server::{TokenAuth, TokenServer};
