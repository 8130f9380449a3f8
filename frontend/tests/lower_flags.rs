//! Typed flags through the whole pipeline (parse → instructions → plan → lower): every
//! malformed or not-yet-supported flag is an error at the flag's own line:column, and
//! several bad instructions are all reported.

mod common;

use rbuild_frontend::lower::{lower, plan};
use rbuild_graph::{ImageConfig, Op};

use common::{bases_with, lower_bytes, opts};

/// Lowers `src`; the error is every diagnostic as `line:col message`.
fn lower_src(src: &str) -> Result<rbuild_graph::Graph, Vec<String>> {
    lower_bytes(src.as_bytes(), &opts())
}

fn one_error(src: &str) -> String {
    match lower_src(src) {
        Ok(_) => panic!("{src:?} should fail"),
        Err(v) => {
            assert_eq!(v.len(), 1, "{src:?}: {v:?}");
            v[0].clone()
        }
    }
}

#[track_caller]
fn fails_at(src: &str, at: &str, msg: &str) {
    let e = one_error(src);
    assert!(
        e.starts_with(&format!("{at} ")) && e.contains(msg),
        "{src:?}: {e}"
    );
}

#[test]
fn run_flags() {
    fails_at(
        "FROM busybox\nRUN --network=bridge true\n",
        "2:5",
        "network mode \"bridge\" not supported",
    );
    fails_at(
        "FROM busybox\nRUN --network=none --security=relaxed true\n",
        "2:20",
        "security \"relaxed\" is not valid",
    );
    fails_at(
        "FROM busybox\nRUN --device=/dev/fuse true\n",
        "2:5",
        "RUN --device is not supported yet",
    );
    fails_at(
        "FROM busybox\nRUN --bogus true\n",
        "2:5",
        "unknown flag: --bogus",
    );
    // Valid mounts of every type are parsed (values expanded) and lowered.
    for (m, typ) in [
        (
            "type=cache,target=/root/.cache,sharing=locked,uid=$UID",
            "cache",
        ),
        ("target=/src,from=build,source=/out", "bind"),
        ("type=tmpfs,dst=/t,size=64m", "tmpfs"),
        ("type=secret,id=tok,env=TOKEN,required", "secret"),
        ("type=ssh,required=true", "ssh"),
    ] {
        let src = format!("FROM busybox\nARG UID=1000\nRUN  --mount={m} true\n");
        let g = lower_src(&src).unwrap_or_else(|e| panic!("{src:?}: {e:?}"));
        let Op::Exec(run) = &g.vertices[g.target.index()].op else {
            panic!("{src:?}: the target is not a RUN");
        };
        assert_eq!(run.mounts.len(), 1, "{src:?}");
        let json = serde_json::to_string(&run.mounts[0]).unwrap_or_default();
        assert!(json.contains(&format!("\"type\":\"{typ}\"")), "{json}");
    }
    // Invalid ones say why, also after expansion.
    for (m, why) in [
        ("type=nfs,target=/x", "unsupported mount type \"nfs\""),
        ("target=/x,mode=0755", "mode not allowed for \"bind\""),
        ("type=cache,target=/x,uid=$NOPE", "invalid value for uid"),
        ("type=cache,target=/x,bogus=1", "unexpected key 'bogus'"),
        ("type=secret", "one of source, target required"),
        (
            "type=bind,from=$S,target=/x",
            "doesn't support variable expansion",
        ),
    ] {
        let src = format!("FROM busybox\nRUN --network=none --mount={m} true\n");
        fails_at(&src, "2:20", why);
    }
}

