//! Which registry repositories hold a stored image, and by what digest (Docker's
//! `RepoDigests`): recorded by `rbuild push` (the manifest as sent) and by pulls (what the
//! reference resolved to), kept in the store's `repo_digests` table.

use rbuild_cache::{RepoDigest, Store};
use rbuild_types::{Digest, ImageRef};

use super::LoadedImage;
use crate::OciError;

/// Records that the repository of `at` holds stored manifest (or index) `stored` as `digest`.
pub fn record_repo_digest(
    store: &Store,
    stored: &Digest,
    at: &ImageRef,
    digest: &Digest,
) -> Result<(), OciError> {
    let entry = RepoDigest {
        registry: at.registry.clone(),
        repository: at.repository.clone(),
        digest: *digest,
    };
    store
        .repo_digests()
        .add(stored, entry)
        .map_err(OciError::store(format!("record repo digest of {stored}")))
}

/// `image`'s repo digests in Docker's short form (`busybox@sha256:…`,
/// `127.0.0.1:5000/app@sha256:…`), those of its index first, one per repository.
pub fn repo_digests(store: &Store, image: &LoadedImage) -> Result<Vec<String>, OciError> {
    let mut out: Vec<String> = Vec::new();
    for stored in [image.top_digest(), image.manifest_digest] {
        let entries = store
            .repo_digests()
            .get(&stored)
            .map_err(OciError::store(format!("read repo digests of {stored}")))?;
        for e in entries {
            let name = ImageRef {
                registry: e.registry,
                repository: e.repository,
                tag: None,
                digest: Some(e.digest),
            }
            .familiar();
            let repo = name.split('@').next().unwrap_or_default().to_string();
            if !out
                .iter()
                .any(|o| o.split('@').next() == Some(repo.as_str()))
            {
                out.push(name);
            }
        }
    }
    Ok(out)
}
