//! `--call=outline` and `--call=targets`, printed as buildx prints BuildKit's results
//! (`frontend/subrequests/outline.PrintOutline`, `targets.PrintTargets`: tab-aligned
//! tables), or as their JSON with `format=json`.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

use rbuild_builder::BuildIo;
use rbuild_frontend::outline::{Outline, Target};
use rbuild_types::Privileges;

use crate::call::{Call, CallFormat, CallName};
use crate::cli::BuildArgs;
use crate::report::CliError;

/// Runs `--call=outline|targets` and prints the result on standard output.
pub fn run(
    args: &BuildArgs,
    store_root: &Path,
    privileges: Privileges,
    call: Call,
) -> Result<(), CliError> {
    let config = crate::build_config::from_args(args, store_root, privileges)?;
    let io = BuildIo {
        events: Arc::new(|_| {}),
        stdin: Some(Box::new(std::io::stdin())),
        stdout: None,
    };
    let text = match (call.name, call.format) {
        (CallName::Targets, format) => {
            let (_, list) = rbuild_builder::targets(config, io)?;
            match format {
                CallFormat::Text => targets_text(&list),
                CallFormat::Json => targets_json(&list),
            }
        }
        (_, format) => {
            let (_, outline) = rbuild_builder::outline(config, io)?;
            match format {
                CallFormat::Text => outline_text(&outline),
                CallFormat::Json => outline_json(&outline),
            }
        }
    };
    print!("{text}");
    Ok(())
}

/// Go's `tabwriter` with `minwidth 0, tabwidth 0, padding, ' '`: every cell but a row's last
/// is padded to its column's widest cell plus `padding`.
fn table(rows: &[Vec<String>], padding: usize) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0usize; columns];
    for row in rows {
        for (i, cell) in row.iter().enumerate().take(row.len().saturating_sub(1)) {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                out.push_str(cell);
            } else {
                let _ = write!(out, "{cell:<w$}", w = widths[i] + padding);
            }
        }
        out.push('\n');
    }
    out
}

fn row(cells: &[&str]) -> Vec<String> {
    cells.iter().map(|c| c.to_string()).collect()
}

/// `TARGET  DESCRIPTION`, one stage a line, the default one marked.
pub fn targets_text(list: &[Target]) -> String {
    let mut rows = vec![row(&["TARGET", "DESCRIPTION"])];
    for t in list {
        let name = match (t.name.is_empty(), t.default) {
            (true, true) => "(default)".to_string(),
            (false, true) => format!("{} (default)", t.name),
            _ => t.name.clone(),
        };
        rows.push(vec![name, t.description.clone()]);
    }
    table(&rows, 1)
}

fn targets_json(list: &[Target]) -> String {
    let targets: Vec<serde_json::Value> = list
        .iter()
        .map(|t| {
            let mut v = serde_json::json!({ "base": t.base });
            for (k, s) in [
                ("name", &t.name),
                ("description", &t.description),
                ("platform", &t.platform),
            ] {
                if !s.is_empty() {
                    v[k] = s.as_str().into();
                }
            }
            if t.default {
                v["default"] = true.into();
            }
            v["location"] = serde_json::json!({"ranges": [{"start": {"line": t.line}, "end": {"line": t.line}}]});
            v
        })
        .collect();
    let out = serde_json::json!({ "targets": targets });
    format!(
        "{}\n",
        serde_json::to_string_pretty(&out).unwrap_or_default()
    )
}

/// The target and its description, then the build args, secrets and SSH agents it uses.
pub fn outline_text(o: &Outline) -> String {
    let mut out = String::new();
    if !o.name.is_empty() || !o.description.is_empty() {
        let name = if o.name.is_empty() {
            "(default)"
        } else {
            &o.name
        };
        let mut rows = vec![row(&["TARGET:", name])];
        if !o.description.is_empty() {
            rows.push(row(&["DESCRIPTION:", &o.description]));
        }
        out.push_str(&table(&rows, 1));
        out.push('\n');
    }
    if !o.args.is_empty() {
        let mut rows = vec![row(&["BUILD ARG", "VALUE", "DESCRIPTION"])];
        rows.extend(
            o.args
                .iter()
                .map(|a| row(&[&a.name, &a.value, &a.description])),
        );
        out.push_str(&table(&rows, 3));
        out.push('\n');
    }
    for (title, list) in [("SECRET", &o.secrets), ("SSH", &o.ssh)] {
        if list.is_empty() {
            continue;
        }
        let mut rows = vec![row(&[title, "REQUIRED"])];
        rows.extend(
            list.iter()
                .map(|s| row(&[&s.name, if s.required { "true" } else { "" }])),
        );
        out.push_str(&table(&rows, 3));
        out.push('\n');
    }
    out
}

fn outline_json(o: &Outline) -> String {
    let mut v = serde_json::json!({});
    if !o.name.is_empty() {
        v["name"] = o.name.as_str().into();
    }
    if !o.description.is_empty() {
        v["description"] = o.description.as_str().into();
    }
    let args: Vec<serde_json::Value> = o
        .args
        .iter()
        .map(|a| {
            let mut j = serde_json::json!({ "name": a.name });
            if !a.value.is_empty() {
                j["value"] = a.value.as_str().into();
            }
            if !a.description.is_empty() {
                j["description"] = a.description.as_str().into();
            }
            j
        })
        .collect();
    if !args.is_empty() {
        v["args"] = args.into();
    }
    for (key, list) in [("secrets", &o.secrets), ("ssh", &o.ssh)] {
        let items: Vec<serde_json::Value> = list
            .iter()
            .map(|s| {
                let mut j = serde_json::json!({ "name": s.name });
                if s.required {
                    j["required"] = true.into();
                }
                j
            })
            .collect();
        if !items.is_empty() {
            v[key] = items.into();
        }
    }
    format!("{}\n", serde_json::to_string_pretty(&v).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_pad_all_but_the_last_column() {
        let rows = vec![row(&["TARGET", "DESCRIPTION"]), row(&["build", "x"])];
        assert_eq!(table(&rows, 1), "TARGET DESCRIPTION\nbuild  x\n");
        let rows = vec![row(&["A", "VALUE", "D"]), row(&["LONGER", "", ""])];
        assert_eq!(table(&rows, 3), "A        VALUE   D\nLONGER           \n");
    }
}
