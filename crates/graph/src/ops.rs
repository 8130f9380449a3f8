//! The operations a vertex can perform.
//!
//! Their serde form is for goldens, `--explain-cache` records and debugging; cache keys do not
//! use it (the solver's `keys::encode` writes each field on purpose).

use rbuild_types::{ByteString, ImageRef, Platform};
use serde::{Deserialize, Serialize};

use crate::exec_meta::ExecMeta;
use crate::proxy::ProxyEnv;

/// What a vertex does. Inputs by op:
/// - `Scratch`, `Image`, `Context`, `Http`, `Git`: none.
/// - `Exec`: `inputs[0]` is the root filesystem.
/// - `File`: `inputs[0]` is the filesystem the actions write into; `CopyAction::source` indexes
///   into the vertex's inputs (a `Context` vertex or any filesystem-yielding vertex).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Op {
    /// The empty filesystem.
    Scratch,
    /// A base image from the local store or a registry.
    Image(ImageOp),
    /// A build context, by name (`context` is the main one; others come from `--build-context`).
    Context { name: String },
    /// A command run in the sandbox (RUN).
    Exec(ExecOp),
    /// Filesystem edits done in-process (COPY, ADD, WORKDIR's mkdir, heredoc files).
    File(FileOp),
    /// A file downloaded over http(s) (`ADD <url>`): a filesystem holding just that file.
    Http(HttpOp),
    /// A git repository checked out (`ADD <git url>`): a filesystem holding the tree.
    Git(GitOp),
}

impl Op {
    /// A short name for the kind of op, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Op::Scratch => "scratch",
            Op::Image(_) => "image",
            Op::Context { .. } => "context",
            Op::Exec(_) => "exec",
            Op::File(_) => "file",
            Op::Http(_) => "http",
            Op::Git(_) => "git",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageOp {
    pub reference: ImageRef,
    pub platform: Platform,
}

/// A RUN. Invariant: `args` is not empty; `cwd` is absolute.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecOp {
    /// The platform the command runs as: its stage's (`FROM --platform`, else the build's
    /// target). A foreign one runs through a binfmt_misc emulator or not at all.
    pub platform: Platform,
    /// argv, after the shell form has been wrapped (`["/bin/sh", "-c", "…"]`). Bytes, not
    /// text: a RUN line that is not UTF-8 reaches `execve` as written. Serialised as strings
    /// when UTF-8.
    pub args: Vec<ByteString>,
    /// `KEY=value` pairs, in order, already expanded.
    pub env: Vec<String>,
    pub cwd: String,
    /// `user[:group]` by name or id, resolved against the rootfs at run time; empty = root.
    pub user: String,
    pub network: NetworkMode,
    /// `RUN --mount`s, in the order written. Left out of the JSON when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mounts: Vec<Mount>,
    /// `RUN --security`. Left out of the JSON when [`SecurityMode::Sandbox`].
    #[serde(default, skip_serializing_if = "SecurityMode::is_sandbox")]
    pub security: SecurityMode,
    /// Proxy variables from the build args (BuildKit's `ProxyEnv`), added to the environment
    /// when the command runs. Never serialised, so never in a cache key (BuildKit leaves it
    /// out of the exec op's cache map too), an explain record or a graph dump.
    #[serde(skip)]
    pub proxy_env: ProxyEnv,
    /// `--add-host`, `--ulimit`, `--shm-size` of the build. Left out of the JSON when default.
    #[serde(default, skip_serializing_if = "ExecMeta::is_default")]
    pub meta: ExecMeta,
}

/// `RUN --security`: the default sandbox, or `insecure` (every capability, no seccomp,
/// writable /proc/sys and /sys), which the build must explicitly allow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SecurityMode {
    #[default]
    Sandbox,
    Insecure,
}

impl SecurityMode {
    pub fn is_sandbox(&self) -> bool {
        *self == SecurityMode::Sandbox
    }
}

