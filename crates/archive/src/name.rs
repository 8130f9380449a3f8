//! The one sanitizer of entry names and hard-link targets: every name an archive carries is
//! turned into an [`EntryPath`] here, once, before any destination sees it.
//!
//! Rules (both policies): an empty name and one with a NUL byte are refused; empty and `.`
//! components are dropped (`./a//b/` is `a/b`); a name that is only those names the root.
//! [`NamePolicy::Untar`] is Docker's untar (and BuildKit's, chrooted into the destination): a
//! leading `/` is dropped and `..` removes the component before it, but a `..` with nothing
//! to remove climbs out of the root and is refused. [`NamePolicy::Strict`] (layers) refuses
//! absolute names and every `..`.
//!
//! Names are bytes and stay bytes: nothing here is lossy (invariant 10).

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::error::NameError;

/// How entry names are read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NamePolicy {
    /// Docker's untar: leading `/` dropped, `..` resolved lexically, climbing out refused.
    Untar,
    /// Image layers: absolute names and `..` components refused.
    Strict,
}

/// A sanitized entry name: relative, components separated by one `/`, none of them empty,
/// `.` or `..`, no NUL byte. Empty for the root itself.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EntryPath(Vec<u8>);

impl EntryPath {
    /// The root directory itself (`./`).
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// The name's bytes (`a/b/c`).
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The name as a relative path (the same bytes).
    pub fn as_path(&self) -> &Path {
        Path::new(OsStr::from_bytes(&self.0))
    }

    /// The directory the entry is in, relative (empty for a top-level entry).
    pub fn parent(&self) -> &Path {
        self.as_path().parent().unwrap_or(Path::new(""))
    }

    /// The last component (`None` for the root).
    pub fn file_name(&self) -> Option<&OsStr> {
        self.as_path().file_name()
    }

    /// Whether `self` is `other` or one of its ancestors (the root is everything's).
    pub fn contains(&self, other: &EntryPath) -> bool {
        other.0.starts_with(&self.0)
            && (self.0.is_empty() || other.0.len() == self.0.len() || other.0[self.0.len()] == b'/')
    }
}

/// Sanitizes one entry name (or hard-link target) under `policy`.
pub fn sanitize(raw: &[u8], policy: NamePolicy) -> Result<EntryPath, NameError> {
    if raw.is_empty() {
        return Err(NameError::Empty);
    }
    if raw.contains(&0) {
        return Err(NameError::Nul);
    }
    if policy == NamePolicy::Strict && raw.first() == Some(&b'/') {
        return Err(NameError::Absolute);
    }
    let mut parts: Vec<&[u8]> = Vec::new();
    for part in raw.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." if policy == NamePolicy::Strict => return Err(NameError::DotDot),
            b".." => {
                if parts.pop().is_none() {
                    return Err(NameError::ClimbsOut);
                }
            }
            part => parts.push(part),
        }
    }
    Ok(EntryPath(parts.join(&b'/')))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn untar(raw: &str) -> Result<String, NameError> {
        sanitize(raw.as_bytes(), NamePolicy::Untar)
            .map(|p| String::from_utf8(p.as_bytes().to_vec()).unwrap_or_default())
    }

    #[test]
    fn untar_names_are_docker_s() {
        assert_eq!(untar("./a//b/"), Ok("a/b".into()));
        assert_eq!(untar("/etc/x"), Ok("etc/x".into()));
        assert_eq!(untar("a/../b"), Ok("b".into()));
        assert_eq!(untar("./"), Ok("".into()));
        assert_eq!(untar("a/.."), Ok("".into()));
        assert_eq!(untar("../x"), Err(NameError::ClimbsOut));
        assert_eq!(untar("a/../../x"), Err(NameError::ClimbsOut));
        assert_eq!(untar(""), Err(NameError::Empty));
        assert_eq!(untar("a\0b"), Err(NameError::Nul));
    }

    #[test]
    fn strict_names_refuse_absolute_and_dot_dot() {
        let strict = |raw: &str| sanitize(raw.as_bytes(), NamePolicy::Strict);
        assert_eq!(strict("./a//b/").map(|p| p.0), Ok(b"a/b".to_vec()));
        assert_eq!(strict("/etc/passwd"), Err(NameError::Absolute));
        assert_eq!(strict("a/../b"), Err(NameError::DotDot));
        assert_eq!(strict("../x"), Err(NameError::DotDot));
    }

    #[test]
    fn bytes_stay_bytes() {
        let p = sanitize(b"d\xfc/f\xff", NamePolicy::Untar).expect("valid");
        assert_eq!(p.as_bytes(), b"d\xfc/f\xff");
        assert_eq!(p.file_name().map(OsStrExt::as_bytes), Some(&b"f\xff"[..]));
        assert_eq!(p.parent().as_os_str().as_bytes(), b"d\xfc");
    }

    #[test]
    fn ancestry() {
        let p = |s: &str| sanitize(s.as_bytes(), NamePolicy::Untar).expect("valid");
        assert!(p("a").contains(&p("a/b")));
        assert!(p("a").contains(&p("a")));
        assert!(!p("a").contains(&p("ab")));
        assert!(p("./").contains(&p("x")));
        assert!(!p("a/b").contains(&p("a")));
    }
}
