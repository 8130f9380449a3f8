//! [`CancelToken`]: how the solver tells running work to stop when another vertex failed.
//!
//! Executors either poll [`CancelToken::is_cancelled`] or register a callback with
//! [`CancelToken::on_cancel`] (the sandbox kills its init process). Invariants: a callback runs
//! at most once, on the thread that cancels (or at once, on registration, if the token is
//! already cancelled); once the [`CancelGuard`] is dropped the callback is not running and will
//! never run, so it may refer to resources (a child's pid) that are released afterwards.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

type Callback = Box<dyn FnOnce() + Send>;

#[derive(Default)]
struct Inner {
    cancelled: AtomicBool,
    callbacks: Mutex<Callbacks>,
}

#[derive(Default)]
struct Callbacks {
    next: u64,
    pending: BTreeMap<u64, Callback>,
}

/// A cancellation flag shared by the solver and everything it runs. Cheap to clone.
#[derive(Clone, Default)]
pub struct CancelToken {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for CancelToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CancelToken")
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

/// Keeps a callback registered; dropping it unregisters the callback.
#[must_use = "dropping the guard unregisters the callback at once"]
pub struct CancelGuard {
    inner: Arc<Inner>,
    id: u64,
}

impl std::fmt::Debug for CancelGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CancelGuard").field("id", &self.id).finish()
    }
}

impl Inner {
    fn callbacks(&self) -> MutexGuard<'_, Callbacks> {
        self.callbacks.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl CancelToken {
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether [`CancelToken::cancel`] has been called.
    pub fn is_cancelled(&self) -> bool {
        self.inner.cancelled.load(Ordering::SeqCst)
    }

    /// Cancels: sets the flag and runs every registered callback (once).
    pub fn cancel(&self) {
        let mut cbs = self.inner.callbacks();
        self.inner.cancelled.store(true, Ordering::SeqCst);
        // Run under the lock, so that a guard being dropped waits for its callback to finish.
        for (_, cb) in std::mem::take(&mut cbs.pending) {
            cb();
        }
    }

    /// Registers `f` to run when the token is cancelled (at once if it already is). The
    /// callback must be quick and must not touch this token.
    pub fn on_cancel(&self, f: impl FnOnce() + Send + 'static) -> CancelGuard {
        let mut cbs = self.inner.callbacks();
        let id = cbs.next;
        cbs.next += 1;
        if self.is_cancelled() {
            f();
        } else {
            cbs.pending.insert(id, Box::new(f));
        }
        CancelGuard {
            inner: Arc::clone(&self.inner),
            id,
        }
    }
}

impl Drop for CancelGuard {
    fn drop(&mut self) {
        self.inner.callbacks().pending.remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn callbacks_run_once_and_not_after_their_guard_dropped() {
        let token = CancelToken::new();
        let hits = Arc::new(AtomicUsize::new(0));
        let h = Arc::clone(&hits);
        let kept = token.on_cancel(move || {
            h.fetch_add(1, Ordering::SeqCst);
        });
        let h = Arc::clone(&hits);
        let dropped = token.on_cancel(move || {
            h.fetch_add(100, Ordering::SeqCst);
        });
        drop(dropped);
        assert!(!token.is_cancelled());
        token.cancel();
        token.cancel();
        assert!(token.is_cancelled());
        assert_eq!(hits.load(Ordering::SeqCst), 1);
        drop(kept);
        // Registering after cancellation runs the callback at once.
        let h = Arc::clone(&hits);
        let _late = token.clone().on_cancel(move || {
            h.fetch_add(10, Ordering::SeqCst);
        });
        assert_eq!(hits.load(Ordering::SeqCst), 11);
    }
}
