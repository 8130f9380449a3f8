//! The Dockerfile parse tree, as BuildKit's parser builds it, with source spans.
//!
//! A [`Dockerfile`] is a flat list of instruction [`Node`]s (one per logical line), plus the
//! parser directives found at the top of the file and the warnings the parser emitted.
//! Nothing here is expanded or interpreted: arguments are the raw words BuildKit's parser
//! produces (see `dump` for the canonical text form of this tree).

use rbuild_types::Span;

/// A parser directive (`# syntax=…`, `# escape=…`, `# check=…`) from the top of the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Directive {
    /// The directive name, lower-cased (`syntax`, `escape` or `check`).
    pub name: String,
    /// The value as written, trimmed.
    pub value: String,
    /// Where the directive line is.
    pub span: Span,
}

/// A non-fatal parser message (e.g. an empty continuation line).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Warning {
    /// Short text, e.g. `Empty continuation line found in: RUN a b`.
    pub message: String,
    /// Longer explanation.
    pub detail: String,
    /// Where the instruction that caused it is.
    pub span: Span,
}

/// A whole parsed Dockerfile.
///
/// Invariant: `instructions` is non-empty when produced by `parse` (an empty file is an error).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Dockerfile {
    /// Parser directives in the order found.
    pub directives: Vec<Directive>,
    /// The escape token in effect (`\` by default, or `` ` `` via `# escape=`).
    pub escape: char,
    /// One node per instruction (logical line), in file order.
    pub instructions: Vec<Node>,
    /// Non-fatal messages.
    pub warnings: Vec<Warning>,
}

/// A heredoc attached to a RUN/COPY/ADD instruction (`<<EOF … EOF`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Heredoc {
    /// The terminator word with quotes removed (`EOF` for `<<'EOF'`).
    pub name: String,
    /// The raw body: every line up to the terminator, each with its `\n`
    /// (leading tabs are still there even when `chomp` is set).
    pub content: String,
    /// Whether variables in the body are expanded (false when any part of the name was quoted).
    pub expand: bool,
    /// `<<-`: leading tabs are stripped from body lines (and the terminator line).
    pub chomp: bool,
    /// The file descriptor (`3<<EOF` → 3); 0 when not given.
    pub fd: u32,
}

/// One instruction.
///
/// Invariants: `keyword` is lower-case ASCII as written (unknown keywords are kept);
/// `flags` keep their `--` prefix and `=value` part with quotes/escapes already removed;
/// `next` is only set for `onbuild`, whose nested instruction it holds (`args` is then empty).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Node {
    /// The instruction word, lower-cased (`from`, `run`, …).
    pub keyword: String,
    /// The logical line as written (continuations joined, comments in between dropped).
    pub original: String,
    /// `--name[=value]` flags before the arguments.
    pub flags: Vec<String>,
    /// The arguments, read per keyword as BuildKit does (see the crate docs).
    pub args: Vec<String>,
    /// The arguments came from a JSON array (`CMD ["a", "b"]`).
    pub json_form: bool,
    /// Heredocs attached to this instruction, in order.
    pub heredocs: Vec<Heredoc>,
    /// ONBUILD's nested instruction.
    pub next: Option<Box<Node>>,
    /// From the start of the first physical line to the end of the last one consumed
    /// (continuations and heredoc bodies included); `line`/`col` are the start.
    pub span: Span,
    /// The 1-based line number of the last physical line consumed.
    pub end_line: u32,
}

impl Node {
    /// The 1-based line where the instruction starts.
    pub fn start_line(&self) -> u32 {
        self.span.line
    }
}
