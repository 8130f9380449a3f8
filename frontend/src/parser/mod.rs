//! The Dockerfile parser: bytes → [`Dockerfile`] with spans, following BuildKit's parser
//! rules exactly (see `shared/conformance/buildkit-parser/FORMAT.md`).
//!
//! The main loop reads physical lines, scans parser directives at the top, joins continuation
//! lines (skipping comment and blank lines inside them, with a warning for blank ones), builds
//! one [`Node`] per logical line, then reads heredoc bodies for RUN/COPY/ADD. Errors are
//! collected and parsing goes on with the next line, so one run reports every error.
//! Everything is linear in the input size; ONBUILD nesting is bounded (one level per keyword).
//!
//! Bytes that are not UTF-8: a file that is not UTF-8 as a whole is read in the escaped form
//! of [`rbuild_types::bytes`] (each stray byte one code point, losslessly), so the line rules
//! below work on it unchanged. Once a node is complete ([`finish`]) its strings become text
//! again (stray bytes shown as U+FFFD), the exact bytes of its arguments go to
//! [`Node::raw_args`], and [`Node::non_utf8`] records where its first stray byte is; heredoc
//! bodies are read as bytes. Nothing escaped leaves this module. A UTF-8 file is read as
//! text, exactly as before.

mod args;
mod directives;
mod error;
mod heredoc;
mod json;
mod lines;
mod split;
mod words;

pub use directives::{detect_syntax, parse_directive, FoundDirective};
pub use error::ParseError;
pub use heredoc::{chomp as chomp_heredoc, parse_heredoc_word, HeredocError, HeredocHeader};
pub use words::parse_words;

use rbuild_types::bytes::{escape, escaped_lossy, first_invalid, has_invalid, unescape};
use rbuild_types::{ByteString, Span};

use crate::ast::{Directive, Dockerfile, Heredoc, Node, NonUtf8, Segment, Warning};
use crate::diagnostics::{Diagnostic, Diagnostics};
use args::{read_args, rule_for, Rule};
use lines::{is_comment, split_lines, trim_continuation, PhysLine, MAX_LINE_LEN};
use split::split_command;

/// Detail text of the empty-continuation-line warning.
pub const EMPTY_CONTINUATION_DETAIL: &str =
    "Empty continuation lines will become errors in a future release";

/// Parses a Dockerfile. Returns every error found (the parse keeps going after one).
pub fn parse(src: &[u8]) -> Result<Dockerfile, Diagnostics> {
    Parser::new(src).run()
}

/// How deeply ONBUILD may nest in the parse tree (BuildKit has no limit, but anything past
/// one level is rejected later anyway; the cap keeps recursion bounded).
pub const MAX_ONBUILD_DEPTH: usize = 32;

/// Builds the node for one logical line (ONBUILD recurses once per nesting level).
pub fn node_from_line(line: &str, escape: char) -> Result<Node, ParseError> {
    let mut ranges = Vec::new();
    let (mut node, _) = node_at_depth(line, escape, false, 0, 0, &mut ranges)?;
    node.flag_spans = Vec::new();
    Ok(node)
}

