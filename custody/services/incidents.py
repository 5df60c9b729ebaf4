"""Incidents posted by a crime center's CAD/RTCC system (`POST /incidents`).

The sender is an integration (`custody integrations create`) that signs each request with its
secret: `X-Custody-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`. The
time bounds a replay to 300 s, and the signatures seen in that window are kept in the database so a
replay is refused whichever API replica it reaches. An incident opens a case titled from its CAD
number and type, once per agency: the same CAD number again finds that case. First policy: draft
(no alert is sent; an investigator decides) unless CUSTODY_INCIDENT_POLICY=send, when a new case
also starts an alert within the stricter incident limits.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, delete, select

from custody.db import session_scope
from custody.errors import Conflict, NotFound, Unauthenticated, Unprocessable
from custody.models import Agency, Case, Incident, IncidentSignature, Integration, Role, User
from custody.settings import Settings
from custody.timeutil import utcnow

#: How far a signature's time may be from ours, and how long a seen signature is remembered.
WINDOW_S = 300


def create_integration(*, session: Session, name: str, agency: str) -> tuple[Integration, str]:
    """A new integration and its secret (returned here once; the caller shows it, never logs it)."""
    name = name.strip()
    if not name or len(name) > 200:
        raise Unprocessable("Give the integration a name of 1 to 200 characters (e.g. 'MPD CAD').")
    if session.get(Agency, agency) is None:
        codes = ", ".join(a.code for a in session.exec(select(Agency).order_by(Agency.code)).all())
        raise Unprocessable(f"Unknown agency {agency!r}; use one of {codes}.")
    secret = secrets.token_hex(32)
    integration = Integration(name=name, agency=agency, secret=secret)
    session.add(integration)
    session.flush()
    return integration, secret


def list_integrations(*, session: Session) -> list[Integration]:
    return list(session.exec(select(Integration).order_by(col(Integration.created_at))).all())


def disable_integration(*, session: Session, integration_id: str) -> Integration:
    """Stop an integration's incidents (a leaked secret, a retired CAD system): every replica refuses
    its next request with `disabled`. There is no enabling again: create a new integration, so a
    leaked secret can never become valid a second time."""
    integration = session.get(Integration, integration_id)
    if integration is None:
        raise NotFound(f"No integration {integration_id!r}; `custody integrations list` shows them.")
    if integration.disabled:
        raise Conflict(f"Integration {integration.name!r} is already disabled.")
    integration.disabled = True
    session.add(integration)
    return integration


def _parse_signature(header: str) -> tuple[int, str]:
    parts = dict(p.strip().split("=", 1) for p in header.split(",") if "=" in p)
    t, v1 = parts.get("t", ""), parts.get("v1", "").lower()
    if not t.isdigit() or len(v1) != 64 or any(c not in "0123456789abcdef" for c in v1):
        raise Unauthenticated(
            "X-Custody-Signature must read t=<unix seconds>,v1=<64 hex digits of HMAC-SHA256>.",
            code="bad_signature",
        )
    return int(t), v1


def verify(
    *, engine: Engine, integration_id: str, signature_header: str, body: bytes, now: datetime | None = None
) -> Integration:
    """The integration that signed `body`, once: raises Unauthenticated (with the reason) for an
    unknown or disabled integration, a malformed or wrong signature, a time more than 300 s off, or a
    signature already seen. A valid signature is remembered (its own transaction) before the body is
    used, so two replicas receiving the same request at once accept it only once."""
    now = now or utcnow()
    with session_scope(engine) as session:
        integration = session.get(Integration, integration_id) if integration_id else None
    if integration is None:
        raise Unauthenticated(
            "Unknown integration in X-Custody-Integration; use the id `custody integrations create` printed.",
            code="unknown_integration",
        )
    if integration.disabled:
        raise Unauthenticated(
            "This integration is disabled; ask the agency's administrator.", code="disabled"
        )
    t, given = _parse_signature(signature_header)
    if abs(now.timestamp() - t) > WINDOW_S:
        raise Unauthenticated(
            f"The signature's time t={t} is more than {WINDOW_S} s from ours; sign with the current "
            "time (check the sender's clock).",
            code="stale_signature",
        )
    expected = hmac.new(integration.secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, given):
        raise Unauthenticated(
            "The signature does not match this body; sign the exact bytes sent with the "
            "integration's secret.",
            code="bad_signature",
        )
    try:
        with session_scope(engine) as session:
            cutoff = now - timedelta(seconds=WINDOW_S)
            session.exec(delete(IncidentSignature).where(col(IncidentSignature.seen_at) < cutoff))
            session.add(IncidentSignature(signature=given, integration_id=integration.id, seen_at=now))
    except sa.exc.IntegrityError as exc:
        raise Unauthenticated(
            "This signature was used before (a replay); sign each request anew.", code="replayed_signature"
        ) from exc
    return integration


@dataclass(frozen=True, slots=True)
class Intake:
    case: Case
    created: bool  # False: the CAD number's case already existed


def _find(session: Session, agency: str, cad_number: str) -> Case | None:
    stmt = select(Case).where(Case.agency == agency, Case.cad_number == cad_number)
    return session.exec(stmt).first()


def record_incident(
    *,
    engine: Engine,
    integration: Integration,
    cad_number: str,
    type: str,
    lat: float,
    lon: float,
    occurred_at: datetime,
    description: str,
) -> Intake:
    """The agency's case for this CAD number, opened now if it has none (a draft: no alert). Two
    requests racing on one new CAD number meet the unique index; the loser finds the winner's case."""
    with session_scope(engine) as session:
        found = _find(session, integration.agency, cad_number)
    if found is not None:
        return Intake(found, False)
    # No time in this free text: it could only be written in one zone (it was UTC), and people read
    # times in the program's zone. The case keeps `cad_occurred_at`; pages show it in that zone.
    text = (
        f"{type} at {lat:.6f}, {lon:.6f} (CAD {cad_number}, from {integration.name}).\n{description}".strip()
    )
    try:
        with session_scope(engine) as session:
            case = Case(
                title=f"CAD {cad_number}: {type}"[:200],
                description=text,
                agency=integration.agency,
                created_by=integration.id,
                cad_number=cad_number,
                cad_type=type[:100],
                cad_lat=lat,
                cad_lon=lon,
                cad_occurred_at=occurred_at,
                cad_integration_id=integration.id,
            )
            session.add(case)
        return Intake(case, True)
    except sa.exc.IntegrityError:
        with session_scope(engine) as session:
            found = _find(session, integration.agency, cad_number)
        if found is None:
            raise
        return Intake(found, False)


