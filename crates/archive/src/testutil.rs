//! Helpers for tests of other crates (feature `test-util`), so that no other crate needs tar or
//! a compressor of its own: [`TarBuilder`] writes tars entry by entry with any name, type and
//! header format (hostile ones included: nothing is validated), [`compress`] compresses in
//! every format rbuild reads, and [`list`] reads a tar (compressed or not) back as it is.

use std::io::{self, Read, Write};
use std::path::Path;

use crate::decode::decompress;
use crate::sniff::ArchiveFormat;

/// The header layout an entry is written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderFormat {
    /// POSIX ustar; names over 100 bytes go into a PAX `path` record.
    Ustar,
    /// GNU; names over 100 bytes go into a `././@LongLink` entry.
    Gnu,
    /// The old (v7) header: no magic, no owner names, no device numbers.
    V7,
}

/// One entry to write.
#[derive(Clone, Debug)]
pub struct TestEntry {
    pub name: Vec<u8>,
    /// The type flag byte (`b'0'` file, `b'5'` directory, …).
    pub flag: u8,
    pub link: Vec<u8>,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
    pub dev: (u32, u32),
    pub data: Vec<u8>,
    /// The size field, when it should not be the data's length.
    pub size: Option<u64>,
    /// Extra PAX records written before the entry.
    pub pax: Vec<(String, Vec<u8>)>,
    pub format: HeaderFormat,
}

impl TestEntry {
    fn new(name: &[u8], flag: u8, mode: u32) -> TestEntry {
        TestEntry {
            name: name.to_vec(),
            flag,
            link: Vec::new(),
            mode,
            uid: 0,
            gid: 0,
            mtime: 0,
            dev: (0, 0),
            data: Vec::new(),
            size: None,
            pax: Vec::new(),
            format: HeaderFormat::Ustar,
        }
    }

    /// A regular file (`0644`).
    pub fn file(name: impl AsRef<[u8]>, data: impl AsRef<[u8]>) -> TestEntry {
        let mut e = TestEntry::new(name.as_ref(), b'0', 0o644);
        e.data = data.as_ref().to_vec();
        e
    }

    /// A directory (`0755`).
    pub fn dir(name: impl AsRef<[u8]>) -> TestEntry {
        TestEntry::new(name.as_ref(), b'5', 0o755)
    }

    /// A symbolic link (`0777`).
    pub fn symlink(name: impl AsRef<[u8]>, target: impl AsRef<[u8]>) -> TestEntry {
        let mut e = TestEntry::new(name.as_ref(), b'2', 0o777);
        e.link = target.as_ref().to_vec();
        e
    }

    /// A hard link to an earlier entry.
    pub fn hardlink(name: impl AsRef<[u8]>, target: impl AsRef<[u8]>) -> TestEntry {
        let mut e = TestEntry::new(name.as_ref(), b'1', 0o644);
        e.link = target.as_ref().to_vec();
        e
    }

    /// A character device.
    pub fn char_device(name: impl AsRef<[u8]>, major: u32, minor: u32) -> TestEntry {
        let mut e = TestEntry::new(name.as_ref(), b'3', 0o666);
        e.dev = (major, minor);
        e
    }

    /// A FIFO.
    pub fn fifo(name: impl AsRef<[u8]>) -> TestEntry {
        TestEntry::new(name.as_ref(), b'6', 0o644)
    }

    pub fn mode(mut self, mode: u32) -> TestEntry {
        self.mode = mode;
        self
    }

    pub fn owner(mut self, uid: u64, gid: u64) -> TestEntry {
        self.uid = uid;
        self.gid = gid;
        self
    }

    pub fn mtime(mut self, mtime: u64) -> TestEntry {
        self.mtime = mtime;
        self
    }

    pub fn flag(mut self, flag: u8) -> TestEntry {
        self.flag = flag;
        self
    }

    pub fn size(mut self, size: u64) -> TestEntry {
        self.size = Some(size);
        self
    }

    pub fn pax(mut self, key: &str, value: impl AsRef<[u8]>) -> TestEntry {
        self.pax.push((key.to_string(), value.as_ref().to_vec()));
        self
    }

    pub fn format(mut self, format: HeaderFormat) -> TestEntry {
        self.format = format;
        self
    }
}

/// Writes tars entry by entry.
#[derive(Debug, Default)]
pub struct TarBuilder {
    out: Vec<u8>,
}

/// Writes `value` as zero-padded octal filling `field` but its last byte (NUL).
fn octal(field: &mut [u8], value: u64) {
    let digits = field.len() - 1;
    let text = format!("{value:0digits$o}");
    let bytes = text.as_bytes();
    let bytes = &bytes[bytes.len().saturating_sub(digits)..];
    field[..bytes.len()].copy_from_slice(bytes);
}