/// Builds the node; `offset` is where `line` starts in the logical line. Every node's flag
/// byte ranges (relative to the logical line) are pushed to `ranges` outermost first, so the
/// caller can turn them into spans once the line's segments are known. Also returns where
/// the node's arguments start in `line`. `escaped`: `line` is in the escaped form.
fn node_at_depth(
    line: &str,
    escape: char,
    escaped: bool,
    depth: usize,
    offset: usize,
    ranges: &mut Vec<Vec<(usize, usize)>>,
) -> Result<(Node, usize), ParseError> {
    if depth > MAX_ONBUILD_DEPTH {
        return Err(ParseError::OnbuildTooDeep {
            max: MAX_ONBUILD_DEPTH,
        });
    }
    let split = split_command(line, escape);
    let keyword = split.keyword.to_ascii_lowercase();
    let rule = rule_for(&keyword);
    let mut node = Node {
        keyword: keyword.clone(),
        original: line.to_string(),
        flags: split.flags,
        ..Node::default()
    };

    ranges.push(
        split
            .flag_ranges
            .iter()
            .map(|&(a, b)| (a + offset, b + offset))
            .collect(),
    );
    if rule == Rule::SubCommand {
        if !split.args.is_empty() {
            let (next, _) = node_at_depth(
                &split.args,
                escape,
                escaped,
                depth + 1,
                offset + split.args_offset,
                ranges,
            )?;
            node.next = Some(Box::new(next));
        }
    } else {
        let a = read_args(rule, &keyword, &split.args, escape, escaped)?;
        node.args = a.args;
        node.json_form = a.json;
    }
    Ok((node, split.args_offset))
}

/// Gives `node` (and its ONBUILD chain) the segment map of its logical line and the spans
/// of its flags (`ranges[k]` belongs to the `k`-th node of the chain).
fn attach_spans(node: &mut Node, segments: &[Segment], ranges: &[Vec<(usize, usize)>]) {
    let span = node.span;
    let mut cur = Some(node);
    let mut k = 0;
    while let Some(n) = cur {
        n.span = span;
        // Nested ONBUILD nodes keep no segment map (their `original` is a suffix of the
        // line), so their word spans fall back to the instruction.
        n.segments = segments.to_vec();
        let spans: Vec<Span> = ranges
            .get(k)
            .map(|r| r.iter().map(|&(a, b)| n.span_of_range(a, b)).collect())
            .unwrap_or_default();
        n.flag_spans = spans;
        if k > 0 {
            n.segments.clear();
        }
        k += 1;
        cur = n.next.as_deref_mut();
    }
}

/// Whether heredocs are looked for on this node's line.
fn can_contain_heredoc(node: &Node) -> bool {
    let target = match (&node.keyword[..], &node.next) {
        ("onbuild", Some(next)) => next,
        _ => node,
    };
    matches!(&target.keyword[..], "run" | "copy" | "add") && !target.json_form
}

struct Parser<'a> {
    lines: Vec<PhysLine<'a>>,
    pos: usize,
    escape: char,
    /// The source is not UTF-8: lines are read in the escaped form (see the module docs).
    escaped: bool,
    scanning_directives: bool,
    directives: Vec<Directive>,
    nodes: Vec<Node>,
    warnings: Vec<Warning>,
    errors: Vec<Diagnostic>,
}

impl<'a> Parser<'a> {
    fn new(src: &'a [u8]) -> Self {
        Parser {
            lines: split_lines(src),
            pos: 0,
            escape: '\\',
            escaped: std::str::from_utf8(src).is_err(),
            scanning_directives: true,
            directives: Vec::new(),
            nodes: Vec::new(),
            warnings: Vec::new(),
            errors: Vec::new(),
        }
    }

    fn line_span(l: &PhysLine<'_>) -> Span {
        Span::new(l.start, l.end, l.number, 1)
    }

    /// The next physical line as text, or an error for an over-long line (reported,
    /// and the line is treated as empty).
    fn next_line(&mut self) -> Option<(String, PhysLine<'a>)> {
        let l = self.lines.get(self.pos)?.clone();
        self.pos += 1;
        if l.text.len() > MAX_LINE_LEN {
            self.error(
                ParseError::LineTooLong { max: MAX_LINE_LEN },
                Self::line_span(&l),
            );
            return Some((String::new(), l));
        }
        if self.escaped {
            return Some((escape(l.text).into_owned(), l));
        }
        Some((String::from_utf8_lossy(l.text).into_owned(), l))
    }

    /// Text of the escaped form for messages and the tree (exact when it is UTF-8).
    fn text(&self, s: &str) -> String {
        if self.escaped {
            escaped_lossy(s).into_owned()
        } else {
            s.to_string()
        }
    }

