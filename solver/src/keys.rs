//! Cache keys: one pure function of a vertex's op definition and its inputs.
//!
//! DESIGN invariant 4. Every key is SHA-256 over length-prefixed fields, starting with a
//! version tag so that a deliberate change to this function invalidates old entries instead of
//! colliding with them. `tests/keys_golden.rs` pins the keys of representative graphs: a change
//! here shows up as a diff there, never by accident.
//!
//! | op | inputs of the key | deliberately not in the key |
//! |---|---|---|
//! | `Scratch` | the constant `scratch` | – |
//! | `Image` | the platform-specific **manifest digest** the reference resolved to (once per build; `--pull` re-resolves) | the tag text, the registry it came from |
//! | `Context` | its name | its contents: a COPY keys on what it *selects*, not on the whole context |
//! | `Exec` | the op as JSON (argv, env in order, cwd, user, network mode, `--mount` specs: type, target, ids, sharing, modes, `required`; `--security` when insecure), every input's key (root, bind and cache-`from` sources) | mtimes, the host, wall-clock time, **cache-mount contents**, **secret values** and **SSH agents** (resolved after keying, in `mounts.rs`), **proxy build args** (`proxy_env`, BuildKit's `ProxyEnv`: never serialised) |
//! | `Http` | the op as JSON (url, filename, checksum); without `--checksum` also the **body's digest and `Last-Modified`** found by downloading (a conditional request when the URL was fetched before) | the URL's ETag; with `--checksum`, the body and `Last-Modified` (nothing is downloaded to key it, as in BuildKit) |
//! | `Git` | the op as JSON (remote, reference, subdir, keep_git_dir) and the **commit** the reference resolved to (`git ls-remote`) | the time of the checkout |
//! | `File` | the actions as JSON (src, dest, chown, chmod, data of heredoc files), the key of every non-context input, and for each copy from a context the digest of the **selected content** (paths relative to the selected root, type, mode, uid/gid, link target, content) | mtimes of context files, excluded (`.dockerignore`, `--exclude`) files, files the copy does not select |
//!
//! `ignore_cache` does not change a key: the vertex runs anyway and its fresh result replaces the
//! recorded one.

use rbuild_graph::Op;
use rbuild_types::{Digest, Hasher};

/// Bumped whenever the key function changes meaning.
pub const KEY_VERSION: &str = "rbuild-cache-key-v3";

/// What the key of one vertex is computed from, beyond its op.
#[derive(Debug, Default)]
pub struct KeyInputs<'a> {
    /// Keys of the vertex's inputs, in input order (`None` for a context input).
    pub input_keys: Vec<Option<Digest>>,
    /// For an `Image` op: the manifest digest it resolved to. For an `Http` or `Git` op:
    /// the digest of what its source resolved to (body digest and `Last-Modified`; commit),
    /// `None` for an http source keyed on its `--checksum`.
    pub manifest: Option<&'a Digest>,
    /// For a `File` op: per action, the selected-content digest of a copy from a context.
    pub selections: Vec<Option<Digest>>,
}

/// Serialises `value` as canonical JSON for hashing (struct fields in declaration order).
fn json<T: serde::Serialize>(value: &T) -> Vec<u8> {
    // Serialising our own plain data types cannot fail.
    serde_json::to_vec(value).unwrap_or_default()
}

/// The cache key of a vertex.
pub fn vertex_key(op: &Op, inputs: &KeyInputs<'_>) -> Digest {
    let mut h = Hasher::new();
    h.field(KEY_VERSION.as_bytes());
    h.field(op.kind().as_bytes());
    match op {
        Op::Scratch => {}
        Op::Image(_) => {
            if let Some(m) = inputs.manifest {
                h.field(m.as_bytes());
            }
        }
        Op::Context { name } => h.field(name.as_bytes()),
        Op::Exec(exec) => h.field(&json(exec)),
        Op::Http(http) => {
            h.field(&json(http));
            if let Some(d) = inputs.manifest {
                h.field(d.as_bytes());
            }
        }
        Op::Git(git) => {
            h.field(&json(git));
            if let Some(d) = inputs.manifest {
                h.field(d.as_bytes());
            }
        }
        Op::File(file) => {
            h.field(&json(file));
            for sel in &inputs.selections {
                match sel {
                    Some(d) => h.field(d.as_bytes()),
                    None => h.field(b"-"),
                }
            }
        }
    }
    for key in &inputs.input_keys {
        match key {
            Some(d) => h.field(d.as_bytes()),
            None => h.field(b"context"),
        }
    }
    h.finish()
}