fn put(field: &mut [u8], bytes: &[u8]) {
    let n = bytes.len().min(field.len());
    field[..n].copy_from_slice(&bytes[..n]);
}

fn pax_record(out: &mut Vec<u8>, key: &str, value: &[u8]) {
    let base = key.len() + value.len() + 3;
    let mut len = base + 1;
    while base + len.to_string().len() != len {
        len = base + len.to_string().len();
    }
    out.extend_from_slice(format!("{len} {key}=").as_bytes());
    out.extend_from_slice(value);
    out.push(b'\n');
}

impl TarBuilder {
    pub fn new() -> TarBuilder {
        TarBuilder::default()
    }

    fn block(&mut self, e: &TestEntry, name: &[u8], flag: u8, link: &[u8], size: u64) {
        let mut h = [0u8; 512];
        put(&mut h[..100], name);
        octal(&mut h[100..108], u64::from(e.mode));
        octal(&mut h[108..116], e.uid);
        octal(&mut h[116..124], e.gid);
        octal(&mut h[124..136], size);
        octal(&mut h[136..148], e.mtime);
        h[156] = flag;
        put(&mut h[157..257], link);
        match e.format {
            HeaderFormat::Ustar => {
                h[257..263].copy_from_slice(b"ustar\0");
                h[263..265].copy_from_slice(b"00");
            }
            HeaderFormat::Gnu => h[257..265].copy_from_slice(b"ustar  \0"),
            HeaderFormat::V7 => {}
        }
        if e.format != HeaderFormat::V7 {
            octal(&mut h[329..337], u64::from(e.dev.0));
            octal(&mut h[337..345], u64::from(e.dev.1));
        }
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        octal(&mut h[148..155], u64::from(sum));
        self.out.extend_from_slice(&h);
    }

    fn data(&mut self, data: &[u8]) {
        self.out.extend_from_slice(data);
        let pad = (512 - data.len() % 512) % 512;
        self.out.resize(self.out.len() + pad, 0);
    }

    /// Appends one entry (with the PAX or GNU headers its long names need).
    pub fn add(&mut self, e: TestEntry) -> &mut TarBuilder {
        let mut pax = Vec::new();
        for (k, v) in &e.pax {
            pax_record(&mut pax, k, v);
        }
        let long_name = e.name.len() > 100;
        let long_link = e.link.len() > 100;
        match e.format {
            HeaderFormat::Gnu => {
                for (long, flag, value) in [(long_name, b'L', &e.name), (long_link, b'K', &e.link)]
                {
                    if long {
                        let mut value = value.clone();
                        value.push(0);
                        let len = value.len() as u64;
                        self.block(&e, b"././@LongLink", flag, b"", len);
                        self.data(&value);
                    }
                }
            }
            _ => {
                if long_name {
                    pax_record(&mut pax, "path", &e.name);
                }
                if long_link {
                    pax_record(&mut pax, "linkpath", &e.link);
                }
            }
        }
        if !pax.is_empty() {
            let len = pax.len() as u64;
            self.block(&e, b"PaxHeaders/entry", b'x', b"", len);
            self.data(&pax);
        }
        let size = e.size.unwrap_or(e.data.len() as u64);
        self.block(&e, &e.name, e.flag, &e.link, size);
        self.data(&e.data);
        self
    }

    /// Appends one entry, by value.
    pub fn with(mut self, e: TestEntry) -> TarBuilder {
        self.add(e);
        self
    }

    /// The tar with its end-of-archive marker.
    pub fn finish(mut self) -> Vec<u8> {
        self.out.extend_from_slice(&[0u8; 1024]);
        self.out
    }

    /// The entries without an end-of-archive marker.
    pub fn unterminated(self) -> Vec<u8> {
        self.out
    }
}

/// `data` compressed in `format` (gzip, bzip2 and zstd at their default levels, xz preset 3;
/// `Tar` copies).
pub fn compress(data: &[u8], format: ArchiveFormat) -> io::Result<Vec<u8>> {
    match format {
        ArchiveFormat::Tar => Ok(data.to_vec()),
        ArchiveFormat::TarGzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(data)?;
            e.finish()
        }
        ArchiveFormat::TarBzip2 => {
            let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::default());
            e.write_all(data)?;
            e.finish()
        }
        ArchiveFormat::TarXz => {
            let mut e =
                lzma_rust2::XzWriter::new(Vec::new(), lzma_rust2::XzOptions::with_preset(3))?;
            e.write_all(data)?;
            e.finish()
        }
        ArchiveFormat::TarZstd => zstd::encode_all(data, 3),
    }
}

/// `data` gzip-compressed at the fastest level.
pub fn gzip_fast(data: &[u8]) -> io::Result<Vec<u8>> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data)?;
    e.finish()
}

