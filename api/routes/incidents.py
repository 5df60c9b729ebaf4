"""Incidents from a crime center's CAD/RTCC system, signed with an integration's secret."""

from __future__ import annotations

import uuid

import anyio.to_thread
from fastapi import APIRouter, Header, Request
from pydantic import ValidationError

from api.schemas import IncidentIn, IncidentOut
from custody.errors import Unauthenticated, Unprocessable
from custody.ledger.entries import CustodyEvent, EventType
from custody.ledger.store import Ledger
from custody.services import incidents as svc

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
    so the body is read as bytes and parsed only once it is verified. Policy: draft (no alert sent)."""
    raw = await request.body()
    engine = request.app.state.engine
    ledger: Ledger = request.app.state.ledger
    integration_id = x_custody_integration.strip()

    def intake() -> IncidentOut:
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
        outcome = "accepted: case opened (draft)" if result.created else "accepted: existing case (draft)"
        _record(
            ledger,
            f"incident:accepted:{uuid.uuid4()}",
            actor=integration.id,
            agency=integration.agency,
            case_id=result.case.id,
            cad_number=body.cad_number,
            outcome=outcome,
        )
        return IncidentOut(case_id=result.case.id, status="draft")

    return await anyio.to_thread.run_sync(intake)
