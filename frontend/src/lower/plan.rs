//! Stages: splitting the instructions at each `FROM`, the global `ARG`s, `FROM` expansion,
//! stage names and references, the target and the stages it needs.

use std::collections::{BTreeMap, BTreeSet};

use rbuild_types::{ImageRef, Platform, Span};

use super::args;
use super::error::LowerError;
use super::named::{context_key, NamedContext};
use super::options::BuildOptions;
use crate::ast::{Dockerfile, Node};
use crate::diagnostics::{Diagnostic, Diagnostics};
use crate::instructions::{from_node_spanned, CopyArgs, Instruction, Spanned};
use crate::shell::{self, EnvList};

/// One instruction of a stage: its typed form (flags parsed and checked) and the parse-tree
/// node it came from (for the text progress names show, heredocs and spans).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    pub instruction: Instruction,
    pub node: Node,
}

/// What a stage starts from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StageBase {
    /// `FROM scratch`.
    Scratch,
    /// `FROM <earlier stage>`, by index.
    Stage(usize),
    /// `FROM <image>`.
    Image(ImageRef),
    /// `FROM <name>` of a named context (`--build-context`), by key; also the base of a
    /// stage the context of its name replaces.
    Named(String),
}

/// Where a `COPY --from` reads from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StageSource {
    /// The main build context.
    Context,
    /// An earlier stage, by index.
    Stage(usize),
    /// A registry image.
    Image(ImageRef),
    /// A named context (`--build-context`), by key.
    Named(String),
}

/// One build stage. Invariant: `Stage(i)` bases and sources always have `i < index`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stage {
    /// Position in the file (0-based).
    pub index: usize,
    /// `AS name`, lower-cased.
    pub name: Option<String>,
    /// The base after expansion.
    pub base: StageBase,
    /// `FROM --platform=…` after expansion, if given.
    pub platform: Option<Platform>,
    /// The `FROM` instruction's span.
    pub span: Span,
    /// The instructions after `FROM`, in order.
    pub commands: Vec<Step>,
    /// The `COPY --from` source of each command (`None` when the command has none).
    pub sources: Vec<Option<StageSource>>,
    /// The stages and images the `RUN --mount from=`s of each command read, in order.
    pub mount_sources: Vec<Vec<StageSource>>,
    /// The named context of the stage's name replaces it (`base` is that context): its
    /// instructions are not run, nor the ONBUILD triggers of its base, as in BuildKit.
    pub replaced: bool,
}

/// The result of [`plan`]: stages, the target, and what it needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pub stages: Vec<Stage>,
    /// Index of the target stage.
    pub target: usize,
    /// Indices of the stages the target needs (itself included), ascending.
    pub needed: Vec<usize>,
    /// The global scope: automatic platform args, then global `ARG`s (build args applied).
    pub global_args: Vec<String>,
    /// The escape token of the Dockerfile.
    pub escape: char,
    /// Whether progress names leave out the stage part (a single stage and no other sources).
    pub single_stage: bool,
    pub options: BuildOptions,
    /// Images the ONBUILD triggers of the needed stages' bases read (`COPY --from`,
    /// `RUN --mount from=`), added by [`Plan::resolve`].
    pub onbuild_images: Vec<ImageRef>,
    /// Named contexts the ONBUILD triggers of the needed stages' bases read.
    pub onbuild_contexts: Vec<String>,
    /// What each named context used is, as the resolver said ([`Plan::resolve`]).
    pub contexts: BTreeMap<String, NamedContext>,
}

impl Plan {
    /// The distinct registry/store images the needed stages use as `FROM` or `COPY --from`,
    /// in order of first use (never `scratch`, never a stage).
    /// Named contexts that are images count once resolved (see [`Plan::contexts`]).
    pub fn base_images(&self) -> Vec<(ImageRef, Platform)> {
        let mut out: Vec<(ImageRef, Platform)> = Vec::new();
        let mut add = |r: &ImageRef, p: &Platform| {
            let pair = (r.clone(), p.clone());
            if !out.contains(&pair) {
                out.push(pair);
            }
        };
        // A stage's base is resolved for the stage's platform; images read by `COPY --from`
        // and `RUN --mount from=` for the target's, as BuildKit does.
        let target = &self.options.platform;
        let named = |n: &String| match self.contexts.get(n) {
            Some(NamedContext::Image(r)) => Some(r),
            _ => None,
        };
        for &i in &self.needed {
            let st = &self.stages[i];
            let from = match &st.base {
                StageBase::Image(r) => Some(r),
                StageBase::Named(n) => named(n),
                _ => None,
            };
            let copies = st
                .sources
                .iter()
                .flatten()
                .chain(st.mount_sources.iter().flatten());
            let copies = copies.filter_map(|s| match s {
                StageSource::Image(r) => Some(r),
                StageSource::Named(n) => named(n),
                _ => None,
            });
            let stage_platform = self.stage_platform(i);
            from.into_iter().for_each(|r| add(r, &stage_platform));
            copies.for_each(|r| add(r, target));
        }
        self.onbuild_images.iter().for_each(|r| add(r, target));
        self.onbuild_contexts
            .iter()
            .filter_map(named)
            .for_each(|r| add(r, target));
        out
    }

