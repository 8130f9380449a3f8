//! Errors and warnings with source spans, and their human rendering with a caret.
//!
//! Every frontend failure is a [`Diagnostic`]; a parse that fails returns all of them in
//! [`Diagnostics`] (the parser keeps going after an error where it can).

use std::fmt;

use rbuild_types::Span;

/// How bad a diagnostic is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Severity {
    Error,
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// One message about one place in the Dockerfile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub message: String,
    /// Where it is; `line`/`col` are 1-based (col in bytes).
    pub span: Span,
}

impl Diagnostic {
    /// An error at `span`.
    pub fn error(message: impl Into<String>, span: Span) -> Self {
        Diagnostic {
            severity: Severity::Error,
            message: message.into(),
            span,
        }
    }

    /// A warning at `span`.
    pub fn warning(message: impl Into<String>, span: Span) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            message: message.into(),
            span,
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: {}: {}",
            self.span.line, self.span.col, self.severity, self.message
        )
    }
}

/// A non-empty list of diagnostics (at least one error when returned as `Err`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    /// A list holding one error.
    pub fn single(d: Diagnostic) -> Self {
        Diagnostics(vec![d])
    }

    /// Whether any entry is an error.
    pub fn has_errors(&self) -> bool {
        self.0.iter().any(|d| d.severity == Severity::Error)
    }

    /// Iterates over the entries.
    pub fn iter(&self) -> std::slice::Iter<'_, Diagnostic> {
        self.0.iter()
    }

    /// Renders every diagnostic as
    /// `file:line:col: error: message`, then the source line, then a caret under the column.
    /// Works on any bytes (invalid UTF-8 is shown lossily); out-of-range spans print no source.
    pub fn render(&self, file_name: &str, source: &[u8]) -> String {
        let mut out = String::new();
        let starts = line_starts(source);
        for d in &self.0 {
            out.push_str(&format!(
                "{file_name}:{}:{}: {}: {}\n",
                d.span.line, d.span.col, d.severity, d.message
            ));
            if let Some(line) = source_line(source, &starts, d.span.line) {
                let text = String::from_utf8_lossy(line);
                let text = text.trim_end_matches(['\r', '\n']);
                out.push_str(&format!("  {text}\n"));
                let col = d.span.col.max(1) as usize;
                // Keep tabs so the caret lines up under tab-indented text.
                let pad: String = line
                    .iter()
                    .take(col - 1)
                    .map(|&b| if b == b'\t' { '\t' } else { ' ' })
                    .collect();
                out.push_str(&format!("  {pad}^\n"));
            }
        }
        out
    }
}

/// Byte offsets where each line of `source` starts.
fn line_starts(source: &[u8]) -> Vec<usize> {
    let mut v = vec![0];
    v.extend(
        source
            .iter()
            .enumerate()
            .filter(|(_, &b)| b == b'\n')
            .map(|(i, _)| i + 1),
    );
    v
}

/// The bytes of 1-based line `line` of `source` (without its `\n`), if it exists.
fn source_line<'a>(source: &'a [u8], starts: &[usize], line: u32) -> Option<&'a [u8]> {
    let start = *starts.get((line as usize).checked_sub(1)?)?;
    let rest = source.get(start..)?;
    Some(rest.split(|&b| b == b'\n').next().unwrap_or(rest))
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

impl From<Diagnostic> for Diagnostics {
    fn from(d: Diagnostic) -> Self {
        Diagnostics::single(d)
    }
}

impl IntoIterator for Diagnostics {
    type Item = Diagnostic;
    type IntoIter = std::vec::IntoIter<Diagnostic>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_points_at_column() {
        let src = b"FROM busybox\n  FOO bar\n";
        let d = Diagnostics::single(Diagnostic::error(
            "unknown instruction: FOO",
            Span::new(15, 22, 2, 3),
        ));
        let r = d.render("Dockerfile", src);
        assert_eq!(
            r,
            "Dockerfile:2:3: error: unknown instruction: FOO\n    FOO bar\n    ^\n"
        );
    }

    #[test]
    fn render_out_of_range_line_has_no_source() {
        let d = Diagnostics::single(Diagnostic::error("x", Span::new(0, 0, 9, 1)));
        assert_eq!(d.render("f", b"a\n"), "f:9:1: error: x\n");
    }

    #[test]
    fn display_joins_lines() {
        let d = Diagnostics(vec![
            Diagnostic::error("a", Span::new(0, 0, 1, 1)),
            Diagnostic::warning("b", Span::new(0, 0, 2, 1)),
        ]);
        assert_eq!(d.to_string(), "1:1: error: a\n2:1: warning: b");
        assert!(d.has_errors());
    }
}
