//! ONBUILD triggers that read another stage or an image (`COPY --from`, `RUN --mount from=`),
//! bound at lowering time as BuildKit's `initOnBuildTriggers`/`toCommand` do: a stage of the
//! child Dockerfile by name (case-insensitive) or index, else an image. The stages they read
//! are built even when the target does not otherwise need them, the images they read are
//! listed for resolution, and a `--from` naming the current or a later stage is an error at
//! the `FROM` that pulls the trigger in.

mod common;

use std::collections::BTreeMap;
use std::convert::Infallible;

use rbuild_frontend::lower::{lower, plan, Plan, ResolveError};
use rbuild_graph::{FileAction, Graph, ImageConfig, Mount, Op, Vertex, VertexId};
use rbuild_types::{ImageRef, Platform};

use common::{bases_with, flat, opts};

fn plan_src(src: &str) -> Plan {
    let df = rbuild_frontend::parse(src.as_bytes()).expect("parses");
    plan(&df, &opts()).unwrap_or_else(|d| panic!("{src:?}: {:?}", flat(d)))
}

fn config(on_build: &[&str]) -> ImageConfig {
    ImageConfig {
        on_build: on_build.iter().map(|s| s.to_string()).collect(),
        ..ImageConfig::default()
    }
}

fn image(name: &str) -> ImageRef {
    ImageRef::parse(name).expect("reference")
}

/// Resolves base images through the plan's resolver loop: `base` carries `triggers`, every
/// other image none; the plan learns what the triggers read, until nothing is new.
fn resolve(
    p: &mut Plan,
    triggers: &[&str],
) -> Result<rbuild_frontend::lower::BaseConfigs, Vec<String>> {
    let mut resolver = |r: &ImageRef, _: &Platform| -> Result<ImageConfig, Infallible> {
        Ok(if *r == image("base") {
            config(triggers)
        } else {
            config(&[])
        })
    };
    p.resolve(&mut resolver).map_err(|e| match e {
        ResolveError::Dockerfile(d) => flat(d),
        ResolveError::Image { source, .. } => match source {},
    })
}

fn lower_with(src: &str, triggers: &[&str]) -> Result<Graph, Vec<String>> {
    let mut p = plan_src(src);
    let bases = resolve(&mut p, triggers)?;
    let g = lower(&p, &bases).map_err(flat)?;
    g.validate().expect("lowered graph is valid");
    Ok(g)
}

fn vertex(g: &Graph, id: VertexId) -> &Vertex {
    &g.vertices[id.index()]
}

/// The vertex of the trigger (its name says `ONBUILD`).
fn trigger_vertex(g: &Graph) -> &Vertex {
    g.vertices
        .iter()
        .find(|v| v.name.contains("ONBUILD"))
        .expect("the trigger's vertex")
}

fn image_name(v: &Vertex) -> String {
    match &v.op {
        Op::Image(i) => i.reference.to_string(),
        op => panic!("not an image: {op:?}"),
    }
}

#[test]
fn copy_from_an_earlier_stage_the_target_did_not_need() {
    let src = "FROM alpine AS assets\nRUN make\nFROM base\nRUN true\n";
    let mut p = plan_src(src);
    assert_eq!(p.needed, vec![1], "before the triggers are known");
    let bases = resolve(&mut p, &["COPY --from=assets /out /app"]).expect("resolves");
    assert_eq!(p.needed, vec![0, 1]);
    assert!(
        bases.contains_key(&(image("alpine"), opts().platform)),
        "{bases:?}"
    );
    let g = lower(&p, &bases).expect("lowers");
    let copy = trigger_vertex(&g);
    assert_eq!(
        copy.name,
        "[stage-1 2/3] ONBUILD COPY --from=assets /out /app"
    );
    let Op::File(f) = &copy.op else {
        panic!("{:?}", copy.op)
    };
    assert!(matches!(&f.actions[0], FileAction::Copy(c) if c.src == "/out" && c.source == 1));
    // Input 1 is the stage's result: its RUN.
    let from = vertex(&g, copy.inputs[1]);
    assert!(from.name.contains("RUN make"), "{}", from.name);
}

#[test]
fn copy_from_a_stage_by_index_or_upper_case_name() {
    for from in ["0", "ASSETS"] {
        let trigger = format!("COPY --from={from} /out /app");
        let g = lower_with(
            "FROM alpine AS assets\nRUN make\nFROM base\n",
            &[trigger.as_str()],
        )
        .expect("lowers");
        let copy = trigger_vertex(&g);
        assert!(
            vertex(&g, copy.inputs[1]).name.contains("RUN make"),
            "{from}"
        );
    }
}

#[test]
fn copy_from_an_image_reads_an_image_vertex() {
    let src = "FROM base\nRUN true\n";
    let mut p = plan_src(src);
    let bases = resolve(&mut p, &["COPY --from=tools:1 /bin/tool /usr/bin/"]).expect("resolves");
    let images: Vec<ImageRef> = p.base_images().into_iter().map(|(r, _)| r).collect();
    assert_eq!(images, vec![image("base"), image("tools:1")]);
    let g = lower(&p, &bases).expect("lowers");
    let copy = trigger_vertex(&g);
    assert_eq!(
        image_name(vertex(&g, copy.inputs[1])),
        "docker.io/library/tools:1"
    );
    // Lowering binds an image it was not given a config for (the solver resolves it).
    let only_base: BTreeMap<_, _> = [(
        (image("base"), opts().platform),
        config(&["COPY --from=tools:1 /x /x"]),
    )]
    .into_iter()
    .collect();
    let g = lower(&plan_src(src), &only_base).expect("lowers without the tools config");
    assert_eq!(
        image_name(vertex(&g, trigger_vertex(&g).inputs[1])),
        "docker.io/library/tools:1"
    );
}

