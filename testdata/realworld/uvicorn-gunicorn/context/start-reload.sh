#! /usr/bin/env sh
# Stand-in (rbuild realworld corpus).
set -e
exec uvicorn --reload app.main:app
