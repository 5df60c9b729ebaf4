"""How each real server of the embedded stack is started and known to be ready.

The launcher (`custody dev`) and the test fixtures both use these, so tests run against servers
started exactly as a user's `make run` starts them.
"""

from __future__ import annotations

import json
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from minio import Minio

from custody.devsecrets import write_private
from custody.errors import ConfigurationError
from custody.health import check_smtp, port_open
from custody.mail import SmtpConfig
from devstack.procs import Child, bin_path, free_port, wait_until
from devstack.smtp import SmtpTls
from storage.s3 import ensure_evidence_bucket

#: Custom search attributes the workflows set (no personal data goes in them).
SEARCH_ATTRIBUTES = {
    "CustodyStatus": "Keyword",
    "CaseId": "Keyword",
    "Agency": "Keyword",
    "RequestId": "Keyword",
}


def temporal_child(
    *, port: int, ui_port: int, db_file: Path, log: Path, headless: bool = False, namespace: str = "default"
) -> Child:
    argv = [
        bin_path("temporal"), "server", "start-dev",
        "--ip", "127.0.0.1", "--port", str(port), "--ui-port", str(ui_port),
        "--db-filename", str(db_file), "--namespace", namespace,
        "--log-level", "warn", "--ui-disable-news-fetch",
        "--http-port", str(free_port()), "--metrics-port", str(free_port()),
    ]  # fmt: skip
    for key, kind in SEARCH_ATTRIBUTES.items():
        argv += ["--search-attribute", f"{key}={kind}"]
    if headless:
        argv.append("--headless")
    db_file.parent.mkdir(parents=True, exist_ok=True)
    return Child("temporal", argv, log, stop_grace_s=15)


def wait_temporal(child: Child, *, port: int, ui_port: int | None, timeout_s: float = 60) -> None:
    wait_until(
        f"Temporal on 127.0.0.1:{port}",
        lambda: port_open("127.0.0.1", port),
        timeout_s=timeout_s,
        child=child,
    )
    if ui_port is not None:
        wait_until(
            f"Temporal Web UI on 127.0.0.1:{ui_port}",
            lambda: urllib.request.urlopen(f"http://127.0.0.1:{ui_port}/", timeout=2).status == 200,
            timeout_s=timeout_s,
            child=child,
        )


@dataclass(frozen=True)
class S3Identity:
    access_key: str
    secret_key: str


def seaweed_child(
    *,
    s3_port: int,
    data_dir: Path,
    identity: S3Identity,
    log: Path,
    volume_size_mb: int = 1024,
    min_free_mb: int = 512,
    cert_file: Path | None = None,
    key_file: Path | None = None,
) -> Child:
    """SeaweedFS master, volume, filer and S3 gateway in one process, on 127.0.0.1 only.

    Its internal ports (each also taking port+10000 for gRPC) are picked free at every start; the data
    in `data_dir` does not depend on them. Sized for real use: volumes of `volume_size_mb`
    (CUSTODY_S3_VOLUME_SIZE_MB) and as many as the disk holds (`-volume.max=0`: free space divided by
    the volume size), keeping `min_free_mb` free (CUSTODY_S3_MIN_FREE_MB); SeaweedFS's default of 8
    volumes stopped storing evidence at about 1 GB. The API refuses an upload that would eat into
    that reserve with 507 before storing anything (storage/evidence.py).

    With `cert_file` and `key_file` (PEM) the S3 port speaks https only, as a production store does;
    clients then need CUSTODY_S3_SECURE=true and, for a private CA, CUSTODY_S3_CA_FILE.
    """
    if (cert_file is None) != (key_file is None):
        raise ValueError("seaweed_child: give both cert_file and key_file for https, or neither")
    data_dir.mkdir(parents=True, exist_ok=True)
    config = data_dir.parent / "identities.json"
    write_private(
        config,
        json.dumps(
            {
                "identities": [
                    {
                        "name": "custody",
                        "credentials": [{"accessKey": identity.access_key, "secretKey": identity.secret_key}],
                        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                    }
                ]
            }
        ),
    )
    master, volume, filer = (free_port(grpc_pair=True) for _ in range(3))
    argv = [
        bin_path("weed"), "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={data_dir}",
        f"-master.port={master}", f"-volume.port={volume}", f"-filer.port={filer}",
        "-s3", f"-s3.port={s3_port}", "-s3.port.iceberg=0", "-s3.port.lance=0",
        f"-s3.config={config}", "-master.telemetry=false", f"-master.volumeSizeLimitMB={volume_size_mb}",
        "-volume.max=0", f"-volume.minFreeSpace={f'{min_free_mb}MiB' if min_free_mb else '1'}",
    ]  # fmt: skip
    if cert_file is not None and key_file is not None:
        argv += [f"-s3.cert.file={cert_file}", f"-s3.key.file={key_file}"]
    return Child("seaweedfs", argv, log, stop_grace_s=3)