    /// The platform stage `index` is built for: its `FROM --platform`, else the target's.
    pub fn stage_platform(&self, index: usize) -> Platform {
        self.stages[index]
            .platform
            .clone()
            .unwrap_or_else(|| self.options.platform.clone())
    }

    /// The keys of the named contexts the needed stages (and the ONBUILD triggers of their
    /// bases) use, in order of first use.
    pub fn named_contexts(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for &i in &self.needed {
            let st = &self.stages[i];
            let from = match &st.base {
                StageBase::Named(n) => Some(n),
                _ => None,
            };
            let sources = st
                .sources
                .iter()
                .flatten()
                .chain(st.mount_sources.iter().flatten())
                .filter_map(|s| match s {
                    StageSource::Named(n) => Some(n),
                    _ => None,
                });
            for n in from.into_iter().chain(sources) {
                if !out.contains(n) {
                    out.push(n.clone());
                }
            }
        }
        for n in &self.onbuild_contexts {
            if !out.contains(n) {
                out.push(n.clone());
            }
        }
        out
    }

    /// Stage `i` as origins name it: its name, or `stage-i` (also in a one-stage file).
    pub fn stage_id(&self, i: usize) -> String {
        match &self.stages[i].name {
            Some(n) => n.clone(),
            None => format!("stage-{i}"),
        }
    }

    /// The name progress output uses for stage `i` (empty for a single-stage file).
    pub fn display_name(&self, i: usize) -> String {
        if self.single_stage {
            return String::new();
        }
        self.stage_id(i)
    }
}

fn diag(e: LowerError, span: Span) -> Diagnostics {
    Diagnostics::single(Diagnostic::error(e.to_string(), span))
}

/// Whether `name` is a valid stage name (`^[a-z][a-z0-9-_.]*$`, after lower-casing).
fn valid_stage_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c))
}

/// The `(name, default)` pairs of one `ARG`.
type ArgWords = Vec<(String, Option<String>)>;

/// The parts of a `FROM` the plan needs.
struct FromParts<'a> {
    node: &'a Node,
    image: String,
    platform: Option<Spanned<String>>,
    alias: Option<String>,
}

