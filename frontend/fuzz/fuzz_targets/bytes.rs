//! Fuzzes the escaped form of `rbuild_types::bytes`, which the parser and the context's path
//! table rely on: it must be lossless, tell stray bytes from characters as Go does, and the
//! JSON form of `ByteString` must round-trip. Any panic is a bug.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rbuild_types::bytes::{escape, first_invalid, lossy, unescape, units, Unit};
use rbuild_types::ByteString;

fuzz_target!(|data: &[u8]| {
    let e = escape(data);
    assert_eq!(unescape(&e).as_ref(), data);
    assert_eq!(first_invalid(&e).is_none(), std::str::from_utf8(data).is_ok());
    // Units: one per character of the text, one per stray byte, covering every byte.
    let mut n = 0;
    for u in units(&e) {
        n += match u {
            Unit::Char(c) => c.len_utf8(),
            Unit::Byte(_) => 1,
        };
    }
    assert_eq!(n, data.len());
    let shown = lossy(data);
    assert_eq!(shown.chars().count(), units(&e).count());
    let b = ByteString::from(data.to_vec());
    if let Ok(json) = serde_json::to_string(&b) {
        let back: ByteString = serde_json::from_str(&json).unwrap_or_default();
        assert_eq!(back, b);
    }
});
