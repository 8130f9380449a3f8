//! Dockerfile lines around a place, as BuildKit prints a source location
//! (`solver/errdefs.Source.Print`): the file and first line, a rule, the lines with the marked
//! ones as `>>>` (two lines of context each side, four for a single line, as far as the file
//! goes), a rule. rbuild adds a caret line under the exact span when it is on one line.

use std::fmt::Write as _;

use rbuild_types::Span;

/// The excerpt of `src` (named `file`) for lines `first..=last` (1-based), with carets under
/// `caret` when it lies on one of them. Empty when the lines are not in the file.
pub fn excerpt(file: &str, src: &[u8], (first, last): (u32, u32), caret: Option<Span>) -> String {
    let text = String::from_utf8_lossy(src);
    let lines: Vec<&str> = text.split('\n').collect();
    let (first, last) = (first as usize, last.max(first) as usize);
    if first < 1 || first > lines.len() {
        return String::new();
    }
    let mut end = last.min(lines.len());
    let mut start = first;
    let pad = if end == start { 4 } else { 2 };
    let mut p = 0;
    while p < pad {
        if start > 1 {
            start -= 1;
            p += 1;
        }
        if end != lines.len() {
            end += 1;
            p += 1;
        }
        p += 1;
    }
    let mut out = String::new();
    let _ = writeln!(out, "{file}:{first}\n--------------------");
    for (i, line) in lines.iter().enumerate().take(end).skip(start - 1) {
        let n = i + 1;
        let marked = n >= first && n <= last;
        let _ = writeln!(
            out,
            " {n:>3} | {} {line}",
            if marked { ">>>" } else { "   " }
        );
        if let Some(span) = caret.filter(|s| s.line as usize == n && marked) {
            let col = span.col.max(1) as usize;
            let lead: String = line
                .chars()
                .take(col - 1)
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            let rest = line.len().saturating_sub(col - 1);
            let width = span.end.saturating_sub(span.start).clamp(1, rest.max(1));
            let _ = writeln!(out, "     |     {lead}{}", "^".repeat(width));
        }
    }
    out.push_str("--------------------\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pads_like_buildkit_and_marks_the_span() {
        let src = b"FROM scratch\nCOPY a b\nCOPY c d\nENV x y\nCMD z\nCMD w\nLABEL a=b\n";
        let span = Span::new(13 + 5, 13 + 6, 2, 6);
        let got = excerpt("Dockerfile", src, (2, 2), Some(span));
        assert_eq!(
            got,
            "Dockerfile:2\n--------------------\n   1 |     FROM scratch\n   2 | >>> COPY a b\n     |          ^\n   3 |     COPY c d\n   4 |     ENV x y\n--------------------\n"
        );
        assert_eq!(excerpt("f", src, (40, 40), None), "");
    }
}
