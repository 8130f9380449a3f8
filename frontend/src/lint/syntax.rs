//! Rules of the parse tree alone, in the order BuildKit runs them: empty continuation lines
//! (the parser's warnings), then per instruction as it is converted (MAINTAINER, the stage
//! name's casing, `AS` against `FROM`), then the stage names (reserved, duplicate), then
//! the casing of every instruction against the majority.

use super::{Linter, Rule};
use crate::ast::{Dockerfile, Node};
use crate::instructions::from_node;

/// Stage names BuildKit reserves.
const RESERVED: [&str; 2] = ["context", "scratch"];

/// The instruction word as written (`From`, `copy`).
pub fn written_keyword(node: &Node) -> &str {
    node.original
        .split_whitespace()
        .next()
        .unwrap_or(node.keyword.as_str())
}

fn is_lower(s: &str) -> bool {
    s.to_lowercase() == s
}

fn is_upper(s: &str) -> bool {
    s.to_uppercase() == s
}

/// Runs the rules; returns whether every instruction converted (BuildKit stops at the
/// first one that does not, and runs no later rule).
pub fn check(df: &Dockerfile, linter: &mut Linter<'_>) -> bool {
    for w in &df.warnings {
        // BuildKit points at the last line of the instruction.
        let node = df
            .instructions
            .iter()
            .find(|n| n.span.start == w.span.start);
        let last = node.map_or(w.span.line, |n| n.end_line.max(n.span.line));
        linter.report_lines(
            Rule::NoEmptyContinuation,
            "Empty continuation line".to_string(),
            w.span,
            (last, last),
        );
    }

    for node in &df.instructions {
        match node.keyword.as_str() {
            "maintainer" => linter.report(
                Rule::MaintainerDeprecated,
                "Maintainer instruction is deprecated in favor of using label".to_string(),
                node,
                node.span,
            ),
            "from" => from_casing(node, linter),
            _ => {}
        }
        if from_node(node).is_err() {
            return false;
        }
    }

    stage_names(df, linter);
    instruction_casing(df, linter);
    true
}

fn from_casing(node: &Node, linter: &mut Linter<'_>) {
    let [_, as_word, name] = node.args.as_slice() else {
        return;
    };
    if !is_lower(name) {
        linter.report(
            Rule::StageNameCasing,
            format!("Stage name '{name}' should be lowercase"),
            node,
            node.word_span(name),
        );
    }
    let from = written_keyword(node);
    let matches = if is_lower(from) {
        is_lower(as_word)
    } else if is_upper(from) {
        is_upper(as_word)
    } else {
        true
    };
    if !matches {
        linter.report(
            Rule::FromAsCasing,
            format!("'{as_word}' and '{from}' keywords' casing do not match"),
            node,
            node.word_span(as_word),
        );
    }
}

fn stage_names(df: &Dockerfile, linter: &mut Linter<'_>) {
    let mut seen: Vec<String> = Vec::new();
    for node in df.instructions.iter().filter(|n| n.keyword == "from") {
        let [_, _, name] = node.args.as_slice() else {
            continue;
        };
        let name = name.to_lowercase();
        let span = node.word_span(&name);
        if RESERVED.contains(&name.as_str()) {
            linter.report(
                Rule::ReservedStageName,
                format!("Stage name should not use the same name as reserved stage {name:?}"),
                node,
                span,
            );
        }
        if seen.contains(&name) {
            linter.report(
                Rule::DuplicateStageName,
                format!("Duplicate stage name {name:?}, stage names should be unique"),
                node,
                span,
            );
        }
        seen.push(name);
    }
}

fn instruction_casing(df: &Dockerfile, linter: &mut Linter<'_>) {
    // Only instructions of stages count (global ARGs before the first FROM do not).
    let Some(first) = df.instructions.iter().position(|n| n.keyword == "from") else {
        return;
    };
    let nodes = &df.instructions[first..];
    let (mut lower, mut upper) = (0usize, 0usize);
    for node in nodes {
        let k = written_keyword(node);
        if is_lower(k) {
            lower += 1;
        } else if is_upper(k) {
            upper += 1;
        }
    }
    let majority_lower = lower > upper;
    for node in nodes {
        let k = written_keyword(node);
        let casing = if majority_lower && !is_lower(k) {
            "lowercase"
        } else if !majority_lower && !is_upper(k) {
            "uppercase"
        } else {
            continue;
        };
        let start = node.original.len() - node.original.trim_start().len();
        linter.report(
            Rule::ConsistentInstructionCasing,
            format!("Command '{k}' should match the case of the command majority ({casing})"),
            node,
            node.span_of_range(start, start + k.len()),
        );
    }
}
