//! ONBUILD triggers of a stage's base (BuildKit's `initOnBuildTriggers`): parsing a stored
//! trigger into a [`Step`], and binding what it reads (`COPY --from`, `RUN --mount from=`)
//! to a stage of *this* Dockerfile or to an image.
//!
//! Triggers come from the base image's config, known only once the caller's resolver has
//! resolved the base images, so the stages and images they read are added to the plan
//! afterwards (`Plan::expand_onbuild`, driven by the one fixpoint of
//! [`Plan::resolve`](super::resolve)). A base *stage*'s triggers are its own `ONBUILD`
//! instructions, known from the file alone: [`plan`](super::plan()) binds them.
//! [`lower`](super::lower) only dispatches the triggers of the stages the plan needs.
//!
//! Binding follows BuildKit's `toCommand`/`detectRunMount` for triggers:
//! - `COPY --from=<n>`: stage `n` of the file (`invalid stage index n` past the end);
//!   `--from=<name>`: the stage of that name (case-insensitive), else an image. No variables.
//! - `RUN --mount=…,from=<name>`: the stage of that name, `scratch`, else an image (an index
//!   is an image name, as for mounts outside triggers).
//! - The current stage is `circular dependency detected on stage: <stage>`; a later stage
//!   `cannot copy (mount) from stage "<from>", it needs to be defined before current stage
//!   "<stage>"`.
//!
//! Invariant: every error is at the span of the `FROM` that pulls the triggers in (their
//! text is not in this file).

use super::resolve::BaseConfigs;
use std::collections::BTreeSet;

use rbuild_types::{ImageRef, Span};

use super::error::LowerError;
use super::mount_sources::{resolve_from, FromRef, RunMountError};
use super::named::NamedContext;
use super::plan::{copy_source_of, reachable, Plan, StageBase, StageSource, Step};
use crate::ast::Node;
use crate::diagnostics::{Diagnostic, Diagnostics};
use crate::instructions::mount::raw_from;
use crate::instructions::{self as ins, Instruction, InstructionError};

/// One trigger, parsed and bound.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trigger {
    pub step: Step,
    /// Where its `COPY --from` reads (`None`: no `--from`).
    pub source: Option<StageSource>,
    /// The stages and images its `RUN --mount from=`s read, in order.
    pub mount_sources: Vec<StageSource>,
}

/// The trigger texts stage `index` runs first: its base image's `OnBuild` list, or the
/// `ONBUILD` instructions of its base stage. `None` when the base image's config is not in
/// `bases` (not resolved yet).
pub fn trigger_texts(plan: &Plan, index: usize, bases: &BaseConfigs) -> Option<Vec<String>> {
    let stage = &plan.stages[index];
    let platform = plan.stage_platform(index);
    let of = |r: &ImageRef| bases.get(&(r.clone(), platform.clone()));
    match &stage.base {
        StageBase::Scratch => Some(Vec::new()),
        StageBase::Image(r) => of(r).map(|c| c.on_build.clone()),
        // A stage replaced by a context runs nothing; a filesystem context has no config.
        StageBase::Named(_) if stage.replaced => Some(Vec::new()),
        StageBase::Named(n) => match plan.contexts.get(n)? {
            NamedContext::Image(r) => of(r).map(|c| c.on_build.clone()),
            NamedContext::Filesystem | NamedContext::Http { .. } => Some(Vec::new()),
        },
        StageBase::Stage(j) => Some(
            plan.stages[*j]
                .commands
                .iter()
                .filter_map(|c| match &c.instruction {
                    Instruction::Onbuild { raw, .. } => Some(raw.clone()),
                    _ => None,
                })
                .collect(),
        ),
    }
}

/// Parses `text`, a trigger of stage `index`'s base, and binds what it reads.
pub fn trigger(plan: &Plan, index: usize, text: &str) -> Result<Trigger, LowerError> {
    let span = plan.stages[index].span;
    let step = onbuild_step(text, span)?;
    let names: Vec<Option<String>> = plan.stages.iter().map(|s| s.name.clone()).collect();
    let stage = || {
        plan.stages[index]
            .name
            .clone()
            .unwrap_or_else(|| format!("stage-{index}"))
    };
    let source = match &step.instruction {
        Instruction::Copy(c) => match &c.from {
            None => None,
            Some(flag) => {
                // Every stage is visible by name or index; the order is checked below.
                let contexts = &plan.options.contexts;
                match copy_source_of(&flag.value, names.len(), &names, contexts, plan.escape)? {
                    Some(StageSource::Stage(j)) if j == index => {
                        return Err(RunMountError::Circular(stage()).into())
                    }
                    Some(StageSource::Stage(j)) if j > index => {
                        return Err(LowerError::StageOrder {
                            from: flag.value.clone(),
                            stage: stage(),
                        })
                    }
                    s => s,
                }
            }
        },
        _ => None,
    };
    let mut mount_sources = Vec::new();
    if let Instruction::Run { mounts, .. } = &step.instruction {
        for m in mounts {
            let from = raw_from(&m.value).map_err(|source| InstructionError::Mount {
                value: m.value.clone(),
                source,
            })?;
            let Some(from) = from else { continue };
            match resolve_from(&from, &names, &plan.options.contexts)? {
                FromRef::Stage(j) if j == index => {
                    return Err(RunMountError::Circular(stage()).into())
                }
                FromRef::Stage(j) if j > index => {
                    return Err(RunMountError::StageOrder {
                        from,
                        stage: stage(),
                    }
                    .into())
                }
                FromRef::Stage(j) => mount_sources.push(StageSource::Stage(j)),
                FromRef::Image(r) => mount_sources.push(StageSource::Image(r)),
                FromRef::Named(n) => mount_sources.push(StageSource::Named(n)),
                FromRef::Scratch => {}
            }
        }
    }
    Ok(Trigger {
        step,
        source,
        mount_sources,
    })
}

