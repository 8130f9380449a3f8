#!/usr/bin/env bash
# Stand-in (rbuild realworld corpus) for docker-library/postgres' entrypoint.
set -Eeo pipefail
exec "$@"
