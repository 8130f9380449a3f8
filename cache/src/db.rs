//! Shared access to `index.redb`, which redb lets only one process open at a time.
//!
//! The database is opened on first use under an exclusive `flock` on `index.lock` and kept
//! open while this process keeps using it (opening and closing cost fsyncs). It is closed, and
//! the lock released so other processes can take their turn, when:
//! - it has been idle for [`IDLE`] (a background thread closes it), or
//! - it has been held for longer than [`MAX_HOLD`] (the next operation closes it, pauses
//!   briefly so a waiting process gets the lock, then reopens).
//!
//! Threads of this process share the open database; a mutex serialises them.
//!
//! Writes made with [`Durable::Soon`] are committed without an fsync; the database notes that
//! it holds such commits and makes them durable (one empty committed transaction with an
//! fsync) at most [`SYNC_WITHIN`] later (the next write or the idle thread does it), before it
//! is closed, on [`IndexDb::flush`], or with the next [`Durable::Now`] write — so another
//! process, which can only open the database after this one closed it, always finds them
//! durable, and a killed build loses at most its last quarter second of records.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use fs4::fs_std::FileExt;
use redb::Database;

use crate::error::{io_err, CacheError};
use crate::tables::Durable;

/// Close the database after this long without use.
pub(crate) const IDLE: Duration = Duration::from_millis(200);
/// Let other processes in after holding the database this long.
pub(crate) const MAX_HOLD: Duration = Duration::from_secs(1);
/// A commit made without an fsync is made durable within this long.
pub const SYNC_WITHIN: Duration = Duration::from_millis(250);
/// How long to stay out after giving the lock up because of [`MAX_HOLD`].
const YIELD: Duration = Duration::from_millis(10);

/// The lazily opened, lease-based handle on the index database.
#[derive(Debug)]
pub(crate) struct IndexDb {
    state: Arc<Mutex<State>>,
    /// `index.redb`, for error messages and the usage report.
    path: PathBuf,
}

#[derive(Debug)]
struct State {
    db_path: PathBuf,
    lock_path: PathBuf,
    /// Declared before `lock_file`: the database closes before the lock can go.
    open: Option<Open>,
    lock_file: File,
    reaper_running: bool,
    /// Since when commits made without an fsync are waiting for a durable one.
    unsynced: Option<Instant>,
}

struct Open {
    db: Database,
    since: Instant,
    last_used: Instant,
}

impl std::fmt::Debug for Open {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Open").field("since", &self.since).finish()
    }
}

impl State {
    fn close(&mut self) {
        // Best effort: if the fsync fails (a full disk), what was unsynced is lost, which costs
        // cache misses, never consistency.
        let _ = self.make_durable();
        // Dropping the database writes its allocator state; then the lock may go.
        self.open = None;
        let _ = FileExt::unlock(&self.lock_file);
    }

    /// Commits an empty transaction durably if earlier commits were not.
    fn make_durable(&mut self) -> Result<(), CacheError> {
        let Some(open) = self.open.as_ref().filter(|_| self.unsynced.is_some()) else {
            return Ok(());
        };
        let index_err = |action| {
            let path = self.db_path.clone();
            move |e: redb::Error| CacheError::Index {
                action,
                path,
                source: Box::new(e),
            }
        };
        let txn = open
            .db
            .begin_write()
            .map_err(|e| index_err("begin write")(e.into()))?;
        txn.commit().map_err(|e| index_err("commit")(e.into()))?;
        self.unsynced = None;
        Ok(())
    }