/// One `RUN --mount`, after expansion and defaults. Invariants: every `target` is absolute
/// and cleaned; every `source` indexes the vertex's inputs (never 0, the root) and names a
/// filesystem-yielding vertex, never a `Context` (the frontend first copies what a mount
/// reads from a context into a `File` vertex on `Scratch`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Mount {
    Bind(BindMount),
    Cache(CacheMount),
    Tmpfs(TmpfsMount),
    Secret(SecretMount),
    Ssh(SshMount),
}

impl Mount {
    /// Where the mount appears in the sandbox (`None` for a secret exposed only as an
    /// environment variable).
    pub fn target(&self) -> Option<&str> {
        match self {
            Mount::Bind(m) => Some(&m.target),
            Mount::Cache(m) => Some(&m.target),
            Mount::Tmpfs(m) => Some(&m.target),
            Mount::Secret(m) => m.target.as_deref(),
            Mount::Ssh(m) => Some(&m.target),
        }
    }
}

/// `type=bind`: `path` of the filesystem of input `source`, read-only unless `readwrite`
/// (then writes go to a throwaway layer and are discarded after the RUN).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BindMount {
    pub target: String,
    pub source: usize,
    /// Absolute path inside the source filesystem (`/` for all of it).
    pub path: String,
    pub readwrite: bool,
}

/// `type=cache`: a directory kept in the store across builds, keyed by `id` (default: the
/// target). Its contents are never part of a cache key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheMount {
    pub target: String,
    pub id: String,
    pub sharing: CacheSharing,
    /// `from`/`source`: what a new cache directory starts with.
    pub from: Option<MountFrom>,
    /// `source` without `from`: the sub-directory of the cache directory that is mounted,
    /// relative and clean (no `.`, `..` or empty components). Created on first use with
    /// `mode`/`uid`/`gid`. `None` mounts the whole cache directory (left out of the JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subdir: Option<String>,
    pub readonly: bool,
    /// Mode, owner and group of the cache directory when it is created (0755, 0, 0).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// Where a cache mount's first contents come from: `path` in the filesystem of input `source`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountFrom {
    pub source: usize,
    pub path: String,
}

/// How concurrent RUNs share one cache directory.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CacheSharing {
    /// Used by every RUN at once.
    #[default]
    Shared,
    /// A RUN that finds it in use gets a new directory of its own.
    Private,
    /// A RUN waits until no other RUN uses it.
    Locked,
}

/// `type=tmpfs`: an empty tmpfs, gone after the RUN.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TmpfsMount {
    pub target: String,
    /// Size limit in bytes (the kernel's default when `None`).
    pub size: Option<u64>,
}

/// `type=secret`: secret `id` (given to the build with `--secret`) as a read-only file at
/// `target` (default `/run/secrets/<id>` unless only `env` is given) and/or as the value of
/// environment variable `env`. Its contents are never part of a key, a layer or a log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretMount {
    pub id: String,
    pub target: Option<String>,
    pub env: Option<String>,
    /// Fail when the build was not given the secret (otherwise the mount is skipped).
    pub required: bool,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// `type=ssh`: the SSH agent `id` (given with `--ssh`, default `default`) as a socket at
/// `target` (default `/run/buildkit/ssh_agent.N`), with `SSH_AUTH_SOCK` pointing at it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SshMount {
    pub id: String,
    pub target: String,
    pub required: bool,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum NetworkMode {
    /// rbuild's default: isolated with outbound access where possible.
    #[default]
    Default,
    /// Only a loopback interface.
    None,
    /// The host's network namespace.
    Host,
}

/// A list of filesystem actions applied in order, yielding one new layer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileOp {
    pub actions: Vec<FileAction>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FileAction {
    Copy(CopyAction),
    Mkdir(MkdirAction),
    Mkfile(MkfileAction),
}

