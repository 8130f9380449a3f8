#!/bin/sh
# Stand-in (rbuild realworld corpus).
exec httpd -f -p "${PORT:-8000}" -h /www
