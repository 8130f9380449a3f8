//! The end of a build: commit the image to the store (with SOURCE_DATE_EPOCH when set), tag
//! it, write each `-o` output, push, and write `--iidfile` / `--metadata-file`.

use std::collections::BTreeMap;
use std::path::Path;

use rbuild_cache::{SnapshotId, Store};
use rbuild_graph::ImageConfig;
use rbuild_oci::export::OutputFile;
use rbuild_oci::images::{commit_image_with, tag_image, CommitOptions};
use rbuild_oci::manifest::OCI_MANIFEST;
use rbuild_oci::OciError;
use rbuild_types::{Digest, ImageRef};
use serde_json::json;

use crate::cli::{BuildArgs, ProgressMode};
use crate::output::{Dest, LayerOptions, Output};
use crate::report::CliError;
use crate::stdio;

/// SOURCE_DATE_EPOCH from `--build-arg` (wins) or the environment; `None` when unset or empty.
pub fn source_date_epoch(build_args: &[String]) -> Result<Option<u64>, CliError> {
    let from_args = build_args
        .iter()
        .rev()
        .find_map(|a| match a.split_once('=') {
            Some(("SOURCE_DATE_EPOCH", v)) => Some(Some(v.to_string())),
            None if a == "SOURCE_DATE_EPOCH" => Some(std::env::var("SOURCE_DATE_EPOCH").ok()),
            _ => None,
        });
    let value = match from_args {
        Some(v) => v,
        None => std::env::var("SOURCE_DATE_EPOCH").ok(),
    };
    match value.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => v.parse().map(Some).map_err(|_| {
            CliError::Usage(format!(
                "invalid SOURCE_DATE_EPOCH {v:?}: expected seconds since the Unix epoch"
            ))
        }),
    }
}

/// The manifest a build reports in `--metadata-file` (BuildKit's `containerimage.descriptor`).
struct Reported {
    digest: Digest,
    media_type: String,
    size: u64,
}

fn full_name(name: &str) -> Result<String, CliError> {
    ImageRef::parse(name)
        .map(|r| r.to_string())
        .map_err(|e| CliError::Usage(format!("invalid image name {name:?}: {e}")))
}

