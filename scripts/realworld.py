#!/usr/bin/env python3
"""Differential test of rbuild against BuildKit on the real-world Dockerfile corpus.

    scripts/realworld.py [options] [CASE...]          compare (default: every case)
    scripts/realworld.py --record [CASE...]           record BuildKit's normal form and noise
    scripts/realworld.py normalize IMAGE.tar --base B  print the normal form of a docker archive
    scripts/realworld.py bases                         build and push the stand-in base images

Each case is testdata/realworld/<case>/: context/ (the build context, Dockerfile inside),
case.toml (kind, base, build args, ...), SOURCE.md, and what --record writes: buildkit.txt
(BuildKit's normal form with its noise masked) and noise.txt (what differs between two
BuildKit builds with --no-cache). See testdata/realworld/README.md for the normal form.

Python 3.11 standard library only. Run as root (docker, rbuild's sandbox).
"""

import argparse
import hashlib
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import tomllib
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CASES = os.path.join(ROOT, "testdata", "realworld")
REGISTRY = os.environ.get("RW_REGISTRY", "127.0.0.1:5000")
# Context files get this mtime (and modes 0644/0755, dirs 0755) before every build, so that
# the recorded form does not depend on when or how the repository was checked out.
CONTEXT_MTIME = 1577836800  # 2020-01-01T00:00:00Z
FORM_VERSION = "# realworld normal form v1"
NEWER = "/work/shared/bench/buildkit-newer.sh"

# The history fields, config fields and file fields the normal form keeps.
CONFIG_FIELDS = [
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
]
# /etc/shadow's third field is the day of the last password change: a rebuild on another day
# writes another number. The normal form hashes these files with that field blanked.
SHADOW_FILES = ("/etc/shadow", "/etc/shadow-")


def die(msg):
    print(f"realworld: {msg}", file=sys.stderr)
    sys.exit(2)


# ---------------------------------------------------------------------------------------------
# Text encoding shared with crates/rbuild/tests/realworld.rs


def pct(raw):
    """Percent-encodes bytes outside printable ASCII, and space, '%' and '='."""
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogateescape")
    out = []
    for b in raw:
        if 0x21 <= b <= 0x7E and b not in (0x25, 0x3D):
            out.append(chr(b))
        else:
            out.append("%{:02X}".format(b))
    return "".join(out)


def js(value):
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


# ---------------------------------------------------------------------------------------------
# Registry: the base image's diff_ids and history length


MANIFEST_TYPES = ", ".join(
    [
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.index.v1+json",
    ]
)


def registry_get(path, accept=None):
    req = urllib.request.Request(f"http://{REGISTRY}{path}")
    if accept:
        req.add_header("Accept", accept)
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.read()


def base_info(base):
    """(diff_ids, history length) of `base` ("scratch" or name[:tag]) from the local registry."""
    if base == "scratch":
        return [], 0
    name, _, tag = base.partition(":")
    tag = tag or "latest"
    if "/" not in name:
        name = "library/" + name
    manifest = json.loads(registry_get(f"/v2/{name}/manifests/{tag}", MANIFEST_TYPES))
    if "manifests" in manifest:  # an index: the linux/amd64 entry
        for m in manifest["manifests"]:
            p = m.get("platform", {})
            if p.get("os") == "linux" and p.get("architecture") == "amd64":
                manifest = json.loads(
                    registry_get(f"/v2/{name}/manifests/{m['digest']}", MANIFEST_TYPES)
                )
                break
        else:
            die(f"{base}: no linux/amd64 image in the index")
    config = json.loads(registry_get(f"/v2/{name}/blobs/{manifest['config']['digest']}"))
    return config["rootfs"]["diff_ids"], len(config.get("history") or [])


# ---------------------------------------------------------------------------------------------
# Docker archive → root filesystem model


class Entry:
    __slots__ = ("kind", "mode", "uid", "gid", "size", "sha", "target", "dev", "mtime", "xattrs")

    def fields(self):
        """(name, value) pairs in the normal form's order; the type comes first."""
        out = [("type", self.kind)]
        if self.kind != "symlink":
            out.append(("mode", "{:04o}".format(self.mode)))
        out += [("uid", str(self.uid)), ("gid", str(self.gid))]
        if self.kind == "file":
            out += [("size", str(self.size)), ("sha256", self.sha)]
        if self.kind in ("symlink", "hardlink"):
            out.append(("target", pct(self.target)))
        if self.kind in ("char", "block"):
            out.append(("dev", self.dev))
        out.append(("mtime", str(self.mtime)))
        if self.xattrs:
            out.append(("xattrs", ",".join(f"{pct(k)}:{v}" for k, v in sorted(self.xattrs.items()))))
        return out


