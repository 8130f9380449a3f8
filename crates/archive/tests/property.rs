//! Property test of the extractor: thousands of generated tars — hostile names (`..`, `/`,
//! NUL, bytes that are not UTF-8, long names through PAX and GNU headers), every type flag,
//! PAX records with garbage, links leading out — then mutated (bytes flipped, cut, spliced,
//! compressed and corrupted) and extracted under both name policies. The engine must never
//! panic, and must keep its promises to sinks ([`CheckingSink`]); one case in ten goes into a
//! [`DirSink`], which must write nothing outside its directory.
//!
//! `RBUILD_ARCHIVE_CASES=N` runs N cases (default 4000); `RBUILD_ARCHIVE_SEED` picks the seed.

use std::fs;
use std::path::Path;

use rbuild_archive::testutil::{
    compress, CheckingSink, HeaderFormat, TarBuilder, TestEntry, XorShift,
};
use rbuild_archive::{decompress, extract, ArchiveFormat, DirSink, ExtractError, NamePolicy};

/// Choices from [`XorShift`]: deterministic, no dependency.
struct Rng(XorShift);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0.next_u64()
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

const PARTS: &[&[u8]] = &[
    b"a",
    b"b",
    b"dir",
    b"..",
    b".",
    b"",
    b"\xff\xfe",
    b".wh.x",
    b".wh..wh..opq",
    b"out",
    b"c\0d",
    b"l",
];

const TAME_PARTS: &[&[u8]] = &[b"a", b"b", b"dir", b"\xff\xfe", b"l", b"f"];

/// A name that needs no sanitizing but the usual (`./`).
fn tame_name(rng: &mut Rng) -> Vec<u8> {
    let mut out = Vec::new();
    if rng.chance(30) {
        out.extend_from_slice(b"./");
    }
    for i in 0..=rng.below(3) {
        if i > 0 {
            out.push(b'/');
        }
        let part = *rng.pick(TAME_PARTS);
        out.extend_from_slice(part);
    }
    out
}

fn name(rng: &mut Rng) -> Vec<u8> {
    let mut out = Vec::new();
    match rng.below(4) {
        0 => out.push(b'/'),
        1 => out.extend_from_slice(b"./"),
        _ => {}
    }
    for i in 0..=rng.below(4) {
        if i > 0 {
            out.push(b'/');
        }
        if rng.chance(5) {
            out.extend(std::iter::repeat_n(b'n', 60 + rng.below(150)));
        } else {
            let part = *rng.pick(PARTS);
            out.extend_from_slice(part);
        }
    }
    if rng.chance(10) {
        out.push(b'/');
    }
    out
}

const FLAGS: &[u8] = b"0\x005217346gSVMDxLKZ";

/// A valid entry: a file, directory, symlink, hard link or FIFO with a tame name.
fn tame_entry(rng: &mut Rng) -> TestEntry {
    let name = tame_name(rng);
    match rng.below(6) {
        0 => TestEntry::dir(name),
        1 => TestEntry::symlink(name, tame_name(rng)),
        2 => TestEntry::hardlink(name, tame_name(rng)),
        3 => TestEntry::fifo(name),
        _ => TestEntry::file(name, vec![7u8; rng.below(1500)]),
    }
    .format(*rng.pick(&[HeaderFormat::Ustar, HeaderFormat::Gnu]))
}

fn entry(rng: &mut Rng, canary: &[u8]) -> TestEntry {
    let flag = *rng.pick(FLAGS);
    let size = if rng.chance(50) { rng.below(1500) } else { 0 };
    let data: Vec<u8> = (0..size).map(|i| (i as u8).wrapping_mul(31)).collect();
    let mut e = TestEntry::file(name(rng), data)
        .flag(flag)
        .mode(rng.next() as u32 & 0o7777)
        .owner(rng.next() % 70_000, rng.next() % 70_000)
        .mtime(rng.next() % 2_000_000_000)
        .format(*rng.pick(&[HeaderFormat::Ustar, HeaderFormat::Gnu, HeaderFormat::V7]));
    e.link = match rng.below(6) {
        0 => Vec::new(),
        1 => b"/".to_vec(),
        2 => b"../../out".to_vec(),
        3 => canary.to_vec(),
        _ => name(rng),
    };
    if rng.chance(20) {
        e.dev = (rng.next() as u32, rng.next() as u32);
    }
    for _ in 0..rng.below(3) {
        let key = *rng.pick(&["uid", "gid", "mtime", "SCHILY.xattr.user.x", "path", "size"]);
        let values: [&[u8]; 6] = [
            b"12",
            b"-1",
            b"9999999999999999999999",
            b"1.5",
            b"",
            b"a\0b",
        ];
        let value = *rng.pick(&values);
        e = e.pax(key, value);
    }
    if rng.chance(5) {
        e = e.size(rng.next() % 4096);
    }
    e
}

