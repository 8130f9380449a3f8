//! Resource limits for RUN (`--memory`, `--cpu-quota`, `--cpu-period`, `--cgroup-parent`):
//! [`RunLimits`] become the spec's `linux.resources` and `linux.cgroupsPath`, which an OCI
//! runtime applies itself; the built-in init applies them with [`enter`] before it runs
//! anything, and rbuild removes the run's cgroup afterwards with [`remove`].
//!
//! Both cgroup layouts are handled: the unified hierarchy (v2: `memory.max`, `cpu.max`, the
//! controllers enabled in the parent's `cgroup.subtree_control`) when `/sys/fs/cgroup` is a
//! cgroup2 mount with the controllers needed, else the v1 hierarchies (`memory/`:
//! `memory.limit_in_bytes` and, where accounted, `memory.memsw.limit_in_bytes` set to the
//! same, so a limit is not dodged through swap; `cpu/`: `cpu.cfs_period_us`,
//! `cpu.cfs_quota_us`; `pids/` for the parent alone). A run's cgroup is
//! `<cgroup-parent or "rbuild">/<run id>` in each hierarchy used.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use oci_spec::runtime::{LinuxCpuBuilder, LinuxMemoryBuilder, LinuxResourcesBuilder, Spec};

use crate::shared::error::{Result, SetupError};

const ROOT: &str = "/sys/fs/cgroup";

/// The build's limits for every RUN. Default: none, and no cgroup is made.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunLimits {
    /// Memory limit in bytes (`--memory`).
    pub memory: Option<u64>,
    /// CPU time in µs per period (`--cpu-quota`).
    pub cpu_quota: Option<i64>,
    /// The CPU period in µs (`--cpu-period`, default 100000).
    pub cpu_period: Option<u64>,
    /// The cgroup the runs' cgroups are made under (`--cgroup-parent`), relative to the
    /// hierarchy's root.
    pub cgroup_parent: Option<String>,
}

impl RunLimits {
    /// Whether a run needs a cgroup of its own.
    pub fn any(&self) -> bool {
        self.memory.is_some()
            || self.cpu_quota.is_some()
            || self.cpu_period.is_some()
            || self.cgroup_parent.is_some()
    }

    /// Puts the limits and the run's cgroup path `<parent>/<run_id>` into `spec`.
    pub(crate) fn apply(&self, spec: &mut Spec, run_id: &str) -> Result<()> {
        if !self.any() {
            return Ok(());
        }
        let mut resources = LinuxResourcesBuilder::default();
        if let Some(bytes) = self.memory {
            let limit = i64::try_from(bytes).unwrap_or(i64::MAX);
            let memory = LinuxMemoryBuilder::default()
                .limit(limit)
                .swap(limit)
                .build()?;
            resources = resources.memory(memory);
        }
        if self.cpu_quota.is_some() || self.cpu_period.is_some() {
            let mut cpu = LinuxCpuBuilder::default();
            if let Some(q) = self.cpu_quota {
                cpu = cpu.quota(q);
            }
            cpu = cpu.period(self.cpu_period.unwrap_or(100_000));
            resources = resources.cpu(cpu.build()?);
        }
        let parent = self.cgroup_parent.as_deref().unwrap_or("rbuild");
        let path = Path::new("/")
            .join(parent.trim_start_matches('/'))
            .join(run_id);
        if let Some(linux) = spec.linux_mut() {
            linux.set_resources(Some(resources.build()?));
            linux.set_cgroups_path(Some(path));
        }
        Ok(())
    }
}

/// Which cgroup layout this machine has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Layout {
    Unified,
    Legacy,
}

fn layout(root: &Path, need: &[&str]) -> Layout {
    match fs::read_to_string(root.join("cgroup.controllers")) {
        Ok(have)
            if need
                .iter()
                .all(|c| have.split_whitespace().any(|h| h == *c)) =>
        {
            Layout::Unified
        }
        _ => Layout::Legacy,
    }
}

/// The limits the spec carries, as `(memory bytes, cpu quota, cpu period)`.
fn limits_of(spec: &Spec) -> (Option<i64>, Option<i64>, Option<u64>) {
    let r = spec.linux().as_ref().and_then(|l| l.resources().as_ref());
    let memory = r.and_then(|r| r.memory().as_ref()).and_then(|m| m.limit());
    let cpu = r.and_then(|r| r.cpu().as_ref());
    (
        memory,
        cpu.and_then(|c| c.quota()),
        cpu.and_then(|c| c.period()),
    )
}

