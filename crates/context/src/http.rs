//! URL contexts: an http(s) URL is downloaded through the HTTP half of the `RemoteSource`
//! port ([`HttpSource`], implemented by `rbuild-oci`) and its bytes handed back; the caller
//! decides by magic bytes whether they are a context archive
//! ([`BuildContext::from_tar`](crate::BuildContext::from_tar)) or a Dockerfile (empty context),
//! as `docker build URL` does.

use std::io::Read;

use rbuild_ports::{HttpFetch, HttpSource};

use crate::error::ContextError;

/// The largest body accepted (a context archive, compressed), so a wrong URL cannot fill memory.
pub const MAX_URL_CONTEXT_BYTES: u64 = 4 << 30;

/// Downloads `url` through `http` (redirects followed); a status that is not a success is an
/// error naming it, and so is a body cut short or larger than [`MAX_URL_CONTEXT_BYTES`].
pub fn fetch_url(http: &dyn HttpSource, url: &str) -> Result<Vec<u8>, ContextError> {
    let err = |detail: String| ContextError::Http {
        url: url.to_string(),
        detail,
    };
    let resp = match http.http_get(url, None).map_err(ContextError::Download)? {
        HttpFetch::Body(resp) => resp,
        HttpFetch::NotModified => {
            return Err(err(
                "the server answered 304 Not Modified to an unconditional request".to_string(),
            ))
        }
    };
    let mut body = Vec::new();
    resp.body
        .take(MAX_URL_CONTEXT_BYTES + 1)
        .read_to_end(&mut body)
        .map_err(|e| err(format!("reading the body: {e}")))?;
    if body.len() as u64 > MAX_URL_CONTEXT_BYTES {
        return Err(err(format!(
            "the body is larger than {MAX_URL_CONTEXT_BYTES} bytes"
        )));
    }
    if let Some(n) = resp.content_length {
        if n != body.len() as u64 {
            return Err(err(format!(
                "the body is truncated: {} of {n} bytes",
                body.len()
            )));
        }
    }
    Ok(body)
}