fn mutate(rng: &mut Rng, mut bytes: Vec<u8>) -> Vec<u8> {
    match rng.below(10) {
        0..=4 => bytes,
        5 => {
            for _ in 0..=rng.below(8) {
                if !bytes.is_empty() {
                    let i = rng.below(bytes.len());
                    bytes[i] ^= 1 << rng.below(8);
                }
            }
            bytes
        }
        6 => {
            let cut = rng.below(bytes.len() + 1);
            bytes.truncate(cut);
            bytes
        }
        7 => {
            let at = rng.below(bytes.len() + 1);
            let junk: Vec<u8> = (0..rng.below(1024)).map(|_| rng.next() as u8).collect();
            bytes.splice(at..at, junk);
            bytes
        }
        8 => {
            // A header's bytes overwritten by another block.
            if bytes.len() >= 1024 {
                let from = rng.below(bytes.len() / 512) * 512;
                let to = rng.below(bytes.len() / 512) * 512;
                let block = bytes[from..from + 512].to_vec();
                bytes[to..to + 512].copy_from_slice(&block);
            }
            bytes
        }
        _ => {
            let format = *rng.pick(&[ArchiveFormat::TarGzip, ArchiveFormat::TarZstd]);
            let mut packed = compress(&bytes, format).expect("compress");
            if rng.chance(50) && !packed.is_empty() {
                let i = rng.below(packed.len());
                packed[i] ^= 0x5a;
            }
            packed
        }
    }
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Every path below `dir`.
fn tree(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).expect("read dir") {
        let p = e.expect("entry").path();
        out.push(p.clone());
        if fs::symlink_metadata(&p).expect("stat").is_dir() {
            out.extend(tree(&p));
        }
    }
    out
}

#[test]
fn no_input_breaks_the_extractor() {
    let cases = env_number("RBUILD_ARCHIVE_CASES", 4000);
    let mut rng = Rng(XorShift(
        env_number("RBUILD_ARCHIVE_SEED", 0x5eed_1234_abcd_0001) | 1,
    ));
    let t = tempfile::tempdir().expect("tempdir");
    let canary = t.path().join("outside");
    fs::create_dir(&canary).expect("canary");
    let canary_bytes = canary.as_os_str().as_encoded_bytes().to_vec();
    let (mut ok, mut refused, mut entries, mut dir_cases) = (0u64, 0u64, 0usize, 0u64);
    for case in 0..cases {
        let mut b = TarBuilder::new();
        let hostile = rng.below(100);
        for _ in 0..=rng.below(8) {
            b.add(if rng.below(100) < hostile {
                entry(&mut rng, &canary_bytes)
            } else {
                tame_entry(&mut rng)
            });
        }
        let tar = if rng.chance(90) {
            b.finish()
        } else {
            b.unterminated()
        };
        let input = mutate(&mut rng, tar);
        let policy = *rng.pick(&[NamePolicy::Untar, NamePolicy::Strict]);
        let Ok(stream) = decompress(&input[..]) else {
            refused += 1;
            continue;
        };
        let mut sink = CheckingSink::default();
        match extract(stream, policy, &mut sink) {
            Ok(_) => ok += 1,
            Err(ExtractError::Archive(_)) | Err(ExtractError::Sink(_)) => refused += 1,
        }
        entries += sink.entries;
        if case % 10 == 0 {
            dir_cases += 1;
            let dest = t.path().join(format!("dest{case}"));
            fs::create_dir(&dest).expect("dest");
            let mut sink = DirSink::new(&dest, false).expect("sink");
            if let Ok(stream) = decompress(&input[..]) {
                let _ = extract(stream, policy, &mut sink);
            }
            assert!(
                tree(&canary).is_empty(),
                "case {case} wrote outside its directory"
            );
            let mut top: Vec<_> = fs::read_dir(t.path())
                .expect("read")
                .map(|e| e.expect("entry").file_name())
                .collect();
            top.sort();
            assert_eq!(
                top,
                vec![
                    std::ffi::OsString::from(format!("dest{case}")),
                    "outside".into()
                ]
            );
            fs::remove_dir_all(&dest).expect("clean");
        }
    }
    println!(
        "{cases} cases: {ok} extracted, {refused} refused, {entries} entries handed over, \
         {dir_cases} into a directory"
    );
    assert!(
        ok > cases / 20 && refused > cases / 20,
        "the generator covers both outcomes"
    );
}
