//! Fuzzes the whole parser path: arbitrary bytes → parse → dump / typed instructions /
//! diagnostic rendering. Any panic, stack overflow or timeout is a bug.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match rbuild_frontend::parse(data) {
        Ok(df) => {
            let _ = rbuild_frontend::dump(&df);
            let _ = rbuild_frontend::instructions(&df);
        }
        Err(d) => {
            let _ = d.render("Dockerfile", data);
        }
    }
});
