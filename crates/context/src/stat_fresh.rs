//! The records a build adds to the stat cache: every file hashed (and found unchanged while
//! read) since the cache was loaded, kept until the cache is saved.
//!
//! At a million files these records alone would be ≈ 72 MB, so they are not all held in
//! memory: records gather in a buffer of [`RUN`] records; a full buffer is sorted by
//! (dev, ino) and written as one *run* to an unnamed temporary file (`O_TMPFILE` in the
//! cache file's directory, so a killed build leaves nothing behind) and the buffer starts
//! again. [`Fresh::merged`] streams every record, runs and buffer merged, in (dev, ino) order
//! with repeated keys dropped — what the cache's streamed save consumes.
//!
//! Invariants: every run is a sequence of whole records, strictly increasing by (dev, ino);
//! `runs` only grows until the save; if a run cannot be written (no such directory, disk
//! full) the records stay in memory and nothing more is spilled (the cache stays correct,
//! only bigger in memory).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufReader, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use rbuild_types::Digest;

use crate::stat_cache::{decode_record, encode_record, RECORD};
use crate::walk::StatKey;

/// Records gathered in memory before they are spilled as one sorted run (≈ 2.4 MB).
pub(crate) const RUN: usize = 1 << 15;

/// Read buffer per run while merging.
const MERGE_BUFFER: usize = 32 << 10;

/// One remembered record: the stat data a file was hashed at and its content digest.
pub(crate) type Record = (StatKey, Digest);

#[derive(Debug, Default)]
struct State {
    buffer: Vec<Record>,
    runs: Vec<File>,
    /// A run could not be written: keep everything in memory from now on.
    spill_failed: bool,
}

/// See the module documentation.
#[derive(Debug)]
pub(crate) struct Fresh {
    /// Where runs are written (the cache file's directory, created on the first spill).
    dir: PathBuf,
    /// Records per run (tests use small runs).
    run: usize,
    state: Mutex<State>,
}

impl Fresh {
    /// No records yet; runs will go to `dir`.
    pub fn new(dir: &Path) -> Fresh {
        Fresh::with_run(dir, RUN)
    }

    /// As [`Fresh::new`] with `run` records per spilled run (at least 1).
    pub fn with_run(dir: &Path, run: usize) -> Fresh {
        Fresh {
            dir: dir.to_path_buf(),
            run: run.max(1),
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding the lock; recover the data if something did.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds one record; spills the buffer when it is full. Safe from many threads (a spill
    /// holds the lock while it writes one run: a few ms per [`RUN`] files hashed).
    pub fn push(&self, stat: StatKey, content: Digest) {
        let mut state = self.lock();
        state.buffer.push((stat, content));
        if state.buffer.len() < self.run || state.spill_failed {
            return;
        }
        let mut run = std::mem::take(&mut state.buffer);
        sort_dedup(&mut run);
        match write_run(&self.dir, &run) {
            Ok(file) => state.runs.push(file),
            Err(_) => {
                state.spill_failed = true;
                state.buffer = run;
            }
        }
    }

    /// Whether no record was added.
    pub fn is_empty(&self) -> bool {
        let state = self.lock();
        state.buffer.is_empty() && state.runs.is_empty()
    }

    /// Number of runs written to disk so far.
    #[cfg(test)]
    pub fn runs(&self) -> usize {
        self.lock().runs.len()
    }

    /// Every record added, in (dev, ino) order, one per key. Holds the lock while the merge
    /// lives (call it once hashing is over). An error reading a run back is returned by the
    /// iterator.
    pub fn merged(&self) -> std::io::Result<Merged<'_>> {
        let mut state = self.lock();
        sort_dedup(&mut state.buffer);
        let mut readers = Vec::with_capacity(state.runs.len());
        for file in &state.runs {
            let mut file = file;
            file.rewind()?;
            readers.push(BufReader::with_capacity(MERGE_BUFFER, file.try_clone()?));
        }
        let mut merged = Merged {
            state,
            readers,
            next_buffered: 0,
            heap: BinaryHeap::new(),
            last: None,
        };
        for source in 0..=merged.readers.len() {
            merged.refill(source)?;
        }
        Ok(merged)
    }
}

/// Sorts by (dev, ino) and keeps one record per key.
fn sort_dedup(records: &mut Vec<Record>) {
    records.sort_unstable_by_key(|(k, _)| (k.dev, k.ino));
    records.dedup_by_key(|(k, _)| (k.dev, k.ino));
}

/// Writes one sorted run to a new unnamed file in `dir`.
fn write_run(dir: &Path, run: &[Record]) -> std::io::Result<File> {
    std::fs::create_dir_all(dir)?;
    let file = tempfile::tempfile_in(dir)?;
    let mut out = std::io::BufWriter::with_capacity(1 << 16, &file);
    let mut bytes = Vec::with_capacity(RECORD);
    for (k, d) in run {
        bytes.clear();
        encode_record(&mut bytes, k, d);
        out.write_all(&bytes)?;
    }
    out.flush()?;
    drop(out);
    Ok(file)
}

/// The merged records of a [`Fresh`] (see [`Fresh::merged`]). Sources are numbered: the
/// runs `0..readers.len()`, then the in-memory buffer.
pub(crate) struct Merged<'a> {
    state: MutexGuard<'a, State>,
    readers: Vec<BufReader<File>>,
    next_buffered: usize,
    /// The head record of each source that has one, smallest (dev, ino) first.
    heap: BinaryHeap<Reverse<Head>>,
    last: Option<(u64, u64)>,
}

/// A source's next record, ordered by (dev, ino) then source number.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Head {
    key: (u64, u64),
    source: usize,
    rest: HeadRecord,
}

