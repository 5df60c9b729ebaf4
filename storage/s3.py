"""The evidence bucket: versioned, with S3 object lock in COMPLIANCE mode.

Why COMPLIANCE: nobody, not even an administrator with the root credentials, can overwrite or delete
an evidence object version before its retention date. Retention comes from settings
(`CUSTODY_EVIDENCE_RETENTION_DAYS`) as the bucket's default, so every new object gets it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import certifi
import urllib3
from minio import Minio
from minio.commonconfig import COMPLIANCE, ENABLED
from minio.error import S3Error
from minio.objectlockconfig import DAYS, ObjectLockConfig
from minio.versioningconfig import VersioningConfig

from custody.errors import ConfigurationError
from custody.settings import Settings


def ca_bundle(settings: Settings) -> str:
    """The CA file the S3 endpoint's certificate is checked against: CUSTODY_S3_CA_FILE (a private
    CA, as an on-premises store has), else SSL_CERT_FILE, else certifi's public CAs."""
    if settings.s3_ca_file is not None:
        path = settings.s3_ca_file
        try:
            text = path.read_text(errors="replace")
        except OSError as exc:
            raise ConfigurationError(f"CUSTODY_S3_CA_FILE={path} cannot be read: {exc.strerror}.") from exc
        if "-----BEGIN CERTIFICATE-----" not in text:
            raise ConfigurationError(f"CUSTODY_S3_CA_FILE={path} holds no PEM certificate.")
        return str(path)
    return os.environ.get("SSL_CERT_FILE") or certifi.where()


def _client(settings: Settings, http: urllib3.PoolManager) -> Minio:
    return Minio(
        settings.s3_endpoint,
        access_key=settings.secret("s3_access_key"),
        secret_key=settings.secret("s3_secret_key"),
        secure=settings.s3_secure,
        region=settings.s3_region,  # signed for it, and no GetBucketLocation round trip per bucket
        http_client=http,
    )


def make_client(settings: Settings) -> Minio:
    """THE client of a process (build it once at start and pass it down: its connection pool is
    what makes repeated calls cheap). Every call gives up within about `s3_timeout_s` per try,
    three tries at most: a stalled store becomes a 503 for the person waiting, never a request held
    for minutes. Over https it checks the store's certificate against `ca_bundle(settings)`."""
    http = urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=min(5.0, settings.s3_timeout_s), read=settings.s3_timeout_s),
        maxsize=64,
        retries=urllib3.Retry(total=2, backoff_factor=0.5, status_forcelist=[500, 502, 503, 504]),
        cert_reqs="CERT_REQUIRED",
        ca_certs=ca_bundle(settings),
    )
    return _client(settings, http)


def make_probe_client(settings: Settings, *, timeout_s: float) -> Minio:
    """The health probe's client, built once per API process beside `make_client`'s: no retries
    and a short timeout, because a probe must answer quickly when the store is down."""
    http = urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=min(1.0, timeout_s), read=timeout_s),
        maxsize=4,
        retries=False,
        cert_reqs="CERT_REQUIRED",
        ca_certs=ca_bundle(settings),
    )
    return _client(settings, http)


def explain_tls(error: BaseException) -> ConfigurationError | None:
    """A message naming the setting to check when `error` is an https certificate this client
    refused, or a plain-http client talking to an https store; None for any other failure."""
    text = str(error)
    pool = error.pool if isinstance(error, urllib3.exceptions.PoolError) else None
    where = f"{pool.host}:{pool.port}" if pool is not None else "the configured endpoint"
    if "CERTIFICATE_VERIFY_FAILED" in text:
        reason = text.split("certificate verify failed: ", 1)[-1].split(" (_ssl", 1)[0][:120]
        return ConfigurationError(
            f"The object store at {where} presented a certificate this client does not trust ({reason}). "
            "Set CUSTODY_S3_CA_FILE to the CA that signed it (and CUSTODY_S3_HOST to a name it carries)."
        )
    if "WRONG_VERSION_NUMBER" in text or "wrong version number" in text:
        return ConfigurationError(
            f"The object store at {where} does not speak https; set CUSTODY_S3_SECURE=false, or point "
            "CUSTODY_S3_HOST/PORT at its https endpoint."
        )
    return None


@contextmanager
def tls_explained() -> Iterator[None]:
    """Re-raise a refused certificate as a ConfigurationError saying which setting to fix."""
    try:
        yield
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        refused = explain_tls(exc)
        if refused is not None:
            raise refused from exc
        raise


def ensure_evidence_bucket(client: Minio, *, bucket: str, retention_days: int) -> None:
    """Create the bucket with object lock if it is missing, and (re)apply versioning and the default
    COMPLIANCE retention. Idempotent. Refuses a bucket that exists without object lock, since object
    lock cannot be switched on afterwards and evidence there would not be protected."""
    with tls_explained():
        _ensure_bucket(client, bucket=bucket, retention_days=retention_days)


def _ensure_bucket(client: Minio, *, bucket: str, retention_days: int) -> None:
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
    with tls_explained():
        exists = client.bucket_exists(bucket)
    if not exists:
        raise ConfigurationError(f"bucket {bucket!r} is missing")
    return f"bucket {bucket} reachable"
