//! Parser-level tests: spans, error collection, robustness on hostile input.

use super::*;

#[test]
fn spans_and_lines() {
    let src = b"FROM a\n\n  RUN x \\\n  y\nCOPY <<EOF /d\nbody\nEOF\n";
    let df = parse(src).unwrap_or_default();
    let n = &df.instructions;
    assert_eq!(n.len(), 3);
    assert_eq!((n[0].span.line, n[0].end_line, n[0].span.col), (1, 1, 1));
    assert_eq!((n[1].span.line, n[1].end_line, n[1].span.col), (3, 4, 3));
    assert_eq!(n[1].span.start, 10);
    assert_eq!(&src[n[1].span.start..n[1].span.end], b"RUN x \\\n  y");
    assert_eq!(n[1].original, "RUN x   y");
    assert_eq!((n[2].span.line, n[2].end_line), (5, 7));
    assert_eq!(n[2].heredocs[0].content, "body\n");
}

#[test]
fn reports_every_error() {
    let src = b"FROM a\nCMD [1]\nENV x\nRUN <<EOF\n";
    let Err(d) = parse(src) else {
        panic!("must fail");
    };
    let lines: Vec<u32> = d.iter().map(|d| d.span.line).collect();
    assert_eq!(lines, vec![2, 3, 4]);
    assert!(d.to_string().contains("unterminated heredoc"));
}

#[test]
fn escape_directive_and_duplicates() {
    let df = parse(b"# escape=`\nRUN a `\n  b\n").unwrap_or_default();
    assert_eq!(df.escape, '`');
    assert_eq!(df.instructions[0].args, vec!["a   b"]);
    assert!(parse(b"# escape=`\n# escape=\\\nFROM a\n").is_err());
    assert!(parse(b"# escape=x\nFROM a\n").is_err());
    assert!(parse(b"").is_err());
    assert!(parse(b"# only\n\n").is_err());
}

#[test]
fn deep_onbuild_is_an_error_not_a_crash() {
    let src = "ONBUILD ".repeat(5000) + "RUN x\n";
    assert!(parse(src.as_bytes()).is_err());
    let ok = "ONBUILD ".repeat(3) + "RUN x\n";
    assert!(parse(ok.as_bytes()).is_ok());
}

#[test]
fn large_inputs_are_linear() {
    // 200k continuation lines and 200k heredoc lines: must finish quickly.
    let mut src = String::from("RUN a \\\n");
    src.push_str(&"  b \\\n".repeat(200_000));
    src.push_str("  c\nRUN <<EOF\n");
    src.push_str(&"x\n".repeat(200_000));
    src.push_str("EOF\n");
    src.push_str(&"ENV a=b\n".repeat(50_000));
    let t = std::time::Instant::now();
    let df = parse(src.as_bytes());
    assert!(df.is_ok());
    assert!(t.elapsed() < std::time::Duration::from_secs(20));
}

#[test]
fn random_bytes_never_panic() {
    // A small deterministic xorshift generator over an alphabet of interesting bytes.
    let alphabet: &[u8] =
        b"RUNCOPYADDFROMENVONBUILDHEALTHCHECK \t\r\n\\`#<<-'\"[]{},=:$EOF0123\xff\xc3\xa9";
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..3000 {
        let mut buf = Vec::new();
        let len = (state % 200) as usize;
        for _ in 0..len {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            buf.push(alphabet[(state % alphabet.len() as u64) as usize]);
        }
        if let Ok(df) = parse(&buf) {
            let _ = crate::dump(&df);
            let _ = crate::instructions::instructions(&df);
        } else if let Err(d) = parse(&buf) {
            let _ = d.render("Dockerfile", &buf);
        }
    }
}

/// Big inputs that would expose quadratic behaviour (no timing assertion: a quadratic
/// version of these takes minutes, the linear one milliseconds). 100,000 continuation lines,
/// each carrying a flag (the worst case for flag spans), and a 60 KiB line.
#[test]
fn many_continuations_and_long_lines() {
    let n = 100_000;
    let mut src = String::from("FROM busybox\nRUN --network=none \\\n");
    for i in 0..n {
        src.push_str(&format!("  --f{i}=1 \\\n"));
    }
    src.push_str("  true\n");
    let df = parse(src.as_bytes()).expect("parses");
    let run = &df.instructions[1];
    assert_eq!(run.flags.len(), n + 1);
    assert_eq!(run.flag_spans.len(), n + 1);
    assert_eq!(run.segments.len(), n + 2);
    let last = run.flag_spans[n];
    assert_eq!((last.line, last.col), (n as u32 + 2, 3));
    assert_eq!(
        &src.as_bytes()[last.start..last.end],
        format!("--f{}=1", n - 1).as_bytes()
    );
    assert_eq!(run.args, vec!["true".to_string()]);

    let long = format!("FROM busybox\nRUN echo {}\n", "a".repeat(60 * 1024));
    let df = parse(long.as_bytes()).expect("parses");
    assert_eq!(df.instructions[1].args[0].len(), 5 + 60 * 1024);
}

