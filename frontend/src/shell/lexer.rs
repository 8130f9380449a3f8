//! The expansion state machine, one character at a time, as BuildKit's `shellWord`.
//!
//! Rules (Linux): outside quotes the escape token makes the next character literal (a trailing
//! lone escape is dropped); single quotes keep everything literal; inside double quotes the
//! escape only escapes `"`, `$` and itself; `$name`/`${…}` expand everywhere but in single
//! quotes. Unquoted expansion results are split into words by [`process_words`].

use std::collections::BTreeSet;

use super::env::Env;
use super::error::{ShellError, ShellErrorKind};
use super::pattern;
use super::words::Words;

/// The full result of processing one word.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Expansion {
    /// The processed word (quotes removed, escapes resolved, variables expanded).
    pub word: String,
    /// The same, split on unquoted whitespace after expansion.
    pub words: Vec<String>,
    /// Variable names that were looked up and set.
    pub matched: BTreeSet<String>,
    /// Variable names that were looked up and not set.
    pub unmatched: BTreeSet<String>,
}

/// Expands `input` into one string (whitespace kept).
pub fn process_word(input: &str, env: &dyn Env, escape: char) -> Result<String, ShellError> {
    expand(input, env, escape).map(|e| e.word)
}

/// Expands `input` and splits it into words on unquoted whitespace.
pub fn process_words(input: &str, env: &dyn Env, escape: char) -> Result<Vec<String>, ShellError> {
    expand(input, env, escape).map(|e| e.words)
}

/// Like [`process_word`], also returning the variable names found and not found.
pub fn process_word_with_matches(
    input: &str,
    env: &dyn Env,
    escape: char,
) -> Result<(String, BTreeSet<String>, BTreeSet<String>), ShellError> {
    expand(input, env, escape).map(|e| (e.word, e.matched, e.unmatched))
}

/// Lexer switches BuildKit uses for progress names (`RUN` lines are shown with quotes kept
/// and unset variables left as written).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LexOptions {
    /// Keep quote characters in the output.
    pub raw_quotes: bool,
    /// Leave references to unset variables as written instead of expanding them to "".
    pub skip_unset: bool,
    /// Treat quote characters as ordinary text (heredoc bodies).
    pub skip_quotes: bool,
}

/// Expands `input` and returns everything the lexer learned.
pub fn expand(input: &str, env: &dyn Env, escape: char) -> Result<Expansion, ShellError> {
    expand_with(input, env, escape, LexOptions::default())
}

/// [`expand`] with [`LexOptions`].
pub fn expand_with(
    input: &str,
    env: &dyn Env,
    escape: char,
    opts: LexOptions,
) -> Result<Expansion, ShellError> {
    let mut lx = Lexer {
        chars: input.chars().collect(),
        pos: 0,
        env,
        escape,
        opts,
        matched: BTreeSet::new(),
        unmatched: BTreeSet::new(),
    };
    match lx.process_stop_on(None, false) {
        Ok((word, words)) => Ok(Expansion {
            word,
            words,
            matched: lx.matched,
            unmatched: lx.unmatched,
        }),
        Err(kind) => Err(ShellError {
            input: input.to_string(),
            kind,
        }),
    }
}

type Result2<T> = std::result::Result<T, ShellErrorKind>;

struct Lexer<'a> {
    chars: Vec<char>,
    pos: usize,
    env: &'a dyn Env,
    escape: char,
    opts: LexOptions,
    matched: BTreeSet<String>,
    unmatched: BTreeSet<String>,
}