KINDS = {
    tarfile.REGTYPE: "file",
    tarfile.AREGTYPE: "file",
    tarfile.CONTTYPE: "file",
    tarfile.DIRTYPE: "dir",
    tarfile.SYMTYPE: "symlink",
    tarfile.CHRTYPE: "char",
    tarfile.BLKTYPE: "block",
    tarfile.FIFOTYPE: "fifo",
}


def clean(name):
    """A layer path as an absolute, normalized rootfs path (b"/" for the root)."""
    if isinstance(name, str):
        name = name.encode("utf-8", "surrogateescape")
    parts = [p for p in name.split(b"/") if p not in (b"", b".")]
    return b"/" + b"/".join(parts)


def parent(path):
    return path.rsplit(b"/", 1)[0] or b"/"


def child(d, name):
    return (b"" if d == b"/" else d) + b"/" + name


def under(path, d):
    return path.startswith(d + b"/") if d != b"/" else path != b"/"


def content_sha(path, f):
    h = hashlib.sha256()
    size = 0
    if path.decode("utf-8", "surrogateescape") in SHADOW_FILES:
        data = f.read() if f else b""
        size = len(data)
        lines = []
        for line in data.split(b"\n"):
            parts = line.split(b":")
            if len(parts) > 2:
                parts[2] = b""
            lines.append(b":".join(parts))
        h.update(b"\n".join(lines))
    elif f is not None:
        while True:
            chunk = f.read(1 << 20)
            if not chunk:
                break
            size += len(chunk)
            h.update(chunk)
    return size, h.hexdigest()[:16]


class Rootfs:
    """A root filesystem as layers build it: path -> Entry. Hard links share one Entry object."""

    def __init__(self):
        self.entries = {}

    def remove_tree(self, path):
        self.entries.pop(path, None)
        for p in [p for p in self.entries if under(p, path)]:
            del self.entries[p]

    def ensure_parents(self, path):
        chain = []
        p = parent(path)
        while p != b"/" and (p not in self.entries or self.entries[p].kind != "dir"):
            chain.append(p)
            p = parent(p)
        for p in reversed(chain):
            # A missing or non-directory parent becomes a plain directory (as an overlay upper
            # directory shadows a lower non-directory).
            self.remove_tree(p)
            e = Entry()
            e.kind, e.mode, e.uid, e.gid, e.mtime = "dir", 0o755, 0, 0, 0
            e.size = e.sha = e.target = e.dev = None
            e.xattrs = {}
            self.entries[p] = e

    def apply(self, fileobj):
        """Applies one layer tar, with OCI whiteouts."""
        added = set()
        with tarfile.open(fileobj=fileobj, mode="r|*") as tar:
            for ti in tar:
                path = clean(ti.name)
                name = path.rsplit(b"/", 1)[1]
                if name == b".wh..wh..opq":
                    d = parent(path)
                    for p in [p for p in self.entries if under(p, d) and p not in added]:
                        del self.entries[p]
                    continue
                if name.startswith(b".wh."):
                    self.remove_tree(child(parent(path), name[4:]))
                    continue
                if ti.islnk():
                    target = self.entries.get(clean(ti.linkname))
                    if target is not None and target.kind == "file":
                        e = target  # one inode, two names
                    else:
                        e = self.entry(ti, path, None)
                        e.kind, e.target = "hardlink", ti.linkname
                else:
                    e = self.entry(ti, path, tar)
                if path == b"/":
                    if e.kind == "dir":
                        self.entries[path] = e
                    continue
                old = self.entries.get(path)
                if old is not None and not (old.kind == "dir" and e.kind == "dir"):
                    self.remove_tree(path)
                self.ensure_parents(path)
                self.entries[path] = e
                added.add(path)

    @staticmethod
    def entry(ti, path, tar):
        e = Entry()
        e.kind = KINDS.get(ti.type, "other")
        e.mode = ti.mode & 0o7777
        e.uid, e.gid = ti.uid, ti.gid
        e.mtime = math.floor(ti.mtime)
        e.size = e.sha = e.target = e.dev = None
        e.xattrs = {}
        for k, v in ti.pax_headers.items():
            if k.startswith("SCHILY.xattr."):
                raw = v.encode("utf-8", "surrogateescape")
                e.xattrs[k[len("SCHILY.xattr.") :]] = hashlib.sha256(raw).hexdigest()[:16]
        if tar is not None:
            if e.kind == "file":
                e.size, e.sha = content_sha(path, tar.extractfile(ti))
            elif e.kind == "symlink":
                e.target = ti.linkname
            elif e.kind in ("char", "block"):
                e.dev = f"{ti.devmajor},{ti.devminor}"
        return e

    def snapshot(self):
        """path -> [(field, value)], hard-link groups as links=<the group's smallest path>."""
        groups = {}
        for p, e in self.entries.items():
            groups.setdefault(id(e), []).append(p)
        out = {}
        for p, e in self.entries.items():
            fields = e.fields()
            members = groups[id(e)]
            if len(members) > 1:
                fields.append(("links", pct(min(members))))
            out[p] = fields
        return out


