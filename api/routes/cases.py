"""Cases, alerts and footage requests (investigators), and the case's evidence."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Request
from fastapi.responses import StreamingResponse
from sqlalchemy.engine import Engine
from sqlmodel import Session
from temporalio.service import RPCError

from activities import relay
from api.deps import SessionDep, SettingsDep, StaffWriter, require_json, require_roles
from api.params import Limit, Offset
from api.schemas import (
    AlertIn,
    AlertListItem,
    AlertOut,
    CancelIn,
    CaseIn,
    CaseOut,
    EvidenceDetailOut,
    EvidenceOut,
    HistoryItem,
    RequestBrief,
    RequestListItem,
    RequestOut,
)
from api.temporal import cancel_request as temporal_cancel
from api.temporal import temporal_client
from custody.db import session_scope
from custody.errors import Conflict, ServiceUnavailable
from custody.ledger.entries import CustodyEvent, EventType, request_facts
from custody.ledger.store import Ledger
from custody.models import Case, Evidence, FootageRequest, Incident, User
from custody.services import cases as case_svc
from custody.services import requests as svc
from custody.services import retention
from custody.services import workcopy as copy_svc
from custody.settings import Settings
from custody.timeutil import utcnow
from custody.workcopy import byte_range
from storage.evidence import EvidenceStore

log = logging.getLogger("custody.api")
router = APIRouter(tags=["cases"])
json_body = [Depends(require_json)]
CaseReader = Annotated[User, Depends(require_roles("investigator", "admin", "prosecutor", "auditor"))]


def _ledger(request: Request) -> Ledger:
    ledger: Ledger = request.app.state.ledger
    return ledger


@router.post("/cases", status_code=201, response_model=CaseOut, dependencies=json_body)
def create_case(body: CaseIn, user: StaffWriter, session: SessionDep) -> CaseOut:
    case = case_svc.create_case(session=session, user=user, title=body.title, description=body.description)
    if body.category is not None:
        case.category = retention.check_category(body.category)  # its files' retention class
        session.add(case)
        session.flush()
    return CaseOut.model_validate(case)


@router.get("/cases", response_model=list[CaseOut])
def list_cases(
    user: CaseReader, session: SessionDep, limit: Limit = 100, offset: Offset = 0
) -> list[CaseOut]:
    return [
        CaseOut.model_validate(c)
        for c in case_svc.list_cases(session=session, user=user, limit=limit, offset=offset)
    ]


@router.get("/cases/{case_id}", response_model=CaseOut)
def get_case(case_id: str, user: CaseReader, session: SessionDep, request: Request) -> CaseOut:
    """The case. Reading it through a share is a custody event."""
    access = case_svc.case_access(session=session, user=user, case_id=case_id)
    record_share_view(_ledger(request), user, access, "case record viewed")
    return CaseOut.model_validate(access.case)


def record_share_view(ledger: Ledger, user: User, access: case_svc.CaseAccess, detail: str) -> None:
    """Another agency reading a case through a share leaves a `case_viewed` entry (own-agency reads
    of the case record do not; every evidence view and download does, for everyone)."""
    if access.share is not None:
        ledger.record(
            CustodyEvent(
                EventType.case_viewed,
                actor=user.id,
                agency=user.agency,
                case_id=access.case.id,
                detail=detail + access.via_share,
            ),
            idempotency_key=f"{EventType.case_viewed}:{uuid.uuid4()}",
        )


@router.post(
    "/cases/{case_id}/alerts",
    status_code=202,
    response_model=AlertOut,
    dependencies=json_body,
    responses={503: {"description": "The database is busy; nothing was stored"}},
)
async def post_alert(
    case_id: str, body: AlertIn, user: StaffWriter, settings: SettingsDep, request: Request
) -> AlertOut:
    """Ask every registered camera in range for the window's footage (integrated cameras are pulled).
    `queued: true` means the workflow service was not answering: the requests are recorded and start
    as soon as it is back (the worker's relay), nothing needs to be sent again."""
    result = await start_alert(request, settings, user, case_id, body)
    return AlertOut(
        incident_id=result.incident.id,
        requests=[RequestBrief.model_validate(r) for r in result.requests],
        queued=result.queued,
    )


@dataclass(frozen=True)
class AlertResult:
    incident: Incident
    requests: list[FootageRequest]
    queued: bool  # recorded, but its workflow starts when the workflow service answers again


def _record_alert(
    engine: Engine, ledger: Ledger, settings: Settings, user: User, case_id: str, body: AlertIn
) -> tuple[Incident, list[FootageRequest], Case, bool]:
    """The alert's rows in one short transaction, then its `request_created` entries (a thread:
    never on the event loop). Returns whether there is a workflow to start."""
    with session_scope(engine) as session:
        case = case_svc.get_case_for_write(session=session, user=user, case_id=case_id)
        incident, reqs = svc.create_alert(
            session=session,
            user=user,
            case=case,
            lat=body.lat,
            lon=body.lon,
            radius_m=body.radius_m,
            window_start=body.window_start,
            window_end=body.window_end,
            description=body.description,
            limits=svc.AlertLimits(settings.max_radius_m, settings.max_window_s),
        )
        new = [r for r in reqs if r.incident_id == incident.id]
        if not new:
            incident.dispatched_at = utcnow()  # nothing to start
            session.add(incident)
        cameras = {c.id: c for c in svc.cameras_of(session=session, camera_ids={r.camera_id for r in new})}
    ledger.append(
        [
            (
                f"{r.id}:request_created",
                CustodyEvent(
                    EventType.request_created,
                    actor=user.id,
                    agency=case.agency,
                    case_id=case.id,
                    request_id=r.id,
                    detail=f"{r.kind} camera asked for its footage",
                    facts=request_facts(
                        camera_id=r.camera_id,
                        camera_label=cameras[r.camera_id].label,
                        camera_kind=r.kind,
                        window_start=r.window_start,
                        window_end=r.window_end,
                    ),
                ),
            )
            for r in new
        ]
    )
    return incident, reqs, case, bool(new)


async def start_alert(
    request: Request, settings: Settings, user: User, case_id: str, body: AlertIn
) -> AlertResult:
    """Record the alert and its requests with their `request_created` entries, then start the
    incident's workflow (activities/relay.py: the outbox). The workflow service not answering within
    the RPC timeout leaves the alert queued for the relay, never half done. Shared by the JSON API
    and the console's alert form."""
    engine: Engine = request.app.state.engine
    incident, reqs, case, startable = await asyncio.to_thread(
        _record_alert, engine, _ledger(request), settings, user, case_id, body
    )
    if not startable:
        return AlertResult(incident, reqs, queued=False)
    try:
        client = await temporal_client(request)
        await relay.start_incident(
            client, settings, incident_id=incident.id, case_id=case.id, agency=case.agency
        )
    except (RPCError, RuntimeError, TimeoutError, ServiceUnavailable) as exc:
        log.warning("alert %s queued: the workflow service did not answer (%s)", incident.id, exc)
        return AlertResult(incident, reqs, queued=True)
    await asyncio.to_thread(relay.mark_dispatched, engine, incident.id)
    return AlertResult(incident, reqs, queued=False)


@router.get("/cases/{case_id}/requests", response_model=list[RequestListItem])
def list_requests(case_id: str, user: CaseReader, session: SessionDep) -> list[RequestListItem]:
    case = case_svc.get_case(session=session, user=user, case_id=case_id)
    return [RequestListItem.model_validate(r) for r in svc.list_requests(session=session, case=case)]


@router.get("/requests/{request_id}", response_model=RequestOut)
def get_request(request_id: str, user: CaseReader, session: SessionDep) -> RequestOut:
    req = svc.get_request(session=session, user=user, request_id=request_id)
    hist = [HistoryItem.model_validate(h) for h in svc.history(session=session, request_id=req.id)]
    return RequestOut.model_validate({**req.model_dump(), "history": hist})


@router.post("/requests/{request_id}/cancel")
async def cancel_request(
    request_id: str,
    user: StaffWriter,
    session: SessionDep,
    request: Request,
    body: Annotated[CancelIn | None, Body()] = None,
) -> dict[str, str]:
    """Cancel an open request (owner not yet done, or an integrated pull under way) with an optional
    reason, recorded in its history and the ledger. The owner of a registered camera is told that
    nothing more is needed. 409 once the request has ended or its footage is being verified."""
    req = svc.get_request(session=session, user=user, request_id=request_id)
    case_svc.get_case_for_write(session=session, user=user, case_id=req.case_id)
    status = await temporal_cancel(request, req, actor=user.id, reason=body.reason if body else "")
    return {"id": req.id, "status": status}


@router.get("/cases/{case_id}/alerts", response_model=list[AlertListItem])
def list_alerts(case_id: str, user: CaseReader, session: SessionDep) -> list[AlertListItem]:
    """The case's alerts, newest first: where, how far, which window, by whom, how many cameras."""
    case = case_svc.get_case(session=session, user=user, case_id=case_id)
    return [AlertListItem.model_validate(a) for a in svc.list_alerts(session=session, case=case)]


@router.get("/cases/{case_id}/evidence", response_model=list[EvidenceOut])
def list_evidence(case_id: str, user: CaseReader, session: SessionDep) -> list[EvidenceOut]:
    case = case_svc.get_case(session=session, user=user, case_id=case_id)
    return [EvidenceOut.model_validate(e) for e in svc.list_evidence(session=session, case=case)]


@router.get("/evidence/{evidence_id}", response_model=EvidenceDetailOut)
def get_evidence(
    evidence_id: str, user: CaseReader, session: SessionDep, settings: SettingsDep, request: Request
) -> EvidenceDetailOut:
    """The evidence's record: the master, its working copy, ffprobe's container facts of the master
    and a flag when its stated recording time falls outside the requested window. Viewing it is a
    custody event."""
    ev = svc.get_evidence(session=session, user=user, evidence_id=evidence_id)
    _record_access(request, session, user, ev, EventType.evidence_viewed, "record viewed")
    base = EvidenceOut.model_validate(ev).model_dump()
    return EvidenceDetailOut(**base, **copy_svc.facts(session=session, ev=ev, tz=settings.tz))


@router.get("/evidence/{evidence_id}/working-copy")
def working_copy(
    evidence_id: str, user: CaseReader, session: SessionDep, request: Request
) -> StreamingResponse:
    """The working copy (H.264/AAC MP4 made from the master), with HTTP Range so a video player can
    seek. Its SHA-256 is in `X-Content-SHA256`; the master is `/evidence/{id}/download`. Playing it
    is a custody event (`evidence_viewed`), recorded once per playback: for a request without Range
    or one starting at byte 0, not for the many pieces a player asks for while seeking."""
    ev = svc.get_evidence(session=session, user=user, evidence_id=evidence_id)
    key = copy_svc.require_working_copy(ev)
    size = ev.working_copy_size or 0
    span = byte_range(request.headers.get("range"), size)
    first, last = span if span is not None else (0, size - 1)
    store: EvidenceStore = request.app.state.store
    obj = store.client.get_object(store.bucket, key, offset=first, length=last - first + 1)
    if first == 0:
        _record_access(request, session, user, ev, EventType.evidence_viewed, "working copy played")

    def body() -> Iterator[bytes]:
        try:
            yield from obj.stream(1024 * 1024)
        finally:
            obj.close()
            obj.release_conn()

    headers = {
        "X-Content-SHA256": ev.working_copy_sha256 or "",
        "Content-Length": str(last - first + 1),
        "Accept-Ranges": "bytes",
        "Content-Disposition": f'inline; filename="{ev.id}-working.mp4"',
        "Cache-Control": "private, no-store",
    }
    if span is not None:
        headers["Content-Range"] = f"bytes {first}-{last}/{size}"
    return StreamingResponse(
        body(),
        status_code=206 if span is not None else 200,
        media_type=ev.working_copy_content_type or "video/mp4",
        headers=headers,
    )


def _record_access(
    request: Request, session: Session, user: User, ev: Evidence, event: EventType, detail: str
) -> None:
    """Every view and download of evidence is its own custody event (a fresh idempotency key each),
    naming the share when it went through one."""
    access = case_svc.case_access(session=session, user=user, case_id=ev.case_id)
    _ledger(request).record(
        CustodyEvent(
            event,
            actor=user.id,
            agency=user.agency,
            case_id=ev.case_id,
            request_id=ev.request_id,
            evidence_id=ev.id,
            sha256=ev.sha256,
            detail=detail + access.via_share,
        ),
        idempotency_key=f"{event}:{uuid.uuid4()}",
    )


@router.get("/evidence/{evidence_id}/download")
def download_evidence(
    evidence_id: str, user: CaseReader, session: SessionDep, request: Request
) -> StreamingResponse:
    """The file's bytes, with its SHA-256 in `X-Content-SHA256`. The download is a custody event."""
    ev = svc.get_evidence(session=session, user=user, evidence_id=evidence_id)
    if ev.status not in ("verified", "attached"):
        raise Conflict(f"This file is {ev.status}, not verified; only verified evidence can be downloaded.")
    store: EvidenceStore = request.app.state.store  # one client (and connection pool) for the app
    obj = store.client.get_object(store.bucket, ev.object_key, version_id=ev.version_id)
    _record_access(request, session, user, ev, EventType.evidence_downloaded, f"downloaded by {user.role}")

    def body() -> Iterator[bytes]:
        try:
            yield from obj.stream(1024 * 1024)
        finally:
            obj.close()
            obj.release_conn()

    safe_name = "".join(c if c.isalnum() or c in "._-" else "_" for c in ev.filename) or ev.id
    return StreamingResponse(
        body(),
        media_type=ev.content_type,
        headers={
            "X-Content-SHA256": ev.sha256,
            "Content-Length": str(ev.size),
            "Content-Disposition": f'attachment; filename="{safe_name}"',
        },
    )
