//! One parsed `RUN --mount` lowered to an [`IrMount`] (BuildKit's `dispatchRunMounts`,
//! `dispatchSecret`, `dispatchSSH`), with the vertices it reads added as Exec inputs.
//!
//! Targets: a relative target is joined with the WORKDIR, every target is cleaned, and a
//! bind/cache/tmpfs mount on `/` is an error. Defaults follow BuildKit:
//! - bind: read-only; no `from` reads the build context, copied first (`.dockerignore`
//!   applies, as for COPY) into a `File` vertex on scratch; `source` is relative to the
//!   context (`..` cannot leave it) or absolute in the `from` filesystem (default `/`).
//! - cache: `id` defaults to the target *as written* (`path.Clean`, so a relative target
//!   keeps a relative id: `target=c` in two WORKDIRs is one cache, as in BuildKit);
//!   sharing `shared`; mode 0755, uid/gid 0; `from` + `source` seed a new cache; `source`
//!   alone mounts that sub-directory of the cache (cleaned, `..` cannot leave it).
//! - secret: `id` is `source`, else `id`, else the target's base name; the file goes to
//!   `target`, else `/run/secrets/<id>`, unless only `env` is given; mode 0400, uid/gid 0.
//! - ssh: `id` `default`; target `/run/buildkit/ssh_agent.<N>` (N counts this RUN's ssh
//!   mounts from 0); mode 0600.

use rbuild_graph::{
    BindMount, CacheMount, CacheSharing, Mount as IrMount, MountFrom, SecretMount, SshMount,
    TmpfsMount,
};

use super::*;
use crate::lower::mount_sources::{resolve_from, FromRef, RunMountError};

/// The inputs of the Exec vertex being built: the root first, then every vertex a mount
/// reads, each once.
pub(super) struct MountInputs(Vec<VertexId>);

impl MountInputs {
    pub(super) fn new(root: VertexId) -> Self {
        MountInputs(vec![root])
    }

    /// The input index of `v` (never 0: a mount of the root's own vertex gets its own entry).
    pub(super) fn index_of(&mut self, v: VertexId) -> usize {
        if let Some(i) = self.0.iter().skip(1).position(|&x| x == v) {
            return i + 1;
        }
        self.0.push(v);
        self.0.len() - 1
    }

    pub(super) fn into_inputs(self) -> Vec<VertexId> {
        self.0
    }
}

/// Go's `path.Base`.
fn base_name(p: &str) -> String {
    let trimmed = p.trim_end_matches('/');
    if trimmed.is_empty() {
        return if p.is_empty() { "." } else { "/" }.to_string();
    }
    trimmed.rsplit('/').next().unwrap_or(trimmed).to_string()
}

/// A mount target: absolute (a relative one is joined with the working directory) and clean.
fn absolute(cwd: &str, target: &str) -> String {
    if target.starts_with('/') {
        paths::clean(target)
    } else {
        paths::join(&format!("/{cwd}"), target)
    }
}

