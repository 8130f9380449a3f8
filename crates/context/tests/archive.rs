//! Contexts from tar archives (plain, gzip, zstd), as `rbuild - < ctx.tar.gz` uses them.

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
fn bzip2_is_reported_clearly() {
    let err = BuildContext::from_tar(b"BZh91AY&SY".as_slice(), None).expect_err("bzip2");
    assert!(matches!(
        err,
        ContextError::UnsupportedCompression { format: "bzip2" }
    ));
}

#[test]
fn garbage_is_an_archive_error() {
    let mut bytes = vec![0x1f, 0x8b];
    bytes.extend_from_slice(b"not really gzip");
    let err = BuildContext::from_tar(bytes.as_slice(), None).expect_err("bad gzip");
    assert!(matches!(err, ContextError::Archive { .. }), "{err:?}");
}
