#!/usr/bin/env bash
# The floor of a sandboxed `RUN true` (issue 17, item 3): the kernel work a RUN cannot avoid
# (clone into new namespaces, an overlay of a busybox lower with a fresh upper, /proc,
# pivot_root, exec of /bin/true as pid 1, wait, teardown, removal of the upper), phase by
# phase, medians of RUNS iterations per variant; and, in a table of its own, the
# feature-parity floor: everything BuildKit's spec asks runc to do for `RUN true` on a
# 21-layer image (spare network/IPC/UTS namespaces joined with setns, 21 lowers, Docker's
# /proc /dev /dev/pts /dev/shm /dev/mqueue /sys, /etc/hosts and resolv.conf, device nodes,
# masked and read-only paths, pivot, setsid, capabilities, no_new_privs, rbuild's seccomp
# filter, exec of `/bin/sh -c true`), with bare system calls. See
# crates/sandbox/benches/floor.rs and crates/sandbox/benches/parity/.
#
#   RUNS=200 benches/run_step/floor.sh
#   PARITY_SHOW=1 RUNS=1 benches/run_step/floor.sh      # first print the parity sandbox's
#                                                       # mounts, /dev, caps and seccomp mode
#   setsid sh -c 'echo -15 > /proc/$$/autogroup; exec benches/run_step/floor.sh'
#                       # at autogroup nice -15, as benches/README.md's figures (this kernel
#                       # shares CPU per session)
#
# Needs root and busybox-static. Environment: RUNS ([200]), PARITY_SHOW, FLOOR_DIR (where the
# layers, uppers and work dirs are made: [/var/tmp], a disk filesystem like rbuild's store's).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
echo "floor: $(date -u +%FT%TZ), load $(cut -d' ' -f1-3 /proc/loadavg), autogroup $(cat /proc/self/autogroup 2>/dev/null | tr -s ' ' | cut -d' ' -f2-)"
(cd "$REPO" && RUNS=${RUNS:-200} cargo bench -q -p rbuild-sandbox --bench floor)
echo "floor: done $(date -u +%FT%TZ), load $(cut -d' ' -f1-3 /proc/loadavg)"
