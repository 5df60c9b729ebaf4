"""The embedded servers (SMTP, Temporal, SeaweedFS S3) started from one place.

`make run` (devstack/launcher.py), the test fixtures (tests/conftest.py, tests/faults), the benchmarks
(bench/) and the rehearsal (devstack/rehearse.py) all start them through `EmbeddedServers`, so every
one of them runs the servers exactly as a user's `make run` does: the same flags, the same readiness
checks, the same bucket with object lock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import urllib3
from minio import Minio

from custody.mail import SmtpConfig
from custody.settings import SmtpSecurity
from devstack.pki import Issued
from devstack.procs import Child, free_port
from devstack.servers import (
    S3Identity,
    seaweed_child,
    smtp_child,
    temporal_child,
    wait_s3_and_bucket,
    wait_smtp,
    wait_temporal,
)
from devstack.smtp import SmtpTls


@dataclass
class EmbeddedServers:
    """SMTP, Temporal and SeaweedFS for one `home` folder. Ports default to free ones; pass the
    settings' ports to pin them (the launcher does). `temporal_ui_port=None` runs Temporal headless."""

    home: Path
    identity: S3Identity
    temporal_port: int = field(default_factory=free_port)
    s3_port: int = field(default_factory=lambda: free_port(grpc_pair=True))
    smtp_port: int = field(default_factory=free_port)
    temporal_ui_port: int | None = None
    namespace: str = "default"
    bucket: str = "evidence"
    retention_days: int = 1
    volume_size_mb: int = 1024
    min_free_mb: int = 512
    temporal_db: Path | None = None
    s3_data: Path | None = None
    #: Serve S3 over https with this certificate; clients trust `ca_file` (the rehearsal).
    s3_cert: Issued | None = None
    ca_file: Path | None = None
    #: SMTP with STARTTLS or implicit TLS and AUTH (the rehearsal), on a certificate of `ca_file`'s CA.
    smtp_tls: SmtpTls | None = None
    smtp_password_file: Path | None = None
    children: dict[str, Child] = field(default_factory=dict)

    @property
    def logs(self) -> Path:
        return self.home / "logs"

    @property
    def maildir(self) -> Path:
        return self.home / "mail"

    @property
    def data_dir(self) -> Path:
        return self.s3_data or self.home / "s3" / "data"

    def s3_client(self) -> Minio:
        http = None
        if self.s3_cert is not None:
            http = urllib3.PoolManager(cert_reqs="CERT_REQUIRED", ca_certs=str(self.ca_file))
        return Minio(
            f"127.0.0.1:{self.s3_port}",
            access_key=self.identity.access_key,
            secret_key=self.identity.secret_key,
            secure=self.s3_cert is not None,
            http_client=http,
        )

    def _temporal(self) -> Child:
        return temporal_child(
            port=self.temporal_port,
            ui_port=self.temporal_ui_port or free_port(),
            db_file=self.temporal_db or self.home / "temporal" / "temporal.db",
            log=self.logs / "temporal.log",
            headless=self.temporal_ui_port is None,
            namespace=self.namespace,
        )

    def start(self, status: Callable[[str], None] = lambda _: None) -> EmbeddedServers:
        """Start all three and wait until each answers and the evidence bucket exists. On failure
        what was started is stopped again before the error propagates."""
        try:
            self.children["smtp"] = smtp_child(
                port=self.smtp_port,
                maildir=self.maildir,
                log=self.logs / "smtp.log",
                tls=self.smtp_tls,
                auth_password_file=self.smtp_password_file,
            ).start()
            self.children["temporal"] = self._temporal().start()
            self.children["s3"] = seaweed_child(
                s3_port=self.s3_port,
                data_dir=self.data_dir,
                identity=self.identity,
                log=self.logs / "seaweedfs.log",
                volume_size_mb=self.volume_size_mb,
                min_free_mb=self.min_free_mb,
                cert_file=self.s3_cert.cert_file if self.s3_cert else None,
                key_file=self.s3_cert.key_file if self.s3_cert else None,
            ).start()
            wait_smtp(self.children["smtp"], port=self.smtp_port, config=self._smtp_probe())
            status("waiting for Temporal ...")
            wait_temporal(self.children["temporal"], port=self.temporal_port, ui_port=self.temporal_ui_port)
            status("waiting for S3 and the evidence bucket ...")
            wait_s3_and_bucket(
                self.children["s3"],
                client=self.s3_client(),
                bucket=self.bucket,
                retention_days=self.retention_days,
            )
        except BaseException:
            self.stop()
            raise
        return self

    def _smtp_probe(self) -> SmtpConfig | None:
        if self.smtp_tls is None or not (self.smtp_tls.require_starttls or self.smtp_tls.implicit_tls):
            return None
        security: SmtpSecurity = "starttls" if self.smtp_tls.require_starttls else "tls"
        return SmtpConfig("127.0.0.1", self.smtp_port, sender="", security=security, ca_file=self.ca_file)

    def restart_temporal(self) -> None:
        """Stop the Temporal server and start it again on the same port and database file."""
        self.children["temporal"].stop()
        self.children["temporal"] = self._temporal().start()
        wait_temporal(self.children["temporal"], port=self.temporal_port, ui_port=None)

    def stop(self) -> None:
        for child in reversed(list(self.children.values())):
            child.stop()
