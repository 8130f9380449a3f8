//! Build checks: BuildKit's Dockerfile lint rules (`frontend/dockerfile/linter`), run on the
//! parsed file, its plan and its bases' configs, as `rbuild --check` and every build do.
//!
//! * [`rule`]: the [`Rule`] enum (BuildKit's names, descriptions, URLs).
//! * [`config`]: the `check` option ([`CheckConfig`]: `skip=…;error=…;experimental=…`).
//! * [`comments`]: the comment lines above each instruction (per-instruction `# check=`).
//! * [`syntax`]: rules of the parse tree alone (casing, MAINTAINER, empty continuations,
//!   stage names).
//! * [`from`]: rules of `FROM` and the global `ARG`s (undeclared or invalid args, platforms).
//! * [`dispatch`]: rules that need each stage's environment, as BuildKit's dispatch sees it
//!   (undefined variables, WORKDIR, repeated CMD/ENTRYPOINT/HEALTHCHECK, secrets, EXPOSE,
//!   JSON arguments, files `.dockerignore` excludes).
//! * [`suggest`]: BuildKit's "did you mean" (edit distance below 3).
//!
//! Pure like the rest of the frontend: `.dockerignore` is asked through the [`Ignored`]
//! predicate, which the builder implements with the context's matcher.
//! `InvalidBaseImagePlatform` needs the pulled image's platform: the builder reports it
//! with this module's [`Rule`] (BuildKit's rule), the other 21 rules are here.

pub mod comments;
pub mod config;
pub mod dispatch;
pub mod from;
pub mod rule;
pub mod suggest;
pub mod syntax;

use std::collections::HashMap;

use rbuild_types::Span;

pub use config::{CheckConfig, CheckConfigError};
pub use rule::Rule;

use crate::ast::{Dockerfile, Node};
use crate::lower::{BaseConfigs, BuildOptions, Plan};

/// One violation: the rule, BuildKit's message, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lint {
    pub rule: Rule,
    /// BuildKit's formatted message (`Stage name 'Foo' should be lowercase`).
    pub message: String,
    /// The exact place the caret points at (a word, a flag, or the instruction).
    pub span: Span,
    /// The lines BuildKit marks (`>>>`), first and last, 1-based.
    pub lines: (u32, u32),
}

/// What `.dockerignore` excludes, for `CopyIgnoredFile` (implemented by the builder with the
/// context's matcher, so the frontend stays pure).
pub trait Ignored {
    /// Whether the cleaned context path `path` (`.` for the root) is excluded, as BuildKit
    /// decides it: never when the file has `!` exceptions; the root only when a pattern
    /// excludes everything; else when the path or a parent matches.
    fn ignored(&self, path: &str) -> bool;
}

/// Which stages the per-stage rules visit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Every stage (`--check`, as BuildKit's lint request).
    AllStages,
    /// Only the stages the target needs (a build).
    Needed,
}

/// Everything the checks read.
#[derive(Clone, Copy)]
pub struct CheckInput<'a> {
    pub df: &'a Dockerfile,
    /// The bytes `df` was parsed from (for the comments above instructions).
    pub source: &'a [u8],
    pub options: &'a BuildOptions,
    pub config: &'a CheckConfig,
    /// The plan, when planning succeeded (the per-stage rules need it).
    pub plan: Option<&'a Plan>,
    /// Configs of the plan's base images (their env and shell); a base missing here counts
    /// as an empty config with the default `PATH`.
    pub bases: Option<&'a BaseConfigs>,
    pub ignored: Option<&'a dyn Ignored>,
    pub scope: Scope,
}

/// Runs every enabled rule; the violations in BuildKit's order (by first line, stably).
pub fn check(input: &CheckInput<'_>) -> Vec<Lint> {
    let mut linter = Linter::new(input.df, input.source, input.config);
    let parsed = syntax::check(input.df, &mut linter);
    if parsed {
        from::check(input.df, input.options, &mut linter);
        if let Some(plan) = input.plan {
            let empty = BaseConfigs::new();
            let bases = input.bases.unwrap_or(&empty);
            dispatch::check(plan, bases, input.ignored, input.scope, &mut linter);
        }
    }
    let mut lints = linter.lints;
    lints.sort_by_key(|l| l.lines.0);
    lints
}

/// The message BuildKit fails a build with when `error=true` and rules were violated:
/// `lint violation found for rules: A, B` (each rule once, in order of first violation).
pub fn error_message(lints: &[Lint]) -> Option<String> {
    let mut rules: Vec<&str> = Vec::new();
    for l in lints {
        if !rules.contains(&l.rule.name()) {
            rules.push(l.rule.name());
        }
    }
    (!rules.is_empty()).then(|| format!("lint violation found for rules: {}", rules.join(", ")))
}

/// Collects violations, applying the file's config and each instruction's `# check=`.
pub struct Linter<'a> {
    config: &'a CheckConfig,
    /// The Dockerfile's bytes.
    source: &'a [u8],
    /// Comment lines above each instruction, by the instruction's first byte.
    comments: HashMap<usize, Vec<String>>,
    lints: Vec<Lint>,
}

