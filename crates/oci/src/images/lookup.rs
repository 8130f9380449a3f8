//! Naming and finding stored images: tags, listing, loading by tag, id or digest.

use rbuild_cache::Store;
use rbuild_types::{Digest, ImageRef, Platform};

use super::load_index;

use crate::config::{self, ParsedConfig};
use crate::manifest::ImageManifest;
use crate::OciError;

/// One line of `rbuild images`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageSummary {
    /// The tag, in Docker's short form (`app:1.0`, `busybox:latest`).
    pub name: String,
    /// The image id (config digest).
    pub id: Digest,
    pub manifest_digest: Digest,
    /// RFC 3339 creation time from the config, if any.
    pub created: Option<String>,
    /// Config plus layer blob sizes, in bytes.
    pub size: u64,
}

/// A stored image, read back.
#[derive(Clone, Debug)]
pub struct LoadedImage {
    pub manifest_digest: Digest,
    pub manifest: ImageManifest,
    pub config: ParsedConfig,
    /// The config blob exactly as stored (exporters copy it unchanged).
    pub config_bytes: Vec<u8>,
    /// When the name or digest it was found by is a multi-platform image: that index. The
    /// image itself is then the host platform's (else the first) of its children.
    pub index: Option<IndexOf>,
}

/// The index a [`LoadedImage`] was picked from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexOf {
    pub digest: Digest,
    /// Its children's platforms, in order.
    pub platforms: Vec<Platform>,
}

impl LoadedImage {
    /// What the image was found by: its index, or its manifest.
    pub fn top_digest(&self) -> Digest {
        self.index
            .as_ref()
            .map_or(self.manifest_digest, |i| i.digest)
    }
}

impl LoadedImage {
    pub fn id(&self) -> Digest {
        self.manifest.config.digest
    }
}

/// The form tags are stored in: a normalised reference (`docker.io/library/app:1.0`).
pub fn normalise_tag(name: &str) -> Result<String, OciError> {
    parse_image_name(name).map(|r| r.to_string())
}

/// An image name given to be stored or exported under, parsed.
pub(crate) fn parse_image_name(name: &str) -> Result<ImageRef, OciError> {
    ImageRef::parse(name).map_err(|e| OciError::Invalid {
        what: "image name",
        context: e.to_string(),
        value: name.to_string(),
    })
}

/// Points tag `name` (normalised first) at a stored manifest.
pub fn tag_image(store: &Store, name: &str, manifest_digest: &Digest) -> Result<(), OciError> {
    if !store.blobs().has(manifest_digest) {
        return Err(OciError::MissingBlob(*manifest_digest));
    }
    let tag = normalise_tag(name)?;
    store
        .tags()
        .set(&tag, manifest_digest)
        .map_err(OciError::store(format!("tag {tag}")))
}

fn read_manifest(store: &Store, digest: &Digest) -> Result<ImageManifest, OciError> {
    if !store.blobs().has(digest) {
        return Err(OciError::MissingBlob(*digest));
    }
    let bytes = store
        .blobs()
        .read(digest)
        .map_err(OciError::store(format!("read manifest {digest}")))?;
    ImageManifest::parse(&bytes, &digest.to_string())
}

/// Reads a stored image by manifest digest.
pub fn load_manifest(store: &Store, manifest_digest: &Digest) -> Result<LoadedImage, OciError> {
    let manifest = read_manifest(store, manifest_digest)?;
    let cd = manifest.config.digest;
    if !store.blobs().has(&cd) {
        return Err(OciError::MissingBlob(cd));
    }
    let config_bytes = store
        .blobs()
        .read(&cd)
        .map_err(OciError::store(format!("read config {cd}")))?;
    let config = config::parse(&config_bytes, &cd.to_string())?;
    if config.diff_ids.len() != manifest.layers.len() {
        return Err(OciError::LayerCountMismatch {
            manifest: *manifest_digest,
            layers: manifest.layers.len(),
            diff_ids: config.diff_ids.len(),
        });
    }
    Ok(LoadedImage {
        manifest_digest: *manifest_digest,
        manifest,
        config,
        config_bytes,
        index: None,
    })
}

