//! Rules that need each stage's state as BuildKit's dispatch has it: the environment words
//! are expanded in (`UndefinedVar`), the ARGs in scope, the shell, whether a WORKDIR was set
//! (inherited from a base stage), and the last CMD/ENTRYPOINT/HEALTHCHECK.
//!
//! Undefined variables are reported where BuildKit reports them (ENV and LABEL keys and
//! values, ARG defaults, COPY/ADD sources, destination, `--chown`, `--chmod`, ADD's
//! `--checksum`, the bodies of COPY/ADD heredocs that expand, `RUN --mount` values, WORKDIR,
//! USER, VOLUME, STOPSIGNAL); EXPOSE is expanded without reports; RUN commands, CMD,
//! ENTRYPOINT and HEALTHCHECK are left to the shell. A base image's env comes from its
//! config (`PATH` defaulted as BuildKit does), a base stage's from that stage.

use rbuild_graph::ImageConfig;
use rbuild_types::{path_clean, Span};

use super::{suggest, Ignored, Linter, Rule, Scope};
use crate::ast::{Heredoc, Node};
use crate::instructions::{Command, Instruction, Mount, Spanned};
use crate::lower::args::{self, DEFAULT_PATH};
use crate::lower::vars::Vars;
use crate::lower::{BaseConfigs, NamedContext, Plan, StageBase};
use crate::shell::{self, LexOptions};

/// Build args BuildKit never puts into the environment.
const NON_ENV_ARGS: [&str; 2] = ["BUILDKIT_SBOM_SCAN_CONTEXT", "BUILDKIT_SBOM_SCAN_STAGE"];

/// The state of one stage after its instructions.
#[derive(Clone, Debug, Default)]
struct State {
    env: Vars,
    build_args: Vec<String>,
    shell: bool,
    workdir_set: bool,
}

/// The last CMD, ENTRYPOINT and HEALTHCHECK of a stage so far.
#[derive(Default)]
struct Once<'a> {
    cmd: Option<&'a Node>,
    entrypoint: Option<&'a Node>,
    healthcheck: Option<&'a Node>,
}

/// Runs the rules over the stages of `scope`, in file order.
pub fn check(
    plan: &Plan,
    bases: &BaseConfigs,
    ignored: Option<&dyn Ignored>,
    scope: Scope,
    linter: &mut Linter<'_>,
) {
    let mut states: Vec<Option<State>> = vec![None; plan.stages.len()];
    for i in 0..plan.stages.len() {
        if scope == Scope::Needed && !plan.needed.contains(&i) {
            continue;
        }
        let mut st = initial_state(plan, bases, &states, i);
        let mut d = Dispatcher {
            plan,
            ignored,
            linter: &mut *linter,
            once: Once::default(),
        };
        for step in &plan.stages[i].commands {
            d.dispatch(&mut st, &step.instruction, &step.node);
        }
        states[i] = Some(st);
    }
}

fn initial_state(plan: &Plan, bases: &BaseConfigs, states: &[Option<State>], i: usize) -> State {
    let from_image = |config: Option<&ImageConfig>| {
        let mut st = State::default();
        if let Some(c) = config {
            st.env = Vars::from_list(c.env.clone());
            st.shell = c.shell.as_ref().is_some_and(|s| !s.is_empty());
        }
        if st.env.get("PATH").is_none() {
            st.env.set("PATH", DEFAULT_PATH);
        }
        st
    };
    let image = |r| bases.get(&(r, plan.stage_platform(i)));
    match &plan.stages[i].base {
        StageBase::Stage(j) => states[*j].clone().unwrap_or_default(),
        StageBase::Scratch => from_image(None),
        StageBase::Image(r) => from_image(image(r.clone())),
        StageBase::Named(key) => match plan.contexts.get(key) {
            Some(NamedContext::Image(r)) => from_image(image(r.clone())),
            _ => from_image(None),
        },
    }
}

struct Dispatcher<'p, 'l, 'c> {
    plan: &'p Plan,
    ignored: Option<&'p dyn Ignored>,
    linter: &'l mut Linter<'c>,
    once: Once<'p>,
}

