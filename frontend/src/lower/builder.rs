//! The graph under construction: appends vertices in dependency order and shares the ones
//! BuildKit would merge (one Scratch, one Image per reference, one Context per name, one
//! vertex per identical remote source, one filesystem copy per named context).

use std::collections::BTreeMap;

use rbuild_graph::{
    CopyAction, FileAction, FileOp, Graph, HttpOp, ImageConfig, ImageOp, Op, Origin, Vertex,
    VertexId,
};
use rbuild_types::{ImageRef, Platform, Span};

/// What a vertex is called: its progress name, and the Dockerfile step it implements (none
/// for internal vertices, which convert from their name alone).
#[derive(Clone, Debug)]
pub struct Label {
    pub name: String,
    pub origin: Option<Origin>,
}

impl From<String> for Label {
    fn from(name: String) -> Label {
        Label { name, origin: None }
    }
}

impl From<&str> for Label {
    fn from(name: &str) -> Label {
        Label::from(name.to_string())
    }
}

/// Appends vertices; every input of a new vertex already exists, so the order is topological.
#[derive(Debug, Default)]
pub struct Builder {
    vertices: Vec<Vertex>,
    images: BTreeMap<(ImageRef, Platform), VertexId>,
    scratch: Option<VertexId>,
    context: Option<VertexId>,
    /// Named contexts (`--build-context`) by key: their `Context` vertex, and the `File`
    /// vertex holding all of one as a filesystem.
    named: BTreeMap<String, VertexId>,
    named_fs: BTreeMap<String, VertexId>,
    /// `Http`/`Git` vertices by their op (as JSON), so a URL added twice is fetched once.
    remotes: BTreeMap<String, VertexId>,
}

impl Builder {
    /// Appends a vertex and returns its id.
    pub fn add(
        &mut self,
        op: Op,
        inputs: Vec<VertexId>,
        label: impl Into<Label>,
        span: Option<Span>,
        ignore_cache: bool,
    ) -> VertexId {
        let id = VertexId(self.vertices.len() as u32);
        let Label { name, origin } = label.into();
        self.vertices.push(Vertex {
            op,
            inputs,
            name,
            span,
            ignore_cache,
            origin,
        });
        id
    }

    /// The vertex for `reference` on `platform`, created on first use (its name and span are
    /// those of the first use).
    pub fn image(
        &mut self,
        reference: &ImageRef,
        platform: &Platform,
        label: impl Into<Label>,
        span: Span,
    ) -> VertexId {
        let key = (reference.clone(), platform.clone());
        if let Some(id) = self.images.get(&key) {
            return *id;
        }
        let op = Op::Image(ImageOp {
            reference: reference.clone(),
            platform: platform.clone(),
        });
        let id = self.add(op, Vec::new(), label, Some(span), false);
        self.images.insert(key, id);
        id
    }

    /// The vertex of a remote source (`Http`/`Git` op, no inputs), created on first use
    /// (its name, span and `ignore_cache` are those of the first use).
    pub fn remote(
        &mut self,
        op: Op,
        label: impl Into<Label>,
        span: Span,
        ignore_cache: bool,
    ) -> VertexId {
        // Serialising our own plain data cannot fail; an empty key would only not share.
        let key = serde_json::to_string(&op).unwrap_or_default();
        if let Some(id) = self.remotes.get(&key).filter(|_| !key.is_empty()) {
            return *id;
        }
        let id = self.add(op, Vec::new(), label, Some(span), ignore_cache);
        self.remotes.insert(key, id);
        id
    }

    /// The one empty filesystem.
    pub fn scratch(&mut self) -> VertexId {
        if let Some(id) = self.scratch {
            return id;
        }
        let id = self.add(Op::Scratch, Vec::new(), "scratch", None, false);
        self.scratch = Some(id);
        id
    }

    /// The one main build context.
    pub fn context(&mut self) -> VertexId {
        if let Some(id) = self.context {
            return id;
        }
        let op = Op::Context {
            name: "context".into(),
        };
        let id = self.add(op, Vec::new(), "[internal] load build context", None, false);
        self.context = Some(id);
        id
    }

    /// The `Context` vertex of the named context `key`, which `COPY --from` reads (keyed by
    /// what it selects, like the main context).
    pub fn named_context(&mut self, key: &str) -> VertexId {
        if let Some(id) = self.named.get(key) {
            return *id;
        }
        let op = Op::Context {
            name: key.to_string(),
        };
        let id = self.add(op, Vec::new(), format!("[context {key}]"), None, false);
        self.named.insert(key.to_string(), id);
        id
    }

    /// The named context `key` as a filesystem (`FROM`, `RUN --mount from=`): a `File`
    /// vertex on scratch copying all of it to `/` (the IR reads a context only through
    /// copies), keyed by the content it copies. BuildKit transfers it as a local source.
    pub fn named_filesystem(&mut self, key: &str) -> VertexId {
        if let Some(id) = self.named_fs.get(key) {
            return *id;
        }
        // Scratch before the context, as for the main context's copies.
        self.scratch();
        let context = self.named_context(key);
        let name = format!("[context {key}] load from client");
        let id = self.copy_to_scratch(context, ".", "/", name);
        self.named_fs.insert(key.to_string(), id);
        id
    }

    /// The named context `key` that is the http(s) URL `url`: an `Http` vertex whose layer
    /// holds the body as `/context`, as BuildKit's named URL contexts (no checksum).
    pub fn named_http(&mut self, key: &str, url: &str) -> VertexId {
        if let Some(id) = self.named_fs.get(key) {
            return *id;
        }
        let op = Op::Http(HttpOp {
            url: url.to_string(),
            filename: "context".to_string(),
            checksum: None,
        });
        let id = self.add(
            op,
            Vec::new(),
            format!("[context {key}] {url}"),
            None,
            false,
        );
        self.named_fs.insert(key.to_string(), id);
        id
    }

    /// A `File` vertex on scratch holding `src` of `context` (a `Context` vertex) at `dest`,
    /// as it is (no chown, chmod or excludes); it never ignores the cache, since its key holds
    /// the digests of what it copies.
    pub fn copy_to_scratch(
        &mut self,
        context: VertexId,
        src: &str,
        dest: &str,
        name: String,
    ) -> VertexId {
        let copy = CopyAction {
            source: 1,
            src: src.to_string(),
            dest: dest.to_string(),
            chown: None,
            chmod: None,
            allow_empty_wildcard: false,
            unpack: false,
            exclude: Vec::new(),
            parents: None,
        };
        let inputs = vec![self.scratch(), context];
        let op = Op::File(FileOp {
            actions: vec![FileAction::Copy(copy)],
        });
        self.add(op, inputs, name, None, false)
    }

    /// The finished graph.
    pub fn finish(self, target: VertexId, image: ImageConfig) -> Graph {
        Graph {
            vertices: self.vertices,
            target,
            image,
        }
    }
}
