//! The end of a build: commit the image to the store (with SOURCE_DATE_EPOCH when set), name
//! it, write each output, push, and write `--iidfile` / `--metadata-file`.
//!
//! Policy, as in BuildKit: the store names the image when there are no outputs, an image
//! output, or a push; the metadata file reports the manifest last written (pushed, or in an
//! OCI output), else the stored one.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rbuild_cache::{SnapshotId, Store};
use rbuild_graph::ImageConfig;
use rbuild_oci::export::{ExtraFile, OutputFile};
use rbuild_oci::images::{commit_image_with, commit_index, tag_image, CommitOptions, StoredImage};
use rbuild_oci::manifest::{OCI_INDEX, OCI_MANIFEST};
use rbuild_oci::registry::{RetryObserver, TransferObserver};
use rbuild_oci::source::{PullError, RegistrySource};
use rbuild_oci::OciError;
use rbuild_solver::ports::{CacheImage, SolvedStep};
use rbuild_types::{Digest, ImageRef, Platform};
use serde_json::json;

use crate::config::{BuildConfig, ConfigError};
use crate::output::{Dest, LayerOptions, Output};
use crate::push::{push_stored, PushFailure};

/// How standard output is named in errors of writers given it.
pub const STDOUT_NAME: &str = "standard output";

/// What was being written when an image-format operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExportStep {
    Commit,
    Name,
    Oci(Dest),
    Docker(Dest),
    Local(PathBuf),
    Tar(Dest),
    Iidfile(PathBuf),
    MetadataFile(PathBuf),
}

impl std::fmt::Display for ExportStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExportStep::Commit => f.write_str("exporting the image"),
            ExportStep::Name => f.write_str("naming the image"),
            ExportStep::Oci(dest) => write!(f, "writing OCI output {dest}"),
            ExportStep::Docker(dest) => write!(f, "writing docker output {dest}"),
            ExportStep::Local(dest) => write!(f, "writing local output {}", dest.display()),
            ExportStep::Tar(dest) => write!(f, "writing tar output {dest}"),
            ExportStep::Iidfile(path) => write!(f, "writing --iidfile {}", path.display()),
            ExportStep::MetadataFile(path) => {
                write!(f, "writing --metadata-file {}", path.display())
            }
        }
    }
}

/// Why the result could not be exported.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// An image-format operation failed (its cause tells a full disk from the rest).
    #[error("{step}: {source}")]
    Oci {
        step: ExportStep,
        #[source]
        source: OciError,
    },
    #[error(transparent)]
    Push(#[from] PushFailure),
    #[error("formatting build metadata: {0}")]
    Metadata(#[source] serde_json::Error),
    #[error("an output writes to standard output, but none was given")]
    NoStdout,
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("the docker exporter cannot write a multi-platform image (an index): use -o type=oci, or one --platform")]
    DockerMultiPlatform,
    #[error("the tar exporter writes one root filesystem: use -o type=local (one directory per platform), or one --platform")]
    TarMultiPlatform,
    #[error(transparent)]
    Attest(Box<crate::attest::AttestFailure>),
    #[error("writing the attestations into tar output {dest}: {source}")]
    TarStatements {
        dest: Dest,
        #[source]
        source: Box<crate::attest::LocalStatementsError>,
    },
    #[error("writing the attestations into local output {}: {source}", dir.display())]
    LocalStatements {
        dir: PathBuf,
        #[source]
        source: Box<crate::attest::LocalStatementsError>,
    },
    #[error("writing the inline cache into the image: {0}")]
    InlineCache(#[source] Box<rbuild_oci::cache::LocalCacheError>),
    /// Downloading lazy layers (an imported cache's, a base image's) an output reads.
    #[error("{step}: downloading the image's layers: {source}")]
    Lazy {
        step: ExportStep,
        #[source]
        source: Box<PullError>,
    },
}

impl From<crate::attest::AttestFailure> for ExportError {
    fn from(e: crate::attest::AttestFailure) -> Self {
        ExportError::Attest(Box::new(e))
    }
}

fn lazy(step: ExportStep) -> impl FnOnce(PullError) -> ExportError {
    move |source| ExportError::Lazy {
        step,
        source: Box::new(source),
    }
}

/// What a build produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exported {
    /// The image id (its config's digest; a multi-platform image's index digest).
    pub image_id: Digest,
    /// The manifest in the store (a multi-platform image's index).
    pub manifest_digest: Digest,
    /// Every name the image was given (full form).
    pub names: Vec<String>,
    /// Each platform's image: its layers and stored manifest (for the cache export).
    pub images: Vec<CacheImage>,
}

