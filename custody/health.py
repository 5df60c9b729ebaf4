"""Probes of the components custody depends on. Each returns a short detail or raises.

Kept free of web and workflow frameworks: the API's /health and the launcher's readiness waits both
call these, so "up" means the same thing everywhere.
"""

from __future__ import annotations

import smtplib
import socket

import sqlalchemy as sa
from sqlalchemy.engine import Engine


def check_db(engine: Engine) -> str:
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT 1"))
    return f"{engine.dialect.name} answers"


def check_smtp(host: str, port: int, timeout: float = 2.0) -> str:
    with smtplib.SMTP(host, port, timeout=timeout) as smtp:
        code, _ = smtp.noop()
        if code != 250:
            raise ConnectionError(f"SMTP NOOP answered {code}")
    return f"SMTP at {host}:{port} answers"


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False
