#!/bin/sh
# The image's entrypoint: `custody <command>` (serve, worker, migrate, ...).
#
# PostgreSQL's password comes from a file, like every other secret: CUSTODY_DATABASE_URL names the
# host, database and role without a password, and PGPASSWORD_FILE (a Docker or Kubernetes secret)
# holds it; libpq reads PGPASSWORD. Nothing secret is written into the image or the command line.
set -eu
if [ -n "${PGPASSWORD_FILE:-}" ]; then
  if [ ! -r "$PGPASSWORD_FILE" ]; then
    echo "custody: PGPASSWORD_FILE=$PGPASSWORD_FILE cannot be read by uid $(id -u); mount the secret readable by it" >&2
    exit 1
  fi
  PGPASSWORD="$(cat "$PGPASSWORD_FILE")"
  export PGPASSWORD
  unset PGPASSWORD_FILE
fi
exec custody "$@"
