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
}

/// See the module documentation.
pub(crate) struct ReadAhead<'a> {
    root: &'a Path,
    filter: &'a Filter,
    shared: Mutex<Shared>,
    changed: Condvar,
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
            changed: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        // A worker never panics while holding the lock; recover the data if one did.
        self.shared.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn wait<'g>(&self, guard: MutexGuard<'g, Shared>) -> MutexGuard<'g, Shared> {
        self.changed.wait(guard).unwrap_or_else(|p| p.into_inner())
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
                            break (rel.0, state);
                        }
                    }
                    shared = self.wait(shared);
                }
            };
            let (listing, subdirs) = self.list(&rel, &state);
            let mut shared = self.lock();
            shared.queue.extend(subdirs);
            shared.busy -= 1;
            shared.buffered += listing.as_ref().map_or(0, Listing::len);
            shared.done.insert(rel, listing);
            drop(shared);
            self.changed.notify_all();
        }
    }

    /// The listing of directory `rel`, which must have been queued: taken from `done`,
    /// listed here if still queued, else waited for.
    pub fn take(&self, rel: &str) -> Result<Listing, ContextError> {
        let mut shared = self.lock();
        loop {
            if let Some(listing) = shared.done.remove(rel) {
                shared.buffered -= listing.as_ref().map_or(0, Listing::len);
                drop(shared);
                self.changed.notify_all();
                return listing;
            }
            let key = WalkKey(rel.to_string());
            if let Some(state) = shared.queue.remove(&key) {
                drop(shared);
                let (listing, subdirs) = self.list(rel, &state);
                self.lock().queue.extend(subdirs);
                self.changed.notify_all();
                return listing;
            }
            if shared.busy == 0 {
                // Cannot happen (see the invariants); fail rather than wait forever.
                return Err(ContextError::Io {
                    path: self.root.join(rel),
                    source: std::io::Error::other("the walk lost track of this directory"),
                });
            }
            shared = self.wait(shared);
        }
    }

    /// Tells every worker to return.
    pub fn stop(&self) {
        self.lock().stop = true;
        self.changed.notify_all();
    }
}
