//! Source locations inside a Dockerfile.

use serde::{Deserialize, Serialize};

/// A byte range in the Dockerfile plus the 1-based line/column of its start.
/// Invariant: `start <= end`; `line >= 1`, `col >= 1` (column counted in bytes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Span {
    pub start: usize,
    pub end: usize,
    pub line: u32,
    pub col: u32,
}

impl Span {
    pub fn new(start: usize, end: usize, line: u32, col: u32) -> Self {
        Span {
            start,
            end,
            line,
            col,
        }
    }
}