/// Reads a stored image by the digest of its manifest, or of a multi-platform image's index
/// (then the host platform's child, else the first, with [`LoadedImage::index`] set).
pub fn load_stored(store: &Store, digest: &Digest) -> Result<LoadedImage, OciError> {
    if !store.blobs().has(digest) {
        return Err(OciError::MissingBlob(*digest));
    }
    let Some(index) = load_index(store, digest)? else {
        return load_manifest(store, digest);
    };
    let host = Platform::host();
    let child = index
        .manifests
        .iter()
        .find(|m| m.platform.as_ref() == Some(&host))
        .or_else(|| {
            index
                .manifests
                .iter()
                .find(|m| !crate::attest::is_attestation(m))
        })
        .ok_or_else(|| OciError::Invalid {
            what: "image index",
            context: digest.to_string(),
            value: "no manifests".into(),
        })?;
    let mut image = load_manifest(store, &child.digest)?;
    image.index = Some(IndexOf {
        digest: *digest,
        platforms: index
            .manifests
            .iter()
            .filter(|m| !crate::attest::is_attestation(m))
            .filter_map(|m| m.platform.clone())
            .collect(),
    });
    Ok(image)
}

/// Finds an image by tag (`app`, `app:1.0`, full name), manifest digest, image id
/// (`sha256:…`) or a unique id prefix of at least 4 hex characters (`3f2a9c…`).
pub fn load_image(store: &Store, reference: &str) -> Result<LoadedImage, OciError> {
    let not_found = || OciError::ImageNotFound(reference.to_string());
    let tags = store.tags().list().map_err(OciError::store("list tags"))?;
    if let Ok(tag) = normalise_tag(reference) {
        if let Some((_, d)) = tags.iter().find(|(t, _)| *t == tag || t == reference) {
            return load_stored(store, d);
        }
    }
    let hex = reference.strip_prefix("sha256:").unwrap_or(reference);
    let is_hex = hex.len() >= 4 && hex.bytes().all(|b| b.is_ascii_hexdigit());
    if !is_hex {
        return Err(not_found());
    }
    if let Ok(d) = format!("sha256:{hex}").parse::<Digest>() {
        if store.blobs().has(&d) {
            if let Ok(img) = load_stored(store, &d) {
                return Ok(img);
            }
        }
    }
    // An image id (config digest), possibly abbreviated, of a tagged image.
    let mut found: Option<LoadedImage> = None;
    for (_, md) in &tags {
        let Ok(img) = load_stored(store, md) else {
            continue;
        };
        if img.id().hex().starts_with(hex) || md.hex().starts_with(hex) {
            match &found {
                Some(f) if f.top_digest() != img.top_digest() => {
                    return Err(OciError::Invalid {
                        what: "image id prefix (ambiguous)",
                        context: "local store".into(),
                        value: reference.to_string(),
                    })
                }
                _ => found = Some(img),
            }
        }
    }
    found.ok_or_else(not_found)
}

/// Every tagged image, sorted by name.
pub fn list_images(store: &Store) -> Result<Vec<ImageSummary>, OciError> {
    let mut out = Vec::new();
    for (tag, md) in store.tags().list().map_err(OciError::store("list tags"))? {
        let img = load_stored(store, &md)?;
        let name = ImageRef::parse(&tag).map(|r| r.familiar()).unwrap_or(tag);
        let image_size = |i: &LoadedImage| {
            i.manifest.config.size + i.manifest.layers.iter().map(|l| l.size).sum::<u64>()
        };
        // A multi-platform image is one line: its index's digest as id, all platforms' size.
        let (id, size) = match &img.index {
            None => (img.id(), image_size(&img)),
            Some(index) => {
                let mut size = 0;
                for child in load_index(store, &index.digest)?
                    .map(|i| i.manifests)
                    .unwrap_or_default()
                {
                    size += image_size(&load_manifest(store, &child.digest)?);
                }
                (index.digest, size)
            }
        };
        out.push(ImageSummary {
            name,
            id,
            manifest_digest: md,
            created: img.config.created.clone(),
            size,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}
