//! Pushing: blobs (`HEAD` first; then an upload session: `POST /blobs/uploads/`, the content
//! in chunks, each a `PATCH <location>` with its `Content-Range`, and a closing
//! `PUT <location>?digest=`) and manifests (`PUT /manifests/<ref>`). A registry that refuses
//! chunks (`405`/`501` on the first `PATCH`) gets the blob in one `PUT ?digest=` instead.
//! A blob known to be in another repository of the same registry is mounted from there
//! first (`POST /blobs/uploads/?mount=<digest>&from=<repository>`, `201 Created`); a registry
//! that will not mount answers `202` and the blob is uploaded.
//!
//! Each request runs under the client's retry policy; an upload that fails transiently (a
//! dropped connection, `429`, `5xx`) starts a new session from the first byte.
//! Pushes go to the registry itself, never to a mirror, with a `pull,push` token scope.
//! Invariant: a manifest is pushed only by the caller after every blob it references, so the
//! registry never holds a manifest whose content is missing.

use std::io::Read;

use reqwest::blocking::{Body, Response};
use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, LOCATION};
use reqwest::{StatusCode, Url};

use rbuild_types::{Digest, ImageRef};

use super::client::{Client, Target, UPLOAD_TIMEOUT};
use super::config::Endpoint;
use super::error::{Object, RegistryError};

/// Opens the content of a blob to upload; called once per attempt.
pub type OpenBlob<'a> = &'a (dyn Fn() -> std::io::Result<Box<dyn Read + Send>> + Sync);

/// How a blob came to be in the target repository.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pushed {
    /// It was there already (`HEAD`).
    Existed,
    /// Mounted from another repository of the registry.
    Mounted,
    /// Uploaded.
    Uploaded,
}

