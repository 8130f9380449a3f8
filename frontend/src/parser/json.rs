//! The JSON (exec) form of instruction arguments: `["a", "b"]`.
//!
//! In the escaped form of a file that is not UTF-8 (see the parser docs), a string literal
//! may hold escape code points standing for stray bytes; serde_json keeps them as they are.
//! A `\u` escape that stands for a character of the escape range would come out as that
//! same code point and be taken for a stray byte later, so such strings are decoded again by
//! [`decode_escaped`], which writes those characters in the escaped form.

use rbuild_types::bytes::{escape_str, escaped_byte};

/// How a JSON-array attempt ended.
#[derive(Debug, PartialEq, Eq)]
pub enum JsonArgs {
    /// A valid array of strings.
    Strings(Vec<String>),
    /// Not JSON (or not an array): the caller falls back to the non-JSON rule.
    NotJson,
    /// A valid JSON array with a non-string element: a hard error.
    NotStringArray,
}

/// Tries to read `rest` (left-trimmed) as a JSON array of strings; strict RFC 8259.
/// `escaped`: `rest` is in the escaped form (then so are the strings returned).
pub fn parse_json(rest: &str, escaped: bool) -> JsonArgs {
    let rest = rest.trim_start();
    if !rest.starts_with('[') {
        return JsonArgs::NotJson;
    }
    let Ok(values) = serde_json::from_str::<Vec<serde_json::Value>>(rest) else {
        return JsonArgs::NotJson;
    };
    let mut out = Vec::with_capacity(values.len());
    for v in values {
        match v {
            serde_json::Value::String(s) => out.push(s),
            _ => return JsonArgs::NotStringArray,
        }
    }
    let produced_escapes = |out: &[String]| {
        out.iter()
            .any(|s| s.chars().any(|c| escaped_byte(c).is_some()))
    };
    if escaped && rest.contains("\\u") && produced_escapes(&out) {
        if let Some(exact) = decode_escaped(rest) {
            out = exact;
        }
    }
    JsonArgs::Strings(out)
}

/// The strings of `text`, a JSON array of strings that serde_json accepted, with every
/// character a `\u` escape produces in the escape range written in the escaped form.
fn decode_escaped(text: &str) -> Option<Vec<String>> {
    let mut chars = text.trim_start().strip_prefix('[')?.chars();
    let mut out = Vec::new();
    loop {
        match chars.find(|c| !matches!(c, ' ' | '\t' | '\n' | '\r' | ','))? {
            ']' => return Some(out),
            '"' => out.push(string_body(&mut chars)?),
            _ => return None,
        }
    }
}

/// Reads one string literal after its opening quote, through its closing quote.
fn string_body(chars: &mut std::str::Chars<'_>) -> Option<String> {
    let mut s = String::new();
    loop {
        match chars.next()? {
            '"' => return Some(s),
            '\\' => {
                let c = match chars.next()? {
                    'b' => '\u{8}',
                    'f' => '\u{c}',
                    'n' => '\n',
                    'r' => '\r',
                    't' => '\t',
                    'u' => {
                        let hi = hex4(chars)?;
                        let code = if (0xD800..0xDC00).contains(&hi) {
                            if chars.next()? != '\\' || chars.next()? != 'u' {
                                return None;
                            }
                            let lo = hex4(chars)?;
                            0x10000 + ((hi - 0xD800) << 10) + (lo.checked_sub(0xDC00)? & 0x3FF)
                        } else {
                            hi
                        };
                        let c = char::from_u32(code)?;
                        s.push_str(&escape_str(c.encode_utf8(&mut [0; 4])));
                        continue;
                    }
                    other => other,
                };
                s.push(c);
            }
            c => s.push(c),
        }
    }
}

fn hex4(chars: &mut std::str::Chars<'_>) -> Option<u32> {
    let mut v = 0;
    for _ in 0..4 {
        v = v * 16 + chars.next()?.to_digit(16)?;
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rbuild_types::bytes::{escape, unescape};

    #[test]
    fn json_forms() {
        assert_eq!(parse_json("[]", false), JsonArgs::Strings(vec![]));
        assert_eq!(
            parse_json("\t[\t\"a\",\t\"b\"\t]\t", false),
            JsonArgs::Strings(vec!["a".into(), "b".into()])
        );
        assert_eq!(parse_json("['a']", false), JsonArgs::NotJson);
        assert_eq!(parse_json("[\"a\",]", false), JsonArgs::NotJson);
        assert_eq!(parse_json("[\"a\"] x", false), JsonArgs::NotJson);
        assert_eq!(parse_json("[\"a\",1]", false), JsonArgs::NotStringArray);
        assert_eq!(parse_json("a", false), JsonArgs::NotJson);
    }

    #[test]
    fn escaped_strings_keep_their_bytes() {
        // A stray byte, and the same code point written as a `\u` escape (a real character).
        let line = escape(b"[\"a\xff\", \"\\udbff\\udfff\\n\\u00e9\"]");
        let JsonArgs::Strings(args) = parse_json(&line, true) else {
            panic!("a JSON array");
        };
        let bytes: Vec<Vec<u8>> = args.iter().map(|a| unescape(a).into_owned()).collect();
        assert_eq!(
            bytes,
            vec![b"a\xff".to_vec(), "\u{10FFFF}\n\u{e9}".as_bytes().to_vec()]
        );
        // A UTF-8 file is not escaped: the real character stays one.
        assert_eq!(
            parse_json("[\"\\udbff\\udfff\"]", false),
            JsonArgs::Strings(vec!["\u{10FFFF}".into()])
        );
    }
}
