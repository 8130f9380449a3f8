//! Dockerfiles that are not UTF-8: a RUN command and heredoc bodies reach the graph byte for
//! byte; everywhere else a stray byte is an error at its position, never a U+FFFD.

mod common;

use rbuild_graph::{FileAction, Graph, Op};
use rbuild_types::ByteString;

use common::{created_by, execs, lower_bytes, opts};

fn build(src: &[u8]) -> Result<Graph, Vec<String>> {
    let g = lower_bytes(src, &opts())?;
    g.validate().map_err(|e| vec![e.to_string()])?;
    Ok(g)
}

fn mkfiles(g: &Graph) -> Vec<(&str, &[u8])> {
    g.vertices
        .iter()
        .filter_map(|v| match &v.op {
            Op::File(f) => Some(f),
            _ => None,
        })
        .flat_map(|f| &f.actions)
        .filter_map(|a| match a {
            FileAction::Mkfile(m) => Some((m.path.as_str(), m.data.as_slice())),
            _ => None,
        })
        .collect()
}

fn sh(cmd: &[u8]) -> Vec<ByteString> {
    vec!["/bin/sh".into(), "-c".into(), cmd.to_vec().into()]
}

#[test]
fn run_commands_keep_their_bytes() {
    let src = b"FROM busybox\nRUN printf 'S\xff\xfeZ' > /a\nRUN [\"/bin/echo\", \"E\xffZ\"]\nRUN echo \\\n  \xfe\n";
    let g = build(src).expect("lowers");
    let e = execs(&g);
    assert_eq!(e[0].args, sh(b"printf 'S\xff\xfeZ' > /a"));
    assert_eq!(
        e[1].args,
        vec![ByteString::from("/bin/echo"), b"E\xffZ".to_vec().into()]
    );
    assert_eq!(e[2].args, sh(b"echo   \xfe"));
    // Text for people shows U+FFFD, as BuildKit's JSON history does.
    let history = created_by(&g);
    assert!(history.contains(&"RUN /bin/sh -c printf 'S\u{FFFD}\u{FFFD}Z' > /a # buildkit"));
    assert!(g
        .vertices
        .iter()
        .any(|v| v.name.contains("printf 'S\u{FFFD}\u{FFFD}Z'")));
}

#[test]
fn heredoc_bodies_keep_their_bytes() {
    let src = b"FROM busybox\nRUN <<EOF\nprintf 'H\xffZ'\nEOF\nRUN <<EOF\n#!/bin/sh\necho \xfe\nEOF\nRUN cat <<A >/a\n\tA\xff\nA\nCOPY <<'EOF' /q\nQ\xffZ\nEOF\nCOPY <<-EOF /chomped\n\tC\xfdZ\nEOF\n";
    let Err(e) = build(src) else {
        panic!("an expanding heredoc that is not UTF-8 is refused");
    };
    assert_eq!(e.len(), 1);
    assert!(
        e[0].starts_with("15:1 heredoc <<EOF is not UTF-8 text"),
        "{e:?}"
    );
    let src = b"FROM busybox\nRUN <<EOF\nprintf 'H\xffZ'\nEOF\nRUN <<EOF\n#!/bin/sh\necho \xfe\nEOF\nRUN cat <<A >/a\n\tA\xff\nA\nCOPY <<'EOF' /q\nQ\xffZ\nEOF\nCOPY <<-'EOF' /chomped\n\tC\xfdZ\nEOF\n";
    let g = build(src).expect("lowers");
    let e = execs(&g);
    assert_eq!(e[0].args, sh(b"printf 'H\xffZ'\n"));
    assert_eq!(e[1].args, sh(b"/dev/pipes/EOF"));
    assert_eq!(e[2].args, sh(b"cat <<A >/a\n\tA\xff\nA"));
    let files = mkfiles(&g);
    assert!(files.contains(&("/EOF", b"#!/bin/sh\necho \xfe\n".as_slice())));
    assert!(files.contains(&("/q", b"Q\xffZ\n".as_slice())));
    assert!(files.contains(&("/chomped", b"C\xfdZ\n".as_slice())));
}

#[test]
fn text_is_required_everywhere_else() {
    let cases: [(&[u8], &str); 9] = [
        (
            b"FROM busybox\nLABEL k=x\xffy\n",
            "2:10 LABEL arguments must be UTF-8 text, but byte 0xff",
        ),
        (b"FROM busybox\nENV V a\xffb\n", "2:8 ENV arguments"),
        (b"FROM busybox\nARG A=\xfe\n", "2:7 ARG arguments"),
        (b"FROM busybox\nCMD [\"c\xffmd\"]\n", "2:8 CMD arguments"),
        (b"FROM busybox\nWORKDIR /w\xff\n", "2:11 WORKDIR arguments"),
        (b"FROM busybox\nCOPY a /d\xff\n", "2:10 COPY arguments"),
        (
            b"FROM busybox\nRUN --network=n\xffne true\n",
            "2:16 RUN flags",
        ),
        (
            b"FROM busybox\nONBUILD RUN echo \xff\n",
            "2:18 ONBUILD arguments",
        ),
        (b"FROM busy\xffbox\n", "1:10 FROM arguments"),
    ];
    for (src, want) in cases {
        let Err(e) = build(src) else {
            panic!("{} must fail", String::from_utf8_lossy(src));
        };
        assert!(e[0].starts_with(want), "{e:?} does not start with {want:?}");
        assert!(
            e[0].contains("rbuild does not replace them with U+FFFD"),
            "{e:?}"
        );
    }
}

#[test]
fn utf8_dockerfiles_are_read_as_before() {
    // Characters of the range the parser uses internally for stray bytes stay themselves.
    let g = build("FROM busybox\nRUN echo \u{10FF80}\nLABEL k=\u{10FFFF}\n".as_bytes())
        .expect("lowers");
    assert_eq!(execs(&g)[0].args, sh("echo \u{10FF80}".as_bytes()));
    assert_eq!(
        g.image.labels.get("k").map(String::as_str),
        Some("\u{10FFFF}")
    );
}
