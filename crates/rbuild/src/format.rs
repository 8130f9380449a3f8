//! `--format` of `images` and `inspect`: the subset of Go's text/template that people script
//! Docker with, over JSON values.
//!
//! A template is literal text and actions: `{{.Field}}`, `{{.A.B}}`, `{{.}}`,
//! `{{json .X}}`, `{{index .X 0}}` (or a `"key"`), `{{join .X ","}}`, `{{upper .X}}`,
//! `{{lower .X}}`. As Docker's: the escapes `\t` and `\n` become a tab and a newline, and a
//! leading `table` prints a header row and aligns the tab-separated columns. Values print as
//! Go prints them: strings bare, lists `[a b]`, maps `map[k:v]`, a missing value `<no value>`.
//! Whether a template names only known fields is checked when it is parsed (the first name of
//! each path), so a typo fails before any work.

use std::fmt::Write as _;

use serde_json::Value;

/// A template that cannot be used: a usage error (exit 2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("invalid --format {template:?}: {{{{ without a closing }}}}")]
    Unclosed { template: String },
    #[error("invalid --format {template:?}: cannot read {{{{{action}}}}}: {why}")]
    Action {
        template: String,
        action: String,
        why: &'static str,
    },
    #[error("invalid --format {template:?}: unknown field .{field}; known fields: {}", known.join(", "))]
    UnknownField {
        template: String,
        field: String,
        known: Vec<String>,
    },
}

/// A template that failed on a value (exit 1), as Go's `error calling index`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("executing --format template: {0}")]
pub struct RenderError(String);

/// A value an action reads.
#[derive(Debug, Clone, PartialEq)]
enum Arg {
    /// `.A.B` (empty: `.` itself).
    Path(Vec<String>),
    /// `0`, `"key"`.
    Literal(Value),
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(String),
    Action {
        func: Option<String>,
        args: Vec<Arg>,
    },
}

/// A parsed `--format`.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    parts: Vec<Part>,
    /// `table …`: a header row, then columns aligned.
    table: bool,
}

const FUNCS: &[&str] = &["json", "index", "join", "upper", "lower"];

impl Template {
    /// Parses `text`; each path's first name must be one of `known`.
    pub fn parse(text: &str, known: &[&str]) -> Result<Template, TemplateError> {
        let (table, body) = match text.strip_prefix("table") {
            Some(rest) if rest.is_empty() || rest.starts_with([' ', '\t']) => (true, rest),
            _ => (false, text),
        };
        let body = body
            .trim_matches(' ')
            .replace("\\t", "\t")
            .replace("\\n", "\n");
        let mut parts = Vec::new();
        let mut rest = body.as_str();
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_string()));
            }
            let close = rest[open..]
                .find("}}")
                .ok_or_else(|| TemplateError::Unclosed {
                    template: text.to_string(),
                })?;
            let action = &rest[open + 2..open + close];
            parts.push(parse_action(text, action, known)?);
            rest = &rest[open + close + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        Ok(Template { parts, table })
    }

    /// `value` through the template (no newline added).
    pub fn render(&self, value: &Value) -> Result<String, RenderError> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Action { func, args } => {
                    out.push_str(&call(func.as_deref(), args, value)?);
                }
            }
        }
        Ok(out)
    }

    /// The whole output: one line per row (after the header row of a table, its column
    /// names taken from `headers`, the fields' names there), columns aligned in a table.
    pub fn render_rows(&self, rows: &[Value], headers: &Value) -> Result<String, RenderError> {
        let mut lines = String::new();
        if self.table {
            lines.push_str(&self.render(headers)?);
            lines.push('\n');
        }
        for row in rows {
            lines.push_str(&self.render(row)?);
            lines.push('\n');
        }
        Ok(if self.table { align(&lines) } else { lines })
    }
}

fn parse_action(template: &str, action: &str, known: &[&str]) -> Result<Part, TemplateError> {
    let bad = |why| TemplateError::Action {
        template: template.to_string(),
        action: action.to_string(),
        why,
    };
    let words = split_words(action.trim()).ok_or_else(|| bad("unterminated quote"))?;
    let (func, arg_words) = match words.first() {
        None => return Err(bad("empty action")),
        Some(w) if w.starts_with('.') || w.starts_with('"') => (None, &words[..]),
        Some(w) if FUNCS.contains(&w.as_str()) => (Some(w.clone()), &words[1..]),
        Some(_) => {
            return Err(bad(
                "unknown function (known: json, index, join, upper, lower)",
            ))
        }
    };
    let args = arg_words
        .iter()
        .map(|w| parse_arg(w).ok_or_else(|| bad("expected .Field, a number or a \"string\"")))
        .collect::<Result<Vec<_>, _>>()?;
    let wanted = match func.as_deref() {
        None => args.len() == 1,
        Some("index") => args.len() >= 2,
        Some("join") => args.len() == 2,
        Some(_) => args.len() == 1,
    };
    if !wanted {
        return Err(bad("wrong number of arguments"));
    }
    for arg in &args {
        if let Arg::Path(path) = arg {
            if let Some(first) = path.first() {
                if !known.contains(&first.as_str()) {
                    return Err(TemplateError::UnknownField {
                        template: template.to_string(),
                        field: first.clone(),
                        known: known.iter().map(|k| format!(".{k}")).collect(),
                    });
                }
            }
        }
    }
    Ok(Part::Action { func, args })
}

