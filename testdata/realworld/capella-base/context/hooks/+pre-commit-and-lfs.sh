#!/bin/bash
# Stand-in (rbuild realworld corpus).
git lfs "$(basename "$0")" "$@"
