"""Building and sending mail over SMTP, for the notice activities in activities/requests.py.

Idempotency: each message carries a Message-ID derived from the caller's idempotency key, so a
message retried by Temporal is recognisable as the same message by any reader; the notice activity
also records what was sent before returning.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate

from custody.mail import SmtpConfig, send

__all__ = ["EmailInput", "SmtpConfig", "build_message", "send_message"]


@dataclass(frozen=True)
class EmailInput:
    idempotency_key: str
    to: str
    subject: str
    text: str
    html: str | None = None


def message_id_left(key: str) -> str:
    """The idempotency key as a Message-ID's left part (RFC 5322 dot-atom-text). Keys such as
    "<request>:notice:1" hold colons, which the email package's header folding cut at: every notice,
    reminder and cancellation of a request then went out as the same "<request" Message-ID, which
    mail readers may collapse as duplicates. Anything outside atext becomes a dot."""
    left = re.sub(r"[^A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+", ".", key).strip(".")
    return left or "custody"


def build_message(msg_in: EmailInput, sender: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = msg_in.to
    msg["Subject"] = msg_in.subject
    msg["Date"] = formatdate(usegmt=True)
    domain = sender.rsplit("@", 1)[-1] or "custody.local"
    msg["Message-ID"] = f"<{message_id_left(msg_in.idempotency_key)}@{domain}>"
    msg.set_content(msg_in.text)
    if msg_in.html:
        msg.add_alternative(msg_in.html, subtype="html")
    return msg


def send_message(config: SmtpConfig, msg: EmailMessage) -> None:
    """Send through the relay with the TLS and AUTH of `config` (custody/mail.py), within its timeout."""
    send(config, msg)
