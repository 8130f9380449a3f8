//! `rbuild build`: the flags become a [`BuildConfig`](rbuild_builder::BuildConfig)
//! (`build_config`), the builder runs it, and this renders its events and prints the image id
//! for `-q`. The build itself is the builder's ([`rbuild_builder::build`]).

use std::path::Path;
use std::sync::Arc;

use rbuild_builder::BuildIo;
use rbuild_types::Privileges;

use crate::cli::{BuildArgs, ProgressMode};
use crate::progress::Progress;
use crate::report::CliError;

/// Runs a build.
pub fn run(args: BuildArgs, store_root: &Path, privileges: Privileges) -> Result<(), CliError> {
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
    let io = BuildIo {
        events: Arc::new(move |event| progress.render(event)),
        stdin: Some(Box::new(std::io::stdin())),
        stdout: Some(Box::new(std::io::stdout())),
    };
    let built = rbuild_builder::build(config, io);
    // The live view's final frame comes before the result (the image id, or the error report).
    shown.finish();
    let built = built?;
    if print_id {
        println!("{}", built.image_id);
    }
    Ok(())
}
