"""Generated secrets for the embedded (dev) stack, kept in `$CUSTODY_HOME/secrets.json` (mode 0600).

Why a file and not fresh keys each start: a second `make run` must still open the first one's
evidence bucket, verify its tokens and extend its ledger under the same signing key.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

SECRETS_FILE = "secrets.json"
DEMO_ROLES = ("investigator", "prosecutor", "auditor", "admin")


def _report_certificate() -> tuple[str, str]:
    """A self-signed certificate for signing reports in embedded mode (ten years, ECDSA P-256)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(
                NameOID.COMMON_NAME, "custody embedded report signer (self-signed, not for court)"
            ),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "custody dev"),
        ]
    )
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return cert.public_bytes(serialization.Encoding.PEM).decode(), key_pem


def _generate() -> dict[str, object]:
    jwt_key = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    ledger_seed = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    return {
        "jwt_key": jwt_key.decode(),
        "s3_access_key": "custody" + secrets.token_hex(6),
        "s3_secret_key": secrets.token_urlsafe(30),
        "ledger_signing_key": base64.b64encode(ledger_seed).decode(),
        "demo_passwords": {role: secrets.token_urlsafe(12) for role in DEMO_ROLES},
    }


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read, created with mode 0600 from the start."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    path.chmod(0o600)


def ensure_dev_secrets(home: Path) -> dict[str, str]:
    """Return the dev secrets, generating them on first use. Safe against two processes racing."""
    path = home / SECRETS_FILE
    if not path.exists():
        data = _generate()
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        write_private(tmp, json.dumps(data, indent=2))
        try:
            os.link(tmp, path)  # atomic create-if-absent: the first writer wins
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    loaded: dict[str, str] = json.loads(path.read_text())
    if "report_signing_cert" not in loaded:  # homes made before report signing existed
        cert, key = _report_certificate()
        data = json.loads(path.read_text())
        data.update(report_signing_cert=cert, report_signing_key=key)
        write_private(path, json.dumps(data, indent=2))
        loaded = data
    return loaded


def demo_passwords(home: Path) -> dict[str, str]:
    data: dict[str, object] = json.loads((home / SECRETS_FILE).read_text())
    pw = data.get("demo_passwords", {})
    assert isinstance(pw, dict)
    return {str(k): str(v) for k, v in pw.items()}