impl<'p> Dispatcher<'p, '_, '_> {
    fn dispatch(&mut self, st: &mut State, ins: &Instruction, node: &'p Node) {
        let keyword = super::syntax::written_keyword(node).to_string();
        match ins {
            Instruction::Env(pairs) => {
                let pairs = self.expand_pairs(st, pairs, node);
                if legacy_key_value(node, self.plan.escape) {
                    self.legacy(&keyword, node);
                }
                for (k, v) in pairs {
                    self.secret("ENV", &k, node);
                    st.env.set(&k, &v);
                }
            }
            Instruction::Label(pairs) => {
                self.expand_pairs(st, pairs, node);
                if legacy_key_value(node, self.plan.escape) {
                    self.legacy(&keyword, node);
                }
            }
            Instruction::Arg(words) => {
                for (key, default) in words {
                    self.secret("ARG", key, node);
                    let value = match (self.plan.options.build_args.get(key), default) {
                        (Some(v), _) => Some(v.clone()),
                        (None, Some(d)) => self.expand(st, d, node),
                        (None, None) => args::get(&self.plan.global_args, key).map(str::to_string),
                    };
                    if let Some(v) = value {
                        if !NON_ENV_ARGS.contains(&key.as_str()) {
                            st.env.set(key, &v);
                        }
                    }
                    st.build_args.push(key.clone());
                }
            }
            Instruction::Workdir(path) => {
                let path = self.expand(st, path, node).unwrap_or_else(|| path.clone());
                if !st.workdir_set && !path.starts_with('/') {
                    self.linter.report(
                        Rule::WorkdirRelativePath,
                        format!(
                            "Relative workdir {path:?} can have unexpected results if the base image changes"
                        ),
                        node,
                        node.span,
                    );
                }
                st.workdir_set = true;
            }
            Instruction::Cmd(c) | Instruction::Entrypoint(c) => {
                let slot = if matches!(ins, Instruction::Cmd(_)) {
                    &mut self.once.cmd
                } else {
                    &mut self.once.entrypoint
                };
                let previous = slot.replace(node);
                self.used_once(previous, &keyword, node);
                if matches!(c, Command::Shell(_)) && !st.shell {
                    self.linter.report(
                        Rule::JsonArgsRecommended,
                        format!(
                            "JSON arguments recommended for {keyword} to prevent unintended behavior related to OS signals"
                        ),
                        node,
                        node.span,
                    );
                }
            }
            Instruction::Healthcheck(_) => {
                let previous = self.once.healthcheck.replace(node);
                self.used_once(previous, &keyword, node);
            }
            Instruction::Shell(words) => st.shell = !words.is_empty(),
            Instruction::Expose(ports) => {
                // Expanded into words, unset variables not reported (BuildKit's
                // dispatchExpose).
                for p in ports {
                    let words = shell::process_words(p, &st.env, self.plan.escape)
                        .unwrap_or_else(|_| vec![p.clone()]);
                    for port in words {
                        self.expose(&port, node);
                    }
                }
            }
            Instruction::Copy(c) => {
                self.expand_heredocs(st, &c.heredocs, node);
                let sources = self.expand_all(st, &c.sources, node);
                self.expand(st, &c.dest, node);
                self.expand_flags(st, [&c.chown, &c.chmod], node);
                if c.from.is_none() {
                    self.copy_ignored("Copy", &sources, node);
                }
            }
            Instruction::Add(a) => {
                self.expand_heredocs(st, &a.heredocs, node);
                let sources = self.expand_all(st, &a.sources, node);
                self.expand(st, &a.dest, node);
                self.expand_flags(st, [&a.chown, &a.chmod, &a.checksum], node);
                let local: Vec<String> = sources
                    .into_iter()
                    .filter(|s| !(s.contains("://") || s.starts_with("git@")))
                    .collect();
                self.copy_ignored("Add", &local, node);
            }
            Instruction::User(u) | Instruction::StopSignal(u) => {
                self.expand(st, u, node);
            }
            Instruction::Volume(vs) => {
                self.expand_all(st, vs, node);
            }
            Instruction::Run { mounts, .. } => {
                // Mount values are expanded (BuildKit's setMountState); the command is
                // the shell's.
                for m in mounts {
                    let mut values: Vec<String> = Vec::new();
                    let mut collect = |w: &str| {
                        values.push(w.to_string());
                        Ok::<String, String>(w.to_string())
                    };
                    let _ = Mount::parse(&m.value, &mut collect);
                    for v in values {
                        self.expand(st, &v, node);
                    }
                }
            }
            Instruction::Onbuild { .. } | Instruction::Maintainer(_) | Instruction::From { .. } => {
            }
        }
    }

