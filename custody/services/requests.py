"""Alerts, footage requests, consent tokens, request history and evidence records.

The Temporal workflow drives a request through its statuses; these functions are what its
activities and the API call. Each change is idempotent: a step retried by Temporal finds its
history row (keyed by the step) and changes nothing.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from custody.basis import Basis
from custody.basis import assign as assign_basis
from custody.errors import Conflict, Forbidden, Gone, NotFound, Unprocessable
from custody.geo import validate_point
from custody.models import (
    TERMINAL_STATUSES,
    Camera,
    CameraKind,
    Case,
    ConsentToken,
    Evidence,
    FootageRequest,
    Incident,
    Integration,
    RequestEvent,
    RequestStatus,
    User,
)
from custody.services.cases import get_case
from custody.services.registry import search_cameras
from custody.timeutil import rfc3339, utcnow


@dataclass(frozen=True, slots=True)
class AlertLimits:
    max_radius_m: float
    max_window_s: int


def create_alert(
    *,
    session: Session,
    user: User,
    case: Case,
    lat: float,
    lon: float,
    radius_m: float,
    window_start: datetime,
    window_end: datetime,
    description: str,
    limits: AlertLimits,
) -> tuple[Incident, list[FootageRequest]]:
    """Record an incident and one footage request per active camera in range (registered cameras
    are asked; integrated ones are pulled). A camera already asked for the same window in this case,
    with its request still open, is not asked twice: that request is returned instead."""
    now = utcnow()
    problem = validate_point(lat, lon)
    if problem:
        raise Unprocessable(problem)
    if window_start.tzinfo is None or window_end.tzinfo is None:
        raise Unprocessable(
            "The window's start and end (window_start, window_end) need a time zone offset "
            "(RFC 3339, e.g. 2026-11-26T21:40:00-05:00); a time without one is not guessed."
        )
    if not window_start < window_end:
        raise Unprocessable("The window's start (window_start) must be before its end (window_end).")
    if window_end > now + timedelta(seconds=5):
        raise Unprocessable(
            "The window ends in the future (window_end); footage can only be asked for past times."
        )
    span = (window_end - window_start).total_seconds()
    if span > limits.max_window_s:
        raise Unprocessable(
            f"The window is {span:.0f} s long; the program allows at most {limits.max_window_s} s "
            "(CUSTODY_MAX_WINDOW_S). Ask for a narrower window."
        )
    hits = search_cameras(
        session=session, lat=lat, lon=lon, radius_m=radius_m, max_radius_m=limits.max_radius_m
    )
    incident = Incident(
        case_id=case.id,
        lat=lat,
        lon=lon,
        radius_m=radius_m,
        window_start=window_start,
        window_end=window_end,
        description=description.strip(),
        created_by=user.id,
    )
    session.add(incident)
    session.flush()
    number = session.execute(
        sa.select(sa.func.count()).select_from(Incident).where(col(Incident.case_id) == case.id)
    ).scalar_one()  # the console numbers a case's alerts in the order they were sent
    requests: list[FootageRequest] = []
    for hit in hits:
        existing = session.exec(
            select(FootageRequest).where(
                FootageRequest.case_id == case.id,
                FootageRequest.camera_id == hit.id,
                FootageRequest.window_start == window_start,
                FootageRequest.window_end == window_end,
                col(FootageRequest.status).not_in([str(s) for s in TERMINAL_STATUSES]),
            )
        ).first()
        if existing is not None:
            requests.append(existing)
            continue
        req = FootageRequest(
            case_id=case.id,
            incident_id=incident.id,
            camera_id=hit.id,
            # an integrated camera is pulled only once staff approved it; until then its owner is asked
            kind=hit.kind if hit.approved else CameraKind.registered,
            window_start=window_start,
            window_end=window_end,
        )
        session.add(req)
        session.flush()
        session.add(
            RequestEvent(
                request_id=req.id,
                key="created",
                status=RequestStatus.requested,
                detail=f"asked by {user.agency} in alert {number} of this case",
            )
        )
        requests.append(req)
    session.flush()
    return incident, requests


@dataclass(frozen=True)
class AlertSummary:
    """One past alert as people read it: where, how far, which window, by whom, how many cameras."""

    id: str
    lat: float
    lon: float
    radius_m: float
    window_start: datetime
    window_end: datetime
    description: str
    created_at: datetime
    created_by: str
    created_by_name: str
    cameras_asked: int


def list_alerts(*, session: Session, case: Case) -> list[AlertSummary]:
    """The case's alerts, newest first, each with the number of cameras it asked (requests it
    created; a camera already asked by an earlier alert of the case is not asked twice)."""
    asked = sa.select(sa.func.count()).where(col(FootageRequest.incident_id) == col(Incident.id))
    rows = session.execute(
        sa.select(Incident, User, col(Integration.name), asked.scalar_subquery())
        .join(User, col(User.id) == col(Incident.created_by), isouter=True)
        .join(Integration, col(Integration.id) == col(Incident.created_by), isouter=True)  # CAD intake
        .where(col(Incident.case_id) == case.id)
        .order_by(col(Incident.created_at).desc(), col(Incident.id))
    ).all()
    return [
        AlertSummary(
            id=inc.id,
            lat=inc.lat,
            lon=inc.lon,
            radius_m=inc.radius_m,
            window_start=inc.window_start,
            window_end=inc.window_end,
            description=inc.description,
            created_at=inc.created_at,
            created_by=inc.created_by,
            created_by_name=user.display_name if user is not None else integration or inc.created_by,
            cameras_asked=int(count),
        )
        for inc, user, integration, count in rows
    ]


def list_requests(*, session: Session, case: Case) -> list[FootageRequest]:
    stmt = (
        select(FootageRequest)
        .where(FootageRequest.case_id == case.id)
        .order_by(col(FootageRequest.created_at), col(FootageRequest.id))
    )
    return list(session.exec(stmt).all())


def get_request(*, session: Session, user: User, request_id: str) -> FootageRequest:
    req = session.get(FootageRequest, request_id)
    if req is None:
        raise NotFound(f"No footage request {request_id}.")
    get_case(session=session, user=user, case_id=req.case_id)  # 404 for another agency's request
    return req


def end_reasons(*, session: Session, requests: list[FootageRequest]) -> dict[str, str]:
    """Why each failed or cancelled request ended (its last history note), in one query."""
    ended = [r.id for r in requests if r.status in (RequestStatus.failed, RequestStatus.cancelled)]
    if not ended:
        return {}
    rows = session.exec(
        select(RequestEvent)
        .where(col(RequestEvent.request_id).in_(ended))
        .where(col(RequestEvent.status).in_([RequestStatus.failed, RequestStatus.cancelled]))
        .order_by(col(RequestEvent.at), col(RequestEvent.id))
    ).all()
    return {row.request_id: row.detail for row in rows}


def history(*, session: Session, request_id: str) -> list[RequestEvent]:
    stmt = (
        select(RequestEvent)
        .where(RequestEvent.request_id == request_id)
        .order_by(col(RequestEvent.at), col(RequestEvent.id))
    )
    return list(session.exec(stmt).all())


def load_request(*, session: Session, request_id: str) -> FootageRequest:
    req = session.get(FootageRequest, request_id)
    if req is None:
        raise NotFound(f"No footage request {request_id}.")
    return req


def transition(*, session: Session, request_id: str, status: str, key: str, detail: str = "") -> bool:
    """Move a request to `status` once per `key`. Returns False (and changes nothing) when this step
    already ran or the request had already ended."""
    if session.exec(
        select(RequestEvent).where(RequestEvent.request_id == request_id, RequestEvent.key == key)
    ).first():
        return False
    req = load_request(session=session, request_id=request_id)
    if req.status in TERMINAL_STATUSES:
        return False
    req.status = status
    req.updated_at = utcnow()
    session.add(req)
    session.add(RequestEvent(request_id=request_id, key=key, status=status, detail=detail[:500]))
    try:
        session.flush()
    except IntegrityError:  # the same step committed concurrently
        session.rollback()
        return False
    return True


def note(*, session: Session, request_id: str, key: str, detail: str) -> bool:
    """A history line that does not change the status (reminders)."""
    if session.exec(
        select(RequestEvent).where(RequestEvent.request_id == request_id, RequestEvent.key == key)
    ).first():
        return False
    req = load_request(session=session, request_id=request_id)
    session.add(RequestEvent(request_id=request_id, key=key, status=req.status, detail=detail[:500]))
    session.flush()
    return True


# --- consent tokens ---------------------------------------------------------------------------


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def token_id_of(token_hash: str) -> str:
    """A public name for a token (ledger actor): derived from its hash, useless as a credential."""
    return "owner-" + hashlib.sha256(token_hash.encode()).hexdigest()[:16]


def issue_token(*, session: Session, request_id: str, expires_at: datetime) -> tuple[str, str]:
    """A fresh unguessable link token for a request, and its public id; only the hash is stored."""
    raw = secrets.token_urlsafe(32)
    req = load_request(session=session, request_id=request_id)
    token_hash = hash_token(raw)
    token_id = token_id_of(token_hash)
    session.add(ConsentToken(token_hash=token_hash, token_id=token_id, request_id=req.id))
    if req.expires_at is None:
        req.expires_at = expires_at
        session.add(req)
    session.flush()
    return raw, token_id


def request_for_token(*, session: Session, raw: str) -> tuple[FootageRequest, str]:
    """The one request a consent token opens, with the token's public id; or 403/410 with the reason."""
    invalid = "This link is not valid. Use the link in the most recent email you received."
    if not raw or len(raw) > 200:
        raise Forbidden(invalid)
    token = session.get(ConsentToken, hash_token(raw))
    if token is None:
        raise Forbidden(invalid)
    req = load_request(session=session, request_id=token.request_id)
    if req.status in TERMINAL_STATUSES:
        raise Gone(f"This request has ended ({req.status}); nothing more is needed from you. Thank you.")
    if req.expires_at is not None and utcnow() >= req.expires_at:
        raise Gone(f"This link expired at {rfc3339(req.expires_at)}; nothing more is needed from you.")
    return req, token.token_id


