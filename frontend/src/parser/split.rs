//! Splitting a logical line into keyword, `--flags` and argument text (BuildKit's rules).

/// BuildKit's "regex whitespace" `[\t\v\f\r ]`.
pub fn is_regex_ws(c: char) -> bool {
    matches!(c, '\t' | '\x0b' | '\x0c' | '\r' | ' ')
}

/// Splits `s` once on the first run of regex whitespace.
pub fn split_once_regex_ws(s: &str) -> (&str, Option<&str>) {
    match s.find(is_regex_ws) {
        Some(i) => {
            let rest = s[i..].trim_start_matches(is_regex_ws);
            (&s[..i], Some(rest))
        }
        None => (s, None),
    }
}

/// Splits on runs of regex whitespace (no empty fields when `s` has no leading/trailing
/// regex whitespace).
pub fn split_regex_ws(s: &str) -> Vec<String> {
    s.split(is_regex_ws)
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// The parts of a logical line.
#[derive(Debug, PartialEq, Eq)]
pub struct Split {
    /// The keyword as written.
    pub keyword: String,
    /// `--flag[=value]` words, quotes and escapes removed.
    pub flags: Vec<String>,
    /// The argument text, trimmed.
    pub args: String,
    /// Byte range of each flag word in the input line (same length as `flags`).
    pub flag_ranges: Vec<(usize, usize)>,
    /// Byte offset of `args` in the input line.
    pub args_offset: usize,
}

/// Splits a logical line: trim, keyword up to the first regex whitespace, then flags.
pub fn split_command(line: &str, escape: char) -> Split {
    let trimmed = line.trim();
    let (keyword, rest) = split_once_regex_ws(trimmed);
    let (rest_offset, (args, flags, ranges)) = match rest {
        Some(rest) => (
            rest.as_ptr() as usize - line.as_ptr() as usize,
            extract_flags(rest, escape),
        ),
        None => (line.len(), (String::new(), Vec::new(), Vec::new())),
    };
    // `args` is a suffix of `rest`: its offset follows from the lengths.
    let args_offset = match rest {
        Some(rest) => {
            let lead = args.len() - args.trim_start().len();
            rest_offset + (rest.len() - args.len()) + lead
        }
        None => line.len(),
    };
    Split {
        keyword: keyword.to_string(),
        flags,
        args: args.trim().to_string(),
        flag_ranges: ranges
            .into_iter()
            .map(|(a, b)| (a + rest_offset, b + rest_offset))
            .collect(),
        args_offset,
    }
}

/// Reads leading `--flag` words off `line`; returns the remaining argument text and the flags.
/// `'`/`"` quotes are removed, the escape token keeps the next char literally, a bare `--`
/// ends flag parsing and is dropped. The third result is each flag's byte range in `line`.
fn extract_flags(line: &str, escape: char) -> (String, Vec<String>, Vec<(usize, usize)>) {
    #[derive(PartialEq)]
    enum Phase {
        Spaces,
        Word,
        Quote(char),
    }
    let chars: Vec<(usize, char)> = line.char_indices().collect();
    let mut flags = Vec::new();
    let mut ranges = Vec::new();
    let mut word_start = 0;
    let mut phase = Phase::Spaces;
    let mut word = String::new();
    let mut blank_ok = false;
    let mut i = 0;
    while i < chars.len() {
        let (pos, ch) = chars[i];
        if phase == Phase::Spaces {
            if ch.is_whitespace() {
                i += 1;
                continue;
            }
            let next_dash = chars.get(i + 1).is_some_and(|&(_, c)| c == '-');
            if ch != '-' || !next_dash {
                return (line[pos..].to_string(), flags, ranges);
            }
            phase = Phase::Word;
            word_start = pos;
        }
        match phase {
            Phase::Word => {
                if ch.is_whitespace() {
                    phase = Phase::Spaces;
                    if word == "--" {
                        return (line[pos..].to_string(), flags, ranges);
                    }
                    if blank_ok || !word.is_empty() {
                        flags.push(std::mem::take(&mut word));
                        ranges.push((word_start, pos));
                    }
                    word.clear();
                    blank_ok = false;
                } else if ch == '\'' || ch == '"' {
                    phase = Phase::Quote(ch);
                    blank_ok = true;
                } else if ch == escape {
                    if let Some(&(_, next)) = chars.get(i + 1) {
                        word.push(next);
                        i += 1;
                    }
                } else {
                    word.push(ch);
                }
            }
            Phase::Quote(q) => {
                if ch == q {
                    phase = Phase::Word;
                } else if ch == escape {
                    match chars.get(i + 1) {
                        Some(&(_, next)) => {
                            word.push(next);
                            i += 1;
                        }
                        None => phase = Phase::Word,
                    }
                } else {
                    word.push(ch);
                }
            }
            Phase::Spaces => {}
        }
        i += 1;
    }
    if phase != Phase::Spaces && word != "--" && (blank_ok || !word.is_empty()) {
        flags.push(word);
        ranges.push((word_start, line.len()));
    }
    (String::new(), flags, ranges)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_and_args() {
        let s = split_command("COPY --from=build --chown='me' a b", '\\');
        assert_eq!(s.keyword, "COPY");
        assert_eq!(s.flags, vec!["--from=build", "--chown=me"]);
        assert_eq!(s.args, "a b");
        let s = split_command("COPY -- --foo /tmp/", '\\');
        assert!(s.flags.is_empty());
        assert_eq!(s.args, "--foo /tmp/");
        let s = split_command("CMD --doit", '\\');
        assert_eq!(s.flags, vec!["--doit"]);
        assert_eq!(s.args, "");
        let s = split_command("RUN --a=\"x y\" -b", '\\');
        assert_eq!(s.flags, vec!["--a=x y"]);
        assert_eq!(s.args, "-b");
        let s = split_command("FROM", '\\');
        assert_eq!(s.keyword, "FROM");
        assert_eq!(s.args, "");
    }
}