    fn error(&mut self, e: ParseError, span: Span) {
        let e = if self.escaped {
            e.map_text(|s| escaped_lossy(s).into_owned())
        } else {
            e
        };
        self.errors.push(Diagnostic::error(e.to_string(), span));
    }

    /// Directive handling for one first-of-logical-line physical line.
    fn directive(&mut self, text: &str, l: &PhysLine<'_>) {
        if !self.scanning_directives {
            return;
        }
        let parsed = directives::parse_line(text, "#")
            .filter(|(name, _)| directives::KNOWN.contains(&name.as_str()));
        let Some((name, value)) = parsed else {
            self.scanning_directives = false;
            return;
        };
        let value = self.text(&value);
        let span = Self::line_span(l);
        if self.directives.iter().any(|d| d.name == name) {
            self.error(ParseError::DuplicateDirective { name }, span);
            return;
        }
        if name == "escape" {
            match value.as_str() {
                "\\" => self.escape = '\\',
                "`" => self.escape = '`',
                _ => {
                    self.error(
                        ParseError::InvalidEscape {
                            value: value.clone(),
                        },
                        span,
                    );
                }
            }
        }
        self.directives.push(Directive { name, value, span });
    }

    fn run(mut self) -> Result<Dockerfile, Diagnostics> {
        while let Some((text, first)) = self.next_line() {
            self.directive(&text, &first);
            let stripped = text.trim_start();
            let stripped = if stripped.starts_with('#') {
                ""
            } else {
                stripped
            };
            let (start_text, mut continues) = trim_continuation(stripped, self.escape);
            if !continues && start_text.is_empty() {
                continue;
            }
            let mut line = start_text.to_string();
            let first_col = text.len() - stripped.len() + 1;
            let mut segments = vec![Segment {
                logical: 0,
                source: first.start + first_col - 1,
                line: first.number,
                col: u32::try_from(first_col).unwrap_or(u32::MAX),
            }];
            let mut last = first.clone();
            let mut empty_continuation = false;
            while continues {
                let Some((next, l)) = self.next_line() else {
                    break;
                };
                let (l_start, l_number) = (l.start, l.number);
                last = l;
                if is_comment(&next) {
                    continue;
                }
                if next.trim_start().is_empty() {
                    empty_continuation = true;
                    continue;
                }
                let (t, c) = trim_continuation(&next, self.escape);
                segments.push(Segment {
                    logical: line.len(),
                    source: l_start,
                    line: l_number,
                    col: 1,
                });
                line.push_str(t);
                continues = c;
            }
            let span_of = |last: &PhysLine<'_>| {
                let col = text.len() - stripped.len() + 1;
                let start = first.start + col - 1;
                Span::new(
                    start,
                    last.end.max(start),
                    first.number,
                    u32::try_from(col).unwrap_or(u32::MAX),
                )
            };
            if empty_continuation {
                self.warnings.push(Warning {
                    message: format!("Empty continuation line found in: {}", self.text(&line)),
                    detail: EMPTY_CONTINUATION_DETAIL.to_string(),
                    span: span_of(&last),
                });
            }
            let mut ranges = Vec::new();
            let parsed = node_at_depth(&line, self.escape, self.escaped, 0, 0, &mut ranges);
            let (mut node, args_at) = match parsed {
                Ok(n) => n,
                Err(e) => {
                    self.error(e, span_of(&last));
                    continue;
                }
            };
            if can_contain_heredoc(&node) && line.contains("<<") {
                match heredoc::heredocs_from_line(&line) {
                    Ok(headers) => {
                        for h in headers {
                            if has_invalid(&h.name) {
                                let name = h.name.clone();
                                self.error(ParseError::NonUtf8HeredocName { name }, span_of(&last));
                                break;
                            }
                            match self.read_heredoc(h) {
                                Ok((doc, end)) => {
                                    node.heredocs.push(doc);
                                    last = end;
                                }
                                Err(name) => {
                                    self.error(
                                        ParseError::UnterminatedHeredoc { name },
                                        span_of(&last),
                                    );
                                    if let Some(l) = self.lines.last() {
                                        last = l.clone();
                                    }
                                    break;
                                }
                            }
                        }
                    }
                    Err(e) => self.error(e.into(), span_of(&last)),
                }
            }
            node.span = span_of(&last);
            node.end_line = last.number;
            attach_spans(&mut node, &segments, &ranges);
            if self.escaped {
                node.non_utf8 = non_utf8_in(&line, &segments, args_at);
                finish(&mut node);
            }
            self.nodes.push(node);
        }
        if self.nodes.is_empty() && self.errors.is_empty() {
            let end = self.lines.last().map_or(0, |l| l.end);
            let line = self.lines.last().map_or(1, |l| l.number);
            self.error(
                ParseError::NoInstructions,
                Span::new(0, end, line.max(1), 1),
            );
        }
        if !self.errors.is_empty() {
            return Err(Diagnostics(self.errors));
        }
        Ok(Dockerfile {
            directives: self.directives,
            escape: self.escape,
            instructions: self.nodes,
            warnings: self.warnings,
        })
    }

    /// Reads a heredoc body up to its terminator line. `Err(name)` when input runs out.
    fn read_heredoc(&mut self, h: HeredocHeader) -> Result<(Heredoc, PhysLine<'a>), String> {
        let mut content = Vec::new();
        // The name is UTF-8 (checked by the caller); unescaping restores it exactly.
        let name = unescape(&h.name).into_owned();
        while let Some(l) = self.lines.get(self.pos) {
            self.pos += 1;
            let mut candidate = l.text;
            if h.chomp {
                while let Some(rest) = candidate.strip_prefix(b"\t") {
                    candidate = rest;
                }
            }
            if candidate == name.as_slice() {
                let doc = Heredoc {
                    name: self.text(&h.name),
                    content: ByteString::from(content),
                    expand: h.expand,
                    chomp: h.chomp,
                    fd: h.fd,
                };
                return Ok((doc, l.clone()));
            }
            content.extend_from_slice(l.raw);
            content.push(b'\n');
        }
        Err(h.name)
    }
}

