//! Shell patterns for `${v#p}`, `${v%p}` and `${v/p/r}`, matched the way BuildKit matches them
//! (it turns a pattern into a Go regexp; we match the same language directly).
//!
//! A pattern is literals, `?` (any one character but newline), `*` (any run of characters but
//! newline, lazy or greedy) and escapes `\*`, `\?`, `\\`; `\}` and `\/` stand for `}` and `/`.
//! Any other escape, or a trailing lone `\`, is invalid. Matching follows leftmost-first
//! (backtracking) priority, which is what Go's regexp guarantees for the equivalent regex.

use std::collections::HashSet;

/// One element of a compiled pattern.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tok {
    Lit(char),
    Any,
    Star,
}

/// A compiled shell pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pattern {
    toks: Vec<Tok>,
    greedy: bool,
}

impl Pattern {
    /// Compiles `pattern`; `greedy` makes `*` match as much as possible.
    /// Errors with the reason (e.g. `invalid escape '\x'`).
    pub fn compile(pattern: &str, greedy: bool) -> Result<Self, String> {
        let chars: Vec<char> = pattern.chars().collect();
        let mut toks = Vec::with_capacity(chars.len());
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            i += 1;
            match c {
                '*' => toks.push(Tok::Star),
                '?' => toks.push(Tok::Any),
                '\\' => match chars.get(i) {
                    // `}` and `/` are escaped for `${}` parsing; the escape is not part of it.
                    Some('}') | Some('/') => {}
                    Some(&n @ ('*' | '?' | '\\')) => {
                        toks.push(Tok::Lit(n));
                        i += 1;
                    }
                    Some(n) => return Err(format!("invalid escape '\\{n}'")),
                    None => return Err("invalid escape '\\' at end of pattern".to_string()),
                },
                other => toks.push(Tok::Lit(other)),
            }
        }
        Ok(Pattern { toks, greedy })
    }

    /// The end (char index) of the best match starting exactly at `start`.
    fn match_at(&self, text: &[char], start: usize) -> Option<usize> {
        let mut failed = HashSet::new();
        self.match_from(0, text, start, &mut failed)
    }

    /// Backtracking in priority order. `failed` remembers `(token, position)` states known not
    /// to match, which keeps patterns with many `*` polynomial.
    fn match_from(
        &self,
        ti: usize,
        text: &[char],
        pos: usize,
        failed: &mut HashSet<(usize, usize)>,
    ) -> Option<usize> {
        let Some(tok) = self.toks.get(ti) else {
            return Some(pos);
        };
        if failed.contains(&(ti, pos)) {
            return None;
        }
        let found = match *tok {
            Tok::Lit(c) => {
                if text.get(pos) == Some(&c) {
                    self.match_from(ti + 1, text, pos + 1, failed)
                } else {
                    None
                }
            }
            Tok::Any => match text.get(pos) {
                Some(&c) if c != '\n' => self.match_from(ti + 1, text, pos + 1, failed),
                _ => None,
            },
            Tok::Star => {
                let run = text[pos.min(text.len())..]
                    .iter()
                    .take_while(|&&c| c != '\n')
                    .count();
                let mut found = None;
                for i in 0..=run {
                    let k = if self.greedy { run - i } else { i };
                    if let Some(end) = self.match_from(ti + 1, text, pos + k, failed) {
                        found = Some(end);
                        break;
                    }
                }
                found
            }
        };
        if found.is_none() {
            failed.insert((ti, pos));
        }
        found
    }

    /// The leftmost match at or after char index `from`, as a char range.
    fn find_from(&self, text: &[char], from: usize) -> Option<(usize, usize)> {
        (from..=text.len()).find_map(|s| self.match_at(text, s).map(|e| (s, e)))
    }
}

/// `${value#pattern}` / `${value##pattern}`: removes the shortest/longest matching prefix.
pub fn trim_prefix(pattern: &str, value: &str, greedy: bool) -> Result<String, String> {
    let p = Pattern::compile(pattern, greedy)?;
    let text: Vec<char> = value.chars().collect();
    Ok(match p.match_at(&text, 0) {
        Some(end) => text[end..].iter().collect(),
        None => value.to_string(),
    })
}

/// `${value%pattern}` / `${value%%pattern}`: removes the shortest/longest matching suffix
/// (done as a prefix trim of the reversed value with the reversed pattern, as BuildKit does).
pub fn trim_suffix(pattern: &str, value: &str, greedy: bool) -> Result<String, String> {
    let reversed = trim_prefix(&reverse_pattern(pattern), &reverse_string(value), greedy)?;
    Ok(reverse_string(&reversed))
}

