//! Progress events the solver emits; the binary renders them (tty, plain, json).

use serde::{Deserialize, Serialize};

use crate::explain::MissReason;
use crate::ports::LogStream;

/// Something that happened to a vertex. `vertex` is the index in the graph; `name` is the
/// vertex's display name.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    Started {
        vertex: u32,
        name: String,
    },
    Cached {
        vertex: u32,
        name: String,
    },
    Log {
        vertex: u32,
        stream: LogStream,
        data: Vec<u8>,
    },
    Done {
        vertex: u32,
        seconds: f64,
    },
    Failed {
        vertex: u32,
        seconds: f64,
        error: String,
    },
    /// The vertex was running when another one failed, and was stopped.
    Canceled {
        vertex: u32,
        seconds: f64,
    },
    /// `--explain-cache`: why the vertex missed the cache, before it runs. Emitted only when
    /// the solver was asked to explain.
    /// A result `--cache-from` had for the step could not be imported; the step runs.
    CacheImportFailed {
        vertex: u32,
        name: String,
        error: String,
    },
    CacheMiss {
        vertex: u32,
        name: String,
        reasons: Vec<MissReason>,
    },
}
