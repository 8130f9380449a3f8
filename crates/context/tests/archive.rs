//! Contexts from tar archives (plain, gzip, bzip2, xz, zstd), as `rbuild - < ctx.tar.gz` uses them.

mod common;

use rbuild_archive::testutil::{compress, HeaderFormat, TarBuilder, TestEntry};
use rbuild_context::{detect_archive, ArchiveFormat, BuildContext, ContextError, EntryKind};
use rbuild_test_support::privileges;

use common::rels;

fn sample_tar() -> Vec<u8> {
    let mut b = TarBuilder::new();
    let mut add = |path: &str, data: &[u8], mode: u32| {
        b.add(
            TestEntry::file(path, data)
                .mode(mode)
                .format(HeaderFormat::Gnu),
        );
    };
    add("Dockerfile", b"FROM scratch\nCOPY . /\n", 0o644);
    add("app/run.sh", b"#!/bin/sh\necho hi\n", 0o755);
    add("app/notes.txt", b"notes", 0o644);
    add("secret.key", b"k", 0o600);
    add(".dockerignore", b"*.key\n", 0o644);
    b.finish()
}

#[test]
fn plain_gzip_and_zstd_archives_give_the_same_context() {
    let raw = sample_tar();
    let gz = compress(&raw, ArchiveFormat::TarGzip).expect("gzip");
    let zst = compress(&raw, ArchiveFormat::TarZstd).expect("zstd");

    assert_eq!(detect_archive(&raw), Some(ArchiveFormat::Tar));
    assert_eq!(detect_archive(&gz), Some(ArchiveFormat::TarGzip));
    assert_eq!(detect_archive(&zst), Some(ArchiveFormat::TarZstd));

    let plain =
        BuildContext::from_tar(raw.as_slice(), Some("Dockerfile"), &privileges()).expect("tar");
    assert_eq!(
        rels(&plain),
        vec![
            ".dockerignore",
            "Dockerfile",
            "app",
            "app/notes.txt",
            "app/run.sh"
        ],
        "the archive's own .dockerignore applies"
    );
    let run = plain.select("app/run.sh").expect("select");
    assert_eq!(run.roots[0].kind, EntryKind::File);
    assert_eq!(run.roots[0].mode & 0o777, 0o755);
    assert!(run.roots[0].host_path.is_file());

    for bytes in [&gz, &zst] {
        let ctx =
            BuildContext::from_tar(bytes.as_slice(), None, &privileges()).expect("compressed tar");
        assert_eq!(rels(&ctx), rels(&plain));
        assert_eq!(
            ctx.select("app").expect("app").digest,
            plain.select("app").expect("app").digest
        );
        assert_eq!(
            ctx.list().expect("list").len(),
            plain.list().expect("list").len()
        );
    }
}

#[test]
fn unpacked_dir_lives_as_long_as_the_context() {
    let ctx = BuildContext::from_tar(sample_tar().as_slice(), None, &privileges()).expect("tar");
    let root = ctx.root().expect("root").to_path_buf();
    assert!(root.join("app/run.sh").is_file());
    drop(ctx);
    assert!(
        !root.exists(),
        "temporary directory removed with the context"
    );
}

#[test]
fn bzip2_and_xz_archives_give_the_same_context() {
    let raw = sample_tar();
    let bz = compress(&raw, ArchiveFormat::TarBzip2).expect("bzip2");
    let xz = compress(&raw, ArchiveFormat::TarXz).expect("xz");
    assert_eq!(detect_archive(&bz), Some(ArchiveFormat::TarBzip2));
    assert_eq!(detect_archive(&xz), Some(ArchiveFormat::TarXz));
    let plain =
        BuildContext::from_tar(raw.as_slice(), Some("Dockerfile"), &privileges()).expect("tar");
    for bytes in [&bz, &xz] {
        let ctx = BuildContext::from_tar(bytes.as_slice(), Some("Dockerfile"), &privileges())
            .expect("archive");
        assert_eq!(rels(&ctx), rels(&plain));
        assert_eq!(
            ctx.digest().expect("digest"),
            plain.digest().expect("digest")
        );
    }
}