def wait_s3_and_bucket(
    child: Child, *, client: Minio, bucket: str, retention_days: int, timeout_s: float = 60
) -> None:
    """Wait until S3 answers, then create or check the evidence bucket (versioned, object lock).
    A setting that is wrong (a certificate the client refuses, a bucket without object lock) fails
    at once with its ConfigurationError: waiting would not fix it."""
    wrong: list[ConfigurationError] = []

    def ready() -> bool:
        try:
            ensure_evidence_bucket(client, bucket=bucket, retention_days=retention_days)
        except ConfigurationError as exc:
            wrong.append(exc)
        return True

    wait_until(f"S3 (SeaweedFS) with bucket {bucket!r}", ready, timeout_s=timeout_s, child=child)
    if wrong:
        raise wrong[0]


def smtp_child(
    *,
    port: int,
    maildir: Path,
    log: Path,
    tls: SmtpTls | None = None,
    auth_password_file: Path | None = None,
) -> Child:
    """The embedded SMTP server; with `tls`, STARTTLS required or implicit TLS and, with its
    `auth_user`, AUTH against the password in `auth_password_file` (a secrets file, never argv)."""
    argv = [sys.executable, "-m", "devstack.smtp", "--host", "127.0.0.1", "--port", str(port),
            "--maildir", str(maildir)]  # fmt: skip
    if tls is not None:
        if tls.cert_file and tls.key_file:
            argv += ["--tls-cert", str(tls.cert_file), "--tls-key", str(tls.key_file)]
        if tls.require_starttls:
            argv.append("--require-starttls")
        if tls.implicit_tls:
            argv.append("--implicit-tls")
        if tls.auth_user:
            if auth_password_file is None:
                raise ValueError("an SMTP server with AUTH needs auth_password_file")
            argv += ["--auth-user", tls.auth_user, "--auth-password-file", str(auth_password_file)]
    return Child("smtp", argv, log, stop_grace_s=5)


def wait_smtp(child: Child, *, port: int, timeout_s: float = 30, config: SmtpConfig | None = None) -> None:
    """Ready when NOOP answers; pass the client `config` (security, CA) of a TLS server."""
    wait_until(
        f"SMTP on 127.0.0.1:{port}",
        lambda: bool(check_smtp("127.0.0.1", port, config=config)),
        timeout_s=timeout_s,
        child=child,
    )


def tsa_child(
    *,
    port: int,
    cert: Path,
    key: Path,
    log: Path,
    chain: Path | None = None,
    tls: tuple[Path, Path] | None = None,
    auth_user: str | None = None,
    auth_password_file: Path | None = None,
) -> Child:
    """The RFC 3161 timestamp server (devstack/tsa.py) signing with `cert` (EKU timeStamping);
    HTTPS with `tls` (certificate, key), HTTP Basic auth with `auth_user` and its password file."""
    argv = [sys.executable, "-m", "devstack.tsa", "--host", "127.0.0.1", "--port", str(port),
            "--cert", str(cert), "--key", str(key)]  # fmt: skip
    if chain is not None:
        argv += ["--chain", str(chain)]
    if tls is not None:
        argv += ["--tls-cert", str(tls[0]), "--tls-key", str(tls[1])]
    if auth_user is not None:
        if auth_password_file is None:
            raise ValueError("a TSA with auth needs auth_password_file")
        argv += ["--auth-user", auth_user, "--auth-password-file", str(auth_password_file)]
    return Child("tsa", argv, log, stop_grace_s=5)


def wait_tsa(child: Child, *, port: int, timeout_s: float = 30) -> None:
    wait_until(
        f"TSA on 127.0.0.1:{port}", lambda: port_open("127.0.0.1", port), timeout_s=timeout_s, child=child
    )
