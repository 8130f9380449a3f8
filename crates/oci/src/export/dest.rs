//! [`OutputFile`]: a file an export writes (`-o type=oci|docker|tar,dest=FILE`, `save -o`,
//! `--iidfile`, `--metadata-file`), written without clobbering what is not a regular file.
//!
//! What is at the destination decides how it is written:
//! - nothing, or a regular file: a temp file in the same directory, renamed over it once
//!   complete, so the destination appears whole or not at all (as before);
//! - a device (`/dev/null`, a terminal), a FIFO, or a symlink (`/dev/stdout` →
//!   `/proc/self/fd/1`): opened and written through, like a shell redirection — never
//!   renamed over or removed;
//! - a directory: refused.

use std::fs::{File, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::parent_dir;
use crate::OciError;

/// An export's file, open for writing. Nothing is published until [`OutputFile::commit`];
/// dropped uncommitted, a temp file is removed (a written-through destination keeps what was
/// written).
#[derive(Debug)]
pub struct OutputFile {
    dest: PathBuf,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    /// Replaces a regular file (or creates one) by rename.
    Atomic(tempfile::NamedTempFile),
    /// Writes into what is there: a device, a FIFO, or a symlink's target.
    Through(File),
}

impl OutputFile {
    /// Opens `dest` for writing as the module docs say.
    pub fn create(dest: &Path) -> Result<OutputFile, OciError> {
        let kind = match std::fs::symlink_metadata(dest) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Kind::Atomic(temp_next_to(dest)?),
            Err(e) => return Err(OciError::io("stat", dest)(e)),
            Ok(m) if m.is_file() => Kind::Atomic(temp_next_to(dest)?),
            Ok(m) if m.is_dir() => {
                return Err(OciError::io("write", dest)(io::Error::new(
                    io::ErrorKind::IsADirectory,
                    "the destination is a directory; name a file",
                )))
            }
            Ok(m) => {
                let ft = m.file_type();
                let mut options = OpenOptions::new();
                options.write(true);
                if ft.is_symlink() {
                    // Through the link, as `> link` would: its target is created or truncated.
                    options.create(true).truncate(true);
                }
                // Devices and FIFOs are opened as they are (a FIFO waits for its reader).
                Kind::Through(options.open(dest).map_err(OciError::io("open", dest))?)
            }
        };
        Ok(OutputFile {
            dest: dest.to_path_buf(),
            kind,
        })
    }

    /// The destination, for messages.
    pub fn path(&self) -> &Path {
        &self.dest
    }

    fn file(&mut self) -> &mut File {
        match &mut self.kind {
            Kind::Atomic(tmp) => tmp.as_file_mut(),
            Kind::Through(file) => file,
        }
    }

    /// Finishes the file: a temp file is made durable and renamed over the destination; a
    /// written-through regular file (a symlink's target) is made durable.
    pub fn commit(self) -> Result<(), OciError> {
        let dest = self.dest;
        match self.kind {
            Kind::Atomic(tmp) => {
                tmp.as_file()
                    .sync_all()
                    .map_err(OciError::io("fsync", &dest))?;
                tmp.persist(&dest).map_err(|e| OciError::Io {
                    op: "write",
                    path: dest.clone(),
                    source: e.error,
                })?;
            }
            Kind::Through(file) => {
                let regular = file.metadata().is_ok_and(|m| m.file_type().is_file());
                if regular {
                    file.sync_all().map_err(OciError::io("fsync", &dest))?;
                }
            }
        }
        Ok(())
    }
}

impl Write for OutputFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file().write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file().flush()
    }
}

/// A temp file next to `dest`, to be renamed over it once complete. It gets the mode a new
/// file gets (0666 less the umask), or the mode of the regular file it replaces.
fn temp_next_to(dest: &Path) -> Result<tempfile::NamedTempFile, OciError> {
    let dir = parent_dir(dest);
    let mode = std::fs::metadata(dest).map_or(0o666, |m| m.permissions().mode() & 0o7777);
    let tmp = tempfile::Builder::new()
        .prefix(".rbuild-export-")
        .permissions(Permissions::from_mode(mode))
        .tempfile_in(&dir)
        .map_err(OciError::io("create temp file in", &dir))?;
    if mode != 0o666 {
        // The umask applied at creation; a replaced file keeps its exact mode.
        tmp.as_file()
            .set_permissions(Permissions::from_mode(mode))
            .map_err(OciError::io("chmod", tmp.path()))?;
    }
    Ok(tmp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, FileTypeExt};

    fn write(dest: &Path, data: &[u8]) -> Result<(), OciError> {
        let mut out = OutputFile::create(dest)?;
        out.write_all(data).map_err(OciError::io("write", dest))?;
        out.commit()
    }

    #[test]
    fn regular_files_are_replaced_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out.tar");
        write(&dest, b"one").unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"one");
        std::fs::set_permissions(&dest, Permissions::from_mode(0o640)).unwrap();
        let before = std::fs::metadata(&dest).unwrap();
        write(&dest, b"two").unwrap();
        let after = std::fs::metadata(&dest).unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"two");
        // A new inode (renamed over), with the old file's mode.
        assert_ne!(
            std::os::unix::fs::MetadataExt::ino(&before),
            std::os::unix::fs::MetadataExt::ino(&after)
        );
        assert_eq!(after.permissions().mode() & 0o7777, 0o640);
        // Nothing is published before commit, and no temp file is left behind.
        let out = OutputFile::create(&dest).unwrap();
        drop(out);
        assert_eq!(std::fs::read(&dest).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn symlinks_fifos_and_devices_are_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        std::fs::write(&target, b"old contents, longer").unwrap();
        let link = dir.path().join("link");
        symlink(&target, &link).unwrap();
        write(&link, b"new").unwrap();
        assert!(std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read(&target).unwrap(), b"new");

        // A dangling link: its target is created.
        let dangling = dir.path().join("dangling");
        symlink(dir.path().join("made"), &dangling).unwrap();
        write(&dangling, b"made").unwrap();
        assert_eq!(std::fs::read(dir.path().join("made")).unwrap(), b"made");

        // A device stays a device.
        write(Path::new("/dev/null"), b"discarded").unwrap();
        assert!(std::fs::metadata("/dev/null")
            .unwrap()
            .file_type()
            .is_char_device());

        // A FIFO: the reader gets the bytes, the FIFO stays.
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let reader = {
            let fifo = fifo.clone();
            std::thread::spawn(move || std::fs::read(fifo).unwrap())
        };
        write(&fifo, b"through the pipe").unwrap();
        assert_eq!(reader.join().unwrap(), b"through the pipe");
        assert!(std::fs::symlink_metadata(&fifo)
            .unwrap()
            .file_type()
            .is_fifo());
    }

    #[test]
    fn a_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let err = OutputFile::create(dir.path()).unwrap_err();
        assert!(err.to_string().contains("is a directory"), "{err}");
    }
}
