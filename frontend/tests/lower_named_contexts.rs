//! Named contexts (`--build-context`) through plan, resolve and lower: which names find a
//! context (stages first, then contexts, then images), a stage replaced by the context of its
//! name, image contexts lowered as `FROM` their image (ONBUILD included), filesystem contexts
//! read by copies, and only used contexts asked for.

mod common;

use std::collections::BTreeMap;
use std::convert::Infallible;

use rbuild_frontend::lower::{self, NamedContext, Resolver};
use rbuild_graph::{FileAction, Graph, ImageConfig, Op};
use rbuild_types::{ImageRef, Platform};

/// A resolver with fixed contexts; every image has `triggers` as its ONBUILD list.
struct Fixed {
    contexts: BTreeMap<String, NamedContext>,
    triggers: Vec<String>,
    asked_contexts: Vec<String>,
    asked_images: Vec<String>,
}

impl Resolver for Fixed {
    type Error = Infallible;

    fn resolve_image(&mut self, r: &ImageRef, _: &Platform) -> Result<ImageConfig, Infallible> {
        self.asked_images.push(r.familiar());
        Ok(ImageConfig {
            on_build: self.triggers.clone(),
            ..ImageConfig::default()
        })
    }

    fn resolve_context(&mut self, key: &str, _: &Platform) -> Result<NamedContext, Infallible> {
        self.asked_contexts.push(key.to_string());
        Ok(self.contexts[key].clone())
    }
}

fn image(name: &str) -> ImageRef {
    ImageRef::parse(name).expect("reference")
}

/// Lowers `src` with the contexts `named` (key → what it is).
fn lower_named(src: &str, named: &[(&str, NamedContext)], triggers: &[&str]) -> (Graph, Fixed) {
    let mut opts = common::opts();
    opts.contexts = named.iter().map(|(k, _)| k.to_string()).collect();
    let df = rbuild_frontend::parse(src.as_bytes()).expect("parses");
    let mut p = lower::plan(&df, &opts).expect("plans");
    let mut r = Fixed {
        contexts: named
            .iter()
            .map(|(k, c)| (k.to_string(), c.clone()))
            .collect(),
        triggers: triggers.iter().map(|t| t.to_string()).collect(),
        asked_contexts: Vec::new(),
        asked_images: Vec::new(),
    };
    let bases = p.resolve(&mut r).expect("resolves");
    (lower::lower(&p, &bases).expect("lowers"), r)
}

fn contexts_read(g: &Graph) -> Vec<String> {
    g.vertices
        .iter()
        .filter_map(|v| match &v.op {
            Op::Context { name } => Some(name.clone()),
            _ => None,
        })
        .collect()
}

fn images(g: &Graph) -> Vec<String> {
    g.vertices
        .iter()
        .filter_map(|v| match &v.op {
            Op::Image(i) => Some(i.reference.familiar()),
            _ => None,
        })
        .collect()
}

fn runs(g: &Graph) -> usize {
    g.vertices
        .iter()
        .filter(|v| matches!(v.op, Op::Exec(_)))
        .count()
}

#[test]
fn copy_from_a_directory_context_reads_it_by_selection() {
    let src = "FROM scratch\nCOPY --from=assets /logo.png /srv/\n";
    let (g, r) = lower_named(src, &[("assets", NamedContext::Filesystem)], &[]);
    assert_eq!(contexts_read(&g), ["assets"]);
    let copy = g
        .vertices
        .iter()
        .find_map(|v| match &v.op {
            Op::File(f) => Some((f, v)),
            _ => None,
        })
        .expect("a copy");
    let FileAction::Copy(c) = &copy.0.actions[0] else {
        panic!("not a copy: {:?}", copy.0.actions);
    };
    // Context paths are relative, as for the main context.
    assert_eq!(c.src, "logo.png");
    assert!(matches!(g.vertex(copy.1.inputs[1]).op, Op::Context { .. }));
    assert_eq!(r.asked_contexts, ["assets"]);
    assert!(r.asked_images.is_empty());
}