    /// Expands `word` in the stage's environment, reporting undefined variables; `None`
    /// when it does not expand (lowering reports that error).
    fn expand(&mut self, st: &State, word: &str, node: &Node) -> Option<String> {
        self.expand_with(st, word, node, self.plan.escape, LexOptions::default())
    }

    /// [`Self::expand`] with another escape character and lexer options (heredoc bodies:
    /// `\\`, quotes as text, as BuildKit's `ExpandRaw`).
    fn expand_with(
        &mut self,
        st: &State,
        word: &str,
        node: &Node,
        escape: char,
        opts: LexOptions,
    ) -> Option<String> {
        let e = shell::expand_with(word, &st.env, escape, opts).ok()?;
        for var in &e.unmatched {
            if st.build_args.contains(var) || NON_ENV_ARGS.contains(&var.as_str()) {
                continue;
            }
            let keys = st
                .env
                .list()
                .iter()
                .map(|kv| kv.split_once('=').map_or(kv.as_str(), |(k, _)| k));
            let mut message = format!("Usage of undefined variable '${var}'");
            if let Some(s) = suggest::search(var, keys) {
                message.push_str(&format!(" (did you mean ${s}?)"));
            }
            self.linter
                .report(Rule::UndefinedVar, message, node, var_span(node, var));
        }
        Some(e.word)
    }

    /// The bodies of COPY/ADD heredoc sources that expand variables.
    fn expand_heredocs(&mut self, st: &State, docs: &[Heredoc], node: &Node) {
        let opts = LexOptions {
            skip_quotes: true,
            ..LexOptions::default()
        };
        for doc in docs.iter().filter(|d| d.expand) {
            let body = String::from_utf8_lossy(doc.content.as_bytes()).into_owned();
            self.expand_with(st, &body, node, '\\', opts);
        }
    }

    fn expand_all(&mut self, st: &State, words: &[String], node: &Node) -> Vec<String> {
        words
            .iter()
            .map(|w| self.expand(st, w, node).unwrap_or_else(|| w.clone()))
            .collect()
    }

    fn expand_flags<const N: usize>(
        &mut self,
        st: &State,
        flags: [&Option<Spanned<String>>; N],
        node: &Node,
    ) {
        for f in flags.into_iter().flatten() {
            self.expand(st, &f.value, node);
        }
    }

