//! The registry side of rbuild: pulling (and pushing) images over the OCI distribution API.
//!
//! - [`config`]: which endpoints to use for a registry (mirrors, plain HTTP) and its TLS
//!   settings (insecure, CAs, client certificate), read from BuildKit-style
//!   `[registry."<host>"]` TOML tables.
//! - [`auth`]: Docker `config.json` credentials (credential helpers, identity tokens),
//!   `WWW-Authenticate` challenges, tokens, and writing `config.json` for [`login`].
//! - [`login`]: `rbuild login`/`logout`: check credentials against a registry, store them.
//! - [`manifest`]: the manifest/index formats and platform selection.
//! - [`client`]: [`Client`], the blocking HTTP client with auth retries and endpoint fallback;
//!   its pull operations are in `pull`, push operations in `push`.
//! - [`push_image`]: pushing an image from the local store (blobs in parallel, manifest last);
//!   [`push_compressing`]: a layer's first compression overlapped with its upload.
//! - [`retry`]: the one retry policy (backoff with jitter, `Retry-After`, bounded attempts)
//!   that every registry operation runs under, and the notices of its retries.
//! - [`transfer`]: byte progress of blob pulls and pushes, throttled, for the same observer path.
//! - [`error`]: [`RegistryError`]; every message names registry, repository and what failed,
//!   and [`error_body`] adds what the registry said (`errors[].message`).
//!
//! Invariant: whatever the client returns has been verified against its digest.

pub mod auth;
pub mod client;
pub mod config;
pub mod error;
pub mod error_body;
pub mod login;
pub mod manifest;
mod pull;
mod push;
pub mod push_compressing;
pub mod push_image;
pub mod retry;
pub mod transfer;

pub use auth::store::{DockerConfig, Removed, Stored};
pub use client::Client;
pub use config::{ConfigError, Endpoint, HostConfig, RegistryConfig};
pub use error::{Object, RegistryError};
pub use error_body::ErrorBody;
pub use login::LoginServer;
pub use pull::{PulledManifest, RawManifest, CONFIG_LIMIT, MANIFEST_LIMIT};
pub use push::{OpenBlob, Pushed};
pub use push_image::{push_image, PushError, PushReport};
pub use retry::{Clock, Retrier, RetryNotice, RetryObserver, RetryPolicy};
pub use transfer::{Direction, TransferEvent, TransferObserver, TransferPhase};

#[cfg(test)]
mod tests;
#[cfg(test)]
pub(crate) mod testutil;
