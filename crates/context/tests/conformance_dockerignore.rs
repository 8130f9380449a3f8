//! Runs the upstream `.dockerignore` corpus (`shared/conformance/dockerignore/`, from
//! moby/patternmatcher and tonistiigi/fsutil) against our matcher, ignore-file reader and
//! filtered walk. Prints one `N passed, N failed` line per corpus file; fails on any failure,
//! and unless every case of the corpus ran. Skips loudly when the corpus is not in this
//! checkout (see `rbuild_test_support::corpus`).

use std::collections::BTreeSet;
use std::path::Path;

use rbuild_context::dockerignore::{parse_ignore_file, PatternMatcher};
use rbuild_context::{clean_within_root, walk, EntryKind, Filter, Layer, Walked};
use rbuild_test_support::corpus::json_strings;
use rbuild_test_support::{assert_ran, corpus};
use serde_json::Value;

fn load(dir: &Path, name: &str) -> Value {
    let path = dir.join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

/// Tallies results and remembers failure descriptions.
#[derive(Default)]
struct Tally {
    passed: usize,
    failures: Vec<String>,
}

impl Tally {
    fn check(&mut self, ok: bool, id: &str, detail: impl FnOnce() -> String) {
        if ok {
            self.passed += 1;
        } else {
            self.failures.push(format!("{id}: {}", detail()));
        }
    }

    fn ran(&self) -> usize {
        self.passed + self.failures.len()
    }

    fn report(&self, name: &str) -> bool {
        println!(
            "dockerignore/{name}: {} passed, {} failed",
            self.passed,
            self.failures.len()
        );
        for f in &self.failures {
            println!("  FAIL {f}");
        }
        self.failures.is_empty()
    }
}

fn run_cases(cases: &Value) -> Tally {
    let mut t = Tally::default();
    for case in cases.as_array().into_iter().flatten() {
        let id = case["id"].as_str().unwrap_or("?");
        if case["platform"].as_str() == Some("windows") {
            continue;
        }
        let patterns = json_strings(&case["patterns"]);
        let path = case["path"].as_str().unwrap_or("");
        let want_error = case["error"].as_bool().unwrap_or(false);
        match PatternMatcher::new(&patterns) {
            Err(e) => t.check(want_error, id, || format!("unexpected error {e}")),
            Ok(m) => {
                let got = m.matches_or_parent_matches(path);
                let want = case["excluded"].as_bool().unwrap_or(false);
                t.check(!want_error && got == want, id, || {
                    format!("{patterns:?} on {path:?}: got {got}, want {want}, error expected {want_error}")
                });
            }
        }
    }
    t
}

fn run_readall(doc: &Value) -> Tally {
    let mut t = Tally::default();
    for case in doc["readall"].as_array().into_iter().flatten() {
        let id = case["id"].as_str().unwrap_or("?");
        let got = case["content"]
            .as_str()
            .map(parse_ignore_file)
            .unwrap_or_default();
        let want = json_strings(&case["expected"]);
        t.check(got == want, id, || format!("got {got:?}, want {want:?}"));
    }
    for case in doc["matcher_new"].as_array().into_iter().flatten() {
        let id = case["id"].as_str().unwrap_or("?");
        let patterns = json_strings(&case["patterns"]);
        match PatternMatcher::new(&patterns) {
            Err(e) => t.check(case["error"].as_bool() == Some(true), id, || {
                format!("unexpected error {e}")
            }),
            Ok(m) => {
                let mut ok = case["error"].as_bool() != Some(true);
                if let Some(n) = case["expected_pattern_count"].as_u64() {
                    ok &= m.patterns().len() as u64 == n;
                }
                if let Some(b) = case["expected_has_exclusions"].as_bool() {
                    ok &= m.has_exclusions() == b;
                }
                t.check(ok, id, || {
                    format!(
                        "count {} exclusions {}",
                        m.patterns().len(),
                        m.has_exclusions()
                    )
                });
            }
        }
    }
    t
}

fn make_tree(root: &Path, tree: &Value) {
    for node in tree.as_array().into_iter().flatten() {
        let rel = node["path"].as_str().unwrap_or("");
        let path = root.join(rel);
        match node["type"].as_str() {
            Some("dir") => std::fs::create_dir_all(&path).expect("mkdir"),
            Some("symlink") => {
                let target = node["target"].as_str().unwrap_or("");
                std::os::unix::fs::symlink(target, &path).expect("symlink");
            }
            _ => {
                let data = node["data"].as_str().unwrap_or("");
                std::fs::write(&path, data).expect("write file");
            }
        }
    }
}

fn matcher(v: &Value) -> Result<Option<PatternMatcher>, String> {
    if v.is_null() {
        return Ok(None);
    }
    PatternMatcher::new(&json_strings(v))
        .map(Some)
        .map_err(|e| e.to_string())
}

/// fsutil's FollowPaths: the follow patterns plus every symlink target they lead to (resolved
/// inside the root, absolute targets relative to it) become include patterns. `None` when a
/// target is the root itself (everything is included).
fn follow_includes(root: &Path, follow: &[String]) -> Option<Vec<String>> {
    let all = walk(root, &Filter::new()).expect("unfiltered walk");
    let globs = PatternMatcher::new(follow).expect("follow patterns");
    let mut out: BTreeSet<String> = follow.iter().cloned().collect();
    let mut queue: Vec<&Walked> = all
        .iter()
        .filter(|w| globs.patterns().iter().any(|p| p.matches(&w.entry.rel)))
        .collect();
    let mut steps = 0;
    while let Some(w) = queue.pop() {
        steps += 1;
        let Some(target) = w.entry.link_target.as_deref().filter(|_| steps < 256) else {
            continue;
        };
        let joined = if target.starts_with('/') {
            target.to_string()
        } else {
            match w.entry.rel.rsplit_once('/') {
                Some((dir, _)) => format!("{dir}/{target}"),
                None => target.to_string(),
            }
        };
        let resolved = clean_within_root(&joined);
        if resolved == "." {
            return None;
        }
        if out.insert(resolved.clone()) {
            queue.extend(all.iter().filter(|x| x.entry.rel == resolved));
        }
    }
    Some(out.into_iter().collect())
}

fn describe(w: &Walked) -> String {
    match w.entry.kind {
        EntryKind::File => format!("file {}", w.entry.rel),
        EntryKind::Dir => format!("dir {}", w.entry.rel),
        EntryKind::Symlink => format!(
            "symlink:{} {}",
            w.entry.link_target.as_deref().unwrap_or(""),
            w.entry.rel
        ),
    }
}

fn build_filter(root: &Path, case: &Value) -> Result<Filter, String> {
    let mut filter = Filter::new();
    if let Some(layers) = case["layers"].as_array() {
        for layer in layers {
            filter = filter.with_layer(Layer {
                include: matcher(&layer["include"])?,
                exclude: matcher(&layer["exclude"])?,
            });
        }
        return Ok(filter);
    }
    let mut include = matcher(&case["include"])?;
    if let Some(follow) = case["follow_paths"].as_array().filter(|a| !a.is_empty()) {
        let follow: Vec<String> = follow
            .iter()
            .filter_map(|s| s.as_str().map(str::to_string))
            .collect();
        include = match follow_includes(root, &follow) {
            None => None,
            Some(mut pats) => {
                pats.extend(json_strings(&case["include"]));
                Some(PatternMatcher::new(&pats).map_err(|e| e.to_string())?)
            }
        };
    }
    Ok(filter.with_layer(Layer {
        include,
        exclude: matcher(&case["exclude"])?,
    }))
}

fn run_walks(doc: &Value) -> Tally {
    let mut t = Tally::default();
    for case in doc["walk"].as_array().into_iter().flatten() {
        let id = case["id"].as_str().unwrap_or("?");
        let dir = tempfile::tempdir().expect("tempdir");
        make_tree(dir.path(), &case["tree"]);
        let want_error = case["error"].as_bool().unwrap_or(false);
        let filter = match build_filter(dir.path(), case) {
            Ok(f) => f,
            Err(e) => {
                t.check(want_error, id, || format!("unexpected error {e}"));
                continue;
            }
        };
        if want_error {
            t.check(false, id, || "expected the filter to be rejected".into());
            continue;
        }
        let listed = match walk(dir.path(), &filter) {
            Ok(l) => l,
            Err(e) => {
                t.check(false, id, || format!("walk failed: {e}"));
                continue;
            }
        };
        let got: Vec<String> = listed.iter().map(describe).collect();
        let mut ok = true;
        let mut why = String::new();
        if let Some(expected) = case.get("expected_walk").filter(|v| !v.is_null()) {
            let want = json_strings(expected);
            if got != want {
                ok = false;
                why = format!("walk got {got:?}, want {want:?}");
            }
        }
        let names: BTreeSet<&str> = listed.iter().map(|w| w.entry.rel.as_str()).collect();
        for p in json_strings(&case["open_ok"]) {
            if !names.contains(p.as_str()) {
                ok = false;
                why.push_str(&format!(" {p:?} should be visible;"));
            }
        }
        for p in json_strings(&case["open_not_exist"]) {
            if names.contains(p.as_str()) {
                ok = false;
                why.push_str(&format!(" {p:?} should be invisible;"));
            }
        }
        t.check(ok, id, || why);
    }
    // One tree per depth, shared by the cases of that depth (building them dominates the time).
    let mut trees: std::collections::BTreeMap<u32, tempfile::TempDir> = Default::default();
    for case in doc["generated_tree_counts"]["cases"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let id = case["id"].as_str().unwrap_or("?");
        let depth = case["max_depth"].as_u64().unwrap_or(1) as u32;
        let dir = trees.entry(depth).or_insert_with(|| {
            let dir = scratch_dir();
            bench_tree(dir.path(), depth, 1);
            dir
        });
        let result = build_filter(dir.path(), case).and_then(|f| {
            walk(dir.path(), &f)
                .map(|l| l.len() as u64)
                .map_err(|e| e.to_string())
        });
        let want = case["expected_count"].as_u64().unwrap_or(0);
        match result {
            Ok(n) => t.check(n == want, id, || format!("counted {n}, want {want}")),
            Err(e) => t.check(false, id, || e),
        }
    }
    t
}

/// A temporary directory, in RAM (`/dev/shm`) when available: the generated trees hold tens
/// of thousands of files.
fn scratch_dir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(dir) = tempfile::tempdir_in(shm) {
            return dir;
        }
    }
    tempfile::tempdir().expect("tempdir")
}

