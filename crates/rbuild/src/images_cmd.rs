//! `rbuild images [-q] [--no-trunc] [--format TEMPLATE|json]`: the tagged images of the store,
//! one row per name, as `docker images` lists them.

use std::path::Path;

use clap::Args;
use rbuild_oci::images::ImageSummary;
use rbuild_oci::time::{parse_rfc3339, rfc3339};
use rbuild_types::ImageRef;
use serde_json::{json, Value};

use crate::format::Template;
use crate::image_cmds::created_ago;
use crate::report::CliError;
use crate::store_cmds::{human_size, open};
use crate::usage::UsageError;

/// Flags of `rbuild images`.
#[derive(Args, Debug, Default)]
pub struct ImagesArgs {
    /// Only show image ids, one per name
    #[arg(short = 'q', long, conflicts_with = "format")]
    pub quiet: bool,
    /// Show full image ids (`sha256:…`)
    #[arg(long)]
    pub no_trunc: bool,
    /// Format the rows with a Go template (`{{.Repository}}:{{.Tag}}`; a leading `table` adds a
    /// header row and aligns `\t`-separated columns), or `json` for one JSON object per line.
    /// Fields: .ID, .Repository, .Tag, .Digest, .CreatedSince, .CreatedAt, .Size
    #[arg(long)]
    pub format: Option<String>,
}

/// The fields of a row, as `docker images --format` names them.
const FIELDS: &[&str] = &[
    "ID",
    "Repository",
    "Tag",
    "Digest",
    "CreatedSince",
    "CreatedAt",
    "Size",
];

/// The header of a `table` template: each field's column name.
fn headers() -> Value {
    json!({
        "ID": "IMAGE ID", "Repository": "REPOSITORY", "Tag": "TAG", "Digest": "DIGEST",
        "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "Size": "SIZE",
    })
}

/// Go's `time.Time` text, which Docker's `.CreatedAt` shows: `2024-01-02 03:04:05 +0000 UTC`.
fn go_time(created: Option<&str>) -> String {
    match created.and_then(parse_rfc3339) {
        Some(t) => rfc3339(t.max(0) as u64)
            .replace('T', " ")
            .replace('Z', " +0000 UTC"),
        None => String::new(),
    }
}

/// One row's fields.
fn row(store: &rbuild_cache::Store, img: &ImageSummary, no_trunc: bool) -> Result<Value, CliError> {
    let (repository, tag, digest) = match ImageRef::parse(&img.name) {
        Ok(r) => {
            let digest = store
                .repo_digests()
                .get(&img.manifest_digest)?
                .into_iter()
                .find(|d| d.registry == r.registry && d.repository == r.repository)
                .map_or("<none>".to_string(), |d| d.digest.to_string());
            let repository = ImageRef {
                tag: None,
                digest: None,
                ..r.clone()
            }
            .familiar();
            (repository, r.tag.unwrap_or("<none>".into()), digest)
        }
        Err(_) => (img.name.clone(), "<none>".into(), "<none>".into()),
    };
    let id = if no_trunc {
        img.id.to_string()
    } else {
        img.id.short()
    };
    Ok(json!({
        "ID": id,
        "Repository": repository,
        "Tag": tag,
        "Digest": digest,
        "CreatedSince": created_ago(img.created.as_deref()),
        "CreatedAt": go_time(img.created.as_deref()),
        "Size": human_size(img.size),
    }))
}

pub fn images(root: &Path, args: &ImagesArgs) -> Result<(), CliError> {
    // As docker: an empty format, or `table` alone, is the default listing.
    let format = args
        .format
        .as_deref()
        .filter(|f| !matches!(f.trim(), "" | "table"));
    let template = match format {
        None | Some("json") => None,
        Some(text) => Some(Template::parse(text, FIELDS).map_err(UsageError::from)?),
    };
    let store = open(root)?;
    let list = rbuild_oci::images::list_images(&store)?;
    if args.quiet {
        for img in &list {
            let id = if args.no_trunc {
                img.id.to_string()
            } else {
                img.id.short()
            };
            println!("{id}");
        }
        return Ok(());
    }
    if format.is_none() {
        println!("{:<40} {:<14} {:<22} SIZE", "NAME", "IMAGE ID", "CREATED");
        for img in list {
            println!(
                "{:<40} {:<14} {:<22} {}",
                img.name,
                img.id.short(),
                created_ago(img.created.as_deref()),
                human_size(img.size)
            );
        }
        return Ok(());
    }
    let rows = list
        .iter()
        .map(|img| row(&store, img, args.no_trunc))
        .collect::<Result<Vec<_>, _>>()?;
    match template {
        Some(t) => print!("{}", t.render_rows(&rows, &headers())?),
        None => {
            for r in rows {
                println!("{r}");
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_at_reads_like_go() {
        assert_eq!(
            go_time(Some("2024-01-02T03:04:05Z")),
            "2024-01-02 03:04:05 +0000 UTC"
        );
        assert_eq!(go_time(None), "");
    }

    #[test]
    fn every_field_has_a_header() {
        let h = headers();
        for f in FIELDS {
            assert!(h[f].is_string(), "{f}");
        }
    }
}
