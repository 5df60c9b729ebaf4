"""Talking to the mail relay: plain, STARTTLS or implicit TLS, with or without AUTH, within one deadline.

Why here and not in activities/: the notice activities, the residents' sign-up and sign-in links and the
health probe all open the same kind of connection, and "secure" must mean the same thing for each. Only
the standard library is used (plus certifi's CA bundle), so the domain layer may hold it.

Rules that hold whatever the relay says:
- With `starttls` the session is upgraded before anything else is sent; a relay that does not offer
  STARTTLS is an error, never a silent fall-back to plain text.
- With TLS on (`starttls` or `tls`), the relay's certificate chain and host name are always verified,
  against `CUSTODY_SMTP_CA_FILE` when set, else the system's CAs plus certifi's bundle.
- `timeout_s` bounds the whole exchange (connect, TLS, AUTH, the message, QUIT), not each socket
  read: the notice activity's start-to-close timeout must never be the thing that stops a send.
"""

from __future__ import annotations

import smtplib
import ssl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import TYPE_CHECKING

import certifi

from custody.settings import SmtpSecurity

if TYPE_CHECKING:
    from custody.settings import Settings


class MailError(smtplib.SMTPException):
    """A send or probe that failed for a reason a person can act on; the message says which setting.

    A subclass of SMTPException so callers that already treat `OSError | SMTPException` as "the mail
    server is not answering, retry" keep working."""


class MailAuthError(MailError):
    """The relay refused the username or password."""


class MailTlsError(MailError):
    """TLS could not be set up: certificate not trusted, wrong host name, or STARTTLS not offered."""


@dataclass(frozen=True)
class SmtpConfig:
    """How to reach the relay (from CUSTODY_SMTP_* settings; see `from_settings`)."""

    host: str
    port: int
    sender: str
    timeout_s: float = 10.0  # the whole send; below the notice activity's start-to-close timeout
    security: SmtpSecurity = "none"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_file: Path | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpConfig:
        return cls(
            host=settings.smtp_host,
            port=settings.smtp_port,
            sender=settings.smtp_from,
            timeout_s=settings.smtp_timeout_s,
            security=settings.smtp_security,
            username=settings.smtp_username,
            password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
            ca_file=settings.smtp_ca_file,
        )

    @property
    def where(self) -> str:
        return f"the SMTP server at {self.host}:{self.port}"


def tls_context(ca_file: Path | None) -> ssl.SSLContext:
    """A client context that verifies the chain and the host name: `ca_file` alone when given (a
    department's private CA), else the system's CAs plus certifi's (slim containers ship none)."""
    if ca_file is not None:
        ctx = ssl.create_default_context(cafile=str(ca_file))
    else:
        ctx = ssl.create_default_context()
        ctx.load_verify_locations(cafile=certifi.where())
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    # create_default_context already sets these; stated so that nobody "fixes" a test by loosening them.
    ctx.check_hostname = True
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


class _Deadline:
    def __init__(self, config: SmtpConfig) -> None:
        self.config = config
        self.end = time.monotonic() + config.timeout_s

    def left(self) -> float:
        left = self.end - time.monotonic()
        if left <= 0:
            raise TimeoutError(
                f"{self.config.where} did not finish within CUSTODY_SMTP_TIMEOUT_S="
                f"{self.config.timeout_s:g} s"
            )
        return left

    def arm(self, smtp: smtplib.SMTP) -> None:
        """Give the next socket operation only what is left of the whole budget."""
        left = self.left()
        if smtp.sock is not None:
            smtp.sock.settimeout(left)


def _tls_failure(config: SmtpConfig, exc: Exception) -> MailTlsError:
    hint = (
        f"check that CUSTODY_SMTP_CA_FILE ({config.ca_file}) is the CA that issued the relay's certificate"
        if config.ca_file
        else "set CUSTODY_SMTP_CA_FILE to the CA that issued the relay's certificate"
    )
    return MailTlsError(
        f"TLS with {config.where} failed ({exc}); the relay's certificate must be valid for "
        f"{config.host!r} and trusted: {hint}"
    )


