//! Compose-style variable interpolation (`$VAR`, `${VAR}`, `${VAR:-default}`,
//! `${VAR-default}`, `${VAR:?message}`, `${VAR?message}`, `$$` for a dollar), used for compose
//! files and bake JSON files; HCL files evaluate their own templates.

/// Why a string cannot be interpolated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InterpError {
    #[error("unterminated variable reference in {0:?}")]
    Unterminated(String),
    #[error("required variable {name} is missing a value: {message}")]
    Required { name: String, message: String },
    #[error("invalid variable name in {0:?}")]
    BadName(String),
}

/// `s` with every reference replaced by what `lookup` gives for its name.
pub fn interpolate(
    s: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, InterpError> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(inner) = after.strip_prefix('{') {
            let end = closing_brace(inner).ok_or_else(|| InterpError::Unterminated(s.into()))?;
            out.push_str(&braced(&inner[..end], s, lookup)?);
            rest = &inner[end + 1..];
        } else {
            let len = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            if len == 0 {
                out.push('$');
            } else {
                out.push_str(&lookup(&after[..len]).unwrap_or_default());
            }
            rest = &after[len..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// The index of the `}` closing a reference whose `${` precedes `inner` (defaults may nest).
fn closing_brace(inner: &str) -> Option<usize> {
    let mut depth = 0usize;
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => return Some(i),
            '}' => depth -= 1,
            _ => {}
        }
    }
    None
}

fn braced(
    body: &str,
    whole: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, InterpError> {
    let len = body
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(body.len());
    let (name, op) = body.split_at(len);
    if name.is_empty() {
        return Err(InterpError::BadName(whole.into()));
    }
    let value = lookup(name);
    let (kind, arg) = match op {
        "" => return Ok(value.unwrap_or_default()),
        _ if op.starts_with(":-") => (":-", &op[2..]),
        _ if op.starts_with(":?") => (":?", &op[2..]),
        _ if op.starts_with(":+") => (":+", &op[2..]),
        _ if op.starts_with('-') => ("-", &op[1..]),
        _ if op.starts_with('?') => ("?", &op[1..]),
        _ if op.starts_with('+') => ("+", &op[1..]),
        _ => return Err(InterpError::BadName(whole.into())),
    };
    let set = value.is_some();
    let non_empty = value.as_deref().is_some_and(|v| !v.is_empty());
    let present = if kind.starts_with(':') {
        non_empty
    } else {
        set
    };
    match kind.trim_start_matches(':') {
        "-" if present => Ok(value.unwrap_or_default()),
        "-" => interpolate(arg, lookup),
        "+" if present => interpolate(arg, lookup),
        "+" => Ok(String::new()),
        _ if present => Ok(value.unwrap_or_default()),
        _ => Err(InterpError::Required {
            name: name.into(),
            message: interpolate(arg, lookup)?,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "TAG" => Some("1.2".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn the_forms_compose_knows() {
        let cases = [
            ("app:$TAG", "app:1.2"),
            ("app:${TAG}", "app:1.2"),
            ("${MISSING:-dev}", "dev"),
            ("${EMPTY:-dev}", "dev"),
            ("${EMPTY-dev}", ""),
            ("${MISSING-${TAG}}", "1.2"),
            ("${TAG:+set}", "set"),
            ("${MISSING:+set}", ""),
            ("cost $$5", "cost $5"),
            ("a$", "a$"),
            ("$MISSING.x", ".x"),
        ];
        for (input, want) in cases {
            assert_eq!(interpolate(input, &env).unwrap(), want, "{input}");
        }
    }

    #[test]
    fn errors_name_the_reference() {
        assert_eq!(
            interpolate("${TAG", &env),
            Err(InterpError::Unterminated("${TAG".into()))
        );
        assert_eq!(
            interpolate("${MISSING:?set it}", &env),
            Err(InterpError::Required {
                name: "MISSING".into(),
                message: "set it".into()
            })
        );
        assert!(matches!(
            interpolate("${}", &env),
            Err(InterpError::BadName(_))
        ));
    }
}
