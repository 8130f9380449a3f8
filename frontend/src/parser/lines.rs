//! Physical lines and the line-continuation rule.
//!
//! The input is split on `\n` only; every trailing `\r`/`\n` is stripped from a line's text,
//! a UTF-8 BOM is removed from the first line, and each line remembers its byte offset so
//! spans point into the original bytes.

use nom::bytes::complete::{tag, take_till};
use nom::combinator::opt;
use nom::IResult;

/// The longest physical line BuildKit's scanner accepts (bytes, without the newline).
pub const MAX_LINE_LEN: usize = 65535;

/// One physical line of the input.
#[derive(Clone, Debug)]
pub struct PhysLine<'a> {
    /// The line's bytes without the trailing `\n`/`\r` run (and without a leading BOM on line 1).
    pub text: &'a [u8],
    /// The line's bytes with only the `\n` removed (heredoc bodies keep a lone `\r`... minus one, as Go's scanner).
    pub raw: &'a [u8],
    /// Byte offset of `text` in the source.
    pub start: usize,
    /// Byte offset just past the line (before its `\n`).
    pub end: usize,
    /// 1-based line number.
    pub number: u32,
}

/// One line and its terminator: `(line, had_newline)`.
fn one_line(input: &[u8]) -> IResult<&[u8], (&[u8], bool)> {
    let (rest, line) = take_till(|b| b == b'\n')(input)?;
    let (rest, nl) = opt(tag(&b"\n"[..]))(rest)?;
    Ok((rest, (line, nl.is_some())))
}

/// Splits `src` into physical lines (a final line without `\n` counts; an empty tail does not).
pub fn split_lines(src: &[u8]) -> Vec<PhysLine<'_>> {
    let mut out = Vec::new();
    let mut rest = src;
    let mut offset = 0usize;
    let mut number = 0u32;
    while !rest.is_empty() {
        let Ok((next, (line, had_nl))) = one_line(rest) else {
            break;
        };
        number = number.saturating_add(1);
        let mut start = offset;
        let mut text = line;
        let mut raw = line.strip_suffix(b"\r").unwrap_or(line);
        if number == 1 {
            if let Some(t) = text.strip_prefix(b"\xEF\xBB\xBF") {
                text = t;
                raw = raw.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(raw);
                start += 3;
            }
        }
        while let Some((&last, init)) = text.split_last() {
            if last == b'\r' || last == b'\n' {
                text = init;
            } else {
                break;
            }
        }
        out.push(PhysLine {
            text,
            raw,
            start,
            end: offset + line.len(),
            number,
        });
        offset += line.len() + usize::from(had_nl);
        rest = next;
    }
    out
}

/// Applies the continuation test with escape token `escape`: returns the text with the
/// escape and trailing `[ \t]*` removed and `true` when the line continues, or the text
/// unchanged and `false` when it ends here. `foo\\` (escaped escape) does not continue.
pub fn trim_continuation(line: &str, escape: char) -> (&str, bool) {
    let t = line.trim_end_matches([' ', '\t']);
    let Some(before) = t.strip_suffix(escape) else {
        return (line, false);
    };
    if before.is_empty() {
        return ("", true);
    }
    if before.ends_with(escape) {
        return (line, false);
    }
    (before, true)
}

/// Whether a raw line is a comment: optional leading whitespace, then `#`.
pub fn is_comment(line: &str) -> bool {
    line.trim_start().starts_with('#')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_and_strips() {
        let ls = split_lines(b"\xEF\xBB\xBFa\r\n\nb");
        assert_eq!(ls.len(), 3);
        assert_eq!(ls[0].text, b"a");
        assert_eq!(ls[0].start, 3);
        assert_eq!(ls[1].text, b"");
        assert_eq!(ls[2].text, b"b");
        assert_eq!(ls[2].start, 7);
        assert_eq!(ls[2].number, 3);
        assert!(split_lines(b"").is_empty());
    }

    #[test]
    fn continuation_rules() {
        assert_eq!(trim_continuation("a \\", '\\'), ("a ", true));
        assert_eq!(trim_continuation("a\\ \t", '\\'), ("a", true));
        assert_eq!(trim_continuation("\\", '\\'), ("", true));
        assert_eq!(trim_continuation("a\\\\", '\\'), ("a\\\\", false));
        assert_eq!(trim_continuation("a`", '`'), ("a", true));
        assert_eq!(trim_continuation("a\\", '`'), ("a\\", false));
        assert_eq!(trim_continuation("é\\", '\\'), ("é", true));
    }
}
