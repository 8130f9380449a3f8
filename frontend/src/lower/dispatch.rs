//! Per-instruction lowering of the needed stages (BuildKit's `dispatch*` functions): vertices
//! for RUN/COPY/ADD/WORKDIR, image-config changes and history entries for the rest. RUN lives
//! in `run.rs` (its `--mount`s in `mounts.rs`), COPY/ADD in `copy.rs`.

use super::resolve::BaseConfigs;
use std::collections::HashMap;

use rbuild_graph::{
    CopyAction, ExecOp, FileAction, FileMode, FileOp, Graph, Healthcheck, HistoryEntry,
    ImageConfig, Instruction as StepKind, MkdirAction, MkfileAction, NetworkMode, Op, Origin,
    VertexId,
};
use rbuild_types::{Platform, Span};

use super::args;
use super::builder::{Builder, Label};
use super::error::LowerError;
use super::gofmt;
use super::named::NamedContext;
use super::onbuild;
use super::paths;
use super::plan::{Plan, StageBase, StageSource, Step};
use super::vars::Vars;
use crate::ast::{Heredoc, Node};
use crate::diagnostics::{Diagnostic, Diagnostics};
use crate::instructions::{
    self as ins, parse_checksum, AddArgs, Chmod, CopyArgs, Instruction, Mount, MountType, Network,
    Security, Sharing, Spanned,
};
use crate::shell::{self, LexOptions};

mod copy;
use copy::CopyView;
mod mounts;
mod run;

/// The `comment` of every history entry BuildKit writes.
pub const HISTORY_COMMENT: &str = "buildkit.dockerfile.v0";

/// The shell of shell-form RUN/CMD/ENTRYPOINT when no `SHELL` is set.
const DEFAULT_SHELL: [&str; 2] = ["/bin/sh", "-c"];

/// The state of one stage while its instructions are dispatched.
#[derive(Clone, Debug)]
struct StageState {
    /// The vertex whose result is the stage's filesystem so far.
    root: VertexId,
    /// The stage's image config; its `env` is filled from `config_env` when the stage is
    /// done ([`StageState::into_config`]).
    config: ImageConfig,
    /// The config's environment while the stage is lowered (indexed: module `vars`).
    config_env: Vars,
    /// The environment RUN sees and expansion uses: image env, ARGs and ENVs, in order.
    env: Vars,
    cwd: String,
    user: String,
    /// `ARG`s in scope (`(name, value)`, one entry per name, in order of first
    /// declaration), inherited by stages built `FROM` this one.
    build_args: Vec<(String, Option<String>)>,
    /// A CMD was set in this stage (ENTRYPOINT then keeps it).
    cmd_set: bool,
    cmd_total: usize,
    cmd_index: usize,
    /// The stage as progress shows it (empty when the file has one stage).
    display: String,
    /// The stage as origins name it: its name, or `stage-N`.
    stage: String,
    ignore_cache: bool,
    /// An ONBUILD trigger is being dispatched (progress names say `ONBUILD`).
    in_onbuild: bool,
    /// The platform the stage's RUNs execute as: `FROM --platform`, else the target's; a
    /// stage built `FROM` another stage keeps that one's.
    platform: Platform,
}

impl StageState {
    /// The stage's image config, its environment filled in.
    fn into_config(self) -> ImageConfig {
        let mut config = self.config;
        config.env = self.config_env.list().to_vec();
        config
    }

    /// BuildKit's progress prefix: `[stage 2/4] ` (width padded), none for a stage without
    /// numbered steps.
    /// The label of the stage's next step, `instruction` shown as `text`: its progress name
    /// (`[build 2/4] RUN make`) and its origin.
    fn step(&mut self, instruction: StepKind, text: String) -> Label {
        let name = self.name(text);
        let origin = (self.cmd_total > 0).then(|| Origin {
            stage: self.stage.clone(),
            index: self.cmd_index as u32,
            instruction,
            onbuild: self.in_onbuild,
        });
        Label { name, origin }
    }

    fn name(&mut self, text: String) -> String {
        if self.cmd_total == 0 {
            return text;
        }
        self.cmd_index += 1;
        let width = self.cmd_total.to_string().len();
        let stage = if self.display.is_empty() {
            String::new()
        } else {
            format!("{} ", self.display)
        };
        let onbuild = if self.in_onbuild { "ONBUILD " } else { "" };
        format!(
            "[{stage}{:>width$}/{}] {onbuild}{text}",
            self.cmd_index, self.cmd_total
        )
    }

