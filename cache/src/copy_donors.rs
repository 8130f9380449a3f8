//! Copy donors: for a COPY from a build context, which snapshot an earlier run of the *same*
//! copy (same op, same destination below the same parent, whatever files it selected) made,
//! and what each regular file in it was made from. A later run whose selection differs in a
//! few files links the unchanged ones from that snapshot instead of copying their bytes again.
//!
//! Layout: `copy-donors/<shape hex>`, one file per copy shape (the solver's `copy_shape` key),
//! replaced by each run of that shape. The file is a hint, never trusted blindly: it is
//! checksummed (a torn or foreign file reads as absent), names its snapshot (which may have been
//! pruned since: readers check each file on disk), and the solver links a file only when its
//! recorded stamp equals what the current copy would write and the donor file on disk still
//! has the size, mode, owner and mtime recorded. Snapshots are immutable, so a donor file that
//! passes is the file a fresh copy would write; the new snapshot shares its inode.
//!
//! Format (little endian): `rbuild-copy-donor-v1\n`, the snapshot id (32 bytes), the entry
//! count (u64), then per entry: path length (u32), path bytes (relative to the snapshot root),
//! entry digest (32), mtime in ns (i64), size (u64), mode (u32), uid (u32), gid (u32); then the
//! SHA-256 of everything before it (32).

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::PathBuf;

use rbuild_types::{Digest, Hasher};

use crate::error::{io_err, CacheError};
use crate::fsutil;
use crate::SnapshotId;

const MAGIC: &[u8] = b"rbuild-copy-donor-v1\n";

/// Above this many files a copy records no donor (the record and its lookup table would cost
/// hundreds of MB for a million-file selection).
pub const MAX_DONOR_FILES: usize = 1 << 19;

/// What one regular file of a donor snapshot was made from, and how it was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DonorFile {
    /// The context entry's digest (type, mode, owner, content) when it was copied.
    pub digest: Digest,
    /// Its mtime (ns since the epoch), which the copy kept.
    pub mtime_ns: i64,
    pub size: u64,
    /// Permission bits written (`--chmod` applied).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// One donor: a snapshot and its regular files by path (relative to the snapshot root).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Donor {
    pub snapshot: SnapshotId,
    pub files: HashMap<Vec<u8>, DonorFile>,
}

/// The donor records `copy-donors/`. Get one with [`crate::Store::copy_donors`].
#[derive(Clone, Copy, Debug)]
pub struct CopyDonors<'a> {
    pub(crate) root: &'a std::path::Path,
}

impl CopyDonors<'_> {
    /// `<root>/copy-donors`.
    pub fn dir(&self) -> PathBuf {
        self.root.join("copy-donors")
    }

    /// The donor last recorded for `shape`, if any and readable.
    pub fn get(&self, shape: &Digest) -> Option<Donor> {
        let bytes = fs::read(self.dir().join(shape.hex())).ok()?;
        decode(&bytes)
    }

    /// Records `snapshot` with `files` as the donor of `shape`, replacing any earlier one.
    /// Unsynced on purpose: a torn record fails its checksum and reads as absent.
    pub fn put<'f>(
        &self,
        shape: &Digest,
        snapshot: &SnapshotId,
        files: impl ExactSizeIterator<Item = (&'f [u8], &'f DonorFile)>,
    ) -> Result<(), CacheError> {
        let dir = self.dir();
        fs::create_dir_all(&dir).map_err(io_err("create directory", &dir))?;
        let bytes = encode(snapshot, files);
        let tmp = dir.join(fsutil::unique_name(".tmp"));
        let dest = dir.join(shape.hex());
        let written = fs::File::create(&tmp).and_then(|mut f| f.write_all(&bytes));
        if let Err(e) = written.and_then(|()| fs::rename(&tmp, &dest)) {
            let _ = fs::remove_file(&tmp);
            return Err(io_err("write copy donor record", dest)(e));
        }
        Ok(())
    }

    /// Removes every record (`prune --all`); returns how many there were.
    pub fn clear(&self) -> Result<u64, CacheError> {
        let mut n = 0;
        for path in fsutil::list_dir(&self.dir())? {
            match fs::remove_file(&path) {
                Ok(()) => n += 1,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err("remove", path)(e)),
            }
        }
        Ok(n)
    }

    /// Removes the records whose snapshot is not in `keep` (after a GC removed snapshots).
    pub fn retain(&self, keep: impl Fn(&SnapshotId) -> bool) -> Result<(), CacheError> {
        for path in fsutil::list_dir(&self.dir())? {
            let stale = fs::read(&path)
                .ok()
                .and_then(|b| decode_snapshot(&b))
                .is_none_or(|id| !keep(&id));
            if stale {
                match fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io_err("remove", path)(e)),
                }
            }
        }
        Ok(())
    }
}

