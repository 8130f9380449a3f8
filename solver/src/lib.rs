//! The solver: turns a [`rbuild_graph::Graph`] into results, doing each piece of work at most once.
//!
//! It never sees Dockerfile text. It computes a cache key per vertex (see [`keys`]), looks the
//! key up in the store, and otherwise runs the vertex through a port: RUN through an
//! [`ports::Executor`], base images through an [`ports::ImageSource`], COPY in-process.
//! Independent vertices run concurrently. Progress goes out as [`events::Event`]s.

pub mod events;
pub mod ports;
