//! `RUN --mount`s in the sandbox: the solver's [`ResolvedMount`]s, mounted at their targets
//! after the root filesystem and the standard mounts, before the command starts.
//!
//! Three steps, each on one side of the init protocol:
//! - [`for_init`] (rbuild, host side) turns the request's mounts into [`RunMount`]s for the
//!   [`crate::protocol::InitConfig`], **parents first** (a stable sort on the target's depth,
//!   so `/a` is mounted before `/a/b` and, among equal targets, the last written wins). With
//!   the copy-and-diff snapshotter a `Layers` source is copied into a directory beside the
//!   copied root ([`Copies`], removed when the run is over) and becomes a plain bind.
//! - [`prepare`] (the init, in its private mount namespace) makes every source ready in a
//!   tmpfs mounted at `<scratch>/mnt`, which only this mount namespace sees and which
//!   disappears with it: the overlay of a `Layers` source (only lower dirs when read-only, a
//!   throwaway upper and work dir in that tmpfs when writable), and each secret's file, with
//!   its mode and owner. A secret's contents thus never touch a disk.
//! - [`mount_all`] (the built-in init) creates each missing target (recorded by the
//!   [`PlaceholderTracker`], so that no mount point reaches the layer), mounts every source,
//!   and only then remounts the read-only ones read-only (so that a nested target can still be
//!   created inside a read-only parent). [`oci_mounts`] (the runc adapter) expresses the same
//!   as OCI spec mounts of the bundle instead.
//!
//! Layers are in overlayfs upper-dir format and never modified: they are only ever lower
//! dirs. An empty directory is always the bottom lower dir, which gives an empty view for zero
//! layers and the two lower dirs overlayfs wants for a read-only mount of one layer.
//!
//! Every error names the mount's target ([`SetupError::RunMount`]); none names a secret's
//! contents, and [`RunSource`]'s `Debug` shows only a secret's length.

use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::mount::{mount, MsFlags};
use oci_spec::runtime::{Mount, MountBuilder};
use rbuild_solver::ports::{MountSource, ResolvedMount};
use serde::{Deserialize, Serialize};

use crate::error::{Result, SetupError};
use crate::mounts::PlaceholderTracker;
use crate::paths::secure_join;

/// The private tmpfs under the scratch dir holding the prepared sources.
const PRIVATE: &str = "mnt";

/// One `RUN --mount` as the init receives it.
#[derive(Debug, Serialize, Deserialize)]
pub struct RunMount {
    /// Absolute path in the sandbox.
    pub target: String,
    pub readonly: bool,
    pub source: RunSource,
}

/// What a [`RunMount`] shows at its target.
#[derive(Serialize, Deserialize)]
pub enum RunSource {
    /// `path` of the overlay of `layers` (absolute host paths, **top first**).
    Layers { layers: Vec<PathBuf>, path: String },
    /// A host path (a directory, a file or a socket), bound as it is.
    Bind(PathBuf),
    /// A new, empty tmpfs (at most `size` bytes).
    Tmpfs { size: Option<u64> },
    /// A secret: a file with these contents, mode and owner, bound read-only.
    File {
        data: Vec<u8>,
        mode: u32,
        uid: u32,
        gid: u32,
    },
}

impl std::fmt::Debug for RunSource {
    /// Never prints a secret's contents.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunSource::Layers { layers, path } => f
                .debug_struct("Layers")
                .field("layers", layers)
                .field("path", path)
                .finish(),
            RunSource::Bind(p) => f.debug_tuple("Bind").field(p).finish(),
            RunSource::Tmpfs { size } => f.debug_struct("Tmpfs").field("size", size).finish(),
            RunSource::File {
                data,
                mode,
                uid,
                gid,
            } => f
                .debug_struct("File")
                .field("len", &data.len())
                .field("mode", &format_args!("{mode:o}"))
                .field("uid", uid)
                .field("gid", gid)
                .finish(),
        }
    }
}

