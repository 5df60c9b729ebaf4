"""The evidence bucket: versioned, with S3 object lock in COMPLIANCE mode.

Why COMPLIANCE: nobody, not even an administrator with the root credentials, can overwrite or delete
an evidence object version before its retention date. Retention comes from settings
(`CUSTODY_EVIDENCE_RETENTION_DAYS`) as the bucket's default, so every new object gets it.
"""

from __future__ import annotations

import os

import certifi
import urllib3
from minio import Minio
from minio.commonconfig import COMPLIANCE, ENABLED
from minio.error import S3Error
from minio.objectlockconfig import DAYS, ObjectLockConfig
from minio.versioningconfig import VersioningConfig

from custody.errors import ConfigurationError
from custody.settings import Settings


def make_client(settings: Settings) -> Minio:
    """A client whose every call gives up within about `s3_timeout_s` per try, three tries at most:
    a stalled store becomes a 503 for the person waiting, never a request held for minutes."""
    http = urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=min(5.0, settings.s3_timeout_s), read=settings.s3_timeout_s),
        maxsize=64,
        retries=urllib3.Retry(total=2, backoff_factor=0.5, status_forcelist=[500, 502, 503, 504]),
        cert_reqs="CERT_REQUIRED",
        ca_certs=os.environ.get("SSL_CERT_FILE") or certifi.where(),
    )
    return Minio(
        settings.s3_endpoint,
        access_key=settings.secret("s3_access_key"),
        secret_key=settings.secret("s3_secret_key"),
        secure=settings.s3_secure,
        region="us-east-1",
        http_client=http,
    )


def ensure_evidence_bucket(client: Minio, *, bucket: str, retention_days: int) -> None:
    """Create the bucket with object lock if it is missing, and (re)apply versioning and the default
    COMPLIANCE retention. Idempotent. Refuses a bucket that exists without object lock, since object
    lock cannot be switched on afterwards and evidence there would not be protected."""
    if not client.bucket_exists(bucket):
        try:
            client.make_bucket(bucket, object_lock=True)
        except S3Error as exc:
            if exc.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise
    try:
        current = client.get_object_lock_config(bucket)
    except S3Error as exc:
        raise ConfigurationError(
            f"Bucket {bucket!r} exists without S3 object lock, so evidence could be overwritten. "
            "Point CUSTODY_S3_BUCKET at a new bucket; custody creates it with object lock."
        ) from exc
    if client.get_bucket_versioning(bucket).status != ENABLED:
        client.set_bucket_versioning(bucket, VersioningConfig(ENABLED))
    if (current.mode, current.duration, current.duration_unit) != (COMPLIANCE, retention_days, DAYS):
        client.set_object_lock_config(bucket, ObjectLockConfig(COMPLIANCE, retention_days, DAYS))


def check(client: Minio, *, bucket: str) -> str:
    """Raise if the store does not answer or the bucket is missing; return a short status."""
    if not client.bucket_exists(bucket):
        raise ConfigurationError(f"bucket {bucket!r} is missing")
    return f"bucket {bucket} reachable"
