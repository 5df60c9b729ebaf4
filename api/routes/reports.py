"""Custody reports for prosecutors and auditors: the bundle (JSON) and the PDF. Producing either is a
custody event."""

from __future__ import annotations

import asyncio
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from api.deps import SessionDep, require_roles
from custody import ratelimit
from custody.ledger.entries import CustodyEvent, EventType
from custody.ledger.store import Ledger
from custody.models import User
from custody.services import cases as case_svc
from reports.bundle import build_bundle
from reports.facts import bundle_facts, report_facts
from reports.pdf import render_report
from reports.signing import ReportSigner

router = APIRouter(tags=["reports"])
ReportReader = Annotated[User, Depends(require_roles("prosecutor", "auditor", "admin", "investigator"))]


async def _bundle_for(
    request: Request, session: Any, user: User, case_id: str, event: EventType, detail: str
) -> dict[str, Any]:
    """Record that the case's custody record is being produced (a ledger event of its own), then
    build the bundle under a checkpoint that covers that event's predecessors."""
    access = case_svc.case_access(session=session, user=user, case_id=case_id)
    settings = request.app.state.settings
    # Each report or bundle is a ledger entry for ever: a limit per user, checked before anything is
    # appended (a refused request leaves no entry).
    await asyncio.to_thread(
        ratelimit.take,
        request.app.state.engine,
        action="custody_report",
        subject=user.id,
        limit=settings.report_rate_per_min,
        window_s=60,
        refusal=(
            f"You generated {settings.report_rate_per_min} custody reports or bundles in the last "
            "minute, the most one person may (CUSTODY_REPORT_RATE_PER_MIN)"
        ),
    )
    facts = bundle_facts(
        session=session,
        case=access.case,
        user=user,
        pseudonymise=settings.report_pseudonymise_owners,
    )
    via = access.via_share
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
    facts = report_facts(
        session=session,
        case=case_svc.get_case(session=session, user=user, case_id=case_id),
        user=user,
        bundle=bundle,
        tz=settings.tz,
        pseudonymise=settings.report_pseudonymise_owners,
    )
    signer = ReportSigner.from_settings(settings)
    pdf = await asyncio.to_thread(
        render_report,
        bundle,
        facts,
        signer_subject=signer.subject,
        self_signed=signer.self_signed,
        timestamp_authority=signer.timestamp_authority,
    )
    # A TSA that gives no timestamp after its bounded retries is a 503 naming it (TimestampUnavailable),
    # never an unstamped report.
    pdf = await asyncio.to_thread(signer.sign, pdf)
    return Response(
        pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="custody-report-{case_id}.pdf"'},
    )
