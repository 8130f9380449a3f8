//! The packages of an image's root filesystem, for `--sbom`: rbuild has no scanner image
//! (BuildKit runs docker/buildkit-syft-scanner), so it reads the package databases itself,
//! through the store's merged view of the image's layers — every path resolves through the one
//! resolver of image paths (`rbuild_types::root_path`), so a symlink in the image never reaches
//! a host file. Read: dpkg ([`dpkg`]: `/var/lib/dpkg/status`, `status.d/`), apk ([`apk`]:
//! `/lib/apk/db/installed`) and Python distributions ([`python`]: `*.dist-info/METADATA`,
//! `*.egg-info/PKG-INFO` or an `*.egg-info` file in any `site-packages` or `dist-packages`);
//! the distribution (`/etc/os-release`) names the purls' namespace and `distro` qualifier.

pub mod apk;
pub mod dpkg;
pub mod python;

use std::path::Path;

use rbuild_cache::{CacheError, MergedView};
use rbuild_oci::attest::spdx::Package;

/// Why the image's packages could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SbomError {
    #[error("reading {path} in the image: {source}")]
    View {
        path: String,
        #[source]
        source: CacheError,
    },
    #[error("reading {path} in the image: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// The distribution an image says it is (`ID`, `VERSION_ID` of `os-release`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Distro {
    pub id: Option<String>,
    pub version_id: Option<String>,
}

impl Distro {
    /// `os-release` text's `ID` and `VERSION_ID` (quotes removed).
    pub fn parse(text: &str) -> Distro {
        let mut d = Distro::default();
        for line in text.lines() {
            let Some((k, v)) = line.split_once('=') else {
                continue;
            };
            let v = v.trim().trim_matches(|c| c == '"' || c == '\'').to_string();
            match k.trim() {
                "ID" if !v.is_empty() => d.id = Some(v),
                "VERSION_ID" if !v.is_empty() => d.version_id = Some(v),
                _ => {}
            }
        }
        d
    }

    /// The purl namespace: the distribution's id, else `default`.
    pub fn id_or<'a>(&'a self, default: &'a str) -> &'a str {
        self.id.as_deref().unwrap_or(default)
    }

    /// The purl `distro` qualifier (`debian-12`), when the image says.
    pub fn qualifier(&self) -> Option<String> {
        match (&self.id, &self.version_id) {
            (Some(id), Some(v)) => Some(format!("{id}-{v}")),
            _ => None,
        }
    }
}

