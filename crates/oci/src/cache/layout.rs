//! The `type=local` cache directory: an OCI image layout, as BuildKit's local cache writes it
//! (`index.json`, `oci-layout`, `blobs/sha256/<hex>`). `index.json` names one OCI image
//! manifest (annotated `org.opencontainers.image.ref.name: latest`) whose config is the cache
//! record ([`super::record`]) and whose layers are the blobs the record names (the steps'
//! layers, then the exported cache mounts').
//!
//! Writes are atomic and serialised: a writer holds an exclusive `flock` on `.rbuild-cache.lock`
//! in the directory; every blob is written to a temporary file, fsynced and renamed; `index.json`
//! is replaced the same way only after the blobs it reaches are durable. Then blobs the new
//! record does not reach (an earlier record's, a crashed writer's temporary files) are pruned.

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use rbuild_types::Digest;

use super::record::{CacheRecordFile, RecordError, RECORD_MEDIA_TYPE};
use crate::images::blob_file;
use crate::manifest::{Descriptor, ImageIndex, ImageManifest, OCI_MANIFEST, REF_NAME};
use crate::OciError;

/// The tag the record's manifest has in `index.json` (BuildKit's default `tag=latest`).
const TAG: &str = "latest";
/// The lock file writers hold.
const LOCK: &str = ".rbuild-cache.lock";
/// Prefix of temporary files in `blobs/sha256` (pruned by the next writer).
const TMP: &str = ".tmp-";

