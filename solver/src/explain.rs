//! `--explain-cache`: why a step missed the cache, in terms of its key's inputs.
//!
//! Every time a step runs, the solver records the inputs of its key as [`StepInputs`] under the
//! step's **identity** in the store's `steps` table. The identity is the build's scope (the
//! binary passes the context directory and Dockerfile path) plus the stage and instruction
//! index from the vertex name (`[build 2/4] RUN make` → `build 2`); so editing an instruction
//! keeps its identity, and the diff can say what changed. On a miss, [`explain`] compares the
//! current inputs with the recorded ones and names each difference as a [`MissReason`].
//! A remote source records what it resolved to ([`RemoteInputs`]: a download's body digest,
//! a git reference's commit), so a miss it causes names the URL or reference.
//!
//! Per-file digests of a COPY's selection are recorded for selections of at most
//! [`MAX_FILES`] entries and [`MAX_HASHED_BYTES`] of file content (bigger ones record sizes
//! and modes only; a content change there is reported without digests).

use std::collections::BTreeMap;
use std::io::Read;

use rbuild_context::{BuildContext, ContextEntry, EntryKind, SelectionView};
use rbuild_graph::Op;
use rbuild_types::{Digest, Hasher};
use serde::{Deserialize, Serialize};

/// Selections with more entries than this record no per-file details.
pub const MAX_FILES: usize = 4096;
/// Per-file content digests are recorded while the selection's files total at most this.
pub const MAX_HASHED_BYTES: u64 = 16 << 20;

/// What a step's key was computed from, as recorded in the store.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StepInputs {
    pub key: Option<Digest>,
    /// The vertex's display name (the instruction text).
    pub name: String,
    /// The op, as the key hashes it (JSON).
    pub op: serde_json::Value,
    /// For an image: the reference and the manifest digest it resolved to.
    pub image: Option<(String, Digest)>,
    /// Each input: its display name and key (`None` for a build context).
    pub inputs: Vec<(String, Option<Digest>)>,
    /// Each copy from a context: the files it selected.
    pub copies: Vec<CopyInputs>,
    /// For a remote source (`ADD <url>`, `ADD <git url>`): what it resolved to. Absent in
    /// records of other steps (and of remote steps recorded before it existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<RemoteInputs>,
}

/// What a remote source was when its step was keyed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RemoteInputs {
    /// A download: the body's digest and the `Last-Modified` it was served with.
    Download {
        url: String,
        digest: Digest,
        last_modified: Option<String>,
    },
    /// A git reference and the commit it named.
    Git {
        remote: String,
        reference: String,
        commit: String,
    },
}

impl RemoteInputs {
    /// The record for a remote op `op` that resolved to `resolved`; `None` when nothing was
    /// resolved (a download with `--checksum` is keyed on the checksum, in the op).
    pub(crate) fn of(op: &Op, resolved: &crate::remote::Resolved) -> Option<RemoteInputs> {
        use crate::remote::Resolved;
        match (op, resolved) {
            (
                Op::Http(h),
                Resolved::Http {
                    blob,
                    last_modified,
                },
            ) => Some(RemoteInputs::Download {
                url: h.url.clone(),
                digest: *blob,
                last_modified: last_modified.clone(),
            }),
            (Op::Git(g), Resolved::Git { commit }) => Some(RemoteInputs::Git {
                remote: g.remote.clone(),
                reference: g.reference.clone().unwrap_or_else(|| "HEAD".to_string()),
                commit: commit.clone(),
            }),
            _ => None,
        }
    }
}

/// What one copy from a context selected.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CopyInputs {
    pub src: String,
    pub digest: Option<Digest>,
    /// Path → description (`file 0644 12B sha256:…`, `dir 0755`, `symlink -> target`).
    /// Empty when the selection was too big to describe.
    pub files: BTreeMap<String, String>,
}