/// The directories of the run's cgroup, one per hierarchy used, for `cgroups_path`.
fn dirs(root: &Path, spec: &Spec, cgroups_path: &Path) -> Vec<(PathBuf, &'static str)> {
    let (memory, quota, period) = limits_of(spec);
    let rel = cgroups_path.strip_prefix("/").unwrap_or(cgroups_path);
    let mut need = Vec::new();
    if memory.is_some() {
        need.push("memory");
    }
    if quota.is_some() || period.is_some() {
        need.push("cpu");
    }
    match layout(root, &need) {
        Layout::Unified => vec![(root.join(rel), "unified")],
        Layout::Legacy => {
            let mut out: Vec<(PathBuf, &'static str)> =
                need.iter().map(|c| (root.join(c).join(rel), *c)).collect();
            if out.is_empty() {
                // Only a parent was asked for: the pids hierarchy places the run.
                out.push((root.join("pids").join(rel), "pids"));
            }
            out
        }
    }
}

fn write(dir: &Path, file: &str, value: &str) -> Result<()> {
    let path = dir.join(file);
    fs::write(&path, value).map_err(|e| SetupError::io("write", &path, e))
}

/// In the init, before anything runs: makes the run's cgroup (as the spec's `cgroupsPath`
/// says), sets its limits and moves the calling process into it, so that every process of
/// the run is accounted and limited. Nothing when the spec names no cgroup.
pub(crate) fn enter(spec: &Spec) -> Result<()> {
    enter_at(Path::new(ROOT), spec)
}

/// [`enter`] with the cgroup filesystem at `root`.
fn enter_at(root: &Path, spec: &Spec) -> Result<()> {
    let Some(path) = spec.linux().as_ref().and_then(|l| l.cgroups_path().clone()) else {
        return Ok(());
    };
    let (memory, quota, period) = limits_of(spec);
    for (dir, kind) in dirs(root, spec, &path) {
        if kind == "unified" {
            enable_controllers(
                root,
                &dir,
                memory.is_some(),
                quota.is_some() || period.is_some(),
            )?;
        }
        fs::create_dir_all(&dir).map_err(|e| SetupError::io("create cgroup", &dir, e))?;
        match kind {
            "unified" => {
                if let Some(m) = memory {
                    write(&dir, "memory.max", &m.to_string())?;
                    // No swap beyond the limit, as the v1 memsw limit below.
                    let _ = write(&dir, "memory.swap.max", "0");
                }
                if quota.is_some() || period.is_some() {
                    let q = quota.map_or("max".to_string(), |q| q.to_string());
                    write(
                        &dir,
                        "cpu.max",
                        &format!("{q} {}", period.unwrap_or(100_000)),
                    )?;
                }
            }
            "memory" => {
                if let Some(m) = memory {
                    write(&dir, "memory.limit_in_bytes", &m.to_string())?;
                    if dir.join("memory.memsw.limit_in_bytes").exists() {
                        write(&dir, "memory.memsw.limit_in_bytes", &m.to_string())?;
                    }
                }
            }
            "cpu" => {
                write(
                    &dir,
                    "cpu.cfs_period_us",
                    &period.unwrap_or(100_000).to_string(),
                )?;
                write(&dir, "cpu.cfs_quota_us", &quota.unwrap_or(-1).to_string())?;
            }
            _ => {}
        }
        write(&dir, "cgroup.procs", "0")?;
    }
    Ok(())
}

/// v2: enables the memory and cpu controllers on the way down from the root to `dir`'s
/// parent (a controller must be enabled in a parent's `cgroup.subtree_control` for a child
/// to have its files).
fn enable_controllers(root: &Path, dir: &Path, memory: bool, cpu: bool) -> Result<()> {
    let mut wanted = Vec::new();
    if memory {
        wanted.push("+memory");
    }
    if cpu {
        wanted.push("+cpu");
    }
    if wanted.is_empty() {
        return Ok(());
    }
    let mut at = root.to_path_buf();
    let rel = dir.strip_prefix(root).unwrap_or(dir);
    let parents: Vec<_> = rel.components().collect();
    for c in &parents[..parents.len().saturating_sub(1)] {
        write(&at, "cgroup.subtree_control", &wanted.join(" "))?;
        at.push(c);
        fs::create_dir_all(&at).map_err(|e| SetupError::io("create cgroup", &at, e))?;
    }
    write(&at, "cgroup.subtree_control", &wanted.join(" "))
}

/// Whether the kernel killed a process of the run's cgroup for going over its memory limit
/// (v2 `memory.events`, v1 `memory.oom_control`: their `oom_kill` count). Read before
/// [`remove`].
pub(crate) fn oom_killed(spec: &Spec) -> bool {
    let Some(path) = spec.linux().as_ref().and_then(|l| l.cgroups_path().clone()) else {
        return false;
    };
    dirs(Path::new(ROOT), spec, &path)
        .iter()
        .any(|(dir, kind)| {
            let file = match *kind {
                "unified" => "memory.events",
                "memory" => "memory.oom_control",
                _ => return false,
            };
            fs::read_to_string(dir.join(file)).is_ok_and(|text| {
                text.lines().any(|l| {
                    l.strip_prefix("oom_kill ")
                        .is_some_and(|n| n.trim().parse::<u64>().is_ok_and(|n| n > 0))
                })
            })
        })
}

/// The memory limit the spec carries, in bytes.
pub(crate) fn memory_limit(spec: &Spec) -> Option<u64> {
    limits_of(spec).0.and_then(|m| u64::try_from(m).ok())
}

/// After a run: removes its cgroup (the built-in init's; an OCI runtime removes its own).
/// The init may still be exiting, and a cgroup that holds a process cannot go: retried for up
/// to two seconds (a few milliseconds in practice; only builds with limits pay it).
pub(crate) fn remove(spec: &Spec) {
    let Some(path) = spec.linux().as_ref().and_then(|l| l.cgroups_path().clone()) else {
        return;
    };
    for (dir, _) in dirs(Path::new(ROOT), spec, &path) {
        for _ in 0..200 {
            match fs::remove_dir(&dir) {
                Ok(()) => break,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_with(limits: &RunLimits) -> Spec {
        let mut spec = Spec::default();
        limits.apply(&mut spec, "rbuild-run1").unwrap();
        spec
    }

    fn read(p: &Path) -> String {
        fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    /// The unified hierarchy (v2), on a stand-in tree (this machine's v2 has no controllers):
    /// the controllers enabled down to the parent, `memory.max`, `cpu.max`, the process moved.
    #[test]
    fn v2_enables_controllers_writes_limits_and_joins() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        fs::write(
            root.join("cgroup.controllers"),
            "cpuset cpu io memory pids\n",
        )
        .unwrap();
        let spec = spec_with(&RunLimits {
            memory: Some(64 << 20),
            cpu_quota: Some(50_000),
            cpu_period: None,
            cgroup_parent: Some("ci/jobs".into()),
        });
        enter_at(root, &spec).unwrap();
        let run = root.join("ci/jobs/rbuild-run1");
        assert_eq!(read(&run.join("memory.max")), "67108864");
        assert_eq!(read(&run.join("memory.swap.max")), "0");
        assert_eq!(read(&run.join("cpu.max")), "50000 100000");
        assert_eq!(read(&run.join("cgroup.procs")), "0");
        for parent in [root.to_path_buf(), root.join("ci"), root.join("ci/jobs")] {
            assert_eq!(read(&parent.join("cgroup.subtree_control")), "+memory +cpu");
        }
    }

    /// v1 (no usable unified hierarchy): one cgroup per controller's hierarchy.
    #[test]
    fn v1_writes_each_controllers_hierarchy() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        fs::create_dir_all(root.join("memory/rbuild/rbuild-run1")).unwrap();
        fs::write(
            root.join("memory/rbuild/rbuild-run1/memory.memsw.limit_in_bytes"),
            "",
        )
        .unwrap();
        let spec = spec_with(&RunLimits {
            memory: Some(64 << 20),
            cpu_quota: Some(50_000),
            cpu_period: Some(200_000),
            cgroup_parent: None,
        });
        enter_at(root, &spec).unwrap();
        let mem = root.join("memory/rbuild/rbuild-run1");
        assert_eq!(read(&mem.join("memory.limit_in_bytes")), "67108864");
        assert_eq!(read(&mem.join("memory.memsw.limit_in_bytes")), "67108864");
        let cpu = root.join("cpu/rbuild/rbuild-run1");
        assert_eq!(read(&cpu.join("cpu.cfs_period_us")), "200000");
        assert_eq!(read(&cpu.join("cpu.cfs_quota_us")), "50000");
        assert_eq!(read(&cpu.join("cgroup.procs")), "0");

        // A bare parent places the run through the pids hierarchy.
        let spec = spec_with(&RunLimits {
            cgroup_parent: Some("p".into()),
            ..RunLimits::default()
        });
        enter_at(root, &spec).unwrap();
        assert_eq!(read(&root.join("pids/p/rbuild-run1/cgroup.procs")), "0");
    }

    #[test]
    fn no_limits_no_cgroup() {
        let mut spec = Spec::default();
        RunLimits::default().apply(&mut spec, "x").unwrap();
        assert!(spec
            .linux()
            .as_ref()
            .and_then(|l| l.cgroups_path().clone())
            .is_none());
    }
}
