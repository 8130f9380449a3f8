//! What the store's integration tests share.

use rbuild_cache::Store;

/// A store opened in a new temporary directory, which lives as long as the returned guard.
pub fn temp_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    (dir, store)
}
