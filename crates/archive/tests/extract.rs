//! The extraction engine: what a sink is handed (names, kinds, metadata, data), what is
//! refused before any sink sees it, how a cut stream ends, and the confined directory sink.

use std::fs;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use rbuild_archive::testutil::{HeaderFormat, TarBuilder, TestEntry};
use rbuild_archive::{
    extract, ArchiveError, DirSink, DirSinkError, Ended, Entry, EntryKind, ExtractError, NameError,
    NamePolicy, Sink,
};

/// Records every entry with its data.
#[derive(Default)]
struct Recorder {
    seen: Vec<(Entry, Vec<u8>)>,
    finished: bool,
}

impl Sink for Recorder {
    type Error = std::io::Error;

    fn entry(&mut self, e: &Entry, contents: &mut dyn Read) -> std::io::Result<()> {
        let mut data = Vec::new();
        contents.read_to_end(&mut data)?;
        self.seen.push((e.clone(), data));
        Ok(())
    }

    fn finish(&mut self) -> std::io::Result<()> {
        self.finished = true;
        Ok(())
    }
}

fn record(tar: &[u8], policy: NamePolicy) -> Result<(Recorder, Ended), ArchiveError> {
    let mut sink = Recorder::default();
    match extract(tar, policy, &mut sink) {
        Ok(done) => Ok((sink, done.ended)),
        Err(ExtractError::Archive(e)) => Err(e),
        Err(ExtractError::Sink(e)) => panic!("recorder failed: {e}"),
    }
}

fn names(r: &Recorder) -> Vec<Vec<u8>> {
    r.seen
        .iter()
        .map(|(e, _)| e.path.as_bytes().to_vec())
        .collect()
}

/// Sets a header field of the block at `offset` and fixes the checksum.
fn patch(tar: &mut [u8], offset: usize, field: std::ops::Range<usize>, value: &[u8]) {
    let h = &mut tar[offset..offset + 512];
    h[field.clone()].fill(0);
    h[field.start..field.start + value.len()].copy_from_slice(value);
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
}

#[test]
fn long_names_pax_records_and_kinds_reach_the_sink() {
    let long = format!("{}/{}", "d".repeat(120), "f".repeat(110));
    let tar = TarBuilder::new()
        .with(TestEntry::dir("./"))
        .with(TestEntry::file(&long, "pax"))
        .with(TestEntry::file(format!("g/{long}"), "gnu").format(HeaderFormat::Gnu))
        .with(
            TestEntry::file("meta", "m")
                .mode(0o4755)
                .owner(1, 2)
                .mtime(5)
                .pax("uid", "3000000")
                .pax("gid", "3000001")
                .pax("mtime", "1600000000.25")
                .pax("SCHILY.xattr.user.b", "2")
                .pax("SCHILY.xattr.user.a", b"\xff"),
        )
        .with(TestEntry::symlink("link", "t".repeat(150)))
        .with(TestEntry::hardlink("hard", "./meta"))
        .with(TestEntry::char_device("null", 1, 3))
        .with(TestEntry::fifo("fifo"))
        .with(TestEntry::file("old/", "").flag(0).format(HeaderFormat::V7))
        .with(TestEntry::file("cont", "c").flag(b'7'))
        .with(TestEntry::file("global", "").flag(b'g'))
        .finish();
    let (r, ended) = record(&tar, NamePolicy::Strict).expect("extract");
    assert_eq!(ended, Ended::Marker);
    assert!(r.finished);
    assert_eq!(
        names(&r),
        vec![
            long.as_bytes().to_vec(),
            format!("g/{long}").into_bytes(),
            b"meta".to_vec(),
            b"link".to_vec(),
            b"hard".to_vec(),
            b"null".to_vec(),
            b"fifo".to_vec(),
            b"old".to_vec(),
            b"cont".to_vec(),
        ],
        "the root and the PAX global header are not handed over"
    );
    let (meta, data) = &r.seen[2];
    assert_eq!(data, b"m");
    assert_eq!(
        (meta.mode, meta.uid, meta.gid, meta.mtime),
        (0o4755, 3_000_000, 3_000_001, 1_600_000_000)
    );
    assert_eq!(
        meta.xattrs,
        vec![
            ("user.a".to_string(), b"\xff".to_vec()),
            ("user.b".to_string(), b"2".to_vec())
        ]
    );
    assert_eq!(
        r.seen[3].0.kind,
        EntryKind::Symlink {
            target: "t".repeat(150).into_bytes()
        }
    );
    assert!(
        matches!(&r.seen[4].0.kind, EntryKind::HardLink { target } if target.as_bytes() == b"meta")
    );
    assert_eq!(
        r.seen[5].0.kind,
        EntryKind::CharDevice { major: 1, minor: 3 }
    );
    assert_eq!(r.seen[6].0.kind, EntryKind::Fifo);
    assert_eq!(r.seen[7].0.kind, EntryKind::Dir, "old-style trailing slash");
    assert_eq!(r.seen[8].0.kind, EntryKind::File);
}

