//! Shared helpers of the lowering tests: the build options they lower with, diagnostics
//! flattened to `line:col message` strings, base image configs, and the whole pipeline from
//! bytes to a graph.

#![allow(dead_code)]

use rbuild_frontend::lower::{lower, plan, BuildOptions, Plan};
use rbuild_frontend::Diagnostics;
use rbuild_graph::{ExecOp, Graph, ImageConfig, Op};

/// Default options for linux/amd64.
pub fn opts() -> BuildOptions {
    BuildOptions {
        platform: "linux/amd64".parse().expect("platform"),
        ..BuildOptions::default()
    }
}

/// Every diagnostic as `line:col message`.
pub fn flat(d: Diagnostics) -> Vec<String> {
    d.0.iter()
        .map(|d| format!("{}:{} {}", d.span.line, d.span.col, d.message))
        .collect()
}

/// Every base image `plan` needs, each with the config `config`.
pub fn bases_with(plan: &Plan, config: &ImageConfig) -> rbuild_frontend::lower::BaseConfigs {
    plan.base_images()
        .into_iter()
        .map(|r| (r, config.clone()))
        .collect()
}

/// Parses, plans with `o` and lowers `src` over base images with the default config (the
/// graph is not validated); the error is every diagnostic as `line:col message`.
pub fn lower_bytes(src: &[u8], o: &BuildOptions) -> Result<Graph, Vec<String>> {
    let df = rbuild_frontend::parse(src).map_err(flat)?;
    let p = plan(&df, o).map_err(flat)?;
    lower(&p, &bases_with(&p, &ImageConfig::default())).map_err(flat)
}

/// The `Exec` ops of `g`, in vertex order.
pub fn execs(g: &Graph) -> Vec<&ExecOp> {
    g.vertices
        .iter()
        .filter_map(|v| match &v.op {
            Op::Exec(e) => Some(e),
            _ => None,
        })
        .collect()
}

/// The `created_by` of each history entry of `g`'s image, in order.
pub fn created_by(g: &Graph) -> Vec<&str> {
    g.image
        .history
        .iter()
        .map(|h| h.created_by.as_str())
        .collect()
}
