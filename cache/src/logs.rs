//! Build logs: every step's full output, one directory per build under `<root>/logs/`.
//!
//! Layout: `logs/<build-id>/<step>.log`. A build id starts with the build's start time in
//! seconds since the Unix epoch (zero-padded, so names sort by age), then the process id and
//! a random suffix, so concurrent builds never share a directory. Logs are pruned with the
//! cache (see `gc`).

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{io_err, CacheError};
use crate::fsutil;

/// One build's log directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuildLogs {
    pub dir: PathBuf,
    /// When the build started (seconds since the Unix epoch), from the directory name.
    pub started_unix: u64,
}

/// The log directory `logs/`. Get one with [`crate::Store::logs`].
#[derive(Clone, Copy, Debug)]
pub struct Logs<'a> {
    /// The store's root.
    pub(crate) root: &'a Path,
}

impl Logs<'_> {
    /// `<root>/logs`.
    pub fn dir(&self) -> PathBuf {
        self.root.join("logs")
    }

    /// Creates a fresh log directory for a build starting now.
    pub fn create(&self) -> Result<BuildLogs, CacheError> {
        let started_unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let parent = self.dir();
        fs::create_dir_all(&parent).map_err(io_err("create directory", &parent))?;
        loop {
            let dir = parent.join(fsutil::unique_name(&format!("{started_unix:011}")));
            match fs::create_dir(&dir) {
                Ok(()) => return Ok(BuildLogs { dir, started_unix }),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(io_err("create directory", dir)(e)),
            }
        }
    }

    /// Every build's log directory, oldest first.
    pub fn list(&self) -> Result<Vec<BuildLogs>, CacheError> {
        let mut out: Vec<BuildLogs> = fsutil::list_dir(&self.dir())?
            .into_iter()
            .filter_map(|dir| {
                let name = dir.file_name()?.to_str()?;
                let started_unix = name.split('-').next()?.parse().ok()?;
                Some(BuildLogs { dir, started_unix })
            })
            .collect();
        out.sort_by(|a, b| (a.started_unix, &a.dir).cmp(&(b.started_unix, &b.dir)));
        Ok(out)
    }
}
