//! Attestations in a root filesystem output (`type=local`, `type=tar`): the statements as
//! files beside the image's files, as BuildKit's local and tar exporters write them, about
//! those files (path and sha256 each).

use std::path::{Path, PathBuf};

use rbuild_cache::{MergedView, SnapshotId, Store};
use rbuild_oci::attest::{Statement, Subject};
use rbuild_oci::OciError;
use rbuild_types::Hasher;

use super::Predicate;

/// Why the statements of a root filesystem output could not be made or written.
#[derive(Debug, thiserror::Error)]
pub enum LocalStatementsError {
    #[error("reading the image's files: {0}")]
    View(#[source] rbuild_cache::CacheError),
    #[error("reading {path} of the image: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Write(#[from] OciError),
}

/// Writes `predicates` into the root filesystem output `dir` of the image of `layers`, as
/// BuildKit's local exporter does: see [`statement_files`]; mode 0600, modified at `mtime`.
pub(crate) fn write_local(
    store: &Store,
    dir: &Path,
    layers: &[SnapshotId],
    predicates: &[Predicate],
    mtime: u64,
) -> Result<(), LocalStatementsError> {
    let files = statement_files(store, layers, predicates)?;
    rbuild_oci::export::write_statement_files(dir, &files, mtime)?;
    Ok(())
}

/// The statements of `predicates` about the root filesystem of `layers`, as the files a
/// root filesystem output gets (BuildKit's local and tar exporters): one in-toto statement per
/// predicate (`provenance.json`, `sbom.spdx.json`; indented JSON) whose subjects are every
/// regular file of the image, by path and sha256.
pub(crate) fn statement_files(
    store: &Store,
    layers: &[SnapshotId],
    predicates: &[Predicate],
) -> Result<Vec<(&'static str, Vec<u8>)>, LocalStatementsError> {
    let paths: Vec<PathBuf> = layers
        .iter()
        .map(|l| {
            store
                .snapshots()
                .path(l)
                .ok_or(OciError::MissingSnapshot(l.0))
        })
        .collect::<Result<_, _>>()?;
    let view = MergedView::new(paths);
    let mut subjects = Vec::new();
    for entry in view
        .walk(Path::new("/"))
        .map_err(LocalStatementsError::View)?
    {
        if !entry.metadata.is_file() {
            continue;
        }
        let mut file =
            std::fs::File::open(&entry.host_path).map_err(|source| LocalStatementsError::Read {
                path: entry.path.clone(),
                source,
            })?;
        let mut hasher = Hasher::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = std::io::Read::read(&mut file, &mut buf).map_err(|source| {
                LocalStatementsError::Read {
                    path: entry.path.clone(),
                    source,
                }
            })?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        let name = entry.path.to_string_lossy();
        subjects.push(Subject::new(
            name.trim_start_matches('/').to_string(),
            &hasher.finish(),
        ));
    }
    Ok(predicates
        .iter()
        .map(|p| {
            let statement = Statement::new(p.predicate_type, subjects.clone(), p.predicate.clone());
            (p.file_name, statement.to_json_pretty())
        })
        .collect())
}
