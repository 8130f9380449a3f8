//! What a walk keeps: include and exclude pattern lists, optionally stacked in layers.
//!
//! A layer keeps a path when its include list (if any) matches the path or a parent, and its
//! exclude list (`.dockerignore` semantics) does not. A directory that is not kept can still be
//! *descended* when something below it could be kept (an include pattern reaching deeper, or a
//! `!` exception reopening part of an excluded tree); such a directory is listed only if
//! something below it ends up listed. With several layers a path must pass every layer, so an
//! outer layer's exception cannot bring back what an inner layer removed.

use crate::dockerignore::PatternMatcher;

/// The verdict on one path. Ordered: a stack of layers takes the minimum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Decision {
    /// Not listed; a directory is not even entered.
    Skip,
    /// A directory that is entered but listed only if something below it is listed.
    Descend,
    /// Listed (a directory is entered too).
    Keep,
}

/// One include/exclude pair.
#[derive(Debug, Clone, Default)]
pub struct Layer {
    pub include: Option<PatternMatcher>,
    pub exclude: Option<PatternMatcher>,
}

impl Layer {
    fn decide(&self, rel: &str, is_dir: bool) -> Decision {
        let mut verdict = Decision::Keep;
        if let Some(include) = self.include.as_ref().filter(|m| !m.is_empty()) {
            if !include.matches_or_parent_matches(rel) {
                verdict = if is_dir && include.could_match_below(rel) {
                    Decision::Descend
                } else {
                    Decision::Skip
                };
            }
        }
        if let Some(exclude) = &self.exclude {
            if verdict != Decision::Skip && exclude.matches_or_parent_matches(rel) {
                verdict = if is_dir && exclude.exception_could_match_below(rel) {
                    Decision::Descend
                } else {
                    Decision::Skip
                };
            }
        }
        verdict
    }
}

impl Layer {
    /// [`Layer::decide`] with the parents' pattern hits known (`inc`, `exc`: see
    /// [`PatternMatcher::ancestor_hits`]).
    fn decide_given(&self, inc: &[bool], exc: &[bool], rel: &str, is_dir: bool) -> Decision {
        let mut verdict = Decision::Keep;
        if let Some(include) = self.include.as_ref().filter(|m| !m.is_empty()) {
            if !include.matches_given(rel, inc) {
                verdict = if is_dir && include.could_match_below(rel) {
                    Decision::Descend
                } else {
                    Decision::Skip
                };
            }
        }
        if let Some(exclude) = self.exclude.as_ref().filter(|m| !m.is_empty()) {
            if verdict != Decision::Skip && exclude.matches_given(rel, exc) {
                verdict = if is_dir && exclude.exception_could_match_below(rel) {
                    Decision::Descend
                } else {
                    Decision::Skip
                };
            }
        }
        verdict
    }

    /// Whether every path below the kept directory `dir` is kept by this layer: the include
    /// list matches `dir` (so every path below through the parent rule) and no exception can
    /// unmatch anything below; no exclude pattern can match anything below (an exclude list
    /// that does not match `dir` then cannot match below it either).
    fn keeps_all_below(&self, dir: &str) -> bool {
        let include_ok = match self.include.as_ref().filter(|m| !m.is_empty()) {
            None => true,
            Some(m) => !m.exception_could_match_below(dir),
        };
        let exclude_ok = match self.exclude.as_ref().filter(|m| !m.is_empty()) {
            None => true,
            Some(m) => !m.could_match_below(dir),
        };
        include_ok && exclude_ok
    }
}

/// What a walk remembers about a directory so its children are decided cheaply: whether
/// everything below is kept (`free`: no matching at all), else each matcher's per-pattern
/// hits on the directory and its parents (two lists per layer: include, exclude).
#[derive(Debug, Clone)]
pub(crate) struct DirState {
    free: bool,
    hits: Vec<[Vec<bool>; 2]>,
}

impl DirState {
    /// Whether every path below is kept without asking the filter.
    pub fn keeps_all(&self) -> bool {
        self.free
    }
}

/// A stack of layers; the empty filter keeps everything.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    layers: Vec<Layer>,
}

impl Filter {
    /// A filter that keeps everything.
    pub fn new() -> Filter {
        Filter::default()
    }

    /// A filter with one exclude list (`.dockerignore`).
    pub fn excluding(exclude: PatternMatcher) -> Filter {
        Filter::new().with_layer(Layer {
            include: None,
            exclude: Some(exclude),
        })
    }

    /// Adds a layer on top (applied to what the previous layers let through).
    pub fn with_layer(mut self, layer: Layer) -> Filter {
        self.layers.push(layer);
        self
    }

