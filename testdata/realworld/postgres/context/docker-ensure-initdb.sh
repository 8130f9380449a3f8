#!/usr/bin/env bash
# Stand-in (rbuild realworld corpus).
set -Eeuo pipefail
