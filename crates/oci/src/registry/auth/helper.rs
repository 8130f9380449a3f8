//! Docker's credential-helper protocol: `docker-credential-<name> get|store|erase`, with the
//! server URL (`get`, `erase`) or `{"ServerURL","Username","Secret"}` (`store`) on stdin and
//! the answer as JSON on stdout. A helper that fails prints its reason on stdout; `get`
//! failing means "credentials not found". A `Username` of `<token>` marks the `Secret` as an
//! identity token (an OAuth2 refresh token), as the Docker CLI stores one.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde::{Deserialize, Serialize};

use super::{Credential, Credentials, IDENTITY_TOKEN_USER};
use crate::registry::error::RegistryError;

/// One credential helper program.
#[derive(Clone, Debug)]
pub struct CredentialHelper {
    program: PathBuf,
}

/// What a helper's `get` prints and its `store` reads.
#[derive(Serialize, Deserialize)]
struct HelperCredentials {
    #[serde(rename = "ServerURL", default)]
    server_url: String,
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: String,
}

/// The operations of the protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    Get,
    Store,
    Erase,
}

impl Action {
    fn arg(self) -> &'static str {
        match self {
            Action::Get => "get",
            Action::Store => "store",
            Action::Erase => "erase",
        }
    }
}

impl CredentialHelper {
    /// The helper `docker-credential-<name>`, looked up in `dir`, else on `$PATH`.
    pub fn new(name: &str, dir: Option<&Path>) -> CredentialHelper {
        let program = format!("docker-credential-{name}");
        CredentialHelper {
            program: match dir {
                Some(dir) => dir.join(program),
                None => PathBuf::from(program),
            },
        }
    }

    /// The credentials the helper holds for `server`; `None` when it has none or is not
    /// installed. An answer that is not the protocol's JSON is an error.
    pub fn get(&self, server: &str) -> Result<Option<Credential>, RegistryError> {
        let Some(out) = self.run(Action::Get, server.as_bytes())? else {
            return Ok(None);
        };
        if !out.status.success() {
            return Ok(None);
        }
        let reply: HelperCredentials = serde_json::from_slice(&out.stdout).map_err(|source| {
            RegistryError::CredentialHelperReply {
                program: self.program.clone(),
                host: server.to_string(),
                source,
            }
        })?;
        Ok(match reply.username.as_str() {
            "" => None,
            IDENTITY_TOKEN_USER => Some(Credential::IdentityToken(reply.secret)),
            _ => Some(Credential::Password(Credentials {
                username: reply.username,
                password: reply.secret,
            })),
        })
    }

    /// Stores `credential` for `server`.
    pub fn store(&self, server: &str, credential: &Credential) -> Result<(), RegistryError> {
        let (username, secret) = match credential {
            Credential::Password(c) => (c.username.clone(), c.password.clone()),
            Credential::IdentityToken(t) => (IDENTITY_TOKEN_USER.to_string(), t.clone()),
        };
        let input = HelperCredentials {
            server_url: server.to_string(),
            username,
            secret,
        };
        let input =
            serde_json::to_vec(&input).map_err(|source| RegistryError::CredentialHelperReply {
                program: self.program.clone(),
                host: server.to_string(),
                source,
            })?;
        self.must_run(Action::Store, server, &input)
    }

    /// Removes what the helper holds for `server`.
    pub fn erase(&self, server: &str) -> Result<(), RegistryError> {
        self.must_run(Action::Erase, server, server.as_bytes())
    }

    /// Runs `action`, which must be there and succeed.
    fn must_run(&self, action: Action, server: &str, input: &[u8]) -> Result<(), RegistryError> {
        let out = self
            .run(action, input)?
            .ok_or_else(|| RegistryError::CredentialHelperRun {
                program: self.program.clone(),
                source: std::io::ErrorKind::NotFound.into(),
            })?;
        if out.status.success() {
            return Ok(());
        }
        let said = String::from_utf8_lossy(if out.stdout.is_empty() {
            &out.stderr
        } else {
            &out.stdout
        })
        .trim()
        .to_string();
        Err(RegistryError::CredentialHelperFailed {
            program: self.program.clone(),
            action: action.arg(),
            server: server.to_string(),
            message: said,
        })
    }

    /// Runs the helper with `input` on stdin; `None` when it is not installed.
    fn run(&self, action: Action, input: &[u8]) -> Result<Option<Output>, RegistryError> {
        let run_err = |source| RegistryError::CredentialHelperRun {
            program: self.program.clone(),
            source,
        };
        let mut attempts = 0;
        let mut child = loop {
            let spawned = Command::new(&self.program)
                .arg(action.arg())
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn();
            match spawned {
                Ok(c) => break c,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                // ETXTBSY: the program was just written and another thread's fork still
                // holds it open; that passes within milliseconds.
                Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && attempts < 20 => {
                    attempts += 1;
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                Err(e) => return Err(run_err(e)),
            }
        };
        if let Some(mut stdin) = child.stdin.take() {
            // A helper may answer without reading its input (and exit first): as Go's
            // os/exec, which docker uses, a broken pipe is no error; its status and output say
            // how it went.
            match stdin.write_all(input) {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => return Err(run_err(e)),
                _ => {}
            }
        }
        child.wait_with_output().map(Some).map_err(run_err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_helper_that_answers_without_reading_is_judged_by_its_status() {
        let dir = tempfile::tempdir().expect("tempdir");
        let program = dir.path().join("docker-credential-quick");
        std::fs::write(&program, "#!/bin/sh\necho 'no such credential'\nexit 1\n").expect("write");
        std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let helper = CredentialHelper::new("quick", Some(dir.path()));
        // More than a pipe holds, so the write meets the closed pipe every time.
        let server = "r".repeat(1 << 20);
        match helper.erase(&server) {
            Err(RegistryError::CredentialHelperFailed { message, .. }) => {
                assert_eq!(message, "no such credential")
            }
            other => panic!("expected the helper's own failure, got {other:?}"),
        }
    }
}
