//! COPY/ADD semantics through the CLI: ADD extracts local tar archives (recognised by
//! content), copies other files, and copies archives too with `--unpack=false`; COPY never
//! extracts; archive entries cannot escape the destination.
//! Every build is `FROM scratch` exported with `-o type=local`, so no base image is needed.

mod support;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use rbuild_archive::testutil::{gzip_fast, TarBuilder, TestEntry};
use support::{require, require_root, stderr, tool, Env};

/// A tar of: directory `d/` (0750, uid/gid 1000), `d/f.txt` (0640, uid 1000, "hi"),
/// symlink `l -> d/f.txt`.
fn sample_tar() -> Vec<u8> {
    TarBuilder::new()
        .with(
            TestEntry::dir("d/")
                .mode(0o750)
                .owner(1000, 1000)
                .mtime(1_600_000_000),
        )
        .with(
            TestEntry::file("d/f.txt", "hi")
                .mode(0o640)
                .owner(1000, 1000)
                .mtime(1_600_000_000),
        )
        .with(TestEntry::symlink("l", "d/f.txt"))
        .with(TestEntry::hardlink("hard", "d/f.txt").mode(0o640))
        .finish()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    gzip_fast(data).expect("gzip")
}

/// A context with `Dockerfile` and the binary `files`.
fn context(env: &Env, dockerfile: &str, files: &[(&str, &[u8])]) -> std::path::PathBuf {
    let ctx = env.context("ctx", &[("Dockerfile", dockerfile)]);
    for (name, data) in files {
        fs::write(ctx.join(name), data).expect("write context file");
    }
    ctx
}

fn check_extracted(dir: &Path) {
    assert_eq!(
        fs::read_to_string(dir.join("d/f.txt")).expect("extracted"),
        "hi"
    );
    let f = fs::metadata(dir.join("d/f.txt")).expect("stat");
    assert_eq!(f.permissions().mode() & 0o7777, 0o640, "the archive's mode");
    let d = fs::metadata(dir.join("d")).expect("stat");
    assert_eq!(d.permissions().mode() & 0o7777, 0o750);
    assert_eq!(d.mtime(), 1_600_000_000, "the archive's directory mtime");
    if require_root("to check the owner") {
        assert_eq!((f.uid(), f.gid()), (1000, 1000), "the archive's owner");
    }
    assert_eq!(
        fs::read_link(dir.join("l")).expect("symlink"),
        Path::new("d/f.txt")
    );
    let hard = fs::metadata(dir.join("hard")).expect("hard link");
    assert_eq!(hard.ino(), f.ino(), "a hard link to the extracted file");
}

#[test]
fn add_extracts_plain_and_gzip_tars_by_content_not_name() {
    let env = Env::new();
    let tar = sample_tar();
    let ctx = context(
        &env,
        "FROM scratch\nADD plain.bin /plain\nADD packed.data /packed/\n\
         ADD --chown=7:8 plain.bin /owned/\n",
        &[("plain.bin", &tar), ("packed.data", &gzip(&tar))],
    );
    let out = env.build_local(&[], &ctx);
    check_extracted(&out.join("plain"));
    check_extracted(&out.join("packed"));
    assert!(!out.join("packed/packed.data").exists());
    if require_root("to check the owner") {
        let f = fs::metadata(out.join("owned/d/f.txt")).expect("extracted");
        assert_eq!(
            (f.uid(), f.gid()),
            (7, 8),
            "--chown applies to extracted files"
        );
        assert_eq!(f.permissions().mode() & 0o7777, 0o640);
    }
}

#[test]
fn add_copies_non_archives_and_archives_with_unpack_false_and_copy_never_extracts() {
    let env = Env::new();
    let tar = sample_tar();
    let not_tar = gzip(b"just text, gzipped\n");
    let ctx = context(
        &env,
        "FROM scratch\nADD notes.txt.gz /n/\nADD plain.txt /p/\n\
         ADD --unpack=false a.tar /u/\nCOPY a.tar /c/\n",
        &[
            ("notes.txt.gz", &not_tar),
            ("plain.txt", b"plain"),
            ("a.tar", &tar),
        ],
    );
    let out = env.build_local(&[], &ctx);
    assert_eq!(
        fs::read(out.join("n/notes.txt.gz")).expect("copied"),
        not_tar
    );
    assert_eq!(fs::read(out.join("p/plain.txt")).expect("copied"), b"plain");
    assert_eq!(fs::read(out.join("u/a.tar")).expect("copied"), tar);
    assert_eq!(fs::read(out.join("c/a.tar")).expect("copied"), tar);
    assert!(!out.join("u/d").exists() && !out.join("c/d").exists());
}

