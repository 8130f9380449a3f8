//! The comment lines right above each instruction (BuildKit's `Node.PrevComment`): what a
//! per-instruction `# check=` reads, and where `--call=outline|targets` find descriptions.
//!
//! As BuildKit's parser collects them: every comment line since the previous instruction,
//! in order, `#` and surrounding space removed; an empty comment (`#` alone) forgets the
//! ones before it; blank lines do not; parser directives at the top are not comments.

use crate::ast::Dockerfile;

/// For each instruction of `df` (same order), its comment lines. `source` is the text `df`
/// was parsed from.
pub fn preceding(df: &Dockerfile, source: &[u8]) -> Vec<Vec<String>> {
    let lines: Vec<&[u8]> = source.split(|&b| b == b'\n').collect();
    let directive_lines: Vec<u32> = df.directives.iter().map(|d| d.span.line).collect();
    let mut out = Vec::with_capacity(df.instructions.len());
    let mut next_line = 1u32;
    for node in &df.instructions {
        let mut comments: Vec<String> = Vec::new();
        for n in next_line..node.span.line {
            if directive_lines.contains(&n) {
                continue;
            }
            let Some(raw) = lines.get(n as usize - 1) else {
                break;
            };
            let text = String::from_utf8_lossy(raw);
            let text = text.trim_start_matches('\u{feff}').trim_start();
            if let Some(rest) = text.strip_prefix('#') {
                let rest = rest.trim();
                if rest.is_empty() {
                    comments.clear();
                } else {
                    comments.push(rest.to_string());
                }
            }
        }
        out.push(comments);
        next_line = node.end_line.max(node.span.line) + 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collects_since_the_previous_instruction() {
        let src = b"# syntax=docker/dockerfile:1\n# about base\nFROM scratch AS base\n\n# one\n#\n# two\n\n  # three\nCOPY a \\\n  b\n# check=skip=all\nENV a=b\n";
        let df = crate::parse(src).unwrap();
        let c = preceding(&df, src);
        assert_eq!(c[0], vec!["about base".to_string()]);
        assert_eq!(c[1], vec!["two".to_string(), "three".to_string()]);
        assert_eq!(c[2], vec!["check=skip=all".to_string()]);
    }
}
