//! The text `rbuild debug context` prints.

use std::io::Write;

use crate::context::BuildContext;
use crate::entry::EntryKind;
use crate::error::ContextError;

/// The included paths, one per line, in walk order, relative and `/`-separated, directories
/// with a trailing `/`; then one last line: the context digest. Ends with a newline. Paths
/// are written with their exact bytes (a name need not be UTF-8).
pub fn debug_listing(ctx: &BuildContext) -> Result<String, ContextError> {
    let mut out = Vec::new();
    write_debug_listing(ctx, &mut out)?;
    // A path that is not UTF-8 shows U+FFFD here; `write_debug_listing` writes its bytes.
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Writes [`debug_listing`]'s text to `out` without building it in memory (a million-path
/// listing is tens of MB). The digest is computed first, so nothing is written when hashing
/// fails; a failed write is [`ContextError::Output`].
pub fn write_debug_listing<W: Write>(ctx: &BuildContext, out: W) -> Result<(), ContextError> {
    let digest = ctx.digest()?;
    let mut out = std::io::BufWriter::with_capacity(1 << 16, out);
    let written = (|| {
        for (rel, kind) in ctx.paths() {
            out.write_all(&rbuild_types::bytes::unescape(rel))?;
            out.write_all(if kind == EntryKind::Dir {
                b"/\n"
            } else {
                b"\n"
            })?;
        }
        writeln!(out, "{digest}")?;
        out.flush()
    })();
    written.map_err(|source| ContextError::Output { source })
}
