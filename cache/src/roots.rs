//! What garbage collection keeps: everything reachable from a tag.
//!
//! Reachability: a tag names a manifest blob. Manifests are parsed as JSON: an index's
//! `manifests[].digest`, a manifest's `config.digest` and `layers[].digest` are kept. A
//! snapshot is kept when it is a layer of a tagged image, i.e. its id, or its recorded
//! `diff_id`, appears in a kept config's `rootfs.diff_ids`. A missing or unreadable manifest
//! has nothing more to keep.

use std::collections::HashSet;
use std::path::Path;

use rbuild_types::Digest;
use serde_json::Value;

use crate::error::CacheError;
use crate::fsutil;
use crate::store::Store;
use crate::SnapshotId;

/// Blobs and diff_ids reachable from the tags.
#[derive(Debug, Default)]
pub(crate) struct Roots {
    pub(crate) blobs: HashSet<Digest>,
    pub(crate) diff_ids: HashSet<Digest>,
}

impl Roots {
    /// Walks from every tag of `store` through its manifests and configs.
    pub(crate) fn of(store: &Store) -> Result<Roots, CacheError> {
        let mut roots = Roots::default();
        let mut todo: Vec<Digest> = store.tags().list()?.into_iter().map(|(_, d)| d).collect();
        while let Some(d) = todo.pop() {
            if !roots.blobs.insert(d) {
                continue;
            }
            let Some(doc) = json_blob(store, &d) else {
                continue;
            };
            for m in array(&doc, "manifests") {
                todo.extend(digest_field(m));
            }
            for l in array(&doc, "layers") {
                roots.blobs.extend(digest_field(l));
            }
            if let Some(cfg) = doc.get("config").and_then(digest_field) {
                roots.blobs.insert(cfg);
                if let Some(cfg_doc) = json_blob(store, &cfg) {
                    let ids = cfg_doc
                        .get("rootfs")
                        .and_then(|r| r.get("diff_ids"))
                        .and_then(Value::as_array);
                    for id in ids.into_iter().flatten() {
                        if let Some(d) = id.as_str().and_then(|s| s.parse().ok()) {
                            roots.diff_ids.insert(d);
                        }
                    }
                }
            }
        }
        Ok(roots)
    }

    /// The snapshots in `store` that tagged images use, by id or by recorded diff_id.
    pub(crate) fn snapshots(&self, store: &Store) -> Result<HashSet<SnapshotId>, CacheError> {
        let mut out = HashSet::new();
        for dir in fsutil::list_dir(&store.snapshots_dir)? {
            let Some(id) = digest_of_name(&dir) else {
                continue;
            };
            let by_info = store
                .layer_info()
                .get(&SnapshotId(id))?
                .is_some_and(|i| self.diff_ids.contains(&i.diff_id));
            if self.diff_ids.contains(&id) || by_info {
                out.insert(SnapshotId(id));
            }
        }
        Ok(out)
    }
}

fn json_blob(store: &Store, d: &Digest) -> Option<Value> {
    let bytes = store.blobs().read(d).ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn array<'a>(doc: &'a Value, key: &str) -> impl Iterator<Item = &'a Value> {
    doc.get(key).and_then(Value::as_array).into_iter().flatten()
}

fn digest_field(v: &Value) -> Option<Digest> {
    v.get("digest")?.as_str()?.parse().ok()
}

/// The digest a store entry is named after (`<hex>`), if its name is one.
pub(crate) fn digest_of_name(path: &Path) -> Option<Digest> {
    let name = path.file_name()?.to_str()?;
    format!("sha256:{name}").parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_names_parse_as_digests() {
        let d = Digest::of(b"x");
        assert_eq!(
            digest_of_name(&Path::new("/s/blobs/sha256").join(d.hex())),
            Some(d)
        );
        assert_eq!(
            digest_of_name(Path::new("/s/blobs/sha256/not-a-digest")),
            None
        );
        assert_eq!(digest_of_name(Path::new("/")), None);
    }

    #[test]
    fn manifest_fields_are_read_leniently() {
        let d = Digest::of(b"c");
        let doc = serde_json::json!({"config": {"digest": d.to_string()}, "layers": [{"digest": "bad"}, 3]});
        assert_eq!(doc.get("config").and_then(digest_field), Some(d));
        assert_eq!(array(&doc, "layers").filter_map(digest_field).count(), 0);
        assert_eq!(array(&doc, "manifests").count(), 0);
    }
}
