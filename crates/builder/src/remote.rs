//! The `RemoteSource` of a build: `rbuild-oci`'s [`HttpRemote`] (the one HTTP client set-up,
//! following the configuration file's per-host settings, as the registry client does) joined
//! with `rbuild-context`'s [`GitCli`] (git through its safety rules). Git and URL contexts
//! (`inputs`) and the solver's `ADD <url>` / `ADD <git url>` get this one source.

use std::sync::Arc;

use rbuild_context::GitCli;
use rbuild_oci::http::HttpRemote;
use rbuild_oci::registry::RegistryConfig;
use rbuild_solver::ports::{RemoteSource, RemoteSources};

/// HTTP and git downloads, configured by `registries` (the `[registry."<host>"]` tables).
pub(crate) fn remote_source(registries: &RegistryConfig) -> Arc<dyn RemoteSource> {
    Arc::new(RemoteSources {
        http: Arc::new(HttpRemote::new(registries.clone())),
        git: Arc::new(GitCli),
    })
}