def read_archive(path):
    """(config dict, [layer member names], TarFile) of a docker archive (docker save / rbuild)."""
    outer = tarfile.open(path, "r:*")
    manifest = json.load(outer.extractfile("manifest.json"))
    if len(manifest) != 1:
        die(f"{path}: {len(manifest)} images in the archive, expected one")
    m = manifest[0]
    config = json.load(outer.extractfile(m["Config"]))
    return config, m["Layers"], outer


def empty(v):
    return v is None or v == [] or v == {} or v == ""


def normal_form(archive, base):
    """The normal form (list of lines) of the image in `archive`, relative to `base`."""
    config, layers, outer = read_archive(archive)
    base_ids, base_hist = base_info(base)
    diff_ids = (config.get("rootfs") or {}).get("diff_ids") or []
    if diff_ids[: len(base_ids)] != base_ids:
        die(f"{archive}: not built on {base} (its first layers are not {base}'s)")
    if len(diff_ids) != len(layers):
        die(f"{archive}: {len(layers)} layers but {len(diff_ids)} diff_ids")
    nbase = len(base_ids)
    lines = [FORM_VERSION]
    c = config.get("config") or {}
    for name in CONFIG_FIELDS:
        v = c.get(name)
        if name in ("ExposedPorts", "Volumes") and isinstance(v, dict):
            v = sorted(v)
        lines.append(f"config {name} {'-' if empty(v) else js(v)}")
    author = config.get("author")
    lines.append(f"config author {'-' if empty(author) else js(author)}")
    history = (config.get("history") or [])[base_hist:]
    for i, h in enumerate(history):
        kind = "empty" if h.get("empty_layer") else "layer"
        lines.append(f"history {i} {kind} {js(h.get('comment') or '')} {js(h.get('created_by') or '')}")
    lines.append(f"layers {len(layers) - nbase}")

    fs = Rootfs()
    for name in layers[:nbase]:
        fs.apply(outer.extractfile(name))
    before = fs.snapshot()
    for name in layers[nbase:]:
        fs.apply(outer.extractfile(name))
    outer.close()
    after = fs.snapshot()

    out = []
    for p in sorted(set(after) | set(before)):
        fields = after.get(p)
        was = before.get(p)
        if fields is None:
            out.append(f"fs {pct(p)} deleted")
            continue
        if was == fields:
            continue
        if was is not None and was[0] == fields[0]:
            old = dict(was)
            fields = [fields[0]] + [(k, "base" if old.get(k) == v else v) for k, v in fields[1:]]
        out.append("fs " + pct(p) + " " + fields[0][1] + "".join(f" {k}={v}" for k, v in fields[1:]))
    return lines + out


# ---------------------------------------------------------------------------------------------
# Noise: what differs between two BuildKit builds


def keyed(lines):
    """line key -> (line, {field: value}); config/history lines are one field, 'value'."""
    out = {}
    for line in lines:
        if line.startswith("#"):
            continue
        tok = line.split(" ")
        if tok[0] == "fs":
            key = "fs " + tok[1]
            fields = {"type": tok[2]}
            for t in tok[3:]:
                k, _, v = t.partition("=")
                fields[k] = v
        elif tok[0] in ("config", "history"):
            key = tok[0] + " " + tok[1]
            fields = {"value": " ".join(tok[2:])}
        else:
            key = tok[0]
            fields = {"value": " ".join(tok[1:])}
        out[key] = (line, fields)
    return out


