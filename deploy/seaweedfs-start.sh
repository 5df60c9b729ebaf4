#!/bin/sh
# SeaweedFS (one process: master, volume, filer, S3) with two S3 identities built from the secrets:
#   admin    the operator's: creates the evidence bucket and its object lock (storage.setup_bucket)
#   custody  the API's and the worker's: read, write and list in the evidence bucket, nothing else
# The identities file is written to a tmpfs inside the container, never to the data volume.
set -eu
secret() { tr -d '\r\n' < "/run/secrets/$1"; }
bucket="${EVIDENCE_BUCKET:-evidence}"
umask 077
cat > /tmp/s3.json <<JSON
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
exec weed server -dir=/data -ip.bind=0.0.0.0 -master.telemetry=false -volume.max=0 \
  -master.volumeSizeLimitMB="${VOLUME_SIZE_LIMIT_MB:-1024}" -s3 -s3.port=8333 -s3.config=/tmp/s3.json
