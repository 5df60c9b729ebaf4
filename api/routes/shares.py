"""Sharing a case read-only with another agency (or one of its users), and revoking it.

Granting and revoking are custody events: the ledger entry is written before the share takes
effect, so no access through a share can exist without its record.
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Depends, Request

from api.deps import SessionDep, SettingsDep, StaffWriter, require_json
from api.schemas import ShareIn, ShareOut
from custody.ledger.entries import CustodyEvent, EventType, Outcome
from custody.ledger.store import Ledger
from custody.models import CaseShare, User
from custody.services import audit
from custody.services import cases as case_svc

router = APIRouter(tags=["sharing"])


def share_out(share: CaseShare) -> ShareOut:
    return ShareOut.model_validate({**share.model_dump(), "state": case_svc.share_state(share)})


async def record_share_event(
    request: Request, user: User, share: CaseShare, event: EventType, detail: str
) -> None:
    ledger: Ledger = request.app.state.ledger
    await asyncio.to_thread(
        ledger.record,
        CustodyEvent(
            event,
            actor=user.id,
            agency=user.agency,
            case_id=share.case_id,
            detail=detail,
            component=audit.component_of(request.url.path),
            outcome=Outcome.success,
        ),
        idempotency_key=f"{share.id}:{event}",
    )


@router.post(
    "/cases/{case_id}/shares", status_code=201, response_model=ShareOut, dependencies=[Depends(require_json)]
)
async def create_share(
    case_id: str,
    body: ShareIn,
    user: StaffWriter,
    session: SessionDep,
    settings: SettingsDep,
    request: Request,
) -> ShareOut:
    share = case_svc.new_share(
        session=session,
        user=user,
        case_id=case_id,
        agency=body.agency,
        username=body.username,
        expires_at=body.expires_at,
        reason=body.reason,
        max_days=settings.share_max_days,
    )
    detail = case_svc.describe_share(share, body.username.strip().lower() if body.username else None)
    await record_share_event(request, user, share, EventType.case_shared, detail)
    session.add(share)
    session.flush()
    return share_out(share)


@router.get("/cases/{case_id}/shares", response_model=list[ShareOut])
def list_shares(case_id: str, user: StaffWriter, session: SessionDep) -> list[ShareOut]:
    return [share_out(s) for s in case_svc.list_shares(session=session, user=user, case_id=case_id)]


@router.post("/cases/{case_id}/shares/{share_id}/revoke", response_model=ShareOut)
async def revoke_share(
    case_id: str, share_id: str, user: StaffWriter, session: SessionDep, request: Request
) -> ShareOut:
    share = case_svc.revocable_share(session=session, user=user, case_id=case_id, share_id=share_id)
    await record_share_event(
        request, user, share, EventType.share_revoked, f"share {share.id} with {share.agency} revoked"
    )
    return share_out(case_svc.mark_revoked(session=session, user=user, share=share))
