//! What the context tests share: trees of files in temporary directories, and a context's
//! listing.

#![allow(dead_code)]

use std::fs;
use std::path::Path;

use rbuild_context::BuildContext;

/// Writes `data` to `rel` under `root`, creating its parent directories.
pub fn write(root: &Path, rel: &str, data: &str) {
    let path = root.join(rel);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).expect("mkdir");
    }
    fs::write(path, data).expect("write");
}

/// A temporary directory holding `files` (`path`, `contents`).
pub fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for (path, data) in files {
        write(dir.path(), path, data);
    }
    dir
}

/// The relative paths a context lists, in its order.
pub fn rels(ctx: &BuildContext) -> Vec<String> {
    ctx.list()
        .expect("list")
        .into_iter()
        .map(|e| e.rel)
        .collect()
}
