//! The host side of `RUN --mount`s: the solver's [`ResolvedMount`]s turned into the
//! [`RunMount`]s the sandbox init receives (`init::run_mounts` is the init side).
//!
//! - [`for_init`] orders them **parents first** (a stable sort on the target's depth, so `/a`
//!   is mounted before `/a/b` and, among equal targets, the last written wins). With the
//!   copy-and-diff snapshotter a `Layers` source is copied into a directory beside the copied
//!   root ([`Copies`], removed when the run is over) and becomes a plain bind.
//! - [`add_targets`] puts the targets whose kind is known before the run into the run's init
//!   layer, so the setup need not create them in the upper dir.
//!
//! [`RunSource`]'s `Debug` shows only a secret's length, never its contents.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use rbuild_ports::{MountSource, ResolvedMount};

use crate::launch::copydiff;
use crate::shared::error::{in_target, Result, SetupError};
use crate::shared::paths::secure_join;
use crate::shared::protocol::{RunMount, RunSource};

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
                    copydiff::CopyRoot::prepare(layers, &dir)
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
            MountSource::File(secret) => RunSource::File(secret.clone()),
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
/// init layer at `init_layer` (see [`initlayer`](crate::launch::initlayer)), with their parents: like the
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
            MountSource::File(_) | MountSource::Socket(_) => (false, 0o644),
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

#[cfg(test)]
mod tests {
    use super::*;
    use rbuild_ports::SecretFile;

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
        MountSource::File(SecretFile {
            data: vec![1],
            mode: 0o400,
            uid: 0,
            gid: 0,
        })
    }

    #[test]
    fn relative_targets_are_refused_naming_the_target() {
        let mounts = vec![resolved("rel/x", MountSource::Tmpfs { size: None })];
        let err = for_init(&mounts, None).expect_err("relative");
        assert!(err.to_string().contains("rel/x"), "{err}");
    }
}
