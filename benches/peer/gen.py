#!/usr/bin/env python3
"""Writes the build contexts of the peer benchmark (B1-B4) under $BENCH_DATA
(default /var/tmp/rbuild-peer/data). Generated data never goes into the repository.

  b1/  the multi-stage Dockerfile only
  b3/  Dockerfile, .dockerignore and 50,000 pseudo-random files (~490 MB); the
       .dockerignore keeps 25,001 of them plus nothing else (~280 MB)
  b4/  Dockerfile, requirements.txt and src/ (a typical small app)

The layout, counts and size mix follow ../../../shared/bench (the anchor figures were
measured on it); contents come from fixed seeds, so a rerun writes the same bytes.
A context with a `.complete` marker is left alone unless `--force` is given.
"""
import os
import random
import shutil
import sys

SCENARIOS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "scenarios")
DATA = os.environ.get("BENCH_DATA", "/var/tmp/rbuild-peer/data")
FORCE = "--force" in sys.argv[1:]


def put(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def fresh(name):
    """Returns the context dir to (re)write, or None when it is already complete."""
    ctx = os.path.join(DATA, name)
    if os.path.exists(os.path.join(ctx, ".complete")) and not FORCE:
        return None
    shutil.rmtree(ctx, ignore_errors=True)
    os.makedirs(ctx)
    shutil.copy(os.path.join(SCENARIOS, name, "Dockerfile"), ctx)
    return ctx


def finish(ctx):
    open(os.path.join(ctx, ".complete"), "w").close()


def file_size(rng):
    """85 % small (1-8 KiB), 14 % medium (8-32 KiB), 1 % large (64-512 KiB): ~9.5 KiB mean."""
    r = rng.random()
    if r < 0.85:
        return rng.randint(1 << 10, 8 << 10)
    if r < 0.99:
        return rng.randint(8 << 10, 32 << 10)
    return rng.randint(64 << 10, 512 << 10)


def b1():
    ctx = fresh("b1")
    if ctx:
        finish(ctx)


def b3():
    ctx = fresh("b3")
    if not ctx:
        return
    with open(os.path.join(SCENARIOS, "b3", "dockerignore")) as f:
        ignore = f.read()
    put(os.path.join(ctx, ".dockerignore"), (ignore + ".complete\n").encode())
    rng = random.Random(20240101)
    paths = []
    exts = ["txt", "js", "py", "json", "css", "md"]
    # kept: 25,000 sources in 100 packages x 10 modules
    for i in range(25000):
        paths.append("src/pkg%03d/mod%02d/file_%05d.%s" % (i // 250, (i // 25) % 10, i, exts[i % 6]))
    # ignored: 20,000 files under node_modules/
    for i in range(20000):
        paths.append("node_modules/dep%03d/lib/part%02d/f_%05d.js" % (i // 200, (i // 20) % 10, i))
    # ignored: 4,999 *.log files, half under logs/, half next to the sources
    for i in range(4999):
        if i % 2:
            paths.append("logs/day%02d/run_%05d.log" % (i % 30, i))
        else:
            paths.append("src/pkg%03d/debug_%05d.log" % (i % 100, i))
    total = 0
    for p in paths:
        n = file_size(rng)
        put(os.path.join(ctx, p), rng.randbytes(n))
        total += n
    # kept again by the "!logs/keep.log" exception
    put(os.path.join(ctx, "logs/keep.log"), rng.randbytes(4096))
    total += 4096
    print("b3: %d files, %.1f MB" % (len(paths) + 1, total / 1e6))
    finish(ctx)


REQUIREMENTS = """flask==3.0.3 werkzeug==3.0.3 jinja2==3.1.4 itsdangerous==2.2.0 click==8.1.7
blinker==1.8.2 markupsafe==2.1.5 requests==2.32.3 urllib3==2.2.2 idna==3.7 certifi==2024.7.4
charset-normalizer==3.3.2 sqlalchemy==2.0.31 greenlet==3.0.3 typing-extensions==4.12.2
pydantic==2.8.2 pydantic-core==2.20.1 annotated-types==0.7.0 gunicorn==22.0.0 packaging==24.1
python-dateutil==2.9.0 six==1.16.0 pyyaml==6.0.1 redis==5.0.7 celery==5.4.0 kombu==5.3.7
vine==5.1.0 amqp==5.2.0 billiard==4.2.0 tzdata==2024.1""".split()

MAIN_SH = b"""#!/bin/bash
echo "app env=$APP_ENV home=$APP_HOME user=$(id -un)"
ls /srv/app/vendor | wc -l
"""


def b4():
    ctx = fresh("b4")
    if not ctx:
        return
    body = "# pinned deps (fake install, no network)\n" + "\n".join(REQUIREMENTS) + "\n"
    put(os.path.join(ctx, "requirements.txt"), body.encode())
    put(os.path.join(ctx, "src/app/main.sh"), MAIN_SH)
    rng = random.Random(4)
    for i in range(200):
        funcs = rng.randint(5, 60)
        src = "".join("def f%d_%d(x):\n    return x * %d\n\n" % (i, j, rng.randint(1, 99)) for j in range(funcs))
        put(os.path.join(ctx, "src/app/mod%03d.py" % i), src.encode())
    finish(ctx)


if __name__ == "__main__":
    os.makedirs(DATA, exist_ok=True)
    b1()
    b4()
    b3()
    print("contexts ready under", DATA)
