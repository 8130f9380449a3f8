//! Exporters: a stored image as an OCI image layout (directory or tar) or a docker-archive tar,
//! and a stack of layer snapshots as a root filesystem (directory or tar).
//!
//! Invariants: base-image blobs are copied as they are; only uncompressed layers are
//! compressed (parallel gzip or zstd, see `images::distribution_image`) for OCI output; the
//! config blob, hence the image id, is never changed. An archive replaces a regular file at
//! `dest` only when complete (temp file + rename) and is written through a device, FIFO or
//! symlink there, never renamed over it (`dest`); a directory output never follows or writes
//! through a link already inside it (`confined`; `export_local` unpacks with the layer
//! unpacker, which replaces such links and refuses paths through them).

mod confined;
mod dest;
mod docker;
mod oci;
mod rootfs;
mod statements;

pub use dest::OutputFile;
pub use docker::{export_docker, export_docker_many, export_docker_to};
pub use oci::{
    export_oci, export_oci_compressed, export_oci_tar_to, export_oci_with, ExportedImage,
};
pub use rootfs::{export_local, export_rootfs_tar, export_rootfs_tar_with, ExtraFile};
pub use statements::write_statement_files;

use std::path::{Path, PathBuf};

/// The directory a file `dest` goes into (`.` for a bare file name).
fn parent_dir(dest: &Path) -> PathBuf {
    match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}
