//! `docker-bake.hcl` → bake targets: `variable` blocks (and top-level attributes) with
//! defaults that the environment overrides, `group` and `target` blocks whose attributes are
//! HCL expressions evaluated with those variables (`"app:${TAG}"`). Blocks of the same target
//! in one or several files merge, later ones winning.

use std::path::Path;

use hcl::eval::{Context, Evaluate};
use hcl::{Body, Expression};

use crate::error::BakeError;
use crate::model::{Definition, Group, Target};

/// Reads the HCL bake file `path` (its text `text`); `env` looks a variable up in the
/// process environment.
pub fn read(
    path: &Path,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Definition, BakeError> {
    let body = hcl::parse(text).map_err(|e| match e {
        hcl::Error::Parse(p) => BakeError::Syntax {
            path: path.to_path_buf(),
            line: Some(p.location().line()),
            message: p.message().to_string(),
        },
        other => BakeError::Syntax {
            path: path.to_path_buf(),
            line: None,
            message: other.to_string(),
        },
    })?;
    let invalid = |kind: &str, name: &str, message: String| BakeError::Invalid {
        path: path.to_path_buf(),
        line: block_line(text, kind, name),
        what: format!("{kind} {name:?}"),
        message,
    };
    let ctx = variables(&body, env, &invalid)?;
    let mut def = Definition::default();
    for block in body.blocks() {
        let kind = block.identifier();
        let name = match block.labels() {
            [label] => label.as_str().to_string(),
            _ if kind == "variable" || kind == "function" => continue,
            _ => {
                return Err(BakeError::Invalid {
                    path: path.to_path_buf(),
                    line: None,
                    what: format!("{kind} block"),
                    message: "needs exactly one name".into(),
                })
            }
        };
        let value = || -> Result<serde_json::Value, BakeError> {
            body_to_json(block.body(), &ctx).map_err(|m| invalid(kind, &name, m))
        };
        match kind {
            "target" => {
                let target: Target = serde_json::from_value(crate::json::normalize(value()?))
                    .map_err(|e| invalid(kind, &name, e.to_string()))?;
                match def.targets.get_mut(&name) {
                    Some(t) => t.merge(&target),
                    None => {
                        def.targets.insert(name, target);
                    }
                }
            }
            "group" => {
                let group: Group = serde_json::from_value(value()?)
                    .map_err(|e| invalid(kind, &name, e.to_string()))?;
                def.groups.insert(name, group);
            }
            "variable" => {}
            "function" => {
                return Err(invalid(
                    kind,
                    &name,
                    "user-defined functions are not supported yet (the built-in ones are: see `stdlib`)".into(),
                ))
            }
            other => {
                return Err(invalid(
                    other,
                    &name,
                    "unknown block (expected variable, group or target)".into(),
                ))
            }
        }
    }
    Ok(def)
}

/// Variables buildx defines for every HCL file: the directory bake runs in (as a context
/// path) and the platform it runs on.
pub const BUILTINS: &[&str] = &["BAKE_CMD_CONTEXT", "BAKE_LOCAL_PLATFORM"];

/// The evaluation context: every variable's value. A variable's default may use other
/// variables (in any order); the environment's value wins over the default, converted to
/// the default's type when that is a boolean or a number.
fn variables(
    body: &Body,
    env: &dyn Fn(&str) -> Option<String>,
    invalid: &dyn Fn(&str, &str, String) -> BakeError,
) -> Result<Context<'static>, BakeError> {
    let mut pending: Vec<(String, Option<Expression>)> = Vec::new();
    for attr in body.attributes() {
        pending.push((attr.key().to_string(), Some(attr.expr().clone())));
    }
    for block in body.blocks().filter(|b| b.identifier() == "variable") {
        let [label] = block.labels() else {
            return Err(invalid("variable", "", "needs exactly one name".into()));
        };
        let default = block
            .body()
            .attributes()
            .find(|a| a.key() == "default")
            .map(|a| a.expr().clone());
        pending.push((label.as_str().to_string(), default));
    }
    let mut ctx = Context::new();
    crate::stdlib::declare(&mut ctx);
    // buildx's built-in variables, when the caller knows them.
    for name in BUILTINS {
        if let Some(value) = env(name) {
            ctx.declare_var(*name, value);
        }
    }
    // Evaluate what can be evaluated until nothing changes: defaults may refer to each other.
    loop {
        let before = pending.len();
        let mut last_error = None;
        let mut left = Vec::new();
        for (name, default) in pending {
            let value = match &default {
                None => Ok(hcl::Value::String(String::new())),
                Some(expr) => expr.evaluate(&ctx),
            };
            match value {
                Ok(v) => {
                    let v = match env(&name) {
                        Some(s) => from_env(&v, s),
                        None => v,
                    };
                    ctx.declare_var(name.as_str(), v);
                }
                Err(e) => {
                    last_error = Some((name.clone(), e.to_string()));
                    left.push((name, default));
                }
            }
        }
        pending = left;
        if pending.is_empty() {
            return Ok(ctx);
        }
        if pending.len() == before {
            let (name, message) = last_error.unwrap_or_default();
            return Err(invalid("variable", &name, message));
        }
    }
}

