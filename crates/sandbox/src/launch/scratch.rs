//! [`Scratch`]: the private scratch directory of one run, removed on drop: `rootfs/` (the
//! mount point), `l/<n>` links to the layers (top first), the init layer below them
//! (`launch::initlayer`, with the `RUN --mount` targets whose kind is known), `u` and `w`
//! links to the upper and work dirs, and the generated /etc files. It lives on `/dev/shm`
//! when that is a writable tmpfs; scratch dirs of rbuild processes that died are swept.

use std::path::{Path, PathBuf};

use rbuild_ports::ExecRequest;

use crate::launch::meta::hosts_file;
use crate::launch::spec::{resolv_conf, EtcFiles};
use crate::launch::{initlayer, mount_plan, slirp};
use crate::shared::error::{Result, SetupError};

/// Scratch dirs are named `<prefix><pid of rbuild>-<random>`.
const SCRATCH_PREFIX: &str = "rbuild-sandbox-";

/// Removes scratch dirs left behind by rbuild processes that no longer exist (killed mid-run).
/// Their mounts lived only in the dead sandboxes' namespaces, and the `u`/`w`/`l/*` entries are
/// symlinks, which removal does not follow. Best effort: errors are ignored.
fn sweep_stale(tmp: &Path) {
    let Ok(entries) = std::fs::read_dir(tmp) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(SCRATCH_PREFIX)) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if !Path::new("/proc").join(pid.to_string()).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// The scratch dir's bottom overlay layer: the mount points (see [`initlayer`]).
const INIT_LAYER: &str = "init";

/// Where scratch dirs go: `/dev/shm` when it is a writable tmpfs (creating and removing a
/// scratch dir there costs microseconds; on a busy disk filesystem each directory removal may
/// wait milliseconds for the journal), the temp dir otherwise.
fn scratch_parent() -> PathBuf {
    static PARENT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    PARENT
        .get_or_init(|| {
            let shm = Path::new("/dev/shm");
            if is_writable_tmpfs(shm) {
                shm.to_path_buf()
            } else {
                std::env::temp_dir()
            }
        })
        .clone()
}

fn is_writable_tmpfs(dir: &Path) -> bool {
    let Ok(st) = nix::sys::statfs::statfs(dir) else {
        return false;
    };
    st.filesystem_type() == nix::sys::statfs::TMPFS_MAGIC
        && nix::unistd::access(dir, nix::unistd::AccessFlags::W_OK).is_ok()
}

/// The private scratch directory of one run; removed on drop.
pub(crate) struct Scratch {
    pub dir: tempfile::TempDir,
    pub rootfs: PathBuf,
    pub lowers: Vec<String>,
    pub upper_abs: PathBuf,
    pub etc: EtcFiles,
}

impl Scratch {
    /// Creates the scratch dir: `rootfs/`, `l/<n>` links to the layers (top first), the init
    /// layer below them, `u` and `w` links to the upper and work dirs, and the generated /etc
    /// files.
    /// With `slirp`, /etc/resolv.conf points at slirp4netns's DNS forwarder.
    pub fn prepare(req: &ExecRequest<'_>, slirp: bool) -> Result<Scratch> {
        let tmp = scratch_parent();
        sweep_stale(&tmp);
        let dir = tempfile::Builder::new()
            .prefix(&format!("{SCRATCH_PREFIX}{}-", std::process::id()))
            .tempdir_in(&tmp)
            .map_err(|e| SetupError::io("create scratch dir in", &tmp, e))?;
        let base = dir.path().to_path_buf();
        let mkdir = |p: &Path| std::fs::create_dir(p).map_err(|e| SetupError::io("mkdir", p, e));
        let rootfs = base.join("rootfs");
        mkdir(&rootfs)?;
        mkdir(&base.join("l"))?;
        let mut lowers = Vec::new();
        for (i, layer) in req.layers.iter().rev().enumerate() {
            let link = base.join("l").join(i.to_string());
            let target = std::fs::canonicalize(layer)
                .map_err(|e| SetupError::io("resolve layer", layer, e))?;
            std::os::unix::fs::symlink(&target, &link)
                .map_err(|e| SetupError::io("symlink", &link, e))?;
            lowers.push(format!("l/{i}"));
        }
        initlayer::create(&base.join(INIT_LAYER))?;
        mount_plan::add_targets(&base.join(INIT_LAYER), req.mounts)?;
        lowers.push(INIT_LAYER.into());
        let upper_abs = std::fs::canonicalize(req.upper)
            .map_err(|e| SetupError::io("resolve upper dir", req.upper, e))?;
        let work_abs = std::fs::canonicalize(req.work)
            .map_err(|e| SetupError::io("resolve work dir", req.work, e))?;
        for (name, target) in [("u", &upper_abs), ("w", &work_abs)] {
            let link = base.join(name);
            std::os::unix::fs::symlink(target, &link)
                .map_err(|e| SetupError::io("symlink", &link, e))?;
        }
        let etc = EtcFiles {
            hosts: base.join("hosts"),
            resolv_conf: base.join("resolv.conf"),
        };
        let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        for (path, content) in [
            (&etc.hosts, hosts_file(&req.op.meta.extra_hosts)),
            (
                &etc.resolv_conf,
                if slirp {
                    format!("nameserver {}\n", slirp::DNS)
                } else {
                    resolv_conf(&host_resolv, req.op.network)
                },
            ),
        ] {
            std::fs::write(path, content).map_err(|e| SetupError::io("write", path, e))?;
        }
        Ok(Scratch {
            dir,
            rootfs,
            lowers,
            upper_abs,
            etc,
        })
    }

    /// The run's init layer (the bottom lower dir).
    pub fn init_layer(&self) -> PathBuf {
        self.dir.path().join(INIT_LAYER)
    }
}
