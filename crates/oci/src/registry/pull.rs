//! Pulling: manifests (following an index to one platform) and blobs, each verified against
//! its digest while it is read. Each request runs under the client's retry policy; a blob
//! download cut short goes on where it stopped (`Range: bytes=N-`, or skipping the first N
//! bytes again when the registry answers the whole blob), its hash carried across attempts.
//!
//! Invariant: nothing returned by this module is unverified. A manifest fetched by digest must
//! hash to it; a blob's bytes are hashed while they stream into the caller's writer and a
//! mismatch is an error (the caller must then discard what was written, which the store's
//! blob writer does by not committing).

use std::io::{Read, Write};

use reqwest::header::{ACCEPT, CONTENT_TYPE, RANGE};
use reqwest::StatusCode;

use rbuild_types::{Digest, Hasher, ImageRef, Platform};

use super::client::{Client, Target};
use super::config::Endpoint;
use super::error::{At, Object, RegistryError};
use super::manifest::{
    classify, describe_platforms, select_platform, ManifestKind, MANIFEST_ACCEPT,
};
use crate::manifest::{ImageIndex, ImageManifest};

/// Largest manifest accepted (registries cap them at 4 MiB).
pub const MANIFEST_LIMIT: u64 = 8 << 20;
/// Largest config blob accepted by [`Client::fetch_blob_bytes`] callers in rbuild.
pub const CONFIG_LIMIT: u64 = 32 << 20;

/// A manifest document as the registry sent it. Invariant: `digest` is the SHA-256 of `bytes`.
#[derive(Clone, Debug)]
pub struct RawManifest {
    pub digest: Digest,
    pub media_type: String,
    pub kind: ManifestKind,
    pub bytes: Vec<u8>,
}

/// A reference resolved to the image manifest for one platform.
#[derive(Clone, Debug)]
pub struct PulledManifest {
    /// The endpoint host that answered (a mirror or the registry).
    pub registry_host: String,
    /// The platform-specific image manifest.
    pub manifest: RawManifest,
    /// Its parsed form.
    pub image: ImageManifest,
    /// The index or manifest list the reference pointed to, when it was one.
    pub index: Option<RawManifest>,
}

impl Client {
    /// Resolves `image` to the image manifest for `platform`, trying mirrors first.
    pub fn resolve(
        &self,
        image: &ImageRef,
        platform: &Platform,
    ) -> Result<PulledManifest, RegistryError> {
        self.each_endpoint(&image.registry, |ep| self.resolve_at(ep, image, platform))
    }

    fn resolve_at(
        &self,
        ep: &Endpoint,
        image: &ImageRef,
        platform: &Platform,
    ) -> Result<PulledManifest, RegistryError> {
        let first = self.manifest_at(ep, &image.repository, &image.reference())?;
        let (manifest, index) = match first.kind {
            ManifestKind::Image => (first, None),
            ManifestKind::Index => {
                let object = Object::Manifest(image.reference());
                let parsed: ImageIndex =
                    serde_json::from_slice(&first.bytes).map_err(|source| RegistryError::Json {
                        at: at(ep, &image.repository, object.clone()),
                        source,
                    })?;
                let chosen = select_platform(&parsed, platform).ok_or_else(|| {
                    RegistryError::NoPlatform {
                        at: at(ep, &image.repository, object.clone()),
                        platform: platform.to_string(),
                        available: describe_platforms(&parsed),
                    }
                })?;
                let child = self.manifest_at(ep, &image.repository, &chosen.digest.to_string())?;
                if child.kind != ManifestKind::Image {
                    return Err(RegistryError::MediaType {
                        at: at(
                            ep,
                            &image.repository,
                            Object::Manifest(chosen.digest.to_string()),
                        ),
                        media_type: child.media_type,
                    });
                }
                (child, Some(first))
            }
        };
        let parsed: ImageManifest =
            serde_json::from_slice(&manifest.bytes).map_err(|source| RegistryError::Json {
                at: at(
                    ep,
                    &image.repository,
                    Object::Manifest(manifest.digest.to_string()),
                ),
                source,
            })?;
        Ok(PulledManifest {
            registry_host: ep.host.clone(),
            manifest,
            image: parsed,
            index,
        })
    }

    /// Fetches one manifest (tag or digest) of `image`'s repository, trying mirrors first.
    pub fn fetch_manifest(
        &self,
        image: &ImageRef,
        reference: &str,
    ) -> Result<RawManifest, RegistryError> {
        self.each_endpoint(&image.registry, |ep| {
            self.manifest_at(ep, &image.repository, reference)
        })
    }

