//! Holds the parser to BuildKit's own parser corpus (`shared/conformance/buildkit-parser`):
//! the 33 positive dumps, the 4 negative cases and the table tests in `extra.json`.
//! Every case must pass, and every case of the corpus must have run. Skips loudly when the
//! corpus is not in this checkout (see `rbuild_test_support::corpus`).

use std::fs;
use std::path::{Path, PathBuf};

use rbuild_frontend::parser::{detect_syntax, parse_directive, parse_heredoc_word, parse_words};
use rbuild_frontend::{dump, parse};
use rbuild_test_support::corpus::json_strings;
use serde_json::Value;

/// How many cases each part of the corpus has (its README counts them too).
const CASES: &[(&str, usize)] = &[
    ("testfiles", 33),
    ("testfiles-negative", 4),
    ("extra.json heredoc_extract", 27),
    ("extra.json heredoc_json_form", 3),
    ("extra.json heredoc_word", 20),
    ("extra.json heredocs_from_line", 10),
    ("extra.json heredoc_chomp", 1),
    ("extra.json parse_words", 8),
    ("extra.json line_numbers", 2),
    ("extra.json empty_continuation_warnings", 4),
    ("extra.json line_too_long", 1),
    ("extra.json json_arrays", 16),
    ("extra.json name_val", 3),
    ("extra.json directives", 17),
];

/// Pass/fail bookkeeping for one corpus part.
struct Tally {
    name: &'static str,
    passed: usize,
    failures: Vec<String>,
}

impl Tally {
    fn new(name: &'static str) -> Self {
        Tally {
            name,
            passed: 0,
            failures: Vec::new(),
        }
    }
    fn check(&mut self, ok: bool, what: impl FnOnce() -> String) {
        if ok {
            self.passed += 1;
        } else {
            self.failures.push(what());
        }
    }
    fn report(&self) -> bool {
        println!(
            "buildkit-parser/{}: {} passed, {} failed",
            self.name,
            self.passed,
            self.failures.len()
        );
        for f in &self.failures {
            println!("  FAIL {f}");
        }
        self.failures.is_empty()
    }
}

fn sorted_dirs(p: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(p)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    v.sort();
    v
}

fn positive(base: &Path) -> Tally {
    let mut t = Tally::new("testfiles");
    for dir in sorted_dirs(&base.join("testfiles")) {
        let name = dir.display().to_string();
        let (Ok(src), Ok(want)) = (
            fs::read(dir.join("Dockerfile")),
            fs::read(dir.join("result")),
        ) else {
            t.check(false, || format!("{name}: unreadable"));
            continue;
        };
        match parse(&src) {
            Ok(df) => {
                let got = dump(&df) + "\n";
                let want = String::from_utf8_lossy(&want);
                t.check(got == want, || {
                    format!("{name}:\n--- got\n{got}--- want\n{want}")
                });
            }
            Err(e) => t.check(false, || format!("{name}: {e}")),
        }
    }
    t
}

fn negative(base: &Path) -> Tally {
    let mut t = Tally::new("testfiles-negative");
    for dir in sorted_dirs(&base.join("testfiles-negative")) {
        let name = dir.display().to_string();
        let src = fs::read(dir.join("Dockerfile")).unwrap_or_default();
        t.check(parse(&src).is_err(), || {
            format!("{name}: parsed but must fail")
        });
    }
    t
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("")
}

