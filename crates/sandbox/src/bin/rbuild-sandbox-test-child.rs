//! A child process for the sandbox's integration tests: runs one command with the built-in
//! executor, as rbuild would, so that a test can kill it mid-run (`nothing_outlives_a_killed_
//! rbuild` in tests/namespace_executor.rs). Not part of rbuild; the tests find it through
//! `CARGO_BIN_EXE_<name>`.
//!
//! Usage: `rbuild-sandbox-test-child INIT UPPER WORK LAYER OP`: runs OP, an `ExecOp` as JSON,
//! over the one LAYER with the sandbox init INIT; the command's output goes to stdout and
//! stderr; exits 0 when it succeeded, 1 otherwise.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use rbuild_graph::ExecOp;
use rbuild_ports::{CancelToken, ExecRequest, Executor, LogSink, LogStream};
use rbuild_sandbox::NamespaceExecutor;

struct Passthrough;

impl LogSink for Passthrough {
    fn write(&self, stream: LogStream, data: &[u8]) {
        let _ = match stream {
            LogStream::Stdout => std::io::stdout().write_all(data),
            LogStream::Stderr => std::io::stderr().write_all(data),
        };
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [init, upper, work, layer, op] = &args[..] else {
        eprintln!("usage: rbuild-sandbox-test-child INIT UPPER WORK LAYER OP");
        return ExitCode::from(2);
    };
    let op: ExecOp = match serde_json::from_str(op) {
        Ok(op) => op,
        Err(e) => {
            eprintln!("rbuild-sandbox-test-child: OP: {e}");
            return ExitCode::from(2);
        }
    };
    let (upper, work) = (PathBuf::from(upper), PathBuf::from(work));
    let result = NamespaceExecutor::new(PathBuf::from(init), rbuild_sandbox::detect_privileges())
        .run(ExecRequest {
            op: &op,
            layers: &[PathBuf::from(layer)],
            upper: &upper,
            work: &work,
            mounts: &[],
            log: &Passthrough,
            cancel: &CancelToken::new(),
        });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rbuild-sandbox-test-child: {e}");
            ExitCode::FAILURE
        }
    }
}
