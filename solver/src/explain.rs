//! `--explain-cache`: why a step missed the cache, in terms of its key's inputs.
//!
//! Every time a step runs, the solver records the inputs of its key as [`StepInputs`] under the
//! step's **identity** in the store's `steps` table. The identity is the build's scope (the
//! builder passes the context directory and Dockerfile path) plus the vertex's typed
//! [`Origin`](rbuild_graph::Origin): its stage and the step's index in it (`build 2`); so
//! editing an instruction keeps its identity, and the diff can say what changed. The record
//! is typed (the op as the IR has it) and versioned ([`STEP_RECORD_VERSION`]): a record of
//! another version is never read as this one ([`MissReason::OtherVersion`]). On a miss, [`explain`] compares the
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
use rbuild_graph::{ExecOp, Op, Vertex};
use rbuild_types::{Digest, Hasher};
use serde::{Deserialize, Serialize};

/// Selections with more entries than this record no per-file details.
pub const MAX_FILES: usize = 4096;
/// Per-file content digests are recorded while the selection's files total at most this.
pub const MAX_HASHED_BYTES: u64 = 16 << 20;

/// The version of [`StepInputs`] records: raised whenever their shape or meaning changes (the
/// IR's serde form included, since the op is recorded as it).
pub const STEP_RECORD_VERSION: u32 = 2;

/// What a step's key was computed from, as recorded in the store.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepInputs {
    /// [`STEP_RECORD_VERSION`] when written.
    pub version: u32,
    pub key: Option<Digest>,
    /// The vertex's display name (the instruction text).
    pub name: String,
    /// The op, as the key hashes it.
    pub op: Op,
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
    /// Working directory, user, network, extra hosts, ulimits or /dev/shm size of a RUN
    /// changed.
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
    /// The step's last run was recorded by another version of rbuild, whose records are
    /// not read.
    OtherVersion,
    /// The key changed for a reason not recorded (e.g. a new rbuild version).
    Unknown,
}

impl Default for StepInputs {
    fn default() -> Self {
        StepInputs {
            version: STEP_RECORD_VERSION,
            key: None,
            name: String::new(),
            op: Op::Scratch,
            image: None,
            inputs: Vec::new(),
            copies: Vec::new(),
            remote: None,
        }
    }
}

/// A recorded step as read back from the store.
#[derive(Debug, PartialEq)]
pub enum Recorded {
    /// Nothing was recorded for the step.
    None,
    /// A record of this version.
    Step(Box<StepInputs>),
    /// A record of another version (or one that does not parse): not read.
    OtherVersion,
}

impl Recorded {
    /// Reads a record's bytes: only a record of [`STEP_RECORD_VERSION`] is parsed.
    pub fn parse(bytes: Option<&[u8]>) -> Recorded {
        #[derive(Deserialize)]
        struct Version {
            #[serde(default)]
            version: u32,
        }
        let Some(bytes) = bytes else {
            return Recorded::None;
        };
        match serde_json::from_slice::<Version>(bytes) {
            Ok(v) if v.version == STEP_RECORD_VERSION => serde_json::from_slice(bytes)
                .map_or(Recorded::OtherVersion, |s| Recorded::Step(Box::new(s))),
            _ => Recorded::OtherVersion,
        }
    }
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
            MissReason::OtherVersion => {
                write!(f, "the last run was recorded by another version of rbuild")
            }
            MissReason::Unknown => write!(f, "the cache key changed (no recorded cause)"),
        }
    }
}