/// Where the first stray byte of escaped logical line `line` is, if it has one; `args_at` is
/// where the outermost node's arguments start in `line`.
fn non_utf8_in(line: &str, segments: &[Segment], args_at: usize) -> Option<NonUtf8> {
    let (at, byte) = first_invalid(line)?;
    let i = segments
        .partition_point(|s| s.logical <= at)
        .checked_sub(1)?;
    let seg = segments.get(i)?;
    // Bytes in the source between the segment's start and the stray byte.
    let before = unescape(line.get(seg.logical..at)?).len();
    let start = seg.source + before;
    let col = seg
        .col
        .saturating_add(u32::try_from(before).unwrap_or(u32::MAX));
    Some(NonUtf8 {
        byte,
        span: Span::new(start, start + 1, seg.line, col),
        in_args: at >= args_at,
    })
}

/// Turns the escaped strings of `node` (and its ONBUILD chain) back into text, keeping the
/// exact bytes of arguments that are not UTF-8 in [`Node::raw_args`].
fn finish(node: &mut Node) {
    let mut cur = Some(node);
    while let Some(n) = cur {
        let text = |s: &mut String| {
            if let std::borrow::Cow::Owned(t) = escaped_lossy(s) {
                *s = t;
            }
        };
        text(&mut n.keyword);
        text(&mut n.original);
        n.flags.iter_mut().for_each(text);
        if n.args.iter().any(|a| has_invalid(a)) {
            n.raw_args = n
                .args
                .iter()
                .map(|a| ByteString::from(unescape(a).into_owned()))
                .collect();
        }
        n.args.iter_mut().for_each(text);
        cur = n.next.as_deref_mut();
    }
}

#[cfg(test)]
mod tests;
