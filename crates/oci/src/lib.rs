//! rbuild-oci: the only crate that speaks image formats.
//!
//! - [`layer`]: deterministic layer tars from overlayfs-format snapshots, and unpacking layer
//!   tars (plain/gzip/zstd) back into that format.
//! - [`compress`]: compression detection and parallel gzip.
//! - [`config`] and [`manifest`]: OCI/Docker image config, manifest and index JSON, mapped to and
//!   from `rbuild_graph::ImageConfig`.
//! - [`images`]: the local image store (manifests, configs, layers and tags on `rbuild_cache::Store`).
//! - [`export`]: OCI layout (dir or tar), docker-archive, and root filesystem (dir or tar) exporters.

pub mod compress;
pub mod config;
mod digest_io;
mod error;
pub mod export;
pub mod images;
pub mod layer;
pub mod manifest;
pub mod registry;
pub mod source;
pub mod time;

pub use error::{BoxError, OciError};
pub use layer::{unpack, write_tar, LayerDigest};