/// What the ONBUILD triggers of the needed stages' bases add (see [`Plan::onbuild_closure`]).
pub(crate) struct OnbuildClosure {
    /// The stages the target needs, ascending.
    pub needed: Vec<usize>,
    /// The images the triggers read.
    pub images: Vec<ImageRef>,
    /// The named contexts the triggers read, by key.
    pub contexts: Vec<String>,
}

impl Plan {
    /// The stages the target needs once the triggers of every needed stage's base (from
    /// `bases`, or the base stage's `ONBUILD`s) are bound, and the images those triggers
    /// read. A base image missing from `bases` contributes nothing (yet).
    pub(crate) fn onbuild_closure(
        &self,
        bases: &BaseConfigs,
    ) -> Result<OnbuildClosure, Diagnostics> {
        let mut needed: BTreeSet<usize> = self.needed.iter().copied().collect();
        let mut images: Vec<ImageRef> = Vec::new();
        let mut contexts: Vec<String> = Vec::new();
        let mut seen = BTreeSet::new();
        // Each pass may add stages whose own bases carry triggers: repeat until stable.
        loop {
            let todo: Vec<usize> = needed.difference(&seen).copied().collect();
            if todo.is_empty() {
                break;
            }
            for i in todo {
                seen.insert(i);
                let Some(texts) = trigger_texts(self, i, bases) else {
                    continue;
                };
                for text in texts {
                    let t = trigger(self, i, &text).map_err(|e| {
                        Diagnostics::single(Diagnostic::error(e.to_string(), self.stages[i].span))
                    })?;
                    for s in t.source.iter().chain(&t.mount_sources) {
                        match s {
                            StageSource::Stage(j) => reachable(&self.stages, vec![*j], &mut needed),
                            StageSource::Image(r) if !images.contains(r) => images.push(r.clone()),
                            StageSource::Named(n) if !contexts.contains(n) => {
                                contexts.push(n.clone())
                            }
                            _ => {}
                        }
                    }
                }
            }
        }
        Ok(OnbuildClosure {
            needed: needed.into_iter().collect(),
            images,
            contexts,
        })
    }

    /// Adds to the plan what the ONBUILD triggers of its bases read (see
    /// [`Plan::onbuild_closure`]), so [`Plan::base_images`] lists the images to resolve next.
    /// [`Plan::resolve`] calls it again after resolving them: a stage added here may have a
    /// base with triggers.
    pub(crate) fn expand_onbuild(&mut self, bases: &BaseConfigs) -> Result<(), Diagnostics> {
        let closure = self.onbuild_closure(bases)?;
        self.needed = closure.needed;
        for r in closure.images {
            if !self.onbuild_images.contains(&r) {
                self.onbuild_images.push(r);
            }
        }
        for n in closure.contexts {
            if !self.onbuild_contexts.contains(&n) {
                self.onbuild_contexts.push(n);
            }
        }
        Ok(())
    }
}

/// Parses one ONBUILD trigger (`RUN make`) of a base into a step whose spans are all
/// `span` (the FROM that pulls it in).
fn onbuild_step(trigger: &str, span: Span) -> Result<Step, LowerError> {
    let bad = |reason: &str| LowerError::BadTrigger {
        trigger: trigger.to_string(),
        reason: reason.to_string(),
    };
    let df = crate::parse(trigger.as_bytes()).map_err(|d| bad(&d.to_string()))?;
    let [mut node] = <[Node; 1]>::try_from(df.instructions)
        .map_err(|_| bad("onbuild trigger should be a single expression"))?;
    if matches!(node.keyword.as_str(), "onbuild" | "from" | "maintainer") {
        return Err(bad("not allowed as an ONBUILD trigger"));
    }
    node.span = span;
    node.segments.clear();
    node.flag_spans.clear();
    let instruction = ins::from_node(&node).map_err(|e| bad(&e.to_string()))?;
    Ok(Step { instruction, node })
}
