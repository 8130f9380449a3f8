//! Parser directives (`# syntax=…`, `# escape=…`, `# check=…`) at the top of a Dockerfile,
//! and BuildKit's `DetectSyntax`/`ParseDirective` helpers.

use nom::bytes::complete::{tag, take_while, take_while1};
use nom::character::complete::satisfy;
use nom::combinator::recognize;
use nom::sequence::pair;
use nom::IResult;

/// The directives BuildKit knows.
pub const KNOWN: [&str; 3] = ["syntax", "escape", "check"];

/// `name` then `\s*=\s*` then the rest; the value is trimmed and must be non-empty.
fn name_value(input: &str) -> IResult<&str, (&str, &str)> {
    let (rest, name) = recognize(pair(
        satisfy(|c| c.is_ascii_alphabetic()),
        take_while(|c: char| c.is_ascii_alphanumeric()),
    ))(input)?;
    let (rest, _) = take_while(char::is_whitespace)(rest)?;
    let (rest, _) = tag("=")(rest)?;
    let (rest, _) = take_while(char::is_whitespace)(rest)?;
    let (rest, value) = take_while1(|_| true)(rest)?;
    Ok((rest, (name, value)))
}

/// Parses `# name = value` (after leading whitespace). Returns the lower-cased name and the
/// trimmed value for any well-formed `key=value` comment (known or not).
pub fn parse_line(line: &str, prefix: &str) -> Option<(String, String)> {
    let body = line.trim_start().strip_prefix(prefix)?;
    let body = body.trim_start();
    let (_, (name, value)) = name_value(body).ok()?;
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    Some((name.to_ascii_lowercase(), value.to_string()))
}

/// A syntax (or other) directive found by [`detect_syntax`]/[`parse_directive`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FoundDirective {
    /// The value up to the first space (`dockerfile:experimental`).
    pub reference: String,
    /// The whole value (`dockerfile:experimental // opts`).
    pub cmdline: String,
    /// 1-based line number (0 for the JSON form).
    pub line: u32,
}

fn found(value: &str, line: u32) -> FoundDirective {
    let reference = value.split(' ').next().unwrap_or("").to_string();
    FoundDirective {
        reference,
        cmdline: value.to_string(),
        line,
    }
}

/// Scans the leading comment block for `key` using the given comment prefixes; the
/// first line may be a `#!` shebang; the scan stops at the first line that is not a comment.
fn scan(src: &[u8], key: &str, prefixes: &[&str]) -> Option<FoundDirective> {
    let src = src.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(src);
    let text = String::from_utf8_lossy(src);
    for (i, line) in text.split('\n').enumerate() {
        let line = line.trim_end_matches(['\r', '\n']);
        if i == 0 && line.starts_with("#!") {
            continue;
        }
        let trimmed = line.trim_start();
        let prefix = prefixes.iter().find(|p| trimmed.starts_with(**p))?;
        match parse_line(trimmed, prefix) {
            Some((name, value)) if name == key => {
                return Some(found(&value, u32::try_from(i + 1).unwrap_or(u32::MAX)))
            }
            Some(_) => {}
            None => return None,
        }
    }
    None
}

/// BuildKit's `DetectSyntax`: the `syntax` directive from a `#` or `//` comment at the top
/// (after an optional shebang), or from a leading JSON object `{"syntax": "…"}`.
pub fn detect_syntax(src: &[u8]) -> Option<FoundDirective> {
    let body = src.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(src);
    if body.first() == Some(&b'{') {
        let v: serde_json::Value = serde_json::from_slice(body).ok()?;
        let s = v.get("syntax")?.as_str()?;
        return Some(found(s, 0));
    }
    scan(src, "syntax", &["#", "//"])
}

/// BuildKit's `ParseDirective(key, src)`: like [`detect_syntax`] but `#` comments only.
pub fn parse_directive(key: &str, src: &[u8]) -> Option<FoundDirective> {
    scan(src, &key.to_ascii_lowercase(), &["#"])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_directive_lines() {
        assert_eq!(
            parse_line("# EScape = ` ", "#"),
            Some(("escape".into(), "`".into()))
        );
        assert_eq!(parse_line("#escape=", "#"), None);
        assert_eq!(parse_line("# 1x=a", "#"), None);
        assert_eq!(parse_line("# just a comment", "#"), None);
    }
}