@contextmanager
def connect(config: SmtpConfig, *, login: bool = True) -> Iterator[tuple[smtplib.SMTP, _Deadline]]:
    """An SMTP session that is encrypted as configured and, when `login` and a username are set,
    authenticated. Raises MailTlsError / MailAuthError with what to fix, OSError / SMTPException
    when the relay is down or misbehaves."""
    deadline = _Deadline(config)
    smtp: smtplib.SMTP
    try:
        if config.security == "tls":
            smtp = smtplib.SMTP_SSL(
                config.host, config.port, timeout=deadline.left(), context=tls_context(config.ca_file)
            )
        else:
            smtp = smtplib.SMTP(config.host, config.port, timeout=deadline.left())
    except ssl.SSLError as exc:
        raise _tls_failure(config, exc) from exc
    try:
        if config.security == "starttls":
            deadline.arm(smtp)
            smtp.ehlo()
            if not smtp.has_extn("starttls"):
                raise MailTlsError(
                    f"{config.where} does not offer STARTTLS, and CUSTODY_SMTP_SECURITY=starttls: custody "
                    "will not send in plain text. Use the relay's submission port (587), or "
                    "CUSTODY_SMTP_SECURITY=tls for a relay with implicit TLS (465)."
                )
            deadline.arm(smtp)
            try:
                smtp.starttls(context=tls_context(config.ca_file))
            except ssl.SSLError as exc:
                raise _tls_failure(config, exc) from exc
        if login and config.username:
            deadline.arm(smtp)
            try:
                smtp.login(config.username, config.password or "")
            except smtplib.SMTPAuthenticationError as exc:
                said = exc.smtp_error
                said = said.decode(errors="replace") if isinstance(said, bytes) else said
                raise MailAuthError(
                    f"{config.where} refused the username {config.username!r} or its password "
                    f"({exc.smtp_code} {said}); check "
                    "CUSTODY_SMTP_USERNAME and CUSTODY_SMTP_PASSWORD"
                ) from exc
            except smtplib.SMTPNotSupportedError as exc:
                raise MailAuthError(
                    f"{config.where} offers no AUTH on this connection, but CUSTODY_SMTP_USERNAME is "
                    "set; the relay may allow AUTH only after STARTTLS (CUSTODY_SMTP_SECURITY)"
                ) from exc
        deadline.arm(smtp)
        yield smtp, deadline
    finally:
        try:
            if smtp.sock is not None:
                smtp.sock.settimeout(min(1.0, max(deadline.end - time.monotonic(), 0.1)))
            smtp.quit()
        except (OSError, smtplib.SMTPException):
            smtp.close()


def send(config: SmtpConfig, msg: EmailMessage) -> None:
    """Send one message through the relay, encrypted and authenticated as configured."""
    with connect(config) as (smtp, deadline):
        deadline.arm(smtp)
        smtp.send_message(msg)


def probe(config: SmtpConfig, timeout_s: float = 2.0) -> str:
    """Connect, set up TLS as configured, NOOP. No AUTH: a probe every few seconds from every replica
    would count against the relay's login throttles (and lock-outs); the first real send proves the
    password, and its failure names CUSTODY_SMTP_PASSWORD."""
    quick = SmtpConfig(
        config.host, config.port, config.sender, timeout_s, config.security, None, None, config.ca_file
    )
    with connect(quick, login=False) as (smtp, _):
        code, _reply = smtp.noop()
        if code != 250:
            raise ConnectionError(f"SMTP NOOP answered {code}")
    tls = {"none": "", "starttls": " (STARTTLS, certificate verified)", "tls": " (TLS, certificate verified)"}
    return f"SMTP at {config.host}:{config.port} answers{tls[config.security]}"
