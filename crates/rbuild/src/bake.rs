//! `rbuild bake`: the bake files are read and resolved by `rbuild-bake`; each target becomes
//! the flags of an `rbuild build` (parsed and checked by the same code, so a bad value is
//! the same usage error, named after its target), and the builder builds all of them in one
//! solve ([`rbuild_builder::build_all`]). This module only drives: it prints the notes about
//! ignored compose keys, `--print`'s JSON, and the progress.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use clap::Parser;
use rbuild_bake::{BakePlan, Override, Target};
use rbuild_builder::{BuildConfig, BuildIo, DockerfileSpec};
use rbuild_types::Privileges;

use crate::cli::{BakeArgs, Cli, Command, ProgressMode};
use crate::progress::Progress;
use crate::report::CliError;
use crate::usage::UsageError;

/// Runs `rbuild bake`.
pub fn run(args: BakeArgs, store_root: &Path, privileges: Privileges) -> Result<(), CliError> {
    let files = if args.files.is_empty() {
        rbuild_bake::default_files(Path::new("."))
            .map_err(UsageError::from)?
            .into_iter()
            .collect()
    } else {
        args.files.clone()
    };
    // buildx's built-in variables, then the environment.
    let local_platform = rbuild_types::Platform::host().to_string();
    let env = |name: &str| match name {
        "BAKE_CMD_CONTEXT" => Some(".".to_string()),
        "BAKE_LOCAL_PLATFORM" => Some(local_platform.clone()),
        _ => std::env::var(name).ok(),
    };
    let (definition, notes) = rbuild_bake::load(&files, &env).map_err(UsageError::from)?;
    for note in &notes {
        eprintln!("note: {note}");
    }
    let sets = args
        .sets
        .iter()
        .map(|s| Override::parse(s))
        .collect::<Result<Vec<_>, _>>()
        .map_err(UsageError::from)?;
    let plan = rbuild_bake::resolve(&definition, &args.targets, &sets).map_err(UsageError::from)?;
    if args.print {
        println!("{}", plan.to_json());
        return Ok(());
    }
    // Targets that use another's result (`target:NAME` contexts) wait for it: each wave is
    // one solve, and a result a later wave reads is named in the store for it (a name in the
    // reserved `.invalid` domain, removed at the end).
    let waves = plan.waves().map_err(UsageError::from)?;
    let needed: Vec<&str> = plan
        .targets
        .values()
        .flat_map(|t| t.target_contexts())
        .collect();
    let run_id = format!(
        "{}-{}",
        std::process::id(),
        rbuild_types::Digest::of(store_root.as_os_str().as_encoded_bytes())
            .hex()
            .get(..8)
            .unwrap_or("")
    );
    let temp_refs: BTreeMap<String, String> = plan
        .order
        .iter()
        .enumerate()
        .filter(|(_, n)| needed.contains(&n.as_str()))
        .map(|(i, n)| {
            (
                n.clone(),
                format!("rbuild-bake.invalid/target-{i}:{run_id}"),
            )
        })
        .collect();
    // Every target checked before anything is built.
    let configured = waves
        .iter()
        .map(|wave| configs(&plan, wave, &temp_refs, &args, store_root, privileges))
        .collect::<Result<Vec<_>, _>>()?;
    let progress = Arc::new(Progress::new(args.progress));
    let outcome = (|| -> Result<(), CliError> {
        for (wave, targets) in waves.iter().zip(configured) {
            let progress = Arc::clone(&progress);
            let io = BuildIo {
                events: Arc::new(move |event| progress.render(event)),
                stdin: None,
                stdout: Some(Box::new(std::io::stdout())),
            };
            let built = rbuild_builder::build_all(targets, io)?;
            let mut store = None;
            for (name, exported) in wave.iter().zip(&built) {
                if let Some(temp) = temp_refs.get(name) {
                    let store = match &mut store {
                        Some(s) => s,
                        None => store.insert(crate::store_cmds::open(store_root)?),
                    };
                    let full = crate::store_cmds::parse_ref(temp)?.to_string();
                    store.tags().set(&full, &exported.manifest_digest)?;
                }
            }
        }
        Ok(())
    })();
    if !temp_refs.is_empty() {
        if let Ok(store) = crate::store_cmds::open(store_root) {
            for temp in temp_refs.values() {
                if let Ok(r) = crate::store_cmds::parse_ref(temp) {
                    let _ = store.tags().remove(&r.to_string());
                }
            }
        }
    }
    outcome
}

/// The targets `names` of `plan`, in order, as checked build configs.
fn configs(
    plan: &BakePlan,
    names: &[String],
    temp_refs: &BTreeMap<String, String>,
    args: &BakeArgs,
    store_root: &Path,
    privileges: Privileges,
) -> Result<Vec<(String, BuildConfig)>, CliError> {
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let target = &plan.targets[name];
        let argv =
            build_argv(target, temp_refs, args).map_err(|message| UsageError::BakeTarget {
                target: name.clone(),
                message,
            })?;
        let parsed = Cli::try_parse_from(&argv).map_err(|e| UsageError::BakeTarget {
            target: name.clone(),
            message: first_line(&e.render().to_string()),
        })?;
        let Command::Build(build) = parsed.command else {
            unreachable!("the arguments start with `build`")
        };
        let mut config = crate::build_config::from_args(&build, store_root, privileges)?;
        if let Some(text) = &target.dockerfile_inline {
            config.dockerfile = DockerfileSpec::Bytes {
                name: "Dockerfile".into(),
                bytes: text.clone().into_bytes(),
            };
        }
        out.push((name.clone(), config));
    }
    Ok(out)
}