# A directory whose whole subtree has one noisy field in both builds is written once, as
# `fs <dir>/** <field>`, when it covers at least this many entries (pip and apt trees: thousands).
SUBTREE_MIN = 16


def compress_noise(noise, keys):
    """Replaces `fs <p> <field>` lines by `fs <dir>/** <field>` where every fs entry under <dir>, in
    either build, has that field noisy. Exact: it masks nothing the two builds did not differ in."""
    fs_paths = [k[3:] for k in keys if k.startswith("fs ")]
    by_field = {}
    for n in noise:
        key, _, field = n.rpartition(" ")
        if key.startswith("fs ") and field != "*":
            by_field.setdefault(field, set()).add(key[3:])
    # Entries whose presence varies (`*`) form a subtree pattern when all of a directory's entries
    # came and went, at least two of them: names made from times or random numbers (npm's logs).
    gone = {n.rpartition(" ")[0][3:] for n in noise if n.startswith("fs ") and n.endswith(" *")}
    if gone:
        by_field["*"] = gone
    out = set(noise)
    for field, noisy in by_field.items():
        total, hit = {}, {}
        for p in fs_paths:
            d = p
            while "/" in d[1:]:
                d = d.rsplit("/", 1)[0]
                total[d] = total.get(d, 0) + 1
                if p in noisy:
                    hit[d] = hit.get(d, 0) + 1
        least = 2 if field == "*" else SUBTREE_MIN
        full = {d for d, t in total.items() if t >= least and hit.get(d) == t}
        top = {d for d in full if not any(d.startswith(o + "/") for o in full)}
        for d in top:
            for p in noisy:
                if p.startswith(d + "/"):
                    out.discard(f"fs {p} {field}")
            out.add(f"fs {d}/** {field}")
    return sorted(out, key=lambda n: (n.split(" ")[1], n))


def noise_between(a, b):
    ka, kb = keyed(a), keyed(b)
    noise = []
    for key in sorted(set(ka) | set(kb)):
        if key not in ka or key not in kb:
            noise.append(f"{key} *")
            continue
        fa, fb = ka[key][1], kb[key][1]
        if fa.get("type") != fb.get("type") or set(fa) != set(fb):
            noise.append(f"{key} *")
            continue
        for f in fa:
            if fa[f] != fb[f]:
                noise.append(f"{key} {f}")
    return compress_noise(noise, set(ka) | set(kb))


STEP_RE = re.compile(r"^#(\d+) \[[^\]]*\] (.*)$")


