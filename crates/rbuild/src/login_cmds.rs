//! `rbuild login` and `rbuild logout`, as `docker login`/`docker logout`: the flags and what is
//! printed. Checking the credentials and storing them is `rbuild_oci::registry::login`.

use std::io::Read as _;

use clap::Args;
use rbuild_builder::Settings;
use rbuild_oci::registry::auth::Credentials;
use rbuild_oci::registry::{login, DockerConfig, LoginServer, Stored};

use crate::report::CliError;
use crate::usage::UsageError;

/// `rbuild login [SERVER]`.
#[derive(Args, Debug)]
pub struct LoginArgs {
    /// The registry (`host[:port]`); Docker Hub when not given
    pub server: Option<String>,
    /// User name
    #[arg(short = 'u', long)]
    pub username: Option<String>,
    /// Password (visible to other users of the machine: prefer --password-stdin)
    #[arg(short = 'p', long)]
    pub password: Option<String>,
    /// Read the password from standard input
    #[arg(long, conflicts_with = "password")]
    pub password_stdin: bool,
}

/// Checks the credentials against the registry, then stores them.
pub fn login(args: LoginArgs) -> Result<(), CliError> {
    let username = args
        .username
        .filter(|u| !u.is_empty())
        .ok_or(UsageError::LoginUser)?;
    let password = match (args.password, args.password_stdin) {
        (_, true) => read_password()?,
        (Some(p), false) => {
            eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
            p
        }
        (None, false) => return Err(UsageError::LoginPassword.into()),
    };
    if password.is_empty() {
        return Err(UsageError::LoginPassword.into());
    }
    let server = LoginServer::parse(args.server.as_deref());
    let settings = Settings::load()?;
    let mut docker_config = DockerConfig::open_default()?;
    let credentials = Credentials { username, password };
    let stored = login::login(
        &settings.registries,
        &server,
        credentials,
        &mut docker_config,
    )?;
    if let Stored::File(path) = stored {
        eprintln!(
            "WARNING! Your password will be stored unencrypted in {}.",
            path.display()
        );
    }
    println!("Login Succeeded");
    Ok(())
}

/// Removes the stored credentials of a registry.
pub fn logout(server: Option<&str>) -> Result<(), CliError> {
    let server = LoginServer::parse(server);
    let mut docker_config = DockerConfig::open_default()?;
    let removed = login::logout(&server, &mut docker_config)?;
    if let Some(warning) = &removed.helper_warning {
        eprintln!("WARNING: could not erase credentials: {warning}");
    }
    if removed.from_file {
        println!("Removing login credentials for {server}");
    } else {
        println!("Not logged in to {server}");
    }
    Ok(())
}

/// The password on standard input, without its line ending (as `docker login` reads it).
fn read_password() -> Result<String, CliError> {
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .map_err(UsageError::Stdin)?;
    Ok(text.trim_end_matches(['\n', '\r']).to_string())
}
