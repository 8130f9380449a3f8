//! What a Dockerfile offers its caller without building (BuildKit's `outline` and `targets`
//! subrequests, `--call=outline|targets`): its stages with their descriptions, and for the
//! target the build arguments (name, value, description), secrets and SSH agents it uses.
//!
//! A description is the comment line right above the definition that starts with the
//! name and a space (`# build Compiles the app` above `FROM … AS build`, `# VERSION the
//! release` above `ARG VERSION`), as BuildKit's `getDocComment` reads it.

use std::collections::BTreeSet;

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

/// The outline of `plan`'s target: the build arguments its stages (and the stages they
/// need) declare or use in `FROM`, the secrets and SSH agents their `RUN --mount`s use,
/// each once, by line.
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

    // Global ARGs: those the FROMs of the needed stages use.
    let mut used_global: BTreeSet<String> = BTreeSet::new();
    for &i in &plan.needed {
        let st = &plan.stages[i];
        let Some(node) = df
            .instructions
            .iter()
            .find(|n| n.span.start == st.span.start)
        else {
            continue;
        };
        if let Ok(Instruction::From {
            image, platform, ..
        }) = from_node(node)
        {
            let env = EnvList(&plan.global_args);
            for word in std::iter::once(image).chain(platform.map(|p| p.value)) {
                if let Ok(e) = shell::expand(&word, &env, plan.escape) {
                    used_global.extend(e.matched);
                }
            }
        }
    }
    let mut out_args: Vec<OutlineArg> = Vec::new();
    let add_arg = |out: &mut Vec<OutlineArg>, a: OutlineArg| {
        if !out.iter().any(|o| o.name == a.name) {
            out.push(a);
        }
    };
    let value_of = |key: &str| {
        args::get(&plan.global_args, key)
            .unwrap_or_default()
            .to_string()
    };
    for node in df
        .instructions
        .iter()
        .take_while(|n| n.keyword != "from")
        .filter(|n| n.keyword == "arg")
    {
        if let Ok(Instruction::Arg(words)) = from_node(node) {
            for (key, _) in words.iter().filter(|(k, _)| used_global.contains(k)) {
                add_arg(
                    &mut out_args,
                    OutlineArg {
                        name: key.clone(),
                        value: value_of(key),
                        description: doc_comment(comments_of(node), key),
                        line: node.span.line,
                    },
                );
            }
        }
    }
    let mut secrets: Vec<OutlineMount> = Vec::new();
    let mut ssh: Vec<OutlineMount> = Vec::new();
    for &i in &plan.needed {
        for step in &plan.stages[i].commands {
            match &step.instruction {
                Instruction::Arg(words) => {
                    for (key, default) in words {
                        let value = match (plan.options.build_args.get(key), default) {
                            (Some(v), _) => v.clone(),
                            (None, Some(d)) => {
                                shell::process_word(d, &EnvList(&plan.global_args), plan.escape)
                                    .unwrap_or_else(|_| d.clone())
                            }
                            (None, None) => {
                                // Inherited from the global scope: shown as the global ARG.
                                if args::get(&plan.global_args, key).is_some() {
                                    continue;
                                }
                                String::new()
                            }
                        };
                        add_arg(
                            &mut out_args,
                            OutlineArg {
                                name: key.clone(),
                                value,
                                description: doc_comment(comments_of(&step.node), key),
                                line: step.node.span.line,
                            },
                        );
                    }
                }
                Instruction::Run { mounts, .. } => {
                    for m in mounts {
                        let mut keep = |w: &str| Ok::<String, String>(w.to_string());
                        let Ok(mount) = Mount::parse(&m.value, &mut keep) else {
                            continue;
                        };
                        let line = step.node.span.line;
                        let (list, name) = match mount.typ {
                            MountType::Secret => (
                                &mut secrets,
                                mount.id.clone().unwrap_or_else(|| {
                                    let t = mount.target.clone().unwrap_or_default();
                                    t.rsplit('/').next().unwrap_or_default().to_string()
                                }),
                            ),
                            MountType::Ssh => (
                                &mut ssh,
                                mount.id.clone().unwrap_or_else(|| "default".to_string()),
                            ),
                            _ => continue,
                        };
                        if !list.iter().any(|s| s.name == name) {
                            list.push(OutlineMount {
                                name,
                                required: mount.required,
                                line,
                            });
                        }
                    }
                }
                _ => {}
            }
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
