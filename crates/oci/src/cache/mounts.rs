//! Cache mounts in the cache exchange (`cache-mounts=true`): the contents of a
//! `RUN --mount=type=cache` directory travel as a layer tar blob, named in the record's
//! `cacheMounts` ([`super::record::CacheMountBlob`]).
//!
//! - Export: the directory is written as a deterministic layer tar into the store
//!   (`crate::layer::write_tar`, as a layer of a commit), then, for a registry, compressed as
//!   its other uncompressed layers are ([`export_mount`]).
//! - Import: the blob (once in the store) is unpacked by the layer sink of `rbuild-archive`'s
//!   one extractor (`crate::layer::unpack`: names sanitized strictly, nothing written outside
//!   the directory or through a symlink) into the fresh directory the store publishes as the
//!   mount afterwards, and its tar digest checked against the record's `diffID`
//!   ([`unpack_mount`]). The directory itself keeps the mode and owner the RUN asked for: the
//!   tar holds only what is below it.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use rbuild_cache::Store;
use rbuild_ports::{CacheMountExport, LayerMediaType};
use rbuild_types::{Digest, Privileges};

use super::record::CacheMountBlob;
use crate::compress::{CompressSettings, Compression};
use crate::images::compress_teeing;
use crate::layer::write_tar;
use crate::OciError;

/// Why a cache mount could not be exported or imported.
#[derive(Debug, thiserror::Error)]
pub enum CacheMountsError {
    #[error("cache mount {id:?}: tarring {dir}: {source}")]
    Tar {
        id: String,
        dir: PathBuf,
        #[source]
        source: Box<OciError>,
    },
    #[error("cache mount {id:?}: {source}")]
    Store {
        id: String,
        #[source]
        source: Box<OciError>,
    },
    #[error("cache mount {id:?}: unpacking blob {digest} into {dir}: {source}")]
    Unpack {
        id: String,
        digest: Digest,
        dir: PathBuf,
        #[source]
        source: Box<OciError>,
    },
    #[error("cache mount {id:?}: blob {digest} unpacks to a tar of digest {actual}, the record says {expected}")]
    DiffId {
        id: String,
        digest: Digest,
        expected: Digest,
        actual: Digest,
    },
}

/// Writes the directory of `mount` into the store as a layer tar blob, compressed with
/// `compress` when given (a registry cache); returns how the record describes it.
pub(super) fn export_mount(
    store: &Store,
    mount: &CacheMountExport,
    compress: Option<&CompressSettings>,
) -> Result<CacheMountBlob, CacheMountsError> {
    let id = mount.id.clone();
    let in_store = |source| CacheMountsError::Store {
        id: id.clone(),
        source: Box::new(source),
    };
    let mut writer = store
        .blobs()
        .writer()
        .map_err(OciError::store("open blob writer"))
        .map_err(in_store)?;
    let tarred = write_tar(&mount.dir, &mut writer).map_err(|source| CacheMountsError::Tar {
        id: id.clone(),
        dir: mount.dir.clone(),
        source: Box::new(source),
    })?;
    let (digest, size) = writer
        .commit(Some(&tarred.diff_id))
        .map_err(OciError::store(format!(
            "store the tar of cache mount {id:?}"
        )))
        .map_err(in_store)?;
    let plain = CacheMountBlob {
        media_type: LayerMediaType::Tar,
        digest,
        size,
        diff_id: digest,
    };
    let media_type = match compress.map(|c| c.compression) {
        None | Some(Compression::None) => return Ok(plain),
        Some(Compression::Gzip) => LayerMediaType::TarGzip,
        Some(Compression::Zstd) => LayerMediaType::TarZstd,
    };
    let settings = compress.expect("matched Some above");
    let (digest, size) =
        compress_teeing(store, &digest, settings, std::io::sink()).map_err(in_store)?;
    Ok(CacheMountBlob {
        media_type,
        digest,
        size,
        ..plain
    })
}

/// Unpacks the stored blob of mount `id` into `dir` (new and empty) and checks its tar digest.
pub(super) fn unpack_mount(
    store: &Store,
    id: &str,
    blob: &CacheMountBlob,
    dir: &Path,
    privileges: &Privileges,
) -> Result<(), CacheMountsError> {
    let unpack_err = |source| CacheMountsError::Unpack {
        id: id.to_string(),
        digest: blob.digest,
        dir: dir.to_path_buf(),
        source: Box::new(source),
    };
    let path = store.blobs().path(&blob.digest);
    let file = File::open(&path)
        .map_err(OciError::io("open", &path))
        .map_err(unpack_err)?;
    let unpacked =
        crate::layer::unpack(BufReader::new(file), dir, privileges).map_err(unpack_err)?;
    if unpacked.diff_id != blob.diff_id {
        return Err(CacheMountsError::DiffId {
            id: id.to_string(),
            digest: blob.digest,
            expected: blob.diff_id,
            actual: unpacked.diff_id,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    fn privileges() -> Privileges {
        Privileges {
            uid: nix::unistd::geteuid().as_raw(),
            gid: nix::unistd::getegid().as_raw(),
            namespace: rbuild_types::UserNamespace::Initial,
        }
    }

    #[test]
    fn a_mount_round_trips_through_a_compressed_blob() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(&tmp.path().join("store")).unwrap();
        let src = tmp.path().join("src");
        std::fs::create_dir_all(src.join("sub")).unwrap();
        std::fs::write(src.join("sub/f"), b"hello\n").unwrap();
        symlink("sub/f", src.join("link")).unwrap();
        let mount = CacheMountExport {
            id: "pip".into(),
            dir: src,
        };
        let gzip = CompressSettings::new(Compression::Gzip);
        let blob = export_mount(&store, &mount, Some(&gzip)).unwrap();
        assert_eq!(blob.media_type, LayerMediaType::TarGzip);
        assert_ne!(blob.digest, blob.diff_id);
        assert!(store.blobs().has(&blob.digest));

        let dest = tmp.path().join("dest");
        std::fs::create_dir(&dest).unwrap();
        unpack_mount(&store, "pip", &blob, &dest, &privileges()).unwrap();
        assert_eq!(std::fs::read(dest.join("sub/f")).unwrap(), b"hello\n");
        assert_eq!(
            std::fs::read_link(dest.join("link")).unwrap(),
            Path::new("sub/f")
        );

        let plain = export_mount(&store, &mount, None).unwrap();
        assert_eq!(plain.media_type, LayerMediaType::Tar);
        assert_eq!(plain.digest, blob.diff_id, "the same tar, uncompressed");

        let wrong = CacheMountBlob {
            diff_id: Digest::of(b"other"),
            ..plain
        };
        let again = tmp.path().join("again");
        std::fs::create_dir(&again).unwrap();
        let err = unpack_mount(&store, "pip", &wrong, &again, &privileges()).unwrap_err();
        assert!(matches!(err, CacheMountsError::DiffId { .. }), "{err}");
    }
}
