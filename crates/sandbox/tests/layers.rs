//! The sandbox's module layering (crate docs, "Layers"), checked over the source text:
//! `shared` imports neither `init` nor `launch`, those two never import each other, no layer
//! reaches anything through the crate root, and the modules form a DAG. A reference is any
//! `crate::…` or `super::…` path in a module's code (comments and the trailing
//! `#[cfg(test)]` module are left out: tests may use whatever they test with).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A module, as its path below the crate root (`["launch", "executor"]`).
type Module = Vec<String>;

/// The layers a module of `layer` may use.
fn allowed(layer: &str) -> &'static [&'static str] {
    match layer {
        "shared" => &["shared"],
        "init" => &["init", "shared"],
        "launch" => &["launch", "shared"],
        _ => &[],
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `init/pid1.rs` → `["init", "pid1"]`; `init/mod.rs` → `["init"]`; `lib.rs` → `[]`.
fn module_of(rel: &Path) -> Module {
    let mut parts: Vec<String> = rel
        .with_extension("")
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
        parts.pop();
    }
    parts
}

/// The module's own code: without comments and without the test module at its end.
fn code_of(text: &str) -> String {
    let body = text.split("#[cfg(test)]").next().unwrap_or("");
    body.lines()
        .map(|line| line.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Reads a path after `crate::` or `super::` at `rest`: its segments, each brace group
/// expanded (`a::{b, c::d}` → `a::b`, `a::c::d`).
fn expand(rest: &str) -> Vec<Vec<String>> {
    let mut segments = Vec::new();
    let mut s = rest;
    loop {
        let ident: String = s
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if ident.is_empty() {
            if let Some(group) = s.strip_prefix('{') {
                let mut depth = 1;
                let end = group
                    .char_indices()
                    .find(|&(_, c)| {
                        depth += match c {
                            '{' => 1,
                            '}' => -1,
                            _ => 0,
                        };
                        depth == 0
                    })
                    .map_or(group.len(), |(i, _)| i);
                let inner = &group[..end];
                let mut items = Vec::new();
                let (mut level, mut start) = (0, 0);
                for (i, c) in inner.char_indices() {
                    match c {
                        '{' => level += 1,
                        '}' => level -= 1,
                        ',' if level == 0 => {
                            items.push(&inner[start..i]);
                            start = i + 1;
                        }
                        _ => {}
                    }
                }
                items.push(&inner[start..]);
                return items
                    .into_iter()
                    .map(str::trim)
                    .filter(|item| !item.is_empty())
                    .flat_map(expand)
                    .map(|tail| segments.iter().cloned().chain(tail).collect())
                    .collect();
            }
            return vec![segments];
        }
        s = &s[ident.len()..];
        segments.push(ident);
        match s.strip_prefix("::") {
            Some(next) => s = next,
            None => return vec![segments],
        }
    }
}

/// Every module path `code` refers to through `crate::` or `super::`, resolved against the
/// known modules (the longest known prefix); `Err` for what is not allowed at all.
fn references(
    module: &Module,
    code: &str,
    known: &BTreeSet<Module>,
) -> Vec<Result<Module, String>> {
    let mut out = Vec::new();
    for (anchor, base) in [
        ("crate::", Vec::new()),
        ("super::", {
            let mut parent = module.clone();
            parent.pop();
            parent
        }),
    ] {
        for (at, _) in code.match_indices(anchor) {
            let before = code[..at].chars().next_back();
            if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            for path in expand(&code[at + anchor.len()..]) {
                if anchor == "super::"
                    && (module.len() < 2 || path.first().is_some_and(|p| p == "super"))
                {
                    out.push(Err(format!("super::{} leaves its layer", path.join("::"))));
                    continue;
                }
                let full: Vec<String> = base.iter().cloned().chain(path).collect();
                let target = (0..=full.len())
                    .rev()
                    .map(|n| full[..n].to_vec())
                    .find(|prefix| known.contains(prefix))
                    .unwrap_or_default();
                if target.is_empty() {
                    out.push(Err(format!(
                        "{anchor}{} goes through the crate root",
                        full.join("::")
                    )));
                } else {
                    out.push(Ok(target));
                }
            }
        }
    }
    out
}

/// A cycle in `edges`, if there is one.
fn find_cycle(edges: &BTreeMap<Module, BTreeSet<Module>>) -> Option<Vec<Module>> {
    fn visit(
        node: &Module,
        edges: &BTreeMap<Module, BTreeSet<Module>>,
        done: &mut BTreeSet<Module>,
        stack: &mut Vec<Module>,
    ) -> Option<Vec<Module>> {
        if let Some(i) = stack.iter().position(|m| m == node) {
            let mut cycle = stack[i..].to_vec();
            cycle.push(node.clone());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        stack.push(node.clone());
        for next in edges.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, edges, done, stack) {
                return Some(cycle);
            }
        }
        stack.pop();
        done.insert(node.clone());
        None
    }
    let mut done = BTreeSet::new();
    edges
        .keys()
        .find_map(|node| visit(node, edges, &mut done, &mut Vec::new()))
}

#[test]
fn layers_point_down_and_modules_form_a_dag() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let modules: BTreeMap<Module, String> = files
        .iter()
        .filter(|f| !f.starts_with(src.join("bin")))
        .map(|f| {
            let rel = f.strip_prefix(&src).expect("below src");
            let text = std::fs::read_to_string(f).expect("read source");
            (module_of(rel), code_of(&text))
        })
        .collect();
    let known: BTreeSet<Module> = modules.keys().cloned().collect();
    let name = |m: &Module| format!("crate::{}", m.join("::"));

    let mut problems = Vec::new();
    let mut edges: BTreeMap<Module, BTreeSet<Module>> = BTreeMap::new();
    for (module, code) in modules.iter().filter(|(m, _)| !m.is_empty()) {
        let layer = module[0].as_str();
        if allowed(layer).is_empty() {
            problems.push(format!("{} is in no layer", name(module)));
        }
        for reference in references(module, code, &known) {
            match reference {
                Err(why) => problems.push(format!("{}: {why}", name(module))),
                Ok(target) => {
                    if !allowed(layer).contains(&target[0].as_str()) {
                        problems.push(format!("{} uses {}", name(module), name(&target)));
                    }
                    if &target != module {
                        edges.entry(module.clone()).or_default().insert(target);
                    }
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "layering broken:\n{}",
        problems.join("\n")
    );
    if let Some(cycle) = find_cycle(&edges) {
        let shown: Vec<String> = cycle.iter().map(name).collect();
        panic!(
            "modules import each other in a circle: {}",
            shown.join(" -> ")
        );
    }

    // The check saw the crate: a few edges that must be there.
    let m = |s: &str| s.split("::").map(str::to_string).collect::<Module>();
    for (from, to) in [
        ("launch::executor", "launch::snapshotter"),
        ("init::zygote", "init::start"),
        ("init::pid1", "shared::protocol"),
        ("launch::zygote", "shared::zygote_protocol"),
    ] {
        assert!(
            edges.get(&m(from)).is_some_and(|t| t.contains(&m(to))),
            "expected {from} -> {to} among {} edges",
            edges.values().map(BTreeSet::len).sum::<usize>()
        );
    }
}

#[test]
fn the_checker_finds_what_it_must() {
    let known: BTreeSet<Module> = [
        vec![],
        vec!["shared".to_string()],
        vec!["shared".to_string(), "error".to_string()],
        vec!["init".to_string()],
        vec!["init".to_string(), "pid1".to_string()],
        vec!["init".to_string(), "root".to_string()],
    ]
    .into_iter()
    .collect();
    let pid1 = vec!["init".to_string(), "pid1".to_string()];
    let refs = references(
        &pid1,
        "use crate::{shared::error::{Result, SetupError}, init::root};\nsuper::root::mount_root();\ncrate::INIT_ARG\nsuper::super::x",
        &known,
    );
    let ok: Vec<String> = refs
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .map(|m| m.join("::"))
        .collect();
    assert_eq!(
        ok,
        ["shared::error", "shared::error", "init::root", "init::root"]
    );
    assert_eq!(refs.iter().filter(|r| r.is_err()).count(), 2);

    let a = vec!["a".to_string()];
    let b = vec!["b".to_string()];
    let edges = BTreeMap::from([
        (a.clone(), BTreeSet::from([b.clone()])),
        (b.clone(), BTreeSet::from([a.clone()])),
    ]);
    assert!(find_cycle(&edges).is_some());
}