/// The identity of a step across builds: the scope and the vertex's origin (stage and step
/// index); a vertex without an origin (internal ones) is known by its name.
pub fn step_identity(scope: &str, vertex: &Vertex) -> String {
    match &vertex.origin {
        Some(o) => format!("{scope}\n{} {}", o.stage, o.index),
        None => format!("{scope}\n{}", vertex.name),
    }
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
pub fn explain(before: &Recorded, now: &StepInputs, ignore_cache: bool) -> Vec<MissReason> {
    if ignore_cache {
        return vec![MissReason::NoCache];
    }
    let before = match before {
        Recorded::None => return vec![MissReason::FirstRun],
        Recorded::OtherVersion => return vec![MissReason::OtherVersion],
        Recorded::Step(s) => s,
    };
    if before.key.is_some() && before.key == now.key {
        return vec![MissReason::ResultGone];
    }
    let mut out = Vec::new();
    diff_op(before, now, &mut out);
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

fn diff_op(before: &StepInputs, now: &StepInputs, out: &mut Vec<MissReason>) {
    if before.op == now.op {
        return;
    }
    let (Op::Exec(old), Op::Exec(new)) = (&before.op, &now.op) else {
        out.push(MissReason::Instruction {
            old: before.name.clone(),
            new: now.name.clone(),
        });
        return;
    };
    let len = out.len();
    diff_exec(old, new, out);
    if out.len() == len {
        // Same command, env and settings, yet a different op (mounts, security).
        out.push(MissReason::Instruction {
            old: before.name.clone(),
            new: now.name.clone(),
        });
    }
}

/// A RUN's `--add-host` entries as `HOST=IP`, space-separated (`none` without).
fn hosts(e: &ExecOp) -> String {
    let all: Vec<String> = e
        .meta
        .extra_hosts
        .iter()
        .map(|h| format!("{}={}", h.host, h.ip))
        .collect();
    none_if_empty(all)
}

/// A RUN's `--ulimit`s as `NAME=SOFT:HARD`, space-separated (`none` without).
fn ulimits(e: &ExecOp) -> String {
    let all: Vec<String> = e
        .meta
        .ulimits
        .iter()
        .map(|u| format!("{}={}:{}", u.name.as_str(), u.soft, u.hard))
        .collect();
    none_if_empty(all)
}

/// A RUN's `--shm-size` in bytes (`default` without).
fn shm(e: &ExecOp) -> String {
    e.meta
        .shm_size
        .map_or_else(|| "default".to_string(), |b| b.to_string())
}

fn none_if_empty(items: Vec<String>) -> String {
    if items.is_empty() {
        "none".to_string()
    } else {
        items.join(" ")
    }
}

/// How two RUNs differ in their command, environment and settings.
fn diff_exec(old: &ExecOp, new: &ExecOp, out: &mut Vec<MissReason>) {
    // Arguments that are not UTF-8 are shown with U+FFFD.
    let command = |e: &ExecOp| -> String {
        e.args
            .iter()
            .map(|a| a.lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    };
    if old.args != new.args {
        out.push(MissReason::Command {
            old: command(old),
            new: command(new),
        });
    }
    let env = |e: &ExecOp| -> BTreeMap<String, String> {
        e.env
            .iter()
            .filter_map(|kv| kv.split_once('='))
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
    let settings = [
        ("working directory", old.cwd.clone(), new.cwd.clone()),
        ("user", old.user.clone(), new.user.clone()),
        (
            "network",
            format!("{:?}", old.network),
            format!("{:?}", new.network),
        ),
        ("extra hosts (--add-host)", hosts(old), hosts(new)),
        ("ulimits (--ulimit)", ulimits(old), ulimits(new)),
        ("/dev/shm size (--shm-size)", shm(old), shm(new)),
    ];
    for (what, o, n) in settings {
        if o != n {
            out.push(MissReason::Setting {
                what: what.into(),
                old: o,
                new: n,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vertex(name: &str, origin: Option<(&str, u32)>) -> Vertex {
        Vertex {
            op: Op::Scratch,
            inputs: vec![],
            name: name.into(),
            span: None,
            ignore_cache: false,
            origin: origin.map(|(stage, index)| rbuild_graph::Origin {
                stage: stage.into(),
                index,
                instruction: rbuild_graph::Instruction::Run,
                onbuild: false,
            }),
        }
    }

    #[test]
    fn identity_is_stage_and_index() {
        let id = |name, origin| step_identity("s", &vertex(name, origin));
        assert_eq!(id("[build 2/4] RUN make", Some(("build", 2))), "s\nbuild 2");
        assert_eq!(
            id("[build 2/5] RUN make -j", Some(("build", 2))),
            "s\nbuild 2"
        );
        assert_eq!(id("[2/4] COPY . .", Some(("stage-0", 2))), "s\nstage-0 2");
        assert_eq!(id("[internal] x", None), "s\n[internal] x");
    }

    fn exec_op(args: Vec<rbuild_types::ByteString>, env: &[&str]) -> Op {
        Op::Exec(ExecOp {
            platform: rbuild_types::Platform::host(),
            args,
            env: env.iter().map(|e| e.to_string()).collect(),
            cwd: "/".into(),
            user: String::new(),
            network: Default::default(),
            mounts: vec![],
            security: Default::default(),
            proxy_env: Default::default(),
            meta: Default::default(),
        })
    }

    fn exec(args: &str, env: &[&str]) -> StepInputs {
        StepInputs {
            key: Some(Digest::of(format!("{args}{env:?}").as_bytes())),
            name: format!("RUN {args}"),
            op: exec_op(vec!["/bin/sh".into(), "-c".into(), args.into()], env),
            ..StepInputs::default()
        }
    }

    fn rec(s: &StepInputs) -> Recorded {
        Recorded::Step(Box::new(s.clone()))
    }

    #[test]
    fn records_of_another_version_are_not_read() {
        let mut old = exec("make", &[]);
        let bytes = serde_json::to_vec(&old).unwrap_or_default();
        assert_eq!(Recorded::parse(Some(&bytes)), rec(&old));
        old.version = 1;
        let bytes = serde_json::to_vec(&old).unwrap_or_default();
        assert_eq!(Recorded::parse(Some(&bytes)), Recorded::OtherVersion);
        // A record of the first format: the op as untagged JSON, no version.
        let first = br#"{"key":null,"name":"RUN x","op":{"args":["sh"]},"image":null,"inputs":[],"copies":[]}"#;
        assert_eq!(Recorded::parse(Some(first)), Recorded::OtherVersion);
        assert_eq!(Recorded::parse(Some(b"garbage")), Recorded::OtherVersion);
        assert_eq!(Recorded::parse(None), Recorded::None);
        assert_eq!(
            explain(&Recorded::OtherVersion, &exec("make", &[]), false),
            vec![MissReason::OtherVersion]
        );
    }

    #[test]
    fn names_changed_env_and_command() {
        let a = exec("make", &["A=1", "B=2"]);
        let b = exec("make", &["A=1", "B=3", "C=4"]);
        assert_eq!(
            explain(&rec(&a), &b, false),
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
            explain(&rec(&a), &c, false),
            vec![MissReason::Command {
                old: "/bin/sh -c make".into(),
                new: "/bin/sh -c make all".into()
            }]
        );
        assert_eq!(
            explain(&Recorded::None, &c, false),
            vec![MissReason::FirstRun]
        );
        assert_eq!(explain(&rec(&a), &a, false), vec![MissReason::ResultGone]);
        assert_eq!(explain(&rec(&a), &c, true), vec![MissReason::NoCache]);
    }

    #[test]
    fn names_changed_hosts_ulimits_and_shm_size() {
        let a = exec("make", &[]);
        let mut b = exec("make", &[]);
        if let Op::Exec(e) = &mut b.op {
            e.meta.extra_hosts = vec!["db:10.0.0.2".parse().expect("host")];
            e.meta.ulimits = vec!["nofile=512".parse().expect("ulimit")];
            e.meta.shm_size = Some(1 << 27);
        }
        b.key = Some(Digest::of(b"other"));
        let setting = |what: &str, old: &str, new: &str| MissReason::Setting {
            what: what.into(),
            old: old.into(),
            new: new.into(),
        };
        assert_eq!(
            explain(&rec(&a), &b, false),
            vec![
                setting("extra hosts (--add-host)", "none", "db=10.0.0.2"),
                setting("ulimits (--ulimit)", "none", "nofile=512:512"),
                setting("/dev/shm size (--shm-size)", "default", "134217728"),
            ]
        );
    }

    #[test]
    fn commands_that_are_not_utf8_show_replacement_characters() {
        let a = exec("make", &[]);
        let mut b = exec("make", &[]);
        let raw = rbuild_types::ByteString::from(b"echo \xff".to_vec());
        b.op = exec_op(vec!["/bin/sh".into(), "-c".into(), raw], &[]);
        b.key = Some(Digest::of(b"other"));
        assert_eq!(
            explain(&rec(&a), &b, false),
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
        let why = explain(&rec(&step(git("aaa"))), &step(git("bbb")), false);
        assert_eq!(why[0].to_string(), "git git://h/r main moved: aaa → bbb");
        let dl = |d: &[u8], m: &str| RemoteInputs::Download {
            url: "http://h/f".into(),
            digest: Digest::of(d),
            last_modified: Some(m.into()),
        };
        let why = explain(&rec(&step(dl(b"1", "M"))), &step(dl(b"2", "M")), false);
        let want = format!(
            "download http://h/f changed: {} → {}",
            Digest::of(b"1"),
            Digest::of(b"2")
        );
        assert_eq!(why[0].to_string(), want);
        let why = explain(&rec(&step(dl(b"1", "M"))), &step(dl(b"1", "N")), false);
        assert_eq!(
            why[0].to_string(),
            "download http://h/f changed: Last-Modified M → Last-Modified N"
        );
        // A record of this version without the field (a step that is not remote) parses.
        let plain = br#"{"version":2,"key":null,"name":"n","op":"Scratch","image":null,"inputs":[],"copies":[]}"#;
        assert!(matches!(Recorded::parse(Some(plain)), Recorded::Step(s) if s.remote.is_none()));
    }

    #[test]
    fn input_change_is_named_only_without_own_change() {
        let mut a = exec("make", &[]);
        a.inputs = vec![("[1/3] FROM busybox".into(), Some(Digest::of(b"1")))];
        let mut b = a.clone();
        b.key = Some(Digest::of(b"other"));
        b.inputs[0].1 = Some(Digest::of(b"2"));
        assert_eq!(
            explain(&rec(&a), &b, false),
            vec![MissReason::Input {
                step: "[1/3] FROM busybox".into()
            }]
        );
    }
}
