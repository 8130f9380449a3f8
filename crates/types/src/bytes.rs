//! Bytes that are usually UTF-8 text, and a lossless way to carry any bytes in a Rust `str`.
//!
//! Linux hands programs bytes, not text: a Dockerfile line, an argument of `execve` or a file
//! name may hold bytes that are not UTF-8. rbuild passes such bytes through unchanged where it
//! can, and never replaces them silently. Two tools serve that:
//!
//! * [`ByteString`]: owned bytes for the few places that carry raw bytes across crates (the
//!   argv of a RUN, heredoc bodies). It serialises exactly like a `String` when its bytes are
//!   UTF-8 — so no cache key of an all-UTF-8 build changes — and as an array of byte values
//!   (serde's bytes) when they are not, which no string can be mistaken for.
//! * The escaped form ([`escape`], [`unescape`]): for code that must keep using `&str`
//!   (string splitting in the Dockerfile parser, the context crate's path table and pattern
//!   matchers). A byte that is not part of valid UTF-8 stands for itself as one code point of
//!   the last 128 of Unicode (U+10FF80–U+10FFFF, private use; byte `b` is `U+10FF00 + b`).
//!   So that the mapping is lossless both ways, a *real* character of that range is escaped
//!   too, as one code point per byte of its UTF-8 encoding. [`unescape`] undoes [`escape`]
//!   exactly; [`units`] reads an escaped string as Go reads bytes (one unit per valid
//!   character, one per stray byte), which is what pattern matching needs; [`lossy`] renders
//!   bytes for people as Go's `encoding/json` does (U+FFFD for each stray byte).
//!
//! The escaped form is an internal device: it is never written to a key, a layer, a config
//! or a message; those get the bytes ([`unescape`]) or the rendering ([`lossy`]).

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// The code point that stands for byte `0x00` (only bytes `0x80..=0xFF` are ever escaped).
const BASE: u32 = 0x10_FF00;
/// The first code point of the escape range (byte `0x80`).
const FIRST: u32 = BASE + 0x80;

/// The byte an escape code point stands for, if `c` is one.
pub fn escaped_byte(c: char) -> Option<u8> {
    let u = u32::from(c);
    if u >= FIRST {
        u8::try_from(u - BASE).ok()
    } else {
        None
    }
}

/// The code point that stands for byte `b` (`b >= 0x80`; smaller bytes are always valid
/// UTF-8 and are never escaped, but map into the same range for totality).
fn escape_char(b: u8) -> char {
    char::from_u32(BASE + u32::from(b | 0x80)).unwrap_or(char::REPLACEMENT_CHARACTER)
}

/// Appends the escaped form of `bytes` to `out`.
fn push_escaped(out: &mut String, bytes: &[u8]) {
    let mut rest = bytes;
    while !rest.is_empty() {
        let (valid, bad) = match std::str::from_utf8(rest) {
            Ok(s) => (s, 0),
            Err(e) => {
                let (v, _) = rest.split_at(e.valid_up_to());
                let v = std::str::from_utf8(v).unwrap_or_default();
                (v, e.error_len().unwrap_or(rest.len() - e.valid_up_to()))
            }
        };
        for c in valid.chars() {
            if escaped_byte(c).is_some() {
                let mut buf = [0u8; 4];
                for &b in c.encode_utf8(&mut buf).as_bytes() {
                    out.push(escape_char(b));
                }
            } else {
                out.push(c);
            }
        }
        let stray = rest.get(valid.len()..valid.len() + bad).unwrap_or_default();
        for &b in stray {
            out.push(escape_char(b));
        }
        rest = rest.get(valid.len() + bad..).unwrap_or_default();
    }
}

/// The escaped form of `bytes` (see the module docs). Borrowed when `bytes` is UTF-8 without a
/// character of the escape range, which is nearly always.
pub fn escape(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(s) if !s.chars().any(|c| escaped_byte(c).is_some()) => Cow::Borrowed(s),
        _ => {
            let mut out = String::with_capacity(bytes.len() + 8);
            push_escaped(&mut out, bytes);
            Cow::Owned(out)
        }
    }
}

/// The escaped form of text (only characters of the escape range change).
pub fn escape_str(s: &str) -> Cow<'_, str> {
    escape(s.as_bytes())
}

/// The bytes an escaped string stands for: the inverse of [`escape`].
pub fn unescape(s: &str) -> Cow<'_, [u8]> {
    if !s.chars().any(|c| escaped_byte(c).is_some()) {
        return Cow::Borrowed(s.as_bytes());
    }
    let mut out = Vec::with_capacity(s.len());
    for c in s.chars() {
        match escaped_byte(c) {
            Some(b) => out.push(b),
            None => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    Cow::Owned(out)
}

/// Whether `s` (escaped) stands for bytes that are not UTF-8.
pub fn has_invalid(s: &str) -> bool {
    first_invalid(s).is_some()
}

/// The first byte of escaped `s` that is not part of valid UTF-8: its offset in `s` (of the
/// code point standing for it) and its value.
pub fn first_invalid(s: &str) -> Option<(usize, u8)> {
    let mut it = units_indexed(s);
    it.find_map(|(i, u)| match u {
        Unit::Byte(b) => Some((i, b)),
        Unit::Char(_) => None,
    })
}

/// One unit of an escaped string as Go reads bytes: a character, or a byte that is not part
/// of valid UTF-8.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    Char(char),
    Byte(u8),
}