def acting_user(integration: Integration) -> User:
    """The integration as the alert service's user (not stored): the agency's investigator role,
    its id as the creator of the alert and the actor of its ledger entries, its name as shown."""
    return User(
        id=integration.id,
        username=f"integration-{integration.id[:8]}",
        password_hash="!",  # noqa: S106 (no hash matches "!": never a login)
        role=Role.investigator,
        agency=integration.agency,
        full_name=integration.name,
    )


def alert_window(
    occurred_at: datetime, window_s: int, now: datetime | None = None
) -> tuple[datetime, datetime]:
    """The footage window around `occurred_at`, cut at now (footage is only asked for past times)."""
    half = timedelta(seconds=window_s / 2)
    return occurred_at - half, min(occurred_at + half, now or utcnow())


@dataclass(frozen=True, slots=True)
class DraftAlert:
    """The alert a CAD incident suggests: its place, the incident radius, the window around its time."""

    lat: float
    lon: float
    radius_m: float
    window_start: datetime
    window_end: datetime
    description: str


def suggested_alert(
    *,
    settings: Settings,
    cad_number: str,
    type: str,
    lat: float,
    lon: float,
    occurred_at: datetime,
    now: datetime | None = None,
) -> DraftAlert:
    """The incident's alert within the stricter incident limits (never wider than the program's):
    what policy `send` sends at once, and what the console offers under policy `draft`."""
    start, end = alert_window(occurred_at, min(settings.incident_window_s, settings.max_window_s), now)
    return DraftAlert(
        lat=lat,
        lon=lon,
        radius_m=min(settings.incident_radius_m, settings.max_radius_m),
        window_start=start,
        window_end=end,
        description=f"CAD {cad_number}: {type}",
    )


def draft_alert(*, case: Case, settings: Settings, has_alerts: bool) -> DraftAlert | None:
    """A CAD case's suggested alert while it has none (a draft waiting for an investigator)."""
    if has_alerts or case.cad_number is None or case.cad_lat is None or case.cad_lon is None:
        return None
    if case.cad_occurred_at is None:
        return None
    return suggested_alert(
        settings=settings,
        cad_number=case.cad_number,
        type=case.cad_type or "incident",
        lat=case.cad_lat,
        lon=case.cad_lon,
        occurred_at=case.cad_occurred_at,
    )


def draft_case_ids(*, session: Session, cases: list[Case]) -> set[str]:
    """Which of these cases came from the incident feed and still have no alert: the investigator's
    drafts to confirm."""
    cad = [c.id for c in cases if c.cad_number is not None]
    if not cad:
        return set()
    alerted = set(session.exec(select(Incident.case_id).where(col(Incident.case_id).in_(cad))).all())
    return set(cad) - alerted


def integration_name(*, session: Session, integration_id: str | None) -> str | None:
    """What people call the integration that opened a case (its name, not its id)."""
    if integration_id is None:
        return None
    integration = session.get(Integration, integration_id)
    return integration.name if integration else None


def first_alert(*, engine: Engine, case_id: str) -> str | None:
    """The case's first alert, if any: what the same CAD number sent again answers with."""
    with session_scope(engine) as session:
        stmt = select(Incident.id).where(Incident.case_id == case_id).order_by(col(Incident.created_at))
        return session.exec(stmt).first()
