"""The embedded SMTP server: aiosmtpd storing every message it receives in a Maildir.

Run as `python -m devstack.smtp --host 127.0.0.1 --port 8025 --maildir .custody/mail`. The Maildir lets
a person or a test read exactly what owners were sent.

With `--tls-cert/--tls-key` it stands in for a real relay: `--require-starttls` (submission, port 587
style: every command but EHLO/NOOP/QUIT refused until STARTTLS) or `--implicit-tls` (port 465 style:
TLS from the first byte), and `--auth-user/--auth-password-file` to demand SMTP AUTH (only over TLS).
The rehearsal runs it this way so custody's mail path is exercised as in production.
"""

from __future__ import annotations

import argparse
import hmac
import signal
import ssl
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox
from aiosmtpd.smtp import AuthResult, LoginPassword


@dataclass(frozen=True)
class SmtpTls:
    """How the embedded server protects its sessions (all off: plain SMTP, no AUTH)."""

    cert_file: Path | None = None
    key_file: Path | None = None
    require_starttls: bool = False
    implicit_tls: bool = False
    auth_user: str | None = None
    auth_password: str | None = None

    def __post_init__(self) -> None:
        if (self.require_starttls or self.implicit_tls) and not (self.cert_file and self.key_file):
            raise ValueError("--require-starttls and --implicit-tls need --tls-cert and --tls-key")
        if self.require_starttls and self.implicit_tls:
            raise ValueError("choose one of --require-starttls and --implicit-tls")
        if bool(self.auth_user) != (self.auth_password is not None):
            raise ValueError("--auth-user and --auth-password-file go together")
        if self.auth_user and not (self.cert_file and self.key_file):
            raise ValueError("AUTH is only offered over TLS: give --tls-cert and --tls-key")


class Authenticator:
    """Accepts one user name and password (PLAIN or LOGIN), compared in constant time."""

    def __init__(self, user: str, password: str) -> None:
        self.user = user.encode()
        self.password = password.encode()

    def __call__(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        if not isinstance(data, LoginPassword):
            return AuthResult(success=False, handled=False)
        ok = hmac.compare_digest(data.login, self.user) & hmac.compare_digest(data.password, self.password)
        # handled=False: aiosmtpd itself answers 535 to a failure (its default, handled=True, means
        # "already answered" and leaves the client waiting).
        return AuthResult(success=bool(ok), handled=False)


def server_context(cert_file: Path, key_file: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(str(cert_file), str(key_file))
    return ctx


def serve(host: str, port: int, maildir: Path, tls: SmtpTls | None = None) -> Controller:
    for sub in ("tmp", "new", "cur"):  # a Maildir is these three folders
        (maildir / sub).mkdir(parents=True, exist_ok=True)
    tls = tls or SmtpTls()
    kwargs: dict[str, Any] = {}
    if tls.cert_file and tls.key_file:
        ctx = server_context(tls.cert_file, tls.key_file)
        if tls.implicit_tls:
            kwargs["ssl_context"] = ctx
        else:
            kwargs["tls_context"] = ctx
            kwargs["require_starttls"] = tls.require_starttls
    if tls.auth_user and tls.auth_password is not None:
        kwargs["authenticator"] = Authenticator(tls.auth_user, tls.auth_password)
        kwargs["auth_required"] = True
        kwargs["auth_require_tls"] = True
    controller = Controller(Mailbox(maildir), hostname=host, port=port, ready_timeout=10, **kwargs)
    controller.start()
    return controller


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--maildir", type=Path, required=True)
    parser.add_argument("--tls-cert", type=Path, help="PEM certificate (chain) of the server")
    parser.add_argument("--tls-key", type=Path, help="PEM private key of the server")
    parser.add_argument("--require-starttls", action="store_true", help="refuse mail until STARTTLS")
    parser.add_argument("--implicit-tls", action="store_true", help="TLS from the first byte (465 style)")
    parser.add_argument("--auth-user", help="require SMTP AUTH as this user")
    parser.add_argument("--auth-password-file", type=Path, help="file holding that user's password")
    args = parser.parse_args()
    password = args.auth_password_file.read_text().strip() if args.auth_password_file else None
    try:
        tls = SmtpTls(
            args.tls_cert, args.tls_key, args.require_starttls, args.implicit_tls, args.auth_user, password
        )
    except ValueError as exc:
        parser.error(str(exc))
    controller = serve(args.host, args.port, args.maildir, tls)
    mode = (
        "implicit TLS"
        if tls.implicit_tls
        else "STARTTLS required"
        if tls.require_starttls
        else ("STARTTLS offered" if tls.cert_file else "plain")
    )
    auth = f", AUTH required as {tls.auth_user}" if tls.auth_user else ""
    print(
        f"SMTP listening on {args.host}:{args.port} ({mode}{auth}), storing mail in {args.maildir}",
        flush=True,
    )
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    controller.stop()


if __name__ == "__main__":
    main()