def cached_steps(log):
    """The step names a BuildKit plain-progress log reports as CACHED."""
    names, cached = {}, []
    with open(log, errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            m = STEP_RE.match(line)
            if m:
                names[m.group(1)] = m.group(2)
                continue
            m = re.match(r"^#(\d+) CACHED$", line)
            if m and m.group(1) in names:
                cached.append(names[m.group(1)])
    return cached


def workdir_noise(steps, forms):
    """BuildKit never applies --no-cache to WORKDIR's mkdir (dockerfile2llb dispatchWorkdir passes no
    llb.IgnoreCache, 0.8 to today), so two record builds share one old WORKDIR result and cannot show
    that its times change from build to build. A cold daemon would write new ones: the mtimes of the
    WORKDIR directory and of its ancestors (where it created or added a directory) are noise."""
    paths = set()
    for step in steps:
        if step.startswith("WORKDIR "):
            p = step[len("WORKDIR "):].strip().encode()
            while p not in (b"", b"/"):
                paths.add(pct(p.rstrip(b"/") or b"/"))
                p = p.rstrip(b"/").rsplit(b"/", 1)[0]
        elif not step.startswith("FROM "):
            print(f"realworld: warning: step {step!r} was CACHED in a --no-cache build", file=sys.stderr)
    out = []
    for form in forms:
        for key, (_, fields) in keyed(form).items():
            if key.startswith("fs ") and key[3:] in paths and fields.get("mtime") not in (None, "base"):
                out.append(f"{key} mtime")
    return sorted(set(out))


def read_noise(case_dir):
    path = os.path.join(case_dir, "noise.txt")
    if not os.path.exists(path):
        return None
    out = []
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if line and not line.startswith("#"):
                out.append(line)
    return out


def read_overrides(case_dir):
    """Lines of newer-frontend.txt: what today's Dockerfile frontend writes where 0.8/0.13 differ."""
    path = os.path.join(case_dir, "newer-frontend.txt")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [l.rstrip("\n") for l in f if l.strip() and not l.startswith("#")]


def apply_overrides(lines, overrides):
    """Replaces the lines of a BuildKit normal form that have the same key as an override line."""
    if not overrides:
        return lines
    by_key = {k: v[0] for k, v in keyed(overrides).items()}
    out = []
    for line in lines:
        k = list(keyed([line]))
        if k and k[0] in by_key:
            out.append(by_key[k[0]])
        else:
            out.append(line)
    return out


def noise_only(tok):
    """Whether an fs line changes its base entry only in noisy fields: every field is either
    the base's ('base') or masked ('~'). Such an entry is not a change (e.g. a directory whose
    mtime alone differs, where two BuildKit builds differ in that mtime too)."""
    fields = tok[3:]
    return tok[2] != "~" and bool(fields) and all(
        f.endswith("=base") or f.endswith("=~") for f in fields
    ) and any(f.endswith("=~") for f in fields)


def mask(lines, noise):
    """The lines with noisy fields replaced by '~' and noisy entries dropped."""
    drop, fields, subtrees = set(), {}, []
    for n in noise:
        key, _, field = n.rpartition(" ")
        if key.startswith("fs ") and key.endswith("/**"):
            subtrees.append((key[3:-2], field))
        elif field == "*":
            drop.add(key)
        else:
            fields.setdefault(key, set()).add(field)
    out = []
    for line in lines:
        if line.startswith("#"):
            out.append(line)
            continue
        tok = line.split(" ")
        if tok[0] in ("fs", "config", "history"):
            key = tok[0] + " " + tok[1]
        else:
            key = tok[0]
        if key in drop:
            continue
        masked = set(fields.get(key, ()))
        if tok[0] == "fs":
            for prefix, field in subtrees:
                if tok[1].startswith(prefix):
                    if field == "*":
                        masked = None
                        break
                    masked.add(field)
            if masked is None:
                continue
        if masked:
            if tok[0] == "fs":
                if "type" in masked:
                    tok[2] = "~"
                for i in range(3, len(tok)):
                    k, _, _ = tok[i].partition("=")
                    if k in masked:
                        tok[i] = k + "=~"
                if noise_only(tok):
                    continue
                line = " ".join(tok)
            elif tok[0] in ("config", "history"):
                line = " ".join(tok[:2] + ["~"])
            else:
                line = tok[0] + " ~"
        out.append(line)
    return out


def diff(expected, actual, exp_name, act_name):
    """A readable difference between two masked normal forms ('' when equal)."""
    ke, ka = keyed(expected), keyed(actual)
    order = []
    seen = set()
    for line in expected + actual:
        if line.startswith("#"):
            continue
        k = keyed([line])
        for key in k:
            if key not in seen:
                seen.add(key)
                order.append(key)
    out = []
    for key in order:
        le = ke.get(key, (None,))[0]
        la = ka.get(key, (None,))[0]
        if le == la:
            continue
        if le is None:
            out.append(f"  only {act_name}: {la}")
        elif la is None:
            out.append(f"  only {exp_name}: {le}")
        else:
            fe, fa = ke[key][1], ka[key][1]
            if key.startswith("fs "):
                parts = []
                for f in list(fe) + [f for f in fa if f not in fe]:
                    if fe.get(f) != fa.get(f):
                        parts.append(f"{f}: {fe.get(f, '(none)')} vs {fa.get(f, '(none)')}")
                out.append(f"  {key}: " + "; ".join(parts))
            else:
                out.append(f"  {key}:\n    {exp_name}: {le}\n    {act_name}: {la}")
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------
# Cases and builders


class Case:
    def __init__(self, name):
        self.name = name
        self.dir = os.path.join(CASES, name)
        with open(os.path.join(self.dir, "case.toml"), "rb") as f:
            meta = tomllib.load(f)
        self.kind = meta["kind"]
        if self.kind not in ("offline", "download"):
            die(f"{name}: kind must be offline or download")
        self.base = meta["base"]
        self.dockerfile = meta.get("dockerfile", "Dockerfile")
        self.build_args = meta.get("build_args", {})
        self.target = meta.get("target")
        # The BuildKit --record uses for this case when the default one cannot build it right here.
        self.oracle = meta.get("oracle")
        self.network = "none" if self.kind == "offline" else "host"

    def prepare(self, work, name="ctx"):
        """Copies context/ to work/<name> with fixed modes and mtimes; returns its path. BuildKit
        keeps a synced copy of a context per client path and reuses it (and its directory times)
        in the next build from that path: builds that must be independent use distinct names."""
        src = os.path.join(self.dir, "context")
        dst = os.path.join(work, name)
        if os.path.exists(dst):
            shutil.rmtree(dst)
        if os.path.isdir(src):
            shutil.copytree(src, dst, symlinks=True)
        else:
            os.makedirs(dst)
        for d, dirs, files in os.walk(dst, topdown=False):
            for n in files + dirs:
                p = os.path.join(d, n)
                if os.path.islink(p):
                    os.utime(p, (CONTEXT_MTIME, CONTEXT_MTIME), follow_symlinks=False)
                    continue
                if os.path.isdir(p):
                    os.chmod(p, 0o755)
                else:
                    os.chmod(p, 0o755 if os.stat(p).st_mode & 0o100 else 0o644)
                os.utime(p, (CONTEXT_MTIME, CONTEXT_MTIME))
        os.chmod(dst, 0o755)
        os.utime(dst, (CONTEXT_MTIME, CONTEXT_MTIME))
        return dst

    def build_flags(self, ctx):
        flags = ["--network=" + self.network, "-f", os.path.join(ctx, self.dockerfile)]
        for k, v in sorted(self.build_args.items()):
            flags += ["--build-arg", f"{k}={v}"]
        if self.target:
            flags += ["--target", self.target]
        return flags


def run(cmd, log, env=None):
    with open(log, "ab") as f:
        f.write(("$ " + " ".join(cmd) + "\n").encode())
        f.flush()
        return subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env).returncode


