//! The one error type of this crate. Every variant names what it was working on (a path, an
//! entry, a digest) so the binary can print a useful report.

use std::path::PathBuf;

use rbuild_types::Digest;

/// Boxed error of a collaborating crate (the store), kept as a source.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum OciError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("writing the {what} stream: {source}")]
    Stream {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("layer entry {entry:?}: {source}")]
    TarEntry {
        entry: String,
        #[source]
        source: std::io::Error,
    },
    #[error("layer entry {entry:?} escapes the destination: {reason}")]
    Escape { entry: String, reason: &'static str },
    #[error("layer entry {entry:?} has unsupported type {kind}")]
    UnsupportedEntry { entry: String, kind: String },
    #[error("{path}: this kind of special file cannot be put in a layer")]
    UnsupportedFile { path: PathBuf },
    #[error("{what} {context}: invalid JSON: {source}")]
    Json {
        what: &'static str,
        context: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("invalid {what} in {context}: {value:?}")]
    Invalid {
        what: &'static str,
        context: String,
        value: String,
    },
    #[error("store: {op} failed: {source}")]
    Store {
        op: String,
        #[source]
        source: BoxError,
    },
    #[error("snapshot {0} is not in the store")]
    MissingSnapshot(Digest),
    #[error("blob {0} is not in the store")]
    MissingBlob(Digest),
    /// A layer blob made when first needed (module `images::unwritten`) no longer matches.
    #[error(
        "layer {} cannot be made again: snapshot {} now tars to {} \
         (its files were changed on disk)",
        .0.digest, .0.snapshot, .0.actual
    )]
    LayerChanged(Box<ChangedLayer>),
    /// As BuildKit's exporter: an attestation manifest needs OCI media types.
    #[error("cannot export attestations with oci-mediatypes=false")]
    AttestationsNeedOciTypes,
    #[error("image {0:?} not found in the local store")]
    ImageNotFound(String),
    #[error("image has {layers} non-empty layers but its history has {history} entries with empty_layer=false")]
    HistoryMismatch { layers: usize, history: usize },
    #[error("manifest {manifest} lists {layers} layers but its config has {diff_ids} diff_ids")]
    LayerCountMismatch {
        manifest: Digest,
        layers: usize,
        diff_ids: usize,
    },
}

/// What [`OciError::LayerChanged`] found: the layer, the snapshot it was to be made from,
/// and what that snapshot tars to now.
#[derive(Debug)]
pub struct ChangedLayer {
    pub digest: Digest,
    pub snapshot: Digest,
    pub actual: Digest,
}

impl OciError {
    /// An I/O error on `path` while doing `op`.
    pub fn io(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| OciError::Io { op, path, source }
    }

    /// An error of the store while doing `op`.
    pub fn store<E>(op: impl Into<String>) -> impl FnOnce(E) -> Self
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        let op = op.into();
        move |source| OciError::Store {
            op,
            source: Box::new(source),
        }
    }
}

impl From<rbuild_archive::WriteError> for OciError {
    /// A tar being written: a host file that could not be read, the output stream (a layer
    /// tar's, or an archive's named in its `Io` error), a file no tar can hold.
    fn from(e: rbuild_archive::WriteError) -> Self {
        match e {
            rbuild_archive::WriteError::Io(rbuild_archive::PathError { op, path, source }) => {
                OciError::Io { op, path, source }
            }
            rbuild_archive::WriteError::Stream { source } => OciError::Stream {
                what: "layer tar",
                source,
            },
            rbuild_archive::WriteError::UnsupportedFile { path } => {
                OciError::UnsupportedFile { path }
            }
        }
    }
}
