//! Instruction flags (`--from=build`, `--link`), checked against the flags each instruction
//! accepts, as BuildKit's `BFlags` does.

use super::error::LowerError;

/// The flags of one instruction. Invariant: every name is one the instruction accepts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Flags {
    /// `(name, value)` in order; a bare `--link` has value `None`.
    entries: Vec<(String, Option<String>)>,
}

/// The flags `keyword` accepts.
fn allowed(keyword: &str) -> &'static [&'static str] {
    match keyword {
        "from" => &["platform"],
        "copy" => &["from", "chown", "chmod", "link", "parents", "exclude"],
        "add" => &[
            "chown",
            "chmod",
            "link",
            "checksum",
            "keep-git-dir",
            "unpack",
            "exclude",
        ],
        "run" => &["mount", "network", "security", "device"],
        "healthcheck" => &[
            "interval",
            "timeout",
            "start-period",
            "start-interval",
            "retries",
        ],
        _ => &[],
    }
}

impl Flags {
    /// Parses `--name[=value]` strings (as the parser keeps them) for `keyword`.
    pub fn parse(keyword: &str, raw: &[String]) -> Result<Self, LowerError> {
        let ok = allowed(keyword);
        let mut entries = Vec::with_capacity(raw.len());
        for f in raw {
            let body = f.strip_prefix("--").unwrap_or(f);
            let (name, value) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (body, None),
            };
            if !ok.contains(&name) {
                return Err(LowerError::UnknownFlag {
                    flag: name.to_string(),
                    keyword: keyword.to_uppercase(),
                });
            }
            entries.push((name.to_string(), value));
        }
        Ok(Flags { entries })
    }

    /// The value of the last `--name=value`; an error if given without a value.
    pub fn value(&self, name: &str) -> Result<Option<&str>, LowerError> {
        match self.entries.iter().rev().find(|(n, _)| n == name) {
            None => Ok(None),
            Some((_, Some(v))) => Ok(Some(v.as_str())),
            Some((n, None)) => Err(LowerError::FlagValue { flag: n.clone() }),
        }
    }

    /// Whether the flag was given at all.
    pub fn has(&self, name: &str) -> bool {
        self.entries.iter().any(|(n, _)| n == name)
    }

    /// A boolean flag: `--link`, `--link=true`, `--link=false`.
    pub fn bool(&self, name: &str) -> bool {
        match self.entries.iter().rev().find(|(n, _)| n == name) {
            None => false,
            Some((_, None)) => true,
            Some((_, Some(v))) => !matches!(v.as_str(), "false" | "0"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects_unknown() {
        let f = Flags::parse("copy", &["--from=build".into(), "--link".into()]).unwrap();
        assert_eq!(f.value("from"), Ok(Some("build")));
        assert!(f.bool("link"));
        assert!(Flags::parse("copy", &["--network=host".into()]).is_err());
        let f = Flags::parse("copy", &["--from".into()]).unwrap();
        assert!(f.value("from").is_err());
    }
}
