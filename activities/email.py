"""Building and sending mail over SMTP, for the notice activities in activities/requests.py.

Idempotency: each message carries a Message-ID derived from the caller's idempotency key, so a
message retried by Temporal is recognisable as the same message by any reader; the notice activity
also records what was sent before returning.
"""

from __future__ import annotations

import smtplib
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate


@dataclass(frozen=True)
class EmailInput:
    idempotency_key: str
    to: str
    subject: str
    text: str
    html: str | None = None


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    sender: str
    timeout_s: float = 10.0  # per socket operation; below the notice activity's 15 s timeout


def build_message(msg_in: EmailInput, sender: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = msg_in.to
    msg["Subject"] = msg_in.subject
    msg["Date"] = formatdate(usegmt=True)
    domain = sender.rsplit("@", 1)[-1] or "custody.local"
    msg["Message-ID"] = f"<{msg_in.idempotency_key}@{domain}>"
    msg.set_content(msg_in.text)
    if msg_in.html:
        msg.add_alternative(msg_in.html, subtype="html")
    return msg


def send_message(config: SmtpConfig, msg: EmailMessage) -> None:
    with smtplib.SMTP(config.host, config.port, timeout=config.timeout_s) as smtp:
        smtp.send_message(msg)