#[test]
fn names_are_sanitized_once_by_policy() {
    let one = |name: &str| TarBuilder::new().with(TestEntry::file(name, "x")).finish();
    let (r, _) = record(&one("/abs/./x//"), NamePolicy::Untar).expect("untar");
    assert_eq!(names(&r), vec![b"abs/x".to_vec()]);
    let (r, _) = record(&one("a/../b"), NamePolicy::Untar).expect("untar");
    assert_eq!(names(&r), vec![b"b".to_vec()]);
    for (name, policy, reason) in [
        ("../x", NamePolicy::Untar, NameError::ClimbsOut),
        ("a/../../x", NamePolicy::Untar, NameError::ClimbsOut),
        ("/abs", NamePolicy::Strict, NameError::Absolute),
        ("a/../b", NamePolicy::Strict, NameError::DotDot),
        ("", NamePolicy::Untar, NameError::Empty),
    ] {
        let err = record(&one(name), policy).map(|_| ()).expect_err(name);
        assert!(
            matches!(&err, ArchiveError::Name { reason: r, .. } if *r == reason),
            "{name}: {err:?}"
        );
    }
    let nul = TarBuilder::new()
        .with(TestEntry::file("x", "x").pax("path", b"a\0b"))
        .finish();
    assert!(matches!(
        record(&nul, NamePolicy::Untar).map(|_| ()),
        Err(ArchiveError::Name {
            reason: NameError::Nul,
            ..
        })
    ));
    for (target, reason) in [("../out", NameError::ClimbsOut), ("./", NameError::Root)] {
        let tar = TarBuilder::new()
            .with(TestEntry::hardlink("h", target))
            .finish();
        let err = record(&tar, NamePolicy::Untar)
            .map(|_| ())
            .expect_err(target);
        assert!(
            matches!(&err, ArchiveError::LinkTarget { reason: r, .. } if *r == reason),
            "{target}: {err:?}"
        );
    }
}

#[test]
fn unsupported_and_broken_entries_are_refused() {
    for flag in [b'S', b'V', b'M', b'D', b'Z'] {
        let mut tar = TarBuilder::new()
            .with(
                TestEntry::file("x", "")
                    .flag(flag)
                    .format(HeaderFormat::Gnu),
            )
            .finish();
        // A GNU sparse file's real size (the tar reader refuses it without one).
        patch(&mut tar, 0, 483..495, b"00000000000");
        let err = record(&tar, NamePolicy::Untar)
            .map(|_| ())
            .expect_err("type");
        assert!(
            matches!(err, ArchiveError::Unsupported { flag: f, .. } if f == char::from(flag)),
            "{err:?}"
        );
    }
    let tar = TarBuilder::new().with(TestEntry::symlink("l", "")).finish();
    assert!(matches!(
        record(&tar, NamePolicy::Untar).map(|_| ()),
        Err(ArchiveError::NoLinkTarget { .. })
    ));
    let mut tar = TarBuilder::new().with(TestEntry::file("x", "x")).finish();
    patch(&mut tar, 0, 100..108, b"07x7\0");
    let err = record(&tar, NamePolicy::Untar)
        .map(|_| ())
        .expect_err("mode");
    assert!(
        matches!(err, ArchiveError::Header { field: "mode", .. }),
        "{err:?}"
    );
    // An empty numeric field is 0, as Go reads it.
    let mut tar = TarBuilder::new()
        .with(TestEntry::file("x", "x").owner(7, 7))
        .finish();
    patch(&mut tar, 0, 108..116, b"");
    let (r, _) = record(&tar, NamePolicy::Untar).expect("empty uid");
    assert_eq!(r.seen[0].0.uid, 0);
}

