//! One rbuild build as a library call: a checked [`BuildConfig`] in, [`BuildEvent`]s out
//! while it runs, and an image in the store (named, exported, pushed as asked) at the end.
//! The `rbuild` binary drives it; an embedding program can too:
//!
//! ```no_run
//! use std::sync::Arc;
//! use rbuild_builder::{build, BuildConfig, BuildIo, ContextSpec, DockerfileSpec};
//!
//! let mut config = BuildConfig::new(
//!     DockerfileSpec::Default,
//!     ContextSpec::Dir("app".into()),
//!     "/var/lib/rbuild".into(),
//!     rbuild_sandbox::detect_privileges(),
//! );
//! config.tags = vec!["app:1".parse().expect("a valid name")];
//! let io = BuildIo {
//!     events: Arc::new(|event| { let _ = event; }),
//!     stdin: None,
//!     stdout: None,
//! };
//! let built = build(config, io).expect("builds");
//! println!("{}", built.image_id);
//! ```
//!
//! Modules, in the order a build uses them: [`config`] (what to build), [`settings`] (the
//! configuration file, read once), `remote` (HTTP and git downloads: the `RemoteSource` port's
//! adapters joined), `inputs` (the Dockerfile and the context's source),
//! `resolver` (the frontend's resolver over the store and the registries), `context` (the
//! context, walked only when a step reads it), [`runtime`] (the executor of RUN), the solver,
//! [`export`] and [`output`] (commit, name, write outputs), [`attest`] (provenance and SBOM
//! attestations, with [`sbom`] reading the image's package databases), [`push`], [`gc`] (automatic
//! garbage collection); [`events`] and [`error`] are what the caller sees.
//!
//! Invariants: nothing here prints (only the binary does); errors are typed
//! ([`BuildError`]) with their causes as `source()`.

pub mod annotations;
pub mod attest;
mod build;
pub mod cache;
pub mod checks;
pub mod config;
mod context;
pub mod error;
pub mod events;
pub mod export;
pub mod gc;
mod inputs;
mod joint;
mod lowered;
pub mod named;
pub mod output;
pub mod push;
mod remote;
mod resolver;
pub mod runtime;
pub mod sbom;
pub mod settings;

pub use annotations::{AnnotationError, Annotations};
pub use attest::{AttestError, AttestFailure, Attestations, ProvenanceSpec};
pub use build::{build, build_all, BuildIo};
pub use cache::{CacheFrom, CacheTo, CacheToKind, DEFAULT_CACHE_MOUNT_MAX_SIZE};
pub use checks::{check, outline, targets, CheckReport};
pub use config::{BuildConfig, ConfigError, ContextSpec, DockerfileSpec, MountGrants};
pub use error::{BuildError, DockerfileError};
pub use events::{BuildEvent, EventSink, Warning};
pub use export::{ExportError, ExportStep, Exported};
pub use inputs::{DockerfileSource, InputError};
pub use named::{NamedSpec, NamedSpecError};
pub use output::{Dest, LayerOptions, Output, OutputError};
pub use runtime::{Runtime, RuntimeError};
pub use settings::{GcSettings, Settings};
