"""`python -m storage.setup_bucket`: create the evidence bucket, once per deployment, as the S3 admin.

Why a separate step: the API and the worker hold S3 credentials that may read and write objects in
the evidence bucket and nothing else, so they can neither create it nor change its object-lock
configuration. This step runs with the administrator's identity (docker-compose's `s3-setup`
service; a job in Kubernetes) and is idempotent: it creates the bucket with object lock if missing,
enables versioning and sets the default COMPLIANCE retention to CUSTODY_EVIDENCE_RETENTION_DAYS.
It reads the usual S3 settings (CUSTODY_S3_*, secrets also from CUSTODY_S3_*_FILE where supported),
and nothing else: no database, no signing keys.

Exit 0 when the bucket is ready, 1 with the reason otherwise.
"""

from __future__ import annotations

import sys

from minio.error import S3Error

from custody.errors import ConfigurationError
from custody.settings import Settings
from storage.s3 import ensure_evidence_bucket, make_client


def main() -> int:
    settings = Settings()
    try:
        client = make_client(settings)
        ensure_evidence_bucket(
            client, bucket=settings.s3_bucket, retention_days=settings.evidence_retention_days
        )
    except (ConfigurationError, S3Error, OSError) as exc:
        print(f"evidence bucket {settings.s3_bucket!r} at {settings.s3_endpoint}: {exc}", file=sys.stderr)
        return 1
    print(
        f"evidence bucket {settings.s3_bucket!r} at {settings.s3_endpoint}: object lock, versioning, "
        f"COMPLIANCE retention {settings.evidence_retention_days} days"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
