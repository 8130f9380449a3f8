//! Which checks run, and whether a violation fails the build: BuildKit's `check` option
//! (`linter.ParseLintOptions`), from the `# check=` directive, the `BUILDKIT_DOCKERFILE_CHECK`
//! build argument (which replaces the directive), or a `# check=` comment right above one
//! instruction (merged into the file's for that instruction only).
//!
//! Syntax: up to three `;`-separated `key=value` parts: `skip=Rule1,Rule2|all`,
//! `experimental=Rule1,…|all`, `error=true|false` (Go's `strconv.ParseBool`).

use std::collections::BTreeSet;

use super::rule::Rule;

/// A parsed `check` option.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CheckConfig {
    /// `skip=all`.
    pub skip_all: bool,
    /// `skip=…`: rule names as written (unknown names are kept and match nothing).
    pub skip: BTreeSet<String>,
    /// `experimental=all`.
    pub experimental_all: bool,
    /// `experimental=…`.
    pub experimental: BTreeSet<String>,
    /// `error=true`: a build with a violation fails.
    pub error: bool,
}

/// Why a `check` option could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CheckConfigError {
    #[error("invalid check option {0:?}")]
    Part(String),
    #[error("invalid check option {0:?}")]
    Key(String),
    #[error("failed to parse check option {part:?}: invalid boolean {value:?}")]
    Bool { part: String, value: String },
}

impl CheckConfig {
    /// Parses `skip=…;experimental=…;error=…` (an empty string is the default).
    pub fn parse(text: &str) -> Result<CheckConfig, CheckConfigError> {
        let text = text.trim();
        let mut config = CheckConfig::default();
        if text.is_empty() {
            return Ok(config);
        }
        let names =
            |v: &str| -> BTreeSet<String> { v.split(',').map(|r| r.trim().to_string()).collect() };
        for part in text.splitn(3, ';') {
            let Some((key, value)) = part.split_once('=') else {
                return Err(CheckConfigError::Part(part.to_string()));
            };
            let value = value.trim();
            match key.trim() {
                "skip" if value == "all" => config.skip_all = true,
                "skip" => config.skip = names(value),
                "experimental" if value == "all" => config.experimental_all = true,
                "experimental" => config.experimental = names(value),
                "error" => {
                    config.error = parse_bool(value).ok_or(CheckConfigError::Bool {
                        part: part.to_string(),
                        value: value.to_string(),
                    })?
                }
                other => return Err(CheckConfigError::Key(other.to_string())),
            }
        }
        Ok(config)
    }

    /// This config with `other`'s skips and experiments added (BuildKit's
    /// `WithMergedConfig`; `error` stays this one's).
    pub fn merged(&self, other: &CheckConfig) -> CheckConfig {
        let mut out = self.clone();
        out.skip_all |= other.skip_all;
        out.experimental_all |= other.experimental_all;
        out.skip.extend(other.skip.iter().cloned());
        out.experimental.extend(other.experimental.iter().cloned());
        out
    }

    /// This config as changed by the `check=` comment among `comments` (the comment lines
    /// right above an instruction, `#` removed): the first one that reads as a `check`
    /// directive is merged in (its value up to the first space); one that does not parse
    /// changes nothing.
    pub fn with_comments(&self, comments: &[String]) -> CheckConfig {
        for c in comments {
            let Some((name, value)) = directive(c) else {
                continue;
            };
            if name != "check" {
                continue;
            }
            let value = value.split(' ').next().unwrap_or_default();
            return match CheckConfig::parse(value) {
                Ok(other) => self.merged(&other),
                Err(_) => self.clone(),
            };
        }
        self.clone()
    }

    /// Whether `rule` reports under this config.
    pub fn enabled(&self, rule: Rule) -> bool {
        if rule.experimental() {
            self.experimental_all || self.experimental.contains(rule.name())
        } else {
            !(self.skip_all || self.skip.contains(rule.name()))
        }
    }
}

/// `name = value` of a directive-shaped comment (`^[a-zA-Z][a-zA-Z0-9]*\s*=\s*(.+?)\s*$`),
/// the name lower-cased; only `syntax`, `escape` and `check` are directives.
fn directive(comment: &str) -> Option<(String, &str)> {
    let line = comment.trim_start();
    let (name, value) = line.split_once('=')?;
    let name = name.trim_end();
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    let name = name.to_ascii_lowercase();
    matches!(name.as_str(), "syntax" | "escape" | "check").then_some((name, value))
}

/// Go's `strconv.ParseBool`.
fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_skip_error_and_experimental() {
        let c = CheckConfig::parse("skip=JSONArgsRecommended, StageNameCasing;error=true").unwrap();
        assert!(c.error && !c.skip_all);
        assert!(!c.enabled(Rule::JsonArgsRecommended));
        assert!(!c.enabled(Rule::StageNameCasing));
        assert!(c.enabled(Rule::FromAsCasing));
        assert!(!c.enabled(Rule::InvalidDefinitionDescription));
        let c = CheckConfig::parse("skip=all;experimental=InvalidDefinitionDescription").unwrap();
        assert!(!c.enabled(Rule::FromAsCasing));
        assert!(c.enabled(Rule::InvalidDefinitionDescription));
        assert_eq!(CheckConfig::parse("  ").unwrap(), CheckConfig::default());
        assert!(CheckConfig::parse("error=1").unwrap().error);
    }

    #[test]
    fn rejects_what_buildkit_rejects() {
        assert_eq!(
            CheckConfig::parse("skip"),
            Err(CheckConfigError::Part("skip".into()))
        );
        assert_eq!(
            CheckConfig::parse("nope=1"),
            Err(CheckConfigError::Key("nope".into()))
        );
        assert!(matches!(
            CheckConfig::parse("error=yes"),
            Err(CheckConfigError::Bool { .. })
        ));
    }

    #[test]
    fn comments_merge_the_first_check_directive() {
        let base = CheckConfig::parse("error=true").unwrap();
        let c = base.with_comments(&[
            "a note".into(),
            "check=skip=WorkdirRelativePath trailing words".into(),
            "check=skip=all".into(),
        ]);
        assert!(c.error);
        assert!(!c.enabled(Rule::WorkdirRelativePath));
        assert!(c.enabled(Rule::UndefinedVar));
        assert_eq!(base.with_comments(&["check=bogus".into()]), base);
    }
}
