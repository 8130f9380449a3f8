//! Contexts from tar archives (plain, gzip, bzip2, xz, zstd), as `rbuild - < ctx.tar.gz` uses them.

use std::io::Write as _;

use rbuild_context::{detect_archive, ArchiveFormat, BuildContext, ContextError, EntryKind};

fn sample_tar() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |path: &str, data: &[u8], mode: u32| {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        b.append_data(&mut h, path, data).expect("append");
    };
    add("Dockerfile", b"FROM scratch\nCOPY . /\n", 0o644);
    add("app/run.sh", b"#!/bin/sh\necho hi\n", 0o755);
    add("app/notes.txt", b"notes", 0o644);
    add("secret.key", b"k", 0o600);
    add(".dockerignore", b"*.key\n", 0o644);
    b.into_inner().expect("finish tar")
}

fn names(ctx: &BuildContext) -> Vec<String> {
    ctx.list()
        .expect("list")
        .into_iter()
        .map(|e| e.rel)
        .collect()
}

#[test]
fn plain_gzip_and_zstd_archives_give_the_same_context() {
    let raw = sample_tar();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&raw).expect("gzip");
    let gz = gz.finish().expect("gzip finish");
    let zst = zstd::encode_all(raw.as_slice(), 3).expect("zstd");

    assert_eq!(detect_archive(&raw), Some(ArchiveFormat::Tar));
    assert_eq!(detect_archive(&gz), Some(ArchiveFormat::TarGzip));
    assert_eq!(detect_archive(&zst), Some(ArchiveFormat::TarZstd));

    let plain = BuildContext::from_tar(raw.as_slice(), Some("Dockerfile")).expect("tar");
    assert_eq!(
        names(&plain),
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
        let ctx = BuildContext::from_tar(bytes.as_slice(), None).expect("compressed tar");
        assert_eq!(names(&ctx), names(&plain));
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
    let ctx = BuildContext::from_tar(sample_tar().as_slice(), None).expect("tar");
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
    let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::default());
    bz.write_all(&raw).expect("bzip2");
    let bz = bz.finish().expect("bzip2 finish");
    let mut xz =
        lzma_rust2::XzWriter::new(Vec::new(), lzma_rust2::XzOptions::with_preset(3)).expect("xz");
    xz.write_all(&raw).expect("xz");
    let xz = xz.finish().expect("xz finish");
    assert_eq!(detect_archive(&bz), Some(ArchiveFormat::TarBzip2));
    assert_eq!(detect_archive(&xz), Some(ArchiveFormat::TarXz));
    let plain = BuildContext::from_tar(raw.as_slice(), Some("Dockerfile")).expect("tar");
    for bytes in [&bz, &xz] {
        let ctx = BuildContext::from_tar(bytes.as_slice(), Some("Dockerfile")).expect("archive");
        assert_eq!(names(&ctx), names(&plain));
        assert_eq!(
            ctx.digest().expect("digest"),
            plain.digest().expect("digest")
        );
    }
}

fn compress_all(raw: &[u8]) -> Vec<(&'static str, Vec<u8>)> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(raw).expect("gzip");
    let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::default());
    bz.write_all(raw).expect("bzip2");
    let mut xz =
        lzma_rust2::XzWriter::new(Vec::new(), lzma_rust2::XzOptions::with_preset(3)).expect("xz");
    xz.write_all(raw).expect("xz");
    vec![
        ("tar", raw.to_vec()),
        ("gzip", gz.finish().expect("gz")),
        ("bzip2", bz.finish().expect("bz")),
        ("xz", xz.finish().expect("xz")),
        ("zstd", zstd::encode_all(raw, 3).expect("zstd")),
    ]
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
            let err = BuildContext::from_tar(&bytes[..cut], None)
                .expect_err(&format!("{format} cut at {cut}"));
            assert!(
                matches!(err, ContextError::ArchiveTruncated { format: f, .. } if f == format),
                "{format} cut at {cut}: {err:?}"
            );
            assert!(err.to_string().contains("truncated"), "{err}");
        }
    }
}

/// A tar with one entry whose raw name (not checked by the builder) is `name`.
fn tar_with_raw_name(name: &str, kind: tar::EntryType, link: Option<&str>) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(if kind == tar::EntryType::Regular {
        1
    } else {
        0
    });
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_entry_type(kind);
    let raw = &mut h.as_old_mut().name;
    raw[..name.len()].copy_from_slice(name.as_bytes());
    if let Some(link) = link {
        h.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
    }
    h.set_cksum();
    let data: &[u8] = if kind == tar::EntryType::Regular {
        b"x"
    } else {
        b""
    };
    b.append(&h, data).expect("append");
    b.into_inner().expect("finish")
}

#[test]
fn entries_escaping_the_root_are_rejected() {
    for (name, kind, link) in [
        ("../evil.txt", tar::EntryType::Regular, None),
        ("a/../../evil.txt", tar::EntryType::Regular, None),
        ("link", tar::EntryType::Link, Some("../../etc/passwd")),
    ] {
        let err = BuildContext::from_tar(tar_with_raw_name(name, kind, link).as_slice(), None)
            .expect_err(name);
        assert!(
            matches!(&err, ContextError::ArchiveEntryEscapes { entry, .. } if entry == name),
            "{name}: {err:?}"
        );
    }
    // A symlink leading out, then a file written through it.
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    h.set_mode(0o777);
    h.set_uid(0);
    h.set_gid(0);
    b.append_link(&mut h, "out", "/tmp").expect("symlink");
    let mut h = tar::Header::new_gnu();
    h.set_size(1);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_entry_type(tar::EntryType::Regular);
    b.append_data(&mut h, "out/rbuild-escape-test", b"x".as_slice())
        .expect("file");
    let bytes = b.into_inner().expect("finish");
    let err = BuildContext::from_tar(bytes.as_slice(), None).expect_err("through symlink");
    assert!(
        matches!(err, ContextError::ArchiveEntryEscapes { .. }),
        "{err:?}"
    );
    assert!(!std::path::Path::new("/tmp/rbuild-escape-test").exists());
    // A leading `/` is dropped, as Docker does: that entry stays inside.
    let ok = tar_with_raw_name("/inside.txt", tar::EntryType::Regular, None);
    let ctx = BuildContext::from_tar(ok.as_slice(), None).expect("leading slash");
    assert_eq!(names(&ctx), vec!["inside.txt"]);
}

#[test]
fn a_missing_dockerfile_is_named() {
    let err = BuildContext::from_tar(sample_tar().as_slice(), Some("build/Dockerfile.prod"))
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
    let err = BuildContext::from_tar(bytes.as_slice(), None).expect_err("bad gzip");
    assert!(
        matches!(
            err,
            ContextError::Archive { .. } | ContextError::ArchiveTruncated { .. }
        ),
        "{err:?}"
    );
}