/// COPY/ADD of one source with Docker's semantics: a directory's *contents* are copied; a
/// `dest` ending in `/` (or several sources) means "into this directory".
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopyAction {
    /// Index into the vertex's inputs of where to copy from.
    pub source: usize,
    /// Path in the source, possibly with wildcards (`*.txt`); relative to the context root for
    /// a context, absolute for a filesystem.
    pub src: String,
    /// Absolute destination path, already joined with WORKDIR.
    pub dest: String,
    /// `--chown` value (`user[:group]`, names resolved in the destination's /etc/passwd).
    pub chown: Option<String>,
    /// `--chmod`: octal bits, or a symbolic mode applied to each copied file's own mode.
    pub chmod: Option<FileMode>,
    /// Whether a source matching nothing is fine (only for wildcard sources).
    pub allow_empty_wildcard: bool,
    /// ADD's archive handling: a source that is a regular file holding a tar archive (plain,
    /// gzip, bzip2, xz or zstd — recognised by content, not name) is extracted into `dest` as
    /// a directory instead of being copied. Extracted entries keep the archive's modes and
    /// owners (`chown` still applies; `chmod` does not, as in BuildKit).
    #[serde(default)]
    pub unpack: bool,
    /// `--exclude` patterns (`.dockerignore` syntax, `!` exceptions allowed), relative to each
    /// matched source: what they match is neither copied nor part of the cache key. Left out
    /// of the JSON when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<String>,
    /// `COPY --parents`: the leading part of `src` (what precedes a `/./` pivot; `.` for a
    /// context and `/` for a filesystem when there is none) whose directories are dropped;
    /// each matched path keeps the rest of its path under `dest` (a directory keeps its own
    /// name too). `None` without `--parents` (then left out of the JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parents: Option<String>,
}

/// A `--chmod` mode. Serialised untagged (octal as a JSON number, symbolic as a string).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum FileMode {
    /// Permission bits (at most `0o7777`), replacing the file's mode.
    Octal(u32),
    /// chmod(1)'s symbolic form (`u+x`, `go=rx`, `ug+rX-w`): comma-separated clauses
    /// `[ugoa]*([-+=][rwxXst]*)+`, applied in order to each file's own mode. No `who` means
    /// all (no umask); `X` adds execute only to directories and to files already executable
    /// by someone; `s` means set-uid/set-gid (for `u`/`g`), `t` the sticky bit. Characters
    /// outside the grammar (the frontend rejects them earlier) are ignored.
    Symbolic(String),
}

impl FileMode {
    /// The permission bits a file whose bits are `existing` gets (`is_dir`: it is a
    /// directory, for `X`). Total: never fails, whatever the text.
    pub fn apply(&self, existing: u32, is_dir: bool) -> u32 {
        match self {
            FileMode::Octal(m) => m & 0o7777,
            FileMode::Symbolic(spec) => apply_symbolic(spec, existing & 0o7777, is_dir),
        }
    }
}

fn apply_symbolic(spec: &str, existing: u32, is_dir: bool) -> u32 {
    let mut mode = existing;
    for clause in spec.split(',') {
        let ops_at = clause
            .find(|c: char| !matches!(c, 'u' | 'g' | 'o' | 'a'))
            .unwrap_or(clause.len());
        let mut who = 0;
        for c in clause[..ops_at].chars() {
            who |= match c {
                'u' => 0o4700,
                'g' => 0o2070,
                'o' => 0o1007,
                _ => 0o7777,
            };
        }
        if who == 0 {
            who = 0o7777;
        }
        let mut rest = clause[ops_at..].chars().peekable();
        while let Some(op) = rest.next() {
            let mut perm = 0;
            while let Some(&p) = rest.peek() {
                if matches!(p, '+' | '-' | '=') {
                    break;
                }
                rest.next();
                perm |= match p {
                    'r' => 0o444,
                    'w' => 0o222,
                    'x' => 0o111,
                    'X' if is_dir || mode & 0o111 != 0 => 0o111,
                    's' => 0o6000,
                    't' => 0o1000,
                    _ => 0,
                };
            }
            let bits = perm & who;
            match op {
                '+' => mode |= bits,
                '-' => mode &= !bits,
                '=' => mode = (mode & !who) | bits,
                _ => {}
            }
        }
    }
    mode
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MkdirAction {
    /// Absolute path.
    pub path: String,
    pub mode: u32,
    /// Create missing parents too.
    pub parents: bool,
    pub chown: Option<String>,
}

/// A file with fixed contents (heredoc COPY `<<EOF`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MkfileAction {
    /// Absolute path.
    pub path: String,
    pub data: Vec<u8>,
    pub mode: u32,
    pub chown: Option<String>,
}

