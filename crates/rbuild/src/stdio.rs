//! Standard input and output as data streams: archives written to standard output
//! (`-o type=oci|docker|tar,dest=-`, `rbuild save` without `-o`) and read from standard input
//! (`rbuild load` without `-i`). Like docker, rbuild refuses to write an archive to a
//! terminal or to wait for one on a terminal.

use std::io::IsTerminal;
use std::path::Path;

/// Why a stream that is a terminal cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TerminalRefusal {
    #[error("-o type={kind}: dest=- would write the archive to a terminal; redirect standard output or give dest=FILE")]
    Output { kind: &'static str },
    #[error("cowardly refusing to save to a terminal. Use the -o flag or redirect")]
    Save,
    /// docker's words: a terminal is no archive.
    #[error("requested load from stdin, but stdin is empty")]
    Load,
}

/// How standard output is named in errors of writers given it.
pub fn stdout_name() -> &'static Path {
    Path::new(rbuild_builder::export::STDOUT_NAME)
}

/// How standard input is named in errors of readers given it.
pub fn stdin_name() -> &'static Path {
    Path::new("standard input")
}

/// `refusal` when standard output is a terminal.
pub fn refuse_terminal_stdout(refusal: TerminalRefusal) -> Result<(), TerminalRefusal> {
    if std::io::stdout().is_terminal() {
        return Err(refusal);
    }
    Ok(())
}

/// `refusal` when standard input is a terminal.
pub fn refuse_terminal_stdin(refusal: TerminalRefusal) -> Result<(), TerminalRefusal> {
    if std::io::stdin().is_terminal() {
        return Err(refusal);
    }
    Ok(())
}
