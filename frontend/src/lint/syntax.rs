//! Rules of the parse tree alone, in the order BuildKit runs them: empty continuation lines
//! (the parser's warnings), then per instruction as it is converted (MAINTAINER, the stage
//! name's casing, `AS` against `FROM`, the experimental description comments of stages and
//! ARGs), then the stage names (reserved, duplicate), then the casing of every instruction
//! against the majority.

use rbuild_types::Span;

use super::{Linter, Rule};
use crate::ast::{Dockerfile, Node};
use crate::instructions::{from_node, Instruction};

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
        // The caret at the start of that line.
        let end = node
            .map_or(w.span.end, |n| n.span.end)
            .min(linter.source.len());
        let body = &linter.source[..end];
        let body = body.strip_suffix(b"\n").unwrap_or(body);
        let start = body.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let span = Span::new(start, start + 1, last, 1);
        linter.report_lines(
            Rule::NoEmptyContinuation,
            "Empty continuation line".to_string(),
            span,
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
        match from_node(node) {
            Err(_) => return false,
            Ok(Instruction::From {
                alias: Some(name), ..
            }) => definition_description("FROM", &[name], node, linter),
            Ok(Instruction::Arg(words)) => {
                let keys: Vec<String> = words.into_iter().map(|(k, _)| k).collect();
                definition_description("ARG", &keys, node, linter);
            }
            Ok(_) => {}
        }
    }

    stage_names(df, linter);
    instruction_casing(df, linter);
    true
}

/// `InvalidDefinitionDescription` (experimental): the comment right above a named stage or
/// an `ARG` does not start with its name (`# <name> <description>`).
fn definition_description(
    instruction: &str,
    keys: &[String],
    node: &Node,
    linter: &mut Linter<'_>,
) {
    let Some(last) = linter.comments_of(node).last() else {
        return;
    };
    let first_word = last.split(' ').next().unwrap_or_default();
    if keys.is_empty() || keys.iter().any(|k| k == first_word) {
        return;
    }
    let example = if keys.len() > 1 {
        "<arg_key>"
    } else {
        &keys[0]
    };
    linter.report(
        Rule::InvalidDefinitionDescription,
        format!("Comment for {instruction} should follow the format: `# {example} <description>`"),
        node,
        node.span,
    );
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
            stage_name_span(node, name),
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

/// The span of the stage name `name` of a `FROM` (its last occurrence, ASCII case ignored).
fn stage_name_span(node: &Node, name: &str) -> Span {
    match node
        .original
        .to_ascii_lowercase()
        .rfind(&name.to_ascii_lowercase())
    {
        Some(k) => node.span_of_range(k, k + name.len()),
        None => node.span,
    }
}

fn stage_names(df: &Dockerfile, linter: &mut Linter<'_>) {
    let mut seen: Vec<String> = Vec::new();
    for node in df.instructions.iter().filter(|n| n.keyword == "from") {
        let [_, _, name] = node.args.as_slice() else {
            continue;
        };
        let name = name.to_lowercase();
        let span = stage_name_span(node, &name);
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

#[cfg(test)]
mod tests {
    #[test]
    fn empty_continuation_points_at_the_last_line() {
        let src = b"\nFROM scratch\nCOPY Dockerfile \\\n\n.\n";
        let df = crate::parse(src).unwrap();
        let lints = super::super::check(&super::super::CheckInput {
            df: &df,
            source: src,
            options: &Default::default(),
            config: &Default::default(),
            plan: None,
            bases: None,
            ignored: None,
            scope: super::super::Scope::AllStages,
        });
        assert_eq!(lints.len(), 1, "{lints:?}");
        assert_eq!(lints[0].lines, (5, 5));
        assert_eq!(
            (lints[0].span.line, lints[0].span.col),
            (5, 1),
            "{:?}",
            df.warnings
        );
    }
}
