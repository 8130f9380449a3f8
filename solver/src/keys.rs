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
//! | `Exec` | the platform it runs as, argv, env in order, cwd, user, network mode, each `--mount` (type, then its fields: target, input index, path, ids, sharing, `from`, subdir, read-only, modes and owners, `required`), security mode, and when given the build's `--add-host` entries, `--ulimit`s and `--shm-size` (BuildKit's `Meta.extraHosts`, `Meta.ulimit`; nothing is written without them, so other RUNs keep their keys); every input's key (root, bind and cache-`from` sources) | mtimes, the host, wall-clock time, **cache-mount contents**, **secret values** and **SSH agents** (resolved after keying, in `mounts.rs`), **proxy build args** (`proxy_env`, BuildKit's `ProxyEnv`) |
//! | `Http` | url, filename, checksum; without `--checksum` also the **body's digest and `Last-Modified`** found by downloading (a conditional request when the URL was fetched before) | the URL's ETag; with `--checksum`, the body and `Last-Modified` (nothing is downloaded to key it, as in BuildKit) |
//! | `Git` | remote, reference, subdir, keep_git_dir, checksum, and the **commit** the reference resolved to (`git ls-remote`) | the time of the checkout |
//! | `File` | each action (copy: input index, src, dest, chown, chmod, allow-empty-wildcard, unpack, excludes, parents; mkdir: path, mode, parents, chown; mkfile: path, data, mode, chown), the key of every non-context input, and for each copy from a context the digest of the **selected content** (paths relative to the selected root, type, mode, uid/gid, link target, content) | mtimes of context files, excluded (`.dockerignore`, `--exclude`) files, files the copy does not select |
//!
//! Op definitions are written field by field by the [`encode`] module, not through serde: a
//! renamed field or a new serde attribute changes no key, and a field added to the IR does not
//! compile until [`encode`] says whether it belongs in the key.
//!
//! `ignore_cache` does not change a key: the vertex runs anyway and its fresh result replaces the
//! recorded one.

mod encode;

use rbuild_graph::Op;
use rbuild_types::{Digest, Hasher};

use encode::Encode;

/// Bumped whenever the key function changes meaning (v3: file ops resolve image paths through
/// the image's symlinks, and op definitions are encoded field by field; v4: a RUN's platform).
pub const KEY_VERSION: &str = "rbuild-cache-key-v4";

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

/// The *shape* of a file op: its key without the contents its copies select (what
/// `rbuild_cache::CopyDonors` files an earlier run's snapshot under). Two runs of the same COPY
/// onto the same parent share it however their selected files differ. Not a cache key: nothing
/// is reused on its word alone.
pub fn copy_shape(op: &Op, input_keys: Vec<Option<Digest>>) -> Digest {
    let key = vertex_key(
        op,
        &KeyInputs {
            input_keys,
            manifest: None,
            selections: Vec::new(),
        },
    );
    let mut h = Hasher::new();
    h.field(b"rbuild-copy-shape-v1");
    h.field(key.as_bytes());
    h.finish()
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
        Op::Exec(exec) => exec.encode(&mut h),
        Op::Http(http) => {
            http.encode(&mut h);
            if let Some(d) = inputs.manifest {
                h.field(d.as_bytes());
            }
        }
        Op::Git(git) => {
            git.encode(&mut h);
            if let Some(d) = inputs.manifest {
                h.field(d.as_bytes());
            }
        }
        Op::File(file) => {
            file.encode(&mut h);
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
