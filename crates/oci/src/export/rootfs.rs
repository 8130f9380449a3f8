//! Root filesystem export: the merged view of a stack of layer snapshots, written as a
//! directory (`-o type=local`) or as one tar (`-o type=tar`). Whiteouts and opaque
//! directories are applied by `rbuild_cache::MergedView`; ownership is kept when root.

use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rbuild_cache::{MergedView, SnapshotId, Store};
use rbuild_types::Privileges;

use crate::layer::{emit, unpack, LayerDigest, TarEmitter};
use crate::OciError;

fn snapshot_dirs(store: &Store, layers: &[SnapshotId]) -> Result<Vec<PathBuf>, OciError> {
    layers
        .iter()
        .map(|id| {
            store
                .snapshots()
                .path(id)
                .ok_or(OciError::MissingSnapshot(id.0))
        })
        .collect()
}

/// Writes the merged root filesystem of `layers` (bottom first) as one deterministic tar.
pub fn export_rootfs_tar(
    store: &Store,
    layers: &[SnapshotId],
    out: impl Write,
) -> Result<LayerDigest, OciError> {
    export_rootfs_tar_with(store, layers, out, &[])
}

/// A file a root filesystem tar gets beside the image's (an attestation statement, as
/// BuildKit's tar exporter adds them): owned by root, with its mode and mtime.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtraFile {
    /// Its name at the root of the tar.
    pub name: String,
    pub data: Vec<u8>,
    pub mode: u32,
    /// Unix seconds.
    pub mtime: u64,
}

/// [`export_rootfs_tar`], then `extra` files after the image's.
pub fn export_rootfs_tar_with(
    store: &Store,
    layers: &[SnapshotId],
    out: impl Write,
    extra: &[ExtraFile],
) -> Result<LayerDigest, OciError> {
    let view = MergedView::new(snapshot_dirs(store, layers)?);
    let entries = view
        .walk(Path::new("/"))
        .map_err(OciError::store("walk merged layers"))?;
    let mut emitter = TarEmitter::new(out, None);
    for e in entries {
        if crate::layer::is_whiteout(&e.metadata) {
            continue;
        }
        let rel = e.path.strip_prefix("/").unwrap_or(&e.path);
        emit(
            &mut emitter,
            rel.as_os_str().as_bytes(),
            &e.host_path,
            &e.metadata,
        )?;
    }
    for f in extra {
        emitter.emit_bytes(f.name.as_bytes(), &f.data, f.mode, f.mtime)?;
    }
    Ok(emitter.finish()?.0)
}

/// Writes the merged root filesystem of `layers` (bottom first) into directory `dest`
/// (created if missing): modes, mtimes, xattrs, hardlinks, devices and — when `privileges`
/// are root's — owners are kept.
pub fn export_local(
    store: &Store,
    layers: &[SnapshotId],
    dest: &Path,
    privileges: &Privileges,
) -> Result<(), OciError> {
    std::fs::create_dir_all(dest).map_err(OciError::io("create directory", dest))?;
    let (reader, writer) = std::io::pipe().map_err(OciError::io("create pipe for", dest))?;
    std::thread::scope(|s| {
        let producer = s.spawn(move || export_rootfs_tar(store, layers, writer));
        let unpacked = unpack(reader, dest, privileges);
        let produced = producer.join().unwrap_or_else(|_| {
            Err(OciError::Stream {
                what: "root filesystem",
                source: std::io::Error::other("tar writer thread panicked"),
            })
        });
        // When both fail, the reader's error is the cause unless it only saw a cut stream.
        match (produced, unpacked) {
            (Ok(_), r) => r.map(|_| ()),
            (Err(p), Ok(_)) | (Err(p), Err(OciError::Stream { .. })) => Err(p),
            (Err(_), Err(u)) => Err(u),
        }
    })
}