#[test]
fn from_an_image_context_is_from_that_image_with_its_triggers() {
    let src = "FROM base\nRUN true\n";
    let named = [("base", NamedContext::Image(image("busybox:1.36")))];
    let (g, r) = lower_named(src, &named, &["RUN echo trigger"]);
    assert_eq!(images(&g), ["busybox:1.36"]);
    assert_eq!(
        runs(&g),
        2,
        "the image's ONBUILD trigger runs as for FROM busybox:1.36"
    );
    assert_eq!(r.asked_images, ["busybox:1.36"]);
}

#[test]
fn names_match_as_image_references() {
    // `FROM docker.io/library/base:latest` is `FROM base`.
    let src = "FROM docker.io/library/base:latest\n";
    let named = [("base", NamedContext::Image(image("busybox")))];
    let (g, _) = lower_named(src, &named, &[]);
    assert_eq!(images(&g), ["busybox:latest"]);
}

#[test]
fn a_context_replaces_the_stage_of_its_name() {
    let src = "FROM alpine AS build\nRUN make\nFROM scratch\nCOPY --from=build /out /out\n";
    let (g, r) = lower_named(src, &[("build", NamedContext::Filesystem)], &[]);
    assert_eq!(runs(&g), 0, "the replaced stage's RUN is not lowered");
    assert!(images(&g).is_empty(), "nor its base resolved");
    assert!(r.asked_images.is_empty());
    // The stage is the context as a filesystem.
    assert!(g
        .vertices
        .iter()
        .any(|v| v.name == "[context build] load from client"));
}

#[test]
fn a_replaced_stage_runs_no_triggers() {
    let src = "FROM alpine AS build\nFROM build\nRUN true\n";
    let named = [("build", NamedContext::Image(image("busybox")))];
    let (g, _) = lower_named(src, &named, &["RUN echo trigger"]);
    // The second stage builds on the replaced stage, whose triggers were cleared.
    assert_eq!(runs(&g), 1);
    assert_eq!(images(&g), ["busybox:latest"]);
}

#[test]
fn stages_win_over_contexts_for_other_stages_names() {
    // `tools` names a stage here; the context of that name replaces it, so `COPY --from`
    // reads the context either way. `other` is an image: no context of that name.
    let src = "FROM scratch AS tools\nFROM other\nCOPY --from=tools /t /t\n";
    let (g, _) = lower_named(src, &[("tools", NamedContext::Filesystem)], &[]);
    assert_eq!(images(&g), ["other:latest"]);
    assert_eq!(contexts_read(&g), ["tools"]);
}

#[test]
fn run_mount_from_a_context_mounts_its_filesystem() {
    let src = "FROM busybox\nRUN --mount=from=src,target=/src cat /src/a\n";
    let (g, _) = lower_named(src, &[("src", NamedContext::Filesystem)], &[]);
    let Some(Op::Exec(run)) = g
        .vertices
        .iter()
        .map(|v| &v.op)
        .find(|o| matches!(o, Op::Exec(_)))
    else {
        panic!("no RUN");
    };
    assert_eq!(run.mounts.len(), 1);
    assert_eq!(contexts_read(&g), ["src"]);
}

#[test]
fn unused_contexts_are_not_resolved_and_scratch_is_never_one() {
    let src = "FROM scratch\nCOPY a /a\n";
    let named = [("unused", NamedContext::Filesystem)];
    let (g, r) = lower_named(src, &named, &[]);
    assert!(r.asked_contexts.is_empty());
    assert_eq!(contexts_read(&g), ["context"]);
}

#[test]
fn a_url_context_is_one_http_vertex_named_context() {
    // BuildKit: `llb.HTTP(url, llb.Filename("context"))`, shared by every use of the name.
    let url = "https://example.com/tools.tar.gz";
    let (g, _) = lower_named(
        "FROM busybox\nCOPY --from=tools context /t\nFROM tools\nRUN --mount=from=tools,target=/m true\n",
        &[("tools", NamedContext::Http { url: url.into() })],
        &[],
    );
    let http: Vec<_> = g
        .vertices
        .iter()
        .filter_map(|v| match &v.op {
            Op::Http(h) => Some(h),
            _ => None,
        })
        .collect();
    assert_eq!(http.len(), 1, "one download for three uses");
    assert_eq!(http[0].url, url);
    assert_eq!(http[0].filename, "context");
    assert_eq!(http[0].checksum, None);
    assert!(
        !g.vertices
            .iter()
            .any(|v| matches!(v.op, Op::Context { .. })),
        "a URL context is no local context"
    );
}
