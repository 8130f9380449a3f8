//! Naming and finding stored images: tags, listing, loading by tag, id or digest.

use rbuild_cache::Store;
use rbuild_types::{Digest, ImageRef};

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
    })
}

/// Finds an image by tag (`app`, `app:1.0`, full name), manifest digest, image id
/// (`sha256:…`) or a unique id prefix of at least 4 hex characters (`3f2a9c…`).
pub fn load_image(store: &Store, reference: &str) -> Result<LoadedImage, OciError> {
    let not_found = || OciError::ImageNotFound(reference.to_string());
    let tags = store.tags().list().map_err(OciError::store("list tags"))?;
    if let Ok(tag) = normalise_tag(reference) {
        if let Some((_, d)) = tags.iter().find(|(t, _)| *t == tag || t == reference) {
            return load_manifest(store, d);
        }
    }
    let hex = reference.strip_prefix("sha256:").unwrap_or(reference);
    let is_hex = hex.len() >= 4 && hex.bytes().all(|b| b.is_ascii_hexdigit());
    if !is_hex {
        return Err(not_found());
    }
    if let Ok(d) = format!("sha256:{hex}").parse::<Digest>() {
        if store.blobs().has(&d) {
            if let Ok(img) = load_manifest(store, &d) {
                return Ok(img);
            }
        }
    }
    // An image id (config digest), possibly abbreviated, of a tagged image.
    let mut found: Option<LoadedImage> = None;
    for (_, md) in &tags {
        let Ok(img) = load_manifest(store, md) else {
            continue;
        };
        if img.id().hex().starts_with(hex) || md.hex().starts_with(hex) {
            match &found {
                Some(f) if f.manifest_digest != img.manifest_digest => {
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
        let img = load_manifest(store, &md)?;
        let name = ImageRef::parse(&tag).map(|r| r.familiar()).unwrap_or(tag);
        out.push(ImageSummary {
            name,
            id: img.id(),
            manifest_digest: md,
            created: img.config.created.clone(),
            size: img.manifest.config.size
                + img.manifest.layers.iter().map(|l| l.size).sum::<u64>(),
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}