/// An environment value for a variable whose default is `default`.
fn from_env(default: &hcl::Value, s: String) -> hcl::Value {
    match default {
        hcl::Value::Bool(_) => match s.parse::<bool>() {
            Ok(b) => hcl::Value::Bool(b),
            Err(_) => hcl::Value::String(s),
        },
        hcl::Value::Number(_) => match s.parse::<i64>() {
            Ok(n) => hcl::Value::from(n),
            Err(_) => match s.parse::<f64>() {
                Ok(f) => hcl::Value::from(f),
                Err(_) => hcl::Value::String(s),
            },
        },
        _ => hcl::Value::String(s),
    }
}

/// A block body's attributes, evaluated with `ctx`, as a JSON object (nested blocks are not
/// part of the bake model).
fn body_to_json(body: &Body, ctx: &Context<'_>) -> Result<serde_json::Value, String> {
    if let Some(b) = body.blocks().next() {
        return Err(format!("unexpected block {:?}", b.identifier()));
    }
    let mut map = serde_json::Map::new();
    for attr in body.attributes() {
        let value = attr
            .expr()
            .evaluate(ctx)
            .map_err(|e| format!("{}: {e}", attr.key()))?;
        let json = serde_json::to_value(&value).map_err(|e| format!("{}: {e}", attr.key()))?;
        map.insert(attr.key().to_string(), json);
    }
    Ok(serde_json::Value::Object(map))
}

/// The 1-based line of `KIND "NAME" {` in `text`.
fn block_line(text: &str, kind: &str, name: &str) -> Option<usize> {
    text.lines()
        .position(|l| {
            let mut words = l.split_whitespace();
            words.next() == Some(kind) && words.next().is_some_and(|w| w.trim_matches('"') == name)
        })
        .map(|i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "TAG").then(|| "2.0".to_string())
    }

    #[test]
    fn variables_groups_and_targets() {
        let text = r#"
variable "TAG" { default = "latest" }
variable "REPO" { default = "example/${NAME}" }
NAME = "app"
group "default" { targets = ["web", "api"] }
target "base" {
  args = { GO = "1.22", N = 3 }
}
target "web" {
  inherits = ["base"]
  context = "web"
  tags = ["${REPO}:${TAG}"]
  contexts = { shared = "./shared" }
  no-cache = true
}
target "api" {
  dockerfile = "api.Dockerfile"
  cache-from = ["type=local,src=c"]
}
"#;
        let def = read(Path::new("docker-bake.hcl"), text, &env).unwrap();
        assert_eq!(def.groups["default"].targets, vec!["web", "api"]);
        let web = &def.targets["web"];
        assert_eq!(web.tags, Some(vec!["example/app:2.0".to_string()]));
        assert_eq!(web.inherits, Some(vec!["base".to_string()]));
        assert_eq!(web.no_cache, Some(true));
        assert_eq!(web.contexts.as_ref().unwrap()["shared"], "./shared");
        assert_eq!(def.targets["base"].args.as_ref().unwrap()["N"], "3");
        assert_eq!(
            def.targets["api"].dockerfile.as_deref(),
            Some("api.Dockerfile")
        );
    }

    #[test]
    fn errors_name_file_and_line() {
        let e = read(Path::new("b.hcl"), "target \"a\" {\n  tags = [\n", &env).unwrap_err();
        assert!(e.to_string().starts_with("b.hcl:"), "{e}");
        assert!(
            matches!(e, BakeError::Syntax { line: Some(_), .. }),
            "{e:?}"
        );
        let e = read(
            Path::new("b.hcl"),
            "\n\ntarget \"a\" {\n  colour = \"red\"\n}\n",
            &env,
        )
        .unwrap_err();
        let text = e.to_string();
        assert!(text.starts_with("b.hcl:3: target \"a\""), "{text}");
        assert!(text.contains("colour"), "{text}");
        let e = read(
            Path::new("b.hcl"),
            "target \"a\" {\n  tags = [UNDEFINED]\n}\n",
            &env,
        )
        .unwrap_err();
        assert!(e.to_string().contains("UNDEFINED"), "{e}");
    }
}
