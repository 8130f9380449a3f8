//! The layer walk run ahead of the tar stream: a thread lists, stats, opens and reads (small
//! files whole) the snapshot's entries in tar order and hands them over a bounded channel to
//! the caller, which writes the stream (and a thread of its own hashes it). On a 25,000-file
//! layer the walk's system calls and the stream's copying and hashing are each about half of
//! the work; one after the other they took 0.34 s on two cores.
//!
//! At most [`IN_FLIGHT`] entries wait between the two, each holding at most
//! [`super::walk`]'s read-whole limit of bytes, so the memory stays a few MiB. If the writer
//! fails, the walk stops at its next hand-over; if the walk fails, the writer gets its error
//! after the entries before it.

use std::path::Path;
use std::sync::mpsc::sync_channel;

use super::walk::{walk_dir, Walked};
use crate::OciError;

/// Entries walked ahead of the writer.
const IN_FLIGHT: usize = 128;

/// Walks `dir` (see [`walk_dir`]) on a thread of its own, handing each entry to `write` on
/// this one, in order. Walks inline when no thread can be had.
pub(super) fn walk(
    dir: &Path,
    mut write: impl FnMut(Walked) -> Result<(), OciError>,
) -> Result<(), OciError> {
    std::thread::scope(|scope| {
        let (tx, rx) = sync_channel::<Walked>(IN_FLIGHT);
        let walker = std::thread::Builder::new()
            .name("layer-walk".into())
            .spawn_scoped(scope, move || {
                walk_dir(dir, &[], &mut |entry| {
                    tx.send(entry).map_err(|_| writer_stopped(dir))
                })
            });
        let Ok(walker) = walker else {
            return walk_dir(dir, &[], &mut write);
        };
        let mut failed = None;
        for entry in rx.iter() {
            if let Err(e) = write(entry) {
                failed = Some(e);
                break;
            }
        }
        // The walk's next hand-over fails once the receiver is gone.
        drop(rx);
        let walked = walker
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        match failed {
            Some(e) => Err(e),
            None => walked,
        }
    })
}

/// The walk's error when the writer stopped taking entries (never returned: the writer's own
/// error is).
fn writer_stopped(dir: &Path) -> OciError {
    OciError::io("walk", dir)(std::io::Error::other("the layer writer stopped"))
}

#[cfg(test)]
mod tests {
    use std::io::{self, Write};

    use super::*;

    /// A stream that takes `left` bytes, then fails.
    struct FailsAfter {
        left: usize,
    }

    impl Write for FailsAfter {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.left == 0 {
                return Err(io::Error::other("stream broke"));
            }
            let n = buf.len().min(self.left);
            self.left -= n;
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn tree(files: usize) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..files {
            let sub = dir.path().join(format!("d{}", i % 7));
            std::fs::create_dir_all(&sub).unwrap();
            std::fs::write(sub.join(format!("f{i}")), vec![b'x'; i * 97]).unwrap();
        }
        dir
    }

    #[test]
    fn a_failing_stream_stops_the_walk_with_its_own_error() {
        let dir = tree(2_000);
        let err = crate::layer::write_tar(dir.path(), FailsAfter { left: 100_000 }).unwrap_err();
        let text = format!("{err:#}");
        assert!(text.contains("stream broke"), "{text}");
        assert!(!text.contains("writer stopped"), "{text}");
    }

    #[test]
    fn the_walk_ahead_writes_what_an_inline_walk_writes() {
        let dir = tree(500);
        let mut ahead = Vec::new();
        let digest = crate::layer::write_tar(dir.path(), &mut ahead).unwrap();
        let mut inline = rbuild_archive::TarEmitter::new(Vec::new(), None);
        walk_dir(dir.path(), &[], &mut |e| {
            crate::layer::walk::emit_walked(&mut inline, e)
        })
        .unwrap();
        let (inline_digest, inline_bytes) = inline.finish().unwrap();
        assert_eq!(digest, inline_digest);
        assert!(ahead == inline_bytes, "the streams differ");
    }
}
