//! Fuzzes the whole parser path: arbitrary bytes → parse → dump / typed instructions /
//! diagnostic rendering. Any panic, stack overflow or timeout is a bug. Also checks that
//! nothing of the parser's escaped form (code points U+10FF80..U+10FFFF standing for stray
//! bytes) leaks into the tree, and that the exact bytes kept for arguments match their text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rbuild_frontend::Node;
use rbuild_types::bytes::lossy;

/// Without a byte 0xF4 the input holds no character of U+10FF80..U+10FFFF, so none may
/// appear in the tree.
fn check(node: &Node, may_hold_range: bool) {
    let leaked = |s: &str| !may_hold_range && s.chars().any(|c| u32::from(c) >= 0x10_FF80);
    assert!(!leaked(&node.original) && !leaked(&node.keyword));
    assert!(!node.flags.iter().any(|f| leaked(f)));
    assert!(!node.args.iter().any(|a| leaked(a)));
    assert!(node.raw_args.is_empty() || node.raw_args.len() == node.args.len());
    for (raw, text) in node.raw_args.iter().zip(&node.args) {
        assert_eq!(lossy(raw.as_bytes()), text.as_str());
    }
    for h in &node.heredocs {
        assert!(!leaked(&h.name));
    }
    if let Some(next) = &node.next {
        check(next, may_hold_range);
    }
}

fuzz_target!(|data: &[u8]| {
    match rbuild_frontend::parse(data) {
        Ok(df) => {
            let may_hold_range = data.contains(&0xF4);
            for node in &df.instructions {
                check(node, may_hold_range);
            }
            let _ = rbuild_frontend::dump(&df);
            if let Err(d) = rbuild_frontend::instructions(&df) {
                let _ = d.render("Dockerfile", data);
            }
        }
        Err(d) => {
            let _ = d.render("Dockerfile", data);
        }
    }
});
