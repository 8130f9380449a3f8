//! URL contexts: an http(s) URL is downloaded (reqwest, rustls) and its bytes handed back; the
//! caller decides by magic bytes whether they are a context archive
//! ([`BuildContext::from_tar`](crate::BuildContext::from_tar)) or a Dockerfile (empty context),
//! as `docker build URL` does.

use std::io::Read;
use std::time::Duration;

use crate::error::ContextError;

/// The largest body accepted (a context archive, compressed), so a wrong URL cannot fill memory.
pub const MAX_URL_CONTEXT_BYTES: u64 = 4 << 30;

/// Downloads `url` (redirects followed); a non-success status is an error naming it.
pub fn fetch_url(url: &str) -> Result<Vec<u8>, ContextError> {
    let err = |detail: String| ContextError::Http {
        url: url.to_string(),
        detail,
    };
    let client = reqwest::blocking::Client::builder()
        .connect_timeout(Duration::from_secs(30))
        .timeout(None)
        .user_agent(concat!("rbuild/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| err(e.to_string()))?;
    let resp = client.get(url).send().map_err(|e| err(e.to_string()))?;
    let status = resp.status();
    if !status.is_success() {
        return Err(err(format!("server answered {status}")));
    }
    let expected = resp.content_length();
    let mut body = Vec::new();
    resp.take(MAX_URL_CONTEXT_BYTES + 1)
        .read_to_end(&mut body)
        .map_err(|e| err(format!("reading the body: {e}")))?;
    if body.len() as u64 > MAX_URL_CONTEXT_BYTES {
        return Err(err(format!(
            "the body is larger than {MAX_URL_CONTEXT_BYTES} bytes"
        )));
    }
    if let Some(n) = expected {
        if n != body.len() as u64 {
            return Err(err(format!(
                "the body is truncated: {} of {n} bytes",
                body.len()
            )));
        }
    }
    Ok(body)
}
