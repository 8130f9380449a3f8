//! Lowering a parsed Dockerfile to a build [`Graph`](rbuild_graph::Graph), the way BuildKit's
//! `dockerfile2llb` does it.
//!
//! Two steps, so the caller can fetch base image configs in between:
//! 1. [`plan()`]: split the file into stages, expand `FROM` with the global `ARG`s (and the
//!    automatic platform args), resolve stage names and `COPY --from`, pick the target stage
//!    (`--target`, default: the last) and the stages it needs. [`Plan::base_images`] lists the
//!    registry images those stages use.
//! 2. [`lower`]: dispatch every instruction of the needed stages, in file order, into vertices
//!    (`RUN` → Exec, `COPY`/`ADD`/`WORKDIR` → File, one Image per distinct base, one shared
//!    Context) and image-config changes with BuildKit's history entries.
//!
//! Modules: [`options`] (what the user asked for), [`plan`](mod@plan) (stages), [`args`]
//! (ARG/ENV scoping helpers), [`dispatch`] (per-instruction lowering), [`builder`] (the graph
//! under construction), [`mount_sources`] (what `RUN --mount from=` reads), [`onbuild`] (ONBUILD triggers of a base and what they read), [`paths`] (path normalisation), [`gofmt`] (Go-compatible text for
//! history entries), [`error`] ([`LowerError`]).
//!
//! Both steps work on typed instructions ([`instructions`](mod@crate::instructions)): `plan` converts every node
//! (reporting every conversion error at once) and keeps each with its node ([`Step`]), so flag
//! values are parsed and validated in one place.
//!
//! Invariant: pure (no I/O); every error is a [`Diagnostic`](crate::Diagnostic) with the span
//! of the flag or word at fault where known, else of the instruction.

pub mod args;
pub mod builder;
pub mod dispatch;
pub mod error;
pub mod gofmt;
pub mod mount_sources;
pub mod onbuild;
pub mod options;
pub mod paths;
pub mod plan;

pub use dispatch::lower;
pub use error::LowerError;
pub use options::BuildOptions;
pub use plan::{plan, Plan, Stage, StageBase, StageSource, Step};
