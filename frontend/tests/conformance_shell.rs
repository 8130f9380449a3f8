//! BuildKit's shell-lexer vectors (`../shared/conformance/buildkit-shell`): envVarTest,
//! wordsTest and cases.json, each reported as `buildkit-shell/<corpus>: N passed, N failed`
//! and checked to have run every case. Skips loudly when the corpus is not in this checkout
//! (see `rbuild_test_support::corpus`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use rbuild_frontend::shell::{process_word, process_word_with_matches, process_words};

fn corpus() -> Option<PathBuf> {
    rbuild_test_support::corpus("buildkit-shell")
}

/// Prints the tally of `name`, then fails on a failed case, or unless `total`, the number of
/// cases that ran, is `expected`, what the corpus has.
fn report(name: &str, failures: &[String], total: usize, expected: usize) {
    println!(
        "buildkit-shell/{name}: {} passed, {} failed",
        total - failures.len(),
        failures.len()
    );
    for f in failures {
        println!("  FAIL {f}");
    }
    assert!(failures.is_empty(), "{name}: {} failures", failures.len());
    rbuild_test_support::assert_ran(&format!("buildkit-shell/{name}"), total, expected);
}

#[test]
fn env_var_test() {
    let Some(dir) = corpus() else { return };
    let text = std::fs::read_to_string(dir.join("envVarTest")).expect("read envVarTest");
    let env: BTreeMap<String, String> = [
        ("PWD", "/home"),
        ("SHELL", "bash"),
        ("KOREAN", "한국어"),
        ("NULL", ""),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let mut failures = Vec::new();
    let mut total = 0;
    for (n, line) in text.lines().enumerate() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split('|').map(str::trim).collect();
        assert_eq!(fields.len(), 3, "envVarTest:{}: bad line", n + 1);
        if fields[0] == "W" {
            continue;
        }
        total += 1;
        let got = process_word(fields[1], &env, '\\');
        let ok = match (&got, fields[2]) {
            (Err(_), "error") => true,
            (Ok(w), want) => w == want,
            _ => false,
        };
        if !ok {
            failures.push(format!(
                "envVarTest:{}: {:?} want {:?} got {:?}",
                n + 1,
                fields[1],
                fields[2],
                got
            ));
        }
    }
    // 230 lines: 226 for every platform and 2 for Unix run, 2 for Windows do not.
    report("envVarTest", &failures, total, 228);
}

#[test]
fn words_test() {
    let Some(dir) = corpus() else { return };
    let text = std::fs::read_to_string(dir.join("wordsTest")).expect("read wordsTest");
    let mut env = BTreeMap::new();
    let mut failures = Vec::new();
    let mut total = 0;
    for (n, line) in text.lines().enumerate() {
        if line.starts_with('#') {
            continue;
        }
        if let Some(rest) = line.strip_prefix("ENV ") {
            let rest = rest.trim_start();
            let (k, v) = rest.split_once('=').unwrap_or((rest, ""));
            env.insert(k.to_string(), v.to_string());
            continue;
        }
        let Some((input, want)) = line.split_once('|') else {
            continue;
        };
        total += 1;
        let input = input.trim();
        let want = want.trim_start_matches(' ');
        let got = process_words(input, &env, '\\');
        let ok = match (&got, want) {
            (Err(_), "error") => true,
            (Ok(words), want) => *words == want.split(',').collect::<Vec<_>>(),
            _ => false,
        };
        if !ok {
            failures.push(format!(
                "wordsTest:{}: {input:?} want {want:?} got {got:?}",
                n + 1
            ));
        }
    }
    report("wordsTest", &failures, total, 24);
}

fn str_set(v: Option<&serde_json::Value>) -> Option<Vec<String>> {
    let mut out: Vec<String> = v?
        .as_array()?
        .iter()
        .filter_map(|s| s.as_str().map(str::to_string))
        .collect();
    out.sort();
    Some(out)
}

#[test]
fn cases_json() {
    let Some(dir) = corpus() else { return };
    let text = std::fs::read_to_string(dir.join("cases.json")).expect("read cases.json");
    let doc: serde_json::Value = serde_json::from_str(&text).expect("parse cases.json");
    let cases = doc["cases"].as_array().expect("cases array");
    let mut failures = Vec::new();
    for case in cases {
        let id = case["id"].as_str().unwrap_or("?");
        let input = case["input"].as_str().unwrap_or_default();
        let escape = case["escape"]
            .as_str()
            .and_then(|s| s.chars().next())
            .unwrap_or('\\');
        let env: BTreeMap<String, String> = case["env"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                    .collect()
            })
            .unwrap_or_default();
        let got = process_word_with_matches(input, &env, escape);
        let problem = match (&got, case.get("error").and_then(|e| e.as_bool())) {
            (Err(e), Some(true)) => match case.get("error_contains").and_then(|s| s.as_str()) {
                Some(want) if !e.to_string().contains(want) => {
                    Some(format!("error {e} lacks {want:?}"))
                }
                _ => None,
            },
            (Err(e), _) => Some(format!("unexpected error {e}")),
            (Ok(_), Some(true)) => Some("expected an error".to_string()),
            (Ok((word, matched, unmatched)), _) => {
                let want = case["expected"].as_str().unwrap_or_default();
                if word != want {
                    Some(format!("want {want:?} got {word:?}"))
                } else if str_set(case.get("matched"))
                    .is_some_and(|m| m != matched.iter().cloned().collect::<Vec<_>>())
                {
                    Some(format!(
                        "matched {matched:?} want {:?}",
                        case.get("matched")
                    ))
                } else if str_set(case.get("unmatched"))
                    .is_some_and(|m| m != unmatched.iter().cloned().collect::<Vec<_>>())
                {
                    Some(format!(
                        "unmatched {unmatched:?} want {:?}",
                        case.get("unmatched")
                    ))
                } else {
                    None
                }
            }
        };
        if let Some(p) = problem {
            failures.push(format!("{id}: {input:?}: {p}"));
        }
    }
    let lookups = doc["env_lookup"].as_array().cloned().unwrap_or_default();
    for l in &lookups {
        let list: Vec<String> = l["env_list"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let key = l["lookup"].as_str().unwrap_or_default();
        let want = l["expected_value"].as_str().unwrap_or_default();
        let env = rbuild_frontend::shell::EnvList(&list);
        let got = process_word(&format!("${{{key}}}"), &env, '\\').unwrap_or_default();
        if got != want {
            failures.push(format!("{}: want {want:?} got {got:?}", l["id"]));
        }
    }
    // 56 cases and 7 environment lookups.
    report("cases.json", &failures, cases.len() + lookups.len(), 63);
}