    fn ensure_open(&mut self) -> Result<&Database, CacheError> {
        if self
            .open
            .as_ref()
            .is_some_and(|o| o.since.elapsed() > MAX_HOLD)
        {
            self.close();
            std::thread::sleep(YIELD);
        }
        if self.open.is_none() {
            FileExt::lock_exclusive(&self.lock_file).map_err(io_err("lock", &self.lock_path))?;
            match Database::create(&self.db_path) {
                Ok(db) => {
                    let now = Instant::now();
                    self.open = Some(Open {
                        db,
                        since: now,
                        last_used: now,
                    });
                }
                Err(e) => {
                    let _ = FileExt::unlock(&self.lock_file);
                    return Err(CacheError::Index {
                        action: "open",
                        path: self.db_path.clone(),
                        source: Box::new(e.into()),
                    });
                }
            }
        }
        match self.open.as_mut() {
            Some(o) => {
                o.last_used = Instant::now();
                Ok(&o.db)
            }
            None => Err(CacheError::Index {
                action: "open",
                path: self.db_path.clone(),
                source: Box::new(redb::Error::DatabaseAlreadyOpen),
            }),
        }
    }
}

impl Drop for State {
    fn drop(&mut self) {
        self.close();
    }
}

impl IndexDb {
    pub(crate) fn new(db_path: &Path, lock_path: &Path) -> Result<IndexDb, CacheError> {
        let lock_file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(lock_path)
            .map_err(io_err("open lock file", lock_path))?;
        Ok(IndexDb {
            state: Arc::new(Mutex::new(State {
                db_path: db_path.to_path_buf(),
                lock_path: lock_path.to_path_buf(),
                open: None,
                lock_file,
                reaper_running: false,
                unsynced: None,
            })),
            path: db_path.to_path_buf(),
        })
    }

    /// The database file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` with the open database (opening it, and waiting for other processes, first
    /// if needed).
    pub(crate) fn with<T>(
        &self,
        f: impl FnOnce(&Database) -> Result<T, CacheError>,
    ) -> Result<T, CacheError> {
        let mut state = lock(&self.state);
        let res = f(state.ensure_open()?);
        if !state.reaper_running && state.open.is_some() {
            state.reaper_running = spawn_reaper(Arc::downgrade(&self.state));
        }
        res
    }

    /// [`IndexDb::with`] for a write transaction made durable per `durable`.
    pub(crate) fn with_write<T>(
        &self,
        durable: Durable,
        f: impl FnOnce(&Database) -> Result<T, CacheError>,
    ) -> Result<T, CacheError> {
        let mut state = lock(&self.state);
        let res = f(state.ensure_open()?);
        if res.is_ok() {
            match durable {
                // A durable commit persists every commit before it.
                Durable::Now => state.unsynced = None,
                Durable::Soon => {
                    let since = *state.unsynced.get_or_insert_with(Instant::now);
                    if since.elapsed() >= SYNC_WITHIN {
                        // Best effort, as in `close`: the write itself succeeded.
                        let _ = state.make_durable();
                    }
                }
            }
        }
        if !state.reaper_running && state.open.is_some() {
            state.reaper_running = spawn_reaper(Arc::downgrade(&self.state));
        }
        res
    }

    /// Makes every commit so far durable (see the module docs).
    pub(crate) fn flush(&self) -> Result<(), CacheError> {
        lock(&self.state).make_durable()
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    // Poisoning means a thread panicked inside a transaction, which redb rolled back.
    state.lock().unwrap_or_else(|p| p.into_inner())
}

/// Closes the database once it has been idle for [`IDLE`]; exits when it is closed or the
/// store is gone. Returns whether the thread started (if not, the database stays open until
/// [`MAX_HOLD`] or the store is dropped, and the next operation tries again).
fn spawn_reaper(state: Weak<Mutex<State>>) -> bool {
    std::thread::Builder::new()
        .name("rbuild-index-reaper".into())
        .spawn(move || loop {
            std::thread::sleep(IDLE / 2);
            let Some(state) = state.upgrade() else {
                return;
            };
            let mut s = lock(&state);
            let idle = match s.open.as_ref() {
                None => true,
                Some(o) => o.last_used.elapsed() >= IDLE,
            };
            if idle {
                s.close();
                s.reaper_running = false;
                return;
            }
            if s.unsynced
                .is_some_and(|since| since.elapsed() >= SYNC_WITHIN)
            {
                // Best effort, as in `close`.
                let _ = s.make_durable();
            }
        })
        .is_ok()
}
