//! Lowering a parsed Dockerfile to a build [`Graph`](rbuild_graph::Graph), the way BuildKit's
//! `dockerfile2llb` does it.
//!
//! Three steps, the second through the caller's [`Resolver`] (the frontend stays pure):
//! 1. [`plan()`]: split the file into stages, expand `FROM` with the global `ARG`s (and the
//!    automatic platform args), resolve stage names and `COPY --from`, pick the target stage
//!    (`--target`, default: the last) and the stages it needs. [`Plan::base_images`] lists the
//!    registry images those stages use.
//! 2. [`Plan::resolve`]: ask the resolver for each base image's config, and add what the
//!    ONBUILD triggers of the bases read, until nothing is new (the one ONBUILD fixpoint).
//! 3. [`lower`]: dispatch every instruction of the needed stages, in file order, into vertices
//!    (`RUN` → Exec, `COPY`/`ADD`/`WORKDIR` → File, one Image per distinct base, one shared
//!    Context) and image-config changes with BuildKit's history entries.
//!
//! Modules: [`options`] (what the user asked for), [`plan`](mod@plan) (stages), [`args`]
//! (ARG/ENV scoping helpers), [`dispatch`] (per-instruction lowering), [`builder`] (the graph
//! under construction), [`mount_sources`] (what `RUN --mount from=` reads), [`named`] (named
//! contexts, `--build-context`), [`onbuild`]
//! (ONBUILD triggers of a base and what they read), [`resolve`] (the [`Resolver`] trait and
//! the fixpoint), [`paths`] (path normalisation), [`gofmt`] (Go-compatible text for history
//! entries), [`error`] ([`LowerError`]).
//!
//! The steps work on typed instructions ([`instructions`](mod@crate::instructions)): `plan` converts every node
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
pub mod named;
pub mod onbuild;
pub mod options;
pub mod paths;
pub mod plan;
pub mod resolve;
pub(crate) mod vars;

pub use dispatch::lower;
pub use error::LowerError;
pub use named::{context_key, user_context_key, ContextNameError, NamedContext};
pub use options::BuildOptions;
pub use plan::{plan, Plan, Stage, StageBase, StageSource, Step};
pub use resolve::{BaseConfigs, ResolveError, Resolver};
