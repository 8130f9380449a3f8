//! `rbuild bake`'s definitions: compose files (both the current shape and version 1),
//! `docker-bake.hcl` and `docker-bake.json`, each read by its own module into one
//! [`Definition`] (targets and groups, in buildx's vocabulary: [`model`]), merged across
//! files, then resolved for the names and `--set`s of a command line into a [`BakePlan`]
//! ([`resolve`]): what each target builds, with its context, Dockerfile, args, tags,
//! contexts, cache and platform settings. Building the plan is the builder's and the
//! binary's; this crate reads files and nothing else.
//!
//! The files and their order follow buildx's `bake/` (with `-f` none: every one of
//! [`DEFAULT_FILES`] that exists in the working directory, later files overriding earlier
//! ones target by target). Errors name the file, and the line where the parser knows it.

pub mod compose;
pub mod error;
pub mod hcl;
pub mod interp;
pub mod json;
pub mod model;
pub mod resolve;
pub mod stdlib;

use std::fmt;
use std::path::{Path, PathBuf};

pub use error::BakeError;
pub use model::{Definition, Group, Target};
pub use resolve::{resolve, BakePlan, Override};

/// The files bake reads when no `-f` is given, in this order (buildx's).
pub const DEFAULT_FILES: &[&str] = &[
    "compose.yaml",
    "compose.yml",
    "docker-compose.yml",
    "docker-compose.yaml",
    "docker-bake.json",
    "docker-bake.hcl",
    "docker-bake.override.json",
    "docker-bake.override.hcl",
];

/// Something bake read but does not act on, for the binary to tell the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// A compose service setting for running a container (ports, links, volumes, …).
    RuntimeKey {
        file: PathBuf,
        service: String,
        key: String,
    },
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Note::RuntimeKey { file, service, key } => write!(
                f,
                "{}: service {service:?}: {key:?} is a runtime setting; bake ignores it",
                file.display()
            ),
        }
    }
}

/// How a bake file is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Compose,
    Hcl,
    Json,
}

impl Format {
    /// The format of `path` with contents `text`: by extension, else by content (`{` JSON,
    /// HCL that parses, else compose).
    pub fn detect(path: &Path, text: &str) -> Format {
        match path.extension().and_then(|e| e.to_str()) {
            Some("hcl") => Format::Hcl,
            Some("json") => Format::Json,
            Some("yml" | "yaml") => Format::Compose,
            _ if text.trim_start().starts_with('{') => Format::Json,
            _ if ::hcl::parse(text).is_ok_and(|b| b.blocks().next().is_some()) => Format::Hcl,
            _ => Format::Compose,
        }
    }
}

/// The default bake files that exist in `dir`, in [`DEFAULT_FILES`] order.
pub fn default_files(dir: &Path) -> Result<Vec<PathBuf>, BakeError> {
    let found: Vec<PathBuf> = DEFAULT_FILES
        .iter()
        .map(|n| dir.join(n))
        .filter(|p| p.is_file())
        .map(|p| p.strip_prefix(dir).map(Path::to_path_buf).unwrap_or(p))
        .collect();
    if found.is_empty() {
        return Err(BakeError::NoFile {
            dir: dir.to_path_buf(),
            tried: DEFAULT_FILES.join(", "),
        });
    }
    Ok(found)
}

/// The text of bake file `path`; `-` is standard input (its format told by its content).
fn read_text(path: &Path) -> Result<String, BakeError> {
    let read = |source| BakeError::Read {
        path: path.to_path_buf(),
        source,
    };
    if path == Path::new("-") {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text).map_err(read)?;
        return Ok(text);
    }
    std::fs::read_to_string(path).map_err(read)
}

/// Reads and merges `files` (`-`: standard input; later ones override earlier ones); `env` looks up a variable
/// in the environment. Returns the definition and what was ignored.
pub fn load(
    files: &[PathBuf],
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(Definition, Vec<Note>), BakeError> {
    let mut def = Definition::default();
    let mut notes = Vec::new();
    for path in files {
        let text = read_text(path)?;
        let one = match Format::detect(path, &text) {
            Format::Compose => {
                let (d, n) = compose::read(path, &text, env)?;
                notes.extend(n);
                d
            }
            Format::Hcl => hcl::read(path, &text, env)?,
            Format::Json => json::read(path, &text, env)?,
        };
        def.merge(one);
    }
    Ok((def, notes))
}
