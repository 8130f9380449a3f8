//! [`BakeError`]: what can be wrong with a bake file or a bake command line, always naming the
//! file (and the line where the parser knows it) or the target.

use std::path::PathBuf;

/// A bake definition that cannot be read or resolved.
#[derive(Debug, thiserror::Error)]
pub enum BakeError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}{}: {message}", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
    Syntax {
        path: PathBuf,
        /// 1-based, when the parser knows it.
        line: Option<usize>,
        message: String,
    },
    #[error("{}{}: {what}: {message}", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
    Invalid {
        path: PathBuf,
        line: Option<usize>,
        /// What is wrong where: `service "web": build.dockerfile_inline`.
        what: String,
        message: String,
    },
    #[error("no bake file found in {dir} (looked for {tried})", dir = dir.display())]
    NoFile { dir: PathBuf, tried: String },
    #[error("{} holds no services to build (no `services:` key and no top-level entry with `build:`)", path.display())]
    NoServices { path: PathBuf },
    #[error("failed to find target {0:?} (not a target or group of the bake files)")]
    UnknownTarget(String),
    #[error("target {target:?}: inherits {parent:?}, which is not a target")]
    UnknownParent { target: String, parent: String },
    #[error("target {0:?} inherits itself (through {1})")]
    InheritCycle(String, String),
    #[error("target {target:?}: context target:{context} names no target")]
    UnknownContextTarget { target: String, context: String },
    #[error("targets use each other's results as contexts in a cycle: {0}")]
    ContextCycle(String),
    #[error("nothing to build: {0} holds no target (a compose service needs a build: section)")]
    NothingToBuild(String),
    #[error("group {0:?} contains itself")]
    GroupCycle(String),
    #[error("invalid target name {0:?}: only letters, digits, '_' and '-' are allowed")]
    BadName(String),
    #[error("invalid --set {0:?}: expected TARGET.KEY=VALUE")]
    BadSet(String),
    #[error("--set {set:?}: unknown key {key:?} (one of: {known})")]
    UnknownSetKey {
        set: String,
        key: String,
        known: &'static str,
    },
    #[error("--set {set:?}: {value:?} is not a boolean")]
    BadBool { set: String, value: String },
    #[error("--set {0:?} matches no target being built")]
    SetMatchesNothing(String),
}

/// A parser's message without its trailing ` at line L column C` (serde_yaml_ng's and
/// serde_json's; the error shows the line itself).
pub(crate) fn without_location(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}
