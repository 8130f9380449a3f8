//! Reading one tar entry's header into an [`Entry`]: the type classified, the name and a hard
//! link's target sanitized, numeric fields read as Go's `archive/tar` reads them (octal, or
//! base-256 when the high bit is set; an empty field is 0), PAX records applied (`path`,
//! `linkpath` and `size` by the tar reader, `uid`, `gid`, `mtime` and `SCHILY.xattr.*` here).

use std::collections::BTreeMap;
use std::io::Read;

use rbuild_types::ByteString;

use super::{Entry, EntryKind};
use crate::error::ArchiveError;
use crate::name::{sanitize, NamePolicy};

/// What the engine does with one header.
pub(crate) enum Classified {
    /// Hand it to the sink.
    Entry(Entry),
    /// Nothing to extract: a PAX global header, or the root directory itself.
    Skip,
}

/// A numeric header field as Go reads it: base-256 when the first byte has its high bit set
/// (positive values only), else octal between optional NULs and spaces (empty is 0).
fn numeric(field: &[u8]) -> Option<u64> {
    match field.first() {
        Some(&first) if first & 0x80 != 0 => {
            if first & 0x40 != 0 {
                return None; // negative
            }
            let mut value: u64 = u64::from(first & 0x3f);
            for &b in &field[1..] {
                value = value.checked_mul(256)?.checked_add(u64::from(b))?;
            }
            Some(value)
        }
        _ => {
            let trimmed = trim(field);
            if trimmed.is_empty() {
                return Some(0);
            }
            let text = std::str::from_utf8(trimmed).ok()?;
            u64::from_str_radix(text, 8).ok()
        }
    }
}

/// `field` without leading and trailing NULs and spaces.
fn trim(field: &[u8]) -> &[u8] {
    let pad = |b: &u8| *b == 0 || *b == b' ';
    let start = field.iter().position(|b| !pad(b)).unwrap_or(field.len());
    let end = field.iter().rposition(|b| !pad(b)).map_or(start, |i| i + 1);
    &field[start..end]
}

/// The PAX records rbuild applies beyond what the tar reader does.
#[derive(Default)]
struct Pax {
    uid: Option<u64>,
    gid: Option<u64>,
    mtime: Option<u64>,
    xattrs: BTreeMap<String, Vec<u8>>,
}

/// A PAX number's integer part (`mtime` may have a fraction); `None` when it is not one.
fn pax_number(value: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(value).ok()?;
    text.split('.').next()?.parse().ok()
}

fn read_pax<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    name: &ByteString,
) -> Result<Pax, ArchiveError> {
    let mut pax = Pax::default();
    let exts = entry.pax_extensions().map_err(|_| ArchiveError::Header {
        entry: name.clone(),
        field: "PAX",
    })?;
    let Some(exts) = exts else {
        return Ok(pax);
    };
    for ext in exts {
        let ext = ext.map_err(|_| ArchiveError::Header {
            entry: name.clone(),
            field: "PAX",
        })?;
        let Ok(key) = ext.key() else { continue };
        let value = ext.value_bytes();
        match key {
            "uid" => pax.uid = pax_number(value).or(pax.uid),
            "gid" => pax.gid = pax_number(value).or(pax.gid),
            "mtime" => pax.mtime = pax_number(value).or(pax.mtime),
            _ => {
                if let Some(x) = key.strip_prefix("SCHILY.xattr.") {
                    pax.xattrs.insert(x.to_string(), value.to_vec());
                }
            }
        }
    }
    Ok(pax)
}