/// fsutil's benchmark tree: a..L directories per level, files `target` and a..L at the bottom.
fn bench_tree(dir: &Path, max_depth: u32, depth: u32) {
    let last = match max_depth {
        1..=3 => b'z',
        4 => b'k',
        5 => b'e',
        _ => b'd',
    };
    if depth == max_depth {
        std::fs::write(dir.join("target"), "").expect("write");
        for c in b'a'..=last {
            std::fs::write(dir.join((c as char).to_string()), "").expect("write");
        }
    } else {
        for c in b'a'..=last {
            let sub = dir.join((c as char).to_string());
            std::fs::create_dir(&sub).expect("mkdir");
            bench_tree(&sub, max_depth, depth + 1);
        }
    }
}

#[test]
fn dockerignore_corpus() {
    let Some(dir) = corpus("dockerignore") else {
        return;
    };
    let cases = run_cases(&load(&dir, "cases.json"));
    let readall = run_readall(&load(&dir, "readall.json"));
    let walks = run_walks(&load(&dir, "walker.json"));
    let ok = [
        cases.report("cases.json"),
        readall.report("readall.json"),
        walks.report("walker.json"),
    ];
    assert!(
        ok.iter().all(|&b| b),
        "dockerignore conformance failures (see above)"
    );
    // 138 matcher cases (none for Windows only); 2 file reads + 6 matcher builds; 31 walks +
    // 13 generated-tree counts.
    assert_ran("dockerignore/cases.json", cases.ran(), 138);
    assert_ran("dockerignore/readall.json", readall.ran(), 8);
    assert_ran("dockerignore/walker.json", walks.ran(), 44);
}