/// The `rbuild build` command line that builds `t` (with bake's own flags applied).
/// `temp_refs` names the store images of targets used as `target:` contexts.
fn build_argv(
    t: &Target,
    temp_refs: &BTreeMap<String, String>,
    args: &BakeArgs,
) -> Result<Vec<String>, String> {
    let mut v: Vec<String> = vec!["rbuild".into(), "build".into()];
    let mut flag = |name: &str, value: &str| {
        v.push(format!("--{name}={value}"));
    };
    let context = t.context.as_deref().unwrap_or(".");
    // An inline Dockerfile is set on the config (`configs`), not through a flag.
    if let Some(dockerfile) = t
        .dockerfile
        .as_ref()
        .filter(|_| t.dockerfile_inline.is_none())
    {
        // A bake file's Dockerfile is relative to the context directory.
        let remote = context.contains("://") || context.starts_with("git@");
        if remote || Path::new(dockerfile).is_absolute() {
            flag("file", dockerfile);
        } else {
            flag(
                "file",
                &Path::new(context).join(dockerfile).to_string_lossy(),
            );
        }
    }
    for (k, val) in t.args.iter().flatten() {
        flag("build-arg", &format!("{k}={val}"));
    }
    for (k, val) in t.labels.iter().flatten() {
        flag("label", &format!("{k}={val}"));
    }
    for (k, val) in t.contexts.iter().flatten() {
        match val.strip_prefix("target:") {
            Some(dep) => {
                let image = temp_refs
                    .get(dep)
                    .ok_or_else(|| format!("contexts.{k}: target {dep:?} was not built"))?;
                flag("build-context", &format!("{k}=docker-image://{image}"));
            }
            None => flag("build-context", &format!("{k}={val}")),
        }
    }
    let lists: [(&str, &Option<Vec<String>>); 11] = [
        ("tag", &t.tags),
        ("cache-from", &t.cache_from),
        ("cache-to", &t.cache_to),
        ("platform", &t.platforms),
        ("output", &t.output),
        ("no-cache-filter", &t.no_cache_filter),
        ("secret", &t.secret),
        ("ssh", &t.ssh),
        ("annotation", &t.annotations),
        ("ulimit", &t.ulimits),
        ("add-host", &t.extra_hosts),
    ];
    for (name, values) in lists {
        for value in values.iter().flatten() {
            flag(name, value);
        }
    }
    if let Some(stage) = &t.target {
        flag("target", stage);
    }
    if let Some(network) = &t.network {
        flag("network", network);
    }
    if let Some(size) = &t.shm_size {
        flag("shm-size", size);
    }
    if t.no_cache == Some(true) || args.no_cache {
        v.push("--no-cache".into());
    }
    if t.pull == Some(true) || args.pull {
        if t.target_contexts().next().is_some() {
            // `--pull` skips the store, where the other target's image is.
            return Err("pull with a target: context is not supported yet".into());
        }
        v.push("--pull".into());
    }
    if args.push {
        v.push("--push".into());
    }
    if let Some(load) = args.load {
        v.push(format!("--load={load}"));
    }
    // The progress is bake's; each target's build is quiet about nothing else.
    v.push(format!(
        "--progress={}",
        match args.progress {
            ProgressMode::Auto => "auto",
            ProgressMode::Tty => "tty",
            ProgressMode::Plain => "plain",
            ProgressMode::Json => "json",
            ProgressMode::Rawjson => "rawjson",
            ProgressMode::Quiet => "quiet",
        }
    ));
    v.push("--".into());
    v.push(context.to_string());
    Ok(v)
}

fn first_line(s: &str) -> String {
    s.lines()
        .next()
        .unwrap_or_default()
        .trim_start_matches("error: ")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bake_args(line: &str) -> BakeArgs {
        let words: Vec<&str> = line.split(' ').collect();
        match Cli::try_parse_from(words).unwrap().command {
            Command::Bake(b) => b,
            _ => panic!("not bake"),
        }
    }

    #[test]
    fn a_target_becomes_build_flags() {
        let t: Target = serde_json::from_str(
            r#"{"context": "web", "dockerfile": "Dockerfile.prod", "args": {"A": "1"},
                "tags": ["web:1"], "platforms": ["linux/amd64"], "target": "prod",
                "no-cache": true}"#,
        )
        .unwrap();
        let argv = build_argv(&t, &BTreeMap::new(), &bake_args("rbuild bake --push")).unwrap();
        let joined = argv.join(" ");
        for want in [
            "--file=web/Dockerfile.prod",
            "--build-arg=A=1",
            "--tag=web:1",
            "--platform=linux/amd64",
            "--target=prod",
            "--no-cache",
            "--push",
            "-- web",
        ] {
            assert!(joined.contains(want), "{want} in {joined}");
        }
        let parsed = Cli::try_parse_from(&argv).unwrap();
        assert!(matches!(parsed.command, Command::Build(_)));
    }
}
