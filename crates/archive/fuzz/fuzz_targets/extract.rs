//! Fuzzes the one extractor: any bytes, plain or through the compression sniffer and its
//! decoders, extracted under either name policy into a sink that checks every promise the
//! engine makes to sinks (`CheckingSink`: sanitized names and hard-link targets, data of
//! exactly the announced size), and a quarter of the inputs also into the confined
//! directory sink, which must write nothing outside its directory. Any panic is a bug.
//!
//! The first byte picks: bit 0 the name policy (Untar / Strict), bit 1 plain or sniffed and
//! decoded, bits 2–3 both set: also a `DirSink`.
#![no_main]

use std::io::Read;
use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use rbuild_archive::testutil::CheckingSink;
use rbuild_archive::{decompress, drain, extract, DirSink, NamePolicy};

/// A directory for `DirSink` runs, and a sibling that must stay empty.
fn scratch() -> &'static (tempfile::TempDir, PathBuf) {
    static DIR: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    DIR.get_or_init(|| {
        let t = tempfile::tempdir().expect("tempdir");
        let canary = t.path().join("outside");
        std::fs::create_dir(&canary).expect("canary");
        (t, canary)
    })
}

fn stream<'a>(plain: bool, data: &'a [u8]) -> Option<Box<dyn Read + 'a>> {
    if plain {
        Some(Box::new(data))
    } else {
        decompress(data).ok()
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let policy = if mode & 1 == 0 {
        NamePolicy::Untar
    } else {
        NamePolicy::Strict
    };
    let plain = mode & 2 == 0;
    if let Some(input) = stream(plain, rest) {
        let mut sink = CheckingSink::default();
        if let Ok(done) = extract(input, policy, &mut sink) {
            let _ = drain(done.rest);
        }
    }
    if mode & 0x0c == 0x0c {
        let (t, canary) = scratch();
        let dest = t.path().join("dest");
        std::fs::create_dir(&dest).expect("dest");
        if let (Some(input), Ok(mut sink)) = (stream(plain, rest), DirSink::new(&dest, false)) {
            let _ = extract(input, policy, &mut sink);
        }
        let outside = std::fs::read_dir(canary).expect("canary").count();
        assert_eq!(outside, 0, "written outside the destination");
        std::fs::remove_dir_all(&dest).expect("clean");
    }
});
