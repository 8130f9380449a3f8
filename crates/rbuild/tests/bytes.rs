//! Bytes that are not UTF-8, end to end through the CLI: a RUN command and heredoc bodies
//! reach the command byte for byte (checked in the exported root filesystem); anywhere text
//! is needed the build fails at the byte, with a caret; an OCI runtime is refused.

mod support;

use rbuild_archive::testutil;
use support::{require_tool, stderr, Env};

/// Writes `dockerfile` (bytes) into a new context `name` of `env`.
fn context(env: &Env, name: &str, dockerfile: &[u8]) -> std::path::PathBuf {
    let ctx = env.context(name, &[]);
    std::fs::write(ctx.join("Dockerfile"), dockerfile).expect("write Dockerfile");
    ctx
}

#[test]
fn run_commands_and_heredocs_pass_bytes_through() {
    let Some(env) = Env::with_busybox() else {
        return;
    };
    let dockerfile: &[u8] = b"FROM busybox\n\
RUN printf '%s' 'S\xff\xfeZ' > /run_shell\n\
RUN printf '%s' 'cont\xff' \\\n  '\xfeinued' > /run_cont\n\
RUN [\"/bin/sh\", \"-c\", \"printf '%s' 'E\xffZ' > /run_exec\"]\n\
RUN <<EOF\nprintf '%s' 'H\xffZ' > /heredoc\nEOF\n\
RUN <<EOF\n#!/bin/sh\nprintf '%s' 'P\xffZ' > /heredoc_script\nEOF\n\
RUN cat <<A > /two_a && cat <<B > /two_b\nA\xffZ\nA\nB\xfeZ\nB\n\
COPY <<'EOF' /heredoc_copy\nQ\xffZ\nEOF\n\
RUN echo \xc3\xa9 \xe2\x82 | od -An -c | tr -s ' ' > /od\n";
    let ctx = context(&env, "ctx", dockerfile);
    let out = env.build_local(&[], &ctx);
    let read = |name: &str| std::fs::read(out.join(name)).expect("exported file");
    assert_eq!(read("run_shell"), b"S\xff\xfeZ");
    assert_eq!(read("run_cont"), b"cont\xff\xfeinued");
    assert_eq!(read("run_exec"), b"E\xffZ");
    assert_eq!(read("heredoc"), b"H\xffZ");
    assert_eq!(read("heredoc_script"), b"P\xffZ");
    assert_eq!(read("two_a"), b"A\xffZ\n");
    assert_eq!(read("two_b"), b"B\xfeZ\n");
    assert_eq!(read("heredoc_copy"), b"Q\xffZ\n");
    // Valid UTF-8 stays itself next to a truncated sequence.
    assert_eq!(read("od"), b" 303 251 342 202 \\n\n");
}