/// The manifest a build reports in `--metadata-file` (BuildKit's `containerimage.descriptor`).
struct Reported {
    digest: Digest,
    media_type: String,
    size: u64,
}

fn oci(step: ExportStep) -> impl FnOnce(OciError) -> ExportError {
    move |source| ExportError::Oci { step, source }
}

/// How the export reaches registries: who hears of a push's retries and byte progress, and
/// the image source that downloads and unpacks the lazy layers an output reads (see
/// `rbuild_oci::lazy`).
pub(crate) struct Network<'a> {
    pub retries: RetryObserver,
    pub transfers: TransferObserver,
    pub images: &'a RegistrySource,
}

/// What the build made for one target platform.
pub(crate) struct Built {
    pub platform: Platform,
    /// The target's layers, bottom first.
    pub layers: Vec<SnapshotId>,
    /// The image config (base config merged in).
    pub image: ImageConfig,
}

/// Commits, names, exports, pushes and reports the built image: one per platform in
/// `built`, joined in an OCI index when there are several. `stdout` is taken by the output
/// that writes to standard output, if any.
pub(crate) fn export(
    store: &Arc<Store>,
    built: &[Built],
    steps: &[SolvedStep],
    config: &BuildConfig,
    record: &crate::attest::BuildRecord<'_>,
    stdout: &mut Option<Box<dyn Write>>,
    network: &Network<'_>,
) -> Result<Exported, ExportError> {
    let images = network.images;
    let epoch = config.source_date_epoch;
    let options = CommitOptions {
        created: epoch,
        mtime_clamp: epoch,
        annotations: config.annotations.manifest.clone(),
    };
    let mut committed: Vec<(Platform, StoredImage)> = Vec::with_capacity(built.len());
    for b in built {
        if epoch.is_some() {
            // Layers built here are tarred again with their mtimes clamped: lazy ones are
            // unpacked for that (base layers are never rewritten, and stay lazy).
            let lazy_built = rbuild_oci::lazy::lazy_built_layers(store, &b.layers)
                .map_err(lazy(ExportStep::Commit))?;
            images
                .unpack_layers(&lazy_built)
                .map_err(lazy(ExportStep::Commit))?;
        }
        let image = commit_image_with(store, &b.layers, &b.image, &options)
            .map_err(oci(ExportStep::Commit))?;
        let image = crate::cache::with_inline_record(
            store,
            config.privileges,
            &config.cache_to,
            steps,
            image,
            &b.layers,
        )
        .map_err(|e| ExportError::InlineCache(Box::new(e)))?;
        committed.push((b.platform.clone(), image));
    }
    let blob_size = |d: &Digest| {
        std::fs::metadata(store.blobs().path(d))
            .map(|m| m.len())
            .unwrap_or(0)
    };
    let names = config.image_names()?;
    // Attestations (none unless asked), one manifest per platform's image.
    let subjects: Vec<crate::attest::Subjected<'_>> = built
        .iter()
        .zip(&committed)
        .map(|(b, (_, image))| crate::attest::Subjected {
            platform: &b.platform,
            layers: &b.layers,
            image: *image,
        })
        .collect();
    let attestations = crate::attest::attest(store, images, config, record, &subjects, &names)?;
    // One platform's image, if that is what was built.
    let single = match committed.as_slice() {
        [(_, image)] => Some(*image),
        _ => None,
    };
    // What the names point at: the image, or the index of the platforms' images (and of
    // their attestations: with attestations, one platform's image is in an index too).
    let (top, top_type) = match single {
        Some(image) if attestations.is_empty() => (image.manifest_digest, OCI_MANIFEST),
        _ => {
            let children: Vec<(Platform, Digest, u64)> = committed
                .iter()
                .map(|(p, i)| (p.clone(), i.manifest_digest, blob_size(&i.manifest_digest)))
                .collect();
            let index = commit_index(
                store,
                &children,
                &attestations.entries,
                &config.annotations.index,
            )
            .map_err(oci(ExportStep::Commit))?;
            (index.digest, OCI_INDEX)
        }
    };

    let outputs = &config.outputs;
    let image_output = outputs.iter().any(|o| matches!(o, Output::Image { .. }));
    if outputs.is_empty() || image_output || config.push {
        for name in &names {
            tag_image(store, name, &top).map_err(oci(ExportStep::Name))?;
        }
    }
    let mut reported = Reported {
        digest: top,
        media_type: top_type.to_string(),
        size: blob_size(&top),
    };

    let mut pushes: Vec<LayerOptions> = outputs
        .iter()
        .filter_map(|o| match o {
            Output::Image {
                push: true, layers, ..
            } => Some(*layers),
            _ => None,
        })
        .collect();
    if config.push && pushes.is_empty() {
        pushes.push(LayerOptions::default());
    }
    for layer_options in pushes {
        if names.is_empty() {
            return Err(ConfigError::PushWithoutName.into());
        }
        for name in &names {
            let target = ImageRef::parse(name).map_err(|source| ConfigError::ImageName {
                name: name.clone(),
                source,
            })?;
            let dist = push_stored(
                store,
                &top,
                &target,
                &layer_options.dist(),
                &config.settings.registries,
                network.retries.clone(),
                Some(network.transfers.clone()),
            )?;
            // `inspect` shows it in RepoDigests, as after `rbuild push`.
            rbuild_oci::images::record_repo_digest(store, &top, &target, &dist.manifest_digest)
                .map_err(oci(ExportStep::Name))?;
            reported = Reported {
                digest: dist.manifest_digest,
                media_type: dist.media_type.to_string(),
                size: dist.manifest_size,
            };
        }
    }

    let list = [(top, names.clone())];
    for output in outputs {
        match output {
            Output::Image { .. } => {}
            Output::Oci {
                dest, tar, layers, ..
            } => {
                images
                    .fetch_image_blobs(&top)
                    .map_err(lazy(ExportStep::Oci(dest.clone())))?;
                let dist = layers.dist();
                let written = match dest {
                    Dest::Path(p) => {
                        rbuild_oci::export::export_oci_with(store, &list, p, *tar, &dist)
                    }
                    Dest::Stdout => rbuild_oci::export::export_oci_tar_to(
                        store,
                        &list,
                        take(stdout)?,
                        Path::new(STDOUT_NAME),
                        &dist,
                    ),
                }
                .map_err(oci(ExportStep::Oci(dest.clone())))?;
                if let Some(w) = written.first() {
                    reported = Reported {
                        digest: w.manifest_digest,
                        media_type: w.media_type.to_string(),
                        size: w.manifest_size,
                    };
                }
            }
            Output::Docker { dest, layers, .. } => {
                if single.is_none() {
                    return Err(ExportError::DockerMultiPlatform);
                }

                images
                    .fetch_image_blobs(&top)
                    .map_err(lazy(ExportStep::Docker(dest.clone())))?;
                // Layers as stored unless an option asks for a form.
                let dist = (*layers != LayerOptions::default()).then(|| layers.dist());
                match dest {
                    Dest::Path(p) => {
                        rbuild_oci::export::export_docker_many(store, &list, p, dist.as_ref())
                    }
                    Dest::Stdout => rbuild_oci::export::export_docker_to(
                        store,
                        &list,
                        take(stdout)?,
                        Path::new(STDOUT_NAME),
                        dist.as_ref(),
                    ),
                }
                .map_err(oci(ExportStep::Docker(dest.clone())))?;
            }
            Output::Local { dest } => {
                // Several platforms: one directory each (`linux_arm64/`), as BuildKit's.
                for (i, b) in built.iter().enumerate() {
                    let dir = match single {
                        Some(_) => dest.clone(),
                        None => dest.join(platform_dir(&b.platform)),
                    };
                    images
                        .unpack_layers(&b.layers)
                        .map_err(lazy(ExportStep::Local(dir.clone())))?;
                    rbuild_oci::export::export_local(store, &b.layers, &dir, &config.privileges)
                        .map_err(oci(ExportStep::Local(dir.clone())))?;
                    // The statements beside the files, as BuildKit's local exporter.
                    if let Some(predicates) = attestations.predicates.get(i) {
                        let mtime = epoch.unwrap_or_else(rbuild_oci::time::now_unix);
                        crate::attest::write_local(store, &dir, &b.layers, predicates, mtime)
                            .map_err(|source| ExportError::LocalStatements {
                                dir: dir.clone(),
                                source: Box::new(source),
                            })?;
                    }
                }
            }
            Output::Tar { dest } => {
                let [b] = built else {
                    return Err(ExportError::TarMultiPlatform);
                };
                images
                    .unpack_layers(&b.layers)
                    .map_err(lazy(ExportStep::Tar(dest.clone())))?;
                // The statements after the files, as BuildKit's tar exporter.
                let mut extra = Vec::new();
                if let Some(predicates) = attestations.predicates.first() {
                    let mtime = epoch.unwrap_or_else(rbuild_oci::time::now_unix);
                    let files = crate::attest::statement_files(store, &b.layers, predicates)
                        .map_err(|source| ExportError::TarStatements {
                            dest: dest.clone(),
                            source: Box::new(source),
                        })?;
                    extra = files
                        .into_iter()
                        .map(|(name, data)| ExtraFile {
                            name: name.to_string(),
                            data,
                            mode: 0o600,
                            mtime,
                        })
                        .collect();
                }
                match dest {
                    Dest::Path(path) => write_rootfs_tar_file(store, &b.layers, &extra, path),
                    Dest::Stdout => write_rootfs_tar_to(store, &b.layers, &extra, take(stdout)?),
                }
                .map_err(oci(ExportStep::Tar(dest.clone())))?
            }
        }
    }
    // A multi-platform image's id is its index's digest (buildx writes it to --iidfile).
    let id = single.map_or(top, |i| i.config_digest);
    if let Some(path) = &config.iidfile {
        write_file(path, id.to_string().as_bytes())
            .map_err(oci(ExportStep::Iidfile(path.clone())))?;
    }
    if let Some(path) = &config.metadata_file {
        let config_digest = single.map(|i| i.config_digest);
        write_metadata(path, config_digest.as_ref(), &reported, &names)?;
    }
    Ok(Exported {
        image_id: id,
        manifest_digest: top,
        names,
        images: built
            .iter()
            .zip(&committed)
            .map(|(b, (_, image))| CacheImage {
                layers: b.layers.clone(),
                manifest: image.manifest_digest,
            })
            .collect(),
    })
}

