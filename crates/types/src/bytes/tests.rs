use super::*;

fn round_trip(bytes: &[u8]) {
    let e = escape(bytes);
    assert_eq!(
        unescape(&e).as_ref(),
        bytes,
        "{:?}",
        bytes.escape_ascii().to_string()
    );
}

#[test]
fn text_stays_as_it_is() {
    for s in ["", "abc", "café ♥ 한", "\u{10FF7F}", "\u{0}"] {
        assert!(matches!(escape(s.as_bytes()), Cow::Borrowed(b) if b == s));
        assert!(matches!(unescape(s), Cow::Borrowed(b) if b == s.as_bytes()));
        assert!(matches!(escaped_lossy(s), Cow::Borrowed(b) if b == s));
        assert!(!has_invalid(s));
    }
}

#[test]
fn every_short_byte_string_round_trips() {
    for a in 0..=255u8 {
        round_trip(&[a]);
        for b in 0..=255u8 {
            round_trip(&[a, b]);
        }
    }
    // Around the escape range itself: U+10FF7F, U+10FF80, U+10FFFF and broken variants.
    for tail in [0x80u8, 0xBF, 0x00, 0xC0] {
        for third in [0xBDu8, 0xBE, 0xBF] {
            round_trip(&[0xF4, 0x8F, third, tail]);
            round_trip(&[b'x', 0xF4, 0x8F, third, tail, b'y']);
        }
    }
    round_trip(b"a\xe2\x82A\xf0\x9f\x98");
}

#[test]
fn distinct_bytes_stay_distinct() {
    let inputs: [&[u8]; 6] = [
        b"\xff",
        "\u{10FFFF}".as_bytes(),
        b"\xf4\x8f\xbf\xbf\xff",
        b"\xf4\x8f\xbf",
        "\u{FFFD}".as_bytes(),
        b"\xef\xbf\xbd\xff",
    ];
    for (i, a) in inputs.iter().enumerate() {
        for b in &inputs[i + 1..] {
            assert_ne!(escape(a), escape(b));
        }
    }
}

#[test]
fn units_read_bytes_as_go_does() {
    let e = escape(b"a\xffb\xe2\x82");
    assert_eq!(
        units(&e).collect::<Vec<_>>(),
        vec![
            Unit::Char('a'),
            Unit::Byte(0xff),
            Unit::Char('b'),
            Unit::Byte(0xe2),
            Unit::Byte(0x82)
        ]
    );
    // A real character of the escape range is one unit, itself.
    let e = escape("x\u{10FF80}y".as_bytes());
    assert_eq!(e.chars().count(), 6);
    assert_eq!(
        units(&e).collect::<Vec<_>>(),
        vec![Unit::Char('x'), Unit::Char('\u{10FF80}'), Unit::Char('y')]
    );
    assert_eq!(first_invalid(&e), None);
    let e = escape(b"ok \xc3(");
    assert_eq!(first_invalid(&e), Some((3, 0xc3)));
    assert_eq!(Unit::Byte(0xc3).as_char(), '\u{10FFC3}');
}

#[test]
fn lossy_replaces_each_stray_byte() {
    assert_eq!(lossy(b"a\xe2\x82A"), "a\u{FFFD}\u{FFFD}A");
    assert_eq!(lossy(b"\xff\xfe"), "\u{FFFD}\u{FFFD}");
    assert_eq!(lossy(b"\xf0\x9f\x98"), "\u{FFFD}\u{FFFD}\u{FFFD}");
    assert_eq!(escaped_lossy(&escape(b"S\xff\xfeZ")), "S\u{FFFD}\u{FFFD}Z");
    assert_eq!(
        escaped_lossy(&escape("\u{10FF80}".as_bytes())),
        "\u{10FF80}"
    );
}

#[test]
fn byte_strings_serialise_like_strings_when_utf8() {
    let text = ByteString::from("/bin/sh -c 'echo é'");
    let as_string = serde_json::to_string("/bin/sh -c 'echo é'").unwrap_or_default();
    assert_eq!(serde_json::to_string(&text).unwrap_or_default(), as_string);
    let raw = ByteString::from(b"a\xff".to_vec());
    let json = serde_json::to_string(&raw).unwrap_or_default();
    assert_eq!(json, "[97,255]");
    for v in [text, raw, ByteString::default()] {
        let json = serde_json::to_string(&v).unwrap_or_default();
        let back: ByteString = serde_json::from_str(&json).unwrap_or_default();
        assert_eq!(back, v);
    }
    assert_eq!(
        format!("{:?}", ByteString::from(b"a\xff".to_vec())),
        "b\"a\\xff\""
    );
    assert_eq!(format!("{:?}", ByteString::from("a\"")), "\"a\\\"\"");
}
