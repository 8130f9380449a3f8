#!/bin/bash
# Stand-in (rbuild realworld corpus).
exec pre-commit hook-impl --hook-type="$(basename "$0")" -- "$@"
