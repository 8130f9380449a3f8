//! `ADD <url>`: downloads through the HTTP half of the `RemoteSource` port
//! ([`HttpSource`]) into the store's blobs.
//!
//! Per URL, a small JSON file under `<store>/remote-http/` remembers the last response's
//! `ETag`, `Last-Modified` and the blob holding its body, so that the next build sends a
//! conditional request (`If-None-Match`, `If-Modified-Since`) and a `304 Not Modified` reuses
//! the blob without downloading it again. The file is replaced by rename (crash-safe: a torn
//! write is never seen) and is only a hint: a missing or unreadable one, or one whose blob is
//! gone, just means an unconditional request.
//!
//! The layer holds `/<filename>`, mode `0600`, mtime from `Last-Modified` (the epoch without
//! one), as BuildKit's http source writes it.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::UNIX_EPOCH;

use rbuild_cache::Store;
use rbuild_graph::HttpOp;
use rbuild_ports::{HttpBody, HttpFetch, HttpSource, Validators};
use rbuild_types::Digest;
use serde::{Deserialize, Serialize};
use sha2::Digest as _;

use super::error::{io_err, RemoteError};
use super::Resolved;
use crate::fileop::set_times;

/// Mode of the downloaded file, as BuildKit's http source (`--chmod` applies in the copy).
pub(crate) const FILE_MODE: u32 = 0o600;

/// What the last response for a URL said (the conditional-request state).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct UrlMeta {
    url: String,
    etag: Option<String>,
    last_modified: Option<String>,
    blob: Digest,
}

/// Downloads `url` unless the store holds its last body and the server says it has not
/// changed; returns the body's blob and `Last-Modified`.
pub(super) fn resolve(
    store: &Store,
    http: &dyn HttpSource,
    url: &str,
) -> Result<Resolved, RemoteError> {
    let meta_path = meta_path(store, url);
    let known = read_meta(&meta_path).filter(|m| m.url == url && store.blobs().has(&m.blob));
    let validators = known.as_ref().map(|m| Validators {
        etag: m.etag.clone(),
        last_modified: m.last_modified.clone(),
    });
    let resp = match (http.http_get(url, validators.as_ref())?, known) {
        (HttpFetch::Body(resp), _) => resp,
        (HttpFetch::NotModified, Some(m)) => {
            return Ok(Resolved::Http {
                blob: m.blob,
                last_modified: m.last_modified,
            })
        }
        (HttpFetch::NotModified, None) => return Err(not_modified_unasked(url)),
    };
    let (blob, last_modified) = download_and_remember(store, url, &meta_path, resp, None)?;
    Ok(Resolved::Http {
        blob,
        last_modified,
    })
}

/// Writes `/<filename>` into `upper`: from the blob keying found, or (with `--checksum`)
/// downloaded now and verified first.
pub(super) fn materialize(
    store: &Store,
    http: &dyn HttpSource,
    op: &HttpOp,
    resolved: &Resolved,
    upper: &Path,
) -> Result<(), RemoteError> {
    let (blob, last_modified) = match resolved {
        Resolved::Http {
            blob,
            last_modified,
        } => (*blob, last_modified.clone()),
        _ => match &op.checksum {
            Some(sum) => fetch_checked(store, http, &op.url, sum)?,
            None => {
                return Err(RemoteError::Unresolved {
                    op: "http".to_string(),
                })
            }
        },
    };
    let target = upper.join(&op.filename);
    let src = store.blobs().path(&blob);
    fs::copy(&src, &target).map_err(io_err("copy downloaded blob to", &target))?;
    fs::set_permissions(
        &target,
        std::os::unix::fs::PermissionsExt::from_mode(FILE_MODE),
    )
    .map_err(io_err("set the mode of", &target))?;
    let secs = last_modified
        .as_deref()
        .and_then(|lm| httpdate::parse_http_date(lm).ok())
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs() as i64);
    Ok(set_times(&target, secs, 0)?)
}

/// The body of `url`, which must have digest `checksum` (`sha256:…`, `sha384:…`,
/// `sha512:…`): reused from the store when a sha256 names a blob it holds, else downloaded
/// and checked before it is published.
fn fetch_checked(
    store: &Store,
    http: &dyn HttpSource,
    url: &str,
    checksum: &str,
) -> Result<(Digest, Option<String>), RemoteError> {
    let bad_algo = || RemoteError::ChecksumAlgorithm {
        url: url.to_string(),
        checksum: checksum.to_string(),
    };
    let (algo, _) = checksum.split_once(':').ok_or_else(bad_algo)?;
    let meta_path = meta_path(store, url);
    if algo == "sha256" {
        if let Ok(d) = checksum.parse::<Digest>() {
            if store.blobs().has(&d) {
                let lm = read_meta(&meta_path)
                    .filter(|m| m.url == url && m.blob == d)
                    .and_then(|m| m.last_modified);
                return Ok((d, lm));
            }
        }
    }
    let mut hasher = match algo {
        "sha256" => Sum::Sha256(sha2::Sha256::new()),
        "sha384" => Sum::Sha384(sha2::Sha384::new()),
        "sha512" => Sum::Sha512(sha2::Sha512::new()),
        _ => return Err(bad_algo()),
    };
    let resp = match http.http_get(url, None)? {
        HttpFetch::Body(resp) => resp,
        HttpFetch::NotModified => return Err(not_modified_unasked(url)),
    };
    download_and_remember(store, url, &meta_path, resp, Some((&mut hasher, checksum)))
}