/// The directory of `platform`'s root filesystem in a multi-platform local output, as
/// BuildKit names it: `linux_arm64`, `linux_arm_v7`.
fn platform_dir(platform: &Platform) -> String {
    platform.to_string().replace('/', "_")
}

/// Standard output, for the one output that writes there.
fn take(stdout: &mut Option<Box<dyn Write>>) -> Result<Box<dyn Write>, ExportError> {
    stdout.take().ok_or(ExportError::NoStdout)
}

/// `-o type=tar,dest=PATH`: the root filesystem as one tar file.
fn write_rootfs_tar_file(
    store: &Store,
    layers: &[SnapshotId],
    extra: &[ExtraFile],
    path: &Path,
) -> Result<(), OciError> {
    let mut file = OutputFile::create(path)?;
    let mut out = std::io::BufWriter::new(&mut file);
    rbuild_oci::export::export_rootfs_tar_with(store, layers, &mut out, extra)?;
    out.flush().map_err(OciError::io("write", path))?;
    drop(out);
    file.commit()
}

/// `-o type=tar,dest=-`: the root filesystem as one tar, to standard output.
fn write_rootfs_tar_to(
    store: &Store,
    layers: &[SnapshotId],
    extra: &[ExtraFile],
    out: Box<dyn Write>,
) -> Result<(), OciError> {
    let mut out = std::io::BufWriter::new(out);
    rbuild_oci::export::export_rootfs_tar_with(store, layers, &mut out, extra)?;
    out.flush()
        .map_err(OciError::io("write", Path::new(STDOUT_NAME)))
}

