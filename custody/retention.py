"""Retention rules: how long evidence is kept, by the category of its case. Pure functions.

Why classes: a homicide's footage is kept for decades, a shoplifting's for the agency's default.
Each stored object gets COMPLIANCE retention until `stored_at + days * day_s` (the store itself then
refuses to delete it earlier, whoever asks); a case moved to a longer class extends every object's
retention, and nothing ever shortens it (COMPLIANCE forbids it, and so do these rules).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

DAY_S = 86400
#: A case category: a short word or a few (ASCII letters, digits, space, '-', '_'), as the API's
#: schema states it; compared in lower case.
CATEGORY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9 _-]{0,63}$"


def normalise_category(category: str | None) -> str | None:
    """A category as stored and looked up: trimmed, lower case; empty means none."""
    if category is None:
        return None
    text = category.strip().lower()
    return text or None


def retention_days(category: str | None, *, classes: Mapping[str, int], default_days: int) -> int:
    """The class of `category` (CUSTODY_RETENTION_CLASSES), else the default
    (CUSTODY_EVIDENCE_RETENTION_DAYS). A class shorter than the default never lowers it."""
    key = normalise_category(category)
    days = classes.get(key, default_days) if key is not None else default_days
    return max(days, default_days)


def retain_until(stored_at: datetime, *, days: int, day_s: float = DAY_S) -> datetime:
    """When an object stored at `stored_at` may first be deleted, to the whole second (S3 keeps
    retention dates in seconds; rounding up never keeps anything shorter than its class)."""
    until = stored_at + timedelta(seconds=days * day_s)
    if until.microsecond:
        until = until.replace(microsecond=0) + timedelta(seconds=1)
    return until


def lengthened(
    current: datetime | None, *, had_days: int | None, days: int, day_s: float, stored_at: datetime
) -> datetime:
    """The retain-until under a class of `days` for an object whose retention is `current`, set
    with a class of `had_days`: the difference added (an unknown past: counted from `stored_at`)."""
    if current is None or had_days is None:
        return retain_until(stored_at, days=days, day_s=day_s)
    return current + timedelta(seconds=max(0, days - had_days) * day_s)


def extended(current: datetime | None, proposed: datetime) -> datetime | None:
    """The new retain-until when `proposed` lengthens `current`; None when it would not (never shorten)."""
    if current is not None and proposed <= current:
        return None
    return proposed


def disposable(*, retain: datetime | None, legal_hold: bool, now: datetime) -> bool:
    """Evidence may be proposed for disposition once its retention has passed and no hold is on it."""
    return retain is not None and not legal_hold and retain <= now