#[test]
fn copy_and_add_flags() {
    fails_at(
        "FROM busybox\nCOPY --chmod=999 a /b\n",
        "2:6",
        "invalid chmod parameter: '999'",
    );
    fails_at(
        "FROM busybox\nARG M=u+q\nCOPY --chmod=$M a /b\n",
        "3:6",
        "invalid chmod parameter: 'u+q'",
    );
    fails_at(
        "FROM busybox\nADD --checksum=sha256:abc https://x/y /z\n",
        "2:5",
        "invalid checksum",
    );
    let sum = "0".repeat(64);
    fails_at(
        &format!("FROM busybox\nADD --checksum=sha256:{sum} a /z\n"),
        "2:5",
        "checksum requires HTTP(S) or Git sources",
    );
    fails_at(
        &format!("FROM busybox\nADD --checksum=sha256:{sum} https://x/y https://x/z /d/\n"),
        "2:5",
        "checksum can't be specified for multiple sources",
    );
    fails_at(
        &format!("FROM busybox\nADD --checksum=sha256:{sum} git@github.com:a/b.git /src\n"),
        "2:5",
        "invalid checksum \"sha256:0000000000000000000000000000000000000000000000000000000000000000\": for Git URL, expected hex commit hash",
    );
    fails_at(
        "FROM busybox\nCOPY  a https://example.com/x /d\n",
        "2:9",
        "source can't be a URL for COPY",
    );
    fails_at(
        "FROM busybox\nCOPY https://example.com/r.git#main /d\n",
        "2:6",
        "source can't be a git ref for COPY",
    );
    fails_at(
        "FROM busybox\nADD --from=x a /b\n",
        "2:5",
        "unknown flag: --from",
    );
    fails_at(
        "FROM busybox\nCOPY --link=maybe a /b\n",
        "2:6",
        "expecting boolean value",
    );
    // The flags that work lower to what they say.
    let g = lower_src("FROM busybox\nARG M=0640\nCOPY --link --chmod=$M --unpack=false a /b\n")
        .err()
        .unwrap_or_default();
    assert!(
        g.iter().any(|e| e.contains("unknown flag: --unpack")),
        "{g:?}"
    );
    let g = lower_src("FROM busybox\nARG M=0640\nCOPY --link --chmod=$M a /b\n").expect("lowers");
    let copy = g
        .vertices
        .iter()
        .find_map(|v| match &v.op {
            Op::File(f) => Some(f),
            _ => None,
        })
        .expect("a file op");
    assert!(
        format!("{copy:?}").contains("chmod: Some(Octal(416))"),
        "{copy:?}"
    );
    // Symbolic modes are carried as written, for the solver to apply per file.
    let g = lower_src("FROM busybox\nCOPY --chmod=u=rwx,go=rx a /b\n").expect("lowers");
    let text = format!("{:?}", g.vertices);
    assert!(
        text.contains("chmod: Some(Symbolic(\"u=rwx,go=rx\"))"),
        "{text}"
    );
    // `--parents` records what a `/./` pivot drops (the context root without one).
    let g = lower_src("FROM busybox\nCOPY --parents x/./y/a z/b /d/\n").expect("lowers");
    let text = format!("{:?}", g.vertices);
    assert!(text.contains(r#"parents: Some("x")"#), "{text}");
    assert!(text.contains(r#"parents: Some(".")"#), "{text}");
    // `--exclude` patterns are expanded and carried in order.
    let g = lower_src("FROM busybox\nARG P=*.md\nCOPY --exclude=$P --exclude=!k.md a /b\n")
        .expect("lowers");
    let text = format!("{:?}", g.vertices);
    assert!(text.contains(r#"exclude: ["*.md", "!k.md"]"#), "{text}");
    // ADD extracts archives unless `--unpack=false`; COPY never does.
    for (src, unpack) in [
        ("ADD a.tar /x", true),
        ("ADD --unpack a.tar /x", true),
        ("ADD --unpack=false a.tar /x", false),
        ("COPY a.tar /x", false),
    ] {
        let g = lower_src(&format!("FROM busybox\n{src}\n")).expect("lowers");
        let text = format!("{:?}", g.vertices);
        assert!(text.contains(&format!("unpack: {unpack}")), "{src}: {text}");
    }
}

#[test]
fn flags_on_continuation_lines_point_at_their_line() {
    fails_at(
        "FROM busybox\nRUN --network=none \\\n    --security=nope \\\n  true\n",
        "3:5",
        "security \"nope\"",
    );
}

#[test]
fn healthcheck_flags() {
    fails_at(
        "FROM busybox\nHEALTHCHECK --interval=5 CMD true\n",
        "2:13",
        "invalid duration",
    );
    fails_at(
        "FROM busybox\nHEALTHCHECK --interval=1s --retries=x CMD true\n",
        "2:27",
        "--retries",
    );
    fails_at(
        "FROM busybox\nHEALTHCHECK --timeout=1us CMD true\n",
        "2:13",
        "cannot be less than 1ms",
    );
    let g = lower_src("FROM busybox\nHEALTHCHECK --interval=30s --retries=3 CMD [\"true\"]\n")
        .expect("lowers");
    let hc = g.image.healthcheck.expect("healthcheck");
    assert_eq!(hc.interval, Some(30_000_000_000));
    assert_eq!(hc.retries, Some(3));
    assert_eq!(hc.test, vec!["CMD".to_string(), "true".to_string()]);
}

#[test]
fn every_bad_instruction_is_reported() {
    let src = "FROM busybox\n\
               RUN --network=bridge true\n\
               COPY --bogus a /b\n\
               HEALTHCHECK --interval=x CMD true\n";
    let errs = lower_src(src).expect_err("fails");
    assert_eq!(errs.len(), 3, "{errs:?}");
    assert!(errs[0].starts_with("2:5 "), "{errs:?}");
    assert!(errs[1].starts_with("3:6 "), "{errs:?}");
    assert!(errs[2].starts_with("4:13 "), "{errs:?}");
    // Lowering errors of several instructions too.
    let src = "FROM busybox\n\
               RUN --device=/dev/fuse true\n\
               ADD --checksum=sha256:0000000000000000000000000000000000000000000000000000000000000000 f /src\n";
    let errs = lower_src(src).expect_err("fails");
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert!(
        errs[0].starts_with("2:5 ") && errs[1].starts_with("3:5 "),
        "{errs:?}"
    );
}

#[test]
fn word_errors_point_at_the_word() {
    fails_at(
        "FROM busybox\nEXPOSE 80 8080/bogus\n",
        "2:11",
        "invalid port specification \"8080/bogus\"",
    );
    fails_at(
        "FROM busybox\nARG E=\nVOLUME /data $E\n",
        "3:14",
        "VOLUME specified can not be an empty string",
    );
    fails_at(
        "FROM busybox\nCOPY a ${NOPE:?needed}\n",
        "2:8",
        "NOPE: needed",
    );
    fails_at(
        "FROM busybox AS a\nFROM busybox AS A\n",
        "2:17",
        "duplicate stage name",
    );
}

#[test]
fn onbuild_trigger_flags_point_into_the_trigger() {
    fails_at(
        "FROM busybox\nONBUILD RUN --network=bogus true\n",
        "2:13",
        "network mode \"bogus\"",
    );
    // A stored trigger of a base image has no text in this file: its errors are at the FROM.
    let df = rbuild_frontend::parse(b"FROM busybox\nRUN true\n").expect("parses");
    let p = plan(&df, &opts()).expect("plans");
    let config = ImageConfig {
        on_build: vec!["RUN --device=/dev/fuse true".into()],
        ..ImageConfig::default()
    };
    let err = lower(&p, &bases_with(&p, &config)).expect_err("fails");
    assert_eq!(err.0.len(), 1);
    assert_eq!((err.0[0].span.line, err.0[0].span.col), (1, 1));
    assert!(err.0[0].message.contains("RUN --device"), "{err:?}");
}

/// Re-declared ARGs are one entry (first position, last value): the RUN history lists each
/// name once however often it is declared, so lowering stays linear in the file.
#[test]
fn repeated_args_stay_one_entry() {
    let mut src = String::from("FROM busybox\nARG B=0\n");
    for i in 0..2000 {
        src.push_str(&format!("ARG A={i}\n"));
    }
    src.push_str("RUN true\n");
    let g = lower_src(&src).expect("lowers");
    let run = g
        .image
        .history
        .iter()
        .rev()
        .find(|h| h.created_by.starts_with("RUN "))
        .expect("a RUN entry");
    assert_eq!(
        run.created_by,
        "RUN |2 B=0 A=1999 /bin/sh -c true # buildkit"
    );
}
