//! The build IR: what the frontend produces and the solver consumes.
//!
//! A [`Graph`] is pure data: a list of [`Vertex`]es in topological order (every input of a
//! vertex has a smaller index) and the id of the target vertex, plus the [`ImageConfig`] of the
//! image to emit. Nothing here knows about Dockerfile text or how ops are executed.
//!
//! Result model, shared by every op: the result of a vertex that yields a filesystem is an
//! ordered list of layers (bottom first). `Scratch` yields none, `Image` yields the image's
//! layers, and each `Exec` and `File` op yields its first input's layers plus exactly one new
//! layer (possibly empty). `Http` and `Git` yield exactly one layer (the downloaded file, the
//! checked-out tree) and have no inputs. So the target's layers pair up, in order, with the image history
//! entries whose `empty_layer` is false.

mod config;
mod exec_meta;
mod ops;
mod origin;
mod proxy;

pub use config::{Healthcheck, HistoryEntry, ImageConfig};
pub use exec_meta::{ExecMeta, HostIp, MetaError, Ulimit, UlimitName, UNLIMITED};
pub use ops::{
    BindMount, CacheMount, CacheSharing, CopyAction, ExecOp, FileAction, FileMode, FileOp, GitOp,
    HttpOp, ImageOp, MkdirAction, MkfileAction, Mount, MountFrom, NetworkMode, Op, SecretMount,
    SecurityMode, SshMount, TmpfsMount,
};
pub use origin::{Instruction, Origin};
pub use proxy::{ProxyEnv, ProxyVar};

use serde::{Deserialize, Serialize};

/// Index of a vertex in [`Graph::vertices`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct VertexId(pub u32);

impl VertexId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// One unit of work.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Vertex {
    pub op: Op,
    /// Inputs, by id. Their meaning depends on the op (see [`Op`]).
    pub inputs: Vec<VertexId>,
    /// What progress output shows, e.g. `[build 2/4] RUN make`.
    pub name: String,
    /// Where in the Dockerfile this vertex comes from, for error reports.
    pub span: Option<rbuild_types::Span>,
    /// Run even if a cached result exists (`--no-cache`, `--no-cache-filter`).
    pub ignore_cache: bool,
    /// The Dockerfile step it implements; `None` for internal vertices (scratch, the build
    /// context, inline documents, context copies for RUN mounts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<Origin>,
}

/// A build DAG. Invariant (checked by [`Graph::validate`]): inputs point to smaller indices,
/// the target exists, and each op has the inputs it needs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Graph {
    pub vertices: Vec<Vertex>,
    pub target: VertexId,
    /// The configuration of the image the target becomes (base config already merged in).
    pub image: ImageConfig,
}

/// A graph that breaks the invariants above.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GraphError {
    #[error("vertex {vertex} has input {input}, which is not an earlier vertex")]
    InputOrder { vertex: u32, input: u32 },
    #[error("target vertex {0} does not exist")]
    MissingTarget(u32),
    #[error("vertex {vertex} ({op}) needs a root filesystem as its first input")]
    MissingRoot { vertex: u32, op: &'static str },
    #[error(
        "vertex {vertex}: file action refers to input {index}, but the vertex has {count} inputs"
    )]
    BadSourceIndex {
        vertex: u32,
        index: usize,
        count: usize,
    },
    #[error("vertex {vertex} ({op}) takes no inputs, but has {count}")]
    UnexpectedInputs {
        vertex: u32,
        op: &'static str,
        count: usize,
    },
    #[error("vertex {vertex}: invalid {op} source: {problem}")]
    BadRemote {
        vertex: u32,
        op: &'static str,
        problem: &'static str,
    },
    #[error(
        "vertex {vertex}: mount refers to input {index}, but the vertex has {count} inputs \
         (input 0 is the root)"
    )]
    BadMountSource {
        vertex: u32,
        index: usize,
        count: usize,
    },
}

impl Graph {
    pub fn vertex(&self, id: VertexId) -> &Vertex {
        &self.vertices[id.index()]
    }

