//! `rbuild build --secret`, `--ssh` and `--allow`, parsed as `docker buildx build` parses them,
//! and loaded into what the solver's `RUN --mount=type=secret|ssh` and `--security=insecure` use.
//!
//! `--secret id=ID[,src=PATH|,source=PATH][,env=VAR][,type=file|env]` (CSV fields; repeatable):
//! - `type=env` with `src` and no `env` means `src` names the variable;
//! - with neither `src` nor `env`, the secret comes from the environment variable named `ID`
//!   when it is set, and otherwise from the file named `ID` (BuildKit's file store does this);
//! - a file larger than 500 KiB is refused, like BuildKit; an unset `env` variable gives an
//!   empty secret, like BuildKit.
//!
//! `--ssh default|ID[=SOCKET]`: without a path, the agent at `$SSH_AUTH_SOCK`. A path must be
//! an agent socket; key files (which BuildKit loads into an in-process agent) are refused with
//! a clear error.
//!
//! `--allow security.insecure` grants `RUN --security=insecure`; `network.host` is accepted and
//! changes nothing (RUN --network=host needs no grant here).
//!
//! Secret values are read once, held as [`Secret`] (whose `Debug` hides them) and go only to the
//! solver: never to progress output, logs, the metadata file or the image.

use std::os::unix::fs::FileTypeExt;
use std::path::PathBuf;

use rbuild_solver::mounts::{Secret, MAX_SECRET_SIZE};

use crate::cli::BuildArgs;
use crate::report::CliError;

/// Where one `--secret` comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretSpec {
    pub id: String,
    pub file: Option<PathBuf>,
    pub env: Option<String>,
}

/// What the build was given for its mounts.
#[derive(Debug, Default)]
pub struct MountGrants {
    pub secrets: Vec<(String, Secret)>,
    pub ssh: Vec<(String, PathBuf)>,
    pub allow_insecure: bool,
}

impl MountGrants {
    /// Reads `--secret`, `--ssh` and `--allow` (secret files and variables are read now).
    pub fn from_args(args: &BuildArgs) -> Result<MountGrants, CliError> {
        let lookup = |name: &str| std::env::var_os(name);
        let mut grants = MountGrants::default();
        for value in &args.secrets {
            let spec = parse_secret(value, &|n| lookup(n).is_some()).map_err(CliError::Usage)?;
            let secret = load_secret(&spec).map_err(CliError::Usage)?;
            grants.secrets.push((spec.id, secret));
        }
        for value in &args.ssh {
            let sock = lookup("SSH_AUTH_SOCK").map(PathBuf::from);
            grants
                .ssh
                .push(parse_ssh(value, sock.as_deref()).map_err(CliError::Usage)?);
        }
        for value in &args.allow {
            match value.as_str() {
                "security.insecure" => grants.allow_insecure = true,
                "network.host" => {}
                other => {
                    return Err(CliError::Usage(format!(
                        "invalid --allow {other:?}: the entitlements are security.insecure and network.host"
                    )))
                }
            }
        }
        Ok(grants)
    }
}

/// Splits CSV fields (`"a,b",c` → `a,b` and `c`; `""` inside quotes is one quote).
fn csv_fields(value: &str) -> Result<Vec<String>, String> {
    let mut fields = vec![String::new()];
    let mut quoted = false;
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        let cur = fields.last_mut().ok_or("empty field list")?;
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                cur.push('"');
            }
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(String::new()),
            c => cur.push(c),
        }
    }
    if quoted {
        return Err(format!("failed to parse csv {value:?}: unterminated quote"));
    }
    Ok(fields)
}

/// Parses one `--secret` value; `env_is_set` says whether an environment variable exists.
pub fn parse_secret(value: &str, env_is_set: &dyn Fn(&str) -> bool) -> Result<SecretSpec, String> {
    let mut spec = SecretSpec {
        id: String::new(),
        file: None,
        env: None,
    };
    let mut typ = None;
    for field in csv_fields(value).map_err(|e| format!("invalid --secret: {e}"))? {
        let Some((key, val)) = field.split_once('=') else {
            return Err(format!(
                "invalid --secret {value:?}: field '{field}' must be a key=value pair"
            ));
        };
        match key.to_ascii_lowercase().as_str() {
            "type" if val == "file" || val == "env" => typ = Some(val.to_string()),
            "type" => {
                return Err(format!(
                    "invalid --secret {value:?}: unsupported secret type {val:?}"
                ))
            }
            "id" => spec.id = val.to_string(),
            "source" | "src" => spec.file = Some(PathBuf::from(val)),
            "env" => spec.env = Some(val.to_string()),
            other => {
                return Err(format!(
                    "invalid --secret {value:?}: unexpected key '{other}' in '{field}'"
                ))
            }
        }
    }
    if typ.as_deref() == Some("env") && spec.env.is_none() {
        spec.env = spec.file.take().map(|p| p.to_string_lossy().into_owned());
    }
    if spec.id.is_empty() {
        return Err(format!("invalid --secret {value:?}: secret missing ID"));
    }
    if spec.env.is_none() && spec.file.is_none() {
        if env_is_set(&spec.id) {
            spec.env = Some(spec.id.clone());
        } else {
            spec.file = Some(PathBuf::from(&spec.id));
        }
    }
    Ok(spec)
}