/// Splits on spaces, keeping `"quoted strings"` (with `\"` inside) whole.
fn split_words(s: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let mut word = String::new();
        if c == '"' {
            word.push(chars.next()?);
            loop {
                let c = chars.next()?;
                word.push(c);
                if c == '\\' {
                    word.push(chars.next()?);
                } else if c == '"' {
                    break;
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                word.push(c);
                chars.next();
            }
        }
        words.push(word);
    }
    Some(words)
}

fn parse_arg(word: &str) -> Option<Arg> {
    if word == "." {
        return Some(Arg::Path(Vec::new()));
    }
    if let Some(path) = word.strip_prefix('.') {
        let names: Vec<String> = path.split('.').map(String::from).collect();
        let ok = names
            .iter()
            .all(|n| !n.is_empty() && n.chars().all(|c| c.is_alphanumeric() || c == '_'));
        return ok.then_some(Arg::Path(names));
    }
    if word.starts_with('"') {
        return serde_json::from_str::<String>(word)
            .ok()
            .map(|s| Arg::Literal(Value::String(s)));
    }
    word.parse::<i64>().ok().map(|n| Arg::Literal(n.into()))
}

/// The value of `arg` in `root` (`Null` where a name is missing: Go's `<no value>`).
fn eval(arg: &Arg, root: &Value) -> Value {
    match arg {
        Arg::Literal(v) => v.clone(),
        Arg::Path(names) => names
            .iter()
            .try_fold(root, |v, n| v.get(n))
            .cloned()
            .unwrap_or(Value::Null),
    }
}

fn call(func: Option<&str>, args: &[Arg], root: &Value) -> Result<String, RenderError> {
    let first = eval(&args[0], root);
    match func {
        None => Ok(go_text(&first)),
        Some("json") => serde_json::to_string(&first).map_err(|e| RenderError(e.to_string())),
        Some("upper") => Ok(go_text(&first).to_uppercase()),
        Some("lower") => Ok(go_text(&first).to_lowercase()),
        Some("join") => {
            let sep = go_text(&eval(&args[1], root));
            match &first {
                Value::Array(items) => Ok(items.iter().map(go_text).collect::<Vec<_>>().join(&sep)),
                Value::Null => Ok(String::new()),
                other => Err(RenderError(format!("join: not a list: {}", go_text(other)))),
            }
        }
        Some("index") => {
            let mut v = first;
            for key in &args[1..] {
                v = match (v, eval(key, root)) {
                    (Value::Array(items), Value::Number(n)) => {
                        let i = n.as_u64().unwrap_or(u64::MAX);
                        items
                            .into_iter()
                            .nth(i as usize)
                            .ok_or_else(|| RenderError(format!("index out of range: {n}")))?
                    }
                    (Value::Object(map), Value::String(k)) => {
                        map.get(&k).cloned().unwrap_or(Value::Null)
                    }
                    (Value::Null, _) => Value::Null,
                    (v, k) => {
                        return Err(RenderError(format!(
                            "cannot index {} with {}",
                            go_text(&v),
                            go_text(&k)
                        )))
                    }
                };
            }
            Ok(go_text(&v))
        }
        Some(other) => Err(RenderError(format!("unknown function {other}"))),
    }
}

/// A value as Go's `fmt.Print` shows it.
fn go_text(v: &Value) -> String {
    match v {
        Value::Null => "<no value>".to_string(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Array(items) => {
            format!(
                "[{}]",
                items.iter().map(go_text).collect::<Vec<_>>().join(" ")
            )
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let mut out = String::from("map[");
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                let _ = write!(out, "{k}:{}", go_text(&map[*k]));
            }
            out.push(']');
            out
        }
    }
}

