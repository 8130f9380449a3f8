//! RUN: the command (shell or exec form, heredocs), `--network`, `--security` and
//! `--mount`s lowered to one `Exec` op (BuildKit's `dispatchRun`).
//!
//! A RUN whose whole command is one heredoc starting with `#!` runs that heredoc as a
//! script: BuildKit writes it with mode 0755 into a `Mkfile` on scratch, bind-mounts that
//! read-only at `/dev/pipes/` and runs `<shell> /dev/pipes/<NAME>`, so the script is never
//! part of the RUN's layer. The script mount comes before the `--mount`s in `ExecOp::mounts`.
//!
//! The command and heredoc bodies are bytes: what the Dockerfile holds reaches the command
//! unchanged, UTF-8 or not (BuildKit's runc spec turns such bytes into U+FFFD; its newer
//! protobuf LLB refuses them). Only the progress name and the history text, which are text
//! for people, show a stray byte as U+FFFD (as Go's `encoding/json` writes it).

use rbuild_graph::{BindMount, Mount as IrMount, SecurityMode};
use rbuild_types::ByteString;

use super::mounts::MountInputs;
use super::*;

/// Where BuildKit mounts a heredoc script (`#!` first line).
const SCRIPT_DIR: &str = "/dev/pipes";

impl Lowerer<'_> {
    /// `run` is an [`Instruction::Run`]; `node` gives the progress text and spans.
    pub(super) fn run(
        &mut self,
        st: &mut StageState,
        node: &Node,
        run: &Instruction,
    ) -> Result<(), LowerError> {
        let Instruction::Run {
            cmd,
            mounts,
            devices,
            network,
            security,
            heredocs,
        } = run
        else {
            return Err(LowerError::UnknownInstruction(run.keyword().into()));
        };
        // Mount values are expanded, then parsed and checked, as BuildKit does at dispatch.
        let mut parsed = Vec::with_capacity(mounts.len());
        for m in mounts {
            let mut expand = |w: &str| self.expand(st, w).map_err(|e| e.to_string());
            let mount = Mount::parse(&m.value, &mut expand).map_err(|source| {
                at(
                    ins::InstructionError::Mount {
                        value: m.value.clone(),
                        source,
                    },
                    m.span,
                )
            })?;
            parsed.push((mount, m));
        }
        if let Some(d) = devices.first() {
            return Err(at(unsupported("RUN --device"), d.span));
        }
        let security = match security.map(|s| s.value) {
            Some(Security::Insecure) => SecurityMode::Insecure,
            None | Some(Security::Sandbox) => SecurityMode::Sandbox,
        };
        // `--network=default` (or none given) is the build's mode (`--network` of the build).
        let network = match network.map(|n| n.value) {
            None | Some(Network::Default) => self.plan.options.network,
            Some(Network::None) => NetworkMode::None,
            Some(Network::Host) => NetworkMode::Host,
        };
        let mut name = self.run_display(st, node, &parsed);
        let mut inputs = MountInputs::new(st.root);
        let mut ir_mounts = Vec::new();
        let args: Vec<ByteString> = match cmd {
            ins::Command::Exec(argv) => argv.clone(),
            ins::Command::Shell(text) => {
                let mut text = text.clone();
                if let Some(doc) = text.to_str().and_then(|t| single_heredoc(t, heredocs)) {
                    let data = heredoc_data(doc);
                    if doc.content.as_bytes().starts_with(b"#!") {
                        // Expansion does not apply to a script (BuildKit ignores it too).
                        let script = self.script_vertex(&doc.name, data.into_bytes());
                        ir_mounts.push(IrMount::Bind(BindMount {
                            target: SCRIPT_DIR.to_string(),
                            source: inputs.index_of(script),
                            path: "/".to_string(),
                            readwrite: false,
                        }));
                        text = ByteString::from(paths::join(SCRIPT_DIR, &doc.name));
                    } else {
                        text = data;
                    }
                    name.push_str(&format!(" ({})", summarize(&doc.content.lossy())));
                } else {
                    for doc in heredocs {
                        text.push_str("\n");
                        text.push_bytes(doc.content.as_bytes());
                        text.push_str(&doc.name);
                    }
                }
                let mut shell: Vec<ByteString> = match &st.config.shell {
                    Some(shell) => shell.iter().map(|s| ByteString::from(s.as_str())).collect(),
                    None => DEFAULT_SHELL.iter().map(|&s| ByteString::from(s)).collect(),
                };
                shell.push(text);
                shell
            }
        };
        let mut ssh_count = 0;
        for (mount, flag) in &parsed {
            let lowered = self
                .lower_mount(st, node, mount, &mut inputs, &mut ssh_count)
                .map_err(|e| at(e, flag.span))?;
            ir_mounts.push(lowered);
        }
        let label = st.step(StepKind::Run, name);
        let exec = ExecOp {
            platform: st.platform.clone(),
            args: args.clone(),
            env: st.env.list().to_vec(),
            cwd: st.cwd.clone(),
            user: st.user.clone(),
            network,
            mounts: ir_mounts,
            security,
            // Proxy build args reach the command without an ARG line, outside the key.
            proxy_env: self.plan.options.proxy_env(),
            // `--add-host`, `--ulimit`, `--shm-size`: every RUN's, in the key (BuildKit's Meta).
            meta: self.plan.options.exec_meta.clone(),
        };
        st.root = self.b.add(
            Op::Exec(exec),
            inputs.into_inputs(),
            label,
            Some(node.span),
            st.ignore_cache,
        );
        st.history(format!("RUN {}", run_command_string(&args, st)), true);
        Ok(())
    }

    /// The progress name: the instruction with variables expanded, and the variables that
    /// `type=secret,env=NAME` mounts set shown as `****` (BuildKit's `withSecretEnvMask`).
    fn run_display(
        &self,
        st: &StageState,
        node: &Node,
        parsed: &[(Mount, &Spanned<String>)],
    ) -> String {
        let secret_envs: Vec<&str> = parsed
            .iter()
            .filter(|(m, _)| m.typ == MountType::Secret)
            .filter_map(|(m, _)| m.env.as_deref())
            .collect();
        if secret_envs.is_empty() {
            return self.display(st, node, true);
        }
        let mut masked = st.clone();
        for name in secret_envs {
            masked.env.set(name, "****");
        }
        self.display(&masked, node, true)
    }

    /// The scratch filesystem holding a heredoc script at `/<name>`, mode 0755.
    fn script_vertex(&mut self, name: &str, data: Vec<u8>) -> VertexId {
        let scratch = self.b.scratch();
        let mkfile = MkfileAction {
            path: paths::join("/", name),
            data,
            mode: 0o755,
            chown: None,
        };
        self.b.add(
            Op::File(FileOp {
                actions: vec![FileAction::Mkfile(mkfile)],
            }),
            vec![scratch],
            "[internal] preparing inline document",
            None,
            false,
        )
    }
}