/// Reads a secret's value (an environment variable wins over a file when both are named,
/// as in BuildKit).
pub fn load_secret(spec: &SecretSpec) -> Result<Secret, String> {
    if let Some(name) = &spec.env {
        let value = std::env::var_os(name).unwrap_or_default();
        return Ok(Secret::new(value.into_encoded_bytes()));
    }
    let Some(path) = &spec.file else {
        return Err(format!("secret {}: no source", spec.id));
    };
    let md = std::fs::metadata(path)
        .map_err(|e| format!("secret {}: failed to stat {}: {e}", spec.id, path.display()))?;
    if md.len() > MAX_SECRET_SIZE as u64 {
        return Err(format!("secret {} too big. max size 500KB", spec.id));
    }
    let bytes = std::fs::read(path)
        .map_err(|e| format!("secret {}: reading {}: {e}", spec.id, path.display()))?;
    Ok(Secret::new(bytes))
}

/// Parses one `--ssh` value into an agent id and its socket.
pub fn parse_ssh(
    value: &str,
    auth_sock: Option<&std::path::Path>,
) -> Result<(String, PathBuf), String> {
    let (id, paths) = match value.split_once('=') {
        None => (value, None),
        Some((id, paths)) => (id, Some(paths)),
    };
    if id.is_empty() {
        return Err(format!("invalid --ssh {value:?}: ssh id is required"));
    }
    let path = match paths {
        None | Some("") => auth_sock.map(PathBuf::from).ok_or_else(|| {
            format!(
                "invalid --ssh {value:?}: invalid empty ssh agent socket, make sure SSH_AUTH_SOCK is set"
            )
        })?,
        Some(p) if p.contains(',') => {
            return Err(format!(
                "invalid --ssh {value:?}: several paths for one id are not supported; give one agent socket"
            ))
        }
        Some(p) => PathBuf::from(p),
    };
    let md = std::fs::metadata(&path).map_err(|e| {
        format!(
            "could not parse ssh: [{value}]: stat {}: {e}",
            path.display()
        )
    })?;
    if !md.file_type().is_socket() {
        return Err(format!(
            "--ssh {value}: {} is not an agent socket; SSH key files are not supported: load the \
             key into an agent (ssh-agent, ssh-add) and pass --ssh {id}=$SSH_AUTH_SOCK",
            path.display()
        ));
    }
    Ok((id.to_string(), path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unset(_: &str) -> bool {
        false
    }

    fn spec(id: &str, file: Option<&str>, env: Option<&str>) -> SecretSpec {
        SecretSpec {
            id: id.into(),
            file: file.map(PathBuf::from),
            env: env.map(String::from),
        }
    }

    #[test]
    fn secret_forms() {
        assert_eq!(
            parse_secret("id=a,src=/p", &unset).unwrap(),
            spec("a", Some("/p"), None)
        );
        assert_eq!(
            parse_secret("id=a,source=/p,type=file", &unset).unwrap(),
            spec("a", Some("/p"), None)
        );
        assert_eq!(
            parse_secret("id=a,env=VAR", &unset).unwrap(),
            spec("a", None, Some("VAR"))
        );
        // type=env with src: src names the variable.
        assert_eq!(
            parse_secret("type=env,id=a,src=VAR", &unset).unwrap(),
            spec("a", None, Some("VAR"))
        );
        // id alone: the variable named like it if set, else the file named like it.
        assert_eq!(
            parse_secret("id=TOKEN", &|n| n == "TOKEN").unwrap(),
            spec("TOKEN", None, Some("TOKEN"))
        );
        assert_eq!(
            parse_secret("id=TOKEN", &unset).unwrap(),
            spec("TOKEN", Some("TOKEN"), None)
        );
        assert_eq!(
            parse_secret("\"id=a,b\",src=/p", &unset).unwrap(),
            spec("a,b", Some("/p"), None)
        );
    }

    #[test]
    fn secret_errors() {
        for (bad, says) in [
            ("src=/p", "secret missing ID"),
            ("id=a,type=ssh", "unsupported secret type"),
            ("id=a,mode=0400", "unexpected key 'mode'"),
            ("id=a,src", "must be a key=value pair"),
            ("id=\"a", "unterminated quote"),
        ] {
            let e = parse_secret(bad, &unset).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn secret_files_load_and_size_is_capped() {
        let dir = tempfile::tempdir().unwrap();
        let small = dir.path().join("s");
        std::fs::write(&small, "v").unwrap();
        let s = load_secret(&spec("a", small.to_str(), None)).unwrap();
        assert_eq!(s.bytes(), b"v");
        let big = dir.path().join("big");
        std::fs::write(&big, vec![0u8; MAX_SECRET_SIZE + 1]).unwrap();
        let e = load_secret(&spec("big", big.to_str(), None)).unwrap_err();
        assert!(e.contains("too big"), "{e}");
        let e = load_secret(&spec("m", Some("/nonexistent/x"), None)).unwrap_err();
        assert!(e.contains("/nonexistent/x"), "{e}");
    }

    #[test]
    fn ssh_forms() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("agent");
        let _l = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        assert_eq!(
            parse_ssh("default", Some(&sock)).unwrap(),
            ("default".to_string(), sock.clone())
        );
        let given = format!("gh={}", sock.display());
        assert_eq!(
            parse_ssh(&given, None).unwrap(),
            ("gh".to_string(), sock.clone())
        );
        let e = parse_ssh("default", None).unwrap_err();
        assert!(e.contains("SSH_AUTH_SOCK"), "{e}");
        let key = dir.path().join("id_ed25519");
        std::fs::write(&key, "key").unwrap();
        let e = parse_ssh(&format!("default={}", key.display()), None).unwrap_err();
        assert!(e.contains("key files are not supported"), "{e}");
        let e = parse_ssh("default=/nonexistent/x", None).unwrap_err();
        assert!(e.contains("stat /nonexistent/x"), "{e}");
    }
}