/// Commits, tags, exports, pushes and reports the built image.
pub fn export(
    store: &Store,
    layers: &[SnapshotId],
    config: &ImageConfig,
    tags: &[ImageRef],
    outputs: &[Output],
    args: &BuildArgs,
) -> Result<(), CliError> {
    let failed = |what: &str| CliError::oci(what.to_string());
    let epoch = source_date_epoch(&args.build_args)?;
    let options = CommitOptions {
        created: epoch,
        mtime_clamp: epoch,
    };
    let image = commit_image_with(store, layers, config, &options)
        .map_err(failed("exporting the image"))?;

    // Every name: -t tags, then `name=` of image outputs, without repeats.
    let mut names: Vec<String> = Vec::new();
    let extra = outputs.iter().flat_map(|o| match o {
        Output::Image { names, .. } => names.as_slice(),
        _ => &[],
    });
    for n in tags.iter().map(|t| t.to_string()) {
        if !names.contains(&n) {
            names.push(n);
        }
    }
    for n in extra {
        let n = full_name(n)?;
        if !names.contains(&n) {
            names.push(n);
        }
    }
    let image_output = outputs.iter().any(|o| matches!(o, Output::Image { .. }));
    if outputs.is_empty() || image_output || args.push {
        for name in &names {
            tag_image(store, name, &image.manifest_digest).map_err(failed("naming the image"))?;
        }
    }
    let stored_size = std::fs::metadata(store.blob_path(&image.manifest_digest))
        .map(|m| m.len())
        .unwrap_or(0);
    let mut reported = Reported {
        digest: image.manifest_digest,
        media_type: OCI_MANIFEST.to_string(),
        size: stored_size,
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
    if args.push && pushes.is_empty() {
        pushes.push(LayerOptions::default());
    }
    for layer_options in pushes {
        if names.is_empty() {
            return Err(CliError::Usage(
                "pushing needs a name: give -t NAME or -o type=image,name=NAME,push=true".into(),
            ));
        }
        for name in &names {
            let target = ImageRef::parse(name)
                .map_err(|e| CliError::Usage(format!("invalid image name {name:?}: {e}")))?;
            let dist = crate::image_cmds::push_stored(
                store,
                &image.manifest_digest,
                &target,
                &layer_options.dist(),
            )?;
            reported = Reported {
                digest: dist.manifest_digest,
                media_type: dist.media_type.to_string(),
                size: dist.manifest_size,
            };
        }
    }

    for output in outputs {
        match output {
            Output::Image { .. } => {}
            Output::Oci { dest, tar, layers } => {
                let list = [(image.manifest_digest, names.clone())];
                let dist = layers.dist();
                let written = match dest {
                    Dest::Path(p) => {
                        rbuild_oci::export::export_oci_with(store, &list, p, *tar, &dist)
                    }
                    Dest::Stdout => rbuild_oci::export::export_oci_tar_to(
                        store,
                        &list,
                        std::io::stdout().lock(),
                        stdio::stdout_name(),
                        &dist,
                    ),
                }
                .map_err(failed(&format!("writing OCI output {dest}")))?;
                if let Some(w) = written.first() {
                    reported = Reported {
                        digest: w.manifest_digest,
                        media_type: w.media_type.to_string(),
                        size: w.manifest_size,
                    };
                }
            }
            Output::Docker { dest, layers } => {
                let list = [(image.manifest_digest, names.clone())];
                // Layers as stored unless an option asks for a form.
                let dist = (*layers != LayerOptions::default()).then(|| layers.dist());
                match dest {
                    Dest::Path(p) => {
                        rbuild_oci::export::export_docker_many(store, &list, p, dist.as_ref())
                    }
                    Dest::Stdout => rbuild_oci::export::export_docker_to(
                        store,
                        &list,
                        std::io::stdout().lock(),
                        stdio::stdout_name(),
                        dist.as_ref(),
                    ),
                }
                .map_err(failed(&format!("writing docker output {dest}")))?;
            }
            Output::Local { dest } => rbuild_oci::export::export_local(store, layers, dest)
                .map_err(failed(&format!("writing local output {}", dest.display())))?,
            Output::Tar { dest } => write_rootfs_tar(store, layers, dest)
                .map_err(failed(&format!("writing tar output {dest}")))?,
        }
    }
    let id = image.config_digest.to_string();
    if let Some(path) = &args.iidfile {
        write_file(path, id.as_bytes())
            .map_err(failed(&format!("writing --iidfile {}", path.display())))?;
    }
    if let Some(path) = &args.metadata_file {
        write_metadata(path, &image.config_digest, &reported, &names)?;
    }
    // With an archive on standard output, that is the data there: no id after it.
    let stdout_taken = outputs.iter().any(Output::to_stdout);
    if (args.quiet || args.progress == ProgressMode::Quiet) && !stdout_taken {
        println!("{id}");
    }
    Ok(())
}

/// `-o type=tar`: the root filesystem as one tar, to a file or standard output.
fn write_rootfs_tar(store: &Store, layers: &[SnapshotId], dest: &Dest) -> Result<(), OciError> {
    use std::io::Write;
    match dest {
        Dest::Stdout => {
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            rbuild_oci::export::export_rootfs_tar(store, layers, &mut out)?;
            out.flush()
                .map_err(OciError::io("write", stdio::stdout_name()))
        }
        Dest::Path(path) => {
            let mut file = OutputFile::create(path)?;
            let mut out = std::io::BufWriter::new(&mut file);
            rbuild_oci::export::export_rootfs_tar(store, layers, &mut out)?;
            out.flush().map_err(OciError::io("write", path))?;
            drop(out);
            file.commit()
        }
    }
}

/// A small output file (`--iidfile`, `--metadata-file`): replaced atomically when a regular
/// file, written through when a device, FIFO or symlink (`--iidfile /dev/stdout`).
fn write_file(path: &Path, bytes: &[u8]) -> Result<(), OciError> {
    use std::io::Write;
    let mut file = OutputFile::create(path)?;
    file.write_all(bytes).map_err(OciError::io("write", path))?;
    file.commit()
}

/// `--metadata-file`: the keys BuildKit writes for an image result.
fn write_metadata(
    path: &Path,
    config_digest: &Digest,
    reported: &Reported,
    names: &[String],
) -> Result<(), CliError> {
    let mut meta = BTreeMap::new();
    meta.insert(
        "containerimage.config.digest",
        json!(config_digest.to_string()),
    );
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
    let text = serde_json::to_string_pretty(&meta)
        .map_err(|e| CliError::Failed(format!("formatting build metadata: {e}")))?;
    write_file(path, (text + "\n").as_bytes()).map_err(CliError::oci(format!(
        "writing --metadata-file {}",
        path.display()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_date_epoch_from_build_args() {
        let args = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            source_date_epoch(&args(&["A=1", "SOURCE_DATE_EPOCH=1700000000"])).unwrap(),
            Some(1_700_000_000)
        );
        assert!(source_date_epoch(&args(&["SOURCE_DATE_EPOCH=yesterday"])).is_err());
        assert_eq!(
            source_date_epoch(&args(&["SOURCE_DATE_EPOCH="])).unwrap(),
            None
        );
    }
}