fn encode<'f>(
    snapshot: &SnapshotId,
    files: impl ExactSizeIterator<Item = (&'f [u8], &'f DonorFile)>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(MAGIC.len() + 72 + files.len() * 100);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(snapshot.0.as_bytes());
    out.extend_from_slice(&(files.len() as u64).to_le_bytes());
    for (path, f) in files {
        out.extend_from_slice(&(path.len() as u32).to_le_bytes());
        out.extend_from_slice(path);
        out.extend_from_slice(f.digest.as_bytes());
        out.extend_from_slice(&f.mtime_ns.to_le_bytes());
        out.extend_from_slice(&f.size.to_le_bytes());
        out.extend_from_slice(&f.mode.to_le_bytes());
        out.extend_from_slice(&f.uid.to_le_bytes());
        out.extend_from_slice(&f.gid.to_le_bytes());
    }
    let sum = checksum(&out);
    out.extend_from_slice(sum.as_bytes());
    out
}

fn checksum(bytes: &[u8]) -> Digest {
    let mut h = Hasher::new();
    h.field(bytes);
    h.finish()
}

/// The snapshot a record names, if its checksum holds.
fn decode_snapshot(bytes: &[u8]) -> Option<SnapshotId> {
    let body = verified(bytes)?;
    let mut r = Reader(body.get(MAGIC.len()..)?);
    Some(SnapshotId(r.digest()?))
}

fn verified(bytes: &[u8]) -> Option<&[u8]> {
    let split = bytes.len().checked_sub(32)?;
    let (body, sum) = bytes.split_at(split);
    (body.starts_with(MAGIC) && checksum(body).as_bytes() == sum).then_some(body)
}

fn decode(bytes: &[u8]) -> Option<Donor> {
    let body = verified(bytes)?;
    let mut r = Reader(body.get(MAGIC.len()..)?);
    let snapshot = SnapshotId(r.digest()?);
    let n = usize::try_from(r.u64()?).ok()?;
    if n > MAX_DONOR_FILES {
        return None;
    }
    let mut files = HashMap::with_capacity(n);
    for _ in 0..n {
        let len = r.u32()? as usize;
        let path = r.take(len)?.to_vec();
        let file = DonorFile {
            digest: r.digest()?,
            mtime_ns: i64::from_le_bytes(r.take(8)?.try_into().ok()?),
            size: r.u64()?,
            mode: r.u32()?,
            uid: r.u32()?,
            gid: r.u32()?,
        };
        files.insert(path, file);
    }
    r.0.is_empty().then_some(Donor { snapshot, files })
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn digest(&mut self) -> Option<Digest> {
        let b: [u8; 32] = self.take(32)?.try_into().ok()?;
        Some(Digest::from_bytes(b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(n: u8) -> DonorFile {
        DonorFile {
            digest: Digest::of(&[n]),
            mtime_ns: -5 + i64::from(n),
            size: u64::from(n) * 1000,
            mode: 0o644,
            uid: 1,
            gid: 2,
        }
    }

    #[test]
    fn a_record_reads_back_and_a_damaged_one_reads_as_absent() {
        let t = tempfile::tempdir().unwrap();
        let donors = CopyDonors { root: t.path() };
        let shape = Digest::of(b"shape");
        let snap = SnapshotId(Digest::of(b"snap"));
        let files: Vec<(Vec<u8>, DonorFile)> = vec![
            (b"app/a".to_vec(), file(1)),
            (b"app/\xffb".to_vec(), file(2)),
        ];
        donors
            .put(&shape, &snap, files.iter().map(|(p, f)| (p.as_slice(), f)))
            .unwrap();
        let got = donors.get(&shape).unwrap();
        assert_eq!(got.snapshot, snap);
        assert_eq!(got.files.len(), 2);
        assert_eq!(got.files[&b"app/\xffb".to_vec()], file(2));
        assert!(donors.get(&Digest::of(b"other")).is_none());

        // Any damage: absent, never a wrong record.
        let path = donors.dir().join(shape.hex());
        let good = fs::read(&path).unwrap();
        for cut in [0, 10, good.len() / 2, good.len() - 1] {
            fs::write(&path, &good[..cut]).unwrap();
            assert!(donors.get(&shape).is_none(), "cut at {cut}");
        }
        let mut flipped = good.clone();
        flipped[40] ^= 1;
        fs::write(&path, &flipped).unwrap();
        assert!(donors.get(&shape).is_none());

        // GC keeps records of kept snapshots only; prune removes all.
        fs::write(&path, &good).unwrap();
        donors.retain(|id| *id == snap).unwrap();
        assert!(donors.get(&shape).is_some());
        donors.retain(|_| false).unwrap();
        assert!(donors.get(&shape).is_none());
        fs::write(&path, &good).unwrap();
        assert_eq!(donors.clear().unwrap(), 1);
        assert!(donors.get(&shape).is_none());
    }
}