/// Splits `df` into stages and resolves everything that does not need base image configs.
/// Every instruction is converted to its typed form first; all conversion errors are
/// reported together (each at the flag or instruction at fault).
pub fn plan(df: &Dockerfile, opts: &BuildOptions) -> Result<Plan, Diagnostics> {
    let escape = if df.escape == '\0' { '\\' } else { df.escape };
    let mut meta: Vec<(&Node, ArgWords)> = Vec::new();
    let mut raw: Vec<(FromParts<'_>, Vec<Step>)> = Vec::new();
    let mut errors = Vec::new();
    for node in &df.instructions {
        let instruction = match from_node_spanned(node) {
            Ok(i) => i,
            Err((e, span)) => {
                errors.push(Diagnostic::error(e.to_string(), span));
                continue;
            }
        };
        match (instruction, raw.last_mut()) {
            (
                Instruction::From {
                    image,
                    platform,
                    alias,
                },
                _,
            ) => raw.push((
                FromParts {
                    node,
                    image,
                    platform,
                    alias,
                },
                Vec::new(),
            )),
            (instruction, Some((_, cmds))) => cmds.push(Step {
                instruction,
                node: node.clone(),
            }),
            (Instruction::Arg(words), None) => meta.push((node, words)),
            (i, None) => errors.push(Diagnostic::error(
                LowerError::NoStage {
                    keyword: i.keyword().to_string(),
                }
                .to_string(),
                node.span,
            )),
        }
    }
    if !errors.is_empty() {
        return Err(Diagnostics(errors));
    }
    let Some((last_from, _)) = raw.last() else {
        return Err(diag(LowerError::NoStages, Span::default()));
    };
    let last_from = last_from.node;

    // Stage names first: the target's name is visible to FROM as TARGETSTAGE.
    let mut names: Vec<Option<String>> = Vec::with_capacity(raw.len());
    for (from, _) in &raw {
        let name = match &from.alias {
            None => None,
            Some(n) => {
                if !valid_stage_name(n) {
                    return Err(diag(LowerError::BadStageName(n.clone()), from.node.span));
                }
                if names.iter().flatten().any(|m| m == n) {
                    let span = from.node.word_span(n);
                    return Err(diag(LowerError::DuplicateStage(n.clone()), span));
                }
                Some(n.clone())
            }
        };
        names.push(name);
    }
    let target = match &opts.target {
        Some(t) => names
            .iter()
            .position(|n| n.as_deref() == Some(t.to_lowercase().as_str()))
            .ok_or_else(|| diag(LowerError::UnknownTarget(t.clone()), last_from.span))?,
        None => raw.len() - 1,
    };

    let mut global = args::platform_args(
        &Platform::host(),
        &opts.platform,
        names[target].as_deref().unwrap_or_default(),
    );
    for (node, words) in &meta {
        for (key, default) in words {
            let key = key.as_str();
            let default = default.as_deref();
            let value = match (opts.build_args.get(key), default) {
                (Some(v), _) => Some(v.clone()),
                (None, Some(d)) => Some(
                    shell::process_word(d, &EnvList(&global), escape)
                        .map_err(|e| diag(e.into(), node.span))?,
                ),
                (None, None) => None,
            };
            if let Some(v) = value {
                args::set(&mut global, key, &v);
            }
        }
    }

    let mut stages: Vec<Stage> = Vec::with_capacity(raw.len());
    for (index, (from, commands)) in raw.into_iter().enumerate() {
        let span = from.node.span;
        let env = EnvList(&global);
        let image_span = from.node.word_span(&from.image);
        let base_name = shell::process_word(&from.image, &env, escape)
            .map_err(|e| diag(e.into(), image_span))?;
        if base_name.is_empty() {
            return Err(diag(
                LowerError::BlankBaseName(from.image.clone()),
                image_span,
            ));
        }
        let platform =
            match &from.platform {
                None => None,
                Some(p) => {
                    let value = shell::process_word(&p.value, &env, escape)
                        .map_err(|e| diag(e.into(), p.span))?;
                    Some(value.parse::<Platform>().map_err(|source| {
                        diag(LowerError::BadPlatform { value, source }, p.span)
                    })?)
                }
            };
        let lower = base_name.to_lowercase();
        let own_context = names[index]
            .as_deref()
            .and_then(|n| named_context(n, &opts.contexts));
        let replaced = own_context.is_some();
        let base = if let Some(key) = own_context {
            StageBase::Named(key)
        } else if base_name == "scratch" {
            StageBase::Scratch
        } else if let Some(i) = names[..index]
            .iter()
            .position(|n| n.as_deref() == Some(lower.as_str()))
        {
            StageBase::Stage(i)
        } else if let Some(key) = named_context(&base_name, &opts.contexts) {
            StageBase::Named(key)
        } else {
            StageBase::Image(ImageRef::parse(&base_name).map_err(|source| {
                diag(
                    LowerError::BadImageRef {
                        name: base_name.clone(),
                        source,
                    },
                    image_span,
                )
            })?)
        };
        // A replaced stage runs none of its instructions (they were still checked above).
        let commands = if replaced { Vec::new() } else { commands };
        let mut sources = Vec::with_capacity(commands.len());
        for cmd in &commands {
            let source = match &cmd.instruction {
                Instruction::Copy(c) => copy_source(c, index, &names, &opts.contexts, escape)?,
                _ => None,
            };
            sources.push(source);
        }
        let mut mount_sources = Vec::with_capacity(commands.len());
        for cmd in &commands {
            let found = super::mount_sources::plan_sources(
                &cmd.instruction,
                index,
                &names,
                &opts.contexts,
            )?;
            mount_sources.push(found);
        }
        stages.push(Stage {
            index,
            name: names[index].clone(),
            base,
            platform,
            span,
            commands,
            sources,
            mount_sources,
            replaced,
        });
    }

    let mut needed = BTreeSet::new();
    reachable(&stages, vec![target], &mut needed);
    let external_sources = stages
        .iter()
        .flat_map(|s| &s.sources)
        .filter(|s| matches!(s, Some(StageSource::Image(_) | StageSource::Named(_))))
        .count();
    // BuildKit adds a state for every mount (one without `from` reads `scratch`).
    let mounts = stages
        .iter()
        .flat_map(|s| &s.commands)
        .filter(|c| matches!(&c.instruction, Instruction::Run { mounts, .. } if !mounts.is_empty()))
        .count();
    let mut plan = Plan {
        single_stage: stages.len() + external_sources + mounts == 1,
        stages,
        target,
        needed: needed.into_iter().collect(),
        global_args: global,
        escape,
        options: opts.clone(),
        onbuild_images: Vec::new(),
        onbuild_contexts: Vec::new(),
        contexts: BTreeMap::new(),
    };
    // The triggers of base *stages* are known now; those of base images once resolved.
    plan.expand_onbuild(&std::collections::BTreeMap::new())?;
    Ok(plan)
}

/// Adds to `needed` the stages in `todo` and every stage they build on or read
/// (`FROM`, `COPY --from`, `RUN --mount from=`), transitively.
pub(super) fn reachable(stages: &[Stage], mut todo: Vec<usize>, needed: &mut BTreeSet<usize>) {
    while let Some(i) = todo.pop() {
        if !needed.insert(i) {
            continue;
        }
        let st = &stages[i];
        if let StageBase::Stage(b) = st.base {
            todo.push(b);
        }
        let sources = st.sources.iter().flatten();
        todo.extend(
            sources
                .chain(st.mount_sources.iter().flatten())
                .filter_map(|s| match s {
                    StageSource::Stage(j) => Some(*j),
                    _ => None,
                }),
        );
    }
}

/// The `--from` of a `COPY` (BuildKit: a stage name, a stage index, or an image; no
/// variables). Errors point at the `--from` flag.
fn copy_source(
    copy: &CopyArgs,
    index: usize,
    names: &[Option<String>],
    contexts: &BTreeSet<String>,
    escape: char,
) -> Result<Option<StageSource>, Diagnostics> {
    let Some(flag) = &copy.from else {
        return Ok(None);
    };
    copy_source_of(&flag.value, index, names, contexts, escape).map_err(|e| diag(e, flag.span))
}

/// The key of the named context `name` refers to, if the user gave one (never for
/// `scratch` or `context`).
pub(super) fn named_context(name: &str, contexts: &BTreeSet<String>) -> Option<String> {
    if contexts.is_empty() || name.eq_ignore_ascii_case("scratch") {
        return None;
    }
    context_key(name).filter(|k| contexts.contains(k))
}

/// The source `--from` names, for a command of stage `index`: a stage by index or name
/// (it must come before `index`), else a named context, else an image. Variables are an
/// error.
pub(super) fn copy_source_of(
    from: &str,
    index: usize,
    names: &[Option<String>],
    contexts: &BTreeSet<String>,
    escape: char,
) -> Result<Option<StageSource>, LowerError> {
    let unexpanded = shell::process_word(from, &shell::env::EmptyEnv, escape)?;
    if unexpanded != from {
        return Err(LowerError::FromExpansion);
    }
    let stage_error = || LowerError::StageOrder {
        from: from.to_string(),
        stage: names[index]
            .clone()
            .unwrap_or_else(|| format!("stage-{index}")),
    };
    if let Ok(i) = from.parse::<usize>() {
        if i >= names.len() {
            return Err(LowerError::BadStageIndex(i));
        }
        if i >= index {
            return Err(stage_error());
        }
        return Ok(Some(StageSource::Stage(i)));
    }
    let lower = from.to_lowercase();
    if let Some(i) = names
        .iter()
        .position(|n| n.as_deref() == Some(lower.as_str()))
    {
        if i >= index {
            return Err(stage_error());
        }
        return Ok(Some(StageSource::Stage(i)));
    }
    if let Some(key) = named_context(from, contexts) {
        return Ok(Some(StageSource::Named(key)));
    }
    ImageRef::parse(from)
        .map(|r| Some(StageSource::Image(r)))
        .map_err(|source| LowerError::BadImageRef {
            name: from.to_string(),
            source,
        })
}