impl Lowerer<'_> {
    /// Lowers `m`; `ssh_count` counts the ssh mounts of this RUN so far.
    pub(super) fn lower_mount(
        &mut self,
        st: &StageState,
        node: &Node,
        m: &Mount,
        inputs: &mut MountInputs,
        ssh_count: &mut usize,
    ) -> Result<IrMount, LowerError> {
        let raw_target = m.target.as_deref().unwrap_or("");
        let target = absolute(&st.cwd, raw_target);
        if target == "/" && !matches!(m.typ, MountType::Secret | MountType::Ssh) {
            return Err(RunMountError::RootTarget(target).into());
        }
        Ok(match m.typ {
            MountType::Bind => {
                let (source, path) = match &m.from {
                    None => {
                        let (vertex, path) = self.context_copy(m.source.as_deref())?;
                        (inputs.index_of(vertex), path)
                    }
                    Some(from) => {
                        let vertex = self.mount_from(st, node, from)?;
                        let path = paths::fs_src(m.source.as_deref().unwrap_or("/"));
                        (inputs.index_of(vertex), path)
                    }
                };
                IrMount::Bind(BindMount {
                    target,
                    source,
                    path,
                    readwrite: !m.read_only,
                })
            }
            MountType::Cache => {
                let path = paths::fs_src(m.source.as_deref().unwrap_or("/"));
                let (from, subdir) = match &m.from {
                    Some(from) => {
                        let vertex = self.mount_from(st, node, from)?;
                        let from = MountFrom {
                            source: inputs.index_of(vertex),
                            path,
                        };
                        (Some(from), None)
                    }
                    // BuildKit mounts that sub-directory of the cache (`llb.SourcePath`).
                    None if path != "/" => (None, Some(path.trim_start_matches('/').to_string())),
                    None => (None, None),
                };
                IrMount::Cache(CacheMount {
                    target,
                    id: m.id.clone().unwrap_or_else(|| paths::clean(raw_target)),
                    sharing: match m.sharing {
                        Some(Sharing::Private) => CacheSharing::Private,
                        Some(Sharing::Locked) => CacheSharing::Locked,
                        Some(Sharing::Shared) | None => CacheSharing::Shared,
                    },
                    from,
                    subdir,
                    readonly: m.read_only,
                    mode: m.mode.unwrap_or(0o755),
                    uid: m.uid.unwrap_or(0),
                    gid: m.gid.unwrap_or(0),
                })
            }
            MountType::Tmpfs => IrMount::Tmpfs(TmpfsMount {
                target,
                size: m.size,
            }),
            MountType::Secret => {
                let id = match (&m.source, &m.id, &m.target) {
                    (Some(s), _, _) | (None, Some(s), _) => s.clone(),
                    (None, None, Some(t)) => base_name(t),
                    (None, None, None) => return Err(RunMountError::SecretId.into()),
                };
                let target = match (&m.target, &m.env) {
                    (Some(_), _) => Some(target),
                    (None, None) => Some(format!("/run/secrets/{}", base_name(&id))),
                    (None, Some(_)) => None,
                };
                IrMount::Secret(SecretMount {
                    id,
                    target,
                    env: m.env.clone(),
                    required: m.required,
                    mode: m.mode.unwrap_or(0o400),
                    uid: m.uid.unwrap_or(0),
                    gid: m.gid.unwrap_or(0),
                })
            }
            MountType::Ssh => {
                if m.source.is_some() {
                    return Err(RunMountError::SshSource.into());
                }
                let target = match &m.target {
                    Some(_) => target,
                    None => format!("/run/buildkit/ssh_agent.{ssh_count}"),
                };
                *ssh_count += 1;
                IrMount::Ssh(SshMount {
                    id: m.id.clone().unwrap_or_else(|| "default".to_string()),
                    target,
                    required: m.required,
                    mode: m.mode.unwrap_or(0o600),
                    uid: m.uid.unwrap_or(0),
                    gid: m.gid.unwrap_or(0),
                })
            }
        })
    }

    /// The vertex a mount's `from` names: a stage already lowered, `scratch`, a named
    /// context, or an image.
    fn mount_from(
        &mut self,
        st: &StageState,
        node: &Node,
        from: &str,
    ) -> Result<VertexId, LowerError> {
        let names: Vec<Option<String>> = self.plan.stages.iter().map(|s| s.name.clone()).collect();
        Ok(
            match resolve_from(from, &names, &self.plan.options.contexts)? {
                FromRef::Stage(j) => match &self.done[j] {
                    Some(s) => s.root,
                    None => {
                        return Err(RunMountError::StageOrder {
                            from: from.to_string(),
                            stage: st.display.clone(),
                        }
                        .into())
                    }
                },
                FromRef::Scratch => self.b.scratch(),
                FromRef::Image(r) => {
                    let platform = self.plan.options.platform.clone();
                    self.b.image(&r, &platform, format!("FROM {r}"), node.span)
                }
                FromRef::Named(n) => match self.plan.contexts.get(&n) {
                    Some(NamedContext::Image(r)) => {
                        let platform = self.plan.options.platform.clone();
                        self.b.image(r, &platform, format!("FROM {r}"), node.span)
                    }
                    Some(NamedContext::Filesystem) => self.b.named_filesystem(&n),
                    Some(NamedContext::Http { url }) => self.b.named_http(&n, url),
                    None => return Err(LowerError::UnresolvedContext(n)),
                },
            },
        )
    }

    /// A `File` vertex on scratch holding `source` (default: all) of the build context, and
    /// the path in it where exactly that source is: a directory's contents are copied into
    /// `/<base name>` and a file becomes `/<base name>`, so one path fits both (the kind is
    /// only known when the build runs); the whole context is copied to `/`. The vertex never
    /// ignores the cache (`--no-cache`): its key holds the digests of what it copies, so a
    /// cached copy is that same content, and BuildKit has no such step to re-run (it mounts
    /// its context snapshot directly).
    fn context_copy(&mut self, source: Option<&str>) -> Result<(VertexId, String), LowerError> {
        let src = paths::context_src(source.unwrap_or("."));
        if paths::has_wildcards(&src) {
            return Err(unsupported(
                "a RUN --mount source with wildcard characters (*, ?, [)",
            ));
        }
        let dest = if src == "." {
            "/".to_string()
        } else {
            format!("/{}", base_name(&src))
        };
        // Scratch before the context: vertex order shows in graphs (and golden files).
        self.b.scratch();
        let context = self.b.context();
        let name = format!("[internal] load {src} from build context for RUN --mount");
        let vertex = self.b.copy_to_scratch(context, &src, &dest, name);
        Ok((vertex, dest))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_names_and_targets() {
        assert_eq!(base_name("a/b.txt"), "b.txt");
        assert_eq!(base_name("/x/"), "x");
        assert_eq!(base_name("/"), "/");
        assert_eq!(base_name(""), ".");
        assert_eq!(absolute("/w", "c/"), "/w/c");
        assert_eq!(absolute("/w", ""), "/w");
        assert_eq!(absolute("/w", "/a/../b"), "/b");
        assert_eq!(absolute("/", "../x"), "/x");
    }
}
