//! Byte progress of blob transfers: what a pull or push tells its observer about each layer
//! (waiting, downloading, extracting, uploading, done, already in the registry, mounted),
//! with the bytes moved so far and the blob's size.
//!
//! The registry code never prints (invariant 6): it hands [`TransferEvent`]s to the
//! [`TransferObserver`] given with [`Client::with_transfer_observer`](super::Client), the
//! same path retry notices take; the builder forwards them as build events and the binary
//! renders them. A [`Reporter`] sends the events of one blob, at most one byte-progress
//! event every [`THROTTLE`] (the [`Throttle`]) and always the last one and every phase change.

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rbuild_types::Digest;

/// The least time between two byte-progress events of one blob.
pub const THROTTLE: Duration = Duration::from_millis(100);

/// Which way a blob moves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Pull,
    Push,
}

/// Where the transfer of one blob is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransferPhase {
    /// Queued behind other transfers.
    Waiting,
    /// Bytes are coming from the registry.
    Downloading,
    /// The downloaded (or stored) blob is being unpacked into a snapshot.
    Extracting,
    /// Bytes are going to the registry.
    Uploading,
    /// Finished: downloaded and unpacked, or uploaded.
    Done,
    /// The registry already had the blob; nothing was uploaded.
    Exists,
    /// The registry mounted the blob from another of its repositories.
    Mounted,
}

/// One step of one blob's transfer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransferEvent {
    pub digest: Digest,
    pub direction: Direction,
    pub phase: TransferPhase,
    /// Bytes moved so far.
    pub done: u64,
    /// The blob's size.
    pub total: u64,
}

impl TransferEvent {
    /// The first 12 hex characters of the digest.
    pub fn short_id(&self) -> String {
        self.digest.short()
    }
}

/// Who hears of transfers. Called from the transfer threads.
pub type TransferObserver = Arc<dyn Fn(&TransferEvent) + Send + Sync>;

/// Lets through at most one event per interval, and the first.
#[derive(Clone, Debug)]
pub struct Throttle {
    interval: Duration,
    last: Option<Instant>,
}

impl Throttle {
    pub fn new(interval: Duration) -> Throttle {
        Throttle {
            interval,
            last: None,
        }
    }

    /// Whether an event at `now` goes out (and if so, `now` starts a new interval).
    pub fn due(&mut self, now: Instant) -> bool {
        let due = self
            .last
            .is_none_or(|last| now.saturating_duration_since(last) >= self.interval);
        if due {
            self.last = Some(now);
        }
        due
    }
}

/// Sends the events of one blob to an observer (or nowhere, without one).
pub struct Reporter {
    observer: Option<TransferObserver>,
    event: TransferEvent,
    throttle: Throttle,
}

impl Reporter {
    pub fn new(
        observer: Option<TransferObserver>,
        digest: Digest,
        direction: Direction,
        total: u64,
    ) -> Reporter {
        Reporter {
            observer,
            event: TransferEvent {
                digest,
                direction,
                phase: TransferPhase::Waiting,
                done: 0,
                total,
            },
            throttle: Throttle::new(THROTTLE),
        }
    }

    /// Enters `phase` with `done` bytes moved; always reported.
    pub fn phase(&mut self, phase: TransferPhase, done: u64) {
        self.event.phase = phase;
        self.event.done = done;
        self.throttle.last = Some(Instant::now());
        self.send();
    }

    /// `done` bytes moved: reported when the throttle allows, and when the blob is complete.
    pub fn progress(&mut self, done: u64) {
        self.progress_at(done, Instant::now());
    }

    fn progress_at(&mut self, done: u64, now: Instant) {
        self.event.done = done;
        if self.throttle.due(now) || done == self.event.total {
            self.send();
        }
    }

    fn send(&self) {
        if let Some(observer) = &self.observer {
            observer(&self.event);
        }
    }
}

/// A writer that reports the bytes written through it as download progress.
pub struct CountingWriter<'a, W: Write + ?Sized> {
    inner: &'a mut W,
    reporter: &'a mut Reporter,
    done: u64,
}