    /// The state of the context root, whose children have no parents to match.
    pub(crate) fn root_state(&self) -> DirState {
        let free = self.layers.iter().all(|l| {
            l.include.as_ref().is_none_or(PatternMatcher::is_empty)
                && l.exclude.as_ref().is_none_or(PatternMatcher::is_empty)
        });
        DirState {
            free,
            hits: self
                .layers
                .iter()
                .map(|_| [Vec::new(), Vec::new()])
                .collect(),
        }
    }

    /// The state of directory `rel` (inside the directory `parent` describes), which this
    /// filter decided `decision` (not `Skip`).
    pub(crate) fn child_state(&self, parent: &DirState, rel: &str, decision: Decision) -> DirState {
        if parent.free {
            return DirState {
                free: true,
                hits: Vec::new(),
            };
        }
        let free = decision == Decision::Keep && self.layers.iter().all(|l| l.keeps_all_below(rel));
        let hits = self
            .layers
            .iter()
            .zip(&parent.hits)
            .map(|(l, [inc, exc])| {
                let step = |m: &Option<PatternMatcher>, prev: &[bool]| {
                    m.as_ref()
                        .map(|m| m.ancestor_hits(prev, rel))
                        .unwrap_or_default()
                };
                [step(&l.include, inc), step(&l.exclude, exc)]
            })
            .collect();
        DirState { free, hits }
    }

    /// [`Filter::decide`] for `rel`, a path directly inside the directory `parent` describes.
    pub(crate) fn decide_in(&self, parent: &DirState, rel: &str, is_dir: bool) -> Decision {
        if parent.free {
            return Decision::Keep;
        }
        self.layers
            .iter()
            .zip(&parent.hits)
            .map(|(l, [inc, exc])| l.decide_given(inc, exc, rel, is_dir))
            .min()
            .unwrap_or(Decision::Keep)
    }

    /// The verdict on `rel` (relative, `/`-separated, cleaned).
    pub fn decide(&self, rel: &str, is_dir: bool) -> Decision {
        self.layers
            .iter()
            .map(|l| l.decide(rel, is_dir))
            .min()
            .unwrap_or(Decision::Keep)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &[&str]) -> PatternMatcher {
        PatternMatcher::new(p).expect("valid patterns")
    }

    #[test]
    fn exclude_with_exception_descends() {
        let f = Filter::excluding(m(&["foo*", "!foo/bar2"]));
        assert_eq!(f.decide("foo", true), Decision::Descend);
        assert_eq!(f.decide("foo/bar2", false), Decision::Keep);
        assert_eq!(f.decide("foo2", false), Decision::Skip);
        assert_eq!(f.decide("bar", false), Decision::Keep);
    }

    /// The incremental decision (parent hits carried down, subtrees no pattern touches
    /// skipped) equals the from-scratch one on every path of a small tree.
    #[test]
    fn incremental_equals_from_scratch() {
        let filters = [
            Filter::excluding(m(&["a", "!a/b/*.rs", "**/*.log", "!keep.log", "c/**/d"])),
            Filter::excluding(m(&["*", "!c"])),
            Filter::new()
                .with_layer(Layer {
                    include: Some(m(&["a/b", "c/*/d", "!a/b/x.log"])),
                    exclude: Some(m(&["**/y.rs"])),
                })
                .with_layer(Layer {
                    include: None,
                    exclude: Some(m(&["c/e"])),
                }),
            Filter::new(),
        ];
        let dirs = ["a", "a/b", "c", "c/e", "c/e/d", "z", "z/q"];
        let files = ["x.log", "y.rs", "keep.log", "d"];
        for f in &filters {
            // Depth-first so each directory's state comes from its parent's.
            let mut states = std::collections::HashMap::new();
            states.insert(String::new(), f.root_state());
            for dir in dirs {
                let parent = dir.rsplit_once('/').map_or("", |(p, _)| p);
                let Some(ps) = states.get(parent).cloned() else {
                    continue;
                };
                let decision = f.decide_in(&ps, dir, true);
                assert_eq!(decision, f.decide(dir, true), "{dir} in {f:?}");
                if decision != Decision::Skip {
                    states.insert(dir.to_string(), f.child_state(&ps, dir, decision));
                }
            }
            for (dir, state) in &states {
                for file in files {
                    let rel = if dir.is_empty() {
                        file.to_string()
                    } else {
                        format!("{dir}/{file}")
                    };
                    assert_eq!(
                        f.decide_in(state, &rel, false),
                        f.decide(&rel, false),
                        "{rel} in {f:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn include_descends_towards_matches() {
        let f = Filter::new().with_layer(Layer {
            include: Some(m(&["*/target"])),
            exclude: None,
        });
        assert_eq!(f.decide("a", true), Decision::Descend);
        assert_eq!(f.decide("a/target", false), Decision::Keep);
        assert_eq!(f.decide("a/b", true), Decision::Skip);
    }
}