#[test]
fn text_places_refuse_bytes_at_the_byte() {
    let env = Env::new();
    let ctx = context(&env, "ctx", b"FROM scratch\nLABEL k=x\xffy\n");
    let out = env.run(&["build", "-q", ctx.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("Dockerfile:2:10: error: LABEL arguments must be UTF-8 text, but byte 0xff is not part of UTF-8"), "{err}");
    assert!(err.contains("  LABEL k=x\u{FFFD}y\n           ^"), "{err}");
}

#[test]
fn oci_runtimes_are_refused_bytes_they_cannot_carry() {
    if require_tool("runc").is_none() {
        return;
    }
    let Some(env) = Env::with_busybox() else {
        return;
    };
    let ctx = context(&env, "ctx", b"FROM busybox\nRUN echo \xff > /x\n");
    let out = env.run(&[
        "build",
        "-q",
        "--runtime=runc",
        ctx.to_str().expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("cannot run this command: an argument is not UTF-8 text"),
        "{}",
        stderr(&out)
    );
}

/// A path of `bytes` (a Linux name need not be UTF-8).
fn name(bytes: &[u8]) -> &std::path::Path {
    use std::os::unix::ffi::OsStrExt;
    std::path::Path::new(std::ffi::OsStr::from_bytes(bytes))
}

#[test]
fn context_names_keep_their_bytes() {
    use std::os::unix::ffi::OsStrExt;
    let Some(env) = Env::with_busybox() else {
        return;
    };
    let ctx = context(&env, "ctx", b"FROM busybox\nCOPY . /app/\nCOPY f?? /two/\n");
    std::fs::write(ctx.join(name(b"f\xff\xfe")), "named\n").expect("write");
    std::fs::write(ctx.join(name(b"ign\xfd")), "ignored\n").expect("write");
    std::fs::create_dir(ctx.join(name(b"d\xfc"))).expect("mkdir");
    std::fs::write(ctx.join(name(b"d\xfc/in\xfb")), "in\n").expect("write");
    std::os::unix::fs::symlink(name(b"f\xff\xfe"), ctx.join(name(b"l\xfa"))).expect("symlink");
    std::fs::write(ctx.join(".dockerignore"), b"ign\xfd\n").expect("write");
    let ctx_arg = ctx.to_str().expect("utf-8");

    // `rbuild debug context` prints the names' bytes.
    let listing = env.ok(&["debug", "context", ctx_arg]).stdout;
    let lines: Vec<&[u8]> = listing.split(|&b| b == b'\n').collect();
    assert_eq!(
        lines[..6],
        [
            b".dockerignore".as_slice(),
            b"Dockerfile",
            b"d\xfc/",
            b"d\xfc/in\xfb",
            b"f\xff\xfe",
            b"l\xfa",
        ]
    );

    let out = env.build_local(&[], &ctx);
    assert_eq!(
        std::fs::read(out.join(name(b"app/f\xff\xfe"))).expect("copied"),
        b"named\n"
    );
    assert_eq!(
        std::fs::read(out.join(name(b"app/d\xfc/in\xfb"))).expect("copied"),
        b"in\n"
    );
    assert_eq!(
        std::fs::read(out.join(name(b"two/f\xff\xfe"))).expect("copied"),
        b"named\n"
    );
    let link = std::fs::read_link(out.join(name(b"app/l\xfa"))).expect("a link");
    assert_eq!(link.as_os_str().as_bytes(), b"f\xff\xfe");
    assert!(!out.join(name(b"app/ign\xfd")).exists());

    // The same names in a layer tar, and the same cache key on a second build.
    let tar_path = env.path("rootfs.tar");
    let dest = format!("type=tar,dest={}", tar_path.display());
    let second = env.ok(&["build", "--progress=plain", "-o", &dest, ctx_arg]);
    let plain = stderr(&second);
    let copy_line = plain
        .lines()
        .find(|l| l.ends_with("] COPY . /app/"))
        .unwrap_or_else(|| panic!("no COPY step in:\n{plain}"));
    let step = copy_line.split(' ').next().unwrap_or_default();
    assert!(plain.contains(&format!("{step} CACHED")), "{plain}");
    let names: Vec<Vec<u8>> = testutil::list(std::fs::File::open(&tar_path).expect("open tar"))
        .expect("entries")
        .into_iter()
        .map(|e| e.name)
        .collect();
    for want in [
        &b"app/f\xff\xfe"[..],
        b"app/d\xfc/in\xfb",
        b"app/l\xfa",
        b"two/f\xff\xfe",
    ] {
        assert!(
            names
                .iter()
                .any(|n| n.strip_prefix(b"./").unwrap_or(n) == want),
            "{:?} not in the tar",
            String::from_utf8_lossy(want)
        );
    }
}

/// Names that are not UTF-8 in another stage keep their bytes through `COPY --from`: a file
/// copied into a directory, a tree, a wildcard match, `--exclude` and `--parents`.
#[test]
fn copy_from_keeps_name_bytes() {
    let Some(env) = Env::with_busybox() else {
        return;
    };
    let ctx = context(
        &env,
        "from",
        b"FROM busybox AS src\n\
          RUN mkdir -p /out/sub && printf one > \"$(printf '/out/f\\377')\" && \
              printf two > \"$(printf '/out/sub/g\\376')\" && printf no > \"$(printf '/out/x\\375')\"\n\
          FROM scratch\n\
          COPY --from=src /out/f* /one/\n\
          COPY --from=src --exclude=x* /out /tree\n\
          COPY --from=src --parents /out/sub/g* /p/\n",
    );
    let out = env.build_local(&[], &ctx);
    let read = |p: &[u8]| std::fs::read(out.join(name(p))).ok();
    assert_eq!(read(b"one/f\xff").as_deref(), Some(&b"one"[..]));
    assert_eq!(read(b"tree/f\xff").as_deref(), Some(&b"one"[..]));
    assert_eq!(read(b"tree/sub/g\xfe").as_deref(), Some(&b"two"[..]));
    assert_eq!(
        read(b"tree/x\xfd"),
        None,
        "--exclude matched the name's bytes"
    );
    assert_eq!(read(b"p/out/sub/g\xfe").as_deref(), Some(&b"two"[..]));
}