/// Aligns tab-separated cells as Docker's tables do (Go's tabwriter: cells at least 10 wide,
/// 3 spaces of padding; the last cell of a line is not padded).
fn align(text: &str) -> String {
    let rows: Vec<Vec<&str>> = text
        .lines()
        .map(|l| l.split('\t').collect::<Vec<_>>())
        .collect();
    let mut widths: Vec<usize> = Vec::new();
    for row in &rows {
        for (i, cell) in row.iter().enumerate().take(row.len().saturating_sub(1)) {
            let w = cell.chars().count() + 3;
            if widths.len() <= i {
                widths.push(10);
            }
            widths[i] = widths[i].max(w);
        }
    }
    let mut out = String::new();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if i + 1 < row.len() {
                let _ = write!(out, "{cell:<width$}", width = widths[i]);
            } else {
                out.push_str(cell);
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const KNOWN: &[&str] = &["Repository", "Tag", "ID", "Config", "RepoTags", "Size"];

    fn render(t: &str, v: &Value) -> String {
        Template::parse(t, KNOWN).unwrap().render(v).unwrap()
    }

    #[test]
    fn fields_nested_and_literal_text() {
        let v = json!({"Repository": "app", "Tag": "1.0", "Size": 42,
                       "Config": {"Env": ["A=1", "B=2"], "User": ""}});
        assert_eq!(render("{{.Repository}}:{{.Tag}}", &v), "app:1.0");
        assert_eq!(render("size={{ .Size }}", &v), "size=42");
        assert_eq!(render("{{.Config.Env}}", &v), "[A=1 B=2]");
        assert_eq!(render("{{.Config.Missing}}", &v), "<no value>");
        assert_eq!(render("{{.Config}}", &v), "map[Env:[A=1 B=2] User:]");
        assert_eq!(render("no actions", &v), "no actions");
    }

    #[test]
    fn escapes_and_table() {
        let v = json!({"Repository": "a-long-repository-name", "Tag": "1"});
        assert_eq!(
            render("{{.Repository}}\\t{{.Tag}}\\n", &v),
            "a-long-repository-name\t1\n"
        );
        let t = Template::parse("table {{.Repository}}\\t{{.Tag}}", KNOWN).unwrap();
        assert!(t.table);
        let headers = json!({"Repository": "REPOSITORY", "Tag": "TAG"});
        let rows = [v, json!({"Repository": "b", "Tag": "latest"})];
        assert_eq!(
            t.render_rows(&rows, &headers).unwrap(),
            "REPOSITORY               TAG\na-long-repository-name   1\nb                        latest\n"
        );
        // Short cells take the 10-column minimum.
        let t = Template::parse("table {{.Tag}}\\t{{.Tag}}", KNOWN).unwrap();
        assert_eq!(
            t.render_rows(&[json!({"Tag": "x"})], &json!({"Tag": "TAG"}))
                .unwrap(),
            "TAG       TAG\nx         x\n"
        );
        // Not a table: `tablet` is text, and rows are only joined.
        let t = Template::parse("tablet {{.Tag}}", KNOWN).unwrap();
        assert!(!t.table);
        assert_eq!(
            t.render_rows(&[json!({"Tag": "x"})], &json!({})).unwrap(),
            "tablet x\n"
        );
    }

    #[test]
    fn functions() {
        let v =
            json!({"RepoTags": ["a:1", "b:2"], "Config": {"Env": ["X=1"], "Labels": {"k": "v"}}});
        assert_eq!(
            render("{{json .Config}}", &v),
            r#"{"Env":["X=1"],"Labels":{"k":"v"}}"#
        );
        assert_eq!(render("{{json .RepoTags}}", &v), r#"["a:1","b:2"]"#);
        assert_eq!(render("{{index .RepoTags 1}}", &v), "b:2");
        assert_eq!(render(r#"{{index .Config.Labels "k"}}"#, &v), "v");
        assert_eq!(render(r#"{{join .RepoTags ", "}}"#, &v), "a:1, b:2");
        assert_eq!(render("{{upper .Config.Labels.k}}", &v), "V");
        let t = Template::parse("{{index .RepoTags 5}}", KNOWN).unwrap();
        assert_eq!(
            t.render(&v).unwrap_err().to_string(),
            "executing --format template: index out of range: 5"
        );
    }

    #[test]
    fn unknown_fields_and_bad_actions_fail_at_parse() {
        let e = Template::parse("{{.Repo}}", KNOWN).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid --format \"{{.Repo}}\": unknown field .Repo; known fields: .Repository, \
             .Tag, .ID, .Config, .RepoTags, .Size"
        );
        assert!(matches!(
            Template::parse("{{json .Nope}}", KNOWN),
            Err(TemplateError::UnknownField { .. })
        ));
        for bad in [
            "{{.ID",
            "{{}}",
            "{{printf .ID}}",
            "{{index .ID}}",
            "{{.ID .Tag}}",
            "{{\"x}}",
        ] {
            assert!(Template::parse(bad, KNOWN).is_err(), "{bad}");
        }
    }
}