#[test]
fn a_cut_stream_is_truncated_and_a_missing_marker_is_reported() {
    let tar = TarBuilder::new()
        .with(TestEntry::file("a", vec![1u8; 2000]))
        .with(TestEntry::file("b", "b"))
        .finish();
    // Inside the first file's data, inside the second header, at the end of the entries.
    for cut in [700, 2600] {
        let err = record(&tar[..cut], NamePolicy::Untar)
            .map(|_| ())
            .expect_err("cut");
        assert!(
            matches!(err, ArchiveError::Truncated { .. }),
            "cut at {cut}: {err:?}"
        );
    }
    let (r, ended) = record(&tar[..tar.len() - 1024], NamePolicy::Untar).expect("no marker");
    assert_eq!((names(&r).len(), ended), (2, Ended::Eof));
    // A sink that reads nothing: the engine still notices the cut when it skips the data.
    struct Skipper;
    impl Sink for Skipper {
        type Error = std::convert::Infallible;
        fn entry(&mut self, _: &Entry, _: &mut dyn Read) -> Result<(), Self::Error> {
            Ok(())
        }
    }
    let err = extract(&tar[..700], NamePolicy::Untar, &mut Skipper).expect_err("cut");
    assert!(
        matches!(err, ExtractError::Archive(ArchiveError::Truncated { .. })),
        "{err:?}"
    );
}

fn dir_extract(tar: &[u8], dest: &Path) -> Result<Ended, ExtractError<DirSinkError>> {
    let mut sink = DirSink::new(dest, false).map_err(ExtractError::Sink)?;
    extract(tar, NamePolicy::Untar, &mut sink).map(|done| done.ended)
}

#[test]
fn the_directory_sink_places_entries_and_stays_inside() {
    let t = tempfile::tempdir().expect("tempdir");
    let dest = t.path().join("dest");
    fs::create_dir(&dest).expect("mkdir");
    let tar = TarBuilder::new()
        .with(TestEntry::dir("d/").mode(0o750).mtime(1_600_000_000))
        .with(
            TestEntry::file("d/f", "hi")
                .mode(0o640)
                .mtime(1_500_000_000),
        )
        .with(TestEntry::file("deep/er/g", "g"))
        .with(TestEntry::symlink("l", "d"))
        .with(TestEntry::file("l/through", "inside"))
        .with(TestEntry::hardlink("h", "d/f"))
        .with(TestEntry::fifo("fifo"))
        .with(TestEntry::char_device("null", 1, 3))
        .with(
            TestEntry::file("d/f", "replaced")
                .mode(0o600)
                .mtime(1_500_000_000),
        )
        .finish();
    assert_eq!(dir_extract(&tar, &dest).expect("extract"), Ended::Marker);
    assert_eq!(fs::read(dest.join("d/f")).expect("file"), b"replaced");
    assert_eq!(
        fs::read(dest.join("d/through")).expect("via link"),
        b"inside"
    );
    assert_eq!(
        fs::read(dest.join("deep/er/g")).expect("parents made"),
        b"g"
    );
    assert_eq!(fs::read(dest.join("h")).expect("hard link"), b"hi");
    let d = fs::metadata(dest.join("d")).expect("stat");
    assert_eq!(d.permissions().mode() & 0o7777, 0o750);
    assert_eq!(d.mtime(), 1_600_000_000, "directory times set last");
    let f = fs::metadata(dest.join("d/f")).expect("stat");
    assert_eq!(
        (f.permissions().mode() & 0o7777, f.mtime()),
        (0o600, 1_500_000_000)
    );
    assert!(!dest.join("fifo").exists() && !dest.join("null").exists());

    for (link, what) in [("/", "absolute"), ("../..", "climbing")] {
        let tar = TarBuilder::new()
            .with(TestEntry::symlink("out", link))
            .with(TestEntry::file("out/new/evil", "x"))
            .finish();
        let err = dir_extract(&tar, &dest).expect_err(what);
        assert!(
            matches!(err, ExtractError::Sink(DirSinkError::Escapes { .. })),
            "{what}: {err:?}"
        );
        assert!(!Path::new("/new").exists() && !t.path().join("new").exists());
    }
    let tar = TarBuilder::new()
        .with(TestEntry::dir("x"))
        .with(TestEntry::file("x", "not a dir"))
        .finish();
    let err = dir_extract(&tar, &dest).expect_err("file over a directory");
    assert!(
        matches!(err, ExtractError::Sink(DirSinkError::Io { .. })),
        "{err:?}"
    );
}
