//! `RUN --mount`: turning each [`Mount`] of an [`ExecOp`] into a [`ResolvedMount`] on the host,
//! and handing the build's secrets and SSH agents to the RUNs that ask for them.
//!
//! | mount | resolved to |
//! |---|---|
//! | bind | [`MountSource::Layers`]: the snapshot layers of input `source`, read-only unless `readwrite` |
//! | cache | [`MountSource::Dir`]: a directory leased from the store (`store.cache_mounts().lease`), created on first use (seeded with the contents the `CacheExchange` imported for its id, `--cache-from …,cache-mounts=true`, else from `from`), or its `subdir` |
//! | tmpfs | [`MountSource::Tmpfs`] |
//! | secret | [`MountSource::File`] ([`crate::ports::SecretFile`]) with the secret's bytes; `env` adds `NAME=value` to the executed op's env |
//! | ssh | [`MountSource::Socket`]: a proxy socket with the mount's owner and mode, forwarding to the agent; `SSH_AUTH_SOCK` names the first one |
//!
//! The op handed to the executor is formed here too: the proxy build args of
//! `ExecOp::proxy_env` join its environment (after keying, like the secrets).
//!
//! Invariants:
//! - The cache key is computed on the op as written, before this runs: secret values, agent
//!   sockets, proxy values and cache-mount contents never reach a key, the explain-cache
//!   record or an event.
//!   [`Secret`]'s `Debug` prints only its length.
//! - What a [`PreparedMounts`] holds (cache-mount leases, SSH proxies) lives until the RUN has
//!   finished; dropping it releases the leases and tears the proxies down.
//! - A secret or agent the build was not given is an error when the mount is `required`, and
//!   otherwise the mount is left out (BuildKit's behaviour).

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rbuild_cache::merged::MergedView;
use rbuild_cache::{
    CacheError, CacheMountError, CacheMountLease, CacheMountRequest, CacheMountSharing, SnapshotId,
    Store,
};
use rbuild_graph::{CacheSharing, ExecOp, Graph, Mount, Op, SecurityMode, VertexId};

use crate::cancel::CancelToken;
use crate::ports::{CacheExchange, MountSource, ResolvedMount, SecretFile};
use crate::ssh_proxy::SshProxy;
use crate::VertexResult;

/// BuildKit's limit on the size of one secret (500 KiB).
pub const MAX_SECRET_SIZE: usize = 500 * 1024;

/// The value of one build secret. Its `Debug` never shows the bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl Secret {
    pub fn new(bytes: Vec<u8>) -> Self {
        Secret(bytes)
    }

    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secret({} bytes)", self.0.len())
    }
}

/// What the build was given for its mounts: secrets and SSH agents by id, and the
/// `security.insecure` entitlement.
#[derive(Clone, Debug, Default)]
pub(crate) struct MountResources {
    pub(crate) secrets: HashMap<String, Secret>,
    /// Agent sockets on the host, by id (`default` for `--ssh default`).
    pub(crate) ssh: HashMap<String, PathBuf>,
    pub(crate) allow_insecure: bool,
}

/// Why the mounts of a RUN could not be prepared (or the RUN may not run).
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    #[error("secret {id} not found: the mount requires it; pass it with --secret id={id}[,src=PATH|,env=VAR]")]
    SecretMissing { id: String },
    #[error("no SSH agent {id:?} forwarded: the mount requires it; pass --ssh {id}[=SOCKET]")]
    SshMissing { id: String },
    #[error("forwarding SSH agent {id:?} ({agent}): {source}")]
    SshProxy {
        id: String,
        agent: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Boxed: a store error is large, and this sits inside every `VertexError`.
    #[error(transparent)]
    Cache(Box<CacheMountError>),
    #[error("mount at {target}: source {index} is not an input of this step")]
    BadSource { target: String, index: usize },
    #[error("mount at {target}: snapshot {} of its source is missing from the store", .id.0)]
    MissingSnapshot { target: String, id: SnapshotId },
    #[error("security.insecure is not allowed: pass --allow security.insecure to grant it")]
    InsecureNotAllowed,
    #[error("cache mount {id:?}: source {subdir:?} {problem}")]
    CacheSubdir {
        id: String,
        subdir: String,
        problem: String,
    },
}

