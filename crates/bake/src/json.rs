//! `docker-bake.json` → bake targets: the shape `--print` writes (`{"group": …, "target": …}`)
//! plus `variable` with defaults that the environment overrides; `${VAR}` references in the
//! targets' strings are interpolated with them.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::error::{without_location, BakeError};
use crate::interp::interpolate;
use crate::model::{Definition, Group, Target};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonFile {
    #[serde(default)]
    variable: BTreeMap<String, Variable>,
    #[serde(default)]
    group: BTreeMap<String, Group>,
    #[serde(default)]
    target: BTreeMap<String, serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Variable {
    #[serde(default)]
    default: serde_json::Value,
}

/// Reads the JSON bake file `path` (its text `text`).
pub fn read(
    path: &Path,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Definition, BakeError> {
    let file: JsonFile = serde_json::from_str(text).map_err(|e| BakeError::Syntax {
        path: path.to_path_buf(),
        line: Some(e.line()),
        message: without_location(&e.to_string()),
    })?;
    let vars: BTreeMap<String, String> = file
        .variable
        .into_iter()
        .map(|(name, v)| {
            let value = env(&name).unwrap_or_else(|| scalar_text(&v.default).unwrap_or_default());
            (name, value)
        })
        .collect();
    let lookup = |name: &str| vars.get(name).cloned();
    let mut def = Definition {
        groups: file.group,
        ..Definition::default()
    };
    for (name, value) in file.target {
        let invalid = |message: String| BakeError::Invalid {
            path: path.to_path_buf(),
            line: line_of(text, &name),
            what: format!("target {name:?}"),
            message,
        };
        let value = interpolate_strings(normalize(value), &lookup).map_err(&invalid)?;
        let target: Target = serde_json::from_value(value).map_err(|e| invalid(e.to_string()))?;
        def.targets.insert(name, target);
    }
    Ok(def)
}

/// A target object with the scalars of its maps (`args`, `labels`, `contexts`) as strings, as
/// buildx reads `N = 3`; a `null` entry is left out.
pub(crate) fn normalize(mut target: serde_json::Value) -> serde_json::Value {
    if let Some(obj) = target.as_object_mut() {
        for key in ["args", "labels", "contexts"] {
            if let Some(serde_json::Value::Object(map)) = obj.get_mut(key) {
                map.retain(|_, v| !v.is_null());
                for v in map.values_mut() {
                    if let Some(s) = scalar_text(v) {
                        *v = serde_json::Value::String(s);
                    }
                }
            }
        }
    }
    target
}

fn scalar_text(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn interpolate_strings(
    v: serde_json::Value,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<serde_json::Value, String> {
    Ok(match v {
        serde_json::Value::String(s) => {
            serde_json::Value::String(interpolate(&s, lookup).map_err(|e| e.to_string())?)
        }
        serde_json::Value::Array(a) => serde_json::Value::Array(
            a.into_iter()
                .map(|x| interpolate_strings(x, lookup))
                .collect::<Result<_, _>>()?,
        ),
        serde_json::Value::Object(o) => serde_json::Value::Object(
            o.into_iter()
                .map(|(k, x)| Ok((k, interpolate_strings(x, lookup)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => other,
    })
}

/// The 1-based line where the key `"name":` first appears.
fn line_of(text: &str, name: &str) -> Option<usize> {
    let key = format!("\"{name}\"");
    text.lines()
        .position(|l| {
            l.find(&key)
                .is_some_and(|i| l[i + key.len()..].trim_start().starts_with(':'))
        })
        .map(|i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_print_shape_with_variables() {
        let text = r#"{
  "variable": {"TAG": {"default": "dev"}},
  "group": {"default": {"targets": ["app"]}},
  "target": {"app": {"context": "app", "tags": ["app:${TAG}"], "args": {"N": 1}}}
}"#;
        let def = read(Path::new("b.json"), text, &|_| None).unwrap();
        assert_eq!(def.groups["default"].targets, vec!["app"]);
        let app = &def.targets["app"];
        assert_eq!(app.tags, Some(vec!["app:dev".to_string()]));
        assert_eq!(app.args.as_ref().unwrap()["N"], "1");
        let def = read(Path::new("b.json"), text, &|n| {
            (n == "TAG").then(|| "9".into())
        })
        .unwrap();
        assert_eq!(def.targets["app"].tags, Some(vec!["app:9".to_string()]));
    }

    #[test]
    fn errors_name_file_and_line() {
        let e = read(
            Path::new("b.json"),
            "{\n  \"target\": {\n    \"a\": [\n",
            &|_| None,
        )
        .unwrap_err();
        assert!(e.to_string().starts_with("b.json:"), "{e}");
        let e = read(
            Path::new("b.json"),
            "{\n  \"target\": {\n    \"a\": {\"colour\": \"red\"}\n  }\n}\n",
            &|_| None,
        )
        .unwrap_err();
        assert!(e.to_string().starts_with("b.json:3: target \"a\""), "{e}");
    }
}