/// Downloads a response's body into a blob ([`download`]) and saves its validators as the
/// URL's conditional-request state; returns the blob and `Last-Modified`.
fn download_and_remember(
    store: &Store,
    url: &str,
    meta_path: &Path,
    resp: HttpBody,
    expected: Option<(&mut Sum, &str)>,
) -> Result<(Digest, Option<String>), RemoteError> {
    let (etag, last_modified) = (resp.etag.clone(), resp.last_modified.clone());
    let blob = download(store, url, resp, expected)?;
    write_meta(
        meta_path,
        &UrlMeta {
            url: url.to_string(),
            etag,
            last_modified: last_modified.clone(),
            blob,
        },
    );
    Ok((blob, last_modified))
}

/// A running digest of one of the algorithms `--checksum` takes.
enum Sum {
    Sha256(sha2::Sha256),
    Sha384(sha2::Sha384),
    Sha512(sha2::Sha512),
}

impl Sum {
    fn update(&mut self, bytes: &[u8]) {
        match self {
            Sum::Sha256(h) => h.update(bytes),
            Sum::Sha384(h) => h.update(bytes),
            Sum::Sha512(h) => h.update(bytes),
        }
    }

    /// `algo:hex`, as `--checksum` is written.
    fn finish(&mut self) -> String {
        let (algo, bytes) = match self {
            Sum::Sha256(h) => ("sha256", h.finalize_reset().to_vec()),
            Sum::Sha384(h) => ("sha384", h.finalize_reset().to_vec()),
            Sum::Sha512(h) => ("sha512", h.finalize_reset().to_vec()),
        };
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        format!("{algo}:{hex}")
    }
}

/// Streams the body into a new blob (checking `expected` first, when given) and publishes it.
fn download(
    store: &Store,
    url: &str,
    mut resp: HttpBody,
    mut expected: Option<(&mut Sum, &str)>,
) -> Result<Digest, RemoteError> {
    let err = |detail: String| RemoteError::Http {
        url: url.to_string(),
        detail,
    };
    let length = resp.content_length;
    let mut writer = store.blobs().writer()?;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = resp
            .body
            .read(&mut buf)
            .map_err(|e| err(format!("reading the body: {e}")))?;
        if n == 0 {
            break;
        }
        writer
            .write_all(&buf[..n])
            .map_err(|e| err(format!("storing the body: {e}")))?;
        if let Some((sum, _)) = expected.as_mut() {
            sum.update(&buf[..n]);
        }
    }
    if let Some(n) = length {
        if n != writer.size() {
            return Err(err(format!(
                "the body is truncated: {} of {n} bytes",
                writer.size()
            )));
        }
    }
    if let Some((sum, want)) = expected {
        let actual = sum.finish();
        if actual != want {
            // The writer is dropped unpublished: a wrong body never enters the store.
            return Err(RemoteError::Checksum {
                url: url.to_string(),
                expected: want.to_string(),
                actual,
            });
        }
    }
    Ok(writer.commit(None)?.0)
}

/// A `304 Not Modified` to a request without validators (the port answers it only to one
/// with them).
fn not_modified_unasked(url: &str) -> RemoteError {
    RemoteError::Http {
        url: url.to_string(),
        detail: "the server answered 304 Not Modified to an unconditional request".to_string(),
    }
}

/// Where the conditional-request state of `url` lives.
fn meta_path(store: &Store, url: &str) -> PathBuf {
    store
        .root()
        .join("remote-http")
        .join(format!("{}.json", Digest::of(url.as_bytes()).hex()))
}

fn read_meta(path: &Path) -> Option<UrlMeta> {
    serde_json::from_slice(&fs::read(path).ok()?).ok()
}

/// Best effort: the state is only an optimisation, so failing to save it fails nothing.
fn write_meta(path: &Path, meta: &UrlMeta) {
    let Some(dir) = path.parent() else { return };
    if fs::create_dir_all(dir).is_err() {
        return;
    }
    // Unique per process and call: two downloads of one URL never share a staging file.
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let tmp = dir.join(format!(
        ".{}.{}.{}.tmp",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        path.file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
    ));
    let written = serde_json::to_vec(meta)
        .ok()
        .and_then(|bytes| fs::write(&tmp, bytes).ok())
        .and_then(|()| fs::rename(&tmp, path).ok());
    if written.is_none() {
        let _ = fs::remove_file(&tmp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksums_are_written_like_the_flag() {
        let mut s = Sum::Sha256(sha2::Sha256::new());
        s.update(b"abc");
        assert_eq!(
            s.finish(),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let mut s = Sum::Sha512(sha2::Sha512::new());
        s.update(b"");
        assert!(s.finish().starts_with("sha512:cf83e1357eefb8bd"));
    }

    #[test]
    fn meta_round_trips_and_tolerates_garbage() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sub").join("m.json");
        let meta = UrlMeta {
            url: "http://h/f".into(),
            etag: Some("\"x\"".into()),
            last_modified: None,
            blob: Digest::of(b"body"),
        };
        write_meta(&path, &meta);
        assert_eq!(read_meta(&path), Some(meta));
        fs::write(&path, b"{not json").expect("write");
        assert_eq!(read_meta(&path), None);
    }
}