/// Why a step missed the cache.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum MissReason {
    /// No earlier build of this Dockerfile ran this step.
    FirstRun,
    /// `--no-cache` or `--no-cache-filter` asked for it to run.
    NoCache,
    /// The inputs are the same as last time, but the result is no longer in the store.
    ResultGone,
    /// The instruction (op definition) changed.
    Instruction { old: String, new: String },
    /// The command of a RUN changed.
    Command { old: String, new: String },
    /// An environment variable of a RUN (ENV or ARG) changed, appeared or disappeared.
    Env {
        name: String,
        old: Option<String>,
        new: Option<String>,
    },
    /// Working directory, user or network of a RUN changed.
    Setting {
        what: String,
        old: String,
        new: String,
    },
    /// The base image tag now resolves to another manifest.
    BaseImage {
        reference: String,
        old: Digest,
        new: Digest,
    },
    /// A file a COPY reads changed, appeared (`old` none) or disappeared (`new` none).
    File {
        path: String,
        old: Option<String>,
        new: Option<String>,
    },
    /// The content a COPY reads changed (too many files to say which).
    Files { src: String },
    /// A downloaded source (`ADD <url>`) has a new body (digests) or, with the same body, a
    /// new `Last-Modified` (which is the file's mtime).
    Download {
        url: String,
        old: String,
        new: String,
    },
    /// A git reference of `ADD <git url>` names another commit.
    GitMoved {
        remote: String,
        reference: String,
        old: String,
        new: String,
    },
    /// A step this one builds on has a new result.
    Input { step: String },
    /// The key changed for a reason not recorded (e.g. a new rbuild version).
    Unknown,
}

impl std::fmt::Display for MissReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "(unset)".into());
        match self {
            MissReason::FirstRun => write!(f, "no earlier build ran this step"),
            MissReason::NoCache => write!(f, "cache disabled (--no-cache / --no-cache-filter)"),
            MissReason::ResultGone => {
                write!(f, "inputs unchanged, but the cached result was pruned")
            }
            MissReason::Instruction { old, new } => {
                write!(f, "instruction changed: {old:?} -> {new:?}")
            }
            MissReason::Command { old, new } => write!(f, "command changed: {old:?} -> {new:?}"),
            MissReason::Env { name, old, new } => {
                write!(f, "variable {name} changed: {} -> {}", opt(old), opt(new))
            }
            MissReason::Setting { what, old, new } => {
                write!(f, "{what} changed: {old:?} -> {new:?}")
            }
            MissReason::BaseImage {
                reference,
                old,
                new,
            } => write!(f, "base image {reference} changed: {old} -> {new}"),
            MissReason::File { path, old, new } => match (old, new) {
                (None, Some(n)) => write!(f, "file {path} added: {n}"),
                (Some(o), None) => write!(f, "file {path} removed (was {o})"),
                _ => write!(f, "file {path} changed: {} -> {}", opt(old), opt(new)),
            },
            MissReason::Files { src } => write!(f, "files selected by {src:?} changed"),
            MissReason::Download { url, old, new } => {
                write!(f, "download {url} changed: {old} → {new}")
            }
            MissReason::GitMoved {
                remote,
                reference,
                old,
                new,
            } => write!(f, "git {remote} {reference} moved: {old} → {new}"),
            MissReason::Input { step } => write!(f, "the step it builds on changed: {step}"),
            MissReason::Unknown => write!(f, "the cache key changed (no recorded cause)"),
        }
    }
}

/// The identity of a step across builds: scope, stage and instruction index, taken from a
/// display name of the form `[stage i/n] …` or `[i/n] …`; other names are used whole.
pub fn step_identity(scope: &str, name: &str) -> String {
    let counter = name.strip_prefix('[').and_then(|rest| {
        let (inside, _) = rest.split_once(']')?;
        let (before, frac) = match inside.rsplit_once(' ') {
            Some((stage, frac)) => (stage, frac),
            None => ("", inside),
        };
        let (i, n) = frac.split_once('/')?;
        (i.parse::<u32>().is_ok() && n.parse::<u32>().is_ok()).then(|| format!("{before} {i}"))
    });
    format!("{scope}\n{}", counter.as_deref().unwrap_or(name))
}

