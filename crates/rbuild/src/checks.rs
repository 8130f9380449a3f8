//! Build checks as buildx prints them: the result of `--call=check` (BuildKit's
//! `lint.PrintTo` after buildx's "Check complete" line, or its JSON), and the summary after a
//! build (buildx's `printWarnings`), expanded with `--debug`.

use std::fmt::Write as _;

use base64::Engine as _;
use rbuild_builder::DockerfileSource;
use rbuild_frontend::lint::Lint;

use crate::source_excerpt::excerpt;

/// One violation as `--call=check` prints it: `WARNING: Rule - URL`, the message, the
/// Dockerfile lines (with a caret under the span).
pub fn warning_block(file: &DockerfileSource, lint: &Lint) -> String {
    let mut out = format!("\nWARNING: {}", lint.rule.name());
    if let Some(url) = lint.rule.url() {
        let _ = write!(out, " - {url}");
    }
    let _ = writeln!(out, "\n{}", lint.message);
    if lint.lines.0 > 0 {
        out.push_str(&excerpt(
            &file.name,
            &file.bytes,
            lint.lines,
            Some(lint.span),
        ));
    }
    out
}

/// The text `--call=check` prints on standard output: `Check complete, N warnings have
/// been found!` and each violation, or `Check complete, no warnings found.` (nothing about
/// the warnings when the evaluation failed without any: the error says what happened).
pub fn check_text(file: &DockerfileSource, lints: &[Lint], failed: bool) -> String {
    let mut out = String::new();
    match lints.len() {
        0 if failed => {}
        0 => out.push_str("Check complete, no warnings found.\n"),
        1 => out.push_str("Check complete, 1 warning has been found!\n"),
        n => {
            let _ = writeln!(out, "Check complete, {n} warnings have been found!");
        }
    }
    for l in lints {
        out.push_str(&warning_block(file, l));
    }
    if failed && !lints.is_empty() {
        out.push('\n');
    }
    out
}

/// BuildKit's lint result JSON (`frontend/subrequests/lint.LintResults`): the warnings with
/// their rule, description, URL, message and line range in source 0, the Dockerfile, and the
/// error that stopped the evaluation.
pub fn check_json(file: &DockerfileSource, lints: &[Lint], error: Option<&str>) -> String {
    let warnings: Vec<serde_json::Value> = lints
        .iter()
        .map(|l| {
            let mut w = serde_json::json!({
                "ruleName": l.rule.name(),
                "description": l.rule.description(),
                "detail": l.message,
            });
            if let Some(url) = l.rule.url() {
                w["url"] = url.into();
            }
            if l.lines.0 > 0 {
                w["location"] = serde_json::json!({
                    "ranges": [{"start": {"line": l.lines.0}, "end": {"line": l.lines.1}}],
                });
            }
            w
        })
        .collect();
    let mut out = serde_json::json!({
        "warnings": warnings,
        "sources": [{
            "filename": file.name,
            "language": "Dockerfile",
            "data": base64::engine::general_purpose::STANDARD.encode(&file.bytes),
        }],
    });
    if let Some(message) = error {
        out["buildError"] = serde_json::json!({ "message": message });
    }
    serde_json::to_string_pretty(&out).unwrap_or_default()
}

/// BuildKit's short form of a violation (`linter.LintFormatShort`): `Rule: message (line N)`.
pub fn short(lint: &Lint) -> String {
    let mut out = format!("{}: {}", lint.rule.name(), lint.message);
    if lint.lines.0 > 0 {
        let _ = write!(out, " (line {})", lint.lines.0);
    }
    out
}

/// The summary after a build (buildx's `printWarnings`): ` N warnings found (use --debug
/// to expand):` then ` - Rule: message (line N)` for each; with `expand`, each also with
/// its description, `More info:` URL and Dockerfile lines. `yellow` colours the header as
/// buildx does on a terminal. Empty without violations.
pub fn summary(found: &[(DockerfileSource, Vec<Lint>)], expand: bool, yellow: bool) -> String {
    let count: usize = found.iter().map(|(_, l)| l.len()).sum();
    if count == 0 {
        return String::new();
    }
    let mut header = if count == 1 {
        "1 warning found".to_string()
    } else {
        format!("{count} warnings found")
    };
    if !expand {
        header.push_str(" (use --debug to expand)");
    }
    header.push_str(":\n");
    let mut out = String::from("\n ");
    if yellow {
        let _ = write!(out, "\x1b[33m{header}\x1b[0m");
    } else {
        out.push_str(&header);
    }
    for (file, lints) in found {
        for l in lints {
            let _ = writeln!(out, " - {}", short(l));
            if !expand {
                continue;
            }
            let _ = writeln!(out, "{}", l.rule.description());
            if let Some(url) = l.rule.url() {
                let _ = writeln!(out, "More info: {url}");
            }
            if l.lines.0 > 0 {
                out.push_str(&excerpt(&file.name, &file.bytes, l.lines, Some(l.span)));
            }
            out.push('\n');
        }
    }
    out
}
