//! Reading an instruction's argument text by keyword, as BuildKit's parser does
//! (JSON form, whitespace split, one verbatim string, ENV/LABEL name-value forms…).
//! ONBUILD's nested instruction is handled by the caller (it needs the whole line parser).

use super::error::ParseError;
use super::json::{parse_json, JsonArgs};
use super::split::{split_once_regex_ws, split_regex_ws};
use super::words::parse_words;

/// The arguments of one instruction.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Args {
    pub args: Vec<String>,
    pub json: bool,
}

impl Args {
    fn plain(args: Vec<String>) -> Self {
        Args { args, json: false }
    }
}

/// How a keyword's arguments are read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    /// `from`, `expose`: split on regex whitespace.
    Whitespace,
    /// `add`, `copy`, `volume`: JSON array, else split on whitespace.
    JsonOrWhitespace,
    /// `run`, `cmd`, `entrypoint`, `shell`: JSON array, else one verbatim string.
    JsonOrString,
    /// `maintainer`, `user`, `workdir`, `stopsignal`: one verbatim string.
    String,
    /// `arg`: the word splitter.
    Words,
    /// `env`, `label`: name/value triples.
    NameVal,
    /// `healthcheck`: a type word, then like `JsonOrString`.
    Health,
    /// `onbuild`: a nested instruction.
    SubCommand,
    /// Anything else: one empty argument.
    Ignore,
}

/// The rule for a lower-cased keyword.
pub fn rule_for(keyword: &str) -> Rule {
    match keyword {
        "from" | "expose" => Rule::Whitespace,
        "add" | "copy" | "volume" => Rule::JsonOrWhitespace,
        "run" | "cmd" | "entrypoint" | "shell" => Rule::JsonOrString,
        "maintainer" | "user" | "workdir" | "stopsignal" => Rule::String,
        "arg" => Rule::Words,
        "env" | "label" => Rule::NameVal,
        "healthcheck" => Rule::Health,
        "onbuild" => Rule::SubCommand,
        _ => Rule::Ignore,
    }
}

fn maybe_json(rest: &str, keyword: &str, escaped: bool) -> Result<Args, ParseError> {
    if rest.is_empty() {
        return Ok(Args::default());
    }
    match parse_json(rest, escaped) {
        JsonArgs::Strings(args) => Ok(Args { args, json: true }),
        JsonArgs::NotStringArray => Err(ParseError::NotStringArray {
            keyword: keyword.to_ascii_uppercase(),
        }),
        JsonArgs::NotJson => Ok(Args::plain(vec![rest.to_string()])),
    }
}

fn name_val(rest: &str, keyword: &str, escape: char) -> Result<Args, ParseError> {
    let words = parse_words(rest, escape);
    let Some(first) = words.first() else {
        return Ok(Args::default());
    };
    if !first.contains('=') {
        let (key, value) = split_once_regex_ws(rest);
        let Some(value) = value else {
            return Err(ParseError::TwoArguments {
                keyword: keyword.to_ascii_uppercase(),
            });
        };
        return Ok(Args::plain(vec![
            key.to_string(),
            value.to_string(),
            String::new(),
        ]));
    }
    let mut args = Vec::with_capacity(words.len() * 3);
    for w in &words {
        let Some((k, v)) = w.split_once('=') else {
            return Err(ParseError::MissingEquals { word: w.clone() });
        };
        args.push(k.to_string());
        args.push(v.to_string());
        args.push("=".to_string());
    }
    Ok(Args::plain(args))
}

fn health(rest: &str, keyword: &str, escaped: bool) -> Result<Args, ParseError> {
    let sep = rest.find(char::is_whitespace).unwrap_or(rest.len());
    if sep == 0 {
        return Ok(Args::default());
    }
    let typ = &rest[..sep];
    let cmd = maybe_json(rest[sep..].trim_start(), keyword, escaped)?;
    let mut args = vec![typ.to_string()];
    args.extend(cmd.args);
    Ok(Args {
        args,
        json: cmd.json,
    })
}

/// Reads `rest` (already trimmed) for `keyword` (lower-cased) with `rule`
/// (which must not be [`Rule::SubCommand`]; that yields no args here). `escaped`: the line is
/// in the escaped form of a file that is not UTF-8 (see the parser docs).
pub fn read_args(
    rule: Rule,
    keyword: &str,
    rest: &str,
    escape: char,
    escaped: bool,
) -> Result<Args, ParseError> {
    match rule {
        Rule::Whitespace => Ok(Args::plain(split_regex_ws(rest))),
        Rule::JsonOrWhitespace => match parse_json(rest, escaped) {
            JsonArgs::Strings(args) => Ok(Args { args, json: true }),
            JsonArgs::NotStringArray => Err(ParseError::NotStringArray {
                keyword: keyword.to_ascii_uppercase(),
            }),
            JsonArgs::NotJson => Ok(Args::plain(split_regex_ws(rest))),
        },
        Rule::JsonOrString => maybe_json(rest, keyword, escaped),
        Rule::String if rest.is_empty() => Ok(Args::default()),
        Rule::String => Ok(Args::plain(vec![rest.to_string()])),
        Rule::Words => Ok(Args::plain(parse_words(rest, escape))),
        Rule::NameVal => name_val(rest, keyword, escape),
        Rule::Health => health(rest, keyword, escaped),
        Rule::SubCommand => Ok(Args::default()),
        Rule::Ignore => Ok(Args::plain(vec![String::new()])),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(kw: &str, rest: &str) -> Result<Vec<String>, ParseError> {
        read_args(rule_for(kw), kw, rest, '\\', false).map(|a| a.args)
    }

    #[test]
    fn name_value_forms() {
        assert_eq!(
            args("label", "foo bar").ok(),
            Some(vec!["foo".into(), "bar".into(), String::new()])
        );
        assert_eq!(
            args("env", "a=1 b=2").ok(),
            Some(
                vec!["a", "1", "=", "b", "2", "="]
                    .into_iter()
                    .map(String::from)
                    .collect()
            )
        );
        assert_eq!(
            args("env", "foo"),
            Err(ParseError::TwoArguments {
                keyword: "ENV".into()
            })
        );
        assert!(matches!(
            args("env", "a=1 b"),
            Err(ParseError::MissingEquals { .. })
        ));
    }

    #[test]
    fn other_rules() {
        assert_eq!(args("frobnicate", "x").ok(), Some(vec![String::new()]));
        assert_eq!(args("healthcheck", "NONE").ok(), Some(vec!["NONE".into()]));
        assert_eq!(
            args("healthcheck", "CMD [\"a\", \"b\"]").ok(),
            Some(vec!["CMD".into(), "a".into(), "b".into()])
        );
        assert_eq!(args("cmd", "").ok(), Some(vec![]));
        assert!(args("cmd", "[1]").is_err());
        assert_eq!(
            args("copy", "a  b").ok(),
            Some(vec!["a".into(), "b".into()])
        );
    }
}