def tail(log, n=25):
    with open(log, "rb") as f:
        return "\n".join(f.read().decode("utf-8", "replace").splitlines()[-n:])


class BuildKit:
    def __init__(self, which):
        self.which = which
        if which == "newer":
            self.docker = [NEWER, "docker"]
            self.label = "BuildKit 0.13"
        else:
            self.docker = ["/usr/bin/docker"]
            self.label = "BuildKit 0.8"

    def build(self, case, ctx, out, log):
        tag = f"rw-{case.name}:latest"
        if os.path.exists(log):
            os.remove(log)
        env = dict(os.environ, DOCKER_BUILDKIT="1")
        cmd = self.docker + ["build", "--no-cache", "-t", tag] + case.build_flags(ctx) + [ctx]
        if run(cmd, log, env) != 0:
            return f"{self.label} build failed:\n{tail(log)}"
        rc = run(self.docker + ["save", tag, "-o", out], log, env)
        run(self.docker + ["rmi", tag], log, env)
        if rc != 0:
            return f"{self.label} save failed:\n{tail(log)}"
        return None


class Rbuild:
    label = "rbuild"

    def __init__(self, binary, root, config):
        self.binary = binary
        self.root = root
        self.config = config

    def build(self, case, ctx, out, log):
        env = dict(os.environ, RBUILD_ROOT=self.root, RBUILD_CONFIG=self.config)
        dest = f"type=docker,dest={out},name=rw-{case.name}:latest"
        cmd = [self.binary, "build", "--progress=plain", "--no-cache", "-o", dest] + case.build_flags(ctx) + [ctx]
        if run(cmd, log, env) != 0:
            return f"rbuild build failed:\n{tail(log)}"
        return None


def all_cases():
    return sorted(
        n for n in os.listdir(CASES) if os.path.exists(os.path.join(CASES, n, "case.toml"))
    )


def header(case, builder):
    return [
        f"# case {case.name} ({case.kind}), base {case.base}; recorded from {builder.label}",
    ]


