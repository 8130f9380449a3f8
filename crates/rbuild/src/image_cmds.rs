//! Image commands on the local store, as Docker has them: `inspect`, `history`, `save`,
//! `load`, `pull`, `push`, and the "N minutes ago" times of `images`.

use std::path::Path;

use rbuild_builder::push::push_stored;
use rbuild_builder::Settings;
use rbuild_cache::{SnapshotId, Store};
use rbuild_oci::compress::{CompressSettings, Compression};
use rbuild_oci::images::{self, DistOptions, LoadedImage};
use rbuild_oci::manifest::layer_compression;
use rbuild_oci::registry::{RetryNotice, RetryObserver, TransferEvent, TransferObserver};

use crate::cli::ProgressMode;
use crate::format::Template;
use crate::progress::Progress;
use rbuild_oci::source::RegistrySource;
use rbuild_oci::time::{now_unix, parse_rfc3339};
use rbuild_solver::ports::{ImageSource, SourceError};
use rbuild_types::{ImageRef, Platform, Privileges};
use serde_json::{json, Value};

use crate::report::{ArchiveStep, CliError, PullError};
use crate::stdio::{self, TerminalRefusal};
use crate::store_cmds::{open, parse_ref};
use crate::usage::UsageError;

fn load(store: &Store, reference: &str) -> Result<LoadedImage, CliError> {
    Ok(images::load_image(store, reference)?)
}

/// Docker's `units.HumanDuration` of `secs`, plus " ago" (`About a minute ago`, `3 days ago`).
pub fn ago(secs: u64) -> String {
    let (s, m, h) = (secs, secs / 60, (secs + 1800) / 3600);
    let text = if s < 1 {
        "Less than a second".to_string()
    } else if s == 1 {
        "1 second".to_string()
    } else if s < 60 {
        format!("{s} seconds")
    } else if m == 1 {
        "About a minute".to_string()
    } else if m < 60 {
        format!("{m} minutes")
    } else if h == 1 {
        "About an hour".to_string()
    } else if h < 48 {
        format!("{h} hours")
    } else if h < 24 * 7 * 2 {
        format!("{} days", h / 24)
    } else if h < 24 * 30 * 2 {
        format!("{} weeks", h / 24 / 7)
    } else if h < 24 * 365 * 2 {
        format!("{} months", h / 24 / 30)
    } else {
        format!("{} years", secs / 3600 / 24 / 365)
    };
    format!("{text} ago")
}

/// "N minutes ago" for an RFC 3339 time, `N/A` when missing or malformed.
pub fn created_ago(created: Option<&str>) -> String {
    match created.and_then(parse_rfc3339) {
        Some(t) => ago(now_unix().saturating_sub(t.max(0) as u64)),
        None => "N/A".to_string(),
    }
}

/// Uncompressed size of each layer: the blob size of uncompressed layers, else the tar size
/// recorded when the layer was unpacked, else (unknown) the blob size.
fn layer_sizes(store: &Store, image: &LoadedImage) -> Vec<u64> {
    image
        .manifest
        .layers
        .iter()
        .zip(&image.config.diff_ids)
        .map(|(layer, diff_id)| {
            if layer_compression(&layer.media_type) == Some(Compression::None) {
                return layer.size;
            }
            store
                .layer_info()
                .get(&SnapshotId(*diff_id))
                .ok()
                .flatten()
                .map_or(layer.size, |i| i.size)
        })
        .collect()
}

/// Tags (familiar form) pointing at `image`'s manifest.
fn repo_tags(store: &Store, image: &LoadedImage) -> Result<Vec<String>, CliError> {
    let tags = store.tags().list()?;
    Ok(tags
        .into_iter()
        .filter(|(_, d)| *d == image.manifest_digest)
        .map(|(t, _)| ImageRef::parse(&t).map(|r| r.familiar()).unwrap_or(t))
        .collect())
}

