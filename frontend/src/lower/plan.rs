//! Stages: splitting the instructions at each `FROM`, the global `ARG`s, `FROM` expansion,
//! stage names and references, the target and the stages it needs.

use std::collections::BTreeSet;

use rbuild_types::{ImageRef, Platform, Span};

use super::args;
use super::error::LowerError;
use super::flags::Flags;
use super::options::BuildOptions;
use crate::ast::{Dockerfile, Node};
use crate::diagnostics::{Diagnostic, Diagnostics};
use crate::shell::{self, EnvList};

/// What a stage starts from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StageBase {
    /// `FROM scratch`.
    Scratch,
    /// `FROM <earlier stage>`, by index.
    Stage(usize),
    /// `FROM <image>`.
    Image(ImageRef),
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
    pub commands: Vec<Node>,
    /// The `COPY --from` source of each command (`None` when the command has none).
    pub sources: Vec<Option<StageSource>>,
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
}

impl Plan {
    /// The distinct registry/store images the needed stages use as `FROM` or `COPY --from`,
    /// in order of first use (never `scratch`, never a stage).
    pub fn base_images(&self) -> Vec<ImageRef> {
        let mut out: Vec<ImageRef> = Vec::new();
        for &i in &self.needed {
            let st = &self.stages[i];
            let from = match &st.base {
                StageBase::Image(r) => Some(r),
                _ => None,
            };
            let copies = st.sources.iter().filter_map(|s| match s {
                Some(StageSource::Image(r)) => Some(r),
                _ => None,
            });
            for r in from.into_iter().chain(copies) {
                if !out.contains(r) {
                    out.push(r.clone());
                }
            }
        }
        out
    }

    /// The name progress output uses for stage `i` (empty for a single-stage file).
    pub fn display_name(&self, i: usize) -> String {
        if self.single_stage {
            return String::new();
        }
        match &self.stages[i].name {
            Some(n) => n.clone(),
            None => format!("stage-{i}"),
        }
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

/// Splits `df` into stages and resolves everything that does not need base image configs.
pub fn plan(df: &Dockerfile, opts: &BuildOptions) -> Result<Plan, Diagnostics> {
    let escape = if df.escape == '\0' { '\\' } else { df.escape };
    let mut meta: Vec<&Node> = Vec::new();
    let mut raw: Vec<(&Node, Vec<Node>)> = Vec::new();
    for node in &df.instructions {
        match (node.keyword.as_str(), raw.last_mut()) {
            ("from", _) => raw.push((node, Vec::new())),
            (_, Some((_, cmds))) => cmds.push(node.clone()),
            ("arg", None) => meta.push(node),
            (kw, None) => {
                return Err(diag(
                    LowerError::NoStage {
                        keyword: kw.to_uppercase(),
                    },
                    node.span,
                ))
            }
        }
    }
    let Some((last_from, _)) = raw.last() else {
        return Err(diag(LowerError::NoStages, Span::default()));
    };

    // Stage names first: the target's name is visible to FROM as TARGETSTAGE.
    let mut names: Vec<Option<String>> = Vec::with_capacity(raw.len());
    for (from, _) in &raw {
        let name = match from.args.len() {
            1 => None,
            3 if from.args[1].eq_ignore_ascii_case("as") => {
                let n = from.args[2].to_lowercase();
                if !valid_stage_name(&n) {
                    return Err(diag(
                        LowerError::BadStageName(from.args[2].clone()),
                        from.span,
                    ));
                }
                if names.iter().flatten().any(|m| *m == n) {
                    return Err(diag(LowerError::DuplicateStage(n), from.span));
                }
                Some(n)
            }
            _ => return Err(diag(LowerError::FromArgs, from.span)),
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
    for node in &meta {
        for word in &node.args {
            let (key, default) = args::split_arg(word);
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
        let span = from.span;
        let env = EnvList(&global);
        let base_name =
            shell::process_word(&from.args[0], &env, escape).map_err(|e| diag(e.into(), span))?;
        if base_name.is_empty() {
            return Err(diag(LowerError::BlankBaseName(from.args[0].clone()), span));
        }
        let flags = Flags::parse("from", &from.flags).map_err(|e| diag(e, span))?;
        let platform = match flags.value("platform").map_err(|e| diag(e, span))? {
            None => None,
            Some(p) => {
                let value =
                    shell::process_word(p, &env, escape).map_err(|e| diag(e.into(), span))?;
                Some(
                    value
                        .parse::<Platform>()
                        .map_err(|source| diag(LowerError::BadPlatform { value, source }, span))?,
                )
            }
        };
        let lower = base_name.to_lowercase();
        let base = if base_name == "scratch" {
            StageBase::Scratch
        } else if let Some(i) = names[..index]
            .iter()
            .position(|n| n.as_deref() == Some(lower.as_str()))
        {
            StageBase::Stage(i)
        } else {
            StageBase::Image(ImageRef::parse(&base_name).map_err(|source| {
                diag(
                    LowerError::BadImageRef {
                        name: base_name.clone(),
                        source,
                    },
                    span,
                )
            })?)
        };
        let mut sources = Vec::with_capacity(commands.len());
        for cmd in &commands {
            sources.push(copy_source(cmd, index, &names, escape).map_err(|e| diag(e, cmd.span))?);
        }
        stages.push(Stage {
            index,
            name: names[index].clone(),
            base,
            platform,
            span,
            commands,
            sources,
        });
    }

    let mut needed = BTreeSet::new();
    let mut todo = vec![target];
    while let Some(i) = todo.pop() {
        if !needed.insert(i) {
            continue;
        }
        let st = &stages[i];
        if let StageBase::Stage(b) = st.base {
            todo.push(b);
        }
        todo.extend(st.sources.iter().filter_map(|s| match s {
            Some(StageSource::Stage(j)) => Some(*j),
            _ => None,
        }));
    }
    let external_sources = stages
        .iter()
        .flat_map(|s| &s.sources)
        .filter(|s| matches!(s, Some(StageSource::Image(_))))
        .count();
    Ok(Plan {
        single_stage: stages.len() + external_sources == 1,
        stages,
        target,
        needed: needed.into_iter().collect(),
        global_args: global,
        escape,
        options: opts.clone(),
    })
}

/// The `--from` of a `COPY` (BuildKit: a stage name, a stage index, or an image; no variables).
fn copy_source(
    cmd: &Node,
    index: usize,
    names: &[Option<String>],
    escape: char,
) -> Result<Option<StageSource>, LowerError> {
    if cmd.keyword != "copy" {
        return Ok(None);
    }
    let flags = Flags::parse("copy", &cmd.flags)?;
    let Some(from) = flags.value("from")? else {
        return Ok(None);
    };
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
    ImageRef::parse(from)
        .map(|r| Some(StageSource::Image(r)))
        .map_err(|source| LowerError::BadImageRef {
            name: from.to_string(),
            source,
        })
}
