//! Results imported through the [`CacheExchange`] port (`--cache-from`): consulted when the
//! store's own cache index misses a key. A hit brings the step's layers into the store as
//! snapshots and records them in the cache index under the key, so the step is CACHED now and
//! the next build finds it locally.

use rbuild_cache::{CacheRecord, SnapshotId, Store};
use rbuild_types::Digest;

use crate::ports::{CacheExchange, CacheExchangeError};

/// The layers of `key` imported through `exchange`, or `None` when it has no result for it.
/// Blocking. An error means the exchange had a result but it could not be brought in (the
/// step then runs).
pub(crate) fn import_cached(
    store: &Store,
    exchange: &dyn CacheExchange,
    key: &Digest,
    name: &str,
    now_unix: u64,
) -> Result<Option<Vec<SnapshotId>>, ImportError> {
    let Some(layers) = exchange.lookup(key) else {
        return Ok(None);
    };
    let snapshots = exchange.import(&layers)?;
    let record = CacheRecord {
        layers: snapshots.clone(),
        created_unix: now_unix,
        name: name.to_string(),
        last_used_unix: now_unix,
    };
    store
        .index()
        .record_step(key, &record, None)
        .map_err(ImportError::Record)?;
    Ok(Some(snapshots))
}

/// Why an imported result could not be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ImportError {
    #[error(transparent)]
    Exchange(#[from] CacheExchangeError),
    #[error("recording the imported result in the cache index: {0}")]
    Record(#[source] rbuild_cache::CacheError),
}