/// The `docker image inspect` object of one image.
fn inspect_json(store: &Store, image: &LoadedImage) -> Result<Value, CliError> {
    let raw: Value =
        serde_json::from_slice(&image.config_bytes).map_err(|source| CliError::ConfigJson {
            id: image.id(),
            source,
        })?;
    let field = |k: &str| raw.get(k).cloned().unwrap_or(Value::Null);
    let text = |k: &str| raw.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let mut out = json!({
        "Id": image.id().to_string(),
        "RepoTags": repo_tags(store, image)?,
        "RepoDigests": images::repo_digests(store, image)?,
        "Parent": "",
        "Comment": text("comment"),
        "Created": text("created"),
        "DockerVersion": "",
        "Author": text("author"),
        "Config": field("config"),
        "Architecture": text("architecture"),
        "Os": text("os"),
        "Size": layer_sizes(store, image).iter().sum::<u64>(),
        "GraphDriver": {"Name": "overlay2", "Data": null},
        "RootFS": {
            "Type": "layers",
            "Layers": image.config.diff_ids.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
        },
        "Metadata": {"LastTagTime": "0001-01-01T00:00:00Z"},
        "ManifestDigest": image.manifest_digest.to_string(),
    });
    if let Some(index) = &image.index {
        // A multi-platform image: shown by its host (else first) platform's image, with the
        // index and every platform it holds.
        out["Index"] = json!(index.digest.to_string());
        out["Platforms"] = json!(index
            .platforms
            .iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>());
    }
    if let Some(variant) = raw.get("variant") {
        out["Variant"] = variant.clone();
    }
    Ok(out)
}

/// The top-level fields of an `inspect` object (`Index`, `Platforms`: multi-platform images;
/// `Variant`: when the config has one).
const INSPECT_FIELDS: &[&str] = &[
    "Id",
    "RepoTags",
    "RepoDigests",
    "Parent",
    "Comment",
    "Created",
    "DockerVersion",
    "Author",
    "Config",
    "Architecture",
    "Variant",
    "Os",
    "Size",
    "GraphDriver",
    "RootFS",
    "Metadata",
    "ManifestDigest",
    "Index",
    "Platforms",
];

/// `rbuild inspect REF... [--format TEMPLATE]`: a JSON array, one object per image, like
/// `docker image inspect`; with a template (not `json`), one line per image.
pub fn inspect(root: &Path, refs: &[String], format: Option<&str>) -> Result<(), CliError> {
    let template = match format.filter(|f| !f.trim().is_empty()) {
        None | Some("json") => None,
        Some(text) => Some(Template::parse(text, INSPECT_FIELDS).map_err(UsageError::from)?),
    };
    let store = open(root)?;
    let mut all = Vec::new();
    for r in refs {
        let image = load(&store, r)?;
        all.push(inspect_json(&store, &image)?);
    }
    match template {
        Some(t) => {
            for image in &all {
                println!("{}", t.render(image)?);
            }
        }
        None => {
            let text = serde_json::to_string_pretty(&Value::Array(all)).map_err(CliError::Json)?;
            println!("{text}");
        }
    }
    Ok(())
}

/// One row of `history`, newest first.
#[derive(Debug, PartialEq, Eq)]
struct HistoryRow {
    image: String,
    created: String,
    created_by: String,
    size: u64,
    comment: String,
}

fn history_rows(store: &Store, image: &LoadedImage, no_trunc: bool) -> Vec<HistoryRow> {
    let sizes = layer_sizes(store, image);
    let mut next_layer = 0;
    let mut rows = Vec::new();
    for h in &image.config.image.history {
        let size = if h.empty_layer {
            0
        } else {
            next_layer += 1;
            sizes.get(next_layer - 1).copied().unwrap_or(0)
        };
        let mut created_by = h.created_by.replace('\t', " ");
        if !no_trunc && created_by.chars().count() > 45 {
            created_by = created_by.chars().take(44).collect::<String>() + "…";
        }
        rows.push(HistoryRow {
            image: "<missing>".into(),
            created: created_ago(h.created.as_deref()),
            created_by,
            size,
            comment: h.comment.clone().unwrap_or_default(),
        });
    }
    rows.reverse();
    if let Some(top) = rows.first_mut() {
        top.image = if no_trunc {
            image.id().to_string()
        } else {
            image.id().short().to_string()
        };
    }
    rows
}

/// `rbuild history REF`: one line per history entry, newest first, like `docker history`.
pub fn history(root: &Path, reference: &str, no_trunc: bool) -> Result<(), CliError> {
    let store = open(root)?;
    let image = load(&store, reference)?;
    let rows = history_rows(&store, &image, no_trunc);
    let id_width = if no_trunc { 72 } else { 13 };
    println!(
        "{:<id_width$} {:<18} {:<46} {:<10} COMMENT",
        "IMAGE", "CREATED", "CREATED BY", "SIZE"
    );
    for r in rows {
        println!(
            "{:<id_width$} {:<18} {:<46} {:<10} {}",
            r.image,
            r.created,
            r.created_by,
            crate::store_cmds::human_size(r.size),
            r.comment
        );
    }
    Ok(())
}