/// Describes what a selection of `ctx` holds, per path (see [`CopyInputs::files`]). Only a
/// selection of at most [`MAX_FILES`] entries has its entries built (bounded memory).
pub fn describe_selection(src: &str, ctx: &BuildContext, sel: &SelectionView) -> CopyInputs {
    let mut out = CopyInputs {
        src: src.to_string(),
        digest: Some(sel.digest),
        files: BTreeMap::new(),
    };
    if sel.len() > MAX_FILES {
        return out;
    }
    let all: Vec<ContextEntry> = sel
        .roots()
        .cloned()
        .chain((0..sel.roots().len()).flat_map(|k| sel.entries(ctx, k)))
        .collect();
    let mut budget = MAX_HASHED_BYTES;
    for e in all {
        let text = match e.kind {
            EntryKind::Dir => format!("dir {:04o}", e.mode),
            EntryKind::Symlink => {
                format!("symlink -> {}", e.link_target.as_deref().unwrap_or(""))
            }
            EntryKind::File => {
                let content = if e.size <= budget {
                    budget -= e.size;
                    file_digest(&e.host_path)
                        .map(|d| format!(" {d}"))
                        .unwrap_or_default()
                } else {
                    String::new()
                };
                format!("file {:04o} {}B{content}", e.mode, e.size)
            }
        };
        out.files.insert(e.rel, text);
    }
    out
}

fn file_digest(path: &std::path::Path) -> Option<Digest> {
    let mut file = std::fs::File::open(path).ok()?;
    let mut h = Hasher::new();
    let mut buf = vec![0u8; 64 << 10];
    loop {
        match file.read(&mut buf) {
            Ok(0) => return Some(h.finish()),
            Ok(n) => h.update(&buf[..n]),
            Err(_) => return None,
        }
    }
}

/// Why `now` missed, given what the step recorded the last time it ran (`before`).
/// `ignore_cache`: the step was told to run anyway.
pub fn explain(
    before: Option<&StepInputs>,
    now: &StepInputs,
    ignore_cache: bool,
) -> Vec<MissReason> {
    if ignore_cache {
        return vec![MissReason::NoCache];
    }
    let Some(before) = before else {
        return vec![MissReason::FirstRun];
    };
    if before.key.is_some() && before.key == now.key {
        return vec![MissReason::ResultGone];
    }
    let mut out = Vec::new();
    diff_op(&before.op, &now.op, before, now, &mut out);
    if let (Some((r, old)), Some((_, new))) = (&before.image, &now.image) {
        if old != new {
            out.push(MissReason::BaseImage {
                reference: r.clone(),
                old: *old,
                new: *new,
            });
        }
    }
    if let (Some(old), Some(new)) = (&before.remote, &now.remote) {
        if let Some(reason) = remote_change(old, new) {
            out.push(reason);
        }
    }
    for (i, copy) in now.copies.iter().enumerate() {
        let Some(prev) = before.copies.get(i) else {
            continue;
        };
        if prev.digest == copy.digest {
            continue;
        }
        let len = out.len();
        for (path, new) in &copy.files {
            match prev.files.get(path) {
                Some(old) if old == new => {}
                old => out.push(MissReason::File {
                    // Keys are context paths (escaped text): shown with U+FFFD for stray bytes.
                    path: rbuild_types::bytes::escaped_lossy(path).into_owned(),
                    old: old.cloned(),
                    new: Some(new.clone()),
                }),
            }
        }
        for (path, old) in &prev.files {
            if !copy.files.contains_key(path) {
                out.push(MissReason::File {
                    path: rbuild_types::bytes::escaped_lossy(path).into_owned(),
                    old: Some(old.clone()),
                    new: None,
                });
            }
        }
        if out.len() == len {
            out.push(MissReason::Files {
                src: copy.src.clone(),
            });
        }
    }
    if out.is_empty() {
        for (i, (name, key)) in now.inputs.iter().enumerate() {
            let old = before.inputs.get(i).and_then(|(_, k)| *k);
            if key.is_some() && *key != old {
                out.push(MissReason::Input { step: name.clone() });
            }
        }
    }
    if out.is_empty() {
        out.push(MissReason::Unknown);
    }
    out
}

/// How a remote source changed between two records of one step, if it did.
fn remote_change(old: &RemoteInputs, new: &RemoteInputs) -> Option<MissReason> {
    match (old, new) {
        (
            RemoteInputs::Download {
                url,
                digest: d_old,
                last_modified: m_old,
            },
            RemoteInputs::Download {
                digest: d_new,
                last_modified: m_new,
                ..
            },
        ) => {
            let lm = |m: &Option<String>| m.clone().unwrap_or_else(|| "(none)".into());
            if d_old != d_new {
                Some(MissReason::Download {
                    url: url.clone(),
                    old: d_old.to_string(),
                    new: d_new.to_string(),
                })
            } else if m_old != m_new {
                Some(MissReason::Download {
                    url: url.clone(),
                    old: format!("Last-Modified {}", lm(m_old)),
                    new: format!("Last-Modified {}", lm(m_new)),
                })
            } else {
                None
            }
        }
        (
            RemoteInputs::Git {
                remote,
                reference,
                commit: c_old,
            },
            RemoteInputs::Git { commit: c_new, .. },
        ) if c_old != c_new => Some(MissReason::GitMoved {
            remote: remote.clone(),
            reference: reference.clone(),
            old: c_old.clone(),
            new: c_new.clone(),
        }),
        _ => None,
    }
}