#[test]
fn add_refuses_archive_entries_escaping_the_destination() {
    let env = Env::new();
    let tar = TarBuilder::new()
        .with(TestEntry::file("../evil", "x"))
        .finish();
    let ctx = context(
        &env,
        "FROM scratch\nADD evil.tar /x/\n",
        &[("evil.tar", &tar)],
    );
    let out = env.run(&["build", "-q", ctx.to_str().expect("utf-8")]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("climbs out"), "{err}");
}

fn mode_of(path: &Path) -> u32 {
    fs::symlink_metadata(path)
        .expect("stat")
        .permissions()
        .mode()
        & 0o7777
}

#[test]
fn symbolic_chmod_applies_to_each_files_own_mode() {
    let env = Env::new();
    let ctx = env.context(
        "ctx",
        &[
            (
                "Dockerfile",
                "FROM scratch\nCOPY --chmod=u+x a.txt /s/a\nCOPY --chmod=go=rx a.txt /s/b\n\
                 COPY --chmod=ug+rX-w tree /t/\nCOPY --chmod=0600 a.txt /s/c\n\
                 COPY --chmod=u+x <<EOF /h\nhello\nEOF\n",
            ),
            ("a.txt", "a"),
            ("tree/run.sh", "#!/bin/sh\n"),
            ("tree/data", "d"),
            ("tree/sub/f", "f"),
        ],
    );
    for (path, mode) in [
        ("a.txt", 0o644),
        ("tree/run.sh", 0o755),
        ("tree/data", 0o644),
        ("tree/sub", 0o755),
        ("tree/sub/f", 0o600),
    ] {
        fs::set_permissions(ctx.join(path), fs::Permissions::from_mode(mode)).expect("chmod");
    }
    let out = env.build_local(&[], &ctx);
    assert_eq!(mode_of(&out.join("s/a")), 0o744);
    assert_eq!(mode_of(&out.join("s/b")), 0o655);
    assert_eq!(mode_of(&out.join("s/c")), 0o600);
    assert_eq!(
        mode_of(&out.join("t/run.sh")),
        0o555,
        "X: already executable"
    );
    assert_eq!(
        mode_of(&out.join("t/data")),
        0o444,
        "X: not for a plain file"
    );
    assert_eq!(
        mode_of(&out.join("t/sub")),
        0o555,
        "X: always for directories"
    );
    assert_eq!(mode_of(&out.join("t/sub/f")), 0o440);
    assert_eq!(
        mode_of(&out.join("h")),
        0o744,
        "heredoc files start as 0644"
    );
}