# --- evidence ---------------------------------------------------------------------------------


def add_evidence(
    *,
    session: Session,
    req: FootageRequest,
    evidence_id: str,
    filename: str,
    object_key: str,
    version_id: str | None,
    size: int,
    sha256: str,
    content_type: str,
    basis: Basis | None,
) -> Evidence:
    """A new evidence row, named with its basis (custody/basis.py): none raises NoBasis."""
    ev = Evidence(
        id=evidence_id,
        request_id=req.id,
        case_id=req.case_id,
        camera_id=req.camera_id,
        filename=filename,
        object_key=object_key,
        version_id=version_id,
        size=size,
        sha256=sha256,
        content_type=content_type,
    )
    assign_basis(ev, basis)
    session.add(ev)
    session.flush()
    return ev


def evidence_of_request(*, session: Session, request_id: str) -> list[Evidence]:
    stmt = select(Evidence).where(Evidence.request_id == request_id).order_by(col(Evidence.received_at))
    return list(session.exec(stmt).all())


def list_evidence(*, session: Session, case: Case) -> list[Evidence]:
    stmt = (
        select(Evidence)
        .where(Evidence.case_id == case.id)
        .order_by(col(Evidence.received_at), col(Evidence.id))
    )
    return list(session.exec(stmt).all())


