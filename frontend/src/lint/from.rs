//! Rules of `FROM` and the global scope (BuildKit's `validateBaseImagesWithDefaultArgs` and
//! the checks in `buildDispatchStates`): a base image name that is invalid with the global
//! `ARG`s' defaults, variables in `FROM` no `ARG` declares, `--platform=$TARGETPLATFORM`,
//! and a constant `--platform`.

use std::collections::BTreeSet;

use rbuild_types::{ImageRef, Platform};

use super::{suggest, Linter, Rule};
use crate::ast::{Dockerfile, Node};
use crate::instructions::{from_node, Instruction, Spanned};
use crate::lower::args;
use crate::lower::BuildOptions;
use crate::shell::{self, EnvList};

struct From<'a> {
    node: &'a Node,
    image: String,
    platform: Option<Spanned<String>>,
    name: Option<String>,
}

/// Runs the rules (the file converted without errors).
pub fn check(df: &Dockerfile, opts: &BuildOptions, linter: &mut Linter<'_>) {
    let escape = if df.escape == '\0' { '\\' } else { df.escape };
    let mut meta: Vec<(String, Option<String>)> = Vec::new();
    let mut froms: Vec<From<'_>> = Vec::new();
    for node in &df.instructions {
        match from_node(node) {
            Ok(Instruction::Arg(words)) if froms.is_empty() => meta.extend(words),
            Ok(Instruction::From {
                image,
                platform,
                alias,
            }) => froms.push(From {
                node,
                image,
                platform,
                name: alias,
            }),
            _ => {}
        }
    }
    let Some(last) = froms.last() else {
        return;
    };
    let target = opts.target.clone().or_else(|| last.name.clone());
    let platform_args = args::platform_args(
        &Platform::host(),
        &opts.platform,
        target.as_deref().unwrap_or_default(),
    );

    // With the defaults only (no --build-arg), is every base name still valid?
    if let Some(defaults) = meta_args(&platform_args, &meta, None, escape) {
        for f in &froms {
            let Ok(name) = shell::process_word(&f.image, &EnvList(&defaults), escape) else {
                break;
            };
            if ImageRef::parse(&name).is_err() {
                linter.report(
                    Rule::InvalidDefaultArgInFrom,
                    format!(
                        "Default value for ARG {} results in empty or invalid base image name",
                        f.image
                    ),
                    f.node,
                    f.node.word_span(&f.image),
                );
            }
        }
    }

    let Some(global) = meta_args(&platform_args, &meta, Some(opts), escape) else {
        return;
    };
    let mut keys: BTreeSet<&str> = global
        .iter()
        .map(|kv| kv.split_once('=').map_or(kv.as_str(), |(k, _)| k))
        .collect();
    keys.extend(meta.iter().map(|(k, _)| k.as_str()));
    // BuildKit also predefines the OS versions (empty on Linux).
    keys.extend(["BUILDOSVERSION", "TARGETOSVERSION"]);
    let env = EnvList(&global);
    for f in &froms {
        if let Ok(e) = shell::expand(&f.image, &env, escape) {
            undeclared(&e.unmatched, &keys, f.node, linter);
        }
        let Some(p) = &f.platform else {
            continue;
        };
        let Ok(e) = shell::expand(&p.value, &env, escape) else {
            continue;
        };
        undeclared(&e.unmatched, &keys, f.node, linter);
        if e.matched.len() == 1
            && e.unmatched.is_empty()
            && e.matched.contains("TARGETPLATFORM")
            && args::get(&global, "TARGETPLATFORM") == Some(e.word.as_str())
        {
            linter.report(
                Rule::RedundantTargetPlatform,
                format!(
                    "Setting platform to predefined {} in FROM is redundant as this is the default behavior",
                    p.value
                ),
                f.node,
                p.span,
            );
        }
        if e.matched.is_empty() && e.unmatched.is_empty() {
            if let Ok(parsed) = e.word.parse::<Platform>() {
                let name = f.name.as_deref().unwrap_or_default();
                if !name.contains(&parsed.os) && !name.contains(&parsed.architecture) {
                    linter.report(
                        Rule::FromPlatformFlagConstDisallowed,
                        format!(
                            "FROM --platform flag should not use constant value {:?}",
                            e.word
                        ),
                        f.node,
                        p.span,
                    );
                }
            }
        }
    }
}

/// The global scope: the automatic platform args, then each global `ARG` (its build arg
/// when `opts` gives one, else its default expanded). `None` when a default does not expand.
fn meta_args(
    platform_args: &[String],
    meta: &[(String, Option<String>)],
    opts: Option<&BuildOptions>,
    escape: char,
) -> Option<Vec<String>> {
    let mut env = platform_args.to_vec();
    for (key, default) in meta {
        let given = opts.and_then(|o| o.build_args.get(key));
        let value = match (given, default) {
            (Some(v), _) => Some(v.clone()),
            (None, Some(d)) => Some(shell::process_word(d, &EnvList(&env), escape).ok()?),
            (None, None) => None,
        };
        if let Some(v) = value {
            args::set(&mut env, key, &v);
        }
    }
    Some(env)
}

fn undeclared(
    unmatched: &BTreeSet<String>,
    keys: &BTreeSet<&str>,
    node: &Node,
    linter: &mut Linter<'_>,
) {
    for arg in unmatched {
        if keys.contains(arg.as_str()) {
            continue;
        }
        let mut message = format!("FROM argument '{arg}' is not declared");
        if let Some(s) = suggest::search(arg, keys.iter().copied()) {
            message.push_str(&format!(" (did you mean {s}?)"));
        }
        let span = super::dispatch::var_span(node, arg);
        linter.report(Rule::UndefinedArgInFrom, message, node, span);
    }
}