    /// Checks the structural invariants.
    pub fn validate(&self) -> Result<(), GraphError> {
        if self.target.index() >= self.vertices.len() {
            return Err(GraphError::MissingTarget(self.target.0));
        }
        for (i, v) in self.vertices.iter().enumerate() {
            let vertex = i as u32;
            if let Some(bad) = v.inputs.iter().find(|inp| inp.0 >= vertex) {
                return Err(GraphError::InputOrder {
                    vertex,
                    input: bad.0,
                });
            }
            match &v.op {
                Op::Exec(_) | Op::File(_) if v.inputs.is_empty() => {
                    return Err(GraphError::MissingRoot {
                        vertex,
                        op: v.op.kind(),
                    })
                }
                Op::File(f) => {
                    for a in &f.actions {
                        if let FileAction::Copy(c) = a {
                            if c.source >= v.inputs.len() {
                                return Err(GraphError::BadSourceIndex {
                                    vertex,
                                    index: c.source,
                                    count: v.inputs.len(),
                                });
                            }
                        }
                    }
                }
                Op::Exec(e) => {
                    for m in &e.mounts {
                        let source = match m {
                            Mount::Bind(b) => Some(b.source),
                            Mount::Cache(c) => c.from.as_ref().map(|f| f.source),
                            _ => None,
                        };
                        if let Some(index) = source.filter(|&s| s == 0 || s >= v.inputs.len()) {
                            return Err(GraphError::BadMountSource {
                                vertex,
                                index,
                                count: v.inputs.len(),
                            });
                        }
                    }
                }
                Op::Http(_) | Op::Git(_) if !v.inputs.is_empty() => {
                    return Err(GraphError::UnexpectedInputs {
                        vertex,
                        op: v.op.kind(),
                        count: v.inputs.len(),
                    })
                }
                Op::Http(h) => {
                    if let Some(problem) = remote_problem(&h.url, Some(&h.filename)) {
                        return Err(GraphError::BadRemote {
                            vertex,
                            op: "http",
                            problem,
                        });
                    }
                }
                Op::Git(g) => {
                    let problem = remote_problem(&g.remote, None)
                        .or(g
                            .reference
                            .as_deref()
                            .filter(|r| r.starts_with('-') || r.is_empty())
                            .map(|_| "the reference is empty or starts with '-'"))
                        .or(g
                            .subdir
                            .as_deref()
                            .filter(|s| s.starts_with('/'))
                            .map(|_| "the subdirectory is absolute"));
                    if let Some(problem) = problem {
                        return Err(GraphError::BadRemote {
                            vertex,
                            op: "git",
                            problem,
                        });
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The ids of every vertex the target depends on (itself included), ascending.
    pub fn reachable(&self) -> Vec<VertexId> {
        self.reachable_from(&[self.target])
    }

    /// The vertices `targets` depend on (themselves included), in index order. Targets that
    /// do not exist are left out ([`Graph::validate`] checks `target` only).
    pub fn reachable_from(&self, targets: &[VertexId]) -> Vec<VertexId> {
        let mut seen = vec![false; self.vertices.len()];
        let mut stack: Vec<VertexId> = targets
            .iter()
            .copied()
            .filter(|t| t.index() < self.vertices.len())
            .collect();
        while let Some(id) = stack.pop() {
            if std::mem::replace(&mut seen[id.index()], true) {
                continue;
            }
            stack.extend(self.vertex(id).inputs.iter().copied());
        }
        (0..self.vertices.len() as u32)
            .filter(|&i| seen[i as usize])
            .map(VertexId)
            .collect()
    }
}

/// Several graphs as one, for a multi-platform build (one graph per platform): their
/// vertices concatenated in order, so every input stays earlier; returns it with each graph's
/// target, in order. The first graph's target and image config are the result's. Work that is
/// the same in two graphs (a stage built on `$BUILDPLATFORM`) has the same cache key, and the
/// solver runs each key once. `rename` names each vertex of graph `i` (e.g. with its platform).
pub fn concat(
    graphs: Vec<Graph>,
    rename: impl Fn(usize, &str) -> String,
) -> (Graph, Vec<VertexId>) {
    let mut vertices = Vec::new();
    let mut targets = Vec::new();
    let mut image = None;
    for (i, graph) in graphs.into_iter().enumerate() {
        let offset = vertices.len() as u32;
        targets.push(VertexId(graph.target.0 + offset));
        image.get_or_insert(graph.image);
        vertices.extend(graph.vertices.into_iter().map(|mut v| {
            for input in &mut v.inputs {
                input.0 += offset;
            }
            v.name = rename(i, &v.name);
            v
        }));
    }
    let graph = Graph {
        vertices,
        target: targets.first().copied().unwrap_or(VertexId(0)),
        image: image.unwrap_or_default(),
    };
    (graph, targets)
}

/// What is wrong with a remote source's location (and an http file name), if anything.
fn remote_problem(location: &str, filename: Option<&str>) -> Option<&'static str> {
    if location.is_empty() || location.starts_with('-') {
        return Some("the location is empty or starts with '-'");
    }
    match filename {
        Some("" | "." | "..") => Some("the file name is empty, '.' or '..'"),
        Some(f) if f.contains('/') || f.contains('\0') => Some("the file name holds '/' or NUL"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(op: Op, inputs: &[u32]) -> Vertex {
        Vertex {
            op,
            inputs: inputs.iter().map(|&i| VertexId(i)).collect(),
            name: String::new(),
            span: None,
            ignore_cache: false,
            origin: None,
        }
    }

    fn exec() -> Op {
        Op::Exec(ExecOp {
            platform: rbuild_types::Platform::host(),
            args: vec!["true".into()],
            env: vec![],
            cwd: "/".into(),
            user: String::new(),
            network: NetworkMode::Default,
            mounts: vec![],
            security: SecurityMode::Sandbox,
            proxy_env: Default::default(),
            meta: Default::default(),
        })
    }

    #[test]
    fn concatenated_graphs_keep_their_inputs_and_targets() {
        let one = Graph {
            vertices: vec![v(Op::Scratch, &[]), v(exec(), &[0])],
            target: VertexId(1),
            image: ImageConfig::default(),
        };
        let (both, targets) = concat(vec![one.clone(), one], |i, name| format!("{i} {name}"));
        assert_eq!(targets, vec![VertexId(1), VertexId(3)]);
        assert_eq!(both.vertices[3].inputs, vec![VertexId(2)]);
        assert!(both.vertices[2].name.starts_with("1 "));
        assert!(both.validate().is_ok());
        assert_eq!(both.reachable_from(&targets).len(), 4);
        assert_eq!(both.reachable().len(), 2);
    }

    #[test]
    fn validate_and_reach() {
        let g = Graph {
            vertices: vec![v(Op::Scratch, &[]), v(Op::Scratch, &[]), v(exec(), &[1])],
            target: VertexId(2),
            image: ImageConfig::default(),
        };
        g.validate().unwrap();
        assert_eq!(g.reachable(), vec![VertexId(1), VertexId(2)]);
    }

    #[test]
    fn rejects_forward_inputs_and_rootless_exec() {
        let g = Graph {
            vertices: vec![v(Op::Scratch, &[1]), v(Op::Scratch, &[])],
            target: VertexId(1),
            image: ImageConfig::default(),
        };
        assert!(matches!(g.validate(), Err(GraphError::InputOrder { .. })));
        let g = Graph {
            vertices: vec![v(exec(), &[])],
            target: VertexId(0),
            image: ImageConfig::default(),
        };
        assert!(matches!(g.validate(), Err(GraphError::MissingRoot { .. })));
    }
    #[test]
    fn remote_sources_take_no_inputs_and_safe_names() {
        let http = |filename: &str| {
            Op::Http(HttpOp {
                url: "https://example.com/a".into(),
                filename: filename.into(),
                checksum: None,
            })
        };
        let graph = |vertices| Graph {
            vertices,
            target: VertexId(0),
            image: ImageConfig::default(),
        };
        graph(vec![v(http("a"), &[])]).validate().unwrap();
        for bad in ["", "..", "a/b"] {
            assert!(matches!(
                graph(vec![v(http(bad), &[])]).validate(),
                Err(GraphError::BadRemote { .. })
            ));
        }
        let git = Op::Git(GitOp {
            remote: "git://h/r.git".into(),
            reference: Some("--upload-pack=x".into()),
            subdir: None,
            keep_git_dir: false,
            checksum: None,
        });
        assert!(matches!(
            graph(vec![v(git, &[])]).validate(),
            Err(GraphError::BadRemote { .. })
        ));
        let g = Graph {
            vertices: vec![v(Op::Scratch, &[]), v(http("a"), &[0])],
            target: VertexId(1),
            image: ImageConfig::default(),
        };
        assert!(matches!(
            g.validate(),
            Err(GraphError::UnexpectedInputs { .. })
        ));
    }
}
