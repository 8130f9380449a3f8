//! Shared vocabulary of rbuild.
//!
//! Every other crate speaks in these types: a content [`Digest`], a target [`Platform`], a
//! normalised [`ImageRef`] (Docker reference rules), a source [`Span`] into a Dockerfile,
//! [`ByteString`] (with the escaped form of [`bytes`]) for bytes that need not be UTF-8,
//! [`root_path`], the one resolver of paths inside an image (over an abstract tree),
//! [`path_clean`], Go's lexical `path.Clean` for `/`-separated paths, [`SnapshotId`], the
//! name of an unpacked layer (the store and the ports both speak of it), and [`Privileges`],
//! what the process may do to files and namespaces (detected once at startup, passed down).
//! This crate has no I/O and depends on nothing of ours.

#[macro_use]
mod text_serde;

pub mod bytes;
mod digest;
mod image_ref;
pub mod path_clean;
mod platform;
pub mod privileges;
pub mod root_path;
mod snapshot_id;
mod span;

pub use bytes::ByteString;
pub use digest::{Digest, DigestError, Hasher};
pub use image_ref::{ImageRef, ImageRefError, DEFAULT_REGISTRY};
pub use platform::{Platform, PlatformError};
pub use privileges::{Privileges, UserNamespace};
pub use snapshot_id::SnapshotId;
pub use span::Span;
