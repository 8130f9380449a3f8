//! An ordered list of patterns with Docker's `MatchesOrParentMatches` semantics.
//!
//! Patterns apply in order: a plain pattern marks the path matched, a later `!` pattern can
//! unmark it, a still later plain pattern mark it again. A pattern matches a path if it matches
//! the path or any of its parent directories (`docs` matches `docs/README.md`).

use super::error::PatternError;
use super::pattern::Pattern;
use super::syntax::validate;
use crate::clean::clean;

/// A compiled pattern list. Invariant: holds no empty pattern; every pattern compiled.
#[derive(Debug, Clone, Default)]
pub struct PatternMatcher {
    patterns: Vec<Pattern>,
    has_exclusions: bool,
}

impl PatternMatcher {
    /// Builds a matcher: each pattern is trimmed, empty ones dropped, cleaned like
    /// `filepath.Clean`, a leading `!` makes it an exception. A lone `!` or malformed wildcard
    /// syntax is an error naming the pattern.
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<PatternMatcher, PatternError> {
        let mut out = PatternMatcher::default();
        for raw in patterns {
            let trimmed = raw.as_ref().trim();
            if trimmed.is_empty() {
                continue;
            }
            let cleaned = clean(trimmed);
            let (exclusion, body) = match cleaned.strip_prefix('!') {
                Some("") => return Err(PatternError::LoneExclamation),
                Some(rest) => (true, rest),
                None => (false, cleaned.as_str()),
            };
            validate(body).map_err(|problem| PatternError::BadPattern {
                pattern: body.to_string(),
                problem,
            })?;
            out.has_exclusions |= exclusion;
            out.patterns.push(Pattern::compile(body, exclusion)?);
        }
        Ok(out)
    }

    /// [`new`](Self::new) for patterns that are text (`COPY --exclude`), not in the escaped
    /// form of context paths that `.dockerignore` files are read in (see `entry`).
    pub fn from_text<S: AsRef<str>>(patterns: &[S]) -> Result<PatternMatcher, PatternError> {
        let escaped: Vec<_> = patterns
            .iter()
            .map(|p| rbuild_types::bytes::escape_str(p.as_ref()))
            .collect();
        PatternMatcher::new(&escaped)
    }

    /// The compiled patterns, in order.
    pub fn patterns(&self) -> &[Pattern] {
        &self.patterns
    }

    /// Whether any `!` exception pattern is present.
    pub fn has_exclusions(&self) -> bool {
        self.has_exclusions
    }

    /// Whether there are no patterns at all (nothing ever matches).
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Docker's `MatchesOrParentMatches`: does the list match `path` (cleaned first; a path
    /// that cleans to `.` never matches)?
    pub fn matches_or_parent_matches(&self, path: &str) -> bool {
        let path = clean(path);
        if path == "." {
            return false;
        }
        let parents = parent_prefixes(&path);
        let mut matched = false;
        for pattern in &self.patterns {
            if pattern.is_exclusion() != matched {
                continue;
            }
            let hit = pattern.matches(&path) || parents.iter().any(|p| pattern.matches(p));
            if hit {
                matched = !pattern.is_exclusion();
            }
        }
        matched
    }

    /// [`matches_or_parent_matches`](Self::matches_or_parent_matches) for a cleaned `path`
    /// whose parent directories' hits are already known: `ancestors[k]` says whether pattern
    /// `k` matches one of the parents (see [`ancestor_hits`](Self::ancestor_hits)). Same
    /// result, but each pattern runs once on `path` instead of once per parent.
    pub(crate) fn matches_given(&self, path: &str, ancestors: &[bool]) -> bool {
        let mut matched = false;
        for (k, pattern) in self.patterns.iter().enumerate() {
            if pattern.is_exclusion() != matched {
                continue;
            }
            if ancestors.get(k).copied().unwrap_or(false) || pattern.matches(path) {
                matched = !pattern.is_exclusion();
            }
        }
        matched
    }

    /// The per-pattern hits on the parents of the paths inside directory `dir` (cleaned,
    /// relative), given the hits on `dir`'s own parents: pattern `k` hits if it hit a parent
    /// of `dir` or matches `dir` itself. The root's children start from all `false`.
    pub(crate) fn ancestor_hits(&self, ancestors: &[bool], dir: &str) -> Vec<bool> {
        self.patterns
            .iter()
            .enumerate()
            .map(|(k, p)| ancestors.get(k).copied().unwrap_or(false) || p.matches(dir))
            .collect()
    }

    /// Conservative: false only if no `!` exception pattern could match a path below `dir`,
    /// i.e. an excluded `dir` can be pruned from a walk without losing anything.
    pub fn exception_could_match_below(&self, dir: &str) -> bool {
        self.patterns
            .iter()
            .any(|p| p.is_exclusion() && p.could_match_below(dir))
    }

    /// Conservative: false only if no plain pattern could match a path below `dir` (used for
    /// include lists, where a directory that does not match itself may still hold matches).
    pub fn could_match_below(&self, dir: &str) -> bool {
        self.patterns
            .iter()
            .any(|p| !p.is_exclusion() && p.could_match_below(dir))
    }
}

/// The parent prefixes Docker tests a pattern against: Go's `filepath.Dir(path)` split at `/`
/// and re-joined one segment at a time (`a/b/c` → `a`, `a/b`; `/a` → ``, `/`). `path` must be
/// cleaned, so every prefix is a slice of it ending just before a `/`.
fn parent_prefixes(path: &str) -> Vec<&str> {
    let mut out: Vec<&str> = path
        .char_indices()
        .filter(|&(_, c)| c == '/')
        .map(|(i, _)| &path[..i])
        .collect();
    if out.len() == 1 && path.starts_with('/') {
        out.push("/");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parents() {
        assert_eq!(parent_prefixes("a/b/c"), vec!["a", "a/b"]);
        assert_eq!(parent_prefixes("/a"), vec!["", "/"]);
        assert!(parent_prefixes("a").is_empty());
    }

    #[test]
    fn order_and_exceptions() {
        let m =
            PatternMatcher::new(&["**", "!util/docker/web", "util/docker/web/foo"]).expect("valid");
        assert!(m.matches_or_parent_matches("util/docker/web/foo"));
        assert!(!m.matches_or_parent_matches("util/docker/web/bar"));
        assert!(m.has_exclusions());
    }

    #[test]
    fn lone_bang_is_rejected() {
        assert_eq!(
            PatternMatcher::new(&["!"]).err(),
            Some(PatternError::LoneExclamation)
        );
    }
}
