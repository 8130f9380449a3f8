//! [`CancelToken`]: how the solver tells running work to stop when another vertex failed.
//! Defined in `rbuild-ports` (executors take it in every request) and re-exported here under
//! its old path; see [`rbuild_ports::cancel`] for its invariants.

pub use rbuild_ports::cancel::{CancelGuard, CancelToken};
