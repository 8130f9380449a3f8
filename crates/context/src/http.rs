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

impl crate::BuildContext {
    /// The context a named URL (`--build-context NAME=https://…`) gives, from its downloaded
    /// `body`: a context archive is unpacked (its own `.dockerignore` applies, no Dockerfile
    /// needed); anything else is one file named `context` at the root, as BuildKit names a
    /// URL context's file. Entries get the archive's owners when `privileges` allow.
    pub fn from_url_body(
        body: Vec<u8>,
        privileges: &rbuild_types::Privileges,
    ) -> Result<crate::BuildContext, ContextError> {
        if rbuild_archive::detect_archive(&body).is_some() {
            return crate::BuildContext::from_tar(std::io::Cursor::new(body), None, privileges);
        }
        let dir = tempfile::Builder::new()
            .prefix("rbuild-url-")
            .tempdir()
            .map_err(ContextError::io(std::env::temp_dir()))?;
        let file = dir.path().join("context");
        std::fs::write(&file, &body).map_err(ContextError::io(&file))?;
        let ctx = crate::BuildContext::from_dir(dir.path(), None)?;
        Ok(ctx.keeping(std::sync::Arc::new(dir)))
    }
}
