#!/usr/bin/env python3
"""Prints one line per entry of a flattened root filesystem tar (`docker export`, rbuild's
`-o type=tar`), sorted, for diffing the outputs of two builders: path, type, permission bits,
uid:gid, then the size and SHA-256 of a file's bytes or a symlink's/hard link's target.
Mtimes are left out (builders legitimately differ there), and so are the mount points a
container runtime adds when `docker export` snapshots a container (`--skip-runtime`).

A directory export (`-o type=local`) is no substitute: BuildKit's client writes those files
as the calling user, losing the image's owners.

Usage: listing.py [--skip-runtime] ROOTFS.tar
"""
import hashlib
import stat
import sys
import tarfile

# What `docker create` + `docker export` add to any image's filesystem.
RUNTIME = {".dockerenv", "dev/console", "dev/pts", "dev/shm", "etc/hostname", "etc/hosts",
           "etc/resolv.conf", "etc/mtab", "proc", "sys", "dev"}


def describe(tar, m):
    perm = "%04o" % stat.S_IMODE(m.mode)
    owner = "%d:%d" % (m.uid, m.gid)
    if m.isdir():
        return "d %s %s" % (perm, owner)
    if m.issym():
        return "l %s %s -> %s" % (perm, owner, m.linkname)
    if m.islnk():
        # hard link: its content is the target's; which name is the "first" varies by builder
        return "h %s %s" % (perm, owner)
    if m.isfile():
        h = hashlib.sha256()
        f = tar.extractfile(m)
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
        return "f %s %s %d %s" % (perm, owner, m.size, h.hexdigest()[:16])
    kind = "c" if m.ischr() else "b" if m.isblk() else "p" if m.isfifo() else "?"
    return "%s %s %s %d:%d" % (kind, perm, owner, m.devmajor, m.devminor)


def main():
    args = sys.argv[1:]
    skip = "--skip-runtime" in args
    args = [a for a in args if a != "--skip-runtime"]
    if len(args) != 1:
        sys.exit("usage: listing.py [--skip-runtime] ROOTFS.tar")
    entries = {}
    with tarfile.open(args[0]) as tar:
        for m in tar:
            path = m.name.rstrip("/")
            while path.startswith("./") or path.startswith("/"):
                path = path[1:] if path.startswith("/") else path[2:]
            if path in (".", "") or (skip and path in RUNTIME):
                continue
            entries[path] = describe(tar, m)  # a later entry for a path wins, as on extraction
    for path in sorted(entries):
        print(path, entries[path])


if __name__ == "__main__":
    main()
