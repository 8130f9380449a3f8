#!/bin/bash
# Stand-in (rbuild realworld corpus).
exec /usr/bin/tini -- "$@"
