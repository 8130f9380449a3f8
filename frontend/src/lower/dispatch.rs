//! Per-instruction lowering of the needed stages (BuildKit's `dispatch*` functions): vertices
//! for RUN/COPY/ADD/WORKDIR, image-config changes and history entries for the rest.

use std::collections::BTreeMap;

use rbuild_graph::{
    CopyAction, ExecOp, FileAction, FileOp, Graph, Healthcheck, HistoryEntry, ImageConfig,
    MkdirAction, MkfileAction, NetworkMode, Op, VertexId,
};
use rbuild_types::{ImageRef, Platform, Span};

use super::args;
use super::builder::Builder;
use super::error::LowerError;
use super::flags::Flags;
use super::gofmt;
use super::paths;
use super::plan::{Plan, StageBase, StageSource};
use crate::ast::{Heredoc, Node};
use crate::diagnostics::{Diagnostic, Diagnostics};
use crate::shell::{self, EnvList, LexOptions};

/// The `comment` of every history entry BuildKit writes.
pub const HISTORY_COMMENT: &str = "buildkit.dockerfile.v0";

/// The shell of shell-form RUN/CMD/ENTRYPOINT when no `SHELL` is set.
const DEFAULT_SHELL: [&str; 2] = ["/bin/sh", "-c"];

/// The state of one stage while its instructions are dispatched.
#[derive(Clone, Debug)]
struct StageState {
    /// The vertex whose result is the stage's filesystem so far.
    root: VertexId,
    config: ImageConfig,
    /// The environment RUN sees and expansion uses: image env, ARGs and ENVs, in order.
    env: Vec<String>,
    cwd: String,
    user: String,
    /// `ARG`s in scope (`(name, value)`), inherited by stages built `FROM` this one.
    build_args: Vec<(String, Option<String>)>,
    /// A CMD was set in this stage (ENTRYPOINT then keeps it).
    cmd_set: bool,
    cmd_total: usize,
    cmd_index: usize,
    display: String,
    ignore_cache: bool,
    /// An ONBUILD trigger is being dispatched (progress names say `ONBUILD`).
    in_onbuild: bool,
}

impl StageState {
    /// BuildKit's progress prefix: `[stage 2/4] ` (width padded), none for a stage without
    /// numbered steps.
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
/// `bases` holds the config of every image [`Plan::base_images`] lists.
pub fn lower(plan: &Plan, bases: &BTreeMap<ImageRef, ImageConfig>) -> Result<Graph, Diagnostics> {
    let mut b = Builder::default();
    let mut done: Vec<Option<StageState>> = vec![None; plan.stages.len()];
    for &i in &plan.needed {
        let state = Lowerer {
            plan,
            bases,
            b: &mut b,
            done: &done,
        }
        .stage(i)?;
        done[i] = Some(state);
    }
    let Some(target) = done[plan.target].take() else {
        let span = plan.stages[plan.target].span;
        return Err(Diagnostics::single(Diagnostic::error(
            LowerError::UnknownTarget(plan.display_name(plan.target)).to_string(),
            span,
        )));
    };
    let mut image = target.config;
    image.labels.extend(
        plan.options
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone())),
    );
    Ok(b.finish(target.root, image))
}

struct Lowerer<'a> {
    plan: &'a Plan,
    bases: &'a BTreeMap<ImageRef, ImageConfig>,
    b: &'a mut Builder,
    done: &'a [Option<StageState>],
}

fn err_at(e: LowerError, span: Span) -> Diagnostics {
    Diagnostics::single(Diagnostic::error(e.to_string(), span))
}

