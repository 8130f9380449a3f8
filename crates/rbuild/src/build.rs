//! `rbuild build`: the flags become a [`BuildConfig`](rbuild_builder::BuildConfig)
//! (`build_config`), the builder runs it, and this renders its events and prints the image id
//! for `-q`. The build itself is the builder's ([`rbuild_builder::build`]).
//!
//! `--call`/`--check` evaluate instead of building: the build checks
//! ([`rbuild_builder::check`], printed by `checks`), or the outline and targets
//! (`outline`).

use std::path::Path;
use std::sync::Arc;

use rbuild_builder::BuildIo;
use rbuild_types::Privileges;

use crate::call::{Call, CallFormat, CallName};
use crate::cli::{BuildArgs, ProgressMode};
use crate::progress::Progress;
use crate::report::CliError;

/// Runs a build, or the evaluation `--call` asks for.
pub fn run(args: BuildArgs, store_root: &Path, privileges: Privileges) -> Result<(), CliError> {
    let call = crate::call::parse(args.call.as_deref(), args.check)
        .map_err(|e| CliError::Usage(e.into()))?;
    match call.name {
        CallName::Build => build(args, store_root, privileges),
        CallName::Check => check(args, store_root, privileges, call),
        CallName::Outline | CallName::Targets => {
            crate::outline::run(&args, store_root, privileges, call)
        }
    }
}

fn build(args: BuildArgs, store_root: &Path, privileges: Privileges) -> Result<(), CliError> {
    let config = crate::build_config::from_args(&args, store_root, privileges)?;
    let quiet = args.quiet || args.progress == ProgressMode::Quiet;
    let mode = if args.quiet {
        ProgressMode::Quiet
    } else {
        args.progress
    };
    let progress = Arc::new(Progress::build(mode));
    let shown = Arc::clone(&progress);
    // With an archive on standard output, that is the data there: no id after it.
    let print_id = quiet && !config.writes_stdout();
    let sink = Arc::clone(&progress);
    let io = BuildIo {
        events: Arc::new(move |event| sink.render(event)),
        stdin: Some(Box::new(std::io::stdin())),
        stdout: Some(Box::new(std::io::stdout())),
    };
    let built = rbuild_builder::build(config, io);
    // The live view's final frame comes before the result (the image id, or the error report).
    shown.finish();
    // The checks' summary comes last, whether the build succeeded or not (as buildx).
    eprint!("{}", progress.check_summary(args.debug));
    let built = built?;
    if print_id {
        println!("{}", built.image_id);
    }
    Ok(())
}

/// `--call=check`: the violations on standard output, exit status 1 when there are any (or
/// the evaluation failed), as buildx.
fn check(
    args: BuildArgs,
    store_root: &Path,
    privileges: Privileges,
    call: Call,
) -> Result<(), CliError> {
    let config = crate::build_config::from_args(&args, store_root, privileges)?;
    let io = BuildIo {
        events: Arc::new(|_| {}),
        stdin: Some(Box::new(std::io::stdin())),
        stdout: None,
    };
    let report = rbuild_builder::check(config, io)?;
    let failed = report.error.is_some();
    match call.format {
        CallFormat::Text => print!(
            "{}",
            crate::checks::check_text(&report.file, &report.lints, failed)
        ),
        CallFormat::Json => println!(
            "{}",
            crate::checks::check_json(
                &report.file,
                &report.lints,
                report.error.as_ref().map(|e| e.to_string()).as_deref()
            )
        ),
    }
    if let Some(e) = report.error {
        return Err(e.into());
    }
    if !report.lints.is_empty() && !call.ignore_status {
        return Err(CliError::ChecksFound);
    }
    Ok(())
}
