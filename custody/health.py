"""Probes of the components custody depends on. Each returns a short detail or raises.

Kept free of web and workflow frameworks: the API's /health and the launcher's readiness waits both
call these, so "up" means the same thing everywhere.
"""

from __future__ import annotations

import socket

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from custody.mail import SmtpConfig, probe


def check_db(engine: Engine) -> str:
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT 1"))
    return f"{engine.dialect.name} answers"


def check_smtp(host: str, port: int, timeout: float = 2.0, *, config: SmtpConfig | None = None) -> str:
    """The relay answers NOOP, over TLS with its certificate verified when `config` asks for TLS
    (custody/mail.py: no AUTH in a probe). Without `config`: plain SMTP to host:port."""
    target = config or SmtpConfig(host, port, sender="")
    return probe(target, timeout_s=timeout)


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False