#[test]
fn exclude_leaves_files_out_of_the_copy_and_the_cache_key() {
    let env = Env::new();
    let files = [
        ("app/main.c", "int main;"),
        ("app/README.md", "readme"),
        ("app/docs/guide.md", "guide"),
        ("app/docs/keep.md", "keep"),
        ("app/docs/img.png", "png"),
        ("app/tmp/scratch", "x"),
        ("notes.md", "notes"),
        ("a.txt", "a"),
        ("b.txt", "b"),
    ];
    let mut all = vec![(
        "Dockerfile",
        "FROM scratch\nCOPY --exclude=**/*.md --exclude=tmp --exclude=!docs/keep.md app /app/\n\
         COPY --exclude=b.txt *.txt /w/\n\
         FROM scratch\nCOPY --from=0 --exclude=docs/*.png --exclude=main.c /app /from/\n",
    )];
    all.extend_from_slice(&files);
    let ctx = env.context("ctx", &all);
    let out = env.build_local(&[], &ctx);
    assert!(!out.join("from/README.md").exists());
    assert_eq!(
        fs::read_to_string(out.join("from/docs/keep.md")).expect("kept"),
        "keep"
    );
    assert!(
        !out.join("from/docs/guide.md").exists(),
        "excluded in stage 0"
    );
    assert!(
        !out.join("from/docs/img.png").exists(),
        "excluded by the --from copy"
    );
    assert!(
        !out.join("from/main.c").exists(),
        "excluded by the --from copy"
    );
    assert!(!out.join("from/tmp").exists());

    // The first stage, checked directly, and the wildcard source.
    let ctx2 = env.context(
        "ctx2",
        &[(
            "Dockerfile",
            "FROM scratch\nCOPY --exclude=**/*.md --exclude=tmp --exclude=!docs/keep.md app /app/\n\
             COPY --exclude=b.txt *.txt /w/\n",
        )],
    );
    for (path, data) in files {
        let p = ctx2.join(path);
        fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        fs::write(p, data).expect("write");
    }
    let out = env.build_local(&[], &ctx2);
    assert!(out.join("app/main.c").is_file());
    assert!(out.join("app/docs/img.png").is_file());
    assert!(
        out.join("app/docs/keep.md").is_file(),
        "! exception re-includes"
    );
    assert!(!out.join("app/README.md").exists());
    assert!(!out.join("app/docs/guide.md").exists());
    assert!(!out.join("app/tmp").exists());
    assert!(out.join("w/a.txt").is_file());
    assert!(!out.join("w/b.txt").exists());

    // Changing an excluded file keeps every step cached.
    fs::write(ctx2.join("app/README.md"), "changed").expect("write");
    fs::write(ctx2.join("b.txt"), "changed").expect("write");
    let err = stderr(&env.ok(&["build", "--progress=plain", ctx2.to_str().expect("utf-8")]));
    assert_eq!(err.matches("CACHED").count(), 2, "{err}");
}