    fn history(&mut self, created_by: String, layer: bool) {
        let created_by = if layer && !created_by.starts_with("WORKDIR ") {
            format!("{created_by} # buildkit")
        } else {
            created_by
        };
        self.config.history.push(HistoryEntry {
            created: None,
            created_by,
            comment: Some(HISTORY_COMMENT.to_string()),
            empty_layer: !layer,
        });
    }
}

/// The empty image BuildKit starts `FROM scratch` with.
fn empty_image(platform: &Platform) -> ImageConfig {
    ImageConfig {
        platform: platform.clone(),
        env: vec![format!("PATH={}", args::DEFAULT_PATH)],
        working_dir: "/".to_string(),
        ..ImageConfig::default()
    }
}

/// The first word upper-cased, as BuildKit shows instructions (`copy a b` → `COPY a b`).
fn uppercase_cmd(s: &str) -> String {
    match s.split_once(' ') {
        Some((a, b)) => format!("{} {b}", a.to_uppercase()),
        None => s.to_uppercase(),
    }
}

/// Lowers the needed stages of `plan` into a graph whose target is the target stage.
/// `bases` holds the config of every base image, as [`Plan::resolve`] returns them (which
/// also makes the plan need the stages that the ONBUILD triggers of the bases read).
pub fn lower(plan: &Plan, bases: &BaseConfigs) -> Result<Graph, Diagnostics> {
    let mut b = Builder::default();
    let mut done: Vec<Option<StageState>> = vec![None; plan.stages.len()];
    let mut errors = Vec::new();
    for &i in &plan.needed {
        let mut stage_errors = Vec::new();
        let state = Lowerer {
            plan,
            bases,
            b: &mut b,
            done: &done,
        }
        .stage(i, &mut stage_errors);
        errors.extend(stage_errors);
        match state {
            Ok(state) => done[i] = Some(state),
            // Stages built on this one would only repeat the error.
            Err(d) => {
                errors.extend(d.0);
                break;
            }
        }
    }
    if !errors.is_empty() {
        return Err(Diagnostics(errors));
    }
    let Some(target) = done[plan.target].take() else {
        let span = plan.stages[plan.target].span;
        return Err(Diagnostics::single(Diagnostic::error(
            LowerError::UnknownTarget(plan.display_name(plan.target)).to_string(),
            span,
        )));
    };
    let root = target.root;
    let mut image = target.into_config();
    image.labels.extend(
        plan.options
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone())),
    );
    Ok(b.finish(root, image))
}

struct Lowerer<'a> {
    plan: &'a Plan,
    bases: &'a BaseConfigs,
    b: &'a mut Builder,
    done: &'a [Option<StageState>],
}

fn err_at(e: LowerError, span: Span) -> Diagnostics {
    Diagnostics::single(diag_at(e, span))
}

/// The diagnostic for `e`: at the span it carries (a flag or word), else at `span`.
fn diag_at(e: LowerError, span: Span) -> Diagnostic {
    match e {
        LowerError::At { error, span } => Diagnostic::error(error.to_string(), span),
        e => Diagnostic::error(e.to_string(), span),
    }
}

/// Attaches the span of the flag or word at fault.
fn at(error: impl Into<LowerError>, span: Span) -> LowerError {
    LowerError::At {
        error: Box::new(error.into()),
        span,
    }
}

