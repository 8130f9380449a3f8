//! [`ArchiveWriter`]: a minimal deterministic tar writer for image archives (OCI layout tars,
//! docker-archive): regular files and directories only, owner 0:0, mtime 0, fixed modes.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

use crate::error::WriteError;

/// Writes named files and directories as one tar; every header is fixed but for name and size.
pub struct ArchiveWriter<W: Write> {
    builder: tar::Builder<W>,
    dest: std::path::PathBuf,
}

impl<W: Write> ArchiveWriter<W> {
    /// `dest` names the archive in errors.
    pub fn new(out: W, dest: &Path) -> Self {
        let mut builder = tar::Builder::new(out);
        builder.mode(tar::HeaderMode::Deterministic);
        ArchiveWriter {
            builder,
            dest: dest.to_path_buf(),
        }
    }

    fn err(&self) -> impl FnOnce(io::Error) -> WriteError {
        WriteError::io("write archive", self.dest.clone())
    }

    fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_size(size);
        h
    }

    /// Adds directory `name` (`0755`).
    pub fn add_dir(&mut self, name: &str) -> Result<(), WriteError> {
        let mut h = Self::header(tar::EntryType::Directory, 0o755, 0);
        let err = self.err();
        self.builder
            .append_data(&mut h, name, io::empty())
            .map_err(err)
    }

    /// Adds a file `name` (`0644`) holding `data`.
    pub fn add_bytes(&mut self, name: &str, data: &[u8]) -> Result<(), WriteError> {
        let mut h = Self::header(tar::EntryType::Regular, 0o644, data.len() as u64);
        let err = self.err();
        self.builder.append_data(&mut h, name, data).map_err(err)
    }

    /// Adds the file at `path` under `name`.
    pub fn add_file(&mut self, name: &str, path: &Path) -> Result<(), WriteError> {
        let file = File::open(path).map_err(WriteError::io("open", path))?;
        let size = file.metadata().map_err(WriteError::io("stat", path))?.len();
        let mut h = Self::header(tar::EntryType::Regular, 0o644, size);
        let err = self.err();
        self.builder.append_data(&mut h, name, file).map_err(err)
    }

    /// Ends the archive and returns the output.
    pub fn finish(self) -> Result<W, WriteError> {
        let err = self.err();
        self.builder.into_inner().map_err(err)
    }
}
