//! The rbuild binary: parses the command line into a build config for the builder
//! (`rbuild_builder`), renders its progress events and errors, and runs the store commands.
//! It is the only crate that prints (DESIGN invariant 6).
//!
//! It is also the sandbox's init: the built-in executor re-executes `/proc/self/exe` with a
//! hidden first argument, which is handled before anything else.

mod bake;
mod build;
mod build_config;
mod cache_flags;
mod call;
mod checks;
mod cli;
mod format;
mod gc_cmds;
mod image_cmds;
mod images_cmd;
mod login_cmds;
mod no_space;
mod outline;
mod progress;
mod report;
mod secrets;
mod settings;
mod source_excerpt;
mod stdio;
mod store_cmds;
mod usage;

use rbuild_builder::{DockerfileError, DockerfileSource};

use crate::cli::{Command, DebugCommand};
use crate::report::CliError;
use crate::usage::UsageError;

fn main() {
    if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == rbuild_sandbox::INIT_ARG)
    {
        rbuild_sandbox::init_main();
    }
    let args = cli::with_default_subcommand(std::env::args().collect());
    let cli = match cli::parse(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            std::process::exit(if e.use_stderr() { 2 } else { 0 });
        }
    };
    // Who we are, asked once. Unprivileged: go on as root of a new user namespace
    // (rbuild_sandbox::userns), which the privileges then say.
    let detected = rbuild_sandbox::detect_privileges();
    let root = settings::store_root(&detected);
    let privileges = match rbuild_sandbox::userns::enter(&root, detected) {
        Ok(privileges) => privileges,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    };
    let outcome = match cli.command {
        Command::Build(args) => build::run(*args, &root, privileges),
        Command::Bake(args) => bake::run(args, &root, privileges),
        Command::Images(args) => images_cmd::images(&root, &args),
        Command::Tag { source, target } => store_cmds::tag(&root, &source, &target),
        Command::Rmi { names } => store_cmds::rmi(&root, &names),
        Command::Prune(args) => gc_cmds::prune(&root, &args),
        Command::Du => gc_cmds::du(&root),
        Command::Inspect { images, format } => {
            image_cmds::inspect(&root, &images, format.as_deref())
        }
        Command::History { image, no_trunc } => image_cmds::history(&root, &image, no_trunc),
        Command::Save {
            images,
            output,
            format,
        } => image_cmds::save(&root, &images, output.as_deref(), format),
        Command::Load { input, quiet } => image_cmds::load_archive(&root, input.as_deref(), quiet),
        Command::Pull {
            image,
            quiet,
            progress,
        } => image_cmds::pull(&root, &image, quiet, progress, privileges),
        Command::Push { image, progress } => image_cmds::push(&root, &image, progress),
        Command::Login(args) => login_cmds::login(args),
        Command::Logout { server } => login_cmds::logout(server.as_deref()),
        Command::Debug(DebugCommand::Parse { file }) => debug_parse(&file),
        Command::Debug(DebugCommand::Context { file, dir }) => debug_context(file.as_deref(), &dir),
        Command::Debug(DebugCommand::Platforms) => {
            debug_platforms();
            Ok(())
        }
    };
    if let Err(e) = outcome {
        let text = e.render();
        if !text.is_empty() {
            eprintln!("{text}");
        }
        if let Some(note) = no_space::note(&e, &root) {
            eprintln!("{note}");
        }
        std::process::exit(e.exit_code());
    }
}

fn read_file_or_stdin(file: &str) -> Result<Vec<u8>, CliError> {
    if file == "-" {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf).map_err(UsageError::Stdin)?;
        Ok(buf)
    } else {
        std::fs::read(file).map_err(|source| {
            UsageError::ReadFile {
                path: file.to_string(),
                source,
            }
            .into()
        })
    }
}

/// `rbuild debug parse`: the AST in BuildKit's parser-test dump format.
fn debug_parse(file: &str) -> Result<(), CliError> {
    let bytes = read_file_or_stdin(file)?;
    let name = if file == "-" { "Dockerfile" } else { file };
    let df = rbuild_frontend::parse(&bytes).map_err(|diagnostics| {
        CliError::Dockerfile(Box::new(DockerfileError {
            file: DockerfileSource {
                name: name.to_string(),
                bytes: bytes.clone(),
            },
            diagnostics,
        }))
    })?;
    println!("{}", rbuild_frontend::dump(&df));
    Ok(())
}

/// `rbuild debug context`: included paths, then the context digest.
/// `rbuild debug platforms`: one line per platform, `PLATFORM  HOW`, then how to enable
/// what cannot run.
fn debug_platforms() {
    use rbuild_sandbox::platforms::{detect, RunsBy, BINFMT_DIR};
    let listed = detect(std::path::Path::new(BINFMT_DIR));
    let mut hints = Vec::new();
    for p in &listed {
        let how = match &p.runs_by {
            RunsBy::Native => "native".to_string(),
            RunsBy::Emulator {
                handler,
                interpreter,
                ..
            } => format!(
                "emulated: binfmt_misc {handler} ({})",
                interpreter.display()
            ),
            RunsBy::Unavailable(missing) => {
                if !hints.contains(missing) {
                    hints.push(*missing);
                }
                "cannot run here".to_string()
            }
        };
        println!("{:<16} {how}", p.platform.to_string());
    }
    for missing in hints {
        println!("to enable: {}", missing.how_to_enable());
    }
}

fn debug_context(file: Option<&std::path::Path>, dir: &std::path::Path) -> Result<(), CliError> {
    let ctx =
        rbuild_context::BuildContext::from_dir(dir, file).map_err(|source| CliError::Context {
            dir: dir.to_path_buf(),
            source,
        })?;
    // Streamed: a million-path listing is not built in memory first.
    rbuild_context::write_debug_listing(&ctx, std::io::stdout().lock()).map_err(CliError::Listing)
}