    fn manifest_at(
        &self,
        ep: &Endpoint,
        repository: &str,
        reference: &str,
    ) -> Result<RawManifest, RegistryError> {
        let target = Target {
            endpoint: ep,
            repository,
            object: Object::Manifest(reference.to_string()),
            actions: "pull",
        };
        let url = target.url(&format!("/v2/{repository}/manifests/{reference}"));
        let (content_type, bytes, digest) = self.retry(&target, |_| {
            let resp = self.send(&target, &url, &|http| {
                Ok(http.get(&url).header(ACCEPT, MANIFEST_ACCEPT))
            })?;
            let content_type = resp
                .headers()
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let mut bytes = Vec::new();
            let mut copied = Verified::default();
            copied.copy(&target, resp, 0, &mut bytes, MANIFEST_LIMIT)?;
            Ok((content_type, bytes, copied.hasher.finish()))
        })?;
        if let Ok(expected) = reference.parse::<Digest>() {
            if expected != digest {
                return Err(RegistryError::DigestMismatch {
                    at: at(ep, repository, target.object),
                    expected,
                    actual: digest,
                });
            }
        }
        let (kind, media_type) =
            classify(content_type.as_deref(), &bytes).ok_or_else(|| RegistryError::MediaType {
                at: at(ep, repository, target.object.clone()),
                media_type: content_type.clone().unwrap_or_default(),
            })?;
        Ok(RawManifest {
            digest,
            media_type,
            kind,
            bytes,
        })
    }

    /// Streams blob `digest` of `image`'s repository into `out`, verifying its digest (and
    /// `expected_size` when given) as it goes; returns the size. On error, `out` may hold
    /// part of the content and must be discarded. Mirrors are tried first, but only until
    /// the first byte has been written.
    pub fn fetch_blob(
        &self,
        image: &ImageRef,
        digest: &Digest,
        expected_size: Option<u64>,
        out: &mut dyn Write,
    ) -> Result<u64, RegistryError> {
        self.each_endpoint(&image.registry, |ep| {
            let limit = expected_size.unwrap_or(u64::MAX);
            let size = self.blob_at(ep, image, digest, out, limit)?;
            if let Some(expected) = expected_size.filter(|e| *e != size) {
                return Err(RegistryError::SizeMismatch {
                    at: at(ep, &image.repository, Object::Blob(*digest)),
                    expected,
                    size,
                });
            }
            Ok(size)
        })
    }

    /// Fetches a small blob (a config) into memory, verified; at most `limit` bytes.
    pub fn fetch_blob_bytes(
        &self,
        image: &ImageRef,
        digest: &Digest,
        limit: u64,
    ) -> Result<Vec<u8>, RegistryError> {
        let mut buf = Vec::new();
        self.each_endpoint(&image.registry, |ep| {
            buf.clear();
            self.blob_at(ep, image, digest, &mut buf, limit)
        })?;
        Ok(buf)
    }

    /// Streams blob `digest` from one endpoint into `out` (at most `limit` bytes) and checks
    /// that it hashes to `digest`; returns its size.
    fn blob_at(
        &self,
        ep: &Endpoint,
        image: &ImageRef,
        digest: &Digest,
        out: &mut dyn Write,
        limit: u64,
    ) -> Result<u64, RegistryError> {
        let target = Target {
            endpoint: ep,
            repository: &image.repository,
            object: Object::Blob(*digest),
            actions: "pull",
        };
        let url = target.url(&format!("/v2/{}/blobs/{digest}", image.repository));
        let mut copied = Verified::default();
        self.retry(&target, |_| {
            let offset = copied.size;
            let resp = self.send(&target, &url, &|http| {
                let req = http.get(&url);
                Ok(match offset {
                    0 => req,
                    _ => req.header(RANGE, format!("bytes={offset}-")),
                })
            })?;
            // A registry that ignores the range sends the whole blob again.
            let skip = match resp.status() {
                StatusCode::PARTIAL_CONTENT => 0,
                _ => offset,
            };
            copied.copy(&target, resp, skip, out, limit)
        })?;
        let (actual, size) = (copied.hasher.finish(), copied.size);
        if actual != *digest {
            return Err(RegistryError::DigestMismatch {
                at: at(ep, &image.repository, target.object),
                expected: *digest,
                actual,
            });
        }
        Ok(size)
    }
}

fn at(ep: &Endpoint, repository: &str, object: Object) -> Box<At> {
    Box::new(At {
        registry: ep.host.clone(),
        repository: repository.to_string(),
        object,
    })
}

/// What has been copied of a body so far: its hash and size, carried across attempts.
#[derive(Default)]
struct Verified {
    hasher: Hasher,
    size: u64,
}

impl Verified {
    /// Copies a response body into `out`, hashing it, after dropping its first `skip` bytes
    /// (already copied by an earlier attempt); fails once more than `limit` bytes arrive.
    fn copy(
        &mut self,
        target: &Target<'_>,
        mut body: impl Read,
        mut skip: u64,
        out: &mut dyn Write,
        limit: u64,
    ) -> Result<(), RegistryError> {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match body.read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(RegistryError::BodyRead {
                        at: target.at(),
                        source,
                    })
                }
            };
            let dropped = usize::try_from(skip).unwrap_or(usize::MAX).min(n);
            skip -= dropped as u64;
            let fresh = &buf[dropped..n];
            if fresh.is_empty() {
                continue;
            }
            self.size += fresh.len() as u64;
            if self.size > limit {
                return Err(RegistryError::TooLarge {
                    at: target.at(),
                    limit,
                });
            }
            self.hasher.update(fresh);
            out.write_all(fresh)
                .map_err(|source| RegistryError::Write {
                    at: target.at(),
                    source,
                })?;
        }
    }
}
