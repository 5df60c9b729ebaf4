"""Browser sessions for the web console (staff) and for residents.

Why server-side sessions instead of a signed cookie: logging out, disabling a user or a resident
withdrawing must end the session at once, and a stolen database holds only hashes of the cookies.
Each session carries its own CSRF token for the synchronizer-token pattern on every form.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

import sqlalchemy as sa
from sqlmodel import Session, col

from custody.models import WebSession
from custody.timeutil import utcnow

STAFF = "staff"
RESIDENT = "resident"


def _hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def start(*, session: Session, kind: str, subject_id: str, ttl_s: int) -> tuple[str, WebSession]:
    """A new session: the raw cookie value (shown to the browser only) and the stored row."""
    raw = secrets.token_urlsafe(32)
    row = WebSession(
        token_hash=_hash(raw),
        kind=kind,
        subject_id=subject_id,
        csrf=secrets.token_urlsafe(32),
        expires_at=utcnow() + timedelta(seconds=ttl_s),
    )
    session.add(row)
    # Old sessions of this subject that have expired are of no use to anyone.
    session.execute(
        sa.delete(WebSession).where(
            col(WebSession.subject_id) == subject_id, col(WebSession.expires_at) < utcnow()
        )
    )
    session.flush()
    return raw, row


def load(*, session: Session, raw: str | None, kind: str) -> WebSession | None:
    """The live session a cookie names, or None (missing, unknown, tampered, expired, other kind)."""
    if not raw or len(raw) > 200:
        return None
    row = session.get(WebSession, _hash(raw))
    if row is None or row.kind != kind or row.expires_at <= utcnow():
        return None
    return row


def end(*, session: Session, raw: str | None) -> None:
    if raw and len(raw) <= 200:
        session.execute(sa.delete(WebSession).where(col(WebSession.token_hash) == _hash(raw)))
        session.flush()


def end_all(*, session: Session, subject_id: str) -> None:
    session.execute(sa.delete(WebSession).where(col(WebSession.subject_id) == subject_id))
    session.flush()


def end_every(*, session: Session, kind: str | None = None) -> int:
    """End every browser session (of one kind: staff or resident), e.g. after a suspected compromise
    or a JWT key rotation, which leaves these server-side sessions standing. Returns how many."""
    query = sa.delete(WebSession)
    if kind is not None:
        query = query.where(col(WebSession.kind) == kind)
    ended = session.execute(query).rowcount  # type: ignore[attr-defined]
    session.flush()
    return int(ended or 0)


def csrf_ok(row: WebSession, submitted: str | None) -> bool:
    return bool(submitted) and hmac.compare_digest(row.csrf.encode(), (submitted or "").encode())