/// Archive format of `save`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SaveFormat {
    /// docker-archive (`docker save`), for `docker load` / `podman load`
    Docker,
    /// OCI image layout in a tar
    Oci,
}

/// `rbuild save REF... [-o FILE] [--format docker|oci]`: to standard output without `-o`
/// (or with `-o -`), refused on a terminal as `docker save` does.
pub fn save(
    root: &Path,
    refs: &[String],
    output: Option<&Path>,
    format: SaveFormat,
) -> Result<(), CliError> {
    let output = output.filter(|o| *o != Path::new("-"));
    if output.is_none() {
        stdio::refuse_terminal_stdout(TerminalRefusal::Save).map_err(UsageError::from)?;
    }
    let store = open(root)?;
    let mut list = Vec::new();
    for r in refs {
        let image = load(&store, r)?;
        // A name keeps its tag in the archive; an id or digest saves the image unnamed.
        let names = match ImageRef::parse(r) {
            Ok(name) if store.tags().get(&name.to_string()).ok().flatten().is_some() => {
                vec![name.to_string()]
            }
            _ => Vec::new(),
        };
        // An archive of Docker's format holds one platform's image; an OCI layout the index.
        let digest = match format {
            SaveFormat::Docker => image.manifest_digest,
            SaveFormat::Oci => image.top_digest(),
        };
        list.push((digest, names));
    }
    fetch_lazy_blobs(&store, &list, refs)?;
    let name = output.unwrap_or(stdio::stdout_name());
    let failed = |source| CliError::Archive {
        step: ArchiveStep::Writing(name.to_path_buf()),
        source,
    };
    let options = DistOptions::default();
    match (format, output) {
        (SaveFormat::Docker, Some(path)) => {
            rbuild_oci::export::export_docker_many(&store, &list, path, None)
        }
        (SaveFormat::Docker, None) => rbuild_oci::export::export_docker_to(
            &store,
            &list,
            std::io::stdout().lock(),
            name,
            None,
        ),
        (SaveFormat::Oci, Some(path)) => {
            rbuild_oci::export::export_oci_with(&store, &list, path, true, &options).map(|_| ())
        }
        (SaveFormat::Oci, None) => rbuild_oci::export::export_oci_tar_to(
            &store,
            &list,
            std::io::stdout().lock(),
            name,
            &options,
        )
        .map(|_| ()),
    }
    .map_err(failed)
}

/// Downloads the blobs of lazy layers (built on an imported cache or a base image that was
/// never unpacked) that the images of `list` (named by `refs`) name, before an archive copies
/// them.
fn fetch_lazy_blobs(
    store: &Store,
    list: &[(rbuild_types::Digest, Vec<String>)],
    refs: &[String],
) -> Result<(), CliError> {
    let client = rbuild_oci::registry::Client::new(Settings::load()?.registries);
    for ((manifest, _), reference) in list.iter().zip(refs) {
        rbuild_oci::lazy::fetch_image_blobs(store, &client, manifest).map_err(|e| {
            CliError::Pull {
                reference: reference.clone(),
                source: SourceError {
                    reference: reference.clone(),
                    source: Box::new(e),
                }
                .into(),
            }
        })?;
    }
    Ok(())
}

/// `rbuild load [-i FILE]`: imports a docker-archive or OCI layout (tar or directory), from
/// standard input without `-i` (or with `-i -`), as `docker load` does.
pub fn load_archive(root: &Path, input: Option<&Path>, quiet: bool) -> Result<(), CliError> {
    let input = input.filter(|i| *i != Path::new("-"));
    if input.is_none() {
        stdio::refuse_terminal_stdin(TerminalRefusal::Load).map_err(UsageError::from)?;
    }
    let store = open(root)?;
    let name = input.unwrap_or(stdio::stdin_name());
    let loaded = match input {
        Some(path) => images::import_archive(&store, path),
        None => images::import_archive_from(&store, std::io::stdin().lock(), name),
    }
    .map_err(|source| CliError::Archive {
        step: ArchiveStep::Loading(name.to_path_buf()),
        source,
    })?;
    if quiet {
        return Ok(());
    }
    for image in loaded {
        if image.names.is_empty() {
            let id = images::load_manifest(&store, &image.manifest_digest)
                .map(|i| i.id().to_string())
                .unwrap_or_else(|_| image.manifest_digest.to_string());
            println!("Loaded image ID: {id}");
        }
        for name in &image.names {
            let short = ImageRef::parse(name)
                .map(|r| r.familiar())
                .unwrap_or_else(|_| name.clone());
            println!("Loaded image: {short}");
        }
    }
    Ok(())
}

