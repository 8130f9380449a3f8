//! What a registry says in the body of a failed request: the distribution spec's
//! `{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":…}]}`, or
//! OAuth2's `{"error":"invalid_grant","error_description":"…"}` from a token endpoint. It is
//! shown after the status: `404 Not Found: manifest unknown (MANIFEST_UNKNOWN)`. With it goes
//! the response's `Retry-After` header, when to ask again (for `429` and `503`).

use std::io::Read as _;

use reqwest::blocking::Response;
use reqwest::header::RETRY_AFTER;
use serde::Deserialize;

use super::retry::RetryAfter;

/// How much of an error body is read: registries answer a few hundred bytes, a proxy's HTML
/// page may be larger, and none of it is worth more.
const BODY_LIMIT: u64 = 64 * 1024;

/// The errors a registry listed in a failed response (empty when the body had none), and its
/// `Retry-After`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ErrorBody {
    pub errors: Vec<ErrorDetail>,
    pub retry_after: Option<RetryAfter>,
}

/// One entry of `errors[]`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct ErrorDetail {
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub message: String,
}

#[derive(Deserialize)]
struct Distribution {
    #[serde(default)]
    errors: Vec<ErrorDetail>,
}

#[derive(Deserialize)]
struct OAuth {
    error: String,
    #[serde(default)]
    error_description: String,
}

impl ErrorBody {
    /// The errors in `bytes`; a body in neither form (or not JSON) gives none.
    pub fn parse(bytes: &[u8]) -> ErrorBody {
        if let Ok(d) = serde_json::from_slice::<Distribution>(bytes) {
            if !d.errors.is_empty() {
                return ErrorBody {
                    errors: d.errors,
                    retry_after: None,
                };
            }
        }
        if let Ok(o) = serde_json::from_slice::<OAuth>(bytes) {
            return ErrorBody {
                errors: vec![ErrorDetail {
                    code: o.error,
                    message: o.error_description,
                }],
                retry_after: None,
            };
        }
        ErrorBody::default()
    }

    /// Reads (the start of) a failed response's body, and its `Retry-After`.
    pub fn read(resp: Response) -> ErrorBody {
        let retry_after = resp
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(RetryAfter::parse);
        let mut bytes = Vec::new();
        // A body that cannot be read only means there is nothing more to show.
        let _ = resp.take(BODY_LIMIT).read_to_end(&mut bytes);
        ErrorBody {
            retry_after,
            ..ErrorBody::parse(&bytes)
        }
    }
}

/// `: message (CODE); message (CODE)`, or nothing when there are no errors.
impl std::fmt::Display for ErrorBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            f.write_str(if i == 0 { ": " } else { "; " })?;
            match (e.message.trim(), e.code.trim()) {
                ("", code) => write!(f, "{code}")?,
                (message, "") => write!(f, "{message}")?,
                (message, code) => write!(f, "{message} ({code})")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_forms_and_ignores_the_rest() {
        let cases: [(&[u8], &str); 6] = [
            (
                br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"x"}}]}"#,
                ": manifest unknown (MANIFEST_UNKNOWN)",
            ),
            (
                br#"{"errors":[{"code":"DENIED","message":"no"},{"code":"UNAUTHORIZED"}]}"#,
                ": no (DENIED); UNAUTHORIZED",
            ),
            (
                br#"{"error":"invalid_grant","error_description":"refresh token expired"}"#,
                ": refresh token expired (invalid_grant)",
            ),
            (b"{}", ""),
            (b"<html>bad gateway</html>", ""),
            (b"", ""),
        ];
        for (body, shown) in cases {
            assert_eq!(
                ErrorBody::parse(body).to_string(),
                shown,
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }
}