/// Directories the copy-and-diff snapshotter made for `Layers` mounts; removed on drop.
#[derive(Debug, Default)]
pub(crate) struct Copies(Vec<PathBuf>);

impl Drop for Copies {
    fn drop(&mut self) {
        for dir in &self.0 {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn in_target(target: &str, e: SetupError) -> SetupError {
    SetupError::RunMount {
        target: target.to_string(),
        source: Box::new(e),
    }
}

/// The request's mounts for the init, parents first (see the module docs). With `copy_into`
/// (the copy-and-diff snapshotter's work dir), `Layers` sources are copied there.
pub(crate) fn for_init(
    mounts: &[ResolvedMount],
    copy_into: Option<&Path>,
) -> Result<(Vec<RunMount>, Copies)> {
    let mut ordered: Vec<&ResolvedMount> = mounts.iter().collect();
    ordered.sort_by_key(|m| depth(&m.target));
    let mut copies = Copies::default();
    let mut out = Vec::with_capacity(ordered.len());
    for m in ordered {
        if !m.target.starts_with('/') {
            return Err(in_target(
                &m.target,
                SetupError::io(
                    "use relative mount target",
                    &m.target,
                    std::io::Error::from(std::io::ErrorKind::InvalidInput),
                ),
            ));
        }
        let source = match &m.source {
            MountSource::Layers { layers, path } => match copy_into {
                Some(work) => {
                    let dir = work.join(format!("mount-{}", copies.0.len()));
                    copies.0.push(dir.clone());
                    crate::copydiff::CopyRoot::prepare(layers, &dir)
                        .map_err(|e| in_target(&m.target, e))?;
                    let host =
                        secure_join(&dir, Path::new(path)).map_err(|e| in_target(&m.target, e))?;
                    RunSource::Bind(host)
                }
                None => RunSource::Layers {
                    layers: layers.iter().rev().cloned().collect(),
                    path: path.clone(),
                },
            },
            MountSource::Dir(p) | MountSource::Socket(p) => RunSource::Bind(p.clone()),
            MountSource::Tmpfs { size } => RunSource::Tmpfs { size: *size },
            MountSource::File {
                data,
                mode,
                uid,
                gid,
            } => RunSource::File {
                data: data.clone(),
                mode: *mode,
                uid: *uid,
                gid: *gid,
            },
        };
        out.push(RunMount {
            target: m.target.clone(),
            readonly: m.readonly,
            source,
        });
    }
    Ok((out, copies))
}

/// Adds the targets of `mounts` whose kind (directory or file) is known before the run to the
/// init layer at `init_layer` (see [`crate::initlayer`]), with their parents: like the
/// standard mount points, they then exist in the merged root without the setup creating
/// anything in the upper dir (no copy-up of an image directory, nothing to remove after the
/// run). Being the bottom layer it only fills gaps: where the image has something at a
/// target or a parent (a symlink, a file, a whiteout, an opaque directory), the image wins
/// and the setup creates the mount point as a placeholder instead. A tmpfs target is given
/// mode 1777, the mode a tmpfs keeps on a target that did not exist. `Layers` views of a
/// path other than `/` are left to the setup (their kind is only known once mounted).
pub(crate) fn add_targets(init_layer: &Path, mounts: &[ResolvedMount]) -> Result<()> {
    for m in mounts {
        let (is_dir, mode) = match &m.source {
            MountSource::Tmpfs { .. } => (true, 0o1777),
            MountSource::Dir(_) => (true, 0o755),
            MountSource::Layers { path, .. } if path.trim_matches('/').is_empty() => (true, 0o755),
            MountSource::Layers { .. } => continue,
            MountSource::File { .. } | MountSource::Socket(_) => (false, 0o644),
        };
        let rel = Path::new(&m.target);
        let plain = rel.components().all(|c| {
            matches!(
                c,
                std::path::Component::RootDir | std::path::Component::Normal(_)
            )
        });
        let rel = rel.strip_prefix("/").unwrap_or(rel);
        if !plain || rel.as_os_str().is_empty() {
            continue;
        }
        let path = init_layer.join(rel);
        if std::fs::symlink_metadata(&path).is_ok() {
            continue; // a standard mount point, or a duplicate target
        }
        let mut parent = init_layer.to_path_buf();
        let mut blocked = false;
        for c in rel.parent().into_iter().flat_map(Path::components) {
            parent.push(c);
            match std::fs::symlink_metadata(&parent) {
                Ok(meta) if meta.is_dir() => {}
                Ok(_) => blocked = true, // a file target of another mount
                Err(_) => {
                    std::fs::create_dir(&parent)
                        .map_err(|e| SetupError::io("mkdir", &parent, e))?;
                    std::fs::set_permissions(&parent, std::fs::Permissions::from_mode(0o755))
                        .map_err(|e| SetupError::io("chmod", &parent, e))?;
                }
            }
            if blocked {
                break;
            }
        }
        if blocked {
            continue;
        }
        if is_dir {
            std::fs::create_dir(&path).map_err(|e| SetupError::io("mkdir", &path, e))?;
        } else {
            std::fs::File::create(&path).map_err(|e| SetupError::io("create", &path, e))?;
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
            .map_err(|e| SetupError::io("chmod", &path, e))?;
    }
    Ok(())
}

/// The number of normal components of a sandbox path.
fn depth(target: &str) -> usize {
    Path::new(target)
        .components()
        .filter(|c| matches!(c, std::path::Component::Normal(_)))
        .count()
}

/// A source made ready in the init's mount namespace.
#[derive(Debug)]
pub(crate) struct Prepared {
    target: String,
    readonly: bool,
    ready: Ready,
}

#[derive(Debug)]
enum Ready {
    /// Bind this path; `dir` says whether the target must be a directory.
    Bind {
        path: PathBuf,
        dir: bool,
        secret: bool,
    },
    Tmpfs {
        size: Option<u64>,
    },
}

/// Makes every mount's source ready under `<scratch>/mnt` (see the module docs). Must run in
/// the init's own mount namespace, which must be private. Mounts the private tmpfs only when
/// a source needs it (a `Layers` view or a secret).
pub(crate) fn prepare(scratch: &Path, mounts: &[RunMount]) -> Result<Vec<Prepared>> {
    let base = scratch.join(PRIVATE);
    if mounts
        .iter()
        .any(|m| matches!(m.source, RunSource::Layers { .. } | RunSource::File { .. }))
    {
        mount_private(&base)?;
    }
    let mut out = Vec::with_capacity(mounts.len());
    for (i, m) in mounts.iter().enumerate() {
        let nested = mounts[i + 1..]
            .iter()
            .any(|o| Path::new(&o.target).starts_with(&m.target) && o.target != m.target);
        let dir = base.join(i.to_string());
        let ready = prepare_one(m, &dir, nested).map_err(|e| in_target(&m.target, e))?;
        let readonly = m.readonly || matches!(m.source, RunSource::File { .. });
        out.push(Prepared {
            target: m.target.clone(),
            readonly,
            ready,
        });
    }
    if !mounts.is_empty() {
        std::env::set_current_dir(scratch).map_err(|e| SetupError::io("chdir", scratch, e))?;
    }
    Ok(out)
}

/// Mounts the tmpfs (mode 0700) that holds the prepared sources at `base`.
fn mount_private(base: &Path) -> Result<()> {
    mkdir(base)?;
    mount(
        Some("tmpfs"),
        base,
        Some("tmpfs"),
        MsFlags::MS_NOSUID,
        Some("mode=0700"),
    )
    .map_err(|source| SetupError::Mount {
        what: "tmpfs for RUN --mount sources".into(),
        target: base.to_path_buf(),
        source,
    })
}

fn mkdir(path: &Path) -> Result<()> {
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(path)
        .map_err(|e| SetupError::io("mkdir", path, e))
}

/// Prepares one source in `dir` (which does not exist yet). `nested`: another mount's target
/// lies inside this one's, so a `Layers` view needs an upper dir to create it in.
fn prepare_one(m: &RunMount, dir: &Path, nested: bool) -> Result<Ready> {
    match &m.source {
        RunSource::Layers { layers, path } => {
            let root = overlay(dir, layers, !m.readonly || nested)?;
            let host = secure_join(&root, Path::new(path))?;
            let meta = std::fs::metadata(&host)
                .map_err(|e| SetupError::io("find the mount's source path", path, e))?;
            Ok(Ready::Bind {
                path: host,
                dir: meta.is_dir(),
                secret: false,
            })
        }
        RunSource::Bind(path) => {
            let meta = std::fs::metadata(path)
                .map_err(|e| SetupError::io("find the mount's source", path, e))?;
            Ok(Ready::Bind {
                path: path.clone(),
                dir: meta.is_dir(),
                secret: false,
            })
        }
        RunSource::Tmpfs { size } => Ok(Ready::Tmpfs { size: *size }),
        RunSource::File {
            data,
            mode,
            uid,
            gid,
        } => {
            mkdir(dir)?;
            let file = dir.join("secret");
            write_secret(&file, data, *mode, *uid, *gid)?;
            Ok(Ready::Bind {
                path: file,
                dir: false,
                secret: true,
            })
        }
    }
}

/// Writes a secret file with its mode and owner (chmod after chown, which clears set-id bits).
fn write_secret(file: &Path, data: &[u8], mode: u32, uid: u32, gid: u32) -> Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(file)
        .map_err(|e| SetupError::io("create secret file", file, e))?;
    f.write_all(data)
        .map_err(|e| SetupError::io("write secret file", file, e))?;
    std::os::unix::fs::fchown(&f, Some(uid), Some(gid))
        .map_err(|e| SetupError::io("chown secret file", file, e))?;
    f.set_permissions(std::fs::Permissions::from_mode(mode & 0o7777))
        .map_err(|e| SetupError::io("chmod secret file", file, e))?;
    Ok(())
}

/// Mounts the overlay of `layers` (top first) in `dir` and returns its root: lower dirs only,
/// or with a throwaway upper and work dir beside it when `writable`.
fn overlay(dir: &Path, layers: &[PathBuf], writable: bool) -> Result<PathBuf> {
    mkdir(dir)?;
    let empty = dir.join("empty");
    mkdir(&empty)?;
    std::fs::set_permissions(&empty, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| SetupError::io("chmod", &empty, e))?;
    if layers.is_empty() && !writable {
        return Ok(empty);
    }
    // Options relative to `dir` (through `l/<n>` links) stay under the mount data size limit.
    mkdir(&dir.join("l"))?;
    let mut lowers = Vec::with_capacity(layers.len() + 1);
    for (n, layer) in layers.iter().enumerate() {
        let real =
            std::fs::canonicalize(layer).map_err(|e| SetupError::io("resolve layer", layer, e))?;
        let link = dir.join("l").join(n.to_string());
        std::os::unix::fs::symlink(&real, &link)
            .map_err(|e| SetupError::io("symlink", &link, e))?;
        lowers.push(format!("l/{n}"));
    }
    lowers.push("empty".into());
    let mut data = format!("lowerdir={}", lowers.join(":"));
    if writable {
        mkdir(&dir.join("upper"))?;
        mkdir(&dir.join("work"))?;
        data.push_str(",upperdir=upper,workdir=work");
    }
    data.push_str(&crate::init::overlay_tunables());
    let root = dir.join("root");
    mkdir(&root)?;
    std::env::set_current_dir(dir).map_err(|e| SetupError::io("chdir", dir, e))?;
    let flags = if writable {
        MsFlags::empty()
    } else {
        MsFlags::MS_RDONLY
    };
    mount(
        Some("overlay"),
        &root,
        Some("overlay"),
        flags,
        Some(data.as_str()),
    )
    .map_err(|source| SetupError::Mount {
        what: format!("overlay ({data})"),
        target: root.clone(),
        source,
    })?;
    Ok(root)
}

/// Mounts every prepared source at its target under the rootfs (built-in init), then makes
/// the read-only ones read-only. Targets that do not exist are created and recorded by
/// `tracker`.
pub(crate) fn mount_all(prepared: &[Prepared], tracker: &mut PlaceholderTracker) -> Result<()> {
    let mut mounted = Vec::with_capacity(prepared.len());
    for p in prepared {
        let at = mount_at(p, tracker).map_err(|e| in_target(&p.target, e))?;
        mounted.push(at);
    }
    for (p, at) in prepared.iter().zip(&mounted) {
        if p.readonly {
            remount_readonly(p, at).map_err(|e| in_target(&p.target, e))?;
        }
    }
    Ok(())
}

fn mount_at(p: &Prepared, tracker: &mut PlaceholderTracker) -> Result<PathBuf> {
    let (file, what) = match &p.ready {
        Ready::Bind { path, dir, secret } => (
            !dir,
            if *secret {
                "bind secret".to_string()
            } else {
                format!("bind {}", path.display())
            },
        ),
        Ready::Tmpfs { .. } => (false, "tmpfs".to_string()),
    };
    // A tmpfs takes the mode of a target that existed (as runc does); a new one keeps 1777.
    let existing_mode = match p.ready {
        Ready::Tmpfs { .. } => secure_join(tracker.rootfs(), Path::new(&p.target))
            .ok()
            .and_then(|t| std::fs::metadata(t).ok())
            .map(|m| m.permissions().mode() & 0o7777),
        Ready::Bind { .. } => None,
    };
    let at = tracker.ensure(Path::new(&p.target), file)?;
    let res = match &p.ready {
        Ready::Bind { path, .. } => mount(
            Some(path.as_path()),
            &at,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        ),
        Ready::Tmpfs { size } => {
            let data = size.map(|s| format!("size={s}"));
            mount(
                Some("tmpfs"),
                &at,
                Some("tmpfs"),
                MsFlags::MS_NOSUID,
                data.as_deref(),
            )
        }
    };
    res.map_err(|source| SetupError::Mount {
        what,
        target: at.clone(),
        source,
    })?;
    if let Some(mode) = existing_mode {
        std::fs::set_permissions(&at, std::fs::Permissions::from_mode(mode))
            .map_err(|e| SetupError::io("chmod tmpfs", &at, e))?;
    }
    Ok(at)
}

/// For the runc adapter, before `runc run`: creates the targets runc would otherwise create
/// itself, where it cannot or should not. A missing tmpfs target is created (recorded by
/// `tracker`) with mode 1777, which runc then gives the tmpfs, as BuildKit's runc does for a
/// target it creates. A target nested in another mount's bind source is created in that
/// source (a writable view's throwaway upper dir, or the host directory), since runc would
/// try to create it inside the already read-only parent.
pub(crate) fn precreate(prepared: &[Prepared], tracker: &mut PlaceholderTracker) -> Result<()> {
    for (j, p) in prepared.iter().enumerate() {
        let file = matches!(p.ready, Ready::Bind { dir: false, .. });
        let parent = prepared[..j]
            .iter()
            .rev()
            .find(|o| Path::new(&p.target).starts_with(&o.target) && o.target != p.target);
        match parent {
            Some(Prepared {
                target,
                ready: Ready::Bind {
                    path, dir: true, ..
                },
                ..
            }) => {
                let rel = Path::new(&p.target)
                    .strip_prefix(target)
                    .unwrap_or(Path::new(""));
                let mut inside = PlaceholderTracker::new(path, path);
                inside
                    .ensure(rel, file)
                    .map_err(|e| in_target(&p.target, e))?;
            }
            Some(_) => {}
            None => {
                let host = secure_join(tracker.rootfs(), Path::new(&p.target))
                    .map_err(|e| in_target(&p.target, e))?;
                if matches!(p.ready, Ready::Tmpfs { .. })
                    && std::fs::symlink_metadata(&host).is_err()
                {
                    let at = tracker
                        .ensure(Path::new(&p.target), false)
                        .map_err(|e| in_target(&p.target, e))?;
                    std::fs::set_permissions(&at, std::fs::Permissions::from_mode(0o1777))
                        .map_err(|e| in_target(&p.target, SetupError::io("chmod", &at, e)))?;
                }
            }
        }
    }
    Ok(())
}

/// Makes the mount at `at` read-only, keeping its nosuid/nodev/noexec flags (and adding all
/// three for a secret).
fn remount_readonly(p: &Prepared, at: &Path) -> Result<()> {
    use nix::sys::statvfs::{statvfs, FsFlags};
    let mut flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
    if let Ok(st) = statvfs(at) {
        for (has, flag) in [
            (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
            (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
            (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        ] {
            if st.flags().contains(has) {
                flags |= flag;
            }
        }
    }
    if matches!(p.ready, Ready::Bind { secret: true, .. }) {
        flags |= MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    }
    mount(None::<&str>, at, None::<&str>, flags, None::<&str>).map_err(|source| SetupError::Mount {
        what: "remount read-only".into(),
        target: at.to_path_buf(),
        source,
    })
}

/// The prepared sources as OCI spec mounts (the runc adapter), in order after the spec's own.
pub(crate) fn oci_mounts(prepared: &[Prepared]) -> Result<Vec<Mount>> {
    let mut out = Vec::with_capacity(prepared.len());
    for p in prepared {
        let mut options: Vec<String> = Vec::new();
        let builder = MountBuilder::default().destination(&p.target);
        let builder = match &p.ready {
            Ready::Bind { path, secret, .. } => {
                options.push("rbind".into());
                if *secret {
                    options.extend(["nosuid", "nodev", "noexec"].map(String::from));
                }
                builder.typ("bind").source(path)
            }
            Ready::Tmpfs { size } => {
                options.push("nosuid".into());
                if let Some(size) = size {
                    options.push(format!("size={size}"));
                }
                builder.typ("tmpfs").source("tmpfs")
            }
        };
        if p.readonly {
            options.push("ro".into());
        }
        out.push(
            builder
                .options(options)
                .build()
                .map_err(|e| in_target(&p.target, SetupError::Spec(e)))?,
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolved(target: &str, source: MountSource) -> ResolvedMount {
        ResolvedMount {
            target: target.into(),
            readonly: false,
            source,
        }
    }

    #[test]
    fn parents_come_first_and_equal_targets_keep_their_order() {
        let mounts = vec![
            resolved("/a/b/c", MountSource::Tmpfs { size: None }),
            resolved("/a", MountSource::Dir("/x".into())),
            resolved("/a/b", MountSource::Tmpfs { size: Some(1) }),
            resolved("/a", MountSource::Dir("/y".into())),
        ];
        let (out, _) = for_init(&mounts, None).expect("order");
        let order: Vec<(&str, String)> = out
            .iter()
            .map(|m| (m.target.as_str(), format!("{:?}", m.source)))
            .collect();
        assert_eq!(order[0], ("/a", "Bind(\"/x\")".to_string()));
        assert_eq!(order[1], ("/a", "Bind(\"/y\")".to_string()));
        assert_eq!(order[2].0, "/a/b");
        assert_eq!(order[3].0, "/a/b/c");
    }

    #[test]
    fn layers_are_handed_over_top_first() {
        let mounts = vec![resolved(
            "/m",
            MountSource::Layers {
                layers: vec!["/bottom".into(), "/top".into()],
                path: "/".into(),
            },
        )];
        let (out, _) = for_init(&mounts, None).expect("layers");
        match &out[0].source {
            RunSource::Layers { layers, .. } => {
                assert_eq!(layers, &[PathBuf::from("/top"), PathBuf::from("/bottom")])
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn known_targets_join_the_init_layer() {
        let dir = tempfile::tempdir().expect("tempdir");
        let layer = dir.path();
        std::fs::create_dir(layer.join("proc")).expect("mkdir");
        let mounts = vec![
            resolved("/run/secrets/s", file_source()),
            resolved("/tmp/t", MountSource::Tmpfs { size: None }),
            resolved("/proc", MountSource::Tmpfs { size: None }),
            resolved(
                "/w",
                MountSource::Layers {
                    layers: vec![],
                    path: "/sub".into(),
                },
            ),
            // Under a file target: left to the setup.
            resolved("/run/secrets/s/x", MountSource::Dir("/c".into())),
        ];
        add_targets(layer, &mounts).expect("targets");
        let mode = |p: &str| {
            std::fs::symlink_metadata(layer.join(p))
                .expect(p)
                .permissions()
                .mode()
                & 0o7777
        };
        assert!(std::fs::metadata(layer.join("run/secrets/s"))
            .expect("s")
            .is_file());
        assert_eq!(mode("run"), 0o755);
        assert_eq!(mode("tmp/t"), 0o1777);
        assert_eq!(mode("proc"), 0o755);
        assert!(!layer.join("w").exists());
    }

    fn file_source() -> MountSource {
        MountSource::File {
            data: vec![1],
            mode: 0o400,
            uid: 0,
            gid: 0,
        }
    }

    #[test]
    fn relative_targets_are_refused_naming_the_target() {
        let mounts = vec![resolved("rel/x", MountSource::Tmpfs { size: None })];
        let err = for_init(&mounts, None).expect_err("relative");
        assert!(err.to_string().contains("rel/x"), "{err}");
    }

    #[test]
    fn debug_never_shows_a_secret() {
        let m = RunMount {
            target: "/run/secrets/s".into(),
            readonly: true,
            source: RunSource::File {
                data: b"hunter2".to_vec(),
                mode: 0o400,
                uid: 0,
                gid: 0,
            },
        };
        let shown = format!("{m:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("104, 117"),
            "{shown}"
        );
        assert!(shown.contains("len: 7"), "{shown}");
    }

    #[test]
    fn oci_mounts_express_ro_binds_secrets_and_tmpfs() {
        let prepared = vec![
            Prepared {
                target: "/c".into(),
                readonly: true,
                ready: Ready::Bind {
                    path: "/host/c".into(),
                    dir: true,
                    secret: false,
                },
            },
            Prepared {
                target: "/run/secrets/s".into(),
                readonly: true,
                ready: Ready::Bind {
                    path: "/scratch/mnt/1/secret".into(),
                    dir: false,
                    secret: true,
                },
            },
            Prepared {
                target: "/t".into(),
                readonly: false,
                ready: Ready::Tmpfs { size: Some(4096) },
            },
        ];
        let ms = oci_mounts(&prepared).expect("oci");
        let opts = |i: usize| ms[i].options().clone().unwrap_or_default();
        assert_eq!(ms[0].typ().as_deref(), Some("bind"));
        assert_eq!(opts(0), vec!["rbind", "ro"]);
        assert_eq!(opts(1), vec!["rbind", "nosuid", "nodev", "noexec", "ro"]);
        assert_eq!(ms[2].typ().as_deref(), Some("tmpfs"));
        assert_eq!(opts(2), vec!["nosuid", "size=4096"]);
    }
}
