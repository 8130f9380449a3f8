#!/bin/sh
# Stand-in (rbuild realworld corpus) for docker-library/redis' entrypoint.
set -e
exec "$@"