/// `ADD <http(s) URL>`: yields one layer holding `/<filename>` with the body of `url`, mode
/// `0600`, owned by 0:0, its mtime the response's `Last-Modified` (the epoch without one), as
/// BuildKit's http source. Invariant: `filename` is one path component (no `/`, not `.`/`..`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpOp {
    pub url: String,
    /// The file name inside the layer: the last segment of the URL's path (`__unnamed__`
    /// when there is none), as BuildKit names it.
    pub filename: String,
    /// `ADD --checksum`: the digest the body must have (`sha256:…`, `sha384:…` or
    /// `sha512:…`). With it, the vertex is keyed without downloading anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
}

/// `ADD <git URL>`: yields one layer holding the checkout of `reference` (or its `subdir`).
/// Invariant: `remote` and `reference` never start with `-` (they are passed to `git`);
/// `subdir` is relative.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitOp {
    /// The repository, as `git fetch` takes it (no `#fragment`).
    pub remote: String,
    /// Branch, tag or commit; `None` means the remote's HEAD.
    pub reference: Option<String>,
    /// A directory of the repository whose contents the layer holds instead of the root.
    pub subdir: Option<String>,
    /// `ADD --keep-git-dir`: the layer keeps the `.git` directory (at the root of the
    /// checkout). Without it `.git` is removed, as in BuildKit.
    pub keep_git_dir: bool,
    /// `ADD --checksum` of a git source: hex digits the resolved commit id must start with
    /// (BuildKit's check; any case, any length). Left out of the JSON when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::FileMode;

    fn sym(spec: &str, existing: u32, is_dir: bool) -> u32 {
        FileMode::Symbolic(spec.to_string()).apply(existing, is_dir)
    }

    #[test]
    fn symbolic_modes() {
        assert_eq!(sym("u+x", 0o644, false), 0o744);
        assert_eq!(sym("go=rx", 0o600, false), 0o655);
        assert_eq!(sym("ug+rX-w", 0o600, false), 0o440);
        assert_eq!(sym("ug+rX-w", 0o700, false), 0o550);
        assert_eq!(sym("ug+rX-w", 0o700, true), 0o550);
        assert_eq!(sym("a+X", 0o600, true), 0o711);
        assert_eq!(sym("+x", 0o644, false), 0o755);
        assert_eq!(sym("=r", 0o4755, false), 0o444);
        assert_eq!(sym("u+s,g+s,+t", 0o755, true), 0o7755);
        assert_eq!(sym("o+s", 0o755, false), 0o755);
        assert_eq!(sym("u=rwx,g=rx,o=", 0o000, false), 0o750);
        assert_eq!(sym("u-w+x-r", 0o644, false), 0o144);
        assert_eq!(sym("", 0o644, false), 0o644);
        assert_eq!(FileMode::Octal(0o17755).apply(0o644, false), 0o7755);
    }

    #[test]
    fn octal_serialises_as_before() {
        let json = serde_json::to_string(&FileMode::Octal(0o644)).unwrap_or_default();
        assert_eq!(json, "420");
        let json = serde_json::to_string(&FileMode::Symbolic("u+x".into())).unwrap_or_default();
        assert_eq!(json, "\"u+x\"");
    }
}
