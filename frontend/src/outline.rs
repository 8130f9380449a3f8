//! What a Dockerfile offers its caller without building (BuildKit's `outline` and `targets`
//! subrequests, `--call=outline|targets`): its stages with their descriptions, and for the
//! target the build arguments (name, value, description), secrets and SSH agents it uses.
//!
//! A description is the comment line right above the definition that starts with the
//! name and a space (`# build Compiles the app` above `FROM … AS build`, `# VERSION the
//! release` above `ARG VERSION`), as BuildKit's `getDocComment` reads it.

use std::collections::{BTreeMap, BTreeSet};

use crate::ast::{Dockerfile, Node};
use crate::instructions::{from_node, Instruction, Mount, MountType};
use crate::lint::comments;
use crate::lower::{args, Plan};
use crate::shell::{self, EnvList};

/// One stage, as `--call=targets` lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// `AS name` as written (empty when unnamed).
    pub name: String,
    pub description: String,
    /// The last stage, built without `--target`.
    pub default: bool,
    /// The base as written.
    pub base: String,
    /// `--platform` as written.
    pub platform: String,
    /// The `FROM` line.
    pub line: u32,
}

/// A build argument the target uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutlineArg {
    pub name: String,
    /// Its value: the `--build-arg`, else the default (expanded); empty when none.
    pub value: String,
    pub description: String,
    /// The `ARG` line.
    pub line: u32,
}

/// A secret or SSH agent a `RUN --mount` of the target uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutlineMount {
    pub name: String,
    pub required: bool,
    pub line: u32,
}

/// What `--call=outline` shows for the target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outline {
    /// The target stage's name (empty when unnamed).
    pub name: String,
    pub description: String,
    pub args: Vec<OutlineArg>,
    pub secrets: Vec<OutlineMount>,
    pub ssh: Vec<OutlineMount>,
}

/// The comment among `comments` documenting `name` (`name description…`).
fn doc_comment(comments: &[String], name: &str) -> String {
    if name.is_empty() {
        return String::new();
    }
    let prefix = format!("{name} ");
    comments
        .iter()
        .find_map(|c| c.strip_prefix(&prefix))
        .unwrap_or_default()
        .to_string()
}

/// Every stage of `df` (parsed from `source`), in order.
pub fn targets(df: &Dockerfile, source: &[u8]) -> Vec<Target> {
    let comments = comments::preceding(df, source);
    let mut out: Vec<Target> = Vec::new();
    for (node, comments) in df.instructions.iter().zip(&comments) {
        if node.keyword != "from" {
            continue;
        }
        let name = node.args.get(2).cloned().unwrap_or_default();
        let platform = node
            .flags
            .iter()
            .find_map(|f| f.strip_prefix("--platform="))
            .unwrap_or_default()
            .to_string();
        out.push(Target {
            description: doc_comment(comments, &name.to_lowercase()),
            name: name.to_lowercase(),
            default: false,
            base: node.args.first().cloned().unwrap_or_default(),
            platform,
            line: node.span.line,
        });
    }
    if let Some(last) = out.last_mut() {
        last.default = true;
    }
    out
}

/// A global `ARG` as BuildKit's `buildMetaArgs` records it.
struct MetaArg {
    arg: OutlineArg,
    /// The args its default expanded (they count as used when it is).
    deps: BTreeSet<String>,
}

/// The global `ARG`s (before the first `FROM`), later ones replacing earlier ones, with the
/// value each has (its `--build-arg`, else its default expanded in the scope so far).
fn meta_args(df: &Dockerfile, comments: &[Vec<String>], plan: &Plan) -> BTreeMap<String, MetaArg> {
    let mut scope: Vec<String> = Vec::new();
    // The automatic platform args come first in the scope.
    for kv in &plan.global_args {
        if let Some((k, v)) = kv.split_once('=') {
            if k.starts_with("BUILD") || k.starts_with("TARGET") {
                args::set(&mut scope, k, v);
            }
        }
    }
    let mut out: BTreeMap<String, MetaArg> = BTreeMap::new();
    for (node, comments) in df.instructions.iter().zip(comments) {
        if node.keyword == "from" {
            break;
        }
        let Ok(Instruction::Arg(words)) = from_node(node) else {
            continue;
        };
        for (key, default) in words {
            let mut deps = BTreeSet::new();
            let value = match (plan.options.build_args.get(&key), &default) {
                (Some(v), _) => Some(v.clone()),
                (None, Some(d)) => shell::expand(d, &EnvList(&scope), plan.escape)
                    .ok()
                    .map(|e| {
                        deps = e.matched;
                        if deps.remove(&key) {
                            if let Some(old) = out.get(&key) {
                                deps.extend(old.deps.iter().cloned());
                            }
                        }
                        e.word
                    }),
                (None, None) => None,
            };
            if let Some(v) = &value {
                args::set(&mut scope, &key, v);
            }
            out.insert(
                key.clone(),
                MetaArg {
                    arg: OutlineArg {
                        name: key.clone(),
                        value: value.unwrap_or_default(),
                        description: doc_comment(comments, &key),
                        line: node.span.line,
                    },
                    deps,
                },
            );
        }
    }
    out
}