fn diff_op(
    old: &serde_json::Value,
    new: &serde_json::Value,
    before: &StepInputs,
    now: &StepInputs,
    out: &mut Vec<MissReason>,
) {
    if old == new {
        return;
    }
    let field = |v: &serde_json::Value, k: &str| v.get(k).cloned();
    let is_exec = |v: &serde_json::Value| v.get("args").is_some();
    if !(is_exec(old) && is_exec(new)) {
        out.push(MissReason::Instruction {
            old: before.name.clone(),
            new: now.name.clone(),
        });
        return;
    }
    let text = |v: Option<serde_json::Value>| -> String {
        match v {
            Some(serde_json::Value::String(s)) => s,
            Some(serde_json::Value::Array(a)) => a
                .iter()
                .map(|x| match x {
                    serde_json::Value::String(s) => s.clone(),
                    // An argument that is not UTF-8 is stored as its bytes (ByteString).
                    _ => serde_json::from_value::<rbuild_types::ByteString>(x.clone())
                        .map_or_else(|_| x.to_string(), |b| b.lossy().into_owned()),
                })
                .collect::<Vec<_>>()
                .join(" "),
            Some(other) => other.to_string(),
            None => String::new(),
        }
    };
    if field(old, "args") != field(new, "args") {
        out.push(MissReason::Command {
            old: text(field(old, "args")),
            new: text(field(new, "args")),
        });
    }
    let env = |v: &serde_json::Value| -> BTreeMap<String, String> {
        v.get("env")
            .and_then(|e| e.as_array())
            .into_iter()
            .flatten()
            .filter_map(|kv| kv.as_str()?.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let (e_old, e_new) = (env(old), env(new));
    for (k, v) in &e_new {
        if e_old.get(k) != Some(v) {
            out.push(MissReason::Env {
                name: k.clone(),
                old: e_old.get(k).cloned(),
                new: Some(v.clone()),
            });
        }
    }
    for (k, v) in &e_old {
        if !e_new.contains_key(k) {
            out.push(MissReason::Env {
                name: k.clone(),
                old: Some(v.clone()),
                new: None,
            });
        }
    }
    for (key, what) in [
        ("cwd", "working directory"),
        ("user", "user"),
        ("network", "network"),
    ] {
        if field(old, key) != field(new, key) {
            out.push(MissReason::Setting {
                what: what.into(),
                old: text(field(old, key)),
                new: text(field(new, key)),
            });
        }
    }
    if out.is_empty() {
        // Same command, env and settings, yet a different op (e.g. a field added to ExecOp).
        out.push(MissReason::Instruction {
            old: before.name.clone(),
            new: now.name.clone(),
        });
    }
}

/// The op as the key sees it, for recording (the image reference for an image).
pub(crate) fn op_json(op: &Op) -> serde_json::Value {
    match op {
        Op::Exec(e) => serde_json::to_value(e).unwrap_or_default(),
        Op::File(f) => serde_json::to_value(f).unwrap_or_default(),
        Op::Image(i) => serde_json::Value::String(i.reference.to_string()),
        Op::Http(h) => serde_json::to_value(h).unwrap_or_default(),
        Op::Git(g) => serde_json::to_value(g).unwrap_or_default(),
        Op::Scratch | Op::Context { .. } => serde_json::Value::String(op.kind().to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_is_stage_and_index() {
        assert_eq!(step_identity("s", "[build 2/4] RUN make"), "s\nbuild 2");
        assert_eq!(step_identity("s", "[build 2/5] RUN make -j"), "s\nbuild 2");
        assert_eq!(step_identity("s", "[2/4] COPY . ."), "s\n 2");
        assert_eq!(step_identity("s", "[internal] x"), "s\n[internal] x");
        assert_eq!(step_identity("s", "plain"), "s\nplain");
    }

    fn exec(args: &str, env: &[&str]) -> StepInputs {
        StepInputs {
            key: Some(Digest::of(format!("{args}{env:?}").as_bytes())),
            name: format!("RUN {args}"),
            op: serde_json::json!({"args": ["/bin/sh", "-c", args], "env": env, "cwd": "/", "user": "", "network": "Default"}),
            ..StepInputs::default()
        }
    }

    #[test]
    fn names_changed_env_and_command() {
        let a = exec("make", &["A=1", "B=2"]);
        let b = exec("make", &["A=1", "B=3", "C=4"]);
        assert_eq!(
            explain(Some(&a), &b, false),
            vec![
                MissReason::Env {
                    name: "B".into(),
                    old: Some("2".into()),
                    new: Some("3".into())
                },
                MissReason::Env {
                    name: "C".into(),
                    old: None,
                    new: Some("4".into())
                },
            ]
        );
        let c = exec("make all", &["A=1", "B=2"]);
        assert_eq!(
            explain(Some(&a), &c, false),
            vec![MissReason::Command {
                old: "/bin/sh -c make".into(),
                new: "/bin/sh -c make all".into()
            }]
        );
        assert_eq!(explain(None, &c, false), vec![MissReason::FirstRun]);
        assert_eq!(explain(Some(&a), &a, false), vec![MissReason::ResultGone]);
        assert_eq!(explain(Some(&a), &c, true), vec![MissReason::NoCache]);
    }

    #[test]
    fn commands_that_are_not_utf8_show_replacement_characters() {
        let a = exec("make", &[]);
        let mut b = exec("make", &[]);
        let raw = rbuild_types::ByteString::from(b"echo \xff".to_vec());
        b.op["args"][2] = serde_json::to_value(&raw).unwrap_or_default();
        b.key = Some(Digest::of(b"other"));
        assert_eq!(
            explain(Some(&a), &b, false),
            vec![MissReason::Command {
                old: "/bin/sh -c make".into(),
                new: "/bin/sh -c echo \u{FFFD}".into()
            }]
        );
    }

    #[test]
    fn remote_sources_name_what_moved() {
        let step = |remote: RemoteInputs| StepInputs {
            key: Some(Digest::of(format!("{remote:?}").as_bytes())),
            name: "[2/2] ADD x /x".into(),
            remote: Some(remote),
            ..StepInputs::default()
        };
        let git = |c: &str| RemoteInputs::Git {
            remote: "git://h/r".into(),
            reference: "main".into(),
            commit: c.into(),
        };
        let why = explain(Some(&step(git("aaa"))), &step(git("bbb")), false);
        assert_eq!(why[0].to_string(), "git git://h/r main moved: aaa → bbb");
        let dl = |d: &[u8], m: &str| RemoteInputs::Download {
            url: "http://h/f".into(),
            digest: Digest::of(d),
            last_modified: Some(m.into()),
        };
        let why = explain(Some(&step(dl(b"1", "M"))), &step(dl(b"2", "M")), false);
        let want = format!(
            "download http://h/f changed: {} → {}",
            Digest::of(b"1"),
            Digest::of(b"2")
        );
        assert_eq!(why[0].to_string(), want);
        let why = explain(Some(&step(dl(b"1", "M"))), &step(dl(b"1", "N")), false);
        assert_eq!(
            why[0].to_string(),
            "download http://h/f changed: Last-Modified M → Last-Modified N"
        );
        // Records without the field (older rbuild) still parse.
        let old: StepInputs = serde_json::from_str(
            r#"{"key":null,"name":"n","op":null,"image":null,"inputs":[],"copies":[]}"#,
        )
        .unwrap();
        assert_eq!(old.remote, None);
    }

    #[test]
    fn input_change_is_named_only_without_own_change() {
        let mut a = exec("make", &[]);
        a.inputs = vec![("[1/3] FROM busybox".into(), Some(Digest::of(b"1")))];
        let mut b = a.clone();
        b.key = Some(Digest::of(b"other"));
        b.inputs[0].1 = Some(Digest::of(b"2"));
        assert_eq!(
            explain(Some(&a), &b, false),
            vec![MissReason::Input {
                step: "[1/3] FROM busybox".into()
            }]
        );
    }
}