def cmd_record(args, cases, work):
    failed = 0
    for case in cases:
        bk = BuildKit(case.oracle or args.buildkit)
        cw = os.path.join(work, case.name)
        os.makedirs(cw, exist_ok=True)
        log = os.path.join(cw, "build.log")
        forms = []
        for i in (1, 2):
            ctx = case.prepare(cw, f"ctx{i}")
            out = os.path.join(cw, f"bk{i}.tar")
            err = bk.build(case, ctx, out, log)
            if err:
                print(f"{case.name}: {err}")
                failed += 1
                break
            forms.append(normal_form(out, case.base))
            os.remove(out)
            if i == 1:
                # Times a build writes are seconds in the layers: the second build must start at
                # least two seconds later, or build-time mtimes could agree by chance.
                time.sleep(2)
        else:
            noise = noise_between(forms[0], forms[1])
            extra = [n for n in workdir_noise(cached_steps(log), forms) if n not in noise]
            noise = sorted(set(noise) | set(extra), key=lambda n: (n.split(" ")[1], n))
            with open(os.path.join(case.dir, "noise.txt"), "w") as f:
                f.write(
                    f"# {case.name}: what differed between two {bk.label} builds (--no-cache);\n"
                    "# the comparison masks these fields ('<key> <field>') or drops these entries ('<key> *').\n"
                )
                if extra:
                    f.write(
                        "# Also the mtimes a WORKDIR writes: BuildKit reuses WORKDIR results even with --no-cache\n"
                        "# (no llb.IgnoreCache on its mkdir), so only a cold daemon shows them change:\n"
                        "#   " + ", ".join(n.split(" ")[1] for n in extra) + "\n"
                    )
                for n in noise:
                    f.write(n + "\n")
            # Download cases depend on today's apt/PyPI/npm: their recorded form stays local
            # (buildkit.local.txt, not committed); compare them live, or soon after recording.
            name = "buildkit.txt" if case.kind == "offline" else "buildkit.local.txt"
            with open(os.path.join(case.dir, name), "w") as f:
                for line in header(case, bk) + mask(forms[0], noise):
                    f.write(line + "\n")
            print(f"{case.name}: recorded ({len(forms[0])} lines, {len(noise)} noise)")
    return failed


def build_form(builder, case, work, tag):
    cw = os.path.join(work, case.name)
    os.makedirs(cw, exist_ok=True)
    ctx = case.prepare(cw, f"ctx-{tag}")
    log = os.path.join(cw, f"{tag}.log")
    out = os.path.join(cw, f"{tag}.tar")
    err = builder.build(case, ctx, out, log)
    if err:
        return None, err
    form = normal_form(out, case.base)
    if not os.environ.get("RW_KEEP"):
        os.remove(out)
    return form, None


def cmd_compare(args, cases, work):
    if args.candidate == "rbuild":
        binary = args.rbuild or os.environ.get("RBUILD") or os.path.join(ROOT, "target", "release", "rbuild")
        store = args.store or os.path.join(work, "rbuild-store")
        config = os.path.join(work, "rbuild-config.toml")
        with open(config, "w") as f:
            f.write(f'[registry."docker.io"]\nmirrors = ["{REGISTRY}"]\n[registry."{REGISTRY}"]\nhttp = true\n')
        candidate = Rbuild(binary, store, config)
    else:
        candidate = BuildKit(args.candidate)
    reference = None if args.reference == "recorded" else BuildKit(args.reference)
    passed, failed = 0, []
    for case in cases:
        if args.offline and case.kind != "offline":
            continue
        noise = None if args.fresh_noise else read_noise(case.dir)
        if reference is None:
            path = os.path.join(case.dir, "buildkit.txt")
            if not os.path.exists(path):
                path = os.path.join(case.dir, "buildkit.local.txt")
            if not os.path.exists(path):
                print(f"SKIP {case.name}: nothing recorded (run --record)")
                continue
            with open(path) as f:
                expected = [l.rstrip("\n") for l in f if not l.startswith("# case ")]
            # Masked when recorded; masked again in case noise.txt has grown since.
            expected = mask(apply_overrides(expected, read_overrides(case.dir)), noise or [])
            ref_label = "recorded"
        else:
            form, err = build_form(reference, case, work, "reference")
            if err:
                print(f"FAIL {case.name}: reference {err}")
                failed.append(case.name)
                continue
            if noise is None:
                time.sleep(2)
                form2, err = build_form(reference, case, work, "reference2")
                if err:
                    print(f"FAIL {case.name}: reference {err}")
                    failed.append(case.name)
                    continue
                noise = noise_between(form, form2)
                log = os.path.join(work, case.name, "reference2.log")
                noise = sorted(set(noise) | set(workdir_noise(cached_steps(log), [form, form2])))
            expected = mask(apply_overrides(form, read_overrides(case.dir)), noise)
            ref_label = reference.label
        form, err = build_form(candidate, case, work, "candidate")
        if err:
            print(f"FAIL {case.name}: {err}")
            failed.append(case.name)
            continue
        if isinstance(candidate, BuildKit):
            form = apply_overrides(form, read_overrides(case.dir))
        actual = mask(form, noise or [])
        d = diff(expected, actual, ref_label, candidate.label)
        if d:
            print(f"FAIL {case.name}:\n{d}")
            failed.append(case.name)
        else:
            print(f"PASS {case.name}")
            passed += 1
    print(f"realworld: {passed} passed, {len(failed)} failed")
    if failed:
        print("failed: " + " ".join(failed))
    return 1 if failed else 0


