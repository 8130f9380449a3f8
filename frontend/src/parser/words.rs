//! BuildKit's quote-preserving word splitter for ARG, ENV and LABEL.
//!
//! Whitespace outside quotes ends a word; quote characters stay in the word; the escape
//! token and the character after it are both kept (a trailing escape is dropped); inside
//! `'…'` the escape token is an ordinary character. An unclosed word at the end is kept.

/// Splits `rest` into words (see the module docs).
pub fn parse_words(rest: &str, escape: char) -> Vec<String> {
    let chars: Vec<char> = rest.chars().collect();
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut blank_ok = false;
    let mut i = 0;
    while i < chars.len() {
        let ch = chars[i];
        i += 1;
        if let Some(q) = quote {
            if ch == q {
                quote = None;
                word.push(ch);
                continue;
            }
            if ch == escape && q != '\'' {
                match chars.get(i) {
                    Some(&next) => {
                        word.push(ch);
                        word.push(next);
                        i += 1;
                    }
                    None => quote = None,
                }
                continue;
            }
            word.push(ch);
            continue;
        }
        if !in_word {
            if ch.is_whitespace() {
                continue;
            }
            in_word = true;
        }
        if ch.is_whitespace() {
            if blank_ok || !word.is_empty() {
                words.push(std::mem::take(&mut word));
            }
            in_word = false;
            blank_ok = false;
            continue;
        }
        if ch == '\'' || ch == '"' {
            quote = Some(ch);
            blank_ok = true;
            word.push(ch);
            continue;
        }
        if ch == escape {
            if let Some(&next) = chars.get(i) {
                word.push(ch);
                word.push(next);
                i += 1;
            }
            continue;
        }
        word.push(ch);
    }
    if (in_word || quote.is_some()) && (blank_ok || !word.is_empty()) {
        words.push(word);
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_like_buildkit() {
        assert_eq!(parse_words("foo\\ bar", '\\'), vec!["foo\\ bar"]);
        assert_eq!(
            parse_words("foo bar 'abc xyz'", '\\'),
            vec!["foo", "bar", "'abc xyz'"]
        );
        assert_eq!(parse_words("a \"b\\\" c\"", '\\'), vec!["a", "\"b\\\" c\""]);
        assert_eq!(parse_words("'a\\' b", '\\'), vec!["'a\\'", "b"]);
        assert_eq!(parse_words("a\\", '\\'), vec!["a"]);
        assert_eq!(parse_words("\"unclosed x", '\\'), vec!["\"unclosed x"]);
        assert!(parse_words("   ", '\\').is_empty());
    }
}
