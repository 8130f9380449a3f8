//! `--call` and `--check` (buildx's `ParseCallFunc`): what a build invocation evaluates —
//! `build` (the default), `check` (alias `lint`: the build checks, nothing built), `outline`
//! (the build arguments, secrets and SSH the target uses) or `targets` (the stages) — with
//! `format=json` and `ignorestatus=true` options: `--call=check,format=json`.

/// What to evaluate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallName {
    Build,
    Check,
    Outline,
    Targets,
}

/// How a result is printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallFormat {
    Text,
    Json,
}

/// A parsed `--call`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Call {
    pub name: CallName,
    pub format: CallFormat,
    /// `ignorestatus=true`: exit 0 even when checks found violations.
    pub ignore_status: bool,
}

impl Call {
    /// A plain build.
    pub const BUILD: Call = Call {
        name: CallName::Build,
        format: CallFormat::Text,
        ignore_status: false,
    };
}

/// Why a `--call` value is wrong.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    #[error("invalid --call {0:?}: expected build, check, outline or targets")]
    Name(String),
    #[error("invalid print value: {0}")]
    TwoNames(String),
    #[error("invalid print field: {0}")]
    Field(String),
    #[error("invalid --call format {0:?}: expected json or text")]
    Format(String),
    #[error("invalid ignorestatus print value: {0}")]
    IgnoreStatus(String),
    #[error("--check cannot be combined with --call={0}")]
    Conflict(String),
}

/// Parses `--call` (and `--check`, which is `--call=check`).
pub fn parse(call: Option<&str>, check: bool) -> Result<Call, CallError> {
    let Some(text) = call else {
        return Ok(if check {
            Call {
                name: CallName::Check,
                ..Call::BUILD
            }
        } else {
            Call::BUILD
        });
    };
    let mut name: Option<&str> = None;
    let mut out = Call::BUILD;
    for field in text.split(',') {
        match field.split_once('=') {
            Some(("format", v)) => {
                out.format = match v {
                    "json" => CallFormat::Json,
                    "" | "text" => CallFormat::Text,
                    other => return Err(CallError::Format(other.to_string())),
                }
            }
            Some(("ignorestatus", v)) => {
                out.ignore_status = match v {
                    "1" | "t" | "T" | "true" | "TRUE" | "True" => true,
                    "0" | "f" | "F" | "false" | "FALSE" | "False" => false,
                    other => return Err(CallError::IgnoreStatus(other.to_string())),
                }
            }
            Some(_) => return Err(CallError::Field(field.to_string())),
            None if name.is_some() => return Err(CallError::TwoNames(text.to_string())),
            None => name = Some(field),
        }
    }
    out.name = match name.unwrap_or("build") {
        "build" => CallName::Build,
        "check" | "lint" => CallName::Check,
        "outline" => CallName::Outline,
        "targets" => CallName::Targets,
        other => return Err(CallError::Name(other.to_string())),
    };
    if check && out.name != CallName::Check {
        return Err(CallError::Conflict(text.to_string()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_and_options() {
        assert_eq!(parse(None, false), Ok(Call::BUILD));
        assert_eq!(parse(None, true).unwrap().name, CallName::Check);
        let c = parse(Some("check,format=json"), false).unwrap();
        assert_eq!((c.name, c.format), (CallName::Check, CallFormat::Json));
        assert_eq!(parse(Some("lint"), false).unwrap().name, CallName::Check);
        assert_eq!(
            parse(Some("outline"), false).unwrap().name,
            CallName::Outline
        );
        let c = parse(Some("targets,ignorestatus=true"), false).unwrap();
        assert!(c.ignore_status);
        assert_eq!(
            parse(Some("check,outline"), false),
            Err(CallError::TwoNames("check,outline".into()))
        );
        assert_eq!(
            parse(Some("nope"), false),
            Err(CallError::Name("nope".into()))
        );
        assert_eq!(
            parse(Some("check,x=1"), false),
            Err(CallError::Field("x=1".into()))
        );
        assert!(parse(Some("outline"), true).is_err());
    }
}