def cmd_bases(args):
    """Builds the stand-in base images (testdata/realworld/_bases/<name>/) and pushes them."""
    bases = os.path.join(CASES, "_bases")
    env = dict(os.environ, DOCKER_BUILDKIT="1")
    extra_ca = os.environ.get("RW_EXTRA_CA")
    for name in sorted(os.listdir(bases)):
        d = os.path.join(bases, name)
        if not os.path.isdir(d):
            continue
        with open(os.path.join(d, "image")) as f:
            ref = f.read().strip()
        ca = os.path.join(d, "extra-ca", "rw-extra-ca.crt")
        if extra_ca:
            shutil.copyfile(extra_ca, ca)
        tag = f"{REGISTRY}/library/{ref}"
        print(f"building {tag}")
        try:
            if subprocess.run(["/usr/bin/docker", "build", "--network=host", "-t", tag, d], env=env).returncode:
                die(f"building {name} failed")
        finally:
            if extra_ca:
                os.remove(ca)
        if subprocess.run(["/usr/bin/docker", "push", tag], env=env).returncode:
            die(f"pushing {tag} failed")
        subprocess.run(["/usr/bin/docker", "rmi", tag], env=env, stdout=subprocess.DEVNULL)
    return 0


def main():
    argv = sys.argv[1:]
    if argv and argv[0] == "normalize":
        p = argparse.ArgumentParser(prog="realworld.py normalize")
        p.add_argument("image")
        p.add_argument("--base", required=True, help='"scratch" or an image name in the local registry')
        a = p.parse_args(argv[1:])
        for line in normal_form(a.image, a.base):
            print(line)
        return 0
    if argv and argv[0] == "bases":
        return cmd_bases(None)
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("cases", nargs="*", help="case names (default: all)")
    p.add_argument("--record", action="store_true", help="record buildkit.txt and noise.txt")
    p.add_argument(
        "--buildkit",
        choices=["newer", "docker"],
        default=os.environ.get("RW_BUILDKIT", "docker"),
        help="BuildKit for --record: docker = /usr/bin/docker (0.8), newer = buildkit-newer.sh (0.13)",
    )
    p.add_argument(
        "--reference",
        choices=["recorded", "newer", "docker"],
        default=None,
        help="what to compare against: the recorded buildkit.txt, or a live build (default: --buildkit)",
    )
    p.add_argument(
        "--candidate",
        choices=["rbuild", "newer", "docker"],
        default="rbuild",
        help="what is checked (default rbuild; a BuildKit compares the two BuildKits)",
    )
    p.add_argument("--rbuild", help="rbuild binary (default $RBUILD, else target/release/rbuild)")
    p.add_argument("--store", help="RBUILD_ROOT for rbuild (default: a fresh one under the work dir)")
    p.add_argument("--offline", action="store_true", help="only the offline cases")
    p.add_argument(
        "--fresh-noise",
        action="store_true",
        help="build the reference twice and use the noise of these two builds, not noise.txt",
    )
    p.add_argument("--work", help="work directory (default: a temporary one, removed afterwards)")
    args = p.parse_args(argv)
    if args.reference is None:
        args.reference = args.buildkit
    names = args.cases or all_cases()
    for n in names:
        if not os.path.exists(os.path.join(CASES, n, "case.toml")):
            die(f"no case {n}")
    cases = [Case(n) for n in names]
    work = args.work or tempfile.mkdtemp(prefix="realworld-")
    os.makedirs(work, exist_ok=True)
    try:
        if args.record:
            return 1 if cmd_record(args, cases, work) else 0
        return cmd_compare(args, cases, work)
    finally:
        if not args.work and not os.environ.get("RW_KEEP"):
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
