"""Token checks: one algorithm, aud/iss/exp enforced, forged and confused tokens refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jose import jwt

from custody.devsecrets import ensure_dev_secrets
from custody.errors import Unauthenticated
from custody.security import TokenService, hash_password, verify_password
from custody.settings import Settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    secrets = ensure_dev_secrets(tmp_path)
    return Settings(mode="test", home=tmp_path, jwt_key=secrets["jwt_key"])


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(settings: Settings, **over: object) -> dict[str, object]:
    now = int(time.time())
    claims: dict[str, object] = {
        "sub": "u1", "role": "investigator", "agency": "MPD", "iat": now, "exp": now + 600,
        "aud": settings.jwt_audience, "iss": settings.jwt_issuer, "jti": "j1",
    }  # fmt: skip
    claims.update(over)
    return claims


def test_issue_and_verify_round_trip(settings: Settings) -> None:
    svc = TokenService(settings)
    token, ttl = svc.issue(user_id="u1", role="auditor", agency="USCP")
    assert ttl == settings.jwt_ttl_s
    claims = svc.verify(token)
    assert (claims.sub, claims.role, claims.agency) == ("u1", "auditor", "USCP")
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert header["alg"] == "ES256"


def test_alg_none_is_refused(settings: Settings) -> None:
    header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    payload = _b64(json.dumps(_claims(settings)).encode())
    with pytest.raises(Unauthenticated):
        TokenService(settings).verify(f"{header}.{payload}.")


def test_hs256_signed_with_the_public_key_is_refused(settings: Settings) -> None:
    """The classic confusion: an attacker signs HS256 using the server's public key as the secret."""
    svc = TokenService(settings)
    signing_input = (
        _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        + "."
        + _b64(json.dumps(_claims(settings)).encode())
    )
    mac = hmac.new(svc.public_key_pem.encode(), signing_input.encode(), hashlib.sha256).digest()
    forged = f"{signing_input}.{_b64(mac)}"
    with pytest.raises(Unauthenticated, match="HS256"):
        svc.verify(forged)


def test_token_from_another_key_is_refused(settings: Settings) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = other.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    with pytest.raises(Unauthenticated):
        TokenService(settings).verify(jwt.encode(_claims(settings), pem, algorithm="RS256"))


@pytest.mark.parametrize(
    "over",
    [
        {"exp": int(time.time()) - 10},
        {"aud": "someone-else"},
        {"iss": "not-custody"},
        {"role": "superuser"},
    ],
)
def test_claims_are_checked(settings: Settings, over: dict[str, object]) -> None:
    svc = TokenService(settings)
    token = jwt.encode(_claims(settings, **over), settings.secret("jwt_key"), algorithm="ES256")
    with pytest.raises(Unauthenticated):
        svc.verify(token)


def test_tampered_payload_is_refused(settings: Settings) -> None:
    svc = TokenService(settings)
    token, _ = svc.issue(user_id="u1", role="investigator", agency="MPD")
    head, _payload, sig = token.split(".")
    evil = _b64(json.dumps(_claims(settings, role="admin")).encode())
    with pytest.raises(Unauthenticated):
        svc.verify(f"{head}.{evil}.{sig}")


def test_password_hashes() -> None:
    h = hash_password("correct horse battery")
    assert h.startswith("$argon2id$")
    assert verify_password(h, "correct horse battery")
    assert not verify_password(h, "wrong")
    assert not verify_password("not-a-hash", "x")