impl Lowerer<'_> {
    /// Lowers stage `i`. Errors of single instructions go to `errors` (dispatch goes on with
    /// the next instruction, so every one is reported); an `Err` means the stage itself
    /// could not start.
    fn stage(&mut self, i: usize, errors: &mut Vec<Diagnostic>) -> Result<StageState, Diagnostics> {
        let stage = &self.plan.stages[i];
        let span = stage.span;
        let platform = stage
            .platform
            .clone()
            .unwrap_or_else(|| self.plan.options.platform.clone());
        // A named context is the image it names, or a filesystem with the empty config.
        let base = match &stage.base {
            StageBase::Named(n) => match self.plan.contexts.get(n) {
                Some(NamedContext::Image(r)) => StageBase::Image(r.clone()),
                Some(NamedContext::Filesystem | NamedContext::Http { .. }) => {
                    StageBase::Named(n.clone())
                }
                None => return Err(err_at(LowerError::UnresolvedContext(n.clone()), span)),
            },
            other => other.clone(),
        };
        let from_step = !stage.replaced && matches!(base, StageBase::Image(_));
        let cmd_total = usize::from(from_step)
            + stage
                .commands
                .iter()
                .filter(|c| {
                    matches!(
                        c.instruction,
                        Instruction::Add(_)
                            | Instruction::Copy(_)
                            | Instruction::Run { .. }
                            | Instruction::Workdir(_)
                    )
                })
                .count();
        let display = self.plan.display_name(i);
        let ignore_cache = self.plan.options.is_no_cache(stage.name.as_deref());
        // ONBUILD triggers of the base (image or stage) run first; they count as steps.
        // A stage replaced by a named context runs none.
        let triggers: Vec<String> = match &base {
            _ if stage.replaced => Vec::new(),
            StageBase::Stage(j) => self.done[*j]
                .as_ref()
                .map(|b| b.config.on_build.clone())
                .unwrap_or_default(),
            StageBase::Image(r) => self
                .bases
                .get(&(r.clone(), platform.clone()))
                .map(|c| c.on_build.clone())
                .unwrap_or_default(),
            StageBase::Scratch | StageBase::Named(_) => Vec::new(),
        };
        let cmd_total = cmd_total + triggers.len();
        let mut st = match &base {
            StageBase::Stage(j) => {
                let Some(base) = self.done[*j].clone() else {
                    return Err(err_at(
                        LowerError::StageOrder {
                            from: self.plan.display_name(*j),
                            stage: display,
                        },
                        span,
                    ));
                };
                let mut config = base.config;
                config.on_build.clear();
                StageState {
                    config,
                    cmd_set: false,
                    cmd_total,
                    cmd_index: 0,
                    display,
                    stage: self.plan.stage_id(i),
                    ignore_cache,
                    ..base
                }
            }
            StageBase::Scratch => {
                let root = self.b.scratch();
                self.fresh(root, None, cmd_total, i, ignore_cache, &platform)
            }
            StageBase::Named(n) => {
                let root = match self.plan.contexts.get(n) {
                    Some(NamedContext::Http { url }) => self.b.named_http(n, url),
                    _ => self.b.named_filesystem(n),
                };
                self.fresh(root, None, cmd_total, i, ignore_cache, &platform)
            }
            StageBase::Image(r) => {
                let Some(config) = self.bases.get(&(r.clone(), platform.clone())).cloned() else {
                    return Err(err_at(LowerError::MissingBase(r.clone()), span));
                };
                let mut st = self.fresh(
                    VertexId(0),
                    Some(config),
                    cmd_total,
                    i,
                    ignore_cache,
                    &platform,
                );
                let label = st.step(StepKind::From, format!("FROM {r}"));
                st.root = self.b.image(r, &platform, label, span);
                st
            }
        };
        st.config.on_build.clear();
        for text in &triggers {
            // A trigger's text is not in this file: every error points at the FROM.
            let trigger = onbuild::trigger(self.plan, i, text).map_err(|e| err_at(e, span))?;
            st.in_onbuild = true;
            self.dispatch(&mut st, &trigger.step, trigger.source.as_ref())
                .map_err(|e| err_at(strip_span(e), span))?;
            st.in_onbuild = false;
        }
        for (step, source) in stage.commands.iter().zip(&stage.sources) {
            if let Err(e) = self.dispatch(&mut st, step, source.as_ref()) {
                errors.push(diag_at(e, step.node.span));
            }
        }
        Ok(st)
    }

    /// A stage state starting from an image config, or the empty one of `platform` (BuildKit:
    /// PATH always set, WORKDIR/USER of the image applied without history).
    fn fresh(
        &self,
        root: VertexId,
        config: Option<ImageConfig>,
        cmd_total: usize,
        stage: usize,
        ignore_cache: bool,
        platform: &Platform,
    ) -> StageState {
        let mut config = config.unwrap_or_else(|| empty_image(platform));
        if config.env_var("PATH").is_none() {
            config.env.push(format!("PATH={}", args::DEFAULT_PATH));
        }
        let cwd = if config.working_dir.is_empty() {
            "/".to_string()
        } else {
            paths::workdir("/", &config.working_dir)
        };
        StageState {
            root,
            env: Vars::from_list(config.env.clone()),
            config_env: Vars::from_list(std::mem::take(&mut config.env)),
            user: config.user.clone(),
            cwd,
            config,
            build_args: Vec::new(),
            cmd_set: false,
            cmd_total,
            cmd_index: 0,
            display: self.plan.display_name(stage),
            stage: self.plan.stage_id(stage),
            ignore_cache,
            in_onbuild: false,
            platform: platform.clone(),
        }
    }

    fn expand(&self, st: &StageState, word: &str) -> Result<String, LowerError> {
        Ok(shell::process_word(word, &st.env, self.plan.escape)?)
    }

    /// The progress name of an instruction: its text with variables expanded.
    fn display(&self, st: &StageState, node: &Node, raw: bool) -> String {
        let opts = LexOptions {
            raw_quotes: raw,
            skip_unset: raw,
            skip_quotes: false,
        };
        let text = node.original.trim();
        let shown = shell::expand_with(text, &st.env, self.plan.escape, opts)
            .map(|e| e.word)
            .unwrap_or_else(|_| text.to_string());
        uppercase_cmd(&shown)
    }

    fn dispatch(
        &mut self,
        st: &mut StageState,
        step: &Step,
        source: Option<&StageSource>,
    ) -> Result<(), LowerError> {
        let node = &step.node;
        match &step.instruction {
            Instruction::Run { .. } => self.run(st, node, &step.instruction),
            Instruction::Copy(c) => self.copy(st, node, &CopyView::copy(c), source),
            Instruction::Add(a) => self.copy(st, node, &CopyView::add(a), source),
            Instruction::Workdir(path) => self.workdir(st, node, path),
            Instruction::Env(pairs) => self.env(st, pairs),
            Instruction::Arg(words) => self.arg(st, words),
            Instruction::Label(pairs) => self.label(st, pairs),
            Instruction::Cmd(c) => self.cmd(st, true, c),
            Instruction::Entrypoint(c) => self.cmd(st, false, c),
            Instruction::User(user) => {
                let user = self.expand(st, user)?;
                st.user.clone_from(&user);
                st.config.user.clone_from(&user);
                st.history(format!("USER {user}"), false);
                Ok(())
            }
            Instruction::Expose(words) => self.expose(st, node, words),
            Instruction::Volume(words) => {
                let mut vols = Vec::new();
                for a in words {
                    let span = node.word_span(a);
                    let v = self.expand(st, a).map_err(|e| at(e, span))?;
                    if v.is_empty() {
                        return Err(at(LowerError::EmptyVolume, span));
                    }
                    vols.push(v);
                }
                st.config.volumes.extend(vols.iter().cloned());
                st.history(format!("VOLUME {}", gofmt::plain_list(&vols)), false);
                Ok(())
            }
            Instruction::StopSignal(sig) => {
                let sig = self.expand(st, sig)?;
                st.config.stop_signal = Some(sig.clone());
                st.history(format!("STOPSIGNAL {sig}"), false);
                Ok(())
            }
            Instruction::Shell(argv) => {
                st.config.shell = Some(argv.clone());
                st.history(format!("SHELL {}", gofmt::plain_list(argv)), false);
                Ok(())
            }
            Instruction::Healthcheck(h) => self.healthcheck(st, h),
            Instruction::Maintainer(who) => {
                // BuildKit's `dispatchMaintainer`: the image's author, and a history entry.
                st.config.author = Some(who.clone());
                st.history(format!("MAINTAINER {who}"), false);
                Ok(())
            }
            Instruction::Onbuild { raw, .. } => {
                st.config.on_build.push(raw.clone());
                Ok(())
            }
            Instruction::From { .. } => Err(LowerError::UnknownInstruction("FROM".into())),
        }
    }

    fn workdir(&mut self, st: &mut StageState, node: &Node, path: &str) -> Result<(), LowerError> {
        let requested = self.expand(st, path)?;
        if requested.is_empty() {
            return Err(LowerError::EmptyWorkdir);
        }
        // The config and history keep an absolute path as written (BuildKit); RUN's working
        // directory and the mkdir use it cleaned.
        let recorded = paths::workdir_config(&st.config.working_dir, &requested);
        let wd = paths::workdir(&st.config.working_dir, &requested);
        st.config.working_dir.clone_from(&recorded);
        st.cwd.clone_from(&wd);
        let layer = recorded != "/";
        if layer {
            let name = self.display(st, node, false);
            let label = st.step(StepKind::Workdir, name);
            let mkdir = MkdirAction {
                path: wd.clone(),
                mode: 0o755,
                parents: true,
                chown: (!st.user.is_empty()).then(|| st.user.clone()),
            };
            st.root = self.b.add(
                Op::File(FileOp {
                    actions: vec![FileAction::Mkdir(mkdir)],
                }),
                vec![st.root],
                label,
                Some(node.span),
                false,
            );
        }
        st.history(format!("WORKDIR {recorded}"), layer);
        Ok(())
    }

    /// `ENV`/`LABEL` pairs, all expanded against the environment before the instruction.
    fn pairs(
        &self,
        st: &StageState,
        pairs: &[(String, String)],
    ) -> Result<Vec<(String, String)>, LowerError> {
        pairs
            .iter()
            .map(|(k, v)| Ok((self.expand(st, k)?, self.expand(st, v)?)))
            .collect()
    }

    fn env(&mut self, st: &mut StageState, pairs: &[(String, String)]) -> Result<(), LowerError> {
        let pairs = self.pairs(st, pairs)?;
        let mut msg = "ENV".to_string();
        for (k, v) in pairs {
            msg.push_str(&format!(" {k}={v}"));
            st.env.set(&k, &v);
            st.config_env.set(&k, &v);
        }
        st.history(msg, false);
        Ok(())
    }

    fn label(&mut self, st: &mut StageState, pairs: &[(String, String)]) -> Result<(), LowerError> {
        let pairs = self.pairs(st, pairs)?;
        let mut msg = "LABEL".to_string();
        for (k, v) in pairs {
            msg.push_str(&format!(" {k}={v}"));
            st.config.labels.insert(k, v);
        }
        st.history(msg, false);
        Ok(())
    }

    /// BuildKit's `dispatchArg`: a build arg wins, then the default (expanded), then the
    /// global value for a bare `ARG NAME`. Values join the environment RUN sees.
    fn arg(
        &mut self,
        st: &mut StageState,
        words: &[(String, Option<String>)],
    ) -> Result<(), LowerError> {
        let mut parts = Vec::new();
        for (key, default) in words {
            let (key, default) = (key.as_str(), default.as_deref());
            let value = match (self.plan.options.build_args.get(key), default) {
                (Some(v), _) => Some(v.clone()),
                (None, Some(d)) => Some(self.expand(st, d)?),
                (None, None) => args::get(&self.plan.global_args, key).map(str::to_string),
            };
            if let Some(v) = &value {
                st.env.set(key, v);
            }
            parts.push(match &value {
                Some(v) => format!("{key}={v}"),
                None => key.to_string(),
            });
            // A re-declared ARG keeps its first position (as `run_command_string` lists
            // it) and takes the new value; the list stays as long as the distinct names.
            match st.build_args.iter_mut().find(|(k, _)| k == key) {
                Some(slot) => slot.1 = value,
                None => st.build_args.push((key.to_string(), value)),
            }
        }
        st.history(format!("ARG {}", parts.join(" ")), false);
        Ok(())
    }

    fn cmd(
        &mut self,
        st: &mut StageState,
        is_cmd: bool,
        command: &ins::Command,
    ) -> Result<(), LowerError> {
        let args = match command {
            ins::Command::Exec(argv) => argv.clone(),
            ins::Command::Shell(text) => {
                let mut shell = st
                    .config
                    .shell
                    .clone()
                    .unwrap_or_else(|| DEFAULT_SHELL.iter().map(|s| s.to_string()).collect());
                shell.push(text.clone());
                shell
            }
        };
        let shown = gofmt::quote_list(&args);
        if is_cmd {
            st.config.cmd = Some(args);
            st.config.args_escaped = true;
            st.cmd_set = true;
            st.history(format!("CMD {shown}"), false);
        } else {
            st.config.entrypoint = Some(args);
            if !st.cmd_set {
                st.config.cmd = None;
            }
            st.history(format!("ENTRYPOINT {shown}"), false);
        }
        Ok(())
    }

    fn expose(
        &mut self,
        st: &mut StageState,
        node: &Node,
        words: &[String],
    ) -> Result<(), LowerError> {
        let mut ports = Vec::new();
        for a in words {
            let span = node.word_span(a);
            let words = shell::process_words(a, &st.env, self.plan.escape)
                .map_err(|e| at(LowerError::from(e), span))?;
            for w in words {
                ports.extend(parse_port_spec(&w).map_err(|e| at(e, span))?);
            }
        }
        st.config.exposed_ports.extend(ports.iter().cloned());
        st.history(format!("EXPOSE {}", gofmt::plain_list(&ports)), false);
        Ok(())
    }

    fn healthcheck(
        &mut self,
        st: &mut StageState,
        check: &ins::Healthcheck,
    ) -> Result<(), LowerError> {
        let mut hc = Healthcheck::default();
        match check {
            ins::Healthcheck::None => hc.test = vec!["NONE".into()],
            ins::Healthcheck::Cmd {
                cmd,
                interval,
                timeout,
                start_period,
                start_interval,
                retries,
            } => {
                hc.test = match cmd {
                    ins::Command::Exec(argv) => std::iter::once("CMD".to_string())
                        .chain(argv.iter().cloned())
                        .collect(),
                    ins::Command::Shell(text) => vec!["CMD-SHELL".into(), text.clone()],
                };
                let nanos = |d: &Option<std::time::Duration>| {
                    d.map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
                };
                hc.interval = nanos(interval);
                hc.timeout = nanos(timeout);
                hc.start_period = nanos(start_period);
                hc.start_interval = nanos(start_interval);
                hc.retries = *retries;
            }
        }
        let d = |v: Option<u64>| gofmt::format_duration(v.unwrap_or(0));
        let msg = format!(
            "HEALTHCHECK {{Test:{} Interval:{} Timeout:{} StartPeriod:{} StartInterval:{} Retries:{}}}",
            gofmt::plain_list(&hc.test),
            d(hc.interval),
            d(hc.timeout),
            d(hc.start_period),
            d(hc.start_interval),
            hc.retries.unwrap_or(0)
        );
        st.config.healthcheck = Some(hc);
        st.history(msg, false);
        Ok(())
    }
}

