#!/bin/sh
# Stand-in (rbuild realworld corpus) for docker-library/memcached's entrypoint.
set -e
exec "$@"