/// A small output file (`--iidfile`, `--metadata-file`): replaced atomically when a regular
/// file, written through when a device, FIFO or symlink (`--iidfile /dev/stdout`).
fn write_file(path: &Path, bytes: &[u8]) -> Result<(), OciError> {
    let mut file = OutputFile::create(path)?;
    file.write_all(bytes).map_err(OciError::io("write", path))?;
    file.commit()
}

/// `--metadata-file`: the keys BuildKit writes for an image result.
fn write_metadata(
    path: &Path,
    config_digest: Option<&Digest>,
    reported: &Reported,
    names: &[String],
) -> Result<(), ExportError> {
    let mut meta = BTreeMap::new();
    // A multi-platform result has no one config (BuildKit leaves the key out too).
    if let Some(config_digest) = config_digest {
        meta.insert(
            "containerimage.config.digest",
            json!(config_digest.to_string()),
        );
    }
    meta.insert("containerimage.digest", json!(reported.digest.to_string()));
    meta.insert(
        "containerimage.descriptor",
        json!({
            "mediaType": reported.media_type,
            "digest": reported.digest.to_string(),
            "size": reported.size,
        }),
    );
    if !names.is_empty() {
        meta.insert("image.name", json!(names.join(",")));
    }
    let text = serde_json::to_string_pretty(&meta).map_err(ExportError::Metadata)?;
    write_file(path, (text + "\n").as_bytes())
        .map_err(oci(ExportStep::MetadataFile(path.to_path_buf())))
}
