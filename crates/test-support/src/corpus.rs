//! The conformance corpora: third-party test data (BuildKit's parser and shell vectors, the
//! `.dockerignore` tables) kept by the steering side in `../shared/conformance/`, not in this
//! repository. Where a test finds them, and what their absence means:
//!
//! - `RBUILD_CONFORMANCE_DIR` set: that directory holds the corpora; a missing corpus fails.
//! - Otherwise `shared/conformance` beside the checkout (or beside any ancestor of it).
//!   - Found: the corpus must be in it. A missing one is a capability skip ([`require`]): a
//!     failure under `RBUILD_REQUIRE_ALL=1`.
//!   - Not found (a newcomer's clone): the test skips loudly, and under `RBUILD_REQUIRE_ALL=1`
//!     too — the corpora are required only where `../shared` exists — unless
//!     `RBUILD_REQUIRE_CORPORA=1`, which makes that a failure as well.
//!
//! A test that found its corpus checks how many cases ran with [`assert_ran`], so that a
//! corpus that shrank or a harness that stopped reading part of it cannot pass unnoticed.

use std::path::{Path, PathBuf};

use crate::skip::{require, say, test_name};

/// Names the directory that holds the corpora (`buildkit-parser/`, `buildkit-shell/`, ...).
pub const CONFORMANCE_DIR: &str = "RBUILD_CONFORMANCE_DIR";

/// Makes a missing `../shared/conformance` a failure, not a skip.
pub const REQUIRE_CORPORA: &str = "RBUILD_REQUIRE_CORPORA";

/// The corpora directory: [`CONFORMANCE_DIR`], or the first `shared/conformance` beside the
/// checkout or one of its ancestors.
pub fn conformance_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os(CONFORMANCE_DIR) {
        return Some(PathBuf::from(dir));
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|d| d.join("shared").join("conformance"))
        .find(|c| c.is_dir())
}

/// The directory of the corpus `name` (e.g. `buildkit-parser`), or `None` after saying why
/// the test skips (see the module doc for when that is a failure instead).
#[track_caller]
pub fn corpus(name: &str) -> Option<PathBuf> {
    let explicit = std::env::var_os(CONFORMANCE_DIR).is_some();
    let required = std::env::var_os(REQUIRE_CORPORA).is_some_and(|v| v == "1");
    match locate(name, conformance_dir(), explicit, required) {
        Located::Run(path) => Some(path),
        Located::Skip(why) => {
            say(&format!("SKIPPED: {} because {why}", test_name()));
            None
        }
        Located::Fail(why) => panic!("{why}"),
        Located::Require(path) => {
            require(
                format_args!("the conformance corpus {}", path.display()),
                false,
            );
            None
        }
    }
}

/// What a test does about the corpus `name`.
#[derive(Debug, PartialEq, Eq)]
enum Located {
    /// Runs it from here.
    Run(PathBuf),
    /// Skips loudly, whatever `RBUILD_REQUIRE_ALL` says: no corpora beside this checkout.
    Skip(String),
    /// Fails.
    Fail(String),
    /// Skips as a missing capability does ([`require`]): a failure under `RBUILD_REQUIRE_ALL=1`.
    Require(PathBuf),
}

/// The rule of the module doc. `dir`: the corpora directory found, if any; `explicit`:
/// [`CONFORMANCE_DIR`] named it; `required`: [`REQUIRE_CORPORA`] is 1.
fn locate(name: &str, dir: Option<PathBuf>, explicit: bool, required: bool) -> Located {
    let Some(dir) = dir else {
        let why = format!(
            "the conformance corpus {name} is not in this checkout: ../shared/conformance was \
             not found and {CONFORMANCE_DIR} is unset"
        );
        return if required {
            Located::Fail(format!("{REQUIRE_CORPORA}=1 but {why}"))
        } else {
            Located::Skip(why)
        };
    };
    let path = dir.join(name);
    if path.is_dir() {
        Located::Run(path)
    } else if explicit {
        Located::Fail(format!(
            "{CONFORMANCE_DIR} is set but {} is missing",
            path.display()
        ))
    } else {
        Located::Require(path)
    }
}

/// Asserts that `ran` cases of `part` ran, as many as the corpus has (`expected`).
#[track_caller]
pub fn assert_ran(part: &str, ran: usize, expected: usize) {
    assert_eq!(
        ran, expected,
        "{part}: {ran} cases ran, but the corpus has {expected}"
    );
}

/// The strings of a JSON array in a corpus (other elements skipped; not an array: none).
pub fn json_strings(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_corpora_beside_the_checkout_is_a_skip_unless_required() {
        assert!(matches!(locate("x", None, false, false), Located::Skip(_)));
        let Located::Fail(why) = locate("x", None, false, true) else {
            panic!("RBUILD_REQUIRE_CORPORA=1 makes it a failure");
        };
        assert!(why.starts_with("RBUILD_REQUIRE_CORPORA=1 but"), "{why}");
    }

    #[test]
    fn found_corpora_must_hold_the_corpus() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir(t.path().join("present")).unwrap();
        let dir = Some(t.path().to_path_buf());
        assert_eq!(
            locate("present", dir.clone(), false, false),
            Located::Run(t.path().join("present"))
        );
        assert_eq!(
            locate("absent", dir.clone(), false, false),
            Located::Require(t.path().join("absent"))
        );
        assert!(matches!(
            locate("absent", dir, true, false),
            Located::Fail(_)
        ));
    }

    #[test]
    #[should_panic(expected = "cases ran, but the corpus has")]
    fn a_corpus_that_did_not_run_whole_fails() {
        assert_ran("part", 3, 4);
    }
}