/// The full record of a [`Head`] (compared only after the key, which it repeats).
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct HeadRecord {
    size: u64,
    mtime_ns: i64,
    ctime_ns: i64,
    digest: [u8; 32],
}

impl Merged<'_> {
    /// Pushes the next record of `source` (if any) onto the heap.
    fn refill(&mut self, source: usize) -> std::io::Result<()> {
        let record = if source < self.readers.len() {
            let mut bytes = [0u8; RECORD];
            match read_record(&mut self.readers[source], &mut bytes)? {
                true => Some(decode_record(&bytes)),
                false => None,
            }
        } else {
            let next = self.state.buffer.get(self.next_buffered).copied();
            self.next_buffered += 1;
            next
        };
        if let Some((k, d)) = record {
            self.heap.push(Reverse(Head {
                key: (k.dev, k.ino),
                source,
                rest: HeadRecord {
                    size: k.size,
                    mtime_ns: k.mtime_ns,
                    ctime_ns: k.ctime_ns,
                    digest: *d.as_bytes(),
                },
            }));
        }
        Ok(())
    }
}

/// Reads one whole record; `false` at a clean end of the run. A run ending inside a record
/// is an error (it was written whole).
fn read_record(input: &mut impl Read, out: &mut [u8; RECORD]) -> std::io::Result<bool> {
    let mut filled = 0;
    while filled < RECORD {
        match input.read(&mut out[filled..]) {
            Ok(0) if filled == 0 => return Ok(false),
            Ok(0) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "a spilled stat-cache run ends inside a record",
                ))
            }
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

impl Iterator for Merged<'_> {
    type Item = std::io::Result<Record>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let Reverse(head) = self.heap.pop()?;
            if let Err(e) = self.refill(head.source) {
                return Some(Err(e));
            }
            if self.last == Some(head.key) {
                continue;
            }
            self.last = Some(head.key);
            let stat = StatKey {
                dev: head.key.0,
                ino: head.key.1,
                size: head.rest.size,
                mtime_ns: head.rest.mtime_ns,
                ctime_ns: head.rest.ctime_ns,
            };
            return Some(Ok((stat, Digest::from_bytes(head.rest.digest))));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(ino: u64) -> StatKey {
        StatKey {
            dev: ino % 3,
            ino,
            size: ino * 10,
            mtime_ns: 5,
            ctime_ns: 6,
        }
    }

    #[test]
    fn spills_runs_and_merges_in_order_without_repeats() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fresh = Fresh::with_run(&dir.path().join("not-yet"), 7);
        assert!(fresh.is_empty());
        // 100 keys in a scrambled order, a few pushed twice (hard links hashed twice).
        let keys: Vec<u64> = (0..100u64).map(|i| (i * 37) % 100).collect();
        for &ino in keys.iter().chain(&[3, 50, 99]) {
            fresh.push(key(ino), Digest::of(&ino.to_le_bytes()));
        }
        assert!(!fresh.is_empty());
        assert!(fresh.runs() >= 14, "{} runs", fresh.runs());
        assert!(
            std::fs::read_dir(dir.path().join("not-yet"))
                .expect("dir")
                .next()
                .is_none(),
            "runs are unnamed files"
        );
        let merged: Vec<Record> = fresh
            .merged()
            .expect("merge")
            .collect::<Result<_, _>>()
            .expect("read");
        let mut want: Vec<u64> = (0..100).collect();
        want.sort_by_key(|&i| (i % 3, i));
        assert_eq!(merged.iter().map(|(k, _)| k.ino).collect::<Vec<_>>(), want);
        for (k, d) in &merged {
            assert_eq!(*k, key(k.ino));
            assert_eq!(*d, Digest::of(&k.ino.to_le_bytes()));
        }
        // A second merge sees the same records.
        assert_eq!(fresh.merged().expect("merge").count(), 100);
    }

    #[test]
    fn unwritable_directory_keeps_records_in_memory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, b"x").expect("write");
        let fresh = Fresh::with_run(&blocker.join("sub"), 2);
        for ino in [5, 1, 4, 2, 3] {
            fresh.push(key(ino), Digest::of(b"d"));
        }
        assert_eq!(fresh.runs(), 0);
        let inos: Vec<u64> = fresh
            .merged()
            .expect("merge")
            .map(|r| r.expect("record").0.ino)
            .collect();
        let mut want = vec![1, 2, 3, 4, 5];
        want.sort_by_key(|&i| (i % 3, i));
        assert_eq!(inos, want);
    }
}
