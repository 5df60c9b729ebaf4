"""Custody reports for prosecutors and auditors: the bundle (JSON) and the PDF. Producing either is a
custody event."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from api.deps import SessionDep, require_roles
from custody.ledger.entries import CustodyEvent, EventType
from custody.ledger.store import Ledger
from custody.models import Camera, Owner, User
from custody.services import cases as case_svc
from custody.services import requests as svc
from custody.timeutil import rfc3339
from reports.bundle import BundleFacts, build_bundle
from reports.pdf import render_report
from reports.signing import ReportSigner

router = APIRouter(tags=["reports"])
ReportReader = Annotated[User, Depends(require_roles("prosecutor", "auditor", "admin", "investigator"))]


def _facts(session: Any, user: User, case_id: str, pseudonymise: bool) -> BundleFacts:
    case = case_svc.get_case(session=session, user=user, case_id=case_id)
    evidence = svc.list_evidence(session=session, case=case)
    cameras: dict[str, dict[str, Any]] = {}
    requests = []
    for req in svc.list_requests(session=session, case=case):
        cam = session.get(Camera, req.camera_id)
        owner = session.get(Owner, cam.owner_id) if cam is not None else None
        if cam is not None:
            cameras[cam.id] = {"label": cam.label, "kind": cam.kind, "clock_offset_s": cam.clock_offset_s}
        shown = None
        if owner is not None:
            shown = (
                "owner-" + hashlib.sha256(owner.id.encode()).hexdigest()[:12] if pseudonymise else owner.name
            )
        requests.append(
            {
                "id": req.id,
                "camera_id": req.camera_id,
                "camera_label": cam.label if cam is not None else None,
                "kind": req.kind,
                "status": req.status,
                "owner": shown,
                "window_start": rfc3339(req.window_start),
                "window_end": rfc3339(req.window_end),
            }
        )
    return BundleFacts(
        case=case,
        evidence=evidence,
        cameras=cameras,
        requests=requests,
        generated_by=f"{user.username} ({user.role})",
    )


async def _bundle_for(
    request: Request, session: Any, user: User, case_id: str, event: EventType, detail: str
) -> dict[str, Any]:
    """Record that the case's custody record is being produced (a ledger event of its own), then
    build the bundle under a checkpoint that covers that event's predecessors."""
    facts = _facts(session, user, case_id, request.app.state.settings.report_pseudonymise_owners)
    via = case_svc.case_access(session=session, user=user, case_id=case_id).via_share
    ledger: Ledger = request.app.state.ledger
    await asyncio.to_thread(
        ledger.record,
        CustodyEvent(event, actor=user.id, agency=user.agency, case_id=case_id, detail=detail + via),
        idempotency_key=f"{event}:{uuid.uuid4()}",
    )
    bundle, _ = await asyncio.to_thread(build_bundle, ledger, facts)
    return bundle


@router.get("/cases/{case_id}/custody-bundle.json")
async def custody_bundle(
    case_id: str, user: ReportReader, session: SessionDep, request: Request
) -> JSONResponse:
    """Everything needed to verify the case's custody offline: evidence hashes, custody entries as
    hashed, their inclusion proofs, the signed checkpoint and the public key (docs/bundle.md)."""
    bundle = await _bundle_for(
        request,
        session,
        user,
        case_id,
        EventType.bundle_generated,
        f"custody bundle downloaded by {user.role}",
    )
    return JSONResponse(
        bundle, headers={"Content-Disposition": f'attachment; filename="custody-bundle-{case_id}.json"'}
    )


@router.get("/cases/{case_id}/custody-report.pdf")
async def custody_report(case_id: str, user: ReportReader, session: SessionDep, request: Request) -> Response:
    """The case's chain-of-custody report as a PDF. Generating it is a custody event."""
    bundle = await _bundle_for(
        request,
        session,
        user,
        case_id,
        EventType.report_generated,
        f"custody report generated for {user.role}",
    )
    settings = request.app.state.settings
    signer = ReportSigner(settings.secret("report_signing_cert"), settings.secret("report_signing_key"))
    pdf = await asyncio.to_thread(
        render_report, bundle, signer_subject=signer.subject, self_signed=signer.self_signed
    )
    pdf = await asyncio.to_thread(signer.sign, pdf)
    return Response(
        pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="custody-report-{case_id}.pdf"'},
    )
