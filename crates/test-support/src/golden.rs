//! Golden files: what a test produced against an expected file kept in `testdata/`, which
//! `UPDATE_GOLDEN=1` rewrites instead (for a deliberate change, reviewed as a diff).

use std::path::Path;

/// Whether this run rewrites the golden files (`UPDATE_GOLDEN=1`).
pub fn updating() -> bool {
    std::env::var("UPDATE_GOLDEN").is_ok_and(|v| v == "1")
}

/// Whether `got` differs from the golden file `path` (a missing file differs). When
/// [`updating`], writes `got` there instead (creating its directory) and says it does not.
pub fn differs(path: &Path, got: &str) -> bool {
    if updating() {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        }
        std::fs::write(path, got).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        return false;
    }
    std::fs::read_to_string(path).unwrap_or_default() != got
}
