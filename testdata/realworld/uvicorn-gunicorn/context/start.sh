#! /usr/bin/env sh
# Stand-in (rbuild realworld corpus).
set -e
exec gunicorn -k uvicorn.workers.UvicornWorker -c /gunicorn_conf.py app.main:app
