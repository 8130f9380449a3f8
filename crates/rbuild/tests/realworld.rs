//! Differential test against BuildKit on real-world Dockerfiles (`testdata/realworld/`): builds
//! every `offline` case with the real rbuild and compares the image's normal form with what
//! BuildKit built from the same case, as recorded in the case (`buildkit.txt`, masked by
//! `noise.txt`, with the lines of `newer-frontend.txt` where today's Dockerfile frontend writes
//! something else than the recording BuildKit). Prints `realworld: N passed, N failed` and fails
//! on any difference.
//!
//! The normal form is the one `scripts/realworld.py` writes (testdata/realworld/README.md); it is
//! implemented again here so that CI needs no Python. When python3 is installed the test also
//! checks that both implementations print the same normal form for every image it built.
//!
//! Needs root (RUN) and the anchor registry on 127.0.0.1:5000 (`../shared/bench/setup.sh`), which
//! serves the base images the BuildKit results were recorded on (busybox, debian:bookworm-slim):
//! required where `../shared` exists, a loud skip in a clone without it (as the corpora).

mod support;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use rbuild_types::Hasher;
use serde_json::Value;
use support::{is_root, require, Env};

const REGISTRY: &str = "127.0.0.1:5000";
/// Context files get this mtime (and modes 0644/0755, directories 0755) before the build, as the
/// harness gives them: the recorded form must not depend on the checkout.
const CONTEXT_MTIME: i64 = 1_577_836_800;
const FORM_VERSION: &str = "# realworld normal form v1";
const CONFIG_FIELDS: [&str; 12] = [
    "User",
    "Env",
    "Cmd",
    "Entrypoint",
    "WorkingDir",
    "ExposedPorts",
    "Volumes",
    "Labels",
    "Healthcheck",
    "StopSignal",
    "Shell",
    "OnBuild",
];
const SHADOW_FILES: [&[u8]; 2] = [b"/etc/shadow", b"/etc/shadow-"];

fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/realworld")
}

// ---------------------------------------------------------------------------------------------
// Text encoding (the same as scripts/realworld.py)

