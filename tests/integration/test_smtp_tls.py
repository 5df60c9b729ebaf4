"""custody's mail against real aiosmtpd relays on the test CA: one that requires STARTTLS and AUTH
(the embedded server started as the rehearsal starts it, `python -m devstack.smtp --require-starttls
--auth-user ...`), one with implicit TLS, one plain. Every message is read back from the relay's Maildir.

Nothing here needs the session stack: each server starts once for the module, in well under a second.
"""

from __future__ import annotations

import re
import smtplib
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from fastapi.testclient import TestClient

from activities.email import EmailInput, SmtpConfig, build_message, send_message
from custody.devsecrets import ensure_dev_secrets, write_private
from custody.health import check_smtp
from custody.mail import MailAuthError, MailTlsError
from custody.settings import Settings
from devstack.pki import TestCA
from devstack.procs import Child, free_port
from devstack.servers import smtp_child, wait_smtp
from devstack.smtp import SmtpTls, serve
from tests.conftest import migrated
from tests.flow import messages_to, plain_text, wait_for

USER, PASSWORD = "custody-mailer", "correct horse battery staple"


@dataclass
class Relays:
    ca: TestCA
    other_ca: TestCA  # trusted by nobody: a relay certificate "from elsewhere"
    starttls: SmtpConfig  # STARTTLS required + AUTH, a separate process (devstack.smtp)
    starttls_maildir: Path
    implicit: SmtpConfig  # implicit TLS, no AUTH, in this process
    implicit_maildir: Path
    plain: SmtpConfig  # no TLS offered at all
    plain_maildir: Path


@pytest.fixture(scope="module")
def relays(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Relays]:
    root = tmp_path_factory.mktemp("smtp-tls")
    ca = TestCA(root / "ca")
    other = TestCA(root / "other", name="some other CA")
    server = ca.server("smtp")
    password_file = root / "smtp-password"
    write_private(password_file, PASSWORD + "\n")

    port = free_port()
    child: Child = smtp_child(
        port=port,
        maildir=root / "starttls-mail",
        log=root / "smtp.log",
        # The child reads the password from the file; "" only satisfies this object's own checks.
        tls=SmtpTls(
            server.cert_file, server.key_file, require_starttls=True, auth_user=USER, auth_password=""
        ),
        auth_password_file=password_file,
    ).start()
    starttls = SmtpConfig(
        "127.0.0.1", port, "custody@example.org", 5.0, "starttls", USER, PASSWORD, ca.ca_file
    )
    implicit_port, plain_port = free_port(), free_port()
    controllers: list[Controller] = []
    try:
        controllers.append(
            serve(
                "127.0.0.1",
                implicit_port,
                root / "implicit-mail",
                SmtpTls(server.cert_file, server.key_file, implicit_tls=True),
            )
        )
        controllers.append(serve("127.0.0.1", plain_port, root / "plain-mail"))
        wait_smtp(child, port=port, config=starttls)
        yield Relays(
            ca=ca,
            other_ca=other,
            starttls=starttls,
            starttls_maildir=root / "starttls-mail",
            implicit=SmtpConfig(
                "127.0.0.1", implicit_port, "custody@example.org", 5.0, "tls", ca_file=ca.ca_file
            ),
            implicit_maildir=root / "implicit-mail",
            plain=SmtpConfig("127.0.0.1", plain_port, "custody@example.org", 5.0),
            plain_maildir=root / "plain-mail",
        )
    finally:
        for controller in controllers:
            controller.stop()
        child.stop()


def _notice(sender: str) -> tuple[str, EmailInput]:
    to = f"{uuid.uuid4().hex[:10]}@example.org"
    key = f"req-{uuid.uuid4().hex}:notice:0"
    return to, EmailInput(key, to, "Footage request", "Please share footage: https://x/consent/abc")


def test_notice_arrives_over_required_starttls_with_auth(relays: Relays) -> None:
    to, msg_in = _notice(relays.starttls.sender)
    send_message(relays.starttls, build_message(msg_in, relays.starttls.sender))
    [got] = messages_to(relays.starttls_maildir, to)
    # The key's colons become dots: a whole, distinct Message-ID per notice on the wire.
    assert got["Message-ID"] == f"<{msg_in.idempotency_key.replace(':', '.')}@example.org>"
    assert "consent/abc" in plain_text(got)


def test_notice_arrives_over_implicit_tls(relays: Relays) -> None:
    to, msg_in = _notice(relays.implicit.sender)
    send_message(relays.implicit, build_message(msg_in, relays.implicit.sender))
    [got] = messages_to(relays.implicit_maildir, to)
    assert got["Subject"] == "Footage request"


def test_the_relay_really_requires_starttls_and_auth(relays: Relays) -> None:
    """The relay is as strict as a real submission port: without custody's TLS and AUTH, no mail."""
    _, msg_in = _notice("x")
    with (
        smtplib.SMTP(relays.starttls.host, relays.starttls.port, timeout=5) as smtp,
        pytest.raises(smtplib.SMTPSenderRefused) as refused,
    ):
        smtp.send_message(build_message(msg_in, relays.starttls.sender))
    assert refused.value.smtp_code == 530  # Must issue a STARTTLS command first
    no_auth = replace(relays.starttls, username=None, password=None)
    with pytest.raises(smtplib.SMTPSenderRefused) as refused:
        send_message(no_auth, build_message(msg_in, relays.starttls.sender))
    assert refused.value.smtp_code == 530  # Authentication required


