"""Retention, legal hold and disposition of evidence: the database rows and ledger entries.

The object store is the enforcer (storage/evidence.py sets COMPLIANCE retain-until and legal holds
on each exact object version; the store refuses to delete before then, whoever asks). These
functions decide what to ask of it and write down what was done, each step a ledger entry:
`retention_set` when an object is stored, `retention_extended` when its case's category moves to a
longer class (never shortened), `legal_hold_placed` / `legal_hold_released` with the reason, and
`evidence_disposed` with the SHA-256 when the version is deleted after an admin approved it. The
evidence row stays (status `disposed`): the ledger keeps the hash for ever.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlmodel import Session, col, select

from custody import retention as rules
from custody.errors import Conflict, Unprocessable
from custody.ledger.entries import CustodyEvent, EventType
from custody.models import Case, Evidence, User
from custody.settings import Settings
from custody.timeutil import utcnow

HOLD_ROLES = ("prosecutor", "admin")
CATEGORY_MAX = 64


def stamp(value: datetime) -> str:
    """RFC 3339 UTC to the second, as entries' facts carry it."""
    return value.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def days_for(settings: Settings, category: str | None) -> int:
    return rules.retention_days(
        category, classes=settings.retention_classes, default_days=settings.evidence_retention_days
    )


@dataclass(frozen=True)
class Retain:
    until: datetime
    days: int  # the class's days it was computed with (an extension adds only the difference)


def for_case(*, session: Session, settings: Settings, case_id: str, now: datetime | None = None) -> Retain:
    """The retain-until a file of this case stored now gets (its category's class)."""
    case = session.get(Case, case_id)
    days = days_for(settings, case.category if case is not None else None)
    return Retain(rules.retain_until(now or utcnow(), days=days, day_s=settings.retention_day_s), days)


def retention_set_event(ev: Evidence, agency: str, actor: str = "custody") -> tuple[str, CustodyEvent]:
    assert ev.retain_until is not None
    return (
        f"{ev.id}:retention_set",
        CustodyEvent(
            EventType.retention_set,
            actor=actor,
            agency=agency,
            case_id=ev.case_id,
            request_id=ev.request_id,
            evidence_id=ev.id,
            sha256=ev.sha256,
            detail="COMPLIANCE retention set on the stored object version",
            facts={"retain_until": stamp(ev.retain_until), "mode": "COMPLIANCE"},
        ),
    )


def check_category(category: str | None) -> str | None:
    value = rules.normalise_category(category)
    if value is not None and not re.fullmatch(rules.CATEGORY_PATTERN, value):
        raise Unprocessable(
            f"A case category is a short word or two (letters, digits, '-', '_'; at most {CATEGORY_MAX})."
        )
    return value


@dataclass(frozen=True)
class Extension:
    evidence_id: str
    object_key: str
    version_id: str | None
    previous: datetime | None
    until: datetime
    days: int


def extensions_for(*, session: Session, settings: Settings, case: Case) -> list[Extension]:
    """Every stored object of the case whose retention the case's (new) category lengthens: by the
    difference between the new class and the longest it had (so the same class again changes
    nothing, and a shorter one never shortens)."""
    days = days_for(settings, case.category)
    stmt = select(Evidence).where(Evidence.case_id == case.id, Evidence.status != "disposed")
    out: list[Extension] = []
    for ev in session.exec(stmt).all():
        proposed = rules.lengthened(
            ev.retain_until, had_days=ev.retention_days, days=days, day_s=settings.retention_day_s,
            stored_at=ev.received_at,
        )  # fmt: skip
        longer = rules.extended(ev.retain_until, proposed)
        if longer is not None:
            out.append(Extension(ev.id, ev.object_key, ev.version_id, ev.retain_until, longer, days))
    return out


def extended(
    *, session: Session, ext: Extension, actor: str, category: str | None
) -> tuple[str, CustodyEvent]:
    """Write down one extension the store accepted; returns its `retention_extended` entry."""
    ev = session.get(Evidence, ext.evidence_id)
    assert ev is not None
    ev.retain_until, ev.retention_days = ext.until, ext.days
    if ev.disposition == "pending":
        ev.disposition = None  # no longer past retention
    session.add(ev)
    case = session.get(Case, ev.case_id)
    facts: dict[str, str | int] = {"retain_until": stamp(ext.until), "mode": "COMPLIANCE"}
    if ext.previous is not None:
        facts["previous_retain_until"] = stamp(ext.previous)
    return (
        f"{ev.id}:retention_extended:{stamp(ext.until)}",
        CustodyEvent(
            EventType.retention_extended,
            actor=actor,
            agency=case.agency if case else None,
            case_id=ev.case_id,
            request_id=ev.request_id,
            evidence_id=ev.id,
            sha256=ev.sha256,
            detail=f"the case's retention class ({category or 'default'}) is longer: retention extended, "
            "never shortened",
            facts=facts,
        ),
    )


# --- legal hold --------------------------------------------------------------------------------


def check_reason(reason: str) -> str:
    text = reason.strip()
    if not text:
        raise Unprocessable("Give a reason (a court order, a preservation letter, ...); it is recorded.")
    return text


