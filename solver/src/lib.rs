//! The solver: turns a [`rbuild_graph::Graph`] into results, doing each piece of work at most once.
//!
//! It never sees Dockerfile text. It computes a cache key per vertex (see [`keys`] for the table
//! of what goes into a key), looks the key up in the store, and otherwise runs the vertex through
//! a port: RUN through an [`ports::Executor`], base images through an [`ports::ImageSource`],
//! `ADD` of URLs and git repositories through a [`ports::RemoteSource`], COPY and friends
//! in-process ([`fileop`]). Identical vertices run once; independent vertices
//! run concurrently, at most `jobs` at a time. Progress goes out as [`events::Event`]s.
//!
//! A failure cancels the rest ([`cancel::CancelToken`], handed to executors in every
//! [`ports::ExecRequest`]). Every step's full output is written to `<store>/logs/<build>/`.
//! Each step that runs records the inputs of its key under its identity, so that the next
//! build can say why a step missed the cache ([`explain`], `--explain-cache`).

pub mod cancel;
pub mod error;
pub mod events;
pub mod explain;
pub mod fileop;
mod import;
pub mod keys;
mod log;
pub mod mounts;
pub mod owner;
pub mod ports;
mod remote;
mod solve;
mod ssh_proxy;
mod unpack;

pub use error::{SolveError, VertexError};
pub use remote::RemoteError;
pub use solve::{Solved, Solver, VertexResult};

/// Where progress events go. Called from several threads.
pub type EventSink = std::sync::Arc<dyn Fn(events::Event) + Send + Sync>;