/// Why a cache directory could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    /// An I/O error, naming the operation and the path.
    #[error(transparent)]
    Io(#[from] OciError),
    #[error("{path}: not valid JSON of an OCI {what}: {source}")]
    Json {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{path}: its digest is {actual}, not {expected}")]
    Digest {
        path: PathBuf,
        expected: Digest,
        actual: Digest,
    },
    #[error("{dir}: index.json names no rbuild cache record (tag {TAG:?})")]
    NoRecord { dir: PathBuf },
    #[error("{path}: {source}")]
    Record {
        path: PathBuf,
        #[source]
        source: RecordError,
    },
}

fn io(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> LayoutError {
    let path = path.to_path_buf();
    move |source| LayoutError::Io(OciError::Io { op, path, source })
}

/// A blob of the layout, checked against its digest.
fn read_blob(dir: &Path, digest: &Digest) -> Result<Vec<u8>, LayoutError> {
    let path = blob_file(dir, digest);
    let bytes = std::fs::read(&path).map_err(io("read", &path))?;
    let actual = Digest::of(&bytes);
    if actual != *digest {
        return Err(LayoutError::Digest {
            path,
            expected: *digest,
            actual,
        });
    }
    Ok(bytes)
}

fn parse<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    what: &'static str,
    path: &Path,
) -> Result<T, LayoutError> {
    serde_json::from_slice(bytes).map_err(|source| LayoutError::Json {
        what,
        path: path.to_path_buf(),
        source,
    })
}

/// Reads the record of the cache directory `dir` (written for `key_version`).
pub fn read_record(dir: &Path, key_version: &str) -> Result<CacheRecordFile, LayoutError> {
    let index_path = dir.join("index.json");
    let bytes = std::fs::read(&index_path).map_err(io("read", &index_path))?;
    let index: ImageIndex = parse(&bytes, "image index", &index_path)?;
    let tagged = |d: &&Descriptor| {
        d.annotations
            .as_ref()
            .and_then(|a| a.get(REF_NAME))
            .is_some_and(|t| t == TAG)
    };
    let entry = index
        .manifests
        .iter()
        .find(tagged)
        .or(match index.manifests.as_slice() {
            [only] => Some(only),
            _ => None,
        })
        .ok_or_else(|| LayoutError::NoRecord {
            dir: dir.to_path_buf(),
        })?;
    let manifest_path = blob_file(dir, &entry.digest);
    let manifest: ImageManifest = parse(
        &read_blob(dir, &entry.digest)?,
        "image manifest",
        &manifest_path,
    )?;
    if manifest.config.media_type != RECORD_MEDIA_TYPE {
        return Err(LayoutError::NoRecord {
            dir: dir.to_path_buf(),
        });
    }
    let record_path = blob_file(dir, &manifest.config.digest);
    let bytes = read_blob(dir, &manifest.config.digest)?;
    CacheRecordFile::decode(&bytes, key_version).map_err(|source| LayoutError::Record {
        path: record_path,
        source,
    })
}

/// Writes `record` into the cache directory `dir` (created if needed), replacing the record
/// it had; `blob` gives where each layer blob is now (in the store). Blobs no longer reached
/// are removed.
pub fn write_record(
    dir: &Path,
    record: &CacheRecordFile,
    key_version: &str,
    blob: impl Fn(&Digest) -> PathBuf,
) -> Result<(), LayoutError> {
    let blobs = dir.join("blobs").join("sha256");
    std::fs::create_dir_all(&blobs).map_err(io("create", &blobs))?;
    let lock_path = dir.join(LOCK);
    let lock_file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(io("open", &lock_path))?;
    let _lock = Flock::lock(lock_file, FlockArg::LockExclusive)
        .map_err(|(_, e)| io("lock", &lock_path)(e.into()))?;

    let mut kept = HashSet::new();
    for (_, digest, _) in record.blobs() {
        let dest = blob_file(dir, &digest);
        if !dest.exists() {
            let src = blob(&digest);
            let mut from = File::open(&src).map_err(io("open", &src))?;
            write_atomic(&blobs, &dest, |f| std::io::copy(&mut from, f).map(|_| ()))?;
        }
        kept.insert(digest);
    }
    let layers = record.layer_descriptors(true);
    let config = put_blob(dir, &record.encode(key_version))?;
    kept.insert(config.0);
    let manifest = ImageManifest::oci(
        Descriptor::new(RECORD_MEDIA_TYPE, config.0, config.1),
        layers,
    );
    let manifest = put_blob(dir, &manifest.to_json())?;
    kept.insert(manifest.0);
    sync_dir(&blobs)?;

    let mut entry = Descriptor::new(OCI_MANIFEST, manifest.0, manifest.1);
    entry.annotations = Some(BTreeMap::from([(REF_NAME.to_string(), TAG.to_string())]));
    let layout = dir.join("oci-layout");
    write_atomic(dir, &layout, |f| {
        f.write_all(br#"{"imageLayoutVersion":"1.0.0"}"#)
    })?;
    let index = dir.join("index.json");
    let index_json = ImageIndex::oci(vec![entry]).to_json();
    write_atomic(dir, &index, |f| f.write_all(&index_json))?;
    sync_dir(dir)?;
    prune(&blobs, &kept)
}

/// Stores `bytes` as a blob of the layout; returns its digest and size.
fn put_blob(dir: &Path, bytes: &[u8]) -> Result<(Digest, u64), LayoutError> {
    let digest = Digest::of(bytes);
    let dest = blob_file(dir, &digest);
    if !dest.exists() {
        let parent = dest.parent().unwrap_or(dir);
        write_atomic(parent, &dest, |f| f.write_all(bytes))?;
    }
    Ok((digest, bytes.len() as u64))
}

/// Writes `dest` through a temporary file in `tmp_dir` (same filesystem): fill, fsync, rename.
fn write_atomic(
    tmp_dir: &Path,
    dest: &Path,
    fill: impl FnOnce(&mut File) -> std::io::Result<()>,
) -> Result<(), LayoutError> {
    let mut tmp = tempfile::Builder::new()
        .prefix(TMP)
        .tempfile_in(tmp_dir)
        .map_err(io("create a temporary file in", tmp_dir))?;
    fill(tmp.as_file_mut()).map_err(io("write", dest))?;
    tmp.as_file().sync_all().map_err(io("sync", dest))?;
    tmp.persist(dest)
        .map_err(|e| io("rename into place", dest)(e.error))?;
    Ok(())
}

fn sync_dir(dir: &Path) -> Result<(), LayoutError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io("sync", dir))
}