def hold_refusal(ev: Evidence, *, place: bool) -> None:
    """409 with the reason when the hold cannot be placed (or released) now."""
    if ev.status == "disposed":
        raise Conflict("This file was disposed of after its retention; there is nothing to hold.")
    if place and ev.legal_hold:
        raise Conflict("A legal hold is already on this file; release it first to place a new one.")
    if not place and not ev.legal_hold:
        raise Conflict("No legal hold is on this file; there is nothing to release.")


def hold_changed(
    *, session: Session, ev: Evidence, user: User, reason: str, placed: bool
) -> tuple[str, CustodyEvent]:
    """Write down a hold the store placed (or released); returns its ledger entry."""
    ev.legal_hold = placed
    if placed and ev.disposition in ("pending", "approved"):
        ev.disposition = None  # a hold stops a disposition under way
    session.add(ev)
    case = session.get(Case, ev.case_id)
    kind = EventType.legal_hold_placed if placed else EventType.legal_hold_released
    return (
        f"{kind}:{uuid.uuid4()}",
        CustodyEvent(
            kind,
            actor=user.id,
            agency=case.agency if case else user.agency,
            case_id=ev.case_id,
            request_id=ev.request_id,
            evidence_id=ev.id,
            sha256=ev.sha256,
            detail=reason[:500],
        ),
    )


# --- disposition ---------------------------------------------------------------------------------


def due(
    *, session: Session, settings: Settings, now: datetime | None = None, limit: int = 500
) -> tuple[int, list[Extension]]:
    """Evidence past its retain-until, not on hold and not yet proposed: each becomes `pending` (an
    admin approves it in the console), unless its case's class is now longer than the one it was
    stored with (a category changed while it was arriving, or a class lengthened in the settings):
    those are returned, to be extended instead. Nothing is proposed before its class allows.
    Returns how many became pending, and the extensions."""
    now = now or utcnow()
    stmt = (
        select(Evidence, Case)
        .join(Case, col(Case.id) == col(Evidence.case_id))
        .where(
            col(Evidence.retain_until) <= now,
            col(Evidence.legal_hold).is_(False),
            col(Evidence.disposition).is_(None),
            col(Evidence.status) != "disposed",
        )
        .order_by(col(Evidence.retain_until))
        .limit(limit)
    )
    longer: list[Extension] = []
    marked = 0
    for ev, case in session.exec(stmt).all():
        days = days_for(settings, case.category)
        proposed = rules.lengthened(
            ev.retain_until, had_days=ev.retention_days, days=days, day_s=settings.retention_day_s,
            stored_at=ev.received_at,
        )  # fmt: skip
        until = rules.extended(ev.retain_until, proposed)
        if until is not None:
            longer.append(Extension(ev.id, ev.object_key, ev.version_id, ev.retain_until, until, days))
            continue
        ev.disposition = "pending"
        session.add(ev)
        marked += 1
    return marked, longer


def pending(*, session: Session, limit: int = 200) -> list[Evidence]:
    stmt = (
        select(Evidence)
        .where(col(Evidence.disposition).in_(["pending", "approved"]))
        .order_by(col(Evidence.retain_until), col(Evidence.id))
        .limit(limit)
    )
    return list(session.exec(stmt).all())


def approve(*, session: Session, user: User, evidence_id: str) -> Evidence:
    """An admin approves deleting this version; the worker deletes it on its next round."""
    ev = session.get(Evidence, evidence_id)
    if ev is None or ev.disposition != "pending":
        raise Conflict("This file is not awaiting disposition (already approved, disposed, or kept).")
    if ev.legal_hold:
        raise Conflict("A legal hold is on this file; it cannot be disposed of until it is released.")
    ev.disposition, ev.disposition_by = "approved", user.id
    session.add(ev)
    return ev


def approved(*, session: Session, limit: int = 100) -> list[Evidence]:
    stmt = (
        select(Evidence)
        .where(Evidence.disposition == "approved", col(Evidence.legal_hold).is_(False))
        .order_by(col(Evidence.retain_until))
        .limit(limit)
    )
    return list(session.exec(stmt).all())


def disposed(*, session: Session, evidence_id: str) -> tuple[str, CustodyEvent] | None:
    """The version is deleted: the row says so (bytes gone, hash kept); returns its entry."""
    ev = session.get(Evidence, evidence_id)
    if ev is None:
        return None
    ev.status, ev.disposition = "disposed", "disposed"
    ev.detail = "disposed of after its retention; the ledger keeps its SHA-256"
    session.add(ev)
    case = session.get(Case, ev.case_id)
    return (
        f"{ev.id}:disposed",
        CustodyEvent(
            EventType.evidence_disposed,
            actor=ev.disposition_by or "custody-worker",
            agency=case.agency if case else None,
            case_id=ev.case_id,
            request_id=ev.request_id,
            evidence_id=ev.id,
            sha256=ev.sha256,
            detail="object version deleted after its retention, approved by an administrator",
            facts={"retain_until": stamp(ev.retain_until)} if ev.retain_until else None,
        ),
    )


def category_of(*, session: Session, evidence_id: str) -> str | None:
    ev = session.get(Evidence, evidence_id)
    case = session.get(Case, ev.case_id) if ev is not None else None
    return case.category if case is not None else None
