//! The contracts between rbuild's engine (the solver) and its adapters, shaped by the solver,
//! which consumes them:
//!
//! | module | port | implemented by |
//! |---|---|---|
//! | [`exec`] | [`Executor`]: one RUN in an isolated root, its mounts, its output | `rbuild-sandbox` |
//! | [`image`] | [`ImageSource`]: base images resolved and unpacked into snapshots | `rbuild-oci` |
//! | [`cancel`] | [`CancelToken`]: how the solver tells running work to stop | (shared) |
//!
//! Adapters depend on this crate, never on the solver, so they do not link its async runtime,
//! HTTP client and decompressors; the solver re-exports these items (`rbuild_solver::ports`,
//! `rbuild_solver::cancel`). Solver tests implement the ports with fakes: no root, no network.
//! This crate uses only `rbuild-types` and `rbuild-graph`, and does no I/O.

pub mod cancel;
pub mod exec;
pub mod image;

pub use cancel::{CancelGuard, CancelToken};
pub use exec::{
    ExecError, ExecRequest, Executor, LogSink, LogStream, MountSource, ResolvedMount, SecretFile,
};
pub use image::{ImageSource, ResolvedImage, SourceError};
