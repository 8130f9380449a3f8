//! The local image store: images are manifests, configs and layer blobs in the content store of
//! `rbuild_cache::Store`, named by tags.
//!
//! Invariants: an image's id is its config digest; layers built here are stored uncompressed
//! (`application/vnd.oci.image.layer.v1.tar`, blob digest = diff_id), their blobs written only
//! when an output needs the bytes (module `unwritten`); base-image layers keep
//! the blobs they were pulled as (never recompressed); tags are stored normalised
//! (`docker.io/library/app:1.0`).

mod commit;
pub(crate) mod compressed;
mod distribute;
mod import;
mod index;
mod layout;
mod lookup;
mod repo_digests;
mod unwritten;

pub use commit::{commit_image, commit_image_with, CommitOptions, StoredImage};
pub(crate) use commit::{layer_blob, put_manifest};
pub use compressed::layers_to_compress;
pub(crate) use compressed::{compress_teeing, compressed_layer, record as record_compressed};
pub use distribute::{distribution_image, DistImage, DistOptions};
pub(crate) use import::blob_file;
pub use import::{import_archive, import_archive_from, ImportedImage};
pub use index::{commit_index, distribution_index, load_index, DistIndex, StoredIndex};
pub use layout::{layout_image, LayoutSelector};
pub(crate) use lookup::parse_image_name;
pub use lookup::{
    list_images, load_image, load_manifest, load_stored, normalise_tag, tag_image, ImageSummary,
    IndexOf, LoadedImage,
};
pub use repo_digests::{record_repo_digest, repo_digests};
pub(crate) use unwritten::ensure_stored;
