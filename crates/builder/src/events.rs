//! What a build tells its caller while it runs. The builder never prints (only the binary
//! does, invariant 6): it sends [`BuildEvent`]s to the caller's [`EventSink`], and the caller
//! renders them (the binary as plain lines, JSON lines or a live view).

use std::sync::Arc;

use rbuild_cache::PruneReport;
use rbuild_context::ContextError;
use rbuild_frontend::lint::Lint;
use rbuild_oci::registry::{RetryNotice, RetryObserver, TransferEvent, TransferObserver};
use rbuild_solver::events::Event;

use crate::inputs::DockerfileSource;

/// Where a build's events go. Called from several threads.
pub type EventSink = Arc<dyn Fn(BuildEvent) + Send + Sync>;

/// One thing that happened during a build.
#[derive(Debug)]
pub enum BuildEvent {
    /// Progress of a step of the graph (started, cached, output, done, failed, ...).
    Step(Event),
    /// A step the builder performs itself, finished after `seconds` (BuildKit's `[internal]`
    /// lines: loading the build definition, the base images' metadata, exporting).
    Internal { name: String, seconds: f64 },
    /// Byte progress of one blob of a base-image pull or a `--push` (throttled by the
    /// registry client: a few events per blob and second, and each phase change).
    Transfer(TransferEvent),
    /// Something the user should know once, that does not stop the build (a rootless
    /// degradation: no subordinate ids, no overlayfs, no slirp4netns; a registry request
    /// retried, with its registry, repository, status and wait).
    Notice(String),
    /// Automatic garbage collection pruned the store down to `keep_storage` bytes.
    AutoGc {
        keep_storage: u64,
        report: PruneReport,
    },
    /// A problem after which the build went on.
    Warning(Warning),
    /// Violations of the build checks (BuildKit's lint rules, `# check=`), sorted by line,
    /// in `file` (a base image pulled for another platform is one: `InvalidBaseImagePlatform`).
    Checks {
        file: DockerfileSource,
        lints: Vec<Lint>,
    },
}

/// The registry client's retry observer that reports each retry as a [`BuildEvent::Notice`].
pub fn retry_notices(events: &EventSink) -> RetryObserver {
    let events = Arc::clone(events);
    Arc::new(move |notice: &RetryNotice| events(BuildEvent::Notice(notice.to_string())))
}

/// The registry client's transfer observer that reports each event as a
/// [`BuildEvent::Transfer`].
pub fn transfer_progress(events: &EventSink) -> TransferObserver {
    let events = Arc::clone(events);
    Arc::new(move |event: &TransferEvent| events(BuildEvent::Transfer(event.clone())))
}

/// Problems that do not fail a build.
#[derive(Debug, thiserror::Error)]
pub enum Warning {
    /// The context's stat cache could not be written (the next build re-reads more files).
    #[error("could not save the context stat cache: {0}")]
    StatCache(#[source] ContextError),
    /// Automatic garbage collection could not run.
    /// A `--cache-from` that cannot be read: the build goes on without it.
    #[error("cache import from {src}: {source}")]
    CacheImport {
        /// The directory or reference.
        src: String,
        #[source]
        source: rbuild_oci::cache::LocalCacheError,
    },
    /// A cache mount larger than `cache-mounts-max-size`, left out of a `--cache-to` (the rest
    /// of the export goes on).
    #[error("cache mount {id:?} not exported: it holds {size} bytes, over cache-mounts-max-size ({limit} bytes)")]
    CacheMountTooLarge { id: String, size: u64, limit: u64 },
    /// A `--cache-to` with `ignore-error=true` that failed.
    #[error("cache export (ignored): {0}")]
    CacheExport(#[source] rbuild_solver::ports::CacheExchangeError),
    #[error("automatic garbage collection: {0}")]
    AutoGc(#[source] crate::gc::GcError),
}