impl<'a, W: Write + ?Sized> CountingWriter<'a, W> {
    pub fn new(inner: &'a mut W, reporter: &'a mut Reporter) -> Self {
        CountingWriter {
            inner,
            reporter,
            done: 0,
        }
    }

    /// Bytes written so far.
    pub fn done(&self) -> u64 {
        self.done
    }
}

impl<W: Write + ?Sized> Write for CountingWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.done += n as u64;
        self.reporter.progress(self.done);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// A reader that reports the bytes read from it as upload progress (a shared reporter, as
/// each upload attempt opens the blob again).
pub struct CountingReader<R: Read> {
    inner: R,
    reporter: Arc<Mutex<Reporter>>,
    done: u64,
}

impl<R: Read> CountingReader<R> {
    /// Starts (again) from the first byte: reports [`TransferPhase::Uploading`] at 0.
    pub fn new(inner: R, reporter: Arc<Mutex<Reporter>>) -> Self {
        if let Ok(mut r) = reporter.lock() {
            r.phase(TransferPhase::Uploading, 0);
        }
        CountingReader {
            inner,
            reporter,
            done: 0,
        }
    }
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        if n > 0 {
            if let Ok(mut r) = self.reporter.lock() {
                r.progress(self.done);
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recording() -> (TransferObserver, Arc<Mutex<Vec<TransferEvent>>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&seen);
        let observer: TransferObserver = Arc::new(move |e: &TransferEvent| {
            sink.lock().unwrap().push(e.clone());
        });
        (observer, seen)
    }

    #[test]
    fn the_throttle_lets_one_event_through_per_interval() {
        let start = Instant::now();
        let mut t = Throttle::new(Duration::from_millis(100));
        let at = |ms| start + Duration::from_millis(ms);
        let due: Vec<bool> = [0, 10, 99, 100, 150, 199, 200, 450]
            .into_iter()
            .map(|ms| t.due(at(ms)))
            .collect();
        assert_eq!(
            due,
            [true, false, false, true, false, false, true, true],
            "first, then one per 100 ms"
        );
    }

    #[test]
    fn progress_is_throttled_but_completion_always_reported() {
        let (observer, seen) = recording();
        let digest = Digest::of(b"layer");
        let mut r = Reporter::new(Some(observer), digest, Direction::Pull, 1000);
        let start = Instant::now();
        r.phase(TransferPhase::Downloading, 0);
        for (i, done) in (100..=1000).step_by(100).enumerate() {
            // Ten writes within 50 ms: only the completion gets through.
            r.progress_at(done, start + Duration::from_millis(i as u64 * 5));
        }
        r.progress_at(1000, start + Duration::from_millis(500));
        r.phase(TransferPhase::Done, 1000);
        let seen = seen.lock().unwrap();
        let summary: Vec<(TransferPhase, u64)> = seen.iter().map(|e| (e.phase, e.done)).collect();
        assert_eq!(
            summary,
            [
                (TransferPhase::Downloading, 0),
                (TransferPhase::Downloading, 1000),
                (TransferPhase::Downloading, 1000),
                (TransferPhase::Done, 1000),
            ]
        );
        assert!(seen.iter().all(|e| e.total == 1000 && e.digest == digest));
        assert_eq!(seen[0].short_id(), digest.short());
    }

    #[test]
    fn counting_writer_and_reader_report_bytes() {
        let (observer, seen) = recording();
        let digest = Digest::of(b"blob");
        let mut reporter = Reporter::new(Some(observer.clone()), digest, Direction::Pull, 5);
        let mut out = Vec::new();
        let mut w = CountingWriter::new(&mut out, &mut reporter);
        w.write_all(b"hello").unwrap();
        assert_eq!(w.done(), 5);
        let shared = Arc::new(Mutex::new(Reporter::new(
            Some(observer),
            digest,
            Direction::Push,
            5,
        )));
        let mut back = Vec::new();
        CountingReader::new(&out[..], shared)
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, b"hello");
        let seen = seen.lock().unwrap();
        let last = seen.last().unwrap();
        assert_eq!(
            (last.direction, last.phase, last.done),
            (Direction::Push, TransferPhase::Uploading, 5)
        );
        assert!(seen
            .iter()
            .any(|e| e.direction == Direction::Pull && e.done == 5));
    }
}