fn compress_all(raw: &[u8]) -> Vec<(&'static str, Vec<u8>)> {
    [
        ArchiveFormat::Tar,
        ArchiveFormat::TarGzip,
        ArchiveFormat::TarBzip2,
        ArchiveFormat::TarXz,
        ArchiveFormat::TarZstd,
    ]
    .into_iter()
    .map(|f| (f.name(), compress(raw, f).expect("compress")))
    .collect()
}

#[test]
fn truncated_archives_are_rejected_in_every_format() {
    let raw = sample_tar();
    for (format, bytes) in compress_all(&raw) {
        // Plain tar: also exactly at a header boundary, before the end-of-archive marker.
        // Cut inside entries, and (compressed) just before the end: the decoder's trailer.
        // A plain tar cut inside its trailing zero blocks still holds every entry intact.
        let mut cuts = vec![bytes.len() * 2 / 3, bytes.len() / 2];
        if format == "tar" {
            cuts.push(1536);
        } else {
            cuts.push(bytes.len() - 1);
        }
        for cut in cuts {
            let err = BuildContext::from_tar(&bytes[..cut], None, &privileges())
                .expect_err(&format!("{format} cut at {cut}"));
            assert!(
                matches!(err, ContextError::ArchiveTruncated { format: f, .. } if f == format),
                "{format} cut at {cut}: {err:?}"
            );
            assert!(err.to_string().contains("truncated"), "{err}");
        }
    }
}

/// A tar with one entry whose raw name (not checked by the builder) is `name`: a one-byte
/// file, or a hard link to `link`.
fn tar_with_raw_name(name: &str, link: Option<&str>) -> Vec<u8> {
    let entry = match link {
        Some(link) => TestEntry::hardlink(name, link),
        None => TestEntry::file(name, "x"),
    };
    TarBuilder::new()
        .with(entry.format(HeaderFormat::Gnu))
        .finish()
}

#[test]
fn entries_escaping_the_root_are_rejected() {
    for (name, link) in [
        ("../evil.txt", None),
        ("a/../../evil.txt", None),
        ("link", Some("../../etc/passwd")),
    ] {
        let err = BuildContext::from_tar(
            tar_with_raw_name(name, link).as_slice(),
            None,
            &privileges(),
        )
        .expect_err(name);
        assert!(
            matches!(&err, ContextError::ArchiveEntryEscapes { entry, .. } if entry == name),
            "{name}: {err:?}"
        );
    }
    // A symlink leading out, then a file written through it.
    let bytes = TarBuilder::new()
        .with(TestEntry::symlink("out", "/tmp").format(HeaderFormat::Gnu))
        .with(TestEntry::file("out/rbuild-escape-test", "x").format(HeaderFormat::Gnu))
        .finish();
    let err =
        BuildContext::from_tar(bytes.as_slice(), None, &privileges()).expect_err("through symlink");
    assert!(
        matches!(err, ContextError::ArchiveEntryEscapes { .. }),
        "{err:?}"
    );
    assert!(!std::path::Path::new("/tmp/rbuild-escape-test").exists());
    // A leading `/` is dropped, as Docker does: that entry stays inside.
    let ok = tar_with_raw_name("/inside.txt", None);
    let ctx = BuildContext::from_tar(ok.as_slice(), None, &privileges()).expect("leading slash");
    assert_eq!(rels(&ctx), vec!["inside.txt"]);
}

#[test]
fn a_missing_dockerfile_is_named() {
    let err = BuildContext::from_tar(
        sample_tar().as_slice(),
        Some("build/Dockerfile.prod"),
        &privileges(),
    )
    .expect_err("missing");
    assert!(
        matches!(&err, ContextError::MissingDockerfile { name, .. } if name == "build/Dockerfile.prod"),
        "{err:?}"
    );
    assert!(err.to_string().contains("build/Dockerfile.prod"), "{err}");
}

#[test]
fn garbage_is_an_archive_error() {
    let mut bytes = vec![0x1f, 0x8b];
    bytes.extend_from_slice(b"not really gzip");
    let err = BuildContext::from_tar(bytes.as_slice(), None, &privileges()).expect_err("bad gzip");
    assert!(
        matches!(
            err,
            ContextError::Archive { .. } | ContextError::ArchiveTruncated { .. }
        ),
        "{err:?}"
    );
}