def test_wrong_password_is_a_clear_error(relays: Relays) -> None:
    wrong = replace(relays.starttls, password="not it")
    _, msg_in = _notice("x")
    with pytest.raises(MailAuthError) as err:
        send_message(wrong, build_message(msg_in, wrong.sender))
    text = str(err.value)
    assert "refused the username 'custody-mailer'" in text
    assert "CUSTODY_SMTP_PASSWORD" in text
    assert "not it" not in text


@pytest.mark.parametrize("which", ["starttls", "implicit"])
def test_a_certificate_from_an_untrusted_ca_fails_verification(relays: Relays, which: str) -> None:
    config: SmtpConfig = getattr(relays, which)
    wrong_ca = replace(config, ca_file=relays.other_ca.ca_file)
    _, msg_in = _notice("x")
    with pytest.raises(MailTlsError) as err:
        send_message(wrong_ca, build_message(msg_in, config.sender))
    assert "certificate verify failed" in str(err.value)
    assert "CUSTODY_SMTP_CA_FILE" in str(err.value)
    # The system's and certifi's CAs do not know the test CA either.
    with pytest.raises(MailTlsError):
        send_message(replace(config, ca_file=None), build_message(msg_in, config.sender))


def test_host_name_is_verified(relays: Relays) -> None:
    """The certificate names 127.0.0.1 and localhost; reaching the same relay as another name fails."""
    ca = relays.ca
    only_elsewhere = ca.server("smtp-elsewhere", hosts=("mail.example.org",))
    port = free_port()
    controller = serve(
        "127.0.0.1",
        port,
        relays.implicit_maildir,
        SmtpTls(only_elsewhere.cert_file, only_elsewhere.key_file, implicit_tls=True),
    )
    try:
        with pytest.raises(MailTlsError) as err:
            check_smtp("127.0.0.1", port, config=replace(relays.implicit, port=port))
        assert "IP address mismatch" in str(err.value) or "match" in str(err.value)
    finally:
        controller.stop()


def test_starttls_never_falls_back_to_plain(relays: Relays) -> None:
    to, msg_in = _notice("x")
    config = replace(relays.plain, security="starttls", ca_file=relays.ca.ca_file)
    with pytest.raises(MailTlsError) as err:
        send_message(config, build_message(msg_in, config.sender))
    assert "does not offer STARTTLS" in str(err.value)
    assert messages_to(relays.plain_maildir, to) == []


def test_health_probe_speaks_tls_without_logging_in(relays: Relays) -> None:
    assert "STARTTLS, certificate verified" in check_smtp("127.0.0.1", 0, config=relays.starttls)
    assert "TLS, certificate verified" in check_smtp("127.0.0.1", 0, config=relays.implicit)
    # A wrong password does not make the probe fail: it never sends it (see custody.mail.probe).
    check_smtp("127.0.0.1", 0, config=replace(relays.starttls, password="not it"))


def test_timeout_bounds_the_whole_send() -> None:
    """A relay that accepts the connection and never speaks: the send ends at CUSTODY_SMTP_TIMEOUT_S."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        config = SmtpConfig("127.0.0.1", silent.getsockname()[1], "custody@example.org", timeout_s=0.5)
        _, msg_in = _notice("x")
        started = time.monotonic()
        with pytest.raises(OSError):
            send_message(config, build_message(msg_in, config.sender))
        assert time.monotonic() - started < 2


def test_residents_sign_up_link_goes_through_the_secured_relay(
    relays: Relays, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """End to end through the API: settings -> the resident sign-up -> STARTTLS + AUTH -> Maildir."""
    from api.app import create_app

    home = tmp_path_factory.mktemp("mail-home")
    secrets = ensure_dev_secrets(home)
    cfg = relays.starttls
    values: dict[str, object] = {
        "mode": "test",
        "home": home,
        "database_url": migrated(f"sqlite:///{home / 'custody.db'}"),  # as `custody migrate` would
        "smtp_host": cfg.host,
        "smtp_port": cfg.port,
        "smtp_from": "custody@example.org",
        "smtp_security": "starttls",
        "smtp_username": USER,
        "smtp_password": PASSWORD,
        "smtp_ca_file": relays.ca.ca_file,
        "smtp_timeout_s": 5,
        "demo_users": False,
    }
    values.update({k: v for k, v in secrets.items() if k in Settings.model_fields})
    settings = Settings(**values)  # type: ignore[arg-type]
    email = f"{uuid.uuid4().hex[:10]}@example.org"
    with TestClient(create_app(settings)) as client:
        form = client.get("/resident/signup")
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert token
        data = {"name": "Pat Neighbour", "email": email, "phone": "202-555-0199", "accept_terms": "yes"}
        sent = client.post("/resident/signup", data={**data, "csrf_token": token.group(1)})
        assert sent.status_code == 200, sent.text
    [mail] = wait_for("the confirmation email", lambda: messages_to(relays.starttls_maildir, email))
    assert "/resident/link/" in plain_text(mail)


@pytest.mark.parametrize(
    ("overrides", "says"),
    [
        ({"smtp_timeout_s": 15}, "must be below 15 s"),
        ({"smtp_username": "u"}, "go together"),
        ({"smtp_ca_file": "/etc/ssl/certs/ca-certificates.crt"}, "would never be used"),
        (
            {"mode": "production", "smtp_username": "u", "smtp_password": "p"},
            "password would cross the network in plain text",
        ),
    ],
)
def test_mail_settings_that_cannot_work_are_refused(overrides: dict[str, object], says: str) -> None:
    with pytest.raises(ValueError, match=says):
        Settings(**overrides)  # type: ignore[arg-type]


def test_production_accepts_auth_over_tls_and_plain_without_auth() -> None:
    Settings(mode="production", smtp_security="starttls", smtp_username="u", smtp_password="p")
    Settings(mode="production", smtp_security="none")
