//! Standard input and output as data streams: archives written to standard output
//! (`-o type=oci|docker|tar,dest=-`, `rbuild save` without `-o`) and read from standard input
//! (`rbuild load` without `-i`). Like docker, rbuild refuses to write an archive to a
//! terminal or to wait for one on a terminal.

use std::io::IsTerminal;
use std::path::Path;

use crate::report::CliError;

/// How standard output is named in errors of writers given it.
pub fn stdout_name() -> &'static Path {
    Path::new("standard output")
}

/// How standard input is named in errors of readers given it.
pub fn stdin_name() -> &'static Path {
    Path::new("standard input")
}

/// A usage error saying `message` when standard output is a terminal.
pub fn refuse_terminal_stdout(message: &str) -> Result<(), CliError> {
    if std::io::stdout().is_terminal() {
        return Err(CliError::Usage(message.to_string()));
    }
    Ok(())
}

/// A usage error saying `message` when standard input is a terminal.
pub fn refuse_terminal_stdin(message: &str) -> Result<(), CliError> {
    if std::io::stdin().is_terminal() {
        return Err(CliError::Usage(message.to_string()));
    }
    Ok(())
}
