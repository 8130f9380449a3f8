//! Bounded read-ahead of directory listings for the depth-first walk.
//!
//! The walk consumes directories one at a time in walk order on the calling thread; worker
//! threads list the directories it will need next. Whoever lists a directory queues its
//! subdirectories; workers always take the queued directory that comes first in walk order
//! (the one the walk will reach soonest). Listings wait in `done` until the walk takes them;
//! when they hold more than [`BUFFER_LIMIT`] children the workers pause, so memory stays
//! bounded however large the context. If the walk needs a directory that is still queued it
//! lists it itself, so it never waits for a paused worker.
//!
//! Invariants: a directory is in at most one of `queue`, `done` or being listed; every
//! subdirectory of a listing is queued before that listing is handed out, so the walk only
//! ever asks for directories that are queued, being listed or done.
//!
//! Waking is targeted (on a warm cache a directory is listed in tens of microseconds, so
//! wake-ups would otherwise cost as much as the listing): the walk and the workers wait on
//! separate condition variables, and a waker signals only when someone is waiting
//! (`main_waiting`, `idle_workers`).

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Condvar, Mutex, MutexGuard};

use crate::entry::EntryKind;
use crate::error::ContextError;
use crate::filter::{DirState, Filter};
use crate::listdir::list_dir;
pub(crate) use crate::listdir::Listing;
use crate::walk::walk_order;

/// Children held in finished listings before workers pause.
const BUFFER_LIMIT: usize = 1 << 16;

/// A relative directory path ordered by walk order.
#[derive(Debug, Clone, PartialEq, Eq)]
struct WalkKey(String);

impl Ord for WalkKey {
    fn cmp(&self, other: &Self) -> Ordering {
        walk_order(&self.0, &other.0)
    }
}

impl PartialOrd for WalkKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[derive(Default)]
struct Shared {
    queue: BTreeMap<WalkKey, DirState>,
    done: HashMap<String, Result<Listing, ContextError>>,
    buffered: usize,
    /// Directories being listed by a worker right now.
    busy: usize,
    stop: bool,
    /// The walk waits in [`ReadAhead::take`].
    main_waiting: bool,
    /// Workers waiting for a queued directory or for buffer room.
    idle_workers: usize,
}

impl Shared {
    /// Whether an idle worker could start on something now.
    fn work_available(&self) -> bool {
        self.idle_workers > 0 && self.buffered < BUFFER_LIMIT && !self.queue.is_empty()
    }
}

/// See the module documentation.
pub(crate) struct ReadAhead<'a> {
    root: &'a Path,
    filter: &'a Filter,
    shared: Mutex<Shared>,
    /// Signalled for the walk: a listing is done or a worker finished.
    for_main: Condvar,
    /// Signalled for the workers: something was queued, buffer room freed, or stop.
    for_workers: Condvar,
}

impl<'a> ReadAhead<'a> {
    /// A read-ahead whose first queued directory is the root (`""`, in `state`).
    pub fn new(root: &'a Path, filter: &'a Filter, state: DirState) -> ReadAhead<'a> {
        let mut shared = Shared::default();
        shared.queue.insert(WalkKey(String::new()), state);
        ReadAhead {
            root,
            filter,
            shared: Mutex::new(shared),
            for_main: Condvar::new(),
            for_workers: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        // A worker never panics while holding the lock; recover the data if one did.
        self.shared.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn wait<'g>(&self, on: &Condvar, guard: MutexGuard<'g, Shared>) -> MutexGuard<'g, Shared> {
        on.wait(guard).unwrap_or_else(|p| p.into_inner())
    }

    /// Wakes one idle worker if one could start on something (called with the lock held).
    fn wake_worker(&self, shared: &Shared) {
        if shared.work_available() {
            self.for_workers.notify_one();
        }
    }

    /// Lists `rel` and works out its subdirectories' states (outside the lock).
    fn list(
        &self,
        rel: &str,
        state: &DirState,
    ) -> (Result<Listing, ContextError>, Vec<(WalkKey, DirState)>) {
        let listing = list_dir(self.root, rel, self.filter, state);
        let subdirs = match &listing {
            Ok(items) => items
                .items()
                .iter()
                .filter(|item| item.meta.kind == EntryKind::Dir)
                .map(|item| {
                    let rel = items.rel(item);
                    let child = self.filter.child_state(state, rel, item.decision);
                    (WalkKey(rel.to_string()), child)
                })
                .collect(),
            Err(_) => Vec::new(),
        };
        (listing, subdirs)
    }

    /// A worker's loop: list the first queued directory until told to stop.
    pub fn work(&self) {
        loop {
            let (rel, state) = {
                let mut shared = self.lock();
                loop {
                    if shared.stop {
                        return;
                    }
                    if shared.buffered < BUFFER_LIMIT {
                        if let Some((rel, state)) = shared.queue.pop_first() {
                            shared.busy += 1;
                            // Pass the baton: another idle worker may take the next one.
                            self.wake_worker(&shared);
                            break (rel.0, state);
                        }
                    }
                    shared.idle_workers += 1;
                    shared = self.wait(&self.for_workers, shared);
                    shared.idle_workers -= 1;
                }
            };
            let (listing, subdirs) = self.list(&rel, &state);
            let mut shared = self.lock();
            shared.queue.extend(subdirs);
            shared.busy -= 1;
            shared.buffered += listing.as_ref().map_or(0, Listing::len);
            shared.done.insert(rel, listing);
            if shared.main_waiting {
                self.for_main.notify_one();
            }
            self.wake_worker(&shared);
        }
    }

    /// The listing of directory `rel`, which must have been queued: taken from `done`,
    /// listed here if still queued, else waited for.
    pub fn take(&self, rel: &str) -> Result<Listing, ContextError> {
        let mut shared = self.lock();
        loop {
            if let Some(listing) = shared.done.remove(rel) {
                shared.buffered -= listing.as_ref().map_or(0, Listing::len);
                self.wake_worker(&shared);
                return listing;
            }
            let key = WalkKey(rel.to_string());
            if let Some(state) = shared.queue.remove(&key) {
                drop(shared);
                let (listing, subdirs) = self.list(rel, &state);
                let mut shared = self.lock();
                shared.queue.extend(subdirs);
                self.wake_worker(&shared);
                return listing;
            }
            if shared.busy == 0 {
                // Cannot happen (see the invariants); fail rather than wait forever.
                return Err(ContextError::Io {
                    path: crate::entry::host_path(self.root, rel),
                    source: std::io::Error::other("the walk lost track of this directory"),
                });
            }
            shared.main_waiting = true;
            shared = self.wait(&self.for_main, shared);
            shared.main_waiting = false;
        }
    }

    /// Tells every worker to return.
    pub fn stop(&self) {
        self.lock().stop = true;
        self.for_workers.notify_all();
    }
}