impl Client {
    /// Whether `image`'s repository already has blob `digest` (`HEAD`).
    pub fn blob_exists(&self, image: &ImageRef, digest: &Digest) -> Result<bool, RegistryError> {
        let ep = self.config().registry_endpoint(&image.registry);
        let target = push_target(&ep, image, Object::Blob(*digest));
        let url = target.url(&format!("/v2/{}/blobs/{digest}", image.repository));
        match self.retry(&target, |_| {
            self.send(&target, &url, &|http| Ok(http.head(&url)))
        }) {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Uploads blob `digest` of `size` bytes unless the repository has it; returns whether
    /// it was uploaded. `open` yields the content (it is opened again for each attempt).
    pub fn push_blob(
        &self,
        image: &ImageRef,
        digest: &Digest,
        size: u64,
        open: OpenBlob<'_>,
    ) -> Result<bool, RegistryError> {
        Ok(self.push_blob_from(image, digest, size, open, None)? == Pushed::Uploaded)
    }

    /// Like [`Client::push_blob`], mounting the blob from repository `mount_from` of the same
    /// registry when given, before uploading it.
    pub fn push_blob_from(
        &self,
        image: &ImageRef,
        digest: &Digest,
        size: u64,
        open: OpenBlob<'_>,
        mount_from: Option<&str>,
    ) -> Result<Pushed, RegistryError> {
        if self.blob_exists(image, digest)? {
            return Ok(Pushed::Existed);
        }
        let ep = self.config().registry_endpoint(&image.registry);
        let target = push_target(&ep, image, Object::Upload(*digest));
        if let Some(from) = mount_from.filter(|from| *from != image.repository) {
            if self.retry(&target, |_| self.mount(&target, digest, from))? {
                return Ok(Pushed::Mounted);
            }
        }
        self.retry(&target, |_| self.upload(&target, digest, size, open))?;
        Ok(Pushed::Uploaded)
    }

    /// Uploads a blob whose bytes arrive in `chunks` as they are made (a layer being
    /// compressed), each chunk one `PATCH` of one session, hashing them on the way; the closing
    /// `PUT` names the digest. Returns the blob's digest and size. Not retried (the bytes
    /// cannot be read again), and no `HEAD` or mount first (the digest is not known yet): the
    /// caller falls back to an ordinary push of the finished blob when this fails. `layer`
    /// names it in errors.
    pub fn upload_chunks(
        &self,
        image: &ImageRef,
        layer: &Digest,
        chunks: impl Iterator<Item = Vec<u8>>,
    ) -> Result<(Digest, u64), RegistryError> {
        let ep = self.config().registry_endpoint(&image.registry);
        let target = push_target(&ep, image, Object::CompressingUpload(*layer));
        let start = target.url(&format!("/v2/{}/blobs/uploads/", target.repository));
        let resp = self.send(&target, &start, &|http| {
            Ok(http.post(&start).header(CONTENT_LENGTH, "0"))
        })?;
        let mut location = next_location(&target, &start, &resp)?;
        let mut hasher = rbuild_types::Hasher::new();
        let mut offset: u64 = 0;
        for chunk in chunks.filter(|c| !c.is_empty()) {
            hasher.update(&chunk);
            location = self.patch_chunk(&target, location, offset, &chunk)?;
            offset += chunk.len() as u64;
        }
        let digest = hasher.finish();
        let put_url = with_digest(location, &digest);
        let resp = self.send(&target, &put_url, &|http| {
            Ok(http.put(&put_url).header(CONTENT_LENGTH, "0"))
        })?;
        if resp.status() != StatusCode::CREATED {
            return Err(target.status(resp.status()));
        }
        Ok((digest, offset))
    }

    /// Asks the registry to mount blob `digest` from repository `from`; whether it did.
    fn mount(
        &self,
        target: &Target<'_>,
        digest: &Digest,
        from: &str,
    ) -> Result<bool, RegistryError> {
        let mut url = Url::parse(&target.url(&format!("/v2/{}/blobs/uploads/", target.repository)))
            .map_err(|_| RegistryError::BadHeader {
                at: target.at(),
                header: "Host",
                value: target.registry(),
            })?;
        url.query_pairs_mut()
            .append_pair("mount", &digest.to_string())
            .append_pair("from", from);
        let url = url.to_string();
        let resp = self.send(target, &url, &|http| {
            Ok(http.post(&url).header(CONTENT_LENGTH, "0"))
        })?;
        Ok(resp.status() == StatusCode::CREATED)
    }

    /// One upload session of blob `digest`, from its first byte.
    fn upload(
        &self,
        target: &Target<'_>,
        digest: &Digest,
        size: u64,
        open: OpenBlob<'_>,
    ) -> Result<(), RegistryError> {
        let start = target.url(&format!("/v2/{}/blobs/uploads/", target.repository));
        let resp = self.send(target, &start, &|http| {
            Ok(http.post(&start).header(CONTENT_LENGTH, "0"))
        })?;
        let mut location = next_location(target, &start, &resp)?;
        let read_err = |source| RegistryError::UploadRead {
            at: target.at(),
            source,
        };
        let mut reader = open().map_err(read_err)?;
        let mut offset: u64 = 0;
        let mut chunk = Vec::new();
        loop {
            chunk.clear();
            (&mut reader)
                .take(self.upload_chunk() as u64)
                .read_to_end(&mut chunk)
                .map_err(read_err)?;
            if chunk.is_empty() {
                break;
            }
            location = match self.patch_chunk(target, location.clone(), offset, &chunk) {
                Err(e) if offset == 0 && refuses_chunks(&e) => {
                    return self.put_whole(target, location, digest, size, open);
                }
                other => other?,
            };
            offset += chunk.len() as u64;
        }
        if offset != size {
            return Err(target.size_mismatch(size, offset));
        }
        let put_url = with_digest(location, digest);
        let resp = self.send(target, &put_url, &|http| {
            Ok(http.put(&put_url).header(CONTENT_LENGTH, "0"))
        })?;
        if resp.status() != StatusCode::CREATED {
            return Err(target.status(resp.status()));
        }
        Ok(())
    }

    /// Sends `chunk`, the bytes from `offset` on, to the upload session at `location` (one
    /// `PATCH` with its `Content-Range`); returns where the session goes on.
    fn patch_chunk(
        &self,
        target: &Target<'_>,
        location: Url,
        offset: u64,
        chunk: &[u8],
    ) -> Result<Url, RegistryError> {
        let url = location.to_string();
        let range = format!("{offset}-{}", offset + chunk.len() as u64 - 1);
        let resp = self.send(target, &url, &|http| {
            Ok(http
                .patch(&url)
                .timeout(UPLOAD_TIMEOUT)
                .header(CONTENT_TYPE, "application/octet-stream")
                .header(CONTENT_RANGE, &range)
                .body(chunk.to_vec()))
        })?;
        next_location(target, &url, &resp)
    }

    /// The monolithic upload for registries that refuse chunks: the whole blob in the
    /// closing `PUT`.
    fn put_whole(
        &self,
        target: &Target<'_>,
        location: Url,
        digest: &Digest,
        size: u64,
        open: OpenBlob<'_>,
    ) -> Result<(), RegistryError> {
        let put_url = with_digest(location, digest);
        let resp = self.send(target, &put_url, &|http| {
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
        Ok(())
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
        self.retry(&target, |_| {
            self.send(&target, &url, &|http| {
                Ok(http
                    .put(&url)
                    .header(CONTENT_TYPE, media_type)
                    .body(bytes.to_vec()))
            })
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

/// The `Location` of an upload session's response, resolved against the request's `url` (it
/// may be relative).
fn next_location(target: &Target<'_>, url: &str, resp: &Response) -> Result<Url, RegistryError> {
    let location = resp
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let bad_location = || RegistryError::BadHeader {
        at: target.at(),
        header: "Location",
        value: location.to_string(),
    };
    if location.is_empty() {
        return Err(bad_location());
    }
    Url::parse(url)
        .and_then(|base| base.join(location))
        .map_err(|_| bad_location())
}

/// The closing `PUT` URL of an upload session.
fn with_digest(mut location: Url, digest: &Digest) -> String {
    location
        .query_pairs_mut()
        .append_pair("digest", &digest.to_string());
    location.to_string()
}

/// Whether a registry answered a `PATCH` by saying it takes no chunked uploads.
fn refuses_chunks(e: &RegistryError) -> bool {
    matches!(e, RegistryError::Status { status, .. }
        if matches!(*status, StatusCode::METHOD_NOT_ALLOWED | StatusCode::NOT_IMPLEMENTED))
}
