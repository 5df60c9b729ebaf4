"""Incidents from a crime center's CAD/RTCC system, signed with an integration's secret."""

from __future__ import annotations

import logging
import uuid

import anyio.to_thread
from fastapi import APIRouter, Header, Request
from pydantic import ValidationError

from api.routes.cases import start_alert
from api.schemas import AlertIn, IncidentIn, IncidentOut
from custody.errors import CustodyError, Unauthenticated, Unprocessable
from custody.ledger.entries import CustodyEvent, EventType
from custody.ledger.store import Ledger
from custody.models import Integration
from custody.services import incidents as svc
from custody.settings import Settings

log = logging.getLogger("custody.api")

router = APIRouter(tags=["incidents"])


def _record(
    ledger: Ledger,
    key: str,
    *,
    actor: str,
    agency: str | None,
    case_id: str | None,
    cad_number: str,
    outcome: str,
) -> None:
    """One `incident_received` entry per intake, accepted or refused: who sent it, which CAD number,
    what came of it. Never the secret or the signature."""
    facts: dict[str, str | int] = {"integration": actor[:64], "outcome": outcome[:300]}
    if cad_number:
        facts["cad_number"] = cad_number[:64]
    ledger.append(
        [
            (
                key,
                CustodyEvent(
                    EventType.incident_received,
                    actor=actor[:64] or "unknown",
                    agency=agency,
                    case_id=case_id,
                    detail=outcome[:300],
                    facts=facts,
                ),
            )
        ]
    )


@router.post(
    "/incidents",
    status_code=202,
    response_model=IncidentOut,
    openapi_extra={
        "requestBody": {"content": {"application/json": {"schema": IncidentIn.model_json_schema()}}}
    },
    responses={401: {"description": "Unknown or disabled integration, bad, stale or replayed signature"}},
)
async def post_incident(
    request: Request,
    x_custody_integration: str = Header(default=""),
    x_custody_signature: str = Header(default=""),
) -> IncidentOut:
    """Open (or find) the agency's case for a CAD incident. The signature is over the raw bytes sent,
    so the body is read as bytes and parsed only once it is verified. CUSTODY_INCIDENT_POLICY: `draft`
    sends nothing; `send` starts a new case's alert at once (the same CAD number again: its alert)."""
    raw = await request.body()
    engine = request.app.state.engine
    ledger: Ledger = request.app.state.ledger
    integration_id = x_custody_integration.strip()

    def intake() -> tuple[Integration, IncidentIn, svc.Intake]:
        try:
            integration = svc.verify(
                engine=engine, integration_id=integration_id, signature_header=x_custody_signature, body=raw
            )
        except Unauthenticated as exc:
            _record(
                ledger,
                f"incident:refused:{uuid.uuid4()}",
                actor=integration_id,
                agency=None,
                case_id=None,
                cad_number="",
                outcome=f"refused ({exc.code}): {exc.message}",
            )
            raise
        try:
            body = IncidentIn.model_validate_json(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "body"
            message = f"{where}: {first['msg']}"
            _record(
                ledger,
                f"incident:refused:{uuid.uuid4()}",
                actor=integration.id,
                agency=integration.agency,
                case_id=None,
                cad_number="",
                outcome=f"refused: {message}",
            )
            raise Unprocessable(f"The incident is not valid: {message}.") from exc
        result = svc.record_incident(
            engine=engine,
            integration=integration,
            cad_number=body.cad_number,
            type=body.type,
            lat=body.lat,
            lon=body.lon,
            occurred_at=body.occurred_at,
            description=body.description,
        )
        return integration, body, result

    integration, body, result = await anyio.to_thread.run_sync(intake)
    settings: Settings = request.app.state.settings
    alert_id: str | None = None
    if settings.incident_policy == "send":
        if result.created:
            alert_id, outcome = await _send_alert(request, settings, integration, result.case.id, body)
        else:
            alert_id = await anyio.to_thread.run_sync(
                lambda: svc.first_alert(engine=engine, case_id=result.case.id)
            )
            outcome = "accepted: existing case" + (f", alert {alert_id}" if alert_id else " (draft)")
    else:
        outcome = "accepted: case opened (draft)" if result.created else "accepted: existing case (draft)"
    await anyio.to_thread.run_sync(
        lambda: _record(
            ledger,
            f"incident:accepted:{uuid.uuid4()}",
            actor=integration.id,
            agency=integration.agency,
            case_id=result.case.id,
            cad_number=body.cad_number,
            outcome=outcome,
        )
    )
    return IncidentOut(case_id=result.case.id, alert_id=alert_id, status="sent" if alert_id else "draft")


async def _send_alert(
    request: Request, settings: Settings, integration: Integration, case_id: str, body: IncidentIn
) -> tuple[str | None, str]:
    """Policy `send`: the new case's alert, through the same service as `POST /cases/{id}/alerts`,
    with the incident limits (never wider than the program's). An alert the service refuses (say
    occurred_at is ahead of now, so there is no past window) leaves the case a draft, with the
    reason in the ledger entry, rather than refusing an incident that was received and recorded."""
    draft = svc.suggested_alert(
        settings=settings,
        cad_number=body.cad_number,
        type=body.type,
        lat=body.lat,
        lon=body.lon,
        occurred_at=body.occurred_at,
    )
    try:
        alert = AlertIn(
            lat=draft.lat,
            lon=draft.lon,
            radius_m=draft.radius_m,
            window_start=draft.window_start,
            window_end=draft.window_end,
            description=draft.description,
        )
        result = await start_alert(request, settings, svc.acting_user(integration), case_id, alert)
    except (CustodyError, ValidationError) as exc:
        reason = exc.message if isinstance(exc, CustodyError) else str(exc.errors()[0]["msg"])
        log.warning("incident case %s left a draft: its alert was refused (%s)", case_id, reason)
        return None, f"accepted: case opened (draft; alert not sent: {reason})"
    queued = " (queued)" if result.queued else ""
    return result.incident.id, f"accepted: case opened, alert {result.incident.id} sent{queued}"
