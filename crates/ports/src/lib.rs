//! The contracts between rbuild's engine and its adapters, shaped by their consumers (the
//! solver; for remote sources also the context crate):
//!
//! | module | port | implemented by |
//! |---|---|---|
//! | [`exec`] | [`Executor`]: one RUN in an isolated root, its mounts, its output | `rbuild-sandbox` |
//! | [`image`] | [`ImageSource`]: base images resolved and unpacked into snapshots | `rbuild-oci` |
//! | [`remote`] | [`RemoteSource`]: HTTP GETs ([`HttpSource`]) and git ref resolution and checkouts ([`GitSource`]) | `rbuild-oci` (HTTP), `rbuild-context` (git), joined by [`RemoteSources`] |
//! | [`cache`] | [`CacheExchange`]: build cache imported (`--cache-from`) and exported (`--cache-to`) | `rbuild-oci` (`type=local`) |
//! | [`cancel`] | [`CancelToken`]: how the solver tells running work to stop | (shared) |
//!
//! Adapters depend on this crate, never on the solver, so they do not link its async runtime
//! and decompressors; the solver re-exports these items (`rbuild_solver::ports`,
//! `rbuild_solver::cancel`). Solver tests implement the ports with fakes: no root, no network.
//! This crate uses only `rbuild-types` and `rbuild-graph`, and does no I/O.

pub mod cache;
pub mod cancel;
pub mod exec;
pub mod image;
pub mod remote;

pub use cache::{
    CacheExchange, CacheExchangeError, CacheExport, CacheImage, CacheLayer, CacheMountExport,
    LayerMediaType, SolvedStep,
};
pub use cancel::{CancelGuard, CancelToken};
pub use exec::{
    ExecError, ExecRequest, Executor, LogSink, LogStream, MountSource, ResolvedMount, SecretFile,
};
pub use image::{ImageSource, ResolvedImage, SourceError};
pub use remote::{
    is_commit_id, GitCheckout, GitError, GitRef, GitResolve, GitRevision, GitSource, GitTransports,
    HttpBody, HttpError, HttpFetch, HttpSource, HttpStatus, PathIoError, RemoteSource,
    RemoteSources, Validators,
};
