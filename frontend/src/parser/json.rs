//! The JSON (exec) form of instruction arguments: `["a", "b"]`.

/// How a JSON-array attempt ended.
#[derive(Debug, PartialEq, Eq)]
pub enum JsonArgs {
    /// A valid array of strings.
    Strings(Vec<String>),
    /// Not JSON (or not an array): the caller falls back to the non-JSON rule.
    NotJson,
    /// A valid JSON array with a non-string element: a hard error.
    NotStringArray,
}

/// Tries to read `rest` (left-trimmed) as a JSON array of strings; strict RFC 8259.
pub fn parse_json(rest: &str) -> JsonArgs {
    let rest = rest.trim_start();
    if !rest.starts_with('[') {
        return JsonArgs::NotJson;
    }
    let Ok(values) = serde_json::from_str::<Vec<serde_json::Value>>(rest) else {
        return JsonArgs::NotJson;
    };
    let mut out = Vec::with_capacity(values.len());
    for v in values {
        match v {
            serde_json::Value::String(s) => out.push(s),
            _ => return JsonArgs::NotStringArray,
        }
    }
    JsonArgs::Strings(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_forms() {
        assert_eq!(parse_json("[]"), JsonArgs::Strings(vec![]));
        assert_eq!(
            parse_json("\t[\t\"a\",\t\"b\"\t]\t"),
            JsonArgs::Strings(vec!["a".into(), "b".into()])
        );
        assert_eq!(parse_json("['a']"), JsonArgs::NotJson);
        assert_eq!(parse_json("[\"a\",]"), JsonArgs::NotJson);
        assert_eq!(parse_json("[\"a\"] x"), JsonArgs::NotJson);
        assert_eq!(parse_json("[\"a\",1]"), JsonArgs::NotStringArray);
        assert_eq!(parse_json("a"), JsonArgs::NotJson);
    }
}
