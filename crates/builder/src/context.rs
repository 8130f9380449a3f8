//! The build context, opened lazily: a context directory is walked (its `.dockerignore` read,
//! its tree listed) only after the Dockerfile has been parsed and lowered, and only when the
//! graph has a step that reads it (COPY/ADD of local files, `RUN --mount=type=bind` without
//! `from`). A Dockerfile with a syntax error, or one that never reads its context, never
//! walks it, however large or unreadable the tree (BuildKit transfers the context on demand
//! too). Contexts that arrive whole (an archive, a git clone) are already open. Named
//! filesystem contexts (`--build-context`) are opened the same way: each only when the graph
//! reads it ([`open_named`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rbuild_context::BuildContext;
use rbuild_graph::{Graph, Op};
use rbuild_solver::ports::RemoteSource;

use crate::error::BuildError;
use crate::named::NamedSpec;

/// The name the graph gives the main context.
pub(crate) const MAIN: &str = "context";

/// The names of the contexts `graph` reads, in vertex order, without repeats.
fn read_contexts(graph: &Graph) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for v in &graph.vertices {
        if let Op::Context { name } = &v.op {
            if !out.contains(&name.as_str()) {
                out.push(name);
            }
        }
    }
    out
}

/// Opens every named context `graph` reads (none is touched otherwise), by name.
pub(crate) fn open_named(
    graph: &Graph,
    named: &BTreeMap<String, NamedSpec>,
    remote: &dyn RemoteSource,
    stat_cache: impl Fn(&Path) -> PathBuf,
) -> Result<Vec<(String, BuildContext)>, BuildError> {
    let mut out = Vec::new();
    for name in read_contexts(graph).into_iter().filter(|n| *n != MAIN) {
        let Some(spec) = named.get(name) else {
            continue;
        };
        let Some(opened) = crate::named::open(spec, remote, &stat_cache) else {
            continue;
        };
        let ctx = opened.map_err(|source| BuildError::NamedContext {
            name: name.to_string(),
            origin: spec.origin(),
            source,
        })?;
        out.push((name.to_string(), ctx));
    }
    Ok(out)
}

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
        if !read_contexts(graph).contains(&MAIN) {
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