/// The outline of `plan`'s target (BuildKit's `dispatchState.Outline`): the build args its
/// stages use — each ARG a needed stage declares, each global ARG their `FROM`s expand, and
/// the global ARGs those defaults read — with the nearest definition (the target's first,
/// then its bases' and the stages it reads), the secrets and SSH agents their
/// `RUN --mount`s use; each once, by line.
pub fn outline(df: &Dockerfile, source: &[u8], plan: &Plan) -> Outline {
    let comments = comments::preceding(df, source);
    let comments_of = |node: &Node| {
        df.instructions
            .iter()
            .position(|n| n.span.start == node.span.start)
            .map(|i| comments[i].as_slice())
            .unwrap_or(&[])
    };
    let target = &plan.stages[plan.target];
    let target_from = df
        .instructions
        .iter()
        .find(|n| n.span.start == target.span.start);
    let name = target.name.clone().unwrap_or_default();
    let description = target_from.map_or_else(String::new, |n| doc_comment(comments_of(n), &name));
    let meta = meta_args(df, &comments, plan);

    // The target first, then the other needed stages, nearest first.
    let mut order: Vec<usize> = vec![plan.target];
    order.extend(plan.needed.iter().rev().filter(|&&i| i != plan.target));

    let mut out_args: Vec<OutlineArg> = Vec::new();
    let mut used: BTreeSet<String> = BTreeSet::new();
    let mut secrets: Vec<OutlineMount> = Vec::new();
    let mut ssh: Vec<OutlineMount> = Vec::new();
    for &i in &order {
        let st = &plan.stages[i];
        // The global ARGs its FROM expands.
        if let Some(node) = df
            .instructions
            .iter()
            .find(|n| n.span.start == st.span.start)
        {
            if let Ok(Instruction::From {
                image, platform, ..
            }) = from_node(node)
            {
                let env = EnvList(&plan.global_args);
                for word in std::iter::once(image).chain(platform.map(|p| p.value)) {
                    if let Ok(e) = shell::expand(&word, &env, plan.escape) {
                        used.extend(e.matched);
                    }
                }
            }
        }
        for step in &st.commands {
            match &step.instruction {
                Instruction::Arg(words) => {
                    for (key, default) in words {
                        used.insert(key.clone());
                        let value = match (plan.options.build_args.get(key), default) {
                            (Some(v), _) => v.clone(),
                            (None, Some(d)) => {
                                shell::process_word(d, &EnvList(&plan.global_args), plan.escape)
                                    .unwrap_or_else(|_| d.clone())
                            }
                            // Inherited from the global scope: shown as the global ARG.
                            (None, None) if meta.contains_key(key) => continue,
                            (None, None) => String::new(),
                        };
                        if !out_args.iter().any(|o| &o.name == key) {
                            out_args.push(OutlineArg {
                                name: key.clone(),
                                value,
                                description: doc_comment(comments_of(&step.node), key),
                                line: step.node.span.line,
                            });
                        }
                    }
                }
                Instruction::Run { mounts, .. } => {
                    for m in mounts {
                        add_mount(&m.value, step.node.span.line, &mut secrets, &mut ssh);
                    }
                }
                _ => {}
            }
        }
    }
    // Used global ARGs, and what their defaults read.
    let mut todo: Vec<String> = used.into_iter().collect();
    let mut seen: BTreeSet<String> = BTreeSet::new();
    while let Some(key) = todo.pop() {
        if !seen.insert(key.clone()) {
            continue;
        }
        let Some(m) = meta.get(&key) else {
            continue;
        };
        todo.extend(m.deps.iter().cloned());
        if !out_args.iter().any(|o| o.name == key) {
            out_args.push(m.arg.clone());
        }
    }
    out_args.sort_by_key(|a| a.line);
    secrets.sort_by_key(|s| s.line);
    ssh.sort_by_key(|s| s.line);
    Outline {
        name,
        description,
        args: out_args,
        secrets,
        ssh,
    }
}

/// Records the secret or SSH agent of one `RUN --mount` value (BuildKit's defaults: a
/// secret's id is its target's base name, an agent's `default`).
fn add_mount(raw: &str, line: u32, secrets: &mut Vec<OutlineMount>, ssh: &mut Vec<OutlineMount>) {
    let mut keep = |w: &str| Ok::<String, String>(w.to_string());
    let Ok(mount) = Mount::parse(raw, &mut keep) else {
        return;
    };
    let (list, name) = match mount.typ {
        MountType::Secret => (
            secrets,
            mount.id.clone().unwrap_or_else(|| {
                let t = mount.target.clone().unwrap_or_default();
                t.rsplit('/').next().unwrap_or_default().to_string()
            }),
        ),
        MountType::Ssh => (
            ssh,
            mount.id.clone().unwrap_or_else(|| "default".to_string()),
        ),
        _ => return,
    };
    if !list.iter().any(|s| s.name == name) {
        list.push(OutlineMount {
            name,
            required: mount.required,
            line,
        });
    }
}