#[test]
fn bytes_that_are_not_utf8_are_kept_and_located() {
    let src = b"FROM a\nRUN printf 'a\xff' \\\n  '\xfe'\nRUN --mount=x\xfd true\nLABEL k=\xfc\n";
    let df = parse(src).unwrap_or_default();
    let n = &df.instructions;
    let run = &n[1];
    assert_eq!(run.args, vec!["printf 'a\u{FFFD}'   '\u{FFFD}'"]);
    assert_eq!(run.raw_args.len(), 1);
    assert_eq!(run.raw_args[0].as_bytes(), b"printf 'a\xff'   '\xfe'");
    assert_eq!(run.original, "RUN printf 'a\u{FFFD}'   '\u{FFFD}'");
    let bad = run.non_utf8.unwrap_or_else(|| panic!("a stray byte"));
    assert_eq!((bad.byte, bad.in_args), (0xff, true));
    assert_eq!((bad.span.line, bad.span.col), (2, 14));
    assert_eq!(&src[bad.span.start..bad.span.end], b"\xff");
    let flag = n[2].non_utf8.unwrap_or_else(|| panic!("a stray byte"));
    assert_eq!((flag.byte, flag.in_args, flag.span.col), (0xfd, false, 14));
    assert_eq!(n[2].flags, vec!["--mount=x\u{FFFD}"]);
    assert!(n[2].raw_args.is_empty());
    let label = n[3].non_utf8.unwrap_or_else(|| panic!("a stray byte"));
    assert_eq!((label.byte, label.span.line, label.span.col), (0xfc, 5, 9));
    assert!(n[0].non_utf8.is_none());
}

#[test]
fn the_stray_byte_of_a_continuation_line_is_located_there() {
    let src = b"RUN a \\\n# comment \xff\n  b\xfe\n";
    let df = parse(src).unwrap_or_default();
    let bad = df.instructions[0]
        .non_utf8
        .unwrap_or_else(|| panic!("a stray byte"));
    assert_eq!((bad.byte, bad.span.line, bad.span.col), (0xfe, 3, 4));
    assert_eq!(&src[bad.span.start..bad.span.end], b"\xfe");
}

#[test]
fn heredoc_bodies_are_bytes() {
    let src = b"RUN <<EOF\na\xff\n\tb\nEOF\nCOPY <<'X' /x\n\xfe\nX\n";
    let df = parse(src).unwrap_or_default();
    let n = &df.instructions;
    assert_eq!(n[0].heredocs[0].content.as_bytes(), b"a\xff\n\tb\n");
    assert_eq!(n[1].heredocs[0].content.as_bytes(), b"\xfe\n");
    assert_eq!(n[1].heredocs[0].name, "X");
    assert!(n[0].non_utf8.is_none() && n[1].non_utf8.is_none());
    // A heredoc name must be text.
    let Err(d) = parse(b"RUN cat <<A\xff\nx\nA\xff\n") else {
        panic!("must fail");
    };
    assert!(d.to_string().contains("is not UTF-8 text"));
}

#[test]
fn text_of_the_escape_range_is_text() {
    // A UTF-8 file is read as it is, characters of U+10FF80..U+10FFFF included.
    let df = parse("LABEL k=\u{10FF80}\nRUN echo \u{10FFFF}\n".as_bytes()).unwrap_or_default();
    assert_eq!(df.instructions[0].args[1], "\u{10FF80}");
    assert_eq!(df.instructions[1].args, vec!["echo \u{10FFFF}"]);
    assert!(df.instructions.iter().all(|n| n.raw_args.is_empty()));
    // In a file that is not UTF-8 they stay exactly what they are, next to stray bytes.
    let mut src = "LABEL k=\u{10FF80}\nRUN echo \u{10FFFF}"
        .as_bytes()
        .to_vec();
    src.extend_from_slice(b" \xff\n");
    let df = parse(&src).unwrap_or_default();
    let n = &df.instructions;
    assert_eq!(n[0].args[1], "\u{10FF80}");
    assert!(n[0].non_utf8.is_none() && n[0].raw_args.is_empty());
    assert_eq!(n[1].raw_args[0].as_bytes(), &src[17..src.len() - 1]);
    let bad = n[1].non_utf8.unwrap_or_else(|| panic!("a stray byte"));
    assert_eq!((bad.byte, bad.span.col), (0xff, 15));
}

#[test]
fn messages_show_stray_bytes_as_replacement_characters() {
    let Err(d) = parse(b"ENV a=1 b\xff\n") else {
        panic!("must fail");
    };
    let text = d.to_string();
    assert!(text.contains("b\u{FFFD}"), "{text}");
    assert!(!text.chars().any(|c| u32::from(c) >= 0x10FF80), "{text}");
}
