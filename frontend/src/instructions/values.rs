//! Typed values of single-valued flags: `--chmod` (octal or symbolic), `--checksum`,
//! `--network`, `--security`. Each parser takes the value as it is after expansion (for
//! the flags Docker expands) and returns a [`ValueError`] naming what is wrong.

use super::error::ValueError;

/// A `--chmod` mode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Chmod {
    /// `--chmod=755`: at most `0o7777`.
    Octal(u32),
    /// `--chmod=u=rwx,go=rx` / `+x`: clauses `[ugoa]*([-+=][rwxXst]*)+` joined by `,`
    /// (the forms BuildKit's fsutil accepts); kept as written.
    Symbolic(String),
}

impl Chmod {
    /// Parses a chmod value: all digits → octal (BuildKit: `ParseUint(v, 8, 32)` and
    /// `<= 07777`), otherwise the symbolic grammar.
    pub fn parse(value: &str) -> Result<Chmod, ValueError> {
        let bad = || ValueError::Chmod {
            value: value.to_string(),
        };
        if !value.is_empty() && value.chars().all(|c| c.is_ascii_digit()) {
            return match u32::from_str_radix(value, 8) {
                Ok(m) if m <= 0o7777 => Ok(Chmod::Octal(m)),
                _ => Err(bad()),
            };
        }
        if value.is_empty() {
            return Err(bad());
        }
        for clause in value.split(',') {
            let ops = clause.trim_start_matches(['u', 'g', 'o', 'a']);
            if ops.is_empty() {
                return Err(bad());
            }
            let mut chars = ops.chars().peekable();
            while let Some(op) = chars.next() {
                if !matches!(op, '+' | '-' | '=') {
                    return Err(bad());
                }
                while let Some(&p) = chars.peek() {
                    if matches!(p, '+' | '-' | '=') {
                        break;
                    }
                    if !matches!(p, 'r' | 'w' | 'x' | 'X' | 's' | 't') {
                        return Err(bad());
                    }
                    chars.next();
                }
            }
        }
        Ok(Chmod::Symbolic(value.to_string()))
    }
}

/// `--checksum=<algo>:<hex>` as the OCI digest package accepts it: sha256 (64), sha384
/// (96) or sha512 (128) lower-case hex digits.
pub fn parse_checksum(value: &str) -> Result<String, ValueError> {
    let bad = |reason: &'static str| ValueError::Checksum {
        value: value.to_string(),
        reason,
    };
    let Some((algo, hex)) = value.split_once(':') else {
        return Err(bad("invalid checksum digest format"));
    };
    let len = match algo {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => return Err(bad("unsupported digest algorithm")),
    };
    if hex.len() != len || !hex.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')) {
        return Err(bad("invalid checksum digest length or characters"));
    }
    Ok(value.to_string())
}

/// `ADD --checksum` of a git source: hex digits (any case, any length) that the resolved
/// commit id must start with, as BuildKit's git source checks them.
pub fn parse_git_checksum(value: &str) -> Result<String, ValueError> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ValueError::Checksum {
            value: value.to_string(),
            reason: "for Git URL, expected hex commit hash",
        });
    }
    Ok(value.to_string())
}

/// `RUN --network`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Network {
    Default,
    None,
    Host,
}

impl Network {
    /// `default|none|host` (BuildKit checks the value as written; it is not expanded).
    pub fn parse(value: &str) -> Result<Network, ValueError> {
        match value {
            "default" => Ok(Network::Default),
            "none" => Ok(Network::None),
            "host" => Ok(Network::Host),
            _ => Err(ValueError::Network {
                value: value.to_string(),
            }),
        }
    }
}

/// `RUN --security`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Security {
    Sandbox,
    Insecure,
}

impl Security {
    /// `sandbox|insecure` (not expanded).
    pub fn parse(value: &str) -> Result<Security, ValueError> {
        match value {
            "sandbox" => Ok(Security::Sandbox),
            "insecure" => Ok(Security::Insecure),
            _ => Err(ValueError::Security {
                value: value.to_string(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chmod_forms() {
        assert_eq!(Chmod::parse("755"), Ok(Chmod::Octal(0o755)));
        assert_eq!(Chmod::parse("0644"), Ok(Chmod::Octal(0o644)));
        assert_eq!(Chmod::parse("7777"), Ok(Chmod::Octal(0o7777)));
        for ok in ["+x", "u=rwx,go=rx", "a-w", "u+s,g=,o-rwx", "ug+rX-w", "=r"] {
            assert_eq!(Chmod::parse(ok), Ok(Chmod::Symbolic(ok.into())), "{ok}");
        }
        for bad in [
            "", "8", "17777", "u", "u+q", "x+r", "u+x,", ",", "0x1ff", "-",
        ] {
            let r = Chmod::parse(bad);
            if bad == "-" {
                // `-` alone is a valid (empty) removal clause.
                assert!(r.is_ok());
            } else {
                assert!(r.is_err(), "{bad}");
            }
        }
    }

    #[test]
    fn checksums() {
        let good = format!("sha256:{}", "a".repeat(64));
        assert_eq!(parse_checksum(&good), Ok(good.clone()));
        assert!(parse_checksum("sha256:abc").is_err());
        assert!(parse_checksum(&format!("md5:{}", "a".repeat(32))).is_err());
        assert!(parse_checksum(&format!("sha256:{}", "A".repeat(64))).is_err());
        assert!(parse_checksum("nocolon").is_err());
        assert_eq!(parse_git_checksum("0aB9"), Ok("0aB9".to_string()));
        assert!(parse_git_checksum("foobar").is_err());
        assert!(parse_git_checksum("").is_err());
        assert!(parse_git_checksum(&good).is_err());
    }

    #[test]
    fn network_and_security() {
        assert_eq!(Network::parse("none"), Ok(Network::None));
        assert!(Network::parse("bridge").is_err());
        assert!(Network::parse("$NET").is_err());
        assert_eq!(Security::parse("insecure"), Ok(Security::Insecure));
        assert!(Security::parse("relaxed").is_err());
    }
}