/// The `Field<sep> value` paragraphs of `text` (separated by blank lines; a line starting
/// with a space or tab continues the previous field's value).
pub(crate) fn paragraphs(text: &str, sep: char) -> Vec<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut current: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            if !current.is_empty() {
                out.push(std::mem::take(&mut current));
            }
        } else if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = current.last_mut() {
                v.push('\n');
                v.push_str(line.trim());
            }
        } else if let Some((k, v)) = line.split_once(sep) {
            current.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// Every package the databases of the image `view` list: dpkg's, apk's, then Python's, each
/// sorted.
pub fn scan(view: &MergedView) -> Result<Vec<Package>, SbomError> {
    let distro = ["/etc/os-release", "/usr/lib/os-release"]
        .iter()
        .find_map(|p| read(view, p).transpose())
        .transpose()?
        .map(|t| Distro::parse(&t))
        .unwrap_or_default();
    let mut out = Vec::new();
    let status = "/var/lib/dpkg/status";
    if let Some(text) = read(view, status)? {
        out.extend(dpkg::parse(&text, status, &distro));
    }
    for entry in list(view, "/var/lib/dpkg/status.d")? {
        if entry.metadata.is_file() {
            let path = entry.path.to_string_lossy().into_owned();
            if let Some(text) = read(view, &path)? {
                out.extend(dpkg::parse(&text, &path, &distro));
            }
        }
    }
    let installed = "/lib/apk/db/installed";
    if let Some(text) = read(view, installed)? {
        out.extend(apk::parse(&text, installed, &distro));
    }
    for entry in walk(view)? {
        let in_packages = entry
            .path
            .parent()
            .and_then(Path::file_name)
            .is_some_and(|p| p == "site-packages" || p == "dist-packages");
        let Some(name) = entry.path.file_name().map(|n| n.to_string_lossy()) else {
            continue;
        };
        if !in_packages {
            continue;
        }
        // A wheel's `*.dist-info/METADATA`; an egg's `*.egg-info/PKG-INFO`, or an
        // `*.egg-info` file (distutils), of the same format.
        let metadata = if entry.metadata.is_dir() && name.ends_with(".dist-info") {
            entry.path.join("METADATA")
        } else if entry.metadata.is_dir() && name.ends_with(".egg-info") {
            entry.path.join("PKG-INFO")
        } else if entry.metadata.is_file() && name.ends_with(".egg-info") {
            entry.path.clone()
        } else {
            continue;
        };
        let path = metadata.to_string_lossy().into_owned();
        if let Some(text) = read(view, &path)? {
            out.extend(python::parse(&text, &path));
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// The text of regular file `path` of the image (symlinks followed inside the image), or
/// `None` when there is none.
fn read(view: &MergedView, path: &str) -> Result<Option<String>, SbomError> {
    let entry = view
        .lookup_followed(Path::new(path))
        .map_err(|source| SbomError::View {
            path: path.to_string(),
            source,
        })?;
    let Some(entry) = entry.filter(|e| e.metadata.is_file()) else {
        return Ok(None);
    };
    let bytes = std::fs::read(&entry.host_path).map_err(|source| SbomError::Read {
        path: path.to_string(),
        source,
    })?;
    Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
}

/// The entries of directory `dir`, none when it is missing or not a directory.
fn list(view: &MergedView, dir: &str) -> Result<Vec<rbuild_cache::MergedEntry>, SbomError> {
    match view.read_dir(Path::new(dir)) {
        Ok(entries) => Ok(entries),
        Err(CacheError::NotFound { .. } | CacheError::NotADirectory { .. }) => Ok(Vec::new()),
        Err(source) => Err(SbomError::View {
            path: dir.to_string(),
            source,
        }),
    }
}

/// Every entry of the image.
fn walk(view: &MergedView) -> Result<Vec<rbuild_cache::MergedEntry>, SbomError> {
    view.walk(Path::new("/")).map_err(|source| SbomError::View {
        path: "/".to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paragraphs_split_at_blank_lines_and_continue_indented_lines() {
        let p = paragraphs("A: 1\nB: x\n  y\n\n\nA: 2\n", ':');
        assert_eq!(p.len(), 2);
        assert_eq!(p[0][1], ("B".to_string(), "x\ny".to_string()));
        assert_eq!(p[1][0], ("A".to_string(), "2".to_string()));
    }

    #[test]
    fn a_merged_view_is_scanned_through_its_symlinks_confined_to_the_image() {
        let layer = tempfile::tempdir().unwrap();
        let root = layer.path();
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(
            root.join("etc/os-release"),
            "ID=debian\nVERSION_ID=\"12\"\n",
        )
        .unwrap();
        std::fs::create_dir_all(root.join("var/lib/dpkg")).unwrap();
        std::fs::write(
            root.join("var/lib/dpkg/status"),
            "Package: tzdata\nStatus: install ok installed\nVersion: 2024a\nArchitecture: all\n",
        )
        .unwrap();
        // The apk database is a symlink pointing out of the image: it resolves inside it
        // (to a file that does not exist there), never to the host's file.
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("installed"), "P:host\nV:1\n").unwrap();
        std::fs::create_dir_all(root.join("lib/apk/db")).unwrap();
        std::os::unix::fs::symlink(
            outside.path().join("installed"),
            root.join("lib/apk/db/installed"),
        )
        .unwrap();
        let dist = root.join("usr/lib/python3.11/site-packages/six-1.16.0.dist-info");
        std::fs::create_dir_all(&dist).unwrap();
        std::fs::write(dist.join("METADATA"), "Name: six\nVersion: 1.16.0\n").unwrap();
        let dist_packages = root.join("usr/lib/python3/dist-packages");
        std::fs::create_dir_all(dist_packages.join("chardet-5.1.0.egg-info")).unwrap();
        std::fs::write(
            dist_packages.join("chardet-5.1.0.egg-info/PKG-INFO"),
            "Metadata-Version: 1.1\nName: chardet\nVersion: 5.1.0\n",
        )
        .unwrap();
        std::fs::write(
            dist_packages.join("distro_info-1.5.egg-info"),
            "Name: distro-info\nVersion: 1.5\n",
        )
        .unwrap();
        // Not a package directory: not read.
        std::fs::create_dir_all(root.join("opt/x.dist-info")).unwrap();
        std::fs::write(
            root.join("opt/x.dist-info/METADATA"),
            "Name: x\nVersion: 1\n",
        )
        .unwrap();

        let view = MergedView::new(vec![root.to_path_buf()]);
        let packages = scan(&view).unwrap();
        let names: Vec<&str> = packages.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["tzdata", "chardet", "distro-info", "six"]);
        assert_eq!(
            packages[0].purl,
            "pkg:deb/debian/tzdata@2024a?arch=all&distro=debian-12"
        );
    }
}
