//! Turning failures into what the user reads, and into exit codes (0 ok, 1 build failed, 2 usage).

use std::fmt::Write as _;

use rbuild_solver::SolveError;

/// A failure of a command, with everything needed to explain it.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Wrong usage (bad flag values, missing files named on the command line): exit 2.
    #[error("{0}")]
    Usage(String),
    /// The Dockerfile has errors; the text is already rendered with carets.
    #[error("{0}")]
    Dockerfile(String),
    #[error(transparent)]
    Solve(Box<SolveError>),
    /// A failure of an image-format operation (export, save, load), with its cause kept so
    /// the report can tell a full disk: exit 1.
    #[error("{context}: {source}")]
    Oci {
        context: String,
        #[source]
        source: Box<rbuild_oci::OciError>,
    },
    /// Any other failure of the build or a store command: exit 1.
    #[error("{0}")]
    Failed(String),
}

impl CliError {
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Usage(_) => 2,
            _ => 1,
        }
    }

    /// The text printed to stderr.
    pub fn render(&self, dockerfile: Option<(&str, &[u8])>) -> String {
        match self {
            CliError::Solve(solve) => match solve.as_ref() {
                SolveError::Vertex {
                    name,
                    span,
                    log_tail,
                    log_path,
                    source,
                    ..
                } => {
                    let mut out =
                        render_vertex_failure(name, span.as_ref(), log_tail, source, dockerfile);
                    if let Some(path) = log_path {
                        let _ = write!(out, "\nfull log of the step: {}", path.display());
                    }
                    out
                }
                other => format!("ERROR: failed to solve: {other}"),
            },
            CliError::Dockerfile(text) => text.clone(),
            other => {
                let mut out = format!("ERROR: {other}");
                append_causes(&mut out, other);
                out
            }
        }
    }
}

impl CliError {
    /// Wraps an image-format error with what was being done.
    pub fn oci(context: String) -> impl FnOnce(rbuild_oci::OciError) -> CliError {
        move |source| CliError::Oci {
            context,
            source: Box::new(source),
        }
    }
}

impl From<SolveError> for CliError {
    fn from(e: SolveError) -> Self {
        CliError::Solve(Box::new(e))
    }
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> Self {
        CliError::Failed(e.to_string())
    }
}

/// A failed step: its last output lines, the Dockerfile line, then the error chain.
fn render_vertex_failure(
    name: &str,
    span: Option<&rbuild_types::Span>,
    log_tail: &[String],
    source: &rbuild_solver::VertexError,
    dockerfile: Option<(&str, &[u8])>,
) -> String {
    let mut out = String::new();
    if !log_tail.is_empty() {
        let _ = writeln!(out, "------\n > {name}:");
        for line in log_tail {
            let _ = writeln!(out, "{line}");
        }
        let _ = writeln!(out, "------");
    }
    if let (Some(span), Some((file, src))) = (span, dockerfile) {
        let line_no = span.line as usize;
        if let Some(line) = src.split(|&b| b == b'\n').nth(line_no.saturating_sub(1)) {
            let _ = writeln!(out, "{file}:{line_no}");
            let _ = writeln!(out, "--------------------");
            let _ = writeln!(
                out,
                " {:>3} | >>> {}",
                line_no,
                String::from_utf8_lossy(line)
            );
            let _ = writeln!(out, "--------------------");
        }
    }
    let _ = write!(out, "ERROR: failed to solve: {name}: {source}");
    append_causes(&mut out, source);
    out
}

/// Appends the chain of causes of `err`, skipping a cause whose text is already at the end
/// (wrappers that repeat their source's message).
fn append_causes(out: &mut String, err: &dyn std::error::Error) {
    let mut cause = err.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !out.ends_with(&text) {
            let _ = write!(out, ": {text}");
        }
        cause = c.source();
    }
}
