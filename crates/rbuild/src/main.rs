//! The rbuild binary (work in progress).
fn main() {}
