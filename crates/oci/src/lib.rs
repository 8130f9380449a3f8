//! rbuild-oci: the only crate that speaks image formats. Tar and compression bytes are
//! `rbuild_archive`'s; this crate decides what a layer, a layout or an archive holds.
//!
//! - [`layer`]: deterministic layer tars from overlayfs-format snapshots, and unpacking layer
//!   tars (plain/gzip/zstd) back into that format.
//! - [`compress`]: `rbuild_archive::compress` (parallel gzip and zstd), re-exported: the
//!   compression of layers is part of an image's distribution form.
//! - [`config`] and [`manifest`]: OCI/Docker image config, manifest and index JSON, mapped to and
//!   from `rbuild_graph::ImageConfig`.
//! - [`images`]: the local image store (manifests, configs, layers and tags on `rbuild_cache::Store`).
//! - [`export`]: OCI layout (dir or tar), docker-archive, and root filesystem (dir or tar) exporters.
//! - [`registry`]: the registry client (pull, push) and its configuration; [`source`]: the
//!   `ImageSource` port over the local store and registries.
//! - [`lazy`]: lazy layers: recorded by their blobs, downloaded and unpacked when first read.
//! - [`cache`]: cache exchange: the cache record and the `type=local` cache directory
//!   (`--cache-from` / `--cache-to`), the `CacheExchange` port's adapter.
//! - [`attest`]: attestations (SLSA provenance, SPDX SBOM) as in-toto statements in an
//!   attestation manifest beside the image in its index, as BuildKit attaches them.
//! - [`http`]: the one HTTP client set-up (the registry client's and the downloads'), and
//!   [`http::HttpRemote`], the HTTP half of the `RemoteSource` port (`ADD <url>`, URL contexts).

pub mod attest;
pub mod cache;
pub mod config;
mod error;
pub mod export;
pub mod http;
pub mod images;
pub mod layer;
pub mod lazy;
pub mod manifest;
pub mod registry;
pub mod source;
pub mod time;

pub use error::{BoxError, ChangedLayer, OciError};
pub use layer::{unpack, write_tar, LayerDigest};
pub use rbuild_archive::compress;