    fn expand_pairs(
        &mut self,
        st: &State,
        pairs: &[(String, String)],
        node: &Node,
    ) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| {
                let k = self.expand(st, k, node).unwrap_or_else(|| k.clone());
                let v = self.expand(st, v, node).unwrap_or_else(|| v.clone());
                (k, v)
            })
            .collect()
    }

    fn legacy(&mut self, keyword: &str, node: &Node) {
        self.linter.report(
            Rule::LegacyKeyValueFormat,
            format!("\"{keyword} key=value\" should be used instead of legacy \"{keyword} key value\" format"),
            node,
            node.span,
        );
    }

    /// `ARG`/`ENV` names that look like secrets (a `_`-separated part is a secret word and
    /// none is an allowed one), as BuildKit's two regular expressions decide.
    fn secret(&mut self, instruction: &str, key: &str, node: &Node) {
        const DENY: [&str; 10] = [
            "apikey",
            "auth",
            "credential",
            "credentials",
            "key",
            "password",
            "pword",
            "passwd",
            "secret",
            "token",
        ];
        const ALLOW: [&str; 3] = ["public", "file", "version"];
        let parts: Vec<String> = key.split('_').map(str::to_lowercase).collect();
        let any = |set: &[&str]| parts.iter().any(|p| set.contains(&p.as_str()));
        if any(&DENY) && !any(&ALLOW) {
            self.linter.report(
                Rule::SecretsUsedInArgOrEnv,
                format!(
                    "Do not use ARG or ENV instructions for sensitive data ({instruction} {key:?})"
                ),
                node,
                node.word_span(key),
            );
        }
    }

    /// A repeated CMD/ENTRYPOINT/HEALTHCHECK: reported at the earlier one (which is the one
    /// ignored), under the later one's `# check=`.
    fn used_once(&mut self, previous: Option<&Node>, keyword: &str, node: &Node) {
        if let Some(prev) = previous {
            self.linter.report_under(
                Rule::MultipleInstructionsDisallowed,
                format!(
                    "Multiple {keyword} instructions should not be used in the same stage because only the last one will be used"
                ),
                node,
                prev,
            );
        }
    }

    /// `[ip:][hostPort:]containerPort[/proto]`, split as BuildKit's `parsePort` does.
    fn expose(&mut self, raw: &str, node: &Node) {
        let parts: Vec<&str> = raw.split(':').collect();
        let n = parts.len();
        let (ip, host) = match n {
            1 => (String::new(), ""),
            2 => (String::new(), parts[0]),
            _ => (parts[..n - 2].join(":"), parts[n - 2]),
        };
        let container = parts[n - 1];
        let mut pp = container.split('/');
        let port = pp.next().unwrap_or_default();
        if port.is_empty() {
            return;
        }
        let proto = pp.next().filter(|p| !p.is_empty()).unwrap_or("tcp");
        let span = node.word_span(raw);
        if proto.to_lowercase() != proto {
            self.linter.report(
                Rule::ExposeProtoCasing,
                format!("Defined protocol '{raw}' in EXPOSE instruction should be lowercase"),
                node,
                span,
            );
        }
        if !ip.is_empty() || !host.is_empty() {
            self.linter.report(
                Rule::ExposeInvalidFormat,
                format!("EXPOSE instruction should not define an IP address or host-port mapping, found '{raw}'"),
                node,
                span,
            );
        }
    }

    fn copy_ignored(&mut self, cmd: &str, sources: &[String], node: &Node) {
        let Some(ignored) = self.ignored else {
            return;
        };
        for src in sources {
            let clean = path_clean::clean(src);
            if ignored.ignored(&clean) {
                self.linter.report(
                    Rule::CopyIgnoredFile,
                    format!("Attempting to {cmd} file {clean:?} that is excluded by .dockerignore"),
                    node,
                    node.word_span(src),
                );
            }
        }
    }
}

/// `ENV key value` / `LABEL key value`: the first word (quotes and escapes read as the
/// parser reads them) has no `=` (the parser's rule for the legacy form).
fn legacy_key_value(node: &Node, escape: char) -> bool {
    let text = node.original.trim_start();
    let rest = text
        .find(char::is_whitespace)
        .map_or("", |k| text[k..].trim_start());
    crate::parser::parse_words(rest, escape)
        .first()
        .is_some_and(|w| !w.contains('='))
}

/// Where `$name` or `${name` is in the instruction, else the instruction.
pub(super) fn var_span(node: &Node, name: &str) -> Span {
    let start = node.original.len() - node.original.trim_start().len();
    let kw = node.original[start..]
        .find(char::is_whitespace)
        .map_or(start, |k| start + k);
    let hay = &node.original[kw..];
    for needle in [format!("${{{name}"), format!("${name}")] {
        let mut from = 0;
        while let Some(k) = hay[from..].find(&needle) {
            let at = from + k;
            let after = hay[at + needle.len()..].chars().next();
            let whole = needle.starts_with("${")
                || !after.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
            if whole {
                return node.span_of_range(kw + at, kw + at + needle.len());
            }
            from = at + needle.len();
        }
    }
    node.span
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn var_span_finds_the_reference() {
        let df = crate::parse(b"FROM scratch\nCOPY $foo ${bar}x .\n").unwrap();
        let node = &df.instructions[1];
        assert_eq!(var_span(node, "foo").col, 6);
        assert_eq!(var_span(node, "bar").col, 11);
        assert_eq!(var_span(node, "fo"), node.span);
    }

    #[test]
    fn legacy_form_is_a_first_word_without_equals() {
        let df = crate::parse(
            b"FROM scratch\nENV a b\nENV a=b c=d\nLABEL k v=w\nLABEL \"a b\"=c\nENV a\\ b=c\n",
        )
        .unwrap();
        let r: Vec<bool> = df.instructions[1..]
            .iter()
            .map(|n| legacy_key_value(n, '\\'))
            .collect();
        assert_eq!(r, vec![true, false, true, false, false]);
    }
}