/// BuildKit's `runCommandString`: `|N K=V … argv…` when ARGs are in scope. History is JSON
/// text: a byte of `argv` that is not UTF-8 shows as U+FFFD (the command itself keeps it).
fn run_command_string(argv: &[ByteString], st: &StageState) -> String {
    // Indexed once per RUN: a long Dockerfile has thousands of ARGs and ENVs in scope, and
    // a lookup per ARG in the lists would make lowering cubic.
    let env: HashMap<&str, &str> = st
        .env
        .list()
        .iter()
        .map(|kv| kv.split_once('=').unwrap_or((kv.as_str(), "")))
        .collect();
    let mut index: HashMap<&str, usize> = HashMap::new();
    let mut seen: Vec<(&str, String)> = Vec::new();
    for (k, v) in &st.build_args {
        let value = env
            .get(k.as_str())
            .map(|s| s.to_string())
            .unwrap_or_else(|| v.clone().unwrap_or_default());
        match index.get(k.as_str()) {
            Some(&i) => seen[i].1 = value,
            None => {
                index.insert(k, seen.len());
                seen.push((k, value));
            }
        }
    }
    let mut parts: Vec<String> = Vec::new();
    if !seen.is_empty() {
        parts.push(format!("|{}", seen.len()));
        parts.extend(seen.into_iter().map(|(k, v)| format!("{k}={v}")));
    }
    parts.extend(argv.iter().map(|a| a.lossy().into_owned()));
    parts.join(" ")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_and_single_heredocs() {
        assert_eq!(summarize("echo a\necho b\n"), "echo a...");
        assert_eq!(summarize("echo a\n"), "echo a");
        let doc = Heredoc {
            name: "EOF".into(),
            content: ByteString::from("#!/bin/sh\n"),
            expand: true,
            chomp: false,
            fd: 0,
        };
        let docs = [doc];
        assert!(single_heredoc("<<-'EOF'", &docs).is_some());
        assert!(single_heredoc("cat <<EOF", &docs).is_none());
    }
}
