//! A child process for the crash and sharing tests (`tests/crash.rs`, `tests/durability.rs`):
//! works on the store at ROOT, then dies without running a destructor, or writes alongside
//! another child. Not part of rbuild; the tests find it through `CARGO_BIN_EXE_<name>`.
//!
//! Usage: `rbuild-cache-test-child ROLE ROOT [BASE]`, ROLE one of
//! - `killed-mid-work`: commits a blob and a record, waits out the index's durability window
//!   (`INDEX_SYNC_WITHIN`), records one more, then stages a snapshot and half a blob, and
//!   SIGKILLs itself;
//! - `writer BASE`: records 30 entries and blobs numbered from BASE, and tags `img:BASE`;
//! - `commits-and-dies`: commits a snapshot and SIGKILLs itself before the handle's sync.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use rbuild_cache::{CacheRecord, SnapshotId, Store};
use rbuild_types::Digest;

/// The record the tests expect for number `i`.
fn rec(i: u64) -> CacheRecord {
    CacheRecord {
        layers: vec![SnapshotId(Digest::of(&i.to_le_bytes()))],
        created_unix: i,
        ..Default::default()
    }
}

/// Dies at once: no destructor runs, nothing is synced or cleaned up.
fn die() -> ! {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::this(), nix::sys::signal::Signal::SIGKILL);
    unreachable!("SIGKILL cannot be caught")
}

fn killed_mid_work(store: &Store) -> Result<(), Box<dyn std::error::Error>> {
    store.blobs().put(b"committed before the kill")?;
    store.index().record(&Digest::of(b"done"), &rec(1))?;
    // Records are durable within the window (without an fsync of their own each).
    std::thread::sleep(rbuild_cache::INDEX_SYNC_WITHIN * 2);
    store.index().record(&Digest::of(b"just before"), &rec(3))?;
    let p = store.snapshots().prepare()?;
    std::fs::write(p.upper.join("half"), b"unfinished layer")?;
    let mut w = store.blobs().writer()?;
    w.write_all(b"unfinished blob")?;
    w.flush()?;
    // With the index open, a snapshot staged and a blob half written.
    die()
}

fn writer(store: &Store, base: u64) -> Result<(), Box<dyn std::error::Error>> {
    for i in base..base + 30 {
        store
            .index()
            .record(&Digest::of(&i.to_le_bytes()), &rec(i))?;
        store.blobs().put(format!("blob {i}").as_bytes())?;
        store.blobs().put(b"same in both")?;
        if store
            .index()
            .lookup(&Digest::of(&i.to_le_bytes()))?
            .is_none()
        {
            return Err(format!("record {i} not found right after writing it").into());
        }
    }
    store
        .tags()
        .set(&format!("img:{base}"), &Digest::of(b"m"))?;
    Ok(())
}

fn commits_and_dies(store: &Store) -> Result<(), Box<dyn std::error::Error>> {
    let p = store.snapshots().prepare()?;
    std::fs::write(p.upper.join("f"), "unsynced")?;
    store
        .snapshots()
        .commit(p, &SnapshotId(Digest::of(b"unsynced")))?;
    // Before the handle's final sync.
    die()
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(role), Some(root)) = (args.first(), args.get(1)) else {
        eprintln!("usage: rbuild-cache-test-child ROLE ROOT [BASE]");
        return ExitCode::from(2);
    };
    let result = Store::open(Path::new(root))
        .map_err(Into::into)
        .and_then(|store| match (role.as_str(), args.get(2)) {
            ("killed-mid-work", None) => killed_mid_work(&store),
            ("writer", Some(base)) => base
                .parse()
                .map_err(Into::into)
                .and_then(|base| writer(&store, base)),
            ("commits-and-dies", None) => commits_and_dies(&store),
            _ => Err(format!("unknown role {args:?}").into()),
        });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rbuild-cache-test-child {role}: {e}");
            ExitCode::FAILURE
        }
    }
}