/// The mounts of one RUN, ready to hand to the executor, and what keeps them alive. Not
/// `Debug`: `op.env` may hold a secret's value.
pub(crate) struct PreparedMounts {
    /// The op to execute: the op as keyed, plus the environment its proxy build args, secrets
    /// and agents add.
    pub(crate) op: ExecOp,
    pub(crate) mounts: Vec<ResolvedMount>,
    _leases: Vec<CacheMountLease>,
    _proxies: Vec<SshProxy>,
}

/// The first reachable RUN with `--security=insecure` when the build does not allow it. The
/// solver fails on it before anything runs (BuildKit checks entitlements when it loads the
/// definition), with [`MountError::InsecureNotAllowed`].
pub(crate) fn disallowed_insecure(graph: &Graph, allow_insecure: bool) -> Option<VertexId> {
    if allow_insecure {
        return None;
    }
    graph.reachable().into_iter().find(
        |id| matches!(&graph.vertex(*id).op, Op::Exec(e) if e.security == SecurityMode::Insecure),
    )
}

/// Resolves the mounts of `exec`, whose inputs' results are `inputs` (in input order). A cache
/// mount the store does not have yet is seeded through `exchange` when it imported contents
/// for its id (only then is anything downloaded for it).
pub(crate) fn prepare(
    store: &Store,
    exec: &ExecOp,
    inputs: &[VertexResult],
    resources: &MountResources,
    exchange: Option<&dyn CacheExchange>,
    cancel: &CancelToken,
) -> Result<PreparedMounts, MountError> {
    let mut out = PreparedMounts {
        op: exec.clone(),
        mounts: Vec::with_capacity(exec.mounts.len()),
        _leases: Vec::new(),
        _proxies: Vec::new(),
    };
    // Proxy build args (outside the key) replace the same names of the RUN's environment,
    // as runc's last-wins environment does with BuildKit's appended ProxyEnv; a secret's
    // `env` below still wins over them.
    for entry in exec.proxy_env.env() {
        if let Some((name, value)) = entry.split_once('=') {
            set_env(&mut out.op.env, name, value);
        }
    }
    let mut ssh_sock: Option<String> = None;
    // A cache id mounted twice by one RUN is leased once (a second `locked` lease would wait
    // for the first forever).
    let mut leased: HashMap<&str, PathBuf> = HashMap::new();
    for mount in &exec.mounts {
        let target = mount.target().unwrap_or_default().to_string();
        match mount {
            Mount::Bind(b) => {
                let layers = layer_paths(store, inputs, b.source, &target)?;
                out.mounts.push(ResolvedMount {
                    target,
                    readonly: !b.readwrite,
                    source: MountSource::Layers {
                        layers,
                        path: b.path.clone(),
                    },
                });
            }
            Mount::Cache(c) => {
                if let Some(dir) = leased.get(c.id.as_str()) {
                    let dir = cache_subdir(dir, c)?;
                    out.mounts.push(ResolvedMount {
                        target,
                        readonly: c.readonly,
                        source: MountSource::Dir(dir),
                    });
                    continue;
                }
                let from = match &c.from {
                    Some(f) => Some((
                        MergedView::new(layer_paths(store, inputs, f.source, &target)?),
                        f.path.as_str(),
                    )),
                    None => None,
                };
                let seed = |dir: &Path| {
                    // Imported contents are this mount's own earlier state: they win over `from`.
                    if let Some(exchange) = exchange {
                        let seeded = exchange
                            .seed_cache_mount(&c.id, dir)
                            .map_err(|e| CacheError::Seed(Box::new(e)))?;
                        if seeded {
                            return Ok(());
                        }
                    }
                    match &from {
                        Some((view, path)) => seed_from(view, path, dir),
                        None => Ok(()),
                    }
                };
                let req = CacheMountRequest {
                    id: &c.id,
                    sharing: match c.sharing {
                        CacheSharing::Shared => CacheMountSharing::Shared,
                        CacheSharing::Private => CacheMountSharing::Private,
                        CacheSharing::Locked => CacheMountSharing::Locked,
                    },
                    mode: c.mode,
                    uid: c.uid,
                    gid: c.gid,
                };
                let lease = store
                    .cache_mounts()
                    .lease(&req, &|| cancel.is_cancelled(), &seed)
                    .map_err(|e| MountError::Cache(Box::new(e)))?;
                let dir = cache_subdir(lease.path(), c)?;
                out.mounts.push(ResolvedMount {
                    target,
                    readonly: c.readonly,
                    source: MountSource::Dir(dir),
                });
                leased.insert(&c.id, lease.path().to_path_buf());
                out._leases.push(lease);
            }
            Mount::Tmpfs(t) => out.mounts.push(ResolvedMount {
                target,
                readonly: false,
                source: MountSource::Tmpfs { size: t.size },
            }),
            Mount::Secret(s) => {
                let Some(secret) = resources.secrets.get(&s.id) else {
                    if s.required {
                        return Err(MountError::SecretMissing { id: s.id.clone() });
                    }
                    continue;
                };
                if let Some(name) = &s.env {
                    let value = String::from_utf8_lossy(secret.bytes());
                    set_env(&mut out.op.env, name, &value);
                }
                if let Some(target) = &s.target {
                    out.mounts.push(ResolvedMount {
                        target: target.clone(),
                        readonly: true,
                        source: MountSource::File(SecretFile {
                            data: secret.bytes().to_vec(),
                            mode: s.mode,
                            uid: s.uid,
                            gid: s.gid,
                        }),
                    });
                }
            }
            Mount::Ssh(s) => {
                let Some(agent) = resources.ssh.get(&s.id) else {
                    if s.required {
                        return Err(MountError::SshMissing { id: s.id.clone() });
                    }
                    continue;
                };
                let proxy = SshProxy::start(agent, s.uid, s.gid, s.mode).map_err(|source| {
                    MountError::SshProxy {
                        id: s.id.clone(),
                        agent: agent.clone(),
                        source,
                    }
                })?;
                out.mounts.push(ResolvedMount {
                    target: target.clone(),
                    readonly: false,
                    source: MountSource::Socket(proxy.socket().to_path_buf()),
                });
                out._proxies.push(proxy);
                ssh_sock.get_or_insert(target);
            }
        }
    }
    if let Some(sock) = ssh_sock {
        // Like BuildKit: the first agent, unless the RUN's environment already names one.
        if !out.op.env.iter().any(|e| e.starts_with("SSH_AUTH_SOCK=")) {
            out.op.env.push(format!("SSH_AUTH_SOCK={sock}"));
        }
    }
    Ok(out)
}

