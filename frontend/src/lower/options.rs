//! What the user asked for on the command line, as far as lowering is concerned.

use std::collections::{BTreeMap, BTreeSet};

use rbuild_graph::{ExecMeta, NetworkMode, ProxyEnv};
use rbuild_types::Platform;

/// Build options that change the graph.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuildOptions {
    /// `--build-arg K=V`: overrides ARG defaults (global and per stage).
    pub build_args: BTreeMap<String, String>,
    /// `--target`: the stage to build (case-insensitive); `None` = the last stage.
    pub target: Option<String>,
    /// The target platform (`TARGETPLATFORM`, and the platform of stages without `--platform`).
    pub platform: Platform,
    /// `--no-cache`: every RUN/COPY/ADD ignores cached results.
    pub no_cache: bool,
    /// `--no-cache-filter`: only these stages (by name) ignore cached results.
    pub no_cache_filter: Vec<String>,
    /// `--label K=V`: added to the final image config.
    pub labels: BTreeMap<String, String>,
    /// `--network`: the network of every RUN without `--network` (or with
    /// `--network=default`), as BuildKit's `llb.Network` default for the build.
    pub network: NetworkMode,
    /// `--build-context`: the keys ([`context_key`](super::named::context_key)) of the named
    /// contexts; what each one is, the [`Resolver`](super::Resolver) says when it is used.
    pub contexts: BTreeSet<String>,
    /// `--add-host`, `--ulimit`, `--shm-size`: given to every RUN.
    pub exec_meta: ExecMeta,
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions {
            build_args: BTreeMap::new(),
            target: None,
            platform: Platform::host(),
            no_cache: false,
            no_cache_filter: Vec::new(),
            labels: BTreeMap::new(),
            network: NetworkMode::Default,
            contexts: BTreeSet::new(),
            exec_meta: ExecMeta::default(),
        }
    }
}

impl BuildOptions {
    /// The proxy variables among the build args (BuildKit's predefined proxy ARGs), which
    /// every RUN gets without an `ARG` line.
    pub fn proxy_env(&self) -> ProxyEnv {
        ProxyEnv::from_build_args(
            self.build_args
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str())),
        )
    }

    /// Whether the stage named `name` (`None` for unnamed stages) ignores the cache.
    pub fn is_no_cache(&self, name: Option<&str>) -> bool {
        if self.no_cache {
            return true;
        }
        match name {
            Some(n) => self
                .no_cache_filter
                .iter()
                .any(|f| f.eq_ignore_ascii_case(n)),
            None => false,
        }
    }
}
