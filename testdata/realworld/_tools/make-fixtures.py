#!/usr/bin/env python3
"""Writes the corpus's three binary stand-ins, deterministically (run from anywhere):

  debian-artifacts-slim/context/rootfs.tar.xz   a merged-/usr root filesystem stand-in
  apt-image-blitznote/context/rootfs.tar.xz     an Ubuntu-like one with ./-prefixed names
  mitmproxy/context/mitmproxy-0.0.1-py3-none-any.whl   a dependency-free wheel

They replace upstream artifacts that are build outputs (Debian's rootfs tarballs, mitmproxy's release
wheel). Standard library only; xz output can differ between liblzma versions, the content cannot.
"""

import base64
import hashlib
import io
import lzma
import os
import tarfile
import zipfile

CASES = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MTIME = 1700000000


def rootfs_tar(entries):
    """entries: (name, kind, mode, uid, gid, data or link target)"""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, mode, uid, gid, x in entries:
            ti = tarfile.TarInfo(name)
            ti.mode, ti.uid, ti.gid, ti.mtime = mode, uid, gid, MTIME
            ti.uname = ti.gname = ""
            if kind == "dir":
                ti.type = tarfile.DIRTYPE
                tar.addfile(ti)
            elif kind == "file":
                data = x.encode()
                ti.size = len(data)
                tar.addfile(ti, io.BytesIO(data))
            elif kind == "symlink":
                ti.type, ti.linkname = tarfile.SYMTYPE, x
                tar.addfile(ti)
            elif kind == "hardlink":
                ti.type, ti.linkname = tarfile.LNKTYPE, x
                tar.addfile(ti)
    return lzma.compress(buf.getvalue(), preset=6)


DEBIAN = [
    ("bin", "symlink", 0o777, 0, 0, "usr/bin"),
    ("dev", "dir", 0o755, 0, 0, None),
    ("etc", "dir", 0o755, 0, 0, None),
    ("etc/group", "file", 0o644, 0, 0, "root:x:0:\nshadow:x:42:\nusers:x:100:\n"),
    ("etc/os-release", "symlink", 0o777, 0, 0, "../usr/lib/os-release"),
    ("etc/passwd", "file", 0o644, 0, 0, "root:x:0:0:root:/root:/bin/bash\n"),
    ("etc/shadow", "file", 0o640, 0, 42, "root:*:19000:0:99999:7:::\n"),
    ("home", "dir", 0o755, 0, 0, None),
    ("lib", "symlink", 0o777, 0, 0, "usr/lib"),
    ("lib64", "symlink", 0o777, 0, 0, "usr/lib64"),
    ("root", "dir", 0o700, 0, 0, None),
    ("sbin", "symlink", 0o777, 0, 0, "usr/sbin"),
    ("tmp", "dir", 0o1777, 0, 0, None),
    ("usr", "dir", 0o755, 0, 0, None),
    ("usr/bin", "dir", 0o755, 0, 0, None),
    ("usr/bin/bash", "file", 0o755, 0, 0, "#!stand-in bash\n"),
    ("usr/bin/passwd", "file", 0o4755, 0, 0, "#!stand-in passwd (setuid)\n"),
    ("usr/bin/sh", "symlink", 0o777, 0, 0, "bash"),
    ("usr/bin/test", "file", 0o755, 0, 0, "#!stand-in test\n"),
    ("usr/bin/[", "hardlink", 0o755, 0, 0, "usr/bin/test"),
    ("usr/lib", "dir", 0o755, 0, 0, None),
    ("usr/lib/os-release", "file", 0o644, 0, 0, 'PRETTY_NAME="stand-in Debian rootfs"\nID=debian\n'),
    ("usr/lib64", "dir", 0o755, 0, 0, None),
    ("usr/sbin", "dir", 0o755, 0, 0, None),
    ("var", "dir", 0o755, 0, 0, None),
    ("var/mail", "dir", 0o2775, 0, 8, None),
    ("var/tmp", "dir", 0o1777, 0, 0, None),
]

LONG = "a-rather-long-directory-name-to-need-pax-or-gnu-long-names/and-a-long-file-name-below-it-as-well.txt"
UBUNTU = [
    ("./", "dir", 0o755, 0, 0, None),
    ("./bin/", "dir", 0o755, 0, 0, None),
    ("./bin/bash", "file", 0o755, 0, 0, "#!stand-in bash\n"),
    ("./bin/sh", "symlink", 0o777, 0, 0, "/bin/bash"),
    ("./etc/", "dir", 0o755, 0, 0, None),
    ("./etc/lsb-release", "file", 0o644, 0, 0, "DISTRIB_ID=Ubuntu\nDISTRIB_RELEASE=stand-in\n"),
    ("./usr/", "dir", 0o755, 0, 0, None),
    ("./usr/share/", "dir", 0o755, 0, 0, None),
    ("./usr/share/doc/", "dir", 0o755, 0, 0, None),
    ("./usr/share/doc/blitznote-stand-in/", "dir", 0o755, 0, 0, None),
    ("./usr/share/doc/blitznote-stand-in/copyright", "file", 0o644, 100, 101, "stand-in copyright file owned by 100:101\n"),
    ("./usr/share/doc/blitznote-stand-in/" + LONG, "file", 0o600, 0, 0, "long path\n"),
    ("./var/", "dir", 0o755, 0, 0, None),
    ("./var/cache/", "dir", 0o755, 0, 0, None),
    ("./var/cache/apt/", "dir", 0o700, 0, 0, None),
]


def tiny_wheel():
    files = {
        "mitmproxy/__init__.py": "# Stand-in (rbuild realworld corpus) for the mitmproxy wheel.\n__version__ = '0.0.1'\n",
        "mitmproxy-0.0.1.dist-info/METADATA": "Metadata-Version: 2.1\nName: mitmproxy\nVersion: 0.0.1\nSummary: stand-in\n",
        "mitmproxy-0.0.1.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: rbuild-corpus\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        "mitmproxy-0.0.1.dist-info/entry_points.txt": "[console_scripts]\nmitmproxy = mitmproxy:__version__\n",
    }
    buf = io.BytesIO()
    record = []
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, text in files.items():
            data = text.encode()
            zi = zipfile.ZipInfo(name, (2023, 11, 14, 22, 13, 20))
            zi.external_attr = 0o644 << 16
            z.writestr(zi, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            record.append(f"{name},sha256={digest},{len(data)}")
        record.append("mitmproxy-0.0.1.dist-info/RECORD,,")
        zi = zipfile.ZipInfo("mitmproxy-0.0.1.dist-info/RECORD", (2023, 11, 14, 22, 13, 20))
        zi.external_attr = 0o644 << 16
        z.writestr(zi, "\n".join(record) + "\n")
    return buf.getvalue()


def main():
    out = {
        "debian-artifacts-slim/context/rootfs.tar.xz": rootfs_tar(DEBIAN),
        "apt-image-blitznote/context/rootfs.tar.xz": rootfs_tar(UBUNTU),
        "mitmproxy/context/mitmproxy-0.0.1-py3-none-any.whl": tiny_wheel(),
    }
    for rel, data in out.items():
        with open(os.path.join(CASES, rel), "wb") as f:
            f.write(data)
        print(f"wrote {rel} ({len(data)} bytes)")


if __name__ == "__main__":
    main()
