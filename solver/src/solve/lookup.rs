//! Where a keyed vertex's result comes from without running it: the store's cache index (a
//! result whose snapshots are all still there, unpacked or lazy), else the cache exchange
//! (`--cache-from`; a failed import is reported and the step runs). Split from `solve.rs`,
//! which schedules and keys.

use super::*;

impl Solver {
    /// The layers of `key` imported through the cache exchange, if it has them and they could
    /// be brought in; a failed import is reported, and the step runs.
    pub(super) async fn imported(
        self: &Arc<Self>,
        key: &Digest,
        id: VertexId,
        v: &rbuild_graph::Vertex,
        events: &EventSink,
    ) -> Option<Vec<SnapshotId>> {
        let exchange = Arc::clone(self.exchange.as_ref()?);
        let (store, key, name) = (Arc::clone(&self.store), *key, v.name.clone());
        let imported = tokio::task::spawn_blocking(move || {
            crate::import::import_cached(&store, exchange.as_ref(), &key, &name, now_unix())
                .map_err(|e| e.to_string())
        })
        .await
        .unwrap_or_else(|e| Err(e.to_string()));
        match imported {
            Ok(layers) => layers,
            Err(error) => {
                events(Event::CacheImportFailed {
                    vertex: id.0,
                    name: v.name.clone(),
                    error,
                });
                None
            }
        }
    }

    /// The recorded layers of `key`, if every snapshot is still in the store, unpacked or
    /// lazy (known by its blob, unpacked when read).
    pub(super) fn cached(&self, key: &Digest) -> Result<Option<Vec<SnapshotId>>, VertexError> {
        let Some(record) = self.store.index().lookup(key)? else {
            return Ok(None);
        };
        for l in &record.layers {
            if self.store.snapshots().path(l).is_none()
                && self.store.lazy_layers().get(l)?.is_none()
            {
                return Ok(None);
            }
        }
        Ok(Some(record.layers))
    }
}
