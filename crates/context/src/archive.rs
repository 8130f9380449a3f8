//! Build contexts from a tar archive (`rbuild - < ctx.tar[.gz|.bz2|.xz|.zst]`, or a downloaded
//! URL context), the format detected by magic bytes like Docker does
//! ([`rbuild_archive::detect_archive`]). The archive is unpacked by `rbuild_archive`'s engine
//! into a private temporary directory ([`rbuild_archive::DirSink`]: names as Docker's untar
//! reads them, nothing written outside, through a link leading out, or as a device), which
//! then is an ordinary context directory — its own `.dockerignore` applies — and lives as long
//! as the [`BuildContext`]. Entries escaping the root and truncated archives are errors, never
//! skipped.

use std::io::{self, Cursor, Read};
use std::path::Path;
use std::sync::Arc;

use rbuild_archive::{
    decoder, detect_archive, drain, extract, ArchiveError, ArchiveFormat, DirSink, DirSinkError,
    Ended, ExtractError, NameError, NamePolicy,
};
use rbuild_types::Privileges;

use crate::clean::clean_within_root;
use crate::context::BuildContext;
use crate::error::ContextError;

impl BuildContext {
    /// Reads a context archive (plain, gzip, bzip2, xz or zstd tar, detected by magic bytes)
    /// from `reader` and unpacks it into a temporary directory kept for the life of the
    /// context. `dockerfile` is the Dockerfile's path inside the archive (for
    /// `<name>.dockerignore`); when given, the archive must contain it
    /// ([`ContextError::MissingDockerfile`]). Entries get the archive's owners when
    /// `privileges` (rbuild's, detected at startup) can give files away.
    ///
    /// Rejected, never silently skipped: an archive that ends before its end-of-archive marker
    /// or inside a compressed stream ([`ContextError::ArchiveTruncated`]), and an entry whose
    /// path or hard-link target climbs out of the root, or that would be written through a
    /// symlink leading out of it ([`ContextError::ArchiveEntryEscapes`]).
    pub fn from_tar<R: Read>(
        mut reader: R,
        dockerfile: Option<&str>,
        privileges: &Privileges,
    ) -> Result<BuildContext, ContextError> {
        let extract_err = |source: io::Error| ContextError::Archive { source };
        let mut head = Vec::with_capacity(512);
        (&mut reader)
            .take(512)
            .read_to_end(&mut head)
            .map_err(extract_err)?;
        let format = detect_archive(&head).unwrap_or(ArchiveFormat::Tar);
        let stream = Cursor::new(head).chain(reader);
        let decoded = decoder(format, stream).map_err(extract_err)?;
        let dir = tempfile::Builder::new()
            .prefix("rbuild-context-")
            .tempdir()
            .map_err(extract_err)?;
        unpack(decoded, dir.path(), format, privileges.can_chown())?;
        let df = match dockerfile {
            Some(d) => {
                let path = dir.path().join(clean_within_root(d));
                if !path.is_file() {
                    return Err(ContextError::MissingDockerfile {
                        name: d.to_string(),
                        source_desc: format!("the {} context archive", format.name()),
                    });
                }
                Some(path)
            }
            None => None,
        };
        let ctx = BuildContext::from_dir(dir.path(), df.as_deref())?;
        Ok(ctx.keeping(Arc::new(dir)))
    }
}

/// Unpacks every entry of the (decoded) tar stream into `dest`, with the archive's owners
/// when `owners`.
fn unpack<'a>(
    decoded: Box<dyn Read + 'a>,
    dest: &Path,
    format: ArchiveFormat,
    owners: bool,
) -> Result<(), ContextError> {
    let mut sink =
        DirSink::new(dest, owners).map_err(|source| ContextError::ArchiveWrite { source })?;
    let done = extract(decoded, NamePolicy::Untar, &mut sink).map_err(|e| match e {
        ExtractError::Archive(e) => archive_error(e, format),
        ExtractError::Sink(DirSinkError::Escapes { entry, detail }) => {
            ContextError::ArchiveEntryEscapes {
                entry: entry.lossy().into_owned(),
                detail: detail.to_string(),
            }
        }
        ExtractError::Sink(source) => ContextError::ArchiveWrite { source },
    })?;
    if done.ended == Ended::Eof {
        return Err(ContextError::ArchiveTruncated {
            format: format.name(),
            detail: "the stream ended before the end-of-archive marker".into(),
        });
    }
    // Read the rest (padding, a compressed stream's trailer) so the decoder verifies its
    // checksum and notices a stream cut after the last entry.
    drain(done.rest).map_err(|e| archive_error(e, format))?;
    Ok(())
}

/// What a bad context archive is called.
fn archive_error(e: ArchiveError, format: ArchiveFormat) -> ContextError {
    match e {
        ArchiveError::Read { source } => ContextError::Archive { source },
        ArchiveError::Truncated { detail } => ContextError::ArchiveTruncated {
            format: format.name(),
            detail,
        },
        ArchiveError::Name {
            entry,
            reason: NameError::ClimbsOut,
        } => ContextError::ArchiveEntryEscapes {
            entry: entry.lossy().into_owned(),
            detail: "its path climbs out of the context root".into(),
        },
        ArchiveError::LinkTarget {
            entry,
            target,
            reason: NameError::ClimbsOut,
        } => ContextError::ArchiveEntryEscapes {
            entry: entry.lossy().into_owned(),
            detail: format!(
                "its hard-link target {:?} is outside the context",
                target.lossy()
            ),
        },
        source => ContextError::ArchiveEntry { source },
    }
}