/// The directory a cache mount mounts: the cache directory `dir` itself, or its `subdir`
/// (BuildKit's `source` without `from`). Missing directories on the way are created with the
/// mount's mode, uid and gid. The sub-directory never leaves `dir`: a `..`, `.` or empty
/// component is refused, and so is any component that is a symlink or not a directory
/// (checked without following links), so a RUN cannot point the next mount outside the cache.
fn cache_subdir(dir: &Path, c: &rbuild_graph::CacheMount) -> Result<PathBuf, MountError> {
    let Some(sub) = c.subdir.as_deref() else {
        return Ok(dir.to_path_buf());
    };
    let err = |problem: String| MountError::CacheSubdir {
        id: c.id.clone(),
        subdir: sub.to_string(),
        problem,
    };
    let mut path = dir.to_path_buf();
    for part in sub.split('/') {
        if part.is_empty() || part == "." || part == ".." {
            return Err(err("is not a clean relative path".to_string()));
        }
        path.push(part);
        match fs::symlink_metadata(&path) {
            Ok(md) if md.file_type().is_symlink() => {
                return Err(err(format!("{part:?} is a symbolic link in the cache")))
            }
            Ok(md) if !md.is_dir() => {
                return Err(err(format!("{part:?} is not a directory in the cache")))
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                match fs::create_dir(&path) {
                    Ok(()) => {}
                    // Another RUN sharing the cache made it meanwhile: check it again.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        let md = fs::symlink_metadata(&path)
                            .map_err(|e| err(format!("checking {part:?}: {e}")))?;
                        if !md.is_dir() || md.file_type().is_symlink() {
                            return Err(err(format!("{part:?} is not a directory in the cache")));
                        }
                        continue;
                    }
                    Err(e) => return Err(err(format!("creating {part:?}: {e}"))),
                }
                std::os::unix::fs::lchown(&path, Some(c.uid), Some(c.gid))
                    .map_err(|e| err(format!("chown of {part:?}: {e}")))?;
                fs::set_permissions(&path, fs::Permissions::from_mode(c.mode & 0o7777))
                    .map_err(|e| err(format!("chmod of {part:?}: {e}")))?;
            }
            Err(e) => return Err(err(format!("checking {part:?}: {e}"))),
        }
    }
    Ok(path)
}

