"""Password hashing (argon2id) and staff access tokens (JWT via python-jose).

Why one algorithm: a verifier that accepts whatever `alg` a token names can be fooled (`alg: none`,
or an HS256 token keyed with the public RSA/EC key). custody accepts exactly the algorithm in
settings and checks `aud`, `iss`, `exp` and `iat` on every token.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from cryptography.hazmat.primitives import serialization
from jose import JWTError, jwt

from custody.errors import ConfigurationError, Unauthenticated
from custody.settings import Settings
from custody.timeutil import utcnow

_hasher = PasswordHasher()

ROLES = ("investigator", "prosecutor", "auditor", "admin")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


#: A valid hash of a random password, verified against when the username is unknown, so a failed
#: login takes as long whether or not the user exists.
_DUMMY_HASH = _hasher.hash(uuid.uuid4().hex)


def burn_password_check(password: str) -> None:
    verify_password(_DUMMY_HASH, password)


@dataclass(frozen=True, slots=True)
class TokenClaims:
    sub: str
    role: str
    agency: str
    jti: str


class TokenService:
    """Issues and checks staff access tokens with the single algorithm from settings."""

    def __init__(self, settings: Settings) -> None:
        self.algorithm = settings.jwt_algorithm
        self.issuer = settings.jwt_issuer
        self.audience = settings.jwt_audience
        self.ttl = timedelta(seconds=settings.jwt_ttl_s)
        key = settings.secret("jwt_key")
        # A PEM given on one line with \n escapes was unescaped by Settings (custody/settings.py).
        if self.algorithm == "HS256":
            if len(key) < 32:
                raise ConfigurationError("CUSTODY_JWT_KEY must be at least 32 characters for HS256")
            self._signing_key: str = key
            self._verify_key: str = key
        else:
            try:
                private = serialization.load_pem_private_key(key.encode(), password=None)
            except ValueError as exc:
                raise ConfigurationError(
                    f"CUSTODY_JWT_KEY must be a PEM private key for {self.algorithm}: {exc}"
                ) from exc
            self._signing_key = key
            self._verify_key = (
                private.public_key()
                .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
                .decode()
            )

    @property
    def public_key_pem(self) -> str:
        return self._verify_key

    def issue(self, *, user_id: str, role: str, agency: str) -> tuple[str, int]:
        now = utcnow()
        claims = {
            "sub": user_id,
            "role": role,
            "agency": agency,
            "iat": int(now.timestamp()),
            "exp": int((now + self.ttl).timestamp()),
            "aud": self.audience,
            "iss": self.issuer,
            "jti": uuid.uuid4().hex,
        }
        token = jwt.encode(claims, self._signing_key, algorithm=self.algorithm)
        return token, int(self.ttl.total_seconds())

    def verify(self, token: str) -> TokenClaims:
        try:
            header = jwt.get_unverified_header(token)
        except JWTError as exc:
            raise Unauthenticated("The access token is malformed; log in again at POST /auth/token.") from exc
        if header.get("alg") != self.algorithm:
            raise Unauthenticated(
                f"Tokens signed with {header.get('alg')!r} are not accepted; "
                "log in again at POST /auth/token."
            )
        try:
            claims = jwt.decode(
                token,
                self._verify_key,
                algorithms=[self.algorithm],
                audience=self.audience,
                issuer=self.issuer,
                options={
                    "require_exp": True,
                    "require_iat": True,
                    "require_aud": True,
                    "require_iss": True,
                    "require_sub": True,
                    "require_jti": True,
                },
            )
        except JWTError as exc:
            raise Unauthenticated(
                f"The access token was refused ({exc}); log in again at POST /auth/token."
            ) from exc
        role, agency = claims.get("role"), claims.get("agency")
        if role not in ROLES or not isinstance(agency, str):
            raise Unauthenticated("The access token lacks a valid role or agency; log in again.")
        return TokenClaims(sub=str(claims["sub"]), role=str(role), agency=agency, jti=str(claims["jti"]))