/// Reverses a pattern, keeping each `\c` pair in order.
pub fn reverse_pattern(pattern: &str) -> String {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = chars.clone();
    let Some(last) = chars.len().checked_sub(1) else {
        return String::new();
    };
    let mut i = 0;
    while i <= last {
        let out_idx = last - i;
        if chars[i] == '\\' && i != last {
            out[out_idx - 1] = '\\';
            out[out_idx] = chars[i + 1];
            i += 2;
        } else {
            out[out_idx] = chars[i];
            i += 1;
        }
    }
    out.into_iter().collect()
}

/// Reverses a string by characters.
pub fn reverse_string(s: &str) -> String {
    s.chars().rev().collect()
}

/// `${value/pattern/repl}` (`all == false`) and `${value//pattern/repl}` (`all == true`).
/// Greedy, unanchored. Like Go's `ReplaceAllString`, the replace-all form treats `$0`/`${0}`
/// in `repl` as the match, other `$name`s as empty groups and `$$` as `$`; replace-first
/// inserts `repl` literally.
pub fn replace(pattern: &str, value: &str, repl: &str, all: bool) -> Result<String, String> {
    let p = Pattern::compile(pattern, true)?;
    let text: Vec<char> = value.chars().collect();
    if !all {
        return Ok(match p.find_from(&text, 0) {
            Some((s, e)) => {
                let mut out: String = text[..s].iter().collect();
                out.push_str(repl);
                out.extend(&text[e..]);
                out
            }
            None => value.to_string(),
        });
    }
    let mut out = String::new();
    let mut last_end = 0;
    let mut search = 0;
    while search <= text.len() {
        let Some((s, e)) = p.find_from(&text, search) else {
            break;
        };
        out.extend(&text[last_end..s]);
        if e > last_end || s == 0 {
            let matched: String = text[s..e].iter().collect();
            out.push_str(&expand_template(repl, &matched));
        }
        last_end = e;
        search = if search + 1 > e { search + 1 } else { e };
    }
    out.extend(&text[last_end.min(text.len())..]);
    Ok(out)
}

/// Go's `Regexp.Expand` for a regexp without capture groups.
fn expand_template(template: &str, whole: &str) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(idx) = rest.find('$') {
        out.push_str(&rest[..idx]);
        rest = &rest[idx + 1..];
        if let Some(r) = rest.strip_prefix('$') {
            out.push('$');
            rest = r;
            continue;
        }
        match extract_group_name(rest) {
            Some((name, r)) => {
                if name == "0" {
                    out.push_str(whole);
                }
                rest = r;
            }
            None => out.push('$'),
        }
    }
    out.push_str(rest);
    out
}

/// `name` or `{name}` at the start of `s` (letters, digits, `_`), and the rest after it.
fn extract_group_name(s: &str) -> Option<(&str, &str)> {
    let (brace, body) = match s.strip_prefix('{') {
        Some(b) => (true, b),
        None => (false, s),
    };
    let len: usize = body
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .map(char::len_utf8)
        .sum();
    if len == 0 {
        return None;
    }
    let name = &body[..len];
    let mut rest = &body[len..];
    if brace {
        rest = rest.strip_prefix('}')?;
    }
    Some((name, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_and_suffix() {
        assert_eq!(trim_prefix("*x", "xxyy", false).as_deref(), Ok("xyy"));
        assert_eq!(trim_prefix("*x", "xxyy", true).as_deref(), Ok("yy"));
        assert_eq!(trim_suffix("y*", "xxyy", false).as_deref(), Ok("xxy"));
        assert_eq!(trim_suffix("y*", "xxyy", true).as_deref(), Ok("xx"));
        assert_eq!(trim_suffix("\\**\\*", "a***yy*", true).as_deref(), Ok("a"));
    }

    #[test]
    fn invalid_escapes() {
        assert!(Pattern::compile("\\x", false).is_err());
        assert!(Pattern::compile("a\\", false).is_err());
        assert!(Pattern::compile("\\}\\/\\*", false).is_ok());
    }

    #[test]
    fn reverse_keeps_escape_pairs() {
        assert_eq!(reverse_pattern("a\\*b"), "b\\*a");
        assert_eq!(reverse_pattern("ab\\"), "\\ba");
    }

    #[test]
    fn many_stars_stay_fast() {
        let value = "a".repeat(300);
        let pat = "*a*a*a*a*a*a*a*a*a*a*b";
        assert_eq!(
            trim_prefix(pat, &value, false).as_deref(),
            Ok(value.as_str())
        );
    }

    #[test]
    fn replace_first_and_all() {
        assert_eq!(
            replace("/tmp", "/tmp/tmp/b", "", false).as_deref(),
            Ok("/tmp/b")
        );
        assert_eq!(replace("/tmp", "/tmp/tmp/b", "", true).as_deref(), Ok("/b"));
        assert_eq!(replace("", "ab", "-", true).as_deref(), Ok("-a-b-"));
        assert_eq!(replace("b", "abc", "<$0>", true).as_deref(), Ok("a<b>c"));
        assert_eq!(replace("b", "abc", "$$", true).as_deref(), Ok("a$c"));
    }
}