#[test]
fn parents_keeps_source_directories_under_the_destination() {
    let env = Env::new();
    let ctx = env.context(
        "ctx",
        &[
            (
                "Dockerfile",
                "FROM scratch AS base\nCOPY --parents x/a.txt y/*.txt /p/\n\
                 COPY --parents src/./lib/ /q/\nCOPY --parents top.txt /r/\n\
                 FROM scratch\nCOPY --from=base --parents /p/x/a.txt /q/./lib/m.rs /f/\n",
            ),
            ("x/a.txt", "xa"),
            ("y/b.txt", "yb"),
            ("y/c.txt", "yc"),
            ("src/lib/m.rs", "m"),
            ("src/lib/sub/n.rs", "n"),
            ("top.txt", "t"),
        ],
    );
    let out = env.build_local(&["--target", "base"], &ctx);
    let read = |p: &str| fs::read_to_string(out.join(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
    assert_eq!(read("p/x/a.txt"), "xa");
    assert_eq!(read("p/y/b.txt"), "yb");
    assert_eq!(read("p/y/c.txt"), "yc");
    assert_eq!(read("q/lib/m.rs"), "m", "the part before /./ is dropped");
    assert_eq!(read("q/lib/sub/n.rs"), "n");
    assert!(!out.join("q/src").exists());
    assert_eq!(read("r/top.txt"), "t");
    fs::remove_dir_all(&out).expect("clean out");
    let out = env.build_local(&[], &ctx);
    assert_eq!(
        fs::read_to_string(out.join("f/p/x/a.txt")).expect("from a stage"),
        "xa"
    );
    assert_eq!(
        fs::read_to_string(out.join("f/lib/m.rs")).expect("pivot in a stage"),
        "m"
    );
}

#[test]
fn add_extracts_bzip2_xz_and_zstd_tars() {
    let tools = ["bzip2", "xz", "zstd"];
    if !require(
        "bzip2, xz and zstd (apt: bzip2 xz-utils zstd)",
        tools.iter().all(|t| tool(t).is_some()),
    ) {
        return;
    }
    let env = Env::new();
    let tar_path = env.path("sample.tar");
    fs::write(&tar_path, sample_tar()).expect("write tar");
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    for tool in tools {
        let out = std::process::Command::new(tool)
            .args(["-c", tar_path.to_str().expect("utf-8")])
            .output()
            .expect("run compressor");
        assert!(out.status.success(), "{tool} failed");
        files.push((format!("{tool}.pkg"), out.stdout));
    }
    let refs: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(n, d)| (n.as_str(), d.as_slice()))
        .collect();
    let ctx = context(
        &env,
        "FROM scratch\nADD bzip2.pkg /b/\nADD xz.pkg /x/\nADD zstd.pkg /z/\n",
        &refs,
    );
    let out = env.build_local(&[], &ctx);
    for dir in ["b", "x", "z"] {
        check_extracted(&out.join(dir));
    }
}

/// A tar of `entries`: (path, symlink target or `None` for a one-byte file).
fn tar_of(entries: &[(&str, Option<&str>)]) -> Vec<u8> {
    let mut b = TarBuilder::new();
    for (path, link) in entries {
        b.add(match link {
            Some(target) => TestEntry::symlink(path, target).mode(0o644),
            None => TestEntry::file(path, "x"),
        });
    }
    b.finish()
}

#[test]
fn add_follows_archive_symlinks_inside_the_destination_and_never_forges_whiteouts() {
    let env = Env::new();
    let host = env.path("host-dir");
    fs::create_dir_all(&host).expect("mkdir");
    let host_str = host.to_str().expect("utf-8");
    // As Docker's untar chrooted into the destination (BuildKit): an absolute link the
    // archive made resolves below the destination, never on the host.
    let through = tar_of(&[
        ("l", Some(host_str)),
        ("l/pwned", None),
        ("up", Some("../../..")),
        ("up/esc", None),
    ]);
    let ctx = context(
        &env,
        "FROM scratch
ADD through.tar /x/
",
        &[("through.tar", &through)],
    );
    let out = env.build_local(&[], &ctx);
    assert!(
        !host.join("pwned").exists(),
        "nothing written outside the layer"
    );
    let inside = out
        .join("x")
        .join(host_str.trim_start_matches('/'))
        .join("pwned");
    assert_eq!(fs::read(&inside).expect("written below /x"), b"x");
    assert_eq!(fs::read(out.join("x/esc")).expect("`..` stops at /x"), b"x");
    assert!(fs::symlink_metadata(out.join("x/l"))
        .expect("link kept")
        .file_type()
        .is_symlink());
    fs::remove_dir_all(&ctx).expect("clean ctx");

    let whiteout = tar_of(&[("d/.wh.file", None)]);
    let ctx = context(
        &env,
        "FROM scratch\nADD whiteout.tar /x/\n",
        &[("whiteout.tar", &whiteout)],
    );
    let out = env.run(&["build", "-q", ctx.to_str().expect("utf-8")]);
    assert!(!out.status.success(), "whiteouts must be refused");
    let err = stderr(&out);
    assert!(err.contains("whiteout"), "{err}");
}

/// A tar made of `entries`: (path, kind) with kind `dir`, `file:<content>`, `link:<target>`
/// (symlink) or `hard:<target>`.
fn tar_with(entries: &[(&str, &str)]) -> Vec<u8> {
    let mut b = TarBuilder::new();
    for (path, kind) in entries {
        b.add(match kind.split_once(':') {
            None => TestEntry::dir(path),
            Some(("file", content)) => TestEntry::file(path, content),
            Some(("link", target)) => TestEntry::symlink(path, target),
            Some((_, target)) => TestEntry::hardlink(path, target).mode(0o777),
        });
    }
    b.finish()
}

/// BuildKit's testDockerfileAddArchiveThroughAbsoluteSymlink: an archive extracted through an
/// absolute link of the image (`/var/run -> /run`) lands in `/run`, hard links included.
#[test]
fn add_extracts_through_an_absolute_link_of_the_image() {
    let env = Env::new();
    let rootfs = tar_with(&[("run/", "dir"), ("var/", "dir"), ("var/run", "link:/run")]);
    let payload = tar_with(&[
        ("var/run/act/", "dir"),
        ("var/run/act/git/", "dir"),
        ("var/run/act/git/HEAD", "file:ref: refs/heads/main\n"),
        ("var/run/act/git/HEAD.link", "hard:var/run/act/git/HEAD"),
    ]);
    let ctx = context(
        &env,
        "FROM scratch\nADD rootfs.tar /\nADD payload.tar /\n",
        &[("rootfs.tar", &rootfs), ("payload.tar", &payload)],
    );
    let out = env.build_local(&[], &ctx);
    for f in ["run/act/git/HEAD", "run/act/git/HEAD.link"] {
        assert_eq!(
            fs::read_to_string(out.join(f)).expect(f),
            "ref: refs/heads/main\n"
        );
    }
    assert_eq!(
        fs::read_link(out.join("var/run")).expect("link kept"),
        Path::new("/run")
    );
}

/// BuildKit's testSymlinkDestination: `COPY foo /symlink/` where `/symlink ->
/// ../tmp/symlink-target` (dangling) creates the target directory and copies into it.
#[test]
fn copy_into_a_dangling_link_creates_its_target() {
    let env = Env::new();
    let t = tar_with(&[("symlink", "link:../tmp/symlink-target")]);
    let ctx = context(
        &env,
        "FROM scratch\nADD t.tar /\nCOPY foo /symlink/\n",
        &[("t.tar", &t), ("foo", b"content0")],
    );
    let out = env.build_local(&[], &ctx);
    assert_eq!(
        fs::read(out.join("tmp/symlink-target/foo")).expect("copied"),
        b"content0"
    );
}

/// BuildKit's copy gives the directory a copied directory's contents land in the source
/// directory's mtime (checked with BuildKit 0.13), from the context and from a stage.
#[test]
fn a_copied_directory_lands_with_its_sources_mtime() {
    let env = Env::new();
    let ctx = env.context(
        "ctx",
        &[
            (
                "Dockerfile",
                "FROM scratch AS src\nCOPY tree/ /made/\nFROM scratch\n\
                 COPY tree/ /opt/d/\nCOPY --from=src /made /from/\n",
            ),
            ("tree/f", "f"),
        ],
    );
    rbuild_archive::testutil::set_mtime(&ctx.join("tree"), 1_577_836_800).expect("mtime");
    let out = env.build_local(&[], &ctx);
    for dir in ["opt/d", "from"] {
        let m = fs::metadata(out.join(dir)).expect(dir);
        assert_eq!(m.mtime(), 1_577_836_800, "{dir}");
    }
}

/// Content xattrs (a `setcap` capability, a `user.*` attribute) survive ADD of an archive and
/// COPY --from, as in BuildKit; an archive cannot forge overlayfs's own attributes (an opaque
/// marker would hide what the layers below have in that directory).
#[test]
fn xattrs_survive_add_and_copy_from() {
    let env = Env::new();
    let tar = TarBuilder::new()
        .with(TestEntry::file("bin/tool", "x").pax("SCHILY.xattr.user.rbuild", "kept"))
        .with(TestEntry::dir("forged").pax("SCHILY.xattr.trusted.overlay.opaque", "y"))
        .with(TestEntry::file("forged/inner", "i").pax("SCHILY.xattr.user.rbuild", "inner"))
        .finish();
    let ctx = context(
        &env,
        "FROM scratch AS src\nCOPY lower /forged/lower\nADD t.tar /\n\
         FROM scratch\nCOPY --from=src /bin/tool /out/tool\nCOPY --from=src /forged /f/\n",
        &[("t.tar", &tar), ("lower", b"l")],
    );
    let out = env.build_local(&[], &ctx);
    let get = |p: &str, name: &str| -> Option<Vec<u8>> {
        let path = std::ffi::CString::new(out.join(p).as_os_str().as_encoded_bytes()).unwrap();
        let name = std::ffi::CString::new(name).unwrap();
        let mut buf = vec![0u8; 256];
        // libc: nix has no lgetxattr.
        // SAFETY: both strings are NUL-terminated; buf is writable for its length.
        let n = unsafe {
            libc::lgetxattr(
                path.as_ptr(),
                name.as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        (n >= 0).then(|| buf[..n as usize].to_vec())
    };
    assert_eq!(
        get("out/tool", "user.rbuild").as_deref(),
        Some(&b"kept"[..])
    );
    assert_eq!(
        get("f/inner", "user.rbuild").as_deref(),
        Some(&b"inner"[..])
    );
    assert!(
        out.join("f/lower").is_file(),
        "no forged opaque directory hid it"
    );
}
