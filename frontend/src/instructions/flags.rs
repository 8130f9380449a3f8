//! `--flag[=value]` parsing for one instruction, with BuildKit's rules: known flags only,
//! each at most once unless repeatable, string flags need a value, bool flags take
//! nothing or `=true`/`=false`.

use std::collections::HashMap;

use rbuild_types::Span;

use super::error::InstructionError;
use super::Spanned;

/// The kind of value a flag takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `--name=value`, once.
    String,
    /// `--name=value`, any number of times.
    Strings,
    /// `--name`, `--name=true|false`, once.
    Bool,
}

/// The parsed flags of one instruction; every value keeps the span of its `--flag` word.
#[derive(Debug, Default)]
pub struct Flags {
    values: HashMap<String, Vec<Spanned<String>>>,
    bools: HashMap<String, Spanned<bool>>,
}

impl Flags {
    /// Parses `raw` (as in [`Node::flags`](crate::Node::flags)) against `spec`; `spans[i]`
    /// is where `raw[i]` is (`fallback` when missing). Errors carry the flag's span.
    pub fn parse(
        keyword: &str,
        raw: &[String],
        spans: &[Span],
        fallback: Span,
        spec: &[(&str, Kind)],
    ) -> Result<Flags, (InstructionError, Span)> {
        let mut out = Flags::default();
        for (i, f) in raw.iter().enumerate() {
            let span = spans.get(i).copied().unwrap_or(fallback);
            out.one(keyword, f, span, spec).map_err(|e| (e, span))?;
        }
        Ok(out)
    }

    fn one(
        &mut self,
        keyword: &str,
        f: &str,
        span: Span,
        spec: &[(&str, Kind)],
    ) -> Result<(), InstructionError> {
        let out = self;
        {
            let body = f.strip_prefix("--").unwrap_or(f);
            let (name, value) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (body, None),
            };
            let Some(&(_, kind)) = spec.iter().find(|(n, _)| *n == name) else {
                return Err(InstructionError::UnknownFlag {
                    keyword: keyword.to_ascii_uppercase(),
                    flag: name.to_string(),
                });
            };
            let seen = out.values.contains_key(name) || out.bools.contains_key(name);
            if seen && kind != Kind::Strings {
                return Err(InstructionError::DuplicateFlag {
                    flag: name.to_string(),
                });
            }
            match kind {
                Kind::Bool => {
                    let b = match value.map(str::to_ascii_lowercase).as_deref() {
                        None | Some("true") => true,
                        Some("false") => false,
                        Some(_) => {
                            return Err(InstructionError::BadBool {
                                flag: name.to_string(),
                                value: value.unwrap_or("").to_string(),
                            })
                        }
                    };
                    out.bools
                        .insert(name.to_string(), Spanned { value: b, span });
                }
                Kind::String | Kind::Strings => {
                    let Some(v) = value else {
                        return Err(InstructionError::MissingFlagValue {
                            flag: name.to_string(),
                        });
                    };
                    out.values
                        .entry(name.to_string())
                        .or_default()
                        .push(Spanned {
                            value: v.to_string(),
                            span,
                        });
                }
            }
        }
        Ok(())
    }

    /// The value of a single-valued flag, if given.
    pub fn string(&self, name: &str) -> Option<Spanned<String>> {
        self.values.get(name).and_then(|v| v.last().cloned())
    }

    /// All values of a repeatable flag, in order.
    pub fn strings(&self, name: &str) -> Vec<Spanned<String>> {
        self.values.get(name).cloned().unwrap_or_default()
    }

    /// A bool flag's value (false when absent).
    pub fn bool(&self, name: &str) -> bool {
        self.bools.get(name).is_some_and(|b| b.value)
    }

    /// A bool flag's value and span, or `None` when absent.
    pub fn opt_bool(&self, name: &str) -> Option<Spanned<bool>> {
        self.bools.get(name).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &[(&str, Kind)] = &[
        ("from", Kind::String),
        ("exclude", Kind::Strings),
        ("link", Kind::Bool),
    ];

    fn raw(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn parse(r: &[String], spec: &[(&str, Kind)]) -> Result<Flags, InstructionError> {
        Flags::parse("copy", r, &[], Span::default(), spec).map_err(|(e, _)| e)
    }

    #[test]
    fn parses_and_rejects() {
        let f = parse(
            &raw(&["--from=a", "--exclude=x", "--exclude=y", "--link"]),
            SPEC,
        );
        let f = f.unwrap_or_default();
        assert_eq!(f.string("from").map(|s| s.value).as_deref(), Some("a"));
        let ex: Vec<String> = f.strings("exclude").into_iter().map(|s| s.value).collect();
        assert_eq!(ex, vec!["x", "y"]);
        assert!(f.bool("link"));
        assert!(matches!(
            parse(&raw(&["--nope"]), SPEC),
            Err(InstructionError::UnknownFlag { .. })
        ));
        assert!(matches!(
            parse(&raw(&["--from"]), SPEC),
            Err(InstructionError::MissingFlagValue { .. })
        ));
        assert!(matches!(
            parse(&raw(&["--from=a", "--from=b"]), SPEC),
            Err(InstructionError::DuplicateFlag { .. })
        ));
        assert!(matches!(
            parse(&raw(&["--link=maybe"]), SPEC),
            Err(InstructionError::BadBool { .. })
        ));
        let f = parse(&raw(&["--link=false"]), SPEC).unwrap_or_default();
        assert_eq!(f.opt_bool("link").map(|b| b.value), Some(false));
    }
}
