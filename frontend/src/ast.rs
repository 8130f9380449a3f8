//! The Dockerfile parse tree, as BuildKit's parser builds it, with source spans.
//!
//! A [`Dockerfile`] is a flat list of instruction [`Node`]s (one per logical line), plus the
//! parser directives found at the top of the file and the warnings the parser emitted.
//! Nothing here is expanded or interpreted: arguments are the raw words BuildKit's parser
//! produces (see `dump` for the canonical text form of this tree).
//!
//! Strings are text. A Dockerfile that is not UTF-8 keeps its exact bytes where they may go
//! on unchanged (a node's [`Node::raw_args`], heredoc bodies as [`ByteString`]s); its strings
//! show each stray byte as U+FFFD, and [`Node::non_utf8`] says where the first one is, so the
//! next layer can refuse it wherever text is required.

use rbuild_types::{ByteString, Span};

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
    /// (leading tabs are still there even when `chomp` is set). Bytes as written, UTF-8 or not.
    pub content: ByteString,
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
    /// The source span of each entry of `flags` (same length as `flags` when produced by
    /// `parse`; may be empty for nodes built by hand, then [`Node::flag_span`] falls back to
    /// `span`).
    pub flag_spans: Vec<Span>,
    /// Where the pieces of `original` come from: continuation lines are joined into one
    /// logical line, so an offset in `original` maps to a source position through the
    /// segment that contains it. Sorted by `logical`; empty for nodes built by hand. (On a
    /// line that is not UTF-8, offsets past its first stray byte may be off by a few bytes.)
    pub segments: Vec<Segment>,
    /// When an argument is not UTF-8: the exact bytes of every argument, in `args` order
    /// (`args` then shows each stray byte as U+FFFD). Empty when all arguments are UTF-8.
    pub raw_args: Vec<ByteString>,
    /// The first byte of the instruction's line (continuations included, heredoc bodies
    /// not) that is not part of valid UTF-8; set on the outermost node only.
    pub non_utf8: Option<NonUtf8>,
}

/// A byte of an instruction line that is not part of valid UTF-8.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NonUtf8 {
    /// The byte.
    pub byte: u8,
    /// Where it is (one byte long).
    pub span: Span,
    /// It is in the arguments, not in the keyword or the flags.
    pub in_args: bool,
}

impl Node {
    /// The exact bytes of argument `i` (UTF-8 or not).
    pub fn arg_bytes(&self, i: usize) -> Option<ByteString> {
        match self.raw_args.get(i) {
            Some(raw) => Some(raw.clone()),
            None => self.args.get(i).map(|a| ByteString::from(a.as_str())),
        }
    }
}

/// One physical-line piece of a logical line: `original[logical..]` starts at byte `source`
/// of the file, on line `line`, column `col` (1-based, bytes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Segment {
    pub logical: usize,
    pub source: usize,
    pub line: u32,
    pub col: u32,
}

impl Node {
    /// The 1-based line where the instruction starts.
    pub fn start_line(&self) -> u32 {
        self.span.line
    }

    /// The source span of `original[lo..hi]`; `span` when the node has no segment map.
    pub fn span_of_range(&self, lo: usize, hi: usize) -> Span {
        // Binary searches: a line with many flags over many continuations stays O(n log n).
        let find = |off: usize| {
            let i = self.segments.partition_point(|s| s.logical <= off);
            i.checked_sub(1).and_then(|i| self.segments.get(i))
        };
        let Some(seg) = find(lo) else {
            return self.span;
        };
        let start = seg.source + (lo - seg.logical);
        let end_seg = find(hi).unwrap_or(seg);
        let end = (end_seg.source + hi.saturating_sub(end_seg.logical)).max(start);
        let col = u32::try_from(lo - seg.logical)
            .unwrap_or(u32::MAX)
            .saturating_add(seg.col);
        Span::new(start, end, seg.line, col)
    }

    /// The span of the `i`-th flag, or the whole instruction when unknown.
    pub fn flag_span(&self, i: usize) -> Span {
        self.flag_spans.get(i).copied().unwrap_or(self.span)
    }

    /// The span of the first occurrence of `word` in the arguments (after the flags; ASCII
    /// case ignored when there is no exact match), or the whole instruction when it cannot
    /// be found (e.g. the word was changed by unquoting).
    pub fn word_span(&self, word: &str) -> Span {
        if word.is_empty() {
            return self.span;
        }
        let after_flags = self
            .flag_spans
            .last()
            .and_then(|last| {
                self.segments
                    .iter()
                    .rev()
                    .find(|s| s.source <= last.end && s.line == last.line)
                    .map(|s| s.logical + (last.end - s.source))
            })
            .unwrap_or(0)
            .min(self.original.len());
        let hay = self.original.get(after_flags..).unwrap_or("");
        // Skip the keyword when there are no flags.
        let skip = if after_flags == 0 {
            hay.trim_start()
                .find(char::is_whitespace)
                .map_or(0, |k| k + (hay.len() - hay.trim_start().len()))
        } else {
            0
        };
        // Exact first; then ASCII case-insensitively (stage names are lower-cased), which
        // keeps byte offsets.
        let found = hay.get(skip..).and_then(|h| {
            find_word(h, word)
                .or_else(|| find_word(&h.to_ascii_lowercase(), &word.to_ascii_lowercase()))
                .or_else(|| h.find(word))
        });
        match found {
            Some(k) => {
                let lo = after_flags + skip + k;
                self.span_of_range(lo, lo + word.len())
            }
            None => self.span,
        }
    }
}

/// The first occurrence of `word` in `hay` that is a whole whitespace-separated word.
fn find_word(hay: &str, word: &str) -> Option<usize> {
    hay.match_indices(word).map(|(i, _)| i).find(|&i| {
        let before = hay[..i].chars().next_back();
        let after = hay[i + word.len()..].chars().next();
        before.is_none_or(char::is_whitespace) && after.is_none_or(char::is_whitespace)
    })
}
