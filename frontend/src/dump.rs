//! The parse tree in BuildKit's parser-test text format: one `(keyword ["flags"…] "arg"…)`
//! line per instruction, every string quoted like Go's `strconv.Quote`.
//!
//! An argument that is not UTF-8 is dumped from its exact bytes, a stray byte as `\xNN` as
//! Go quotes it, where BuildKit's parser keeps the bytes; where its parser has already turned
//! them into U+FFFD (JSON arrays, `ARG` and the `name=value` form of ENV/LABEL) the text is
//! dumped, so that shows U+FFFD as BuildKit's does.

use std::fmt::Write as _;

use crate::ast::{Dockerfile, Node};

/// Dumps the tree: one line per instruction, joined by `\n` (no trailing newline).
pub fn dump(df: &Dockerfile) -> String {
    let mut out = String::new();
    for (i, n) in df.instructions.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push('(');
        dump_node(n, &mut out);
        out.push(')');
    }
    out
}

/// One node without the surrounding parentheses.
fn dump_node(n: &Node, out: &mut String) {
    out.push_str(&n.keyword);
    if !n.flags.is_empty() {
        out.push_str(" [");
        for (i, f) in n.flags.iter().enumerate() {
            if i > 0 {
                out.push(' ');
            }
            out.push_str(&go_quote(f));
        }
        out.push(']');
    }
    let raw = !n.raw_args.is_empty() && keeps_bytes(n);
    for (i, a) in n.args.iter().enumerate() {
        out.push(' ');
        match n.raw_args.get(i).filter(|_| raw) {
            Some(bytes) => out.push_str(&go_quote_bytes(bytes.as_bytes())),
            None => out.push_str(&go_quote(a)),
        }
    }
    if let Some(next) = &n.next {
        out.push_str(" (");
        dump_node(next, out);
        out.push(')');
    }
}

/// Whether BuildKit's parser keeps this node's argument bytes as they are (it reads JSON
/// with `encoding/json` and words rune by rune, both of which make stray bytes U+FFFD).
fn keeps_bytes(n: &Node) -> bool {
    let name_val =
        matches!(n.keyword.as_str(), "env" | "label") && n.args.get(2).is_some_and(|s| s == "=");
    !(n.json_form || n.keyword == "arg" || name_val)
}

/// Quotes `s` exactly like Go's `strconv.Quote`.
pub fn go_quote(s: &str) -> String {
    go_quote_bytes(s.as_bytes())
}

/// Quotes bytes exactly like Go's `strconv.Quote` of a string holding them: a byte that is not
/// part of valid UTF-8 as `\xNN`.
pub fn go_quote_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 2);
    out.push('"');
    let mut rest = bytes;
    while !rest.is_empty() {
        let (valid, stray) = match std::str::from_utf8(rest) {
            Ok(s) => (s, 0),
            Err(e) => {
                let valid = std::str::from_utf8(&rest[..e.valid_up_to()]).unwrap_or_default();
                (valid, e.error_len().unwrap_or(rest.len() - e.valid_up_to()))
            }
        };
        quote_chars(valid, &mut out);
        for b in &rest[valid.len()..valid.len() + stray] {
            let _ = write!(out, "\\x{b:02x}");
        }
        rest = &rest[valid.len() + stray..];
    }
    out.push('"');
    out
}

fn quote_chars(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x0b' => out.push_str("\\v"),
            c if is_go_printable(c) => out.push(c),
            c if (c as u32) < 0x20 || c == '\x7f' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if (c as u32) < 0x10000 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08x}", c as u32);
            }
        }
    }
}

/// Format characters (general category Cf).
const FORMAT_CHARS: &[(u32, u32)] = &[
    (0x00AD, 0x00AD),
    (0x0600, 0x0605),
    (0x061C, 0x061C),
    (0x06DD, 0x06DD),
    (0x070F, 0x070F),
    (0x0890, 0x0891),
    (0x08E2, 0x08E2),
    (0x180E, 0x180E),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x2064),
    (0x2066, 0x206F),
    (0xFEFF, 0xFEFF),
    (0xFFF9, 0xFFFB),
    (0x110BD, 0x110BD),
    (0x110CD, 0x110CD),
    (0x13430, 0x1343F),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0001, 0xE0001),
    (0xE0020, 0xE007F),
];

/// Go's `unicode.IsPrint`: letters, marks, numbers, punctuation, symbols and ASCII space.
/// Approximated without a full category table: controls, non-ASCII spaces, format
/// characters, private use and noncharacters are not printable (unassigned code points
/// are treated as printable; see KNOWN_GAPS.md).
fn is_go_printable(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    let u = c as u32;
    if FORMAT_CHARS.iter().any(|&(a, b)| (a..=b).contains(&u)) {
        return false;
    }
    let private = (0xE000..=0xF8FF).contains(&u) || u >= 0xF0000;
    let nonchar = (0xFDD0..=0xFDEF).contains(&u) || (u & 0xFFFE) == 0xFFFE;
    !(private || nonchar)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dumps_onbuild_and_flags() {
        let df = crate::parse(b"ONBUILD COPY --from=x a b\nonbuild run echo test\nCMD []\n")
            .unwrap_or_default();
        assert_eq!(
            dump(&df),
            "(onbuild (copy [\"--from=x\"] \"a\" \"b\"))\n(onbuild (run \"echo test\"))\n(cmd)"
        );
    }

    #[test]
    fn quotes_like_go() {
        assert_eq!(go_quote("a\"b\\c'"), "\"a\\\"b\\\\c'\"");
        assert_eq!(go_quote("\x00\x1b\x7f\u{7}"), "\"\\x00\\x1b\\x7f\\a\"");
        assert_eq!(go_quote("\u{a0}\u{200b}♥한"), "\"\\u00a0\\u200b♥한\"");
        assert_eq!(go_quote("\u{e0001}"), "\"\\U000e0001\"");
        assert_eq!(go_quote("\u{85}"), "\"\\u0085\"");
        assert_eq!(
            go_quote_bytes(b"a\xff\xe2\x82\n\xc3\xa9"),
            "\"a\\xff\\xe2\\x82\\né\""
        );
    }

    #[test]
    fn dumps_bytes_where_buildkit_keeps_them() {
        let src = b"RUN printf '\xff'\nCOPY a\xfe /b\nENV a=\xff\nENV b \xff\nCMD [\"\xff\"]\nARG c=\xff\n";
        let df = crate::parse(src).unwrap_or_default();
        assert_eq!(
            dump(&df),
            [
                "(run \"printf '\\xff'\")",
                "(copy \"a\\xfe\" \"/b\")",
                "(env \"a\" \"\u{fffd}\" \"=\")",
                "(env \"b\" \"\\xff\" \"\")",
                "(cmd \"\u{fffd}\")",
                "(arg \"c=\u{fffd}\")",
            ]
            .join("\n")
        );
    }
}
