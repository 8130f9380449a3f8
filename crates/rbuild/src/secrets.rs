//! `rbuild build --secret`, `--ssh` and `--allow`, parsed as `docker buildx build` parses them,
//! and loaded into the [`MountGrants`] the build's `RUN --mount=type=secret|ssh` and
//! `--security=insecure` use.
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

use rbuild_builder::MountGrants;
use rbuild_solver::mounts::{Secret, MAX_SECRET_SIZE};

use crate::cli::BuildArgs;

/// Where one `--secret` comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretSpec {
    pub id: String,
    pub file: Option<PathBuf>,
    pub env: Option<String>,
}

/// Why a `--secret`, `--ssh` or `--allow` value was refused (BuildKit's words where it has
/// them).
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("invalid --secret: failed to parse csv {0:?}: unterminated quote")]
    Csv(String),
    #[error("invalid --secret {value:?}: field '{field}' must be a key=value pair")]
    Field { value: String, field: String },
    #[error("invalid --secret {value:?}: unsupported secret type {kind:?}")]
    Type { value: String, kind: String },
    #[error("invalid --secret {value:?}: unexpected key '{key}' in '{field}'")]
    Key {
        value: String,
        key: String,
        field: String,
    },
    #[error("invalid --secret {0:?}: secret missing ID")]
    MissingId(String),
    #[error("secret {0}: no source")]
    NoSource(String),
    #[error("secret {id}: failed to stat {}: {source}", path.display())]
    Stat {
        id: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("secret {0} too big. max size 500KB")]
    TooBig(String),
    #[error("secret {id}: reading {}: {source}", path.display())]
    Read {
        id: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid --ssh {0:?}: ssh id is required")]
    SshId(String),
    #[error("invalid --ssh {0:?}: invalid empty ssh agent socket, make sure SSH_AUTH_SOCK is set")]
    SshNoSocket(String),
    #[error(
        "invalid --ssh {0:?}: several paths for one id are not supported; give one agent socket"
    )]
    SshPaths(String),
    #[error("could not parse ssh: [{value}]: stat {}: {source}", path.display())]
    SshStat {
        value: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "--ssh {value}: {} is not an agent socket; SSH key files are not supported: load the \
         key into an agent (ssh-agent, ssh-add) and pass --ssh {id}=$SSH_AUTH_SOCK",
        path.display()
    )]
    SshKeyFile {
        value: String,
        id: String,
        path: PathBuf,
    },
    #[error("invalid --allow {0:?}: the entitlements are security.insecure and network.host")]
    Allow(String),
}

/// Reads `--secret`, `--ssh` and `--allow` (secret files and variables are read now).
pub fn grants(args: &BuildArgs) -> Result<MountGrants, SecretError> {
    let lookup = |name: &str| std::env::var_os(name);
    let mut grants = MountGrants::default();
    for value in &args.secrets {
        let spec = parse_secret(value, &|n| lookup(n).is_some())?;
        let secret = load_secret(&spec)?;
        grants.secrets.push((spec.id, secret));
    }
    for value in &args.ssh {
        let sock = lookup("SSH_AUTH_SOCK").map(PathBuf::from);
        grants.ssh.push(parse_ssh(value, sock.as_deref())?);
    }
    for value in &args.allow {
        match value.as_str() {
            "security.insecure" => grants.allow_insecure = true,
            "network.host" => {}
            other => return Err(SecretError::Allow(other.to_string())),
        }
    }
    Ok(grants)
}

/// Splits CSV fields (`"a,b",c` → `a,b` and `c`; `""` inside quotes is one quote).
fn csv_fields(value: &str) -> Result<Vec<String>, SecretError> {
    let mut fields = vec![String::new()];
    let mut quoted = false;
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        let Some(cur) = fields.last_mut() else {
            break;
        };
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
        return Err(SecretError::Csv(value.to_string()));
    }
    Ok(fields)
}