fn extra(base: &Path, x: &Value) -> Vec<Tally> {
    let mut out = Vec::new();

    let mut t = Tally::new("extra.json heredoc_extract");
    let he = &x["heredoc_extract"];
    match parse(s(he, "dockerfile").as_bytes()) {
        Ok(df) => {
            for (i, exp) in he["expected_heredocs"]
                .as_array()
                .into_iter()
                .flatten()
                .enumerate()
            {
                let got = df.instructions.get(i + 1).map(|n| &n.heredocs);
                let ok = match (got, exp.as_array()) {
                    (Some(g), None) => g.is_empty(),
                    (Some(g), Some(e)) => {
                        g.len() == e.len()
                            && g.iter().zip(e).all(|(h, e)| {
                                h.name == s(e, "name")
                                    && h.content == s(e, "content")
                                    && Some(h.expand) == e["expand"].as_bool()
                                    && Some(h.chomp) == e["chomp"].as_bool()
                                    && Some(u64::from(h.fd)) == e["file_descriptor"].as_u64()
                            })
                    }
                    (None, _) => false,
                };
                t.check(ok, || format!("child {}: got {got:?}, want {exp}", i + 1));
            }
        }
        Err(e) => t.check(false, || format!("parse failed: {e}")),
    }
    out.push(t);

    let mut t = Tally::new("extra.json heredoc_json_form");
    let hj = &x["heredoc_json_form"];
    match parse(s(hj, "dockerfile").as_bytes()) {
        Ok(df) => {
            for i in hj["children_without_heredocs"]
                .as_array()
                .into_iter()
                .flatten()
            {
                let i = i.as_u64().unwrap_or(0) as usize;
                let ok = df
                    .instructions
                    .get(i)
                    .is_some_and(|n| n.heredocs.is_empty());
                t.check(ok, || format!("child {i} has heredocs"));
            }
        }
        Err(e) => t.check(false, || format!("parse failed: {e}")),
    }
    out.push(t);

    let mut t = Tally::new("extra.json heredoc_word");
    let hw = &x["heredoc_word"];
    for w in json_strings(&hw["valid_name_EOF"]) {
        let r = parse_heredoc_word(&w);
        let ok = matches!(&r, Ok(Some(h)) if h.name == "EOF");
        t.check(ok, || format!("{w:?}: {r:?}"));
    }
    for w in json_strings(&hw["invalid_error"]) {
        let r = parse_heredoc_word(&w);
        t.check(r.is_err(), || format!("{w:?} must be an error: {r:?}"));
    }
    for w in json_strings(&hw["not_heredoc"]) {
        let r = parse_heredoc_word(&w);
        t.check(matches!(r, Ok(None)), || {
            format!("{w:?} is not a heredoc: {r:?}")
        });
    }
    out.push(t);

    let mut t = Tally::new("extra.json heredocs_from_line");
    for c in x["heredocs_from_line"]["cases"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let line = s(c, "line");
        let want = json_strings(&c["heredoc_names"]);
        // Parse the line as a one-instruction Dockerfile with terminators appended.
        let mut src = format!("{line}\n");
        for n in &want {
            src.push_str(n);
            src.push('\n');
        }
        let got: Vec<String> = parse(src.as_bytes())
            .ok()
            .and_then(|df| df.instructions.into_iter().next())
            .map(|n| n.heredocs.into_iter().map(|h| h.name).collect())
            .unwrap_or_default();
        t.check(got == want, || {
            format!("{line:?}: got {got:?}, want {want:?}")
        });
    }
    out.push(t);

    let mut t = Tally::new("extra.json heredoc_chomp");
    let hc = &x["heredoc_chomp"];
    let got = rbuild_frontend::parser::chomp_heredoc(s(hc, "input"));
    t.check(got == s(hc, "expected"), || format!("chomp gave {got:?}"));
    out.push(t);

    let mut t = Tally::new("extra.json parse_words");
    for c in x["parse_words"]["cases"].as_array().into_iter().flatten() {
        let got = parse_words(s(c, "input"), '\\');
        let want = json_strings(&c["expected"]);
        t.check(got == want, || {
            format!("{:?}: got {got:?}, want {want:?}", s(c, "input"))
        });
    }
    out.push(t);

    let mut t = Tally::new("extra.json line_numbers");
    let ln = &x["line_numbers"];
    match fs::read(base.join(s(ln, "file"))).map(|src| parse(&src)) {
        Ok(Ok(df)) => {
            let first = df.instructions.first().map(|n| n.span.line);
            let last = df.instructions.last().map(|n| n.end_line);
            t.check(
                first == ln["root"]["start_line"].as_u64().map(|v| v as u32)
                    && last == ln["root"]["end_line"].as_u64().map(|v| v as u32),
                || format!("root lines {first:?}..{last:?}"),
            );
            let want: Vec<(u64, u64)> = ln["children"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| (p[0].as_u64().unwrap_or(0), p[1].as_u64().unwrap_or(0)))
                .collect();
            let got: Vec<(u64, u64)> = df
                .instructions
                .iter()
                .map(|n| (u64::from(n.span.line), u64::from(n.end_line)))
                .collect();
            t.check(got == want, || format!("children {got:?}, want {want:?}"));
        }
        other => t.check(false, || format!("line file: {other:?}")),
    }
    out.push(t);

    let mut t = Tally::new("extra.json empty_continuation_warnings");
    let ec = &x["empty_continuation_warnings"];
    match parse(s(ec, "dockerfile").as_bytes()) {
        Ok(df) => {
            let n = ec["expected_warning_count"].as_u64().unwrap_or(0) as usize;
            t.check(df.warnings.len() == n, || {
                format!("{} warnings", df.warnings.len())
            });
            for (i, parts) in ec["warning_short_contains"]
                .as_array()
                .into_iter()
                .flatten()
                .enumerate()
            {
                let w = df
                    .warnings
                    .get(i)
                    .map(|w| w.message.clone())
                    .unwrap_or_default();
                let ok = json_strings(parts).iter().all(|p| w.contains(p.as_str()));
                t.check(ok, || format!("warning {i}: {w:?} lacks {parts}"));
            }
            let detail = s(ec, "warning_detail_contains");
            t.check(
                df.warnings.iter().all(|w| w.detail.contains(detail)),
                || "detail".into(),
            );
        }
        Err(e) => t.check(false, || format!("parse failed: {e}")),
    }
    out.push(t);

    let mut t = Tally::new("extra.json line_too_long");
    let ll = &x["line_too_long"];
    let fill = s(&ll["fill"], "char").repeat(ll["fill"]["count"].as_u64().unwrap_or(0) as usize);
    let src = s(ll, "dockerfile_template").replace("%s", &fill);
    match parse(src.as_bytes()) {
        Ok(_) => t.check(false, || "long line parsed".into()),
        Err(e) => {
            let msg = e.to_string();
            t.check(msg.contains(s(ll, "expected_error")), || msg.clone());
        }
    }
    out.push(t);

    let mut t = Tally::new("extra.json json_arrays");
    let ja = &x["json_arrays"];
    for c in ja["valid"].as_array().into_iter().flatten() {
        let src = format!("CMD {}\n", s(c, "input"));
        let got = parse(src.as_bytes())
            .ok()
            .and_then(|df| df.instructions.into_iter().next());
        let want = json_strings(&c["expected"]);
        let ok = got.as_ref().is_some_and(|n| n.json_form && n.args == want);
        t.check(ok, || format!("{:?}: got {got:?}", s(c, "input")));
    }
    for inp in json_strings(&ja["invalid_not_string_array"]) {
        let r = parse(format!("CMD {inp}\n").as_bytes());
        let ok = matches!(&r, Err(e) if e.to_string().contains("strings only"));
        t.check(ok, || format!("{inp:?} must fail: {r:?}"));
    }
    out.push(t);

    let mut t = Tally::new("extra.json name_val");
    for c in x["name_val"]["cases"].as_array().into_iter().flatten() {
        let src = format!("{} {}\n", s(c, "instruction"), s(c, "args"));
        let r = parse(src.as_bytes());
        if let Some(err) = c.get("error_contains").and_then(Value::as_str) {
            let ok = matches!(&r, Err(e) if e.to_string().contains(err));
            t.check(ok, || format!("{src:?} must fail with {err:?}: {r:?}"));
        } else {
            let want = json_strings(&c["expected_nodes"]);
            let got = r
                .ok()
                .and_then(|df| df.instructions.into_iter().next())
                .map(|n| n.args);
            t.check(got.as_ref() == Some(&want), || {
                format!("{src:?}: got {got:?}")
            });
        }
    }
    out.push(t);

    let mut t = Tally::new("extra.json directives");
    for c in x["directives"]["cases"].as_array().into_iter().flatten() {
        let mut input = Vec::new();
        if s(c, "input_hex_prefix") == "efbbbf" {
            input.extend_from_slice(b"\xEF\xBB\xBF");
        }
        input.extend_from_slice(s(c, "input").as_bytes());
        match s(c, "api") {
            "ParseAll" => {
                let want: Vec<(String, String)> = c["expected"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|d| (s(d, "name").to_string(), s(d, "value").to_string()))
                    .collect();
                // Directive-only input has no instruction: add one to parse.
                input.extend_from_slice(b"FROM scratch\n");
                let got: Vec<(String, String)> = parse(&input)
                    .map(|df| {
                        df.directives
                            .into_iter()
                            .map(|d| (d.name, d.value))
                            .collect()
                    })
                    .unwrap_or_default();
                t.check(got == want, || format!("{:?}: got {got:?}", s(c, "input")));
            }
            api => {
                let found = if api == "DetectSyntax" {
                    detect_syntax(&input)
                } else {
                    parse_directive(s(c, "key"), &input)
                };
                let want_found = c["found"].as_bool().unwrap_or(false);
                let mut ok = found.is_some() == want_found;
                if let Some(f) = &found {
                    if let Some(r) = c.get("ref").and_then(Value::as_str) {
                        ok &= f.reference == r;
                    }
                    if let Some(cl) = c.get("cmdline").and_then(Value::as_str) {
                        ok &= f.cmdline == cl;
                    }
                    if let Some(l) = c.get("line").and_then(Value::as_u64) {
                        ok &= u64::from(f.line) == l;
                    }
                }
                t.check(ok, || format!("{api} {:?}: got {found:?}", s(c, "input")));
            }
        }
    }
    out.push(t);
    out
}

#[test]
fn buildkit_parser_corpus() {
    let Some(base) = rbuild_test_support::corpus("buildkit-parser") else {
        return;
    };
    let mut tallies = vec![positive(&base), negative(&base)];
    let extra_json = fs::read(base.join("extra.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok());
    match extra_json {
        Some(x) => tallies.extend(extra(&base, &x)),
        None => {
            let mut t = Tally::new("extra.json");
            t.check(false, || "extra.json unreadable".into());
            tallies.push(t);
        }
    }
    let mut all_ok = true;
    for t in &tallies {
        all_ok &= t.report();
    }
    assert_eq!(
        (tallies.len(), all_ok),
        (tallies.len(), true),
        "some buildkit-parser conformance cases failed (see output)"
    );
    let ran: Vec<(&str, usize)> = tallies
        .iter()
        .map(|t| (t.name, t.passed + t.failures.len()))
        .collect();
    assert_eq!(ran, CASES, "not every case of the corpus ran");
}