impl Unit {
    /// The character pattern matchers compare: the character itself, or for a stray byte
    /// the code point standing for it (so a stray byte matches only the same stray byte,
    /// or a real character of the escape range, which the patterns of a Dockerfile never
    /// hold).
    pub fn as_char(self) -> char {
        match self {
            Unit::Char(c) => c,
            Unit::Byte(b) => escape_char(b),
        }
    }
}

/// The units of escaped `s` (see [`Unit`]), for matching: `?` in a pattern matches one.
pub fn units(s: &str) -> impl Iterator<Item = Unit> + '_ {
    units_indexed(s).map(|(_, u)| u)
}

/// [`units`] with the offset in `s` where each unit starts.
fn units_indexed(s: &str) -> impl Iterator<Item = (usize, Unit)> + '_ {
    let mut chars = s.char_indices().peekable();
    std::iter::from_fn(move || {
        let (i, c) = chars.next()?;
        let Some(lead) = escaped_byte(c) else {
            return Some((i, Unit::Char(c)));
        };
        let len = match lead {
            0xC2..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF4 => 4,
            _ => return Some((i, Unit::Byte(lead))),
        };
        // Only peeked code points are consumed, and only when they complete a character.
        let mut buf = [lead, 0, 0, 0];
        let mut ahead = chars.clone();
        for slot in buf.iter_mut().take(len).skip(1) {
            match ahead.next().and_then(|(_, c)| escaped_byte(c)) {
                Some(b) => *slot = b,
                None => return Some((i, Unit::Byte(lead))),
            }
        }
        match std::str::from_utf8(buf.get(..len).unwrap_or_default())
            .ok()
            .and_then(|t| t.chars().next())
        {
            Some(real) => {
                chars = ahead;
                Some((i, Unit::Char(real)))
            }
            None => Some((i, Unit::Byte(lead))),
        }
    })
}

/// `bytes` as text for people, as Go's `encoding/json` writes them: valid UTF-8 unchanged,
/// each byte that is not part of it as U+FFFD.
pub fn lossy(bytes: &[u8]) -> Cow<'_, str> {
    if let Ok(s) = std::str::from_utf8(bytes) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(bytes.len() + 8);
    let mut rest = bytes;
    loop {
        match std::str::from_utf8(rest) {
            Ok(s) => {
                out.push_str(s);
                break;
            }
            Err(e) => {
                let (valid, after) = rest.split_at(e.valid_up_to());
                out.push_str(std::str::from_utf8(valid).unwrap_or_default());
                let n = e.error_len().unwrap_or(after.len());
                for _ in 0..n {
                    out.push(char::REPLACEMENT_CHARACTER);
                }
                rest = after.get(n..).unwrap_or_default();
            }
        }
    }
    Cow::Owned(out)
}

/// Escaped `s` as text for people ([`lossy`] of the bytes it stands for).
pub fn escaped_lossy(s: &str) -> Cow<'_, str> {
    match unescape(s) {
        Cow::Borrowed(_) => Cow::Borrowed(s),
        Cow::Owned(b) => Cow::Owned(lossy(&b).into_owned()),
    }
}

/// Owned bytes that are usually UTF-8 text (see the module docs for its JSON form).
#[derive(Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ByteString(Vec<u8>);

impl ByteString {
    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The bytes, owned.
    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }

    /// The text, when the bytes are UTF-8.
    pub fn to_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }

    /// Whether the bytes are UTF-8.
    pub fn is_utf8(&self) -> bool {
        self.to_str().is_some()
    }

    /// The bytes as text for people (see [`lossy`]): never for anything but display.
    pub fn lossy(&self) -> Cow<'_, str> {
        lossy(&self.0)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Appends text.
    pub fn push_str(&mut self, s: &str) {
        self.0.extend_from_slice(s.as_bytes());
    }

    /// Appends bytes.
    pub fn push_bytes(&mut self, b: &[u8]) {
        self.0.extend_from_slice(b);
    }
}

impl From<Vec<u8>> for ByteString {
    fn from(b: Vec<u8>) -> Self {
        ByteString(b)
    }
}

impl From<&[u8]> for ByteString {
    fn from(b: &[u8]) -> Self {
        ByteString(b.to_vec())
    }
}

impl From<String> for ByteString {
    fn from(s: String) -> Self {
        ByteString(s.into_bytes())
    }
}

impl From<&str> for ByteString {
    fn from(s: &str) -> Self {
        ByteString(s.as_bytes().to_vec())
    }
}

impl PartialEq<str> for ByteString {
    fn eq(&self, other: &str) -> bool {
        self.0 == other.as_bytes()
    }
}

impl PartialEq<&str> for ByteString {
    fn eq(&self, other: &&str) -> bool {
        self.0 == other.as_bytes()
    }
}

impl fmt::Debug for ByteString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.to_str() {
            Some(s) => fmt::Debug::fmt(s, f),
            None => write!(f, "b\"{}\"", self.0.escape_ascii()),
        }
    }
}

impl Serialize for ByteString {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.to_str() {
            Some(s) => serializer.serialize_str(s),
            None => serializer.serialize_bytes(&self.0),
        }
    }
}

impl<'de> Deserialize<'de> for ByteString {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ByteStringVisitor)
    }
}

struct ByteStringVisitor;

impl<'de> Visitor<'de> for ByteStringVisitor {
    type Value = ByteString;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string or an array of bytes")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<ByteString, E> {
        Ok(ByteString::from(v))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<ByteString, E> {
        Ok(ByteString::from(v))
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<ByteString, E> {
        Ok(ByteString::from(v))
    }

    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<ByteString, E> {
        Ok(ByteString(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ByteString, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(b) = seq.next_element::<u8>()? {
            out.push(b);
        }
        Ok(ByteString(out))
    }
}

#[cfg(test)]
mod tests;
