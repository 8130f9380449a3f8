//! A tiny program that is only the sandbox init, for the crate's integration tests (the rbuild
//! binary re-executes itself instead).

fn main() {
    if std::env::args().nth(1).as_deref() == Some(rbuild_sandbox::INIT_ARG) {
        rbuild_sandbox::init_main()
    }
    eprintln!(
        "rbuild-sandbox-init: only runs as `{} {}` started by rbuild's sandbox",
        std::env::args().next().unwrap_or_default(),
        rbuild_sandbox::INIT_ARG
    );
    std::process::exit(2)
}