/// Drops a flag/word span (for errors whose text is not in the Dockerfile).
fn strip_span(e: LowerError) -> LowerError {
    match e {
        LowerError::At { error, .. } => *error,
        e => e,
    }
}

fn unsupported(what: &str) -> LowerError {
    LowerError::Unsupported {
        what: what.to_string(),
    }
}

/// A heredoc's body (its exact bytes) with leading tabs removed when it is `<<-`.
fn heredoc_data(doc: &Heredoc) -> rbuild_types::ByteString {
    if !doc.chomp {
        return doc.content.clone();
    }
    let mut out = Vec::with_capacity(doc.content.len());
    for line in doc.content.as_bytes().split_inclusive(|&b| b == b'\n') {
        let tabs = line.iter().take_while(|&&b| b == b'\t').count();
        out.extend_from_slice(line.get(tabs..).unwrap_or_default());
    }
    out.into()
}

/// `[ip:][hostPort:]port[-end][/proto]` → `port/proto` entries (BuildKit's `parsePortSpec`).
fn parse_port_spec(spec: &str) -> Result<Vec<String>, LowerError> {
    let bad = |reason| LowerError::BadPort {
        spec: spec.to_string(),
        reason,
    };
    let container = spec.rsplit(':').next().unwrap_or(spec);
    let (port, proto) = container.split_once('/').unwrap_or((container, ""));
    if port.is_empty() {
        return Err(bad("no port specified"));
    }
    let proto = match proto.to_lowercase().as_str() {
        "" => "tcp".to_string(),
        p @ ("tcp" | "udp" | "sctp") => p.to_string(),
        _ => return Err(bad("invalid protocol")),
    };
    let (start, end) = match port.split_once('-') {
        None => {
            let p = port.parse::<u16>().map_err(|_| bad("invalid port"))?;
            (p, p)
        }
        Some((a, b)) => {
            let a = a.parse::<u16>().map_err(|_| bad("invalid port range"))?;
            let b = b.parse::<u16>().map_err(|_| bad("invalid port range"))?;
            if b < a {
                return Err(bad("invalid port range"));
            }
            (a, b)
        }
    };
    Ok((start..=end).map(|p| format!("{p}/{proto}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports() {
        assert_eq!(parse_port_spec("80").unwrap(), vec!["80/tcp"]);
        assert_eq!(
            parse_port_spec("8000-8001/UDP").unwrap(),
            vec!["8000/udp", "8001/udp"]
        );
        assert!(parse_port_spec("x").is_err());
        assert!(parse_port_spec("80/foo").is_err());
    }

    #[test]
    fn names_and_summaries() {
        assert_eq!(uppercase_cmd("copy a b"), "COPY a b");
    }
}
