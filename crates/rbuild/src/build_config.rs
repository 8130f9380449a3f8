//! `rbuild build`'s flags → the builder's [`BuildConfig`], parsed and checked once, before
//! anything is read or built: every malformed value is a usage error naming its flag.

use std::collections::BTreeMap;
use std::path::Path;

use rbuild_builder::runtime::{parse_isolation, parse_snapshotter};
use rbuild_builder::{
    Annotations, BuildConfig, ContextSpec, DockerfileSpec, NamedSpec, Output, Runtime, Settings,
};
use rbuild_frontend::instructions::mount::ram_in_bytes;
use rbuild_frontend::lower::BuildOptions;
use rbuild_graph::{ExecMeta, HostIp, MetaError, NetworkMode, Ulimit};
use rbuild_types::{ImageRef, Platform, Privileges};

use crate::cache_flags::{parse_cache_from, parse_cache_to};
use crate::cli::{BuildArgs, NetworkArg};
use crate::report::CliError;
use crate::stdio::{refuse_terminal_stdout, TerminalRefusal};
use crate::usage::UsageError;

/// The config `args` ask for, building into the store at `store_root` with `privileges` (the
/// process's, detected at startup).
pub fn from_args(
    args: &BuildArgs,
    store_root: &Path,
    privileges: Privileges,
) -> Result<BuildConfig, CliError> {
    let mut outputs = args
        .outputs
        .iter()
        .map(|o| Output::parse(o).map_err(UsageError::from))
        .collect::<Result<Vec<_>, _>>()?;
    // `--load`: the store, which is already the output when no `-o` is given.
    if args.load == Some(true)
        && !outputs.is_empty()
        && !outputs.iter().any(|o| matches!(o, Output::Image { .. }))
    {
        outputs.push(Output::parse("type=image").map_err(UsageError::from)?);
    }
    let exec_meta = exec_meta(args)?;
    let mut annotations = Annotations::default();
    for a in &args.annotations {
        annotations.add(a).map_err(UsageError::from)?;
    }
    let build_args = key_values(&args.build_args, "build-arg")?;
    let labels = key_values(&args.labels, "label")?;
    let tags = args
        .tags
        .iter()
        .map(|t| {
            ImageRef::parse(t).map_err(|source| UsageError::Tag {
                tag: t.clone(),
                source,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    // `--platform a,b` (and repeated flags): several platforms make an index.
    let mut platforms: Vec<Platform> = Vec::new();
    for p in args.platform.iter().flat_map(|p| p.split(',')) {
        let p = p.trim().parse::<Platform>().map_err(UsageError::from)?;
        if !platforms.contains(&p) {
            platforms.push(p);
        }
    }
    let platform = platforms.first().cloned().unwrap_or_else(Platform::host);
    let mounts = crate::secrets::grants(args).map_err(UsageError::from)?;
    let runtime = Runtime::parse(args.runtime.as_deref()).map_err(UsageError::from)?;
    let isolation =
        parse_isolation(args.isolation.as_deref(), &runtime).map_err(UsageError::from)?;
    let snapshotter = parse_snapshotter(std::env::var("RBUILD_SNAPSHOTTER").ok().as_deref())
        .map_err(UsageError::from)?;
    let source_date_epoch = source_date_epoch(&build_args)?;
    let context = ContextSpec::parse(&args.context).map_err(UsageError::Context)?;
    let named_contexts = NamedSpec::parse_all(&args.build_contexts).map_err(UsageError::from)?;
    let dockerfile = match args.file.as_deref() {
        None => DockerfileSpec::Default,
        Some("-") => DockerfileSpec::Stdin,
        Some(f) => DockerfileSpec::Named(f.to_string()),
    };
    let cache_from = args
        .cache_from
        .iter()
        .map(|c| parse_cache_from(c).map_err(UsageError::from))
        .collect::<Result<Vec<_>, _>>()?;
    let cache_to = args
        .cache_to
        .iter()
        .map(|c| parse_cache_to(c).map_err(UsageError::from))
        .collect::<Result<Vec<_>, _>>()?;
    let settings = Settings::load()?;

    let mut config = BuildConfig::new(dockerfile, context, store_root.to_path_buf(), privileges);
    config.settings = settings;
    config.options = BuildOptions {
        build_args,
        target: args.target.clone(),
        platform,
        no_cache: args.no_cache,
        no_cache_filter: args.no_cache_filter.clone(),
        labels,
        network: match args.network {
            NetworkArg::Default => NetworkMode::Default,
            NetworkArg::None => NetworkMode::None,
            NetworkArg::Host => NetworkMode::Host,
        },
        // Set from `named_contexts` by the build.
        contexts: Default::default(),
        exec_meta,
    };
    config.named_contexts = named_contexts;
    config.tags = tags;
    config.outputs = outputs;
    config.push = args.push;
    config.pull = args.pull;
    config.iidfile = args.iidfile.clone();
    config.metadata_file = args.metadata_file.clone();
    config.source_date_epoch = source_date_epoch;
    config.explain_cache = args.explain_cache;
    config.jobs = args.jobs;
    config.runtime = runtime;
    config.run_limits = run_limits(args, &config.privileges)?;
    config.snapshotter = snapshotter;
    config.isolation = isolation;
    config.mounts = mounts;
    config.cache_from = cache_from;
    config.cache_to = cache_to;
    if platforms.len() > 1 {
        config.platforms = platforms;
    }
    config.annotations = annotations;
    // As buildx: `--attest` in order, then `--provenance` and `--sbom` (the later wins).
    for a in &args.attest {
        config.attestations.attest(a).map_err(UsageError::from)?;
    }
    if let Some(p) = &args.provenance {
        config
            .attestations
            .provenance(p)
            .map_err(UsageError::from)?;
    }
    if let Some(s) = &args.sbom {
        config.attestations.sbom(s).map_err(UsageError::from)?;
    }
    config.check().map_err(UsageError::from)?;
    if let Some(output) = config.outputs.iter().find(|o| o.to_stdout()) {
        refuse_terminal_stdout(TerminalRefusal::Output {
            kind: output.kind(),
        })
        .map_err(UsageError::from)?;
    }
    Ok(config)
}

/// `KEY=value` items of a repeatable flag; an empty KEY is a usage error (as in docker and
/// buildx: `--build-arg =x` names nothing).
fn key_values(
    items: &[String],
    flag: &'static str,
) -> Result<BTreeMap<String, String>, UsageError> {
    let mut out = BTreeMap::new();
    for item in items {
        let name = item.split_once('=').map_or(item.as_str(), |(k, _)| k);
        if name.is_empty() {
            return Err(UsageError::EmptyName {
                flag,
                item: item.clone(),
            });
        }
        match item.split_once('=') {
            Some((k, v)) => {
                out.insert(k.to_string(), v.to_string());
            }
            // `--build-arg NAME` takes the value from the environment, if set.
            None if flag == "build-arg" => {
                if let Ok(v) = std::env::var(item) {
                    out.insert(item.clone(), v);
                }
            }
            None => {
                return Err(UsageError::NotKeyValue {
                    flag,
                    item: item.clone(),
                })
            }
        }
    }
    Ok(out)
}

/// `--add-host`, `--ulimit`, `--shm-size`: what every RUN gets. (`--rm`, `--force-rm` are
/// accepted and ignored, as BuildKit does.)
fn exec_meta(args: &BuildArgs) -> Result<ExecMeta, UsageError> {
    fn meta_err<'a>(
        flag: &'static str,
        item: &'a str,
    ) -> impl FnOnce(MetaError) -> UsageError + 'a {
        move |source| UsageError::RunMeta {
            flag,
            item: item.to_string(),
            source,
        }
    }
    let extra_hosts = args
        .add_hosts
        .iter()
        .map(|h| h.parse::<HostIp>().map_err(meta_err("add-host", h)))
        .collect::<Result<Vec<_>, _>>()?;
    let ulimits = args
        .ulimits
        .iter()
        .map(|u| u.parse::<Ulimit>().map_err(meta_err("ulimit", u)))
        .collect::<Result<Vec<_>, _>>()?;
    let shm_size = match args.shm_size.as_deref() {
        None => None,
        // 0 is docker's default (64m).
        Some(s) => match ram_in_bytes(s) {
            Some(0) => None,
            Some(n) => Some(n),
            None => return Err(UsageError::ShmSize(s.to_string())),
        },
    };
    Ok(ExecMeta {
        extra_hosts,
        ulimits,
        shm_size,
    })
}

/// `--memory`, `--cpu-quota`, `--cpu-period`, `--cgroup-parent`: a cgroup per RUN, which only
/// root can make (a rootless build is refused rather than run without the limits).
fn run_limits(
    args: &BuildArgs,
    privileges: &rbuild_types::Privileges,
) -> Result<rbuild_sandbox::RunLimits, UsageError> {
    let memory = match args.memory.as_deref() {
        None => None,
        Some(s) => match ram_in_bytes(s) {
            // Below 6 MiB nothing starts (docker's minimum).
            Some(n) if n >= 6 << 20 => Some(n),
            _ => return Err(UsageError::Memory(s.to_string())),
        },
    };
    if let Some(q) = args.cpu_quota.filter(|q| *q != -1 && *q < 1000) {
        return Err(UsageError::RunLimits(format!(
            "--cpu-quota {q}: at least 1000 µs (or -1)"
        )));
    }
    if let Some(p) = args.cpu_period.filter(|p| !(1000..=1_000_000).contains(p)) {
        return Err(UsageError::RunLimits(format!(
            "--cpu-period {p}: between 1000 and 1000000 µs"
        )));
    }
    if let Some(parent) = args.cgroup_parent.as_deref() {
        let bad = parent.is_empty() || parent.split('/').any(|c| c == ".." || c == ".");
        if bad {
            return Err(UsageError::RunLimits(format!(
                "--cgroup-parent {parent:?}: a path of cgroup names, without . or .."
            )));
        }
    }
    let limits = rbuild_sandbox::RunLimits {
        memory,
        cpu_quota: args.cpu_quota,
        cpu_period: args.cpu_period,
        cgroup_parent: args.cgroup_parent.clone(),
    };
    if limits.any() && (privileges.is_rootless() || !privileges.can_chown()) {
        return Err(UsageError::RunLimits(
            "use of --memory, --cpu-quota, --cpu-period or --cgroup-parent: they need root (a \
             cgroup per RUN), and this build is rootless"
                .to_string(),
        ));
    }
    Ok(limits)
}

/// SOURCE_DATE_EPOCH from the build args (`--build-arg SOURCE_DATE_EPOCH[=…]` wins) or the
/// environment; `None` when unset or empty.
fn source_date_epoch(build_args: &BTreeMap<String, String>) -> Result<Option<u64>, UsageError> {
    let value = match build_args.get("SOURCE_DATE_EPOCH") {
        Some(v) => Some(v.clone()),
        None => std::env::var("SOURCE_DATE_EPOCH").ok(),
    };
    match value.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => v
            .parse()
            .map(Some)
            .map_err(|_| UsageError::Epoch(v.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn pairs_need_a_name() {
        let ok = key_values(&items(&["A=1", "B=", "C=x=y"]), "build-arg").unwrap();
        assert_eq!(ok["A"], "1");
        assert_eq!(ok["B"], "");
        assert_eq!(ok["C"], "x=y");
        for bad in ["=x", "=", ""] {
            let e = CliError::from(key_values(&items(&[bad]), "build-arg").unwrap_err());
            assert_eq!(e.exit_code(), 2, "{bad:?}");
            assert!(e.to_string().contains("--build-arg"), "{e}");
        }
        assert!(key_values(&items(&["=v"]), "label").is_err());
        assert!(key_values(&items(&["no-value"]), "label").is_err());
    }

    #[test]
    fn source_date_epoch_from_build_args() {
        let args = |v: &[(&str, &str)]| {
            v.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>()
        };
        assert_eq!(
            source_date_epoch(&args(&[("A", "1"), ("SOURCE_DATE_EPOCH", "1700000000")])).unwrap(),
            Some(1_700_000_000)
        );
        assert!(source_date_epoch(&args(&[("SOURCE_DATE_EPOCH", "yesterday")])).is_err());
        assert_eq!(
            source_date_epoch(&args(&[("SOURCE_DATE_EPOCH", "")])).unwrap(),
            None
        );
    }
}
