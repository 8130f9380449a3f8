//! Exporters: a stored image as an OCI image layout (directory or tar) or a docker-archive tar,
//! and a stack of layer snapshots as a root filesystem (directory or tar).
//!
//! Invariants: base-image blobs are copied as they are; only uncompressed layers are
//! compressed (parallel gzip or zstd, see `images::distribution_image`) for OCI output; the config blob, hence the image id, is never
//! changed; archive files appear at `dest` only when complete (temp file + rename).

mod archive;
mod docker;
mod oci;
mod rootfs;

pub use docker::{export_docker, export_docker_many};
pub use oci::{export_oci, export_oci_compressed, export_oci_with, ExportedImage};
pub use rootfs::{export_local, export_rootfs_tar};

use std::path::{Path, PathBuf};

use crate::OciError;

/// The directory a file `dest` goes into (`.` for a bare file name).
fn parent_dir(dest: &Path) -> PathBuf {
    match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// A temp file next to `dest`, to be persisted over it once complete.
fn temp_next_to(dest: &Path) -> Result<tempfile::NamedTempFile, OciError> {
    let dir = parent_dir(dest);
    tempfile::Builder::new()
        .prefix(".rbuild-export-")
        .tempfile_in(&dir)
        .map_err(OciError::io("create temp file in", dir))
}

/// Moves a finished temp file to `dest`.
fn persist(tmp: tempfile::NamedTempFile, dest: &Path) -> Result<(), OciError> {
    tmp.as_file()
        .sync_all()
        .map_err(OciError::io("fsync", dest))?;
    tmp.persist(dest).map_err(|e| OciError::Io {
        op: "write",
        path: dest.to_path_buf(),
        source: e.error,
    })?;
    Ok(())
}
