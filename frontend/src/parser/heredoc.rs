//! Heredoc detection on RUN/COPY/ADD lines (`<<EOF`, `<<-'EOF'`, `3<<EOF`).
//!
//! The logical line is split into shell words with quotes and escapes kept (always `\` as
//! escape, `$VARS` literal); an unquoted `<<`/`<<-` at a word start absorbs the spaces after it.
//! A word `^(\d*)<<(-?)\s*(name)$` whose name is one shell word is a heredoc; the name has its
//! quotes removed and escapes resolved, and the body is expanded only if no part was quoted.

use nom::bytes::complete::{tag, take_while};
use nom::combinator::opt;
use nom::IResult;

/// A heredoc header found on an instruction line (its body is read by the caller).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeredocHeader {
    pub name: String,
    pub expand: bool,
    pub chomp: bool,
    pub fd: u32,
}

/// Why a heredoc word is malformed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HeredocError {
    #[error("unterminated quote in heredoc name {word:?}")]
    UnterminatedQuote { word: String },
    #[error("heredoc file descriptor {fd:?} is out of range in {word:?}")]
    FdRange { fd: String, word: String },
}

/// Splits a line into shell words, keeping quotes and escapes (see the module docs).
/// An unterminated quote runs to the end of the line.
pub fn raw_words(line: &str) -> Vec<String> {
    let chars: Vec<char> = line.chars().collect();
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut i = 0;
    while i < chars.len() {
        let ch = chars[i];
        if ch.is_whitespace() {
            if in_word {
                words.push(std::mem::take(&mut word));
                in_word = false;
            }
            i += 1;
            continue;
        }
        in_word = true;
        match ch {
            '\\' => {
                word.push(ch);
                if let Some(&n) = chars.get(i + 1) {
                    word.push(n);
                    i += 1;
                }
                i += 1;
            }
            '\'' | '"' => {
                word.push(ch);
                i += 1;
                while i < chars.len() {
                    let c = chars[i];
                    word.push(c);
                    i += 1;
                    if c == ch {
                        break;
                    }
                    if c == '\\' && ch == '"' {
                        if let Some(&n) = chars.get(i) {
                            word.push(n);
                            i += 1;
                        }
                    }
                }
            }
            '<' if chars.get(i + 1) == Some(&'<') && word.chars().all(|c| c.is_ascii_digit()) => {
                word.push_str("<<");
                i += 2;
                if chars.get(i) == Some(&'-') {
                    word.push('-');
                    i += 1;
                }
                while let Some(&c) = chars.get(i) {
                    if matches!(c, ' ' | '\t' | '\r') {
                        word.push(c);
                        i += 1;
                    } else {
                        break;
                    }
                }
            }
            _ => {
                word.push(ch);
                i += 1;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

/// Splits `s` into shell words with quotes removed and escapes resolved; returns each word
/// and whether any part of it was quoted. Errors on an unterminated quote.
fn cooked_words(s: &str) -> Result<Vec<(String, bool)>, HeredocError> {
    let chars: Vec<char> = s.chars().collect();
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    let mut in_word = false;
    let mut i = 0;
    let unterminated = || HeredocError::UnterminatedQuote {
        word: s.to_string(),
    };
    while i < chars.len() {
        let ch = chars[i];
        i += 1;
        if ch.is_whitespace() {
            if in_word {
                words.push((std::mem::take(&mut word), quoted));
                quoted = false;
                in_word = false;
            }
            continue;
        }
        in_word = true;
        match ch {
            '\\' => {
                if let Some(&n) = chars.get(i) {
                    word.push(n);
                    i += 1;
                }
            }
            '\'' => {
                quoted = true;
                loop {
                    let Some(&c) = chars.get(i) else {
                        return Err(unterminated());
                    };
                    i += 1;
                    if c == '\'' {
                        break;
                    }
                    word.push(c);
                }
            }
            '"' => {
                quoted = true;
                loop {
                    let Some(&c) = chars.get(i) else {
                        return Err(unterminated());
                    };
                    i += 1;
                    if c == '"' {
                        break;
                    }
                    if c == '\\' {
                        match chars.get(i) {
                            Some(&n) if matches!(n, '"' | '\\' | '$' | '`') => {
                                word.push(n);
                                i += 1;
                                continue;
                            }
                            _ => {}
                        }
                    }
                    word.push(c);
                }
            }
            _ => word.push(ch),
        }
    }
    if in_word {
        words.push((word, quoted));
    }
    Ok(words)
}

/// `(\d*)<<(-?)\s*` then the rest.
fn header(input: &str) -> IResult<&str, (&str, bool)> {
    let (rest, fd) = take_while(|c: char| c.is_ascii_digit())(input)?;
    let (rest, _) = tag("<<")(rest)?;
    let (rest, dash) = opt(tag("-"))(rest)?;
    let (rest, _) = take_while(char::is_whitespace)(rest)?;
    Ok((rest, (fd, dash.is_some())))
}

/// Reads one word as a heredoc header: `Ok(None)` when it is not one.
pub fn parse_heredoc_word(word: &str) -> Result<Option<HeredocHeader>, HeredocError> {
    let Ok((rest, (fd, chomp))) = header(word) else {
        return Ok(None);
    };
    if rest.is_empty() || rest.contains('<') {
        return Ok(None);
    }
    let words = cooked_words(rest)?;
    let [(name, quoted)] = words.as_slice() else {
        return Ok(None);
    };
    let fd = if fd.is_empty() {
        0
    } else {
        fd.parse::<u32>().map_err(|_| HeredocError::FdRange {
            fd: fd.to_string(),
            word: word.to_string(),
        })?
    };
    Ok(Some(HeredocHeader {
        name: name.clone(),
        expand: !quoted,
        chomp,
        fd,
    }))
}

/// All heredoc headers on a logical line, in order.
pub fn heredocs_from_line(line: &str) -> Result<Vec<HeredocHeader>, HeredocError> {
    let mut out = Vec::new();
    for w in raw_words(line) {
        if let Some(h) = parse_heredoc_word(&w)? {
            out.push(h);
        }
    }
    Ok(out)
}

/// Removes leading tabs from every line of `s` (for `<<-` bodies).
pub fn chomp(s: &str) -> String {
    s.split_inclusive('\n')
        .map(|l| l.trim_start_matches('\t'))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(line: &str) -> Vec<String> {
        heredocs_from_line(line)
            .unwrap_or_default()
            .into_iter()
            .map(|h| h.name)
            .collect()
    }

    #[test]
    fn names_from_lines() {
        assert_eq!(names("RUN <<- EOF"), vec!["EOF"]);
        assert_eq!(names("RUN << -EOF"), vec!["-EOF"]);
        assert_eq!(names("RUN <<EOF <<EOF2"), vec!["EOF", "EOF2"]);
        assert!(names("RUN '<<EOF'").is_empty());
        assert_eq!(names("RUN <<  EOF  > foo"), vec!["EOF"]);
        assert_eq!(names("RUN <<'one two'"), vec!["one two"]);
    }

    #[test]
    fn words() {
        for w in [
            "<<EOF",
            "<<'EOF'",
            "<<\"EOF\"",
            "<<-EOF",
            "<<EO\"F\"",
            "<< EOF",
        ] {
            let h = parse_heredoc_word(w).ok().flatten().map(|h| h.name);
            assert_eq!(h.as_deref(), Some("EOF"), "{w}");
        }
        for w in ["<<'EOF", "<<EOF\""] {
            assert!(parse_heredoc_word(w).is_err(), "{w}");
        }
        for w in ["", "<<", "<<-", "<EOF", "<<<EOF", "<<EOF sh"] {
            assert_eq!(parse_heredoc_word(w), Ok(None), "{w}");
        }
        let h = parse_heredoc_word("<<eo\\'f").ok().flatten();
        assert_eq!(h.map(|h| (h.name, h.expand)), Some(("eo'f".into(), true)));
        assert_eq!(chomp("\thello\n\tworld\n"), "hello\nworld\n");
    }
}
