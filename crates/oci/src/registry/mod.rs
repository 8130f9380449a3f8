//! The registry side of rbuild: pulling (and pushing) images over the OCI distribution API.
//!
//! - [`config`]: which endpoints to use for a registry (mirrors, plain HTTP, insecure TLS),
//!   read from BuildKit-style `[registry."<host>"]` TOML tables.
//! - [`auth`]: Docker `config.json` credentials and `WWW-Authenticate` challenges.
//! - [`manifest`]: the manifest/index formats and platform selection.
//! - [`client`]: [`Client`], the blocking HTTP client with auth retries and endpoint fallback;
//!   its pull operations are in `pull`, push operations in `push`.
//! - [`push_image`]: pushing an image from the local store (blobs in parallel, manifest last).
//! - [`error`]: [`RegistryError`]; every message names registry, repository and what failed.
//!
//! Invariant: whatever the client returns has been verified against its digest.

pub mod auth;
pub mod client;
pub mod config;
pub mod error;
pub mod manifest;
mod pull;
mod push;
pub mod push_image;

pub use client::Client;
pub use config::{ConfigError, Endpoint, HostConfig, RegistryConfig};
pub use error::{Object, RegistryError};
pub use pull::{PulledManifest, RawManifest, CONFIG_LIMIT, MANIFEST_LIMIT};
pub use push::OpenBlob;
pub use push_image::{push_image, PushError, PushReport};

#[cfg(test)]
mod tests;
#[cfg(test)]
pub(crate) mod testutil;