/// Removes the files of `blobs` that are not in `kept` (older records' blobs, temporary files
/// of writers that died). Runs under the writers' lock.
fn prune(blobs: &Path, kept: &HashSet<Digest>) -> Result<(), LayoutError> {
    let entries = std::fs::read_dir(blobs).map_err(io("list", blobs))?;
    for entry in entries {
        let entry = entry.map_err(io("list", blobs))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let keep = format!("sha256:{name}")
            .parse::<Digest>()
            .is_ok_and(|d| kept.contains(&d));
        if !keep {
            let path = entry.path();
            std::fs::remove_file(&path).map_err(io("remove", &path))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use rbuild_ports::{CacheLayer, LayerMediaType};
    use rbuild_types::SnapshotId;

    use super::*;

    const KV: &str = "test-keys";

    /// A record of one step whose one layer is `content`, stored as a blob in `src`.
    fn record_of(src: &Path, content: &[u8]) -> CacheRecordFile {
        let digest = Digest::of(content);
        std::fs::write(src.join(digest.hex()), content).unwrap();
        let layer = CacheLayer {
            snapshot: SnapshotId(Digest::of(b"snap")),
            digest,
            size: content.len() as u64,
            media_type: LayerMediaType::Tar,
            diff_id: digest,
        };
        CacheRecordFile {
            steps: BTreeMap::from([(Digest::of(content), vec![layer])]),
            ..CacheRecordFile::default()
        }
    }

    fn files(dir: &Path) -> Vec<String> {
        let mut out: Vec<String> = std::fs::read_dir(dir.join("blobs/sha256"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        out.sort();
        out
    }

    #[test]
    fn writes_reads_back_and_prunes_what_the_new_record_does_not_reach() {
        let tmp = tempfile::tempdir().unwrap();
        let (src, dir) = (tmp.path().join("src"), tmp.path().join("cache"));
        std::fs::create_dir_all(&src).unwrap();
        let blob = |d: &Digest| src.join(d.hex());

        let first = record_of(&src, b"layer one");
        write_record(&dir, &first, KV, blob).unwrap();
        assert_eq!(read_record(&dir, KV).unwrap(), first);
        assert_eq!(files(&dir).len(), 3, "layer, record, manifest");
        let index = std::fs::read_to_string(dir.join("index.json")).unwrap();
        assert!(index.contains(r#""org.opencontainers.image.ref.name":"latest""#));

        std::fs::write(dir.join("blobs/sha256/.tmp-dead"), b"crashed writer").unwrap();
        let second = record_of(&src, b"layer two");
        write_record(&dir, &second, KV, blob).unwrap();
        assert_eq!(read_record(&dir, KV).unwrap(), second);
        let left = files(&dir);
        assert_eq!(left.len(), 3, "{left:?}");
        assert!(!left.contains(&Digest::of(b"layer one").hex()));
    }

    #[test]
    fn unreadable_caches_say_why() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        assert!(matches!(
            read_record(dir, KV),
            Err(LayoutError::Io(OciError::Io { .. }))
        ));
        std::fs::write(dir.join("index.json"), b"[").unwrap();
        assert!(matches!(
            read_record(dir, KV),
            Err(LayoutError::Json { .. })
        ));
        std::fs::write(
            dir.join("index.json"),
            br#"{"schemaVersion":2,"manifests":[]}"#,
        )
        .unwrap();
        assert!(matches!(
            read_record(dir, KV),
            Err(LayoutError::NoRecord { .. })
        ));

        let src = tmp.path().join("src");
        std::fs::create_dir_all(&src).unwrap();
        let record = record_of(&src, b"layer");
        write_record(dir, &record, KV, |d| src.join(d.hex())).unwrap();
        assert!(matches!(
            read_record(dir, "other-keys"),
            Err(LayoutError::Record {
                source: RecordError::KeyVersion { .. },
                ..
            })
        ));
        // A blob whose bytes are not its digest's.
        let index: ImageIndex =
            serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
        std::fs::write(blob_file(dir, &index.manifests[0].digest), b"{}").unwrap();
        assert!(matches!(
            read_record(dir, KV),
            Err(LayoutError::Digest { .. })
        ));
    }
}