/// Parameters that are never set in a Dockerfile but are valid names (`$@`, `$#`, …).
fn is_special_param(c: char) -> bool {
    matches!(c, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0')
}

impl Lexer<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    fn get_env(&mut self, name: &str) -> Option<String> {
        let v = self.env.lookup(name);
        if v.is_some() {
            self.matched.insert(name.to_string());
        } else {
            self.unmatched.insert(name.to_string());
        }
        v
    }

    /// Processes up to (and consuming) `stop`, or to the end when `stop` is `None`.
    /// `raw_escapes` keeps escape tokens in the output (for patterns).
    fn process_stop_on(
        &mut self,
        stop: Option<char>,
        raw_escapes: bool,
    ) -> Result2<(String, Vec<String>)> {
        let mut result = String::new();
        let mut words = Words::default();
        let mut found = false;
        while let Some(ch) = self.peek() {
            if Some(ch) == stop {
                self.next();
                found = true;
                break;
            }
            match ch {
                '\'' | '"' if self.opts.skip_quotes => {
                    self.next();
                    words.add_char(ch);
                    result.push(ch);
                }
                '\'' => {
                    let s = self.process_single_quote()?;
                    result.push_str(&s);
                    words.add_raw_string(&s);
                }
                '"' => {
                    let s = self.process_double_quote()?;
                    result.push_str(&s);
                    words.add_raw_string(&s);
                }
                '$' => {
                    let s = self.process_dollar()?;
                    result.push_str(&s);
                    words.add_string(&s);
                }
                _ => {
                    self.next();
                    if ch == self.escape {
                        if raw_escapes {
                            words.add_raw_char(ch);
                            result.push(ch);
                        }
                        let Some(escaped) = self.next() else {
                            break;
                        };
                        words.add_raw_char(escaped);
                        result.push(escaped);
                    } else {
                        words.add_char(ch);
                        result.push(ch);
                    }
                }
            }
        }
        if let Some(stop) = stop {
            if !found {
                return Err(ShellErrorKind::MissingStop(stop));
            }
        }
        Ok((result, words.finish()))
    }

    fn process_single_quote(&mut self) -> Result2<String> {
        self.next();
        let mut out = String::new();
        if self.opts.raw_quotes {
            out.push('\'');
        }
        loop {
            match self.next() {
                None => return Err(ShellErrorKind::UnterminatedSingleQuote),
                Some('\'') => {
                    if self.opts.raw_quotes {
                        out.push('\'');
                    }
                    return Ok(out);
                }
                Some(c) => out.push(c),
            }
        }
    }

    fn process_double_quote(&mut self) -> Result2<String> {
        self.next();
        let mut out = String::new();
        if self.opts.raw_quotes {
            out.push('"');
        }
        loop {
            let Some(ch) = self.peek() else {
                return Err(ShellErrorKind::UnterminatedDoubleQuote);
            };
            if ch == '"' {
                self.next();
                if self.opts.raw_quotes {
                    out.push('"');
                }
                return Ok(out);
            }
            if ch == '$' {
                out.push_str(&self.process_dollar()?);
                continue;
            }
            self.next();
            if ch == self.escape {
                match self.peek() {
                    // A lone escape at the end: dropped; the missing quote errors next.
                    None => continue,
                    Some(n) if n == '"' || n == '$' || n == self.escape => {
                        self.next();
                        out.push(n);
                        continue;
                    }
                    Some(_) => {}
                }
            }
            out.push(ch);
        }
    }

    fn process_name(&mut self) -> String {
        let mut name = String::new();
        while let Some(ch) = self.peek() {
            if name.is_empty() && ch.is_ascii_digit() {
                while let Some(d) = self.peek().filter(char::is_ascii_digit) {
                    self.next();
                    name.push(d);
                }
                return name;
            }
            if name.is_empty() && is_special_param(ch) {
                self.next();
                return ch.to_string();
            }
            if !ch.is_alphanumeric() && ch != '_' {
                break;
            }
            self.next();
            name.push(ch);
        }
        name
    }

    fn process_dollar(&mut self) -> Result2<String> {
        self.next();
        if self.peek() != Some('{') {
            let name = self.process_name();
            if name.is_empty() {
                return Ok("$".to_string());
            }
            return Ok(match self.get_env(&name) {
                Some(v) => v,
                None if self.opts.skip_unset => format!("${name}"),
                None => String::new(),
            });
        }
        self.next();
        match self.peek() {
            None => return Err(ShellErrorKind::MissingBrace),
            Some('{' | '}' | ':') => return Err(ShellErrorKind::BadSubstitution),
            Some(_) => {}
        }
        let name = self.process_name();
        let Some(mut ch) = self.next() else {
            return Err(ShellErrorKind::MissingBrace);
        };
        let mut modifier = ch.to_string();
        match ch {
            '}' => Ok(match self.get_env(&name) {
                Some(v) => v,
                None if self.opts.skip_unset => format!("${{{name}}}"),
                None => String::new(),
            }),
            ':' | '+' | '-' | '?' | '#' | '%' => {
                let null_is_unset = ch == ':';
                if null_is_unset {
                    match self.next() {
                        Some(c) => {
                            ch = c;
                            modifier.push(c);
                        }
                        None => return Err(ShellErrorKind::MissingBrace),
                    }
                }
                let raw_escapes = ch == '#' || ch == '%';
                if null_is_unset && raw_escapes {
                    return Err(ShellErrorKind::UnsupportedModifier(modifier));
                }
                let word = self.sub_word('}', raw_escapes, ShellErrorKind::MissingBrace)?;
                let value = self.get_env(&name);
                if value.is_none() && self.opts.skip_unset {
                    return Ok(format!("${{{name}{modifier}{word}}}"));
                }
                let unset = value.is_none() || (null_is_unset && value.as_deref() == Some(""));
                match ch {
                    '-' => Ok(if unset {
                        word
                    } else {
                        value.unwrap_or_default()
                    }),
                    '+' => Ok(if unset { String::new() } else { word }),
                    '?' => match value {
                        None => Err(required(&name, word, "is not allowed to be unset")),
                        Some(v) if null_is_unset && v.is_empty() => {
                            Err(required(&name, word, "is not allowed to be empty"))
                        }
                        Some(v) => Ok(v),
                    },
                    '#' | '%' => {
                        let value = value.unwrap_or_default();
                        if word.is_empty() {
                            return Ok(value);
                        }
                        let (greedy, pat) = match word.strip_prefix(ch) {
                            Some(rest) => (true, rest),
                            None => (false, word.as_str()),
                        };
                        let res = if ch == '%' {
                            pattern::trim_suffix(pat, &value, greedy)
                        } else {
                            pattern::trim_prefix(pat, &value, greedy)
                        };
                        res.map_err(|reason| ShellErrorKind::InvalidPattern {
                            pattern: pat.to_string(),
                            reason,
                        })
                    }
                    _ => Err(ShellErrorKind::UnsupportedModifier(modifier)),
                }
            }
            '/' => {
                let all = self.peek() == Some('/');
                if all {
                    self.next();
                }
                let pat = self.sub_word('/', true, ShellErrorKind::MissingSlash)?;
                let repl = self.sub_word('}', true, ShellErrorKind::MissingBrace)?;
                let value = self.get_env(&name);
                if value.is_none() && self.opts.skip_unset {
                    return Ok(format!("${{{name}/{pat}/{repl}}}"));
                }
                let value = value.unwrap_or_default();
                pattern::replace(&pat, &value, &repl, all).map_err(|reason| {
                    ShellErrorKind::InvalidPattern {
                        pattern: pat.clone(),
                        reason,
                    }
                })
            }
            _ => Err(ShellErrorKind::UnsupportedModifier(modifier)),
        }
    }

    /// The word of a `${name<op>word}` form up to `stop`; running out of input is `at_eof`.
    fn sub_word(
        &mut self,
        stop: char,
        raw_escapes: bool,
        at_eof: ShellErrorKind,
    ) -> Result2<String> {
        match self.process_stop_on(Some(stop), raw_escapes) {
            Ok((w, _)) => Ok(w),
            Err(_) if self.peek().is_none() => Err(at_eof),
            Err(e) => Err(e),
        }
    }
}

