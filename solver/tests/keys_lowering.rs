//! Golden cache keys of every lowering golden (`testdata/lower/*.json`): each vertex's key,
//! computed as the solver computes it, with stand-ins for what keying resolves at build time
//! (an image's manifest digest, a download's or a checkout's digest, a copy's selected
//! content), so that RUN mounts, HTTP and git sources and every other op the frontend emits
//! have pinned keys. A change to the key function shows up here as a diff; update the
//! expected files (`UPDATE_GOLDEN=1`) only for a deliberate change, with a new `KEY_VERSION`.

use std::path::{Path, PathBuf};

use rbuild_graph::{FileAction, Graph, Op};
use rbuild_solver::keys::{vertex_key, KeyInputs};
use rbuild_test_support::golden;
use rbuild_types::Digest;

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata")
}

/// The graph of a lowering golden (its JSON, without the trailing `//` notes), or `None` for
/// a golden of a plan or lowering error.
fn graph_of(text: &str) -> Option<Graph> {
    if !text.starts_with('{') {
        return None;
    }
    let json: String = text
        .lines()
        .filter(|l| !l.starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    Some(serde_json::from_str(&json).expect("a lowering golden parses as a graph"))
}

/// Every vertex's key, one line each: index, key, name.
fn keys_of(graph: &Graph) -> String {
    let mut keys: Vec<Option<Digest>> = Vec::new();
    let mut out = String::new();
    for (i, v) in graph.vertices.iter().enumerate() {
        let input_keys: Vec<Option<Digest>> = v
            .inputs
            .iter()
            .map(|input| keys[input.0 as usize])
            .collect();
        let resolved = match &v.op {
            Op::Image(img) => Some(Digest::of(
                format!("manifest of {}", img.reference).as_bytes(),
            )),
            Op::Http(http) => Some(Digest::of(format!("body of {}", http.url).as_bytes())),
            Op::Git(git) => Some(Digest::of(format!("commit of {}", git.remote).as_bytes())),
            _ => None,
        };
        let selections = match &v.op {
            Op::File(file) => file
                .actions
                .iter()
                .enumerate()
                .map(|(n, a)| match a {
                    FileAction::Copy(c)
                        if matches!(
                            graph.vertices[v.inputs[c.source].0 as usize].op,
                            Op::Context { .. }
                        ) =>
                    {
                        Some(Digest::of(format!("selection {i}/{n}").as_bytes()))
                    }
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        };
        let key = vertex_key(
            &v.op,
            &KeyInputs {
                input_keys,
                manifest: resolved.as_ref(),
                selections,
            },
        );
        // A context's key never feeds its consumers (they key what they select).
        keys.push((!matches!(v.op, Op::Context { .. })).then_some(key));
        out.push_str(&format!("{i} {key} {}\n", v.name));
    }
    out
}

#[test]
fn every_lowering_golden_has_pinned_keys() {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(testdata().join("lower"))
        .expect("read testdata/lower")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    cases.sort();
    let mut checked = 0;
    let mut failed = Vec::new();
    for case in &cases {
        let text = std::fs::read_to_string(case).expect("read golden");
        let Some(graph) = graph_of(&text) else {
            continue;
        };
        let got = keys_of(&graph);
        let name = case
            .file_stem()
            .expect("stem")
            .to_string_lossy()
            .into_owned();
        let want_path = testdata().join("keys/lower").join(format!("{name}.keys"));
        checked += 1;
        if golden::differs(&want_path, &got) {
            failed.push(format!(
                "{name}: keys differ from {}:\n{got}",
                want_path.display()
            ));
        }
    }
    println!(
        "lowering keys: {} passed, {} failed",
        checked - failed.len(),
        failed.len()
    );
    assert!(checked >= 9, "only {checked} lowering goldens with graphs");
    assert!(
        failed.is_empty(),
        "cache keys changed: raise KEY_VERSION if deliberate, then UPDATE_GOLDEN=1\n{}",
        failed.join("\n")
    );
}
