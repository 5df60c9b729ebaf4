"""Per-subject rate limits in a sliding window, counted in the database.

Why: some reads are also writes. Generating a custody report or bundle appends an entry to the custody
ledger, which is append-only for ever, so an account (or a fuzzer holding its token) asking in a loop
would grow the ledger without bound. Counting in the database, not in one process's memory, keeps the
limit right when the API runs as several processes. Concurrent requests may each read the count before
either writes, so a burst can pass the limit by the number of requests in flight; what the limit stops
is a sustained stream.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from custody.db import session_scope
from custody.errors import TooManyRequests
from custody.models import RateEvent
from custody.timeutil import utcnow

_t = RateEvent.__table__.c  # type: ignore[attr-defined]


def admit(
    *,
    session: Session,
    action: str,
    subject: str,
    limit: int,
    window_s: float,
    refusal: str,
    now: datetime | None = None,
) -> None:
    """Count one use of `action` by `subject`, or raise TooManyRequests (nothing counted) when
    `limit` uses fall in the last `window_s` seconds. `refusal` says what was refused, for people;
    the message adds when to try again (Retry-After: when the oldest counted use leaves the window)."""
    now = now or utcnow()
    since = now - timedelta(seconds=window_s)
    in_window = sa.and_(_t.action == action, _t.subject == subject, _t.at >= since)
    count, oldest = session.execute(
        sa.select(sa.func.count(), sa.func.min(_t.at)).select_from(RateEvent).where(in_window)
    ).one()
    if count >= limit:
        wait_s = max(1, math.ceil((_aware(oldest) + timedelta(seconds=window_s) - now).total_seconds()))
        raise TooManyRequests(f"{refusal}; try again in {wait_s} s.", retry_after_s=wait_s)
    session.add(RateEvent(action=action, subject=subject, at=now))
    # Uses older than the window count for nothing: keep the table small.
    session.execute(
        sa.delete(RateEvent).where(
            col(RateEvent.action) == action, col(RateEvent.subject) == subject, col(RateEvent.at) < since
        )
    )
    session.flush()


def take(engine: Engine, *, action: str, subject: str, limit: int, window_s: float, refusal: str) -> None:
    """`admit` in a transaction of its own, committed at once: the count holds whatever the caller
    does next, and no write lock is held across the caller's other work."""
    with session_scope(engine) as session:
        admit(
            session=session, action=action, subject=subject, limit=limit, window_s=window_s, refusal=refusal
        )


def _aware(value: object) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value if value.tzinfo is not None else value.replace(tzinfo=utcnow().tzinfo)
