#!/bin/sh
# SeaweedFS (one process: master, volume, filer, S3) with two S3 identities built from the secrets:
#   admin    the operator's: creates the evidence bucket and its object lock (storage.setup_bucket)
#   custody  the API's and the worker's: read, write and list in the evidence bucket, nothing else
# The identities file is written to a tmpfs inside the container, never to the data volume.
# Extra arguments go to `weed server` (the test gives ports and binds to 127.0.0.1 with them).
set -eu
secrets="${SECRETS_DIR:-/run/secrets}"
config="${S3_IDENTITIES_FILE:-/tmp/s3.json}"
bucket="${EVIDENCE_BUCKET:-evidence}"
secret() { tr -d '\r\n' < "$secrets/$1"; }
umask 077
cat > "$config" <<JSON
{
  "identities": [
    {"name": "admin",
     "credentials": [{"accessKey": "$(secret s3_admin_access_key)", "secretKey": "$(secret s3_admin_secret_key)"}],
     "actions": ["Admin", "Read", "Write", "List", "Tagging"]},
    {"name": "custody",
     "credentials": [{"accessKey": "$(secret s3_app_access_key)", "secretKey": "$(secret s3_app_secret_key)"}],
     "actions": ["Read:${bucket}", "Write:${bucket}", "List:${bucket}"]}
  ]
}
JSON
exec weed server -dir="${DATA_DIR:-/data}" -ip.bind="${BIND_IP:-0.0.0.0}" -master.telemetry=false -volume.max=0 \
  -master.volumeSizeLimitMB="${VOLUME_SIZE_LIMIT_MB:-1024}" -s3 -s3.port="${S3_PORT:-8333}" -s3.config="$config" "$@"
