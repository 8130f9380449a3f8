//! The init side of `RUN --mount`s: the [`RunMount`]s (made by `launch::mount_plan`) mounted
//! at their targets after the root filesystem and the standard mounts, before the command
//! starts.
//!
//! - [`prepare`] (the init, in its private mount namespace) makes every source ready in a
//!   tmpfs mounted at `<scratch>/mnt`, which only this mount namespace sees and which
//!   disappears with it: the overlay of a `Layers` source (only lower dirs when read-only, a
//!   throwaway upper and work dir in that tmpfs when writable), and each secret's file, with
//!   its mode and owner. A secret's contents thus never touch a disk.
//! - [`mount_all`] (the built-in init) creates each missing target (recorded by the
//!   [`PlaceholderTracker`], so that no mount point reaches the layer), mounts every source,
//!   and only then remounts the read-only ones read-only (so that a nested target can still be
//!   created inside a read-only parent). [`oci_mounts`] and [`precreate`] (the runc adapter)
//!   express the same as OCI spec mounts of the bundle instead.
//!
//! Layers are in overlayfs upper-dir format and never modified: they are only ever lower
//! dirs. An empty directory is always the bottom lower dir, which gives an empty view for zero
//! layers and the two lower dirs overlayfs wants for a read-only mount of one layer.
//!
//! Every error names the mount's target ([`SetupError::RunMount`]); none shows a secret's
//! contents.

use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::mount::{mount, MsFlags};
use oci_spec::runtime::{Mount, MountBuilder};
use rbuild_ports::SecretFile;

use crate::init::placeholders::PlaceholderTracker;
use crate::init::root::overlay_tunables;
use crate::init::rootless;
use crate::shared::error::{in_target, Result, SetupError};
use crate::shared::paths::secure_join;
use crate::shared::protocol::{RunMount, RunSource};

/// The private tmpfs under the scratch dir holding the prepared sources.
const PRIVATE: &str = "mnt";

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
        .any(|m| matches!(m.source, RunSource::Layers { .. } | RunSource::File(_)))
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
        let readonly = m.readonly || matches!(m.source, RunSource::File(_));
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
        RunSource::File(secret) => {
            mkdir(dir)?;
            let file = dir.join("secret");
            write_secret(&file, secret)?;
            Ok(Ready::Bind {
                path: file,
                dir: false,
                secret: true,
            })
        }
    }
}

/// Writes a secret file with its mode and owner (chmod after chown, which clears set-id bits).
fn write_secret(file: &Path, secret: &SecretFile) -> Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(file)
        .map_err(|e| SetupError::io("create secret file", file, e))?;
    f.write_all(&secret.data)
        .map_err(|e| SetupError::io("write secret file", file, e))?;
    std::os::unix::fs::fchown(&f, Some(secret.uid), Some(secret.gid))
        .map_err(|e| SetupError::io("chown secret file", file, e))?;
    f.set_permissions(std::fs::Permissions::from_mode(secret.mode & 0o7777))
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
    data.push_str(&overlay_tunables());
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
    let mut flags =
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | rootless::locked_flags(at);
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
