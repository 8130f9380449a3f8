//! The text `rbuild debug context` prints.

use std::fmt::Write as _;

use crate::context::BuildContext;
use crate::entry::EntryKind;
use crate::error::ContextError;

/// The included paths, one per line, in walk order, relative and `/`-separated, directories
/// with a trailing `/`; then one last line: the context digest. Ends with a newline.
pub fn debug_listing(ctx: &BuildContext) -> Result<String, ContextError> {
    let mut out = String::new();
    for (rel, kind) in ctx.paths() {
        let slash = if kind == EntryKind::Dir { "/" } else { "" };
        // Writing to a String cannot fail.
        let _ = writeln!(out, "{rel}{slash}");
    }
    let _ = writeln!(out, "{}", ctx.digest()?);
    Ok(out)
}