fn required(name: &str, word: String, default: &str) -> ShellErrorKind {
    ShellErrorKind::Required {
        name: name.to_string(),
        message: if word.is_empty() {
            default.to_string()
        } else {
            word
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn basic_forms() {
        let e = env(&[("PWD", "/home"), ("NULL", "")]);
        let cases = [
            ("he${PWD}", "he/home"),
            ("he${XXX:-000}xx", "he000xx"),
            ("he${NULL?}", "he"),
            ("'$PWD'", "$PWD"),
            ("\"he\\$PWD\"", "he$PWD"),
            ("$@@@", "@@"),
            ("hello\\", "hello"),
        ];
        for (input, want) in cases {
            assert_eq!(
                process_word(input, &e, '\\').as_deref(),
                Ok(want),
                "{input}"
            );
        }
    }

    #[test]
    fn errors() {
        let e = env(&[]);
        for input in ["${}", "he${PWD", "'abc", "\"abc", "${X:=1}", "${X:#a}"] {
            assert!(process_word(input, &e, '\\').is_err(), "{input}");
        }
        let err = process_word("${V:?need $V}", &e, '\\').unwrap_err();
        assert!(err.to_string().contains("V: need"), "{err}");
    }

    #[test]
    fn words_split_after_expansion() {
        let e = env(&[("space", "abc  def")]);
        assert_eq!(
            process_words("hello${space}bye \"${space}\"", &e, '\\').unwrap(),
            vec!["helloabc", "defbye", "abc  def"]
        );
    }

    #[test]
    fn raw_quotes_and_skip_unset() {
        let e = env(&[("A", "x")]);
        let opts = LexOptions {
            raw_quotes: true,
            skip_unset: true,
            skip_quotes: false,
        };
        let got = expand_with("echo \"$A\" '$B' ${C:-d} $D", &e, '\\', opts).unwrap();
        assert_eq!(got.word, "echo \"x\" '$B' ${C:-d} $D");
        assert_eq!(process_word("${U///abc}", &e, '\\').as_deref(), Ok("abc"));
        let opts = LexOptions {
            skip_quotes: true,
            ..LexOptions::default()
        };
        let got = expand_with("say \"$A\" 'b'", &e, '\\', opts).unwrap();
        assert_eq!(got.word, "say \"x\" 'b'");
    }

    #[test]
    fn backtick_escape() {
        let e = env(&[("A", "x")]);
        assert_eq!(process_word("`$A`` ", &e, '`').as_deref(), Ok("$A` "));
    }
}
