//! The build checks over every Dockerfile of the repository's corpora (the lowering goldens,
//! the check goldens, the real-world cases): none panics, and every violation points inside
//! the file with its caret on a line it marks (so `--check` can print it).

use std::convert::Infallible;
use std::path::{Path, PathBuf};

use rbuild_frontend::lint::{self, CheckConfig, CheckInput, Scope};
use rbuild_frontend::lower::{plan, BuildOptions};
use rbuild_types::{ImageRef, Platform};

fn dockerfiles() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata");
    let mut out = Vec::new();
    let mut todo = vec![root];
    while let Some(dir) = todo.pop() {
        for entry in std::fs::read_dir(&dir).expect("read testdata").flatten() {
            let p = entry.path();
            let name = p
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .to_string();
            if p.is_dir() {
                todo.push(p);
            } else if name == "Dockerfile" || name.ends_with(".Dockerfile") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn every_corpus_dockerfile_is_checked_and_each_violation_points_inside_it() {
    let files = dockerfiles();
    assert!(files.len() > 80, "only {} Dockerfiles", files.len());
    let config = CheckConfig::parse("experimental=all").expect("config");
    let mut checked = 0;
    let mut found = 0;
    for file in &files {
        let src = std::fs::read(file).expect("read");
        let Ok(df) = rbuild_frontend::parse(&src) else {
            continue;
        };
        let lines = src.split(|&b| b == b'\n').count() as u32;
        let options = BuildOptions::default();
        let planned = plan(&df, &options).ok();
        let mut bases = None;
        if let Some(mut p) = planned.clone() {
            p.needed = (0..p.stages.len()).collect();
            let mut resolver = |_: &ImageRef, _: &Platform| {
                Ok::<_, Infallible>(rbuild_graph::ImageConfig::default())
            };
            bases = p.resolve(&mut resolver).ok();
            let _ = rbuild_frontend::outline::outline(&df, &src, &p);
        }
        let _ = rbuild_frontend::outline::targets(&df, &src);
        for scope in [Scope::AllStages, Scope::Needed] {
            let lints = lint::check(&CheckInput {
                df: &df,
                source: &src,
                options: &options,
                config: &config,
                plan: planned.as_ref(),
                bases: bases.as_ref(),
                ignored: None,
                scope,
            });
            for l in &lints {
                let (first, last) = l.lines;
                assert!(
                    first >= 1 && first <= last && last <= lines,
                    "{}: {l:?} outside 1..={lines}",
                    file.display()
                );
                assert!(
                    (first..=last).contains(&l.span.line),
                    "{}: the caret of {l:?} is on an unmarked line",
                    file.display()
                );
                assert!(
                    l.span.start <= l.span.end && l.span.end <= src.len(),
                    "{}: {l:?} spans past the file",
                    file.display()
                );
            }
            found += lints.len();
        }
        checked += 1;
    }
    assert!(checked > 80, "only {checked} checked");
    assert!(found > 50, "only {found} violations in the corpora");
}
