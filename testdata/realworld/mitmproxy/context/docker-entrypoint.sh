#!/bin/bash
# Stand-in (rbuild realworld corpus) for mitmproxy's entrypoint.
set -o errexit
exec gosu mitmproxy "$@"
