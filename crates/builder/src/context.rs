//! The build context, opened lazily: a context directory is walked (its `.dockerignore` read,
//! its tree listed) only after the Dockerfile has been parsed and lowered, and only when the
//! graph has a step that reads it (COPY/ADD of local files, `RUN --mount=type=bind` without
//! `from`). A Dockerfile with a syntax error, or one that never reads its context, never
//! walks it, however large or unreadable the tree (BuildKit transfers the context on demand
//! too). Contexts that arrive whole (an archive, a git clone) are already open.

use std::path::{Path, PathBuf};

use rbuild_context::BuildContext;
use rbuild_graph::{Graph, Op};

use crate::error::BuildError;

/// A context, opened or not yet.
#[derive(Debug)]
pub(crate) enum Context {
    /// Already open (empty, unpacked from an archive, cloned).
    Ready(Box<BuildContext>),
    /// A directory to walk when needed, honouring the `.dockerignore` of `dockerfile`.
    Dir {
        dir: PathBuf,
        dockerfile: Option<PathBuf>,
        stat_cache: PathBuf,
    },
}

impl Context {
    /// The opened context if `graph` reads it; `None` (nothing walked) otherwise.
    pub(crate) fn open_for(self, graph: &Graph) -> Result<Option<BuildContext>, BuildError> {
        let reads = graph
            .vertices
            .iter()
            .any(|v| matches!(v.op, Op::Context { .. }));
        if !reads {
            return Ok(None);
        }
        match self {
            Context::Ready(ctx) => Ok(Some(*ctx)),
            Context::Dir {
                dir,
                dockerfile,
                stat_cache,
            } => {
                let ctx = BuildContext::from_dir(&dir, dockerfile.as_deref())
                    .map_err(|source| BuildError::Context { dir, source })?;
                Ok(Some(ctx.with_stat_cache(&stat_cache)))
            }
        }
    }
}

/// The stat cache of a context directory: one file per directory, under the store root.
pub(crate) fn stat_cache_path(store_root: &Path, dir: &Path) -> PathBuf {
    let canonical = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let id = rbuild_types::Digest::of(canonical.as_os_str().as_encoded_bytes());
    store_root
        .join("context-stat")
        .join(format!("{}.json", &id.hex()[..32]))
}
