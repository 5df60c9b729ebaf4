#!/bin/sh
# Fill deploy/secrets/ with what docker-compose.yml mounts: random passwords and S3 keys, a fresh JWT
# key (EC P-256) and ledger signing key (Ed25519 seed). Files that exist are kept (run it again
# after adding a secret). The report certificate must come from the agency's PKI: when absent a
# self-signed one is made so the stack starts, and the script says so.
#
# Permissions: the folder is 0700 (only you on the host); the files are 0444 because each container
# reads them as its own user (postgres, custody uid 10001, SeaweedFS), through the bind mount.
set -eu
dir="$(cd "$(dirname "$0")" && pwd)/secrets"
mkdir -p "$dir" && chmod 0700 "$dir"
umask 022
new() { [ -e "$dir/$1" ] && return 1; echo "created $dir/$1"; return 0; }
random() { head -c 32 /dev/urandom | base64 | tr -d '/+=\n' | cut -c1-"$1"; }

for name in db_superuser_password db_owner_password db_app_password s3_admin_secret_key s3_app_secret_key; do
  new "$name" && random 40 > "$dir/$name"
done
new s3_admin_access_key && echo "admin$(random 12)" > "$dir/s3_admin_access_key"
new s3_app_access_key && echo "custody$(random 12)" > "$dir/s3_app_access_key"
new ledger_signing_key && head -c 32 /dev/urandom | base64 > "$dir/ledger_signing_key"
new jwt_key.pem && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$dir/jwt_key.pem" 2>/dev/null
if new report_signing_key.pem; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 365 \
    -subj "/O=custody self-signed (replace)/CN=custody reports" \
    -keyout "$dir/report_signing_key.pem" -out "$dir/report_signing_cert.pem" 2>/dev/null
  echo "WARNING: report_signing_cert.pem is self-signed; put your agency's certificate and key there" >&2
fi
new metrics_token && random 40 > "$dir/metrics_token"
# Empty until your relay and timestamp authority need passwords (an empty secret counts as unset).
for name in smtp_password tsa_password; do
  new "$name" && : > "$dir/$name"
done
chmod 0444 "$dir"/*