/// One entry of a tar as written (names as they are, nothing sanitized).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    /// The full name (long-name extensions applied).
    pub name: Vec<u8>,
    pub flag: u8,
    pub link: Option<Vec<u8>>,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
    pub data: Vec<u8>,
    /// The owner name field.
    pub uname: Vec<u8>,
    /// The keys of the entry's PAX records.
    pub pax_keys: Vec<String>,
}

impl Listed {
    /// The name as text (lossy).
    pub fn name_lossy(&self) -> String {
        String::from_utf8_lossy(&self.name).into_owned()
    }

    /// The type flag's name (as the tar crate's `EntryType` prints it: `Regular`, `Directory`…).
    pub fn type_name(&self) -> &'static str {
        match self.flag {
            b'0' | b'\0' => "Regular",
            b'1' => "Link",
            b'2' => "Symlink",
            b'3' => "Char",
            b'4' => "Block",
            b'5' => "Directory",
            b'6' => "Fifo",
            b'7' => "Continuous",
            b'x' => "XHeader",
            b'g' => "XGlobalHeader",
            b'L' => "GNULongName",
            b'K' => "GNULongLink",
            b'S' => "GNUSparse",
            _ => "Other",
        }
    }
}

/// Every entry of the tar in `reader` (plain or compressed), with its data.
pub fn list(reader: impl Read) -> io::Result<Vec<Listed>> {
    let mut archive = tar::Archive::new(decompress(reader)?);
    let mut out = Vec::new();
    for entry in archive.entries()? {
        let mut entry = entry?;
        let header = entry.header().clone();
        let mut pax_keys = Vec::new();
        if let Some(exts) = entry.pax_extensions()? {
            for ext in exts {
                pax_keys.push(ext?.key().unwrap_or_default().to_string());
            }
        }
        let mut data = Vec::new();
        entry.read_to_end(&mut data)?;
        out.push(Listed {
            name: entry.path_bytes().into_owned(),
            flag: header.entry_type().as_byte(),
            link: entry.link_name_bytes().map(|l| l.into_owned()),
            mode: header.mode()?,
            uid: header.uid()?,
            gid: header.gid()?,
            mtime: header.mtime()?,
            data,
            uname: header.username_bytes().unwrap_or_default().to_vec(),
            pax_keys,
        });
    }
    Ok(out)
}

/// The names of the tar's entries, as text (lossy).
pub fn names(reader: impl Read) -> io::Result<Vec<String>> {
    Ok(list(reader)?.iter().map(Listed::name_lossy).collect())
}

/// A sink that keeps nothing and checks what the engine promises every sink (it panics on a
/// broken promise: it is for tests and fuzzing): names and hard-link targets sanitized (no
/// empty, `.` or `..` component, no leading or trailing `/`, no NUL, never the root), symlink
/// targets present without NUL, modes within `0o7777`, and exactly `size` bytes of data for
/// a file whose data could be read.
#[derive(Debug, Default)]
pub struct CheckingSink {
    /// Entries handed over.
    pub entries: usize,
    /// Data bytes read.
    pub bytes: u64,
}

fn check_path(path: &crate::EntryPath) {
    let b = path.as_bytes();
    assert!(!b.is_empty(), "the root handed to a sink");
    assert!(!b.contains(&0), "NUL in {b:?}");
    for part in b.split(|&c| c == b'/') {
        assert!(
            !part.is_empty() && part != b"." && part != b"..",
            "unsanitized {b:?}"
        );
    }
}

impl crate::Sink for CheckingSink {
    type Error = io::Error;

    fn entry(&mut self, e: &crate::Entry, contents: &mut dyn Read) -> io::Result<()> {
        check_path(&e.path);
        assert!(e.mode <= 0o7777, "mode {:o}", e.mode);
        match &e.kind {
            crate::EntryKind::HardLink { target } => check_path(target),
            crate::EntryKind::Symlink { target } => {
                assert!(!target.is_empty() && !target.contains(&0), "{target:?}");
            }
            crate::EntryKind::File => {}
            _ => assert_eq!(e.size, 0, "data for a {:?}", e.kind),
        }
        self.entries += 1;
        let n = io::copy(contents, &mut io::sink())?;
        assert_eq!(n, e.size, "data of {:?}", e.name);
        self.bytes += n;
        Ok(())
    }
}

/// xorshift64*: deterministic pseudo-random numbers without a dependency (generated inputs,
/// benchmark filler). The state must not be 0.
#[derive(Clone, Debug)]
pub struct XorShift(pub u64);

impl XorShift {
    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// Sets the access and modification times of `path` (not following a symlink) to `secs`.
pub fn set_mtime(path: &Path, secs: i64) -> io::Result<()> {
    let t = nix::sys::time::TimeSpec::new(secs, 0);
    let nofollow = nix::sys::stat::UtimensatFlags::NoFollowSymlink;
    nix::sys::stat::utimensat(None, path, &t, &t, nofollow)?;
    Ok(())
}