/// Percent-encodes bytes outside printable ASCII, and space, '%' and '='.
fn pct(raw: &[u8]) -> String {
    let mut out = String::new();
    for &b in raw {
        if (0x21..=0x7e).contains(&b) && b != b'%' && b != b'=' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn js(v: &Value) -> String {
    serde_json::to_string(v).expect("json")
}

fn sha16(bytes: &[u8]) -> String {
    let mut h = Hasher::new();
    h.update(bytes);
    h.finish().hex()[..16].to_string()
}

// ---------------------------------------------------------------------------------------------
// The registry: a base image's diff_ids and history length

fn http_get(path: &str, accept: Option<&str>) -> Vec<u8> {
    let mut s = TcpStream::connect(REGISTRY).expect("connect to the registry");
    s.set_read_timeout(Some(Duration::from_secs(60))).ok();
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: {REGISTRY}\r\nConnection: close\r\n");
    if let Some(a) = accept {
        req.push_str(&format!("Accept: {a}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).expect("send");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("HTTP header");
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let body = &raw[split + 4..];
    assert!(
        head.starts_with("http/1.1 200") || head.starts_with("http/1.0 200"),
        "GET {path}: {}",
        head.lines().next().unwrap_or("")
    );
    if head.contains("transfer-encoding: chunked") {
        let mut out = Vec::new();
        let mut rest = body;
        loop {
            let eol = rest.windows(2).position(|w| w == b"\r\n").expect("chunk");
            let size = usize::from_str_radix(
                String::from_utf8_lossy(&rest[..eol])
                    .split(';')
                    .next()
                    .unwrap_or("")
                    .trim(),
                16,
            )
            .expect("chunk size");
            if size == 0 {
                return out;
            }
            out.extend_from_slice(&rest[eol + 2..eol + 2 + size]);
            rest = &rest[eol + 4 + size..];
        }
    }
    body.to_vec()
}

const MANIFEST_TYPES: &str = "application/vnd.docker.distribution.manifest.v2+json, \
    application/vnd.oci.image.manifest.v1+json, \
    application/vnd.docker.distribution.manifest.list.v2+json, \
    application/vnd.oci.image.index.v1+json";

fn base_info(base: &str) -> (Vec<String>, usize) {
    if base == "scratch" {
        return (Vec::new(), 0);
    }
    let (name, tag) = base.split_once(':').unwrap_or((base, "latest"));
    let name = if name.contains('/') {
        name.to_string()
    } else {
        format!("library/{name}")
    };
    let get = |r: &str| -> Value {
        serde_json::from_slice(&http_get(
            &format!("/v2/{name}/manifests/{r}"),
            Some(MANIFEST_TYPES),
        ))
        .expect("manifest json")
    };
    let mut manifest = get(tag);
    if let Some(list) = manifest["manifests"].as_array() {
        let digest = list
            .iter()
            .find(|m| m["platform"]["os"] == "linux" && m["platform"]["architecture"] == "amd64")
            .and_then(|m| m["digest"].as_str())
            .expect("a linux/amd64 image in the index")
            .to_string();
        manifest = get(&digest);
    }
    let digest = manifest["config"]["digest"]
        .as_str()
        .expect("config digest");
    let config: Value =
        serde_json::from_slice(&http_get(&format!("/v2/{name}/blobs/{digest}"), None))
            .expect("config json");
    let ids = config["rootfs"]["diff_ids"]
        .as_array()
        .expect("diff_ids")
        .iter()
        .map(|v| v.as_str().expect("diff_id").to_string())
        .collect();
    let hist = config["history"].as_array().map_or(0, Vec::len);
    (ids, hist)
}

fn registry_up() -> bool {
    let Ok(mut s) =
        TcpStream::connect_timeout(&REGISTRY.parse().expect("addr"), Duration::from_secs(2))
    else {
        return false;
    };
    s.set_read_timeout(Some(Duration::from_secs(5))).ok();
    if s.write_all(b"GET /v2/ HTTP/1.0\r\nHost: 127.0.0.1:5000\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).unwrap_or(0);
    String::from_utf8_lossy(&buf[..n]).contains(" 200 ")
}

// ---------------------------------------------------------------------------------------------
// Docker archive -> root filesystem model

#[derive(Clone, PartialEq)]
struct Entry {
    kind: &'static str,
    mode: u32,
    uid: u64,
    gid: u64,
    size: u64,
    sha: String,
    target: Vec<u8>,
    dev: String,
    mtime: i64,
    xattrs: BTreeMap<Vec<u8>, String>,
}

impl Entry {
    fn dir_default() -> Entry {
        Entry {
            kind: "dir",
            mode: 0o755,
            uid: 0,
            gid: 0,
            size: 0,
            sha: String::new(),
            target: Vec::new(),
            dev: String::new(),
            mtime: 0,
            xattrs: BTreeMap::new(),
        }
    }

    fn fields(&self) -> Vec<(String, String)> {
        let mut out = vec![("type".to_string(), self.kind.to_string())];
        if self.kind != "symlink" {
            out.push(("mode".into(), format!("{:04o}", self.mode)));
        }
        out.push(("uid".into(), self.uid.to_string()));
        out.push(("gid".into(), self.gid.to_string()));
        if self.kind == "file" {
            out.push(("size".into(), self.size.to_string()));
            out.push(("sha256".into(), self.sha.clone()));
        }
        if self.kind == "symlink" || self.kind == "hardlink" {
            out.push(("target".into(), pct(&self.target)));
        }
        if self.kind == "char" || self.kind == "block" {
            out.push(("dev".into(), self.dev.clone()));
        }
        out.push(("mtime".into(), self.mtime.to_string()));
        if !self.xattrs.is_empty() {
            let x: Vec<String> = self
                .xattrs
                .iter()
                .map(|(k, v)| format!("{}:{v}", pct(k)))
                .collect();
            out.push(("xattrs".into(), x.join(",")));
        }
        out
    }
}

/// A layer path as an absolute, normalized rootfs path (`/` for the root).
fn clean(name: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for part in name.split(|&b| b == b'/') {
        if part.is_empty() || part == b"." {
            continue;
        }
        out.push(b'/');
        out.extend_from_slice(part);
    }
    if out.is_empty() {
        out.push(b'/');
    }
    out
}

fn parent(path: &[u8]) -> Vec<u8> {
    match path.iter().rposition(|&b| b == b'/') {
        Some(0) | None => b"/".to_vec(),
        Some(i) => path[..i].to_vec(),
    }
}

fn child(dir: &[u8], name: &[u8]) -> Vec<u8> {
    let mut out = if dir == b"/" {
        Vec::new()
    } else {
        dir.to_vec()
    };
    out.push(b'/');
    out.extend_from_slice(name);
    out
}

fn under(path: &[u8], dir: &[u8]) -> bool {
    if dir == b"/" {
        return path != b"/";
    }
    path.len() > dir.len() && path.starts_with(dir) && path[dir.len()] == b'/'
}

fn basename(path: &[u8]) -> &[u8] {
    match path.iter().rposition(|&b| b == b'/') {
        Some(i) => &path[i + 1..],
        None => path,
    }
}

/// Entries are stored once in `store`; hard links are two paths naming one index.
#[derive(Clone, Default)]
struct Rootfs {
    store: Vec<Entry>,
    paths: BTreeMap<Vec<u8>, usize>,
}

impl Rootfs {
    fn remove_tree(&mut self, path: &[u8]) {
        self.paths.remove(path);
        let doomed: Vec<Vec<u8>> = self
            .paths
            .keys()
            .filter(|p| under(p, path))
            .cloned()
            .collect();
        for p in doomed {
            self.paths.remove(&p);
        }
    }

    fn is_dir(&self, path: &[u8]) -> bool {
        self.paths
            .get(path)
            .is_some_and(|&i| self.store[i].kind == "dir")
    }

    fn ensure_parents(&mut self, path: &[u8]) {
        let mut chain = Vec::new();
        let mut p = parent(path);
        while p != b"/" && !self.is_dir(&p) {
            chain.push(p.clone());
            p = parent(&p);
        }
        for p in chain.into_iter().rev() {
            self.remove_tree(&p);
            self.store.push(Entry::dir_default());
            self.paths.insert(p, self.store.len() - 1);
        }
    }

    fn apply(&mut self, layer: &[u8]) {
        let reader: Box<dyn Read + '_> = if layer.starts_with(&[0x1f, 0x8b]) {
            Box::new(flate2::read::GzDecoder::new(layer))
        } else {
            Box::new(layer)
        };
        let mut archive = tar::Archive::new(reader);
        let mut added: BTreeSet<Vec<u8>> = BTreeSet::new();
        for entry in archive.entries().expect("layer tar") {
            let mut entry = entry.expect("layer entry");
            let etype = entry.header().entry_type();
            if etype.is_pax_global_extensions() {
                continue;
            }
            let path = clean(&entry.path_bytes());
            let name = basename(&path).to_vec();
            if name == b".wh..wh..opq" {
                let dir = parent(&path);
                let doomed: Vec<Vec<u8>> = self
                    .paths
                    .keys()
                    .filter(|p| under(p, &dir) && !added.contains(*p))
                    .cloned()
                    .collect();
                for p in doomed {
                    self.paths.remove(&p);
                }
                continue;
            }
            if let Some(hidden) = name.strip_prefix(b".wh.") {
                self.remove_tree(&child(&parent(&path), hidden));
                continue;
            }
            let mut pax: HashMap<String, Vec<u8>> = HashMap::new();
            if let Ok(Some(exts)) = entry.pax_extensions() {
                for ext in exts.flatten() {
                    if let Ok(k) = ext.key() {
                        pax.insert(k.to_string(), ext.value_bytes().to_vec());
                    }
                }
            }
            let h = entry.header();
            let num = |key: &str, fallback: u64| -> u64 {
                pax.get(key)
                    .and_then(|v| std::str::from_utf8(v).ok()?.parse().ok())
                    .unwrap_or(fallback)
            };
            let mtime = match pax.get("mtime") {
                Some(v) => String::from_utf8_lossy(v)
                    .parse::<f64>()
                    .expect("pax mtime")
                    .floor() as i64,
                None => h.mtime().expect("mtime") as i64,
            };
            let mut e = Entry {
                kind: "other",
                mode: h.mode().expect("mode") & 0o7777,
                uid: num("uid", h.uid().expect("uid")),
                gid: num("gid", h.gid().expect("gid")),
                size: 0,
                sha: String::new(),
                target: Vec::new(),
                dev: String::new(),
                mtime,
                xattrs: BTreeMap::new(),
            };
            for (k, v) in &pax {
                if let Some(x) = k.strip_prefix("SCHILY.xattr.") {
                    e.xattrs.insert(x.as_bytes().to_vec(), sha16(v));
                }
            }
            let link_name = entry
                .link_name_bytes()
                .map(|l| l.into_owned())
                .unwrap_or_default();
            let index = if etype.is_hard_link() {
                match self.paths.get(&clean(&link_name)) {
                    Some(&i) if self.store[i].kind == "file" => Some(i),
                    _ => {
                        e.kind = "hardlink";
                        e.target = link_name;
                        None
                    }
                }
            } else {
                match etype {
                    tar::EntryType::Regular | tar::EntryType::Continuous => {
                        e.kind = "file";
                        let mut hasher = Hasher::new();
                        let mut buf = vec![0u8; 1 << 20];
                        if SHADOW_FILES.contains(&path.as_slice()) {
                            let mut data = Vec::new();
                            entry.read_to_end(&mut data).expect("read");
                            e.size = data.len() as u64;
                            let lines: Vec<Vec<u8>> = data
                                .split(|&b| b == b'\n')
                                .map(|line| {
                                    let mut f: Vec<&[u8]> = line.split(|&b| b == b':').collect();
                                    if f.len() > 2 {
                                        f[2] = b"";
                                    }
                                    f.join(&b':')
                                })
                                .collect();
                            hasher.update(&lines.join(&b'\n'));
                        } else {
                            loop {
                                let n = entry.read(&mut buf).expect("read");
                                if n == 0 {
                                    break;
                                }
                                e.size += n as u64;
                                hasher.update(&buf[..n]);
                            }
                        }
                        e.sha = hasher.finish().hex()[..16].to_string();
                    }
                    tar::EntryType::Directory => e.kind = "dir",
                    tar::EntryType::Symlink => {
                        e.kind = "symlink";
                        e.target = link_name;
                    }
                    tar::EntryType::Char | tar::EntryType::Block => {
                        e.kind = if etype == tar::EntryType::Char {
                            "char"
                        } else {
                            "block"
                        };
                        let h = entry.header();
                        e.dev = format!(
                            "{},{}",
                            h.device_major().ok().flatten().unwrap_or(0),
                            h.device_minor().ok().flatten().unwrap_or(0)
                        );
                    }
                    tar::EntryType::Fifo => e.kind = "fifo",
                    _ => {}
                }
                None
            };
            let index = index.unwrap_or_else(|| {
                self.store.push(e.clone());
                self.store.len() - 1
            });
            let kind = self.store[index].kind;
            if path == b"/" {
                if kind == "dir" {
                    self.paths.insert(path, index);
                }
                continue;
            }
            let replaces = self
                .paths
                .get(&path)
                .is_some_and(|&old| !(self.store[old].kind == "dir" && kind == "dir"));
            if replaces {
                self.remove_tree(&path);
            }
            self.ensure_parents(&path);
            self.paths.insert(path.clone(), index);
            added.insert(path);
        }
    }

    /// path -> fields, hard-link groups as `links=<the group's smallest path>`.
    fn snapshot(&self) -> BTreeMap<Vec<u8>, Vec<(String, String)>> {
        let mut groups: HashMap<usize, Vec<&Vec<u8>>> = HashMap::new();
        for (p, &i) in &self.paths {
            groups.entry(i).or_default().push(p);
        }
        self.paths
            .iter()
            .map(|(p, &i)| {
                let mut fields = self.store[i].fields();
                let members = &groups[&i];
                if members.len() > 1 {
                    let first = members.iter().min().expect("member");
                    fields.push(("links".into(), pct(first)));
                }
                (p.clone(), fields)
            })
            .collect()
    }
}

fn empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        Value::String(s) => s.is_empty(),
        _ => false,
    }
}

/// The normal form of the one image in a docker archive, relative to `base`. `bases` keeps each
/// base's root filesystem, so that its layers are read once per test, not once per case.
fn normal_form(archive: &Path, base: &str, bases: &mut HashMap<String, Rootfs>) -> Vec<String> {
    let mut members: HashMap<String, Vec<u8>> = HashMap::new();
    let file = std::fs::File::open(archive).expect("open the image archive");
    let mut outer = tar::Archive::new(file);
    for entry in outer.entries().expect("archive") {
        let mut entry = entry.expect("archive entry");
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let name = name.trim_start_matches("./").to_string();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).expect("read archive member");
        members.insert(name, data);
    }
    let manifest: Value = serde_json::from_slice(&members["manifest.json"]).expect("manifest.json");
    let m = &manifest.as_array().expect("manifest list")[0];
    let config: Value =
        serde_json::from_slice(&members[m["Config"].as_str().expect("Config")]).expect("config");
    let layers: Vec<&str> = m["Layers"]
        .as_array()
        .expect("Layers")
        .iter()
        .map(|l| l.as_str().expect("layer"))
        .collect();
    let (base_ids, base_hist) = base_info(base);
    let diff_ids: Vec<String> = config["rootfs"]["diff_ids"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|v| v.as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default();
    assert!(
        diff_ids.len() >= base_ids.len() && diff_ids[..base_ids.len()] == base_ids[..],
        "{}: not built on {base}",
        archive.display()
    );
    assert_eq!(diff_ids.len(), layers.len(), "layers and diff_ids");
    let nbase = base_ids.len();

    let mut lines = vec![FORM_VERSION.to_string()];
    let c = &config["config"];
    for name in CONFIG_FIELDS {
        let mut v = c.get(name).cloned().unwrap_or(Value::Null);
        if name == "ExposedPorts" || name == "Volumes" {
            if let Value::Object(o) = &v {
                v = Value::Array(o.keys().map(|k| Value::String(k.clone())).collect());
            }
        }
        lines.push(format!(
            "config {name} {}",
            if empty(&v) { "-".to_string() } else { js(&v) }
        ));
    }
    let author = config.get("author").cloned().unwrap_or(Value::Null);
    lines.push(format!(
        "config author {}",
        if empty(&author) {
            "-".to_string()
        } else {
            js(&author)
        }
    ));
    let history = config["history"].as_array().cloned().unwrap_or_default();
    for (i, h) in history.iter().skip(base_hist).enumerate() {
        let kind = if h["empty_layer"].as_bool() == Some(true) {
            "empty"
        } else {
            "layer"
        };
        let s = |k: &str| Value::String(h[k].as_str().unwrap_or("").to_string());
        lines.push(format!(
            "history {i} {kind} {} {}",
            js(&s("comment")),
            js(&s("created_by"))
        ));
    }
    lines.push(format!("layers {}", layers.len() - nbase));

    let key = base_ids.join(",");
    let mut fs = match bases.get(&key) {
        Some(fs) => fs.clone(),
        None => {
            let mut fs = Rootfs::default();
            for l in &layers[..nbase] {
                fs.apply(&members[*l]);
            }
            bases.insert(key, fs.clone());
            fs
        }
    };
    let before = fs.snapshot();
    for l in &layers[nbase..] {
        fs.apply(&members[*l]);
    }
    let after = fs.snapshot();
    let all: BTreeSet<&Vec<u8>> = after.keys().chain(before.keys()).collect();
    for p in all {
        let Some(fields) = after.get(p) else {
            lines.push(format!("fs {} deleted", pct(p)));
            continue;
        };
        let was = before.get(p);
        if was == Some(fields) {
            continue;
        }
        let mut fields = fields.clone();
        if let Some(was) = was {
            if was[0] == fields[0] {
                let old: HashMap<&String, &String> = was.iter().map(|(k, v)| (k, v)).collect();
                for (k, v) in fields.iter_mut().skip(1) {
                    if old.get(k) == Some(&&*v) {
                        *v = "base".into();
                    }
                }
            }
        }
        let mut line = format!("fs {} {}", pct(p), fields[0].1);
        for (k, v) in &fields[1..] {
            line.push_str(&format!(" {k}={v}"));
        }
        lines.push(line);
    }
    lines
}

// ---------------------------------------------------------------------------------------------
// Noise, overrides, comparison

/// The key of a normal-form line (`fs <path>`, `config <name>`, `history <i>`, `layers`).
fn key_of(line: &str) -> Option<String> {
    if line.starts_with('#') || line.is_empty() {
        return None;
    }
    let tok: Vec<&str> = line.split(' ').collect();
    Some(match tok[0] {
        "fs" | "config" | "history" => format!("{} {}", tok[0], tok.get(1).unwrap_or(&"")),
        other => other.to_string(),
    })
}

fn read_lines(path: &Path) -> Vec<String> {
    match std::fs::read_to_string(path) {
        Ok(text) => text
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .map(str::to_string)
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// The lines with noisy fields replaced by `~` and noisy entries dropped.
/// Whether an `fs` line changes its base entry only in noisy fields: every field is either
/// the base's (`base`) or masked (`~`). Such an entry is not a change (a directory whose mtime
/// alone differs, where two BuildKit builds differ in that mtime too).
fn noise_only(tok: &[String]) -> bool {
    let fields = &tok[3..];
    tok[2] != "~"
        && !fields.is_empty()
        && fields
            .iter()
            .all(|f| f.ends_with("=base") || f.ends_with("=~"))
        && fields.iter().any(|f| f.ends_with("=~"))
}

fn mask(lines: &[String], noise: &[String]) -> Vec<String> {
    let mut drop = BTreeSet::new();
    let mut fields: HashMap<String, BTreeSet<String>> = HashMap::new();
    // `fs <dir>/** <field>`: the field is noisy for every entry under <dir>.
    let mut subtrees: Vec<(String, String)> = Vec::new();
    for n in noise {
        let (key, field) = n.rsplit_once(' ').expect("noise line");
        if let Some(dir) = key.strip_prefix("fs ").and_then(|k| k.strip_suffix("/**")) {
            subtrees.push((format!("{dir}/"), field.to_string()));
        } else if field == "*" {
            drop.insert(key.to_string());
        } else {
            fields
                .entry(key.to_string())
                .or_default()
                .insert(field.to_string());
        }
    }
    let mut out = Vec::new();
    for line in lines {
        let Some(key) = key_of(line) else {
            out.push(line.clone());
            continue;
        };
        if drop.contains(&key) {
            continue;
        }
        let mut masked = fields.get(&key).cloned().unwrap_or_default();
        let mut dropped = false;
        if let Some(path) = key.strip_prefix("fs ") {
            for (prefix, field) in &subtrees {
                if path.starts_with(prefix.as_str()) {
                    if field == "*" {
                        dropped = true;
                    }
                    masked.insert(field.clone());
                }
            }
        }
        if dropped {
            continue;
        }
        if masked.is_empty() {
            out.push(line.clone());
            continue;
        }
        let mut tok: Vec<String> = line.split(' ').map(str::to_string).collect();
        if tok[0] == "fs" {
            if masked.contains("type") {
                tok[2] = "~".into();
            }
            for t in tok.iter_mut().skip(3) {
                let k = t.split('=').next().unwrap_or("").to_string();
                if masked.contains(&k) {
                    *t = format!("{k}=~");
                }
            }
            if noise_only(&tok) {
                continue;
            }
            out.push(tok.join(" "));
        } else if tok[0] == "config" || tok[0] == "history" {
            out.push(format!("{} {} ~", tok[0], tok[1]));
        } else {
            out.push(format!("{} ~", tok[0]));
        }
    }
    out
}

fn apply_overrides(lines: Vec<String>, overrides: &[String]) -> Vec<String> {
    let by_key: HashMap<String, &String> = overrides
        .iter()
        .filter_map(|l| key_of(l).map(|k| (k, l)))
        .collect();
    lines
        .into_iter()
        .map(|l| match key_of(&l).and_then(|k| by_key.get(&k)) {
            Some(o) => (*o).clone(),
            None => l,
        })
        .collect()
}

/// A readable difference between two masked forms (empty when equal).
fn diff(expected: &[String], actual: &[String]) -> Vec<String> {
    let keyed = |lines: &[String]| -> BTreeMap<String, String> {
        lines
            .iter()
            .filter_map(|l| key_of(l).map(|k| (k, l.clone())))
            .collect()
    };
    let (e, a) = (keyed(expected), keyed(actual));
    let mut out = Vec::new();
    if expected.first() != actual.first() {
        out.push(format!(
            "  normal form version: {:?} vs {:?}",
            expected.first(),
            actual.first()
        ));
    }
    let keys: BTreeSet<&String> = e.keys().chain(a.keys()).collect();
    for k in keys {
        match (e.get(k), a.get(k)) {
            (Some(x), Some(y)) if x == y => {}
            (Some(x), Some(y)) => out.push(format!("  {k}:\n    BuildKit: {x}\n    rbuild:   {y}")),
            (Some(x), None) => out.push(format!("  only BuildKit: {x}")),
            (None, Some(y)) => out.push(format!("  only rbuild:   {y}")),
            (None, None) => {}
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Cases

struct Case {
    name: String,
    dir: PathBuf,
    base: String,
    dockerfile: String,
    build_args: Vec<(String, String)>,
    target: Option<String>,
}

fn offline_cases() -> Vec<Case> {
    let mut out = Vec::new();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(cases_dir())
        .expect("testdata/realworld")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.join("case.toml").exists())
        .collect();
    dirs.sort();
    for dir in dirs {
        let meta: toml::Table = std::fs::read_to_string(dir.join("case.toml"))
            .expect("case.toml")
            .parse()
            .expect("case.toml is TOML");
        if meta["kind"].as_str() != Some("offline") {
            continue;
        }
        let s = |k: &str| meta.get(k).and_then(|v| v.as_str()).map(str::to_string);
        let build_args = meta
            .get("build_args")
            .and_then(|v| v.as_table())
            .map(|t| {
                t.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().expect("build arg").to_string()))
                    .collect()
            })
            .unwrap_or_default();
        out.push(Case {
            name: dir
                .file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned(),
            base: s("base").expect("base"),
            dockerfile: s("dockerfile").unwrap_or_else(|| "Dockerfile".into()),
            target: s("target"),
            build_args,
            dir,
        });
    }
    out
}

fn set_mtime(path: &Path) {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).expect("path");
    let t = libc::timespec {
        tv_sec: CONTEXT_MTIME as libc::time_t,
        tv_nsec: 0,
    };
    let times = [t, t];
    // SAFETY: a valid NUL-terminated path and two initialized timespecs.
    let rc = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    assert_eq!(rc, 0, "utimensat {}", path.display());
}

/// Copies `src` to `dst` with the harness's fixed modes and mtimes.
fn copy_context(src: &Path, dst: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dst).expect("mkdir");
    if src.is_dir() {
        let mut entries: Vec<_> = std::fs::read_dir(src)
            .expect("read context")
            .map(|e| e.expect("entry"))
            .collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let (from, to) = (e.path(), dst.join(e.file_name()));
            let meta = std::fs::symlink_metadata(&from).expect("stat");
            if meta.file_type().is_symlink() {
                std::os::unix::fs::symlink(std::fs::read_link(&from).expect("readlink"), &to)
                    .expect("symlink");
            } else if meta.is_dir() {
                copy_context(&from, &to);
            } else {
                std::fs::copy(&from, &to).expect("copy");
                let exec = meta.permissions().mode() & 0o100 != 0;
                let mode = if exec { 0o755 } else { 0o644 };
                std::fs::set_permissions(&to, std::fs::Permissions::from_mode(mode))
                    .expect("chmod");
                set_mtime(&to);
            }
            if meta.file_type().is_symlink() {
                set_mtime(&to);
            }
        }
    }
    std::fs::set_permissions(dst, std::fs::Permissions::from_mode(0o755)).expect("chmod dir");
    set_mtime(dst);
}

/// Builds one case; returns the image archive or rbuild's error output.
fn build(env: &Env, case: &Case) -> Result<PathBuf, String> {
    let ctx = env.path(&format!("ctx-{}", case.name));
    copy_context(&case.dir.join("context"), &ctx);
    let out = env.path(&format!("{}.tar", case.name));
    let dest = format!(
        "type=docker,dest={},name=rw-{}:latest",
        out.display(),
        case.name
    );
    let dockerfile = ctx.join(&case.dockerfile);
    let mut args: Vec<String> = vec![
        "build".into(),
        "--progress=plain".into(),
        "--network=none".into(),
        "-o".into(),
        dest,
        "-f".into(),
        dockerfile.display().to_string(),
    ];
    for (k, v) in &case.build_args {
        args.push("--build-arg".into());
        args.push(format!("{k}={v}"));
    }
    if let Some(t) = &case.target {
        args.push("--target".into());
        args.push(t.clone());
    }
    args.push(ctx.display().to_string());
    let output = env.cmd().args(&args).output().expect("run rbuild");
    if output.status.success() {
        Ok(out)
    } else {
        let err = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = err.lines().rev().take(15).collect();
        Err(tail.into_iter().rev().collect::<Vec<_>>().join("\n"))
    }
}

/// The Python harness's normal form of `image`, when python3 is installed.
fn python_form(image: &Path, base: &str) -> Option<Vec<String>> {
    rbuild_test_support::skip::tool("python3")?;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/realworld.py");
    let out = Command::new("python3")
        .arg(script)
        .arg("normalize")
        .arg(image)
        .args(["--base", base])
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "realworld.py normalize failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect(),
    )
}

#[test]
fn realworld_offline_cases_match_buildkit() {
    // The recorded BuildKit results were built on the steering side's anchor bases
    // (../shared/bench/setup.sh: busybox and debian:bookworm-slim on 127.0.0.1:5000). Where
    // ../shared exists they are required; a newcomer's clone without it skips loudly, as for
    // the conformance corpora (RBUILD_REQUIRE_CORPORA=1 makes that a failure too).
    let shared = rbuild_test_support::corpus::conformance_dir().is_some()
        || std::env::var_os(rbuild_test_support::corpus::REQUIRE_CORPORA).is_some_and(|v| v == "1");
    if !shared {
        eprintln!(
            "SKIPPED: realworld_offline_cases_match_buildkit because ../shared (the anchor \
             base images its BuildKit results were recorded on) is not beside this checkout"
        );
        return;
    }
    if !require("root (RUN needs the sandbox)", is_root())
        || !require(
            "the anchor registry on 127.0.0.1:5000 (../shared/bench/setup.sh)",
            registry_up(),
        )
    {
        return;
    }
    let env = Env::new();
    std::fs::write(
        &env.config,
        format!("[registry.\"docker.io\"]\nmirrors = [\"{REGISTRY}\"]\n[registry.\"{REGISTRY}\"]\nhttp = true\n"),
    )
    .expect("write config");
    let python = rbuild_test_support::skip::tool("python3").is_some();
    if !python {
        eprintln!("realworld: python3 not installed: the Rust and Python normal forms are not cross-checked");
    }
    let (mut passed, mut failed) = (0, Vec::new());
    let mut bases = HashMap::new();
    for case in offline_cases() {
        let recorded = case.dir.join("buildkit.txt");
        if !recorded.exists() {
            println!(
                "FAIL {}: nothing recorded (scripts/realworld.py --record)",
                case.name
            );
            failed.push(case.name.clone());
            continue;
        }
        let image = match build(&env, &case) {
            Ok(image) => image,
            Err(err) => {
                println!("FAIL {}: rbuild build failed:\n{err}", case.name);
                failed.push(case.name.clone());
                continue;
            }
        };
        let form = normal_form(&image, &case.base, &mut bases);
        if let Some(py) = python_form(&image, &case.base) {
            assert_eq!(
                py, form,
                "{}: scripts/realworld.py and this test disagree on the normal form",
                case.name
            );
        }
        let _ = std::fs::remove_file(&image);
        let noise = read_lines(&case.dir.join("noise.txt"));
        let expected: Vec<String> = std::fs::read_to_string(&recorded)
            .expect("buildkit.txt")
            .lines()
            .filter(|l| !l.starts_with("# case "))
            .map(str::to_string)
            .collect();
        // Masked when recorded; masked again in case noise.txt has grown since.
        let expected = mask(
            &apply_overrides(expected, &read_lines(&case.dir.join("newer-frontend.txt"))),
            &noise,
        );
        let d = diff(&expected, &mask(&form, &noise));
        if d.is_empty() {
            println!("PASS {}", case.name);
            passed += 1;
        } else {
            println!("FAIL {}:\n{}", case.name, d.join("\n"));
            failed.push(case.name.clone());
        }
    }
    println!("realworld: {passed} passed, {} failed", failed.len());
    assert!(
        failed.is_empty(),
        "realworld: {} of {} cases differ from BuildKit: {} (see testdata/realworld/KNOWN_GAPS.md)",
        failed.len(),
        passed + failed.len(),
        failed.join(" ")
    );
}