/// `rbuild pull REF`: resolves the reference (for the host platform) in its registry, stores
/// the manifest, config and layer blobs (unpacked by the first build step that reads them), and
/// tags it, showing each
/// layer's byte progress in `progress` mode (nothing with `-q`).
pub fn pull(
    root: &Path,
    reference: &str,
    quiet: bool,
    progress: ProgressMode,
    privileges: Privileges,
) -> Result<(), CliError> {
    let name = parse_ref(reference)?;
    let store = std::sync::Arc::new(open(root)?);
    let settings = Settings::load()?;
    let source = RegistrySource::new(
        std::sync::Arc::clone(&store),
        settings.registries,
        privileges,
    )
    .with_pull(true)
    .with_retry_observer(retry_notices())
    .with_transfer_observer(transfer_progress(if quiet {
        ProgressMode::Quiet
    } else {
        progress
    }));
    let failed = |e: PullError| CliError::Pull {
        reference: reference.to_string(),
        source: e,
    };
    let resolved = source
        .resolve(&name, &Platform::host())
        .map_err(|e| failed(e.into()))?;
    ImageSource::pull(&source, &resolved).map_err(|e| failed(e.into()))?;
    // The layers are downloaded now (a build unpacks them when a step first reads them).
    source
        .fetch_image_blobs(&resolved.manifest_digest)
        .map_err(|e| {
            failed(
                SourceError {
                    reference: reference.to_string(),
                    source: Box::new(e),
                }
                .into(),
            )
        })?;
    if name.tag.is_some() || name.digest.is_none() {
        images::tag_image(&store, &name.to_string(), &resolved.manifest_digest)
            .map_err(|e| failed(e.into()))?;
    }
    if quiet {
        println!("{}", name.familiar());
    } else {
        println!("Digest: {}", resolved.manifest_digest);
        println!("Status: Downloaded image for {}", name.familiar());
    }
    Ok(())
}

/// `rbuild push REF`: uploads a stored image (layers gzip-compressed) to its registry,
/// showing each blob's byte progress in `progress` mode.
pub fn push(root: &Path, reference: &str, progress: ProgressMode) -> Result<(), CliError> {
    let name = parse_ref(reference)?;
    let store = open(root)?;
    let image = load(&store, reference)?;
    let options = DistOptions {
        compress: CompressSettings::new(Compression::Gzip),
        oci_media_types: true,
    };
    let settings = Settings::load()?;
    let dist = push_stored(
        &store,
        &image.top_digest(),
        &name,
        &options,
        &settings.registries,
        retry_notices(),
        Some(transfer_progress(progress)),
    )?;
    // `inspect` shows where it went (Docker's RepoDigests), by the digest as pushed.
    images::record_repo_digest(&store, &image.top_digest(), &name, &dist.manifest_digest)?;
    println!(
        "{}: digest: {} size: {}",
        name.tag.as_deref().unwrap_or("latest"),
        dist.manifest_digest,
        dist.manifest_size
    );
    Ok(())
}

/// Shows each blob transfer's byte progress on stderr in `mode`.
fn transfer_progress(mode: ProgressMode) -> TransferObserver {
    let progress = Progress::new(mode);
    std::sync::Arc::new(move |e: &TransferEvent| progress.transfer(e))
}

/// Shows each retried registry request on stderr (stdout carries only data).
fn retry_notices() -> RetryObserver {
    std::sync::Arc::new(|notice: &RetryNotice| eprintln!("{notice}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_docker() {
        assert_eq!(ago(0), "Less than a second ago");
        assert_eq!(ago(1), "1 second ago");
        assert_eq!(ago(59), "59 seconds ago");
        assert_eq!(ago(60), "About a minute ago");
        assert_eq!(ago(150), "2 minutes ago");
        assert_eq!(ago(3600), "About an hour ago");
        assert_eq!(ago(5 * 3600), "5 hours ago");
        assert_eq!(ago(3 * 86400), "3 days ago");
        assert_eq!(ago(20 * 86400), "2 weeks ago");
        assert_eq!(ago(90 * 86400), "3 months ago");
        assert_eq!(ago(800 * 86400), "2 years ago");
        assert_eq!(created_ago(None), "N/A");
        assert_eq!(created_ago(Some("garbage")), "N/A");
    }
}