/// Reads the header of `entry` under `policy`.
pub(crate) fn classify<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    policy: NamePolicy,
) -> Result<Classified, ArchiveError> {
    let raw = entry.path_bytes().into_owned();
    let name = ByteString::from(raw.clone());
    // The raw byte: the tar reader reads `\0` as `0`, but an old-style directory is told by it.
    let flag = entry.header().as_old().linkflag[0];
    if flag == b'g' {
        return Ok(Classified::Skip);
    }
    let path = sanitize(&raw, policy).map_err(|reason| ArchiveError::Name {
        entry: name.clone(),
        reason,
    })?;
    if path.is_root() {
        // `./` itself: every destination keeps its own root's metadata.
        return Ok(Classified::Skip);
    }
    let kind = match flag {
        // Old archives mark directories by a trailing slash on a type-0 entry, as Go reads.
        b'\0' if raw.ends_with(b"/") => EntryKind::Dir,
        b'0' | b'\0' | b'7' => EntryKind::File,
        b'5' => EntryKind::Dir,
        b'2' => {
            let target = link_target(entry, &name, "symlink")?;
            EntryKind::Symlink { target }
        }
        b'1' => {
            let target = link_target(entry, &name, "hard link")?;
            let target_path =
                sanitize(&target, policy).map_err(|reason| ArchiveError::LinkTarget {
                    entry: name.clone(),
                    target: ByteString::from(target.clone()),
                    reason,
                })?;
            if target_path.is_root() {
                return Err(ArchiveError::LinkTarget {
                    entry: name,
                    target: ByteString::from(target),
                    reason: crate::NameError::Root,
                });
            }
            EntryKind::HardLink {
                target: target_path,
            }
        }
        b'3' | b'4' => {
            let (major, minor) = device(entry, &name)?;
            if flag == b'3' {
                EntryKind::CharDevice { major, minor }
            } else {
                EntryKind::BlockDevice { major, minor }
            }
        }
        b'6' => EntryKind::Fifo,
        other => {
            return Err(ArchiveError::Unsupported {
                entry: name,
                flag: char::from(other),
            })
        }
    };
    let pax = read_pax(entry, &name)?;
    let header = entry.header().as_old();
    let field = |bytes: &[u8], what: &'static str| {
        numeric(bytes).ok_or_else(|| ArchiveError::Header {
            entry: name.clone(),
            field: what,
        })
    };
    let mode = field(&header.mode, "mode")?;
    let uid = match pax.uid {
        Some(uid) => uid,
        None => field(&header.uid, "uid")?,
    };
    let gid = match pax.gid {
        Some(gid) => gid,
        None => field(&header.gid, "gid")?,
    };
    let mtime = match pax.mtime {
        Some(mtime) => mtime,
        None => field(&header.mtime, "mtime")?,
    };
    let size = match kind {
        EntryKind::File => entry.size(),
        _ => 0,
    };
    Ok(Classified::Entry(Entry {
        name,
        path,
        kind,
        mode: (mode & 0o7777) as u32,
        uid,
        gid,
        mtime,
        size,
        xattrs: pax.xattrs.into_iter().collect(),
    }))
}

/// A link's target: present, non-empty, without a NUL byte.
fn link_target<R: Read>(
    entry: &tar::Entry<'_, R>,
    name: &ByteString,
    kind: &'static str,
) -> Result<Vec<u8>, ArchiveError> {
    match entry.link_name_bytes() {
        Some(target) if !target.is_empty() && !target.contains(&0) => Ok(target.into_owned()),
        _ => Err(ArchiveError::NoLinkTarget {
            entry: name.clone(),
            kind,
        }),
    }
}

/// Device numbers (only ustar and GNU headers have the fields; old ones give 0:0).
fn device<R: Read>(
    entry: &tar::Entry<'_, R>,
    name: &ByteString,
) -> Result<(u32, u32), ArchiveError> {
    let header = entry.header();
    let (major, minor) = match (header.as_ustar(), header.as_gnu()) {
        (Some(u), _) => (&u.dev_major[..], &u.dev_minor[..]),
        (None, Some(g)) => (&g.dev_major[..], &g.dev_minor[..]),
        (None, None) => return Ok((0, 0)),
    };
    let number = |bytes: &[u8], what: &'static str| {
        numeric(bytes)
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| ArchiveError::Header {
                entry: name.clone(),
                field: what,
            })
    };
    Ok((
        number(major, "device major")?,
        number(minor, "device minor")?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_as_go_does() {
        assert_eq!(numeric(b"0000644\0"), Some(0o644));
        assert_eq!(numeric(b" 644 \0"), Some(0o644));
        assert_eq!(numeric(b"\0\0\0\0\0\0\0\0"), Some(0));
        assert_eq!(numeric(b"        "), Some(0));
        assert_eq!(numeric(b"0000x44\0"), None);
        assert_eq!(numeric(&[0x80, 0, 0, 0, 0, 0, 1, 0]), Some(256));
        assert_eq!(
            numeric(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
            None
        );
        assert_eq!(numeric(&[0x80, 1, 0, 0, 0, 0, 0, 0, 0, 0]), None);
        assert_eq!(pax_number(b"1600000000.123"), Some(1_600_000_000));
        assert_eq!(pax_number(b"-1"), None);
    }
}