impl<'a> Linter<'a> {
    fn new(df: &Dockerfile, source: &'a [u8], config: &'a CheckConfig) -> Linter<'a> {
        let comments = comments::preceding(df, source);
        let comments = df
            .instructions
            .iter()
            .zip(comments)
            .filter(|(_, c)| !c.is_empty())
            .map(|(n, c)| (n.span.start, c))
            .collect();
        Linter {
            config,
            source,
            comments,
            lints: Vec::new(),
        }
    }

    /// The comment lines right above instruction `node`.
    pub fn comments_of(&self, node: &Node) -> &[String] {
        self.comments
            .get(&node.span.start)
            .map_or(&[], Vec::as_slice)
    }

    /// Reports `rule` for instruction `node`, the caret at `span`, if enabled there.
    pub fn report(&mut self, rule: Rule, message: String, node: &Node, span: Span) {
        let enabled = match self.comments.get(&node.span.start) {
            Some(c) => self.config.with_comments(c).enabled(rule),
            None => self.config.enabled(rule),
        };
        if enabled {
            self.lints.push(Lint {
                rule,
                message,
                span,
                lines: (node.span.line, node.end_line.max(node.span.line)),
            });
        }
    }

    /// Reports `rule` at instruction `at` (its lines, the caret at its start) under the
    /// `# check=` of instruction `under`.
    pub fn report_under(&mut self, rule: Rule, message: String, under: &Node, at: &Node) {
        let enabled = match self.comments.get(&under.span.start) {
            Some(c) => self.config.with_comments(c).enabled(rule),
            None => self.config.enabled(rule),
        };
        if enabled {
            self.lints.push(Lint {
                rule,
                message,
                span: at.span,
                lines: (at.span.line, at.end_line.max(at.span.line)),
            });
        }
    }

    /// Reports `rule` at `span` on `lines`, under the file's config only.
    pub fn report_lines(&mut self, rule: Rule, message: String, span: Span, lines: (u32, u32)) {
        if self.config.enabled(rule) {
            self.lints.push(Lint {
                rule,
                message,
                span,
                lines,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rules (and first lines) `src` violates, with a plan and no base images.
    fn rules(src: &str, scope: Scope, config: &str) -> Vec<(Rule, u32)> {
        let df = crate::parse(src.as_bytes()).expect("parses");
        let options = BuildOptions::default();
        let plan = crate::lower::plan(&df, &options).expect("plans");
        let config = CheckConfig::parse(config).expect("config");
        check(&CheckInput {
            df: &df,
            source: src.as_bytes(),
            options: &options,
            config: &config,
            plan: Some(&plan),
            bases: None,
            ignored: None,
            scope,
        })
        .into_iter()
        .map(|l| (l.rule, l.lines.0))
        .collect()
    }

    #[test]
    fn per_stage_rules_follow_the_scope() {
        let src = "FROM scratch AS unused\nENV a b\nFROM scratch\nCMD x\n";
        assert_eq!(
            rules(src, Scope::AllStages, ""),
            vec![
                (Rule::LegacyKeyValueFormat, 2),
                (Rule::JsonArgsRecommended, 4)
            ]
        );
        assert_eq!(
            rules(src, Scope::Needed, ""),
            vec![(Rule::JsonArgsRecommended, 4)]
        );
    }

    #[test]
    fn config_and_comments_skip_and_error_names_each_rule_once() {
        let src = "FROM scratch\nCMD x\n# check=skip=JSONArgsRecommended\nENTRYPOINT y\nENV a b\nENV c d\n";
        let got = rules(src, Scope::Needed, "");
        assert_eq!(
            got,
            vec![
                (Rule::JsonArgsRecommended, 2),
                (Rule::LegacyKeyValueFormat, 5),
                (Rule::LegacyKeyValueFormat, 6)
            ]
        );
        assert_eq!(
            rules(src, Scope::Needed, "skip=LegacyKeyValueFormat"),
            vec![(Rule::JsonArgsRecommended, 2)]
        );
        assert!(rules(src, Scope::Needed, "skip=all").is_empty());
        let df = crate::parse(src.as_bytes()).unwrap();
        let lints = check(&CheckInput {
            df: &df,
            source: src.as_bytes(),
            options: &BuildOptions::default(),
            config: &CheckConfig::default(),
            plan: None,
            bases: None,
            ignored: None,
            scope: Scope::Needed,
        });
        // Without a plan only the rules of the tree and FROM run.
        assert!(lints.is_empty(), "{lints:?}");
        let all = rules(src, Scope::Needed, "");
        let lints: Vec<Lint> = all
            .iter()
            .map(|&(rule, line)| Lint {
                rule,
                message: String::new(),
                span: Span::default(),
                lines: (line, line),
            })
            .collect();
        assert_eq!(
            error_message(&lints).as_deref(),
            Some("lint violation found for rules: JSONArgsRecommended, LegacyKeyValueFormat")
        );
        assert_eq!(error_message(&[]), None);
    }
}