impl Lowerer<'_> {
    fn stage(&mut self, i: usize) -> Result<StageState, Diagnostics> {
        let stage = &self.plan.stages[i];
        let span = stage.span;
        let platform = stage
            .platform
            .clone()
            .unwrap_or_else(|| self.plan.options.platform.clone());
        let cmd_total = usize::from(matches!(stage.base, StageBase::Image(_)))
            + stage
                .commands
                .iter()
                .filter(|c| matches!(c.keyword.as_str(), "add" | "copy" | "run" | "workdir"))
                .count();
        let display = self.plan.display_name(i);
        let ignore_cache = self.plan.options.is_no_cache(stage.name.as_deref());
        // ONBUILD triggers of the base (image or stage) run first; they count as steps.
        let triggers: Vec<String> = match &stage.base {
            StageBase::Stage(j) => self.done[*j]
                .as_ref()
                .map(|b| b.config.on_build.clone())
                .unwrap_or_default(),
            StageBase::Image(r) => self
                .bases
                .get(r)
                .map(|c| c.on_build.clone())
                .unwrap_or_default(),
            StageBase::Scratch => Vec::new(),
        };
        let cmd_total = cmd_total + triggers.len();
        let mut st = match &stage.base {
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
                    ignore_cache,
                    ..base
                }
            }
            StageBase::Scratch => {
                let root = self.b.scratch();
                self.fresh(
                    root,
                    empty_image(&platform),
                    cmd_total,
                    display,
                    ignore_cache,
                )
            }
            StageBase::Image(r) => {
                let Some(config) = self.bases.get(r).cloned() else {
                    return Err(err_at(LowerError::MissingBase(r.clone()), span));
                };
                let mut st = self.fresh(VertexId(0), config, cmd_total, display, ignore_cache);
                let name = st.name(format!("FROM {r}"));
                st.root = self.b.image(r, &platform, name, span);
                st
            }
        };
        st.config.on_build.clear();
        for trigger in &triggers {
            let mut node = onbuild_node(trigger).map_err(|e| err_at(e, span))?;
            node.span = span;
            st.in_onbuild = true;
            self.dispatch(&mut st, &node, None)
                .map_err(|e| err_at(e, span))?;
            st.in_onbuild = false;
        }
        for (node, source) in stage.commands.iter().zip(&stage.sources) {
            self.dispatch(&mut st, node, source.as_ref())
                .map_err(|e| err_at(e, node.span))?;
        }
        Ok(st)
    }

    /// A stage state starting from an image config (BuildKit: PATH always set, WORKDIR/USER of
    /// the image applied without history).
    fn fresh(
        &self,
        root: VertexId,
        mut config: ImageConfig,
        cmd_total: usize,
        display: String,
        ignore_cache: bool,
    ) -> StageState {
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
            env: config.env.clone(),
            user: config.user.clone(),
            cwd,
            config,
            build_args: Vec::new(),
            cmd_set: false,
            cmd_total,
            cmd_index: 0,
            display,
            ignore_cache,
            in_onbuild: false,
        }
    }

    fn expand(&self, st: &StageState, word: &str) -> Result<String, LowerError> {
        Ok(shell::process_word(
            word,
            &EnvList(&st.env),
            self.plan.escape,
        )?)
    }

    /// The progress name of an instruction: its text with variables expanded.
    fn display(&self, st: &StageState, node: &Node, raw: bool) -> String {
        let opts = LexOptions {
            raw_quotes: raw,
            skip_unset: raw,
            skip_quotes: false,
        };
        let text = node.original.trim();
        let shown = shell::expand_with(text, &EnvList(&st.env), self.plan.escape, opts)
            .map(|e| e.word)
            .unwrap_or_else(|_| text.to_string());
        uppercase_cmd(&shown)
    }

    fn dispatch(
        &mut self,
        st: &mut StageState,
        node: &Node,
        source: Option<&StageSource>,
    ) -> Result<(), LowerError> {
        let kw = node.keyword.as_str();
        let flags = Flags::parse(kw, &node.flags)?;
        match kw {
            "run" => self.run(st, node, &flags),
            "copy" | "add" => self.copy(st, node, &flags, source),
            "workdir" => self.workdir(st, node),
            "env" => self.env(st, node),
            "arg" => self.arg(st, node),
            "label" => self.label(st, node),
            "cmd" | "entrypoint" => self.cmd(st, node),
            "user" => {
                let user = self.expand(st, first(node, "USER", "exactly one argument")?)?;
                st.user.clone_from(&user);
                st.config.user.clone_from(&user);
                st.history(format!("USER {user}"), false);
                Ok(())
            }
            "expose" => self.expose(st, node),
            "volume" => {
                let mut vols = Vec::new();
                for a in &node.args {
                    let v = self.expand(st, a)?;
                    if v.is_empty() {
                        return Err(LowerError::EmptyVolume);
                    }
                    vols.push(v);
                }
                if vols.is_empty() {
                    return Err(LowerError::MissingArgs {
                        keyword: "VOLUME",
                        what: "at least one argument",
                    });
                }
                st.config.volumes.extend(vols.iter().cloned());
                st.history(format!("VOLUME {}", gofmt::plain_list(&vols)), false);
                Ok(())
            }
            "stopsignal" => {
                let sig = self.expand(st, first(node, "STOPSIGNAL", "one argument")?)?;
                st.config.stop_signal = Some(sig.clone());
                st.history(format!("STOPSIGNAL {sig}"), false);
                Ok(())
            }
            "shell" => {
                if !node.json_form {
                    return Err(LowerError::NotJson("SHELL"));
                }
                if node.args.is_empty() {
                    return Err(LowerError::MissingArgs {
                        keyword: "SHELL",
                        what: "at least one argument",
                    });
                }
                st.config.shell = Some(node.args.clone());
                st.history(format!("SHELL {}", gofmt::plain_list(&node.args)), false);
                Ok(())
            }
            "healthcheck" => self.healthcheck(st, node, &flags),
            "maintainer" => {
                let who = first(node, "MAINTAINER", "exactly one argument")?;
                st.history(format!("MAINTAINER {who}"), false);
                Ok(())
            }
            "onbuild" => {
                let text = node.original.trim();
                let expr = text
                    .get(..7)
                    .filter(|p| p.eq_ignore_ascii_case("onbuild"))
                    .map_or(text, |_| text[7..].trim_start());
                st.config.on_build.push(expr.to_string());
                Ok(())
            }
            other => Err(LowerError::UnknownInstruction(other.to_uppercase())),
        }
    }

    fn run(&mut self, st: &mut StageState, node: &Node, flags: &Flags) -> Result<(), LowerError> {
        if flags.has("mount") {
            return Err(unsupported("RUN --mount"));
        }
        if flags.has("device") {
            return Err(unsupported("RUN --device"));
        }
        match flags.value("security")? {
            None | Some("sandbox") => {}
            Some(other) => return Err(unsupported(&format!("RUN --security={other}"))),
        }
        let network = match flags.value("network")? {
            None => NetworkMode::Default,
            Some(n) => match self.expand(st, n)?.as_str() {
                "default" => NetworkMode::Default,
                "none" => NetworkMode::None,
                "host" => NetworkMode::Host,
                other => return Err(LowerError::BadNetwork(other.to_string())),
            },
        };
        if node.args.is_empty() {
            return Err(LowerError::MissingArgs {
                keyword: "RUN",
                what: "at least one argument",
            });
        }
        let mut name = self.display(st, node, true);
        let args = if node.json_form {
            node.args.clone()
        } else {
            let mut text = node.args.join(" ");
            if let Some(doc) = single_heredoc(&text, &node.heredocs) {
                let data = heredoc_data(doc);
                if data.starts_with("#!") {
                    return Err(unsupported("RUN with a heredoc script starting with #!"));
                }
                name.push_str(&format!(" ({})", summarize(&doc.content)));
                text = data;
            } else {
                for doc in &node.heredocs {
                    text.push('\n');
                    text.push_str(&doc.content);
                    text.push_str(&doc.name);
                }
            }
            let mut shell = st
                .config
                .shell
                .clone()
                .unwrap_or_else(|| DEFAULT_SHELL.iter().map(|s| s.to_string()).collect());
            shell.push(text);
            shell
        };
        let name = st.name(name);
        let exec = ExecOp {
            args: args.clone(),
            env: st.env.clone(),
            cwd: st.cwd.clone(),
            user: st.user.clone(),
            network,
        };
        st.root = self.b.add(
            Op::Exec(exec),
            vec![st.root],
            name,
            Some(node.span),
            st.ignore_cache,
        );
        st.history(format!("RUN {}", run_command_string(&args, st)), true);
        Ok(())
    }

    fn copy(
        &mut self,
        st: &mut StageState,
        node: &Node,
        flags: &Flags,
        source: Option<&StageSource>,
    ) -> Result<(), LowerError> {
        let is_add = node.keyword == "add";
        let kw = if is_add { "ADD" } else { "COPY" };
        for f in ["parents", "exclude", "checksum", "keep-git-dir", "unpack"] {
            if flags.has(f) {
                return Err(unsupported(&format!("{kw} --{f}")));
            }
        }
        let chown = flags
            .value("chown")?
            .map(|c| self.expand(st, c))
            .transpose()?
            .filter(|c| !c.is_empty());
        let chmod_text = flags
            .value("chmod")?
            .map(|c| self.expand(st, c))
            .transpose()?
            .filter(|c| !c.is_empty());
        let chmod = match &chmod_text {
            None => None,
            Some(c) => match u32::from_str_radix(c, 8) {
                Ok(m) if m <= 0o7777 => Some(m),
                Ok(_) => return Err(LowerError::BadChmod(c.clone())),
                Err(_) if c.chars().all(|ch| ch.is_ascii_digit()) => {
                    return Err(LowerError::BadChmod(c.clone()))
                }
                Err(_) => return Err(unsupported(&format!("{kw} --chmod={c} (symbolic modes)"))),
            },
        };
        // Sources and dest; heredoc words (`<<EOF`) become inline files.
        let mut docs = node.heredocs.iter();
        let mut srcs: Vec<String> = Vec::new();
        let mut inline: Vec<&Heredoc> = Vec::new();
        for word in &node.args {
            if !node.json_form && word.starts_with("<<") && !node.heredocs.is_empty() {
                if let Some(doc) = docs.next() {
                    inline.push(doc);
                    continue;
                }
            }
            srcs.push(self.expand(st, word)?);
        }
        let dest_raw = srcs.pop();
        let Some(dest_raw) = dest_raw else {
            return Err(LowerError::MissingArgs {
                keyword: if is_add { "ADD" } else { "COPY" },
                what: "at least two arguments",
            });
        };
        if srcs.is_empty() && inline.is_empty() {
            return Err(LowerError::MissingArgs {
                keyword: if is_add { "ADD" } else { "COPY" },
                what: "at least two arguments",
            });
        }
        for s in &srcs {
            if s.starts_with("http://") || s.starts_with("https://") || s.starts_with("git@") {
                return Err(unsupported(&format!("{kw} from a URL or git source ({s})")));
            }
        }
        let dest = paths::copy_dest(&st.cwd, &dest_raw);
        let name = self.display(st, node, false);
        let name = st.name(name);

        let mut inputs = vec![st.root];
        let mut actions = Vec::new();
        if !srcs.is_empty() {
            let (src_vertex, in_context) = match source {
                None => (self.b.context(), true),
                Some(StageSource::Context) => (self.b.context(), true),
                Some(StageSource::Stage(j)) => match &self.done[*j] {
                    Some(s) => (s.root, false),
                    None => {
                        return Err(LowerError::StageOrder {
                            from: self.plan.display_name(*j),
                            stage: st.display.clone(),
                        })
                    }
                },
                Some(StageSource::Image(r)) => {
                    let platform = self.plan.options.platform.clone();
                    (
                        self.b.image(r, &platform, format!("FROM {r}"), node.span),
                        false,
                    )
                }
            };
            inputs.push(src_vertex);
            for s in &srcs {
                actions.push(FileAction::Copy(CopyAction {
                    source: 1,
                    src: if in_context {
                        paths::context_src(s)
                    } else {
                        paths::fs_src(s)
                    },
                    dest: dest.clone(),
                    chown: chown.clone(),
                    chmod,
                    allow_empty_wildcard: paths::has_wildcards(s),
                }));
            }
        }
        for doc in &inline {
            let mut data = heredoc_data(doc);
            if doc.expand {
                let opts = LexOptions {
                    skip_quotes: true,
                    ..LexOptions::default()
                };
                data = shell::expand_with(&data, &EnvList(&st.env), self.plan.escape, opts)
                    .map(|e| e.word)
                    .unwrap_or(data);
            }
            let path = if dest.ends_with('/') {
                format!("{dest}{}", doc.name)
            } else {
                dest.clone()
            };
            actions.push(FileAction::Mkfile(MkfileAction {
                path,
                data: data.into_bytes(),
                mode: chmod.unwrap_or(0o644),
                chown: chown.clone(),
            }));
        }
        st.root = self.b.add(
            Op::File(FileOp { actions }),
            inputs,
            name,
            Some(node.span),
            st.ignore_cache,
        );
        let mut msg = kw.to_string();
        if let Some(c) = &chown {
            msg.push_str(&format!(" --chown={c}"));
        }
        if let Some(c) = &chmod_text {
            msg.push_str(&format!(" --chmod={c}"));
        }
        for s in &srcs {
            msg.push_str(&format!(" {s}"));
        }
        for d in &inline {
            msg.push_str(&format!(" <<{}", d.name));
        }
        msg.push_str(&format!(" {dest_raw}"));
        st.history(msg, true);
        Ok(())
    }

    fn workdir(&mut self, st: &mut StageState, node: &Node) -> Result<(), LowerError> {
        let requested = self.expand(st, first(node, "WORKDIR", "exactly one argument")?)?;
        if requested.is_empty() {
            return Err(LowerError::EmptyWorkdir);
        }
        let wd = paths::workdir(&st.config.working_dir, &requested);
        st.config.working_dir.clone_from(&wd);
        st.cwd.clone_from(&wd);
        let layer = wd != "/";
        if layer {
            let name = self.display(st, node, false);
            let name = st.name(name);
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
                name,
                Some(node.span),
                false,
            );
        }
        st.history(format!("WORKDIR {wd}"), layer);
        Ok(())
    }

    /// `ENV`/`LABEL` key-value triples `(key, value, separator)`, all expanded against the
    /// environment before the instruction.
    fn pairs(
        &self,
        st: &StageState,
        node: &Node,
        keyword: &'static str,
    ) -> Result<Vec<(String, String)>, LowerError> {
        if node.args.is_empty() || !node.args.chunks_exact(3).remainder().is_empty() {
            return Err(LowerError::BadKeyValues { keyword });
        }
        node.args
            .chunks(3)
            .map(|c| Ok((self.expand(st, &c[0])?, self.expand(st, &c[1])?)))
            .collect()
    }

    fn env(&mut self, st: &mut StageState, node: &Node) -> Result<(), LowerError> {
        let pairs = self.pairs(st, node, "ENV")?;
        let mut msg = "ENV".to_string();
        for (k, v) in pairs {
            msg.push_str(&format!(" {k}={v}"));
            args::set(&mut st.env, &k, &v);
            args::set(&mut st.config.env, &k, &v);
        }
        st.history(msg, false);
        Ok(())
    }

    fn label(&mut self, st: &mut StageState, node: &Node) -> Result<(), LowerError> {
        let pairs = self.pairs(st, node, "LABEL")?;
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
    fn arg(&mut self, st: &mut StageState, node: &Node) -> Result<(), LowerError> {
        if node.args.is_empty() {
            return Err(LowerError::MissingArgs {
                keyword: "ARG",
                what: "at least one argument",
            });
        }
        let mut parts = Vec::new();
        for word in &node.args {
            let (key, default) = args::split_arg(word);
            let value = match (self.plan.options.build_args.get(key), default) {
                (Some(v), _) => Some(v.clone()),
                (None, Some(d)) => Some(self.expand(st, d)?),
                (None, None) => args::get(&self.plan.global_args, key).map(str::to_string),
            };
            if let Some(v) = &value {
                args::set(&mut st.env, key, v);
            }
            parts.push(match &value {
                Some(v) => format!("{key}={v}"),
                None => key.to_string(),
            });
            st.build_args.push((key.to_string(), value));
        }
        st.history(format!("ARG {}", parts.join(" ")), false);
        Ok(())
    }

    fn cmd(&mut self, st: &mut StageState, node: &Node) -> Result<(), LowerError> {
        let is_cmd = node.keyword == "cmd";
        let args = if node.json_form {
            node.args.clone()
        } else {
            let mut shell = st
                .config
                .shell
                .clone()
                .unwrap_or_else(|| DEFAULT_SHELL.iter().map(|s| s.to_string()).collect());
            shell.push(node.args.join(" "));
            shell
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

    fn expose(&mut self, st: &mut StageState, node: &Node) -> Result<(), LowerError> {
        let mut ports = Vec::new();
        for a in &node.args {
            let words = shell::process_words(a, &EnvList(&st.env), self.plan.escape)?;
            for w in words {
                ports.extend(parse_port_spec(&w)?);
            }
        }
        st.config.exposed_ports.extend(ports.iter().cloned());
        st.history(format!("EXPOSE {}", gofmt::plain_list(&ports)), false);
        Ok(())
    }

    fn healthcheck(
        &mut self,
        st: &mut StageState,
        node: &Node,
        flags: &Flags,
    ) -> Result<(), LowerError> {
        let kind = first(node, "HEALTHCHECK", "CMD or NONE")?.to_uppercase();
        let mut hc = Healthcheck::default();
        match kind.as_str() {
            "NONE" => hc.test = vec!["NONE".into()],
            "CMD" => {
                let rest = &node.args[1..];
                if rest.is_empty() {
                    return Err(LowerError::MissingArgs {
                        keyword: "HEALTHCHECK",
                        what: "a command after CMD",
                    });
                }
                hc.test = if node.json_form {
                    std::iter::once("CMD".to_string())
                        .chain(rest.iter().cloned())
                        .collect()
                } else {
                    vec!["CMD-SHELL".into(), rest.join(" ")]
                };
                let dur = |name: &str| -> Result<Option<u64>, LowerError> {
                    flags
                        .value(name)?
                        .map(|v| {
                            gofmt::parse_duration(v).ok_or_else(|| LowerError::BadDuration {
                                flag: name.to_string(),
                                value: v.to_string(),
                            })
                        })
                        .transpose()
                };
                hc.interval = dur("interval")?;
                hc.timeout = dur("timeout")?;
                hc.start_period = dur("start-period")?;
                hc.start_interval = dur("start-interval")?;
                hc.retries = flags
                    .value("retries")?
                    .map(|r| {
                        r.parse::<u32>()
                            .map_err(|_| LowerError::BadRetries(r.into()))
                    })
                    .transpose()?;
            }
            other => return Err(LowerError::BadHealthcheck(other.to_string())),
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

/// Parses one ONBUILD trigger (`RUN make`) into its instruction. Triggers that read another
/// stage or image (`COPY --from`) are not supported yet.
fn onbuild_node(trigger: &str) -> Result<Node, LowerError> {
    let bad = |reason: &str| LowerError::BadTrigger {
        trigger: trigger.to_string(),
        reason: reason.to_string(),
    };
    let df = crate::parse(trigger.as_bytes()).map_err(|d| bad(&d.to_string()))?;
    let [node] = <[Node; 1]>::try_from(df.instructions)
        .map_err(|_| bad("onbuild trigger should be a single expression"))?;
    if matches!(node.keyword.as_str(), "onbuild" | "from" | "maintainer") {
        return Err(bad("not allowed as an ONBUILD trigger"));
    }
    if node.flags.iter().any(|f| f.starts_with("--from")) {
        return Err(unsupported("an ONBUILD trigger with COPY --from"));
    }
    Ok(node)
}

fn unsupported(what: &str) -> LowerError {
    LowerError::Unsupported {
        what: what.to_string(),
    }
}

fn first<'n>(
    node: &'n Node,
    keyword: &'static str,
    what: &'static str,
) -> Result<&'n str, LowerError> {
    node.args
        .first()
        .map(String::as_str)
        .ok_or(LowerError::MissingArgs { keyword, what })
}

/// BuildKit's `runCommandString`: `|N K=V … argv…` when ARGs are in scope.
fn run_command_string(argv: &[String], st: &StageState) -> String {
    let mut seen: Vec<(String, String)> = Vec::new();
    for (k, v) in &st.build_args {
        let value = args::get(&st.env, k)
            .map(str::to_string)
            .unwrap_or_else(|| v.clone().unwrap_or_default());
        match seen.iter_mut().find(|(sk, _)| sk == k) {
            Some(slot) => slot.1 = value,
            None => seen.push((k.clone(), value)),
        }
    }
    let mut parts: Vec<String> = Vec::new();
    if !seen.is_empty() {
        parts.push(format!("|{}", seen.len()));
        parts.extend(seen.into_iter().map(|(k, v)| format!("{k}={v}")));
    }
    parts.extend(argv.iter().cloned());
    parts.join(" ")
}

/// A heredoc's body with leading tabs removed when it is `<<-`.
fn heredoc_data(doc: &Heredoc) -> String {
    if !doc.chomp {
        return doc.content.clone();
    }
    doc.content
        .split_inclusive('\n')
        .map(|l| l.trim_start_matches('\t'))
        .collect()
}

/// The heredoc when the whole RUN command is just `<<NAME` (possibly `<<-`, quoted).
fn single_heredoc<'d>(cmd: &str, docs: &'d [Heredoc]) -> Option<&'d Heredoc> {
    let [doc] = docs else { return None };
    let rest = cmd.trim().strip_prefix("<<")?;
    let rest = rest.strip_prefix('-').unwrap_or(rest).trim_start();
    let name = rest.trim_matches(|c| c == '"' || c == '\'');
    (name == doc.name).then_some(doc)
}

/// The first line of a heredoc, with `...` when there are more (BuildKit's `summarizeHeredoc`).
fn summarize(doc: &str) -> String {
    let doc = doc.trim();
    let mut lines = doc.split('\n');
    let first = lines.next().unwrap_or_default().trim_end_matches('\r');
    if lines.next().is_some() {
        format!("{first}...")
    } else {
        first.to_string()
    }
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
        assert_eq!(summarize("echo a\necho b\n"), "echo a...");
        assert_eq!(summarize("echo a\n"), "echo a");
    }
}