/// Parses one `--secret` value; `env_is_set` says whether an environment variable exists.
pub fn parse_secret(
    value: &str,
    env_is_set: &dyn Fn(&str) -> bool,
) -> Result<SecretSpec, SecretError> {
    let mut spec = SecretSpec {
        id: String::new(),
        file: None,
        env: None,
    };
    let mut typ = None;
    for field in csv_fields(value)? {
        let Some((key, val)) = field.split_once('=') else {
            return Err(SecretError::Field {
                value: value.to_string(),
                field,
            });
        };
        match key.to_ascii_lowercase().as_str() {
            "type" if val == "file" || val == "env" => typ = Some(val.to_string()),
            "type" => {
                return Err(SecretError::Type {
                    value: value.to_string(),
                    kind: val.to_string(),
                })
            }
            "id" => spec.id = val.to_string(),
            "source" | "src" => spec.file = Some(PathBuf::from(val)),
            "env" => spec.env = Some(val.to_string()),
            other => {
                return Err(SecretError::Key {
                    value: value.to_string(),
                    key: other.to_string(),
                    field: field.clone(),
                })
            }
        }
    }
    if typ.as_deref() == Some("env") && spec.env.is_none() {
        spec.env = spec.file.take().map(|p| p.to_string_lossy().into_owned());
    }
    if spec.id.is_empty() {
        return Err(SecretError::MissingId(value.to_string()));
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
pub fn load_secret(spec: &SecretSpec) -> Result<Secret, SecretError> {
    if let Some(name) = &spec.env {
        let value = std::env::var_os(name).unwrap_or_default();
        return Ok(Secret::new(value.into_encoded_bytes()));
    }
    let Some(path) = &spec.file else {
        return Err(SecretError::NoSource(spec.id.clone()));
    };
    let md = std::fs::metadata(path).map_err(|source| SecretError::Stat {
        id: spec.id.clone(),
        path: path.clone(),
        source,
    })?;
    if md.len() > MAX_SECRET_SIZE as u64 {
        return Err(SecretError::TooBig(spec.id.clone()));
    }
    let bytes = std::fs::read(path).map_err(|source| SecretError::Read {
        id: spec.id.clone(),
        path: path.clone(),
        source,
    })?;
    Ok(Secret::new(bytes))
}

/// Parses one `--ssh` value into an agent id and its socket.
pub fn parse_ssh(
    value: &str,
    auth_sock: Option<&std::path::Path>,
) -> Result<(String, PathBuf), SecretError> {
    let (id, paths) = match value.split_once('=') {
        None => (value, None),
        Some((id, paths)) => (id, Some(paths)),
    };
    if id.is_empty() {
        return Err(SecretError::SshId(value.to_string()));
    }
    let path = match paths {
        None | Some("") => auth_sock
            .map(PathBuf::from)
            .ok_or_else(|| SecretError::SshNoSocket(value.to_string()))?,
        Some(p) if p.contains(',') => return Err(SecretError::SshPaths(value.to_string())),
        Some(p) => PathBuf::from(p),
    };
    let md = std::fs::metadata(&path).map_err(|source| SecretError::SshStat {
        value: value.to_string(),
        path: path.clone(),
        source,
    })?;
    if !md.file_type().is_socket() {
        return Err(SecretError::SshKeyFile {
            value: value.to_string(),
            id: id.to_string(),
            path,
        });
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
            let e = parse_secret(bad, &unset).unwrap_err().to_string();
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
        let e = load_secret(&spec("big", big.to_str(), None))
            .unwrap_err()
            .to_string();
        assert!(e.contains("too big"), "{e}");
        let e = load_secret(&spec("m", Some("/nonexistent/x"), None))
            .unwrap_err()
            .to_string();
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
        let e = parse_ssh("default", None).unwrap_err().to_string();
        assert!(e.contains("SSH_AUTH_SOCK"), "{e}");
        let key = dir.path().join("id_ed25519");
        std::fs::write(&key, "key").unwrap();
        let e = parse_ssh(&format!("default={}", key.display()), None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("key files are not supported"), "{e}");
        let e = parse_ssh("default=/nonexistent/x", None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("stat /nonexistent/x"), "{e}");
    }
}
