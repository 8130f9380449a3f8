//! One image of an OCI image layout directory on disk, for
//! `--build-context NAME=oci-layout://PATH[:TAG|@DIGEST]`: selected by tag (the
//! `org.opencontainers.image.ref.name` annotation of an `index.json` entry, as buildx reads
//! it) or by digest, its platform picked from a nested index, and its blobs copied into the
//! store (each verified against its digest). Nothing is tagged: the build refers to it by
//! manifest digest.

use std::path::Path;

use rbuild_cache::Store;
use rbuild_types::{Digest, Platform};

use super::import::{blob_file, import_oci_image, pick_platform, read_layout_index};
use super::{load_manifest, LoadedImage};
use crate::manifest::REF_NAME;
use crate::OciError;

/// Which image of a layout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LayoutSelector {
    /// The `index.json` entry whose ref name annotation is the tag (buildx's rule).
    Tag(String),
    /// The `index.json` entry with this digest.
    Digest(Digest),
    /// The entry tagged `latest`, else the only entry.
    Default,
}

/// Stores the image `selector` picks from the layout `dir` (the entry for `platform` of an
/// index) and returns it as stored.
pub fn layout_image(
    store: &Store,
    dir: &Path,
    selector: &LayoutSelector,
    platform: &Platform,
) -> Result<LoadedImage, OciError> {
    let index = read_layout_index(dir)?;
    let tagged = |tag: &str| {
        index.manifests.iter().find(|m| {
            m.annotations
                .as_ref()
                .and_then(|a| a.get(REF_NAME))
                .is_some_and(|t| t == tag)
        })
    };
    let found = match selector {
        LayoutSelector::Tag(tag) => tagged(tag),
        LayoutSelector::Digest(d) => index.manifests.iter().find(|m| m.digest == *d),
        LayoutSelector::Default => tagged("latest").or(match index.manifests.as_slice() {
            [only] => Some(only),
            _ => None,
        }),
    };
    let desc = found.ok_or_else(|| OciError::Invalid {
        what: "image selector (no such entry in index.json)",
        context: dir.display().to_string(),
        value: match selector {
            LayoutSelector::Tag(t) => t.clone(),
            LayoutSelector::Digest(d) => d.to_string(),
            LayoutSelector::Default => "latest".to_string(),
        },
    })?;
    if !blob_file(dir, &desc.digest).is_file() {
        return Err(OciError::MissingBlob(desc.digest));
    }
    let desc = pick_platform(dir, desc, platform)?;
    let manifest_digest = import_oci_image(store, dir, &desc)?;
    load_manifest(store, &manifest_digest)
}