#[test]
fn run_mount_from_a_stage_or_an_image() {
    let g = lower_with(
        "FROM alpine AS cfg\nRUN gen\nFROM base\n",
        &["RUN --mount=from=cfg,target=/opt/cfg --mount=type=cache,from=seed:2,target=/c true"],
    )
    .expect("lowers");
    let run = trigger_vertex(&g);
    let Op::Exec(e) = &run.op else {
        panic!("{:?}", run.op)
    };
    let Mount::Bind(b) = &e.mounts[0] else {
        panic!("{:?}", e.mounts[0])
    };
    assert!(vertex(&g, run.inputs[b.source]).name.contains("RUN gen"));
    let Mount::Cache(c) = &e.mounts[1] else {
        panic!("{:?}", e.mounts[1])
    };
    let seed = c.from.as_ref().expect("seeded").source;
    assert_eq!(
        image_name(vertex(&g, run.inputs[seed])),
        "docker.io/library/seed:2"
    );
}

#[test]
fn triggers_of_a_base_stage_bind_in_the_plan() {
    // The base is a stage: its ONBUILD is known without any image config.
    let p = plan_src(
        "FROM alpine AS assets\nRUN make\n\
         FROM alpine AS tmpl\nONBUILD COPY --from=assets /out /app\n\
         FROM tmpl\n",
    );
    assert_eq!(p.needed, vec![0, 1, 2]);
    let g = lower(&p, &bases_with(&p, &config(&[]))).expect("lowers");
    let copy = trigger_vertex(&g);
    assert!(vertex(&g, copy.inputs[1]).name.contains("RUN make"));
    assert_eq!(g.target, copy_id(&g, copy));
}

fn copy_id(g: &Graph, v: &Vertex) -> VertexId {
    let i = g.vertices.iter().position(|x| x == v).expect("in graph");
    VertexId(u32::try_from(i).expect("small"))
}

#[test]
fn current_later_and_missing_stages_are_errors_at_the_from() {
    let src = "FROM alpine AS first\nFROM base AS app\nFROM alpine AS later\nCOPY --from=app / /\n";
    let cases = [
        (
            "COPY --from=app /a /a",
            "2:1 circular dependency detected on stage: app",
        ),
        (
            "COPY --from=later /a /a",
            "2:1 cannot copy from stage \"later\", it needs to be defined before current stage \"app\"",
        ),
        (
            "COPY --from=2 /a /a",
            "2:1 cannot copy from stage \"2\", it needs to be defined before current stage \"app\"",
        ),
        ("COPY --from=7 /a /a", "2:1 invalid stage index 7"),
        (
            "RUN --mount=from=app,target=/x true",
            "2:1 circular dependency detected on stage: app",
        ),
        (
            "RUN --mount=from=later,target=/x true",
            "2:1 cannot mount from stage \"later\", it needs to be defined before current stage \"app\"",
        ),
        (
            "COPY --from=$X /a /a",
            "2:1 variable expansion is not supported for --from",
        ),
    ];
    for (trigger, want) in cases {
        let errs = lower_with(src, &[trigger]).expect_err(trigger);
        assert_eq!(errs.len(), 1, "{trigger}: {errs:?}");
        assert!(errs[0].starts_with(want), "{trigger}: {errs:?}");
    }
}

#[test]
fn resolving_binds_triggers_and_names_an_image_that_cannot_be_resolved() {
    // The plan's resolver loop is the one place triggers are expanded: it resolves the base,
    // binds its trigger to stage `assets`, then resolves that stage's base too.
    let src = "FROM alpine AS assets\nRUN make\nFROM base\n";
    let mut p = plan_src(src);
    let mut asked = Vec::new();
    let mut resolver = |r: &ImageRef, _: &Platform| -> Result<ImageConfig, String> {
        asked.push(r.to_string());
        if *r == image("base") {
            Ok(config(&["COPY --from=assets /out /app"]))
        } else {
            Ok(config(&[]))
        }
    };
    let bases = p.resolve(&mut resolver).expect("resolves");
    assert_eq!(
        asked,
        [
            "docker.io/library/base:latest",
            "docker.io/library/alpine:latest"
        ]
    );
    let g = lower(&p, &bases).expect("lowers");
    assert!(vertex(&g, trigger_vertex(&g).inputs[1])
        .name
        .contains("RUN make"));
    // When the stage's base cannot be resolved, the error says which image.
    let mut p = plan_src(src);
    let mut only_base = |r: &ImageRef, _: &Platform| -> Result<ImageConfig, String> {
        if *r == image("base") {
            Ok(config(&["COPY --from=assets /o /o"]))
        } else {
            Err(format!("no config for {r}"))
        }
    };
    let e = p.resolve(&mut only_base).expect_err("missing alpine");
    assert!(
        matches!(&e, ResolveError::Image { reference, .. } if *reference == image("alpine")),
        "{e:?}"
    );
    assert!(e.to_string().contains("alpine"), "{e}");
}