/// Sets `name=value`, replacing an earlier definition of `name`.
fn set_env(env: &mut Vec<String>, name: &str, value: &str) {
    let prefix = format!("{name}=");
    env.retain(|e| !e.starts_with(&prefix));
    env.push(format!("{prefix}{value}"));
}

/// The snapshot directories of input `index`, bottom first.
fn layer_paths(
    store: &Store,
    inputs: &[VertexResult],
    index: usize,
    target: &str,
) -> Result<Vec<PathBuf>, MountError> {
    let input = inputs.get(index).ok_or_else(|| MountError::BadSource {
        target: target.to_string(),
        index,
    })?;
    input
        .layers
        .iter()
        .map(|l| {
            store
                .snapshots()
                .path(l)
                .ok_or_else(|| MountError::MissingSnapshot {
                    target: target.to_string(),
                    id: *l,
                })
        })
        .collect()
}

/// Copies directory `src` of `view` into the (empty) new cache directory `dest`: directories,
/// regular files and symlinks with their modes and owners (other file types are skipped).
fn seed_from(view: &MergedView, src: &str, dest: &Path) -> Result<(), CacheError> {
    let io = |action: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| CacheError::Io {
            action,
            path,
            source,
        }
    };
    let top = view
        .lookup_followed(Path::new(src))?
        .ok_or_else(|| CacheError::NotFound { path: src.into() })?;
    if !top.metadata.is_dir() {
        return Err(CacheError::NotADirectory { path: src.into() });
    }
    let mut dirs = Vec::new();
    for entry in view.walk(&top.path)? {
        let Ok(rel) = entry.path.strip_prefix(&top.path) else {
            continue;
        };
        let to = dest.join(rel);
        let md = &entry.metadata;
        let ft = md.file_type();
        if ft.is_dir() {
            fs::create_dir(&to).map_err(io("create directory", &to))?;
            dirs.push((to.clone(), md.permissions().mode()));
        } else if ft.is_symlink() {
            let link =
                fs::read_link(&entry.host_path).map_err(io("read link", &entry.host_path))?;
            std::os::unix::fs::symlink(&link, &to).map_err(io("create symlink", &to))?;
        } else if ft.is_file() {
            fs::copy(&entry.host_path, &to).map_err(io("copy", &to))?;
            fs::set_permissions(&to, md.permissions()).map_err(io("chmod", &to))?;
        } else {
            continue;
        }
        std::os::unix::fs::lchown(&to, Some(md.uid()), Some(md.gid())).map_err(io("chown", &to))?;
    }
    // The cache directory itself takes the source directory's owner and mode, as in BuildKit
    // (where `uid`, `gid` and `mode` apply only without `from`).
    std::os::unix::fs::lchown(dest, Some(top.metadata.uid()), Some(top.metadata.gid()))
        .map_err(io("chown", dest))?;
    dirs.insert(0, (dest.to_path_buf(), top.metadata.permissions().mode()));
    // Directory modes last (deepest first), so a read-only directory does not stop the copy.
    for (dir, mode) in dirs.into_iter().rev() {
        fs::set_permissions(&dir, fs::Permissions::from_mode(mode & 0o7777))
            .map_err(io("chmod", &dir))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_debug_hides_the_value() {
        let s = Secret::new(b"hunter2".to_vec());
        assert_eq!(format!("{s:?}"), "Secret(7 bytes)");
        let mut r = MountResources::default();
        r.secrets.insert("pw".into(), s);
        assert!(!format!("{r:?}").contains("hunter2"));
    }

    #[test]
    fn set_env_replaces() {
        let mut env = vec!["A=1".to_string(), "AB=2".to_string()];
        set_env(&mut env, "A", "3");
        assert_eq!(env, vec!["AB=2", "A=3"]);
    }
}
