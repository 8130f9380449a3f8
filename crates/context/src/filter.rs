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