def get_evidence(*, session: Session, user: User, evidence_id: str) -> Evidence:
    ev = session.get(Evidence, evidence_id)
    if ev is None:
        raise NotFound(f"No evidence {evidence_id}.")
    get_case(session=session, user=user, case_id=ev.case_id)
    return ev


def cameras_of(*, session: Session, camera_ids: set[str]) -> list[Camera]:
    return list(session.exec(select(Camera).where(col(Camera.id).in_(camera_ids))).all())


def camera_labels(*, session: Session, camera_ids: set[str]) -> dict[str, str]:
    """Camera id -> label, in one query."""
    rows = session.exec(select(Camera.id, Camera.label).where(col(Camera.id).in_(camera_ids))).all()
    return {cid: label for cid, label in rows}


def camera_of(*, session: Session, camera_id: str) -> Camera:
    cam = session.get(Camera, camera_id)
    if cam is None:
        raise NotFound(f"No camera {camera_id}.")
    return cam


def mark_files_complete(*, session: Session, req: FootageRequest) -> None:
    if req.status != RequestStatus.consented:
        raise Conflict(f"Files can only be completed after consent; this request is {req.status}.")
    if req.files_complete:
        raise Conflict("This request's files were already marked complete.")
    if not evidence_of_request(session=session, request_id=req.id):
        raise Unprocessable("No file was received yet; upload at least one file before completing.")
    req.files_complete = True
    session.add(req)
    session.flush()


def count_open_requests(*, session: Session, incident_id: str) -> int:
    stmt = (
        sa.select(sa.func.count())
        .select_from(FootageRequest)
        .where(
            FootageRequest.incident_id == incident_id,  # type: ignore[arg-type]
            col(FootageRequest.status).not_in([str(s) for s in TERMINAL_STATUSES]),
        )
    )
    return int(session.execute(stmt).scalar_one())
