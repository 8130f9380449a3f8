//! `RUN --mount from=…`: which stage or image a mount reads (BuildKit's `detectRunMount`).
//!
//! The plan resolves every mount's `from` once, before base images are fetched, so that the
//! stages a mount reads are built (and kept by `--target` pruning) and the images it reads
//! are resolved. A `from` is matched, case-insensitively, against the stage *names* only
//! (unlike `COPY --from`, an index is an image name, as in BuildKit); `scratch` is the empty
//! filesystem; then the named contexts (`--build-context`); anything else is an image
//! reference. A mount without `from` reads the build
//! context (bind) or nothing (the other types) and adds no dependency.

use std::collections::BTreeSet;

use rbuild_types::{ImageRef, ImageRefError, Span};

use super::error::LowerError;
use super::plan::StageSource;
use crate::diagnostics::{Diagnostic, Diagnostics};
use crate::instructions::mount::raw_from;
use crate::instructions::{Instruction, InstructionError};

/// Why a `RUN --mount` could not be lowered (messages follow BuildKit's where it has one).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum RunMountError {
    #[error(
        "cannot mount from stage {from:?}, it needs to be defined before current stage {stage:?}"
    )]
    StageOrder { from: String, stage: String },
    #[error("circular dependency detected on stage: {0}")]
    Circular(String),
    #[error("invalid mount from {from:?}: {source}")]
    BadFrom { from: String, source: ImageRefError },
    #[error("invalid mount target {0:?}")]
    RootTarget(String),
    #[error("ssh does not support source")]
    SshSource,
    #[error("invalid secret mount: one of source, target or id required")]
    SecretId,
}

/// What a mount's `from` names, before any vertex exists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FromRef {
    /// `from=scratch`: the empty filesystem.
    Scratch,
    /// A stage, by index.
    Stage(usize),
    /// A named context, by key.
    Named(String),
    Image(ImageRef),
}

/// Resolves `from` against the (lower-cased) stage names, then the named contexts' keys.
pub fn resolve_from(
    from: &str,
    names: &[Option<String>],
    contexts: &BTreeSet<String>,
) -> Result<FromRef, RunMountError> {
    let lower = from.to_lowercase();
    if let Some(i) = names.iter().position(|n| n.as_deref() == Some(&lower)) {
        return Ok(FromRef::Stage(i));
    }
    if from == "scratch" {
        return Ok(FromRef::Scratch);
    }
    if let Some(key) = super::plan::named_context(from, contexts) {
        return Ok(FromRef::Named(key));
    }
    ImageRef::parse(from)
        .map(FromRef::Image)
        .map_err(|source| RunMountError::BadFrom {
            from: from.to_string(),
            source,
        })
}

/// The stages and images the mounts of `instruction` (a RUN in stage `index`) read, in
/// order, for the plan. Errors are at the span of the `--mount` flag at fault: a stage that
/// is the current one or comes later, an invalid image reference.
pub fn plan_sources(
    instruction: &Instruction,
    index: usize,
    names: &[Option<String>],
    contexts: &BTreeSet<String>,
) -> Result<Vec<StageSource>, Diagnostics> {
    let fail =
        |e: LowerError, span: Span| Diagnostics::single(Diagnostic::error(e.to_string(), span));
    let Instruction::Run { mounts, .. } = instruction else {
        return Ok(Vec::new());
    };
    let stage_name = || {
        names[index]
            .clone()
            .unwrap_or_else(|| format!("stage-{index}"))
    };
    let mut out = Vec::new();
    for m in mounts {
        let from = raw_from(&m.value).map_err(|source| {
            let e = InstructionError::Mount {
                value: m.value.clone(),
                source,
            };
            fail(e.into(), m.span)
        })?;
        let Some(from) = from else { continue };
        let source = match resolve_from(&from, names, contexts) {
            Ok(FromRef::Stage(i)) if i == index => Err(RunMountError::Circular(stage_name())),
            Ok(FromRef::Stage(i)) if i > index => Err(RunMountError::StageOrder {
                from: from.clone(),
                stage: stage_name(),
            }),
            Ok(FromRef::Stage(i)) => Ok(Some(StageSource::Stage(i))),
            Ok(FromRef::Image(r)) => Ok(Some(StageSource::Image(r))),
            Ok(FromRef::Named(n)) => Ok(Some(StageSource::Named(n))),
            Ok(FromRef::Scratch) => Ok(None),
            Err(e) => Err(e),
        }
        .map_err(|e| fail(e.into(), m.span))?;
        out.extend(source);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_scratch_and_images() {
        let names = vec![Some("build".to_string()), None];
        let none = BTreeSet::new();
        assert_eq!(resolve_from("BUILD", &names, &none), Ok(FromRef::Stage(0)));
        assert_eq!(resolve_from("scratch", &names, &none), Ok(FromRef::Scratch));
        // An index is an image name for mounts, as in BuildKit.
        assert!(matches!(
            resolve_from("0", &names, &none),
            Ok(FromRef::Image(_))
        ));
        assert!(matches!(
            resolve_from("Bad Name", &names, &none),
            Err(RunMountError::BadFrom { .. })
        ));
    }

    #[test]
    fn named_contexts_come_after_stages() {
        let names = vec![Some("build".to_string())];
        let contexts: BTreeSet<String> = ["build", "tools"].map(String::from).into();
        assert_eq!(
            resolve_from("build", &names, &contexts),
            Ok(FromRef::Stage(0))
        );
        assert_eq!(
            resolve_from("tools:latest", &names, &contexts),
            Ok(FromRef::Named("tools".into()))
        );
        assert_eq!(
            resolve_from("scratch", &names, &contexts),
            Ok(FromRef::Scratch)
        );
    }
}
