//! Pushing: blobs (HEAD first, then a monolithic upload: `POST /blobs/uploads/` and one
//! `PUT <location>?digest=`) and manifests (`PUT /manifests/<ref>`).
//!
//! Pushes go to the registry itself, never to a mirror, with a `pull,push` token scope.
//! Invariant: a manifest is pushed only by the caller after every blob it references, so the
//! registry never holds a manifest whose content is missing.

use std::io::Read;

use reqwest::blocking::Body;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use reqwest::{StatusCode, Url};

use rbuild_types::{Digest, ImageRef};

use super::client::{Client, Target, UPLOAD_TIMEOUT};
use super::config::Endpoint;
use super::error::{Object, RegistryError};

/// Opens the content of a blob to upload; called once per attempt.
pub type OpenBlob<'a> = &'a (dyn Fn() -> std::io::Result<Box<dyn Read + Send>> + Sync);

impl Client {
    /// Whether `image`'s repository already has blob `digest` (`HEAD`).
    pub fn blob_exists(&self, image: &ImageRef, digest: &Digest) -> Result<bool, RegistryError> {
        let ep = self.config().registry_endpoint(&image.registry);
        let target = push_target(&ep, image, Object::Blob(*digest));
        let url = target.url(&format!("/v2/{}/blobs/{digest}", image.repository));
        match self.send(&target, &url, &|http| Ok(http.head(&url))) {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Uploads blob `digest` of `size` bytes unless the repository has it; returns whether
    /// it was uploaded. `open` yields the content (it is re-opened if the upload is retried
    /// after an authentication challenge).
    pub fn push_blob(
        &self,
        image: &ImageRef,
        digest: &Digest,
        size: u64,
        open: OpenBlob<'_>,
    ) -> Result<bool, RegistryError> {
        if self.blob_exists(image, digest)? {
            return Ok(false);
        }
        let ep = self.config().registry_endpoint(&image.registry);
        let target = push_target(&ep, image, Object::Upload(*digest));
        let start = target.url(&format!("/v2/{}/blobs/uploads/", image.repository));
        let resp = self.send(&target, &start, &|http| {
            Ok(http.post(&start).header(CONTENT_LENGTH, "0"))
        })?;
        let location = resp
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .unwrap_or_default();
        let bad_location = || RegistryError::BadHeader {
            at: target.at(),
            header: "Location",
            value: location.clone(),
        };
        if location.is_empty() {
            return Err(bad_location());
        }
        // The location may be absolute or relative to the request.
        let mut url = Url::parse(&start)
            .and_then(|base| base.join(&location))
            .map_err(|_| bad_location())?;
        url.query_pairs_mut()
            .append_pair("digest", &digest.to_string());
        let put_url = url.to_string();
        let resp = self.send(&target, &put_url, &|http| {
            let reader = open().map_err(|source| RegistryError::UploadRead {
                at: target.at(),
                source,
            })?;
            Ok(http
                .put(&put_url)
                .timeout(UPLOAD_TIMEOUT)
                .header(CONTENT_TYPE, "application/octet-stream")
                .body(Body::sized(reader, size)))
        })?;
        if resp.status() != StatusCode::CREATED {
            return Err(target.status(resp.status()));
        }
        Ok(true)
    }

    /// Uploads blob content held in memory (configs, small layers).
    pub fn push_blob_bytes(&self, image: &ImageRef, bytes: &[u8]) -> Result<Digest, RegistryError> {
        let digest = Digest::of(bytes);
        let owned = bytes.to_vec();
        let open = move || -> std::io::Result<Box<dyn Read + Send>> {
            Ok(Box::new(std::io::Cursor::new(owned.clone())))
        };
        self.push_blob(image, &digest, bytes.len() as u64, &open)?;
        Ok(digest)
    }

    /// Uploads a manifest under `reference` (a tag, or its digest); returns its digest.
    pub fn push_manifest(
        &self,
        image: &ImageRef,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<Digest, RegistryError> {
        let ep = self.config().registry_endpoint(&image.registry);
        let target = push_target(&ep, image, Object::Manifest(reference.to_string()));
        let url = target.url(&format!("/v2/{}/manifests/{reference}", image.repository));
        self.send(&target, &url, &|http| {
            Ok(http
                .put(&url)
                .header(CONTENT_TYPE, media_type)
                .body(bytes.to_vec()))
        })?;
        Ok(Digest::of(bytes))
    }
}

/// A push request about `object` of `image`'s repository at `ep` (the registry itself).
fn push_target<'a>(ep: &'a Endpoint, image: &'a ImageRef, object: Object) -> Target<'a> {
    Target {
        endpoint: ep,
        repository: &image.repository,
        object,
        actions: "pull,push",
    }
}
