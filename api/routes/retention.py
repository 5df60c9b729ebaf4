"""Retention and legal hold of evidence: a case's category (its retention class) and S3 legal holds.

The store enforces both (COMPLIANCE retain-until and object-lock legal hold on each exact object
version); these routes ask it and record what was done in the ledger (custody/services/retention.py).
"""

from __future__ import annotations

import asyncio
from typing import Annotated

import urllib3
from fastapi import APIRouter, Depends, Request
from minio.error import S3Error
from sqlalchemy.engine import Engine

from api.deps import SettingsDep, StaffWriter, require_json, require_roles
from api.schemas import CaseCategoryIn, CaseOut, HoldIn, HoldOut
from custody.db import write_scope
from custody.ledger.store import Ledger
from custody.models import User
from custody.services import cases as case_svc
from custody.services import requests as svc
from custody.services import retention
from custody.settings import Settings
from storage.evidence import EvidenceStore, extend_retention, set_legal_hold

router = APIRouter(tags=["retention"])
json_body = [Depends(require_json)]
HoldKeeper = Annotated[User, Depends(require_roles(*retention.HOLD_ROLES))]


def _ledger(request: Request) -> Ledger:
    ledger: Ledger = request.app.state.ledger
    return ledger


def change_category(
    engine: Engine, ledger: Ledger, store: EvidenceStore, settings: Settings, user: User, case_id: str,
    category: str | None,
) -> CaseOut:  # fmt: skip
    """Set the case's category, then extend each of its objects' retention in the store to the new
    class (never shortened) and record `retention_extended` for each. Safe to repeat: a version
    already extended is skipped, one the store refused stays as it was and the call fails."""
    value = retention.check_category(category)
    with write_scope(engine) as session:
        case = case_svc.get_case_for_write(session=session, user=user, case_id=case_id)
        case.category = value
        session.add(case)
        session.flush()
        todo = retention.extensions_for(session=session, settings=settings, case=case)
        out = CaseOut.model_validate(case)
    for ext in todo:
        try:
            extend_retention(
                store.client,
                bucket=store.bucket,
                key=ext.object_key,
                version_id=ext.version_id,
                until=ext.until,
            )
        except (S3Error, urllib3.exceptions.HTTPError, OSError) as exc:  # 503 when the store is down
            raise store.explain(exc) from exc
        with write_scope(engine) as session:
            entry = retention.extended(session=session, ext=ext, actor=user.id, category=value)
        ledger.append([entry])
    return out


@router.patch("/cases/{case_id}", response_model=CaseOut, dependencies=json_body)
async def patch_case(
    case_id: str, body: CaseCategoryIn, user: StaffWriter, settings: SettingsDep, request: Request
) -> CaseOut:
    """Change the case's category (its retention class). Its evidence's COMPLIANCE retention is
    extended when the new class is longer, never shortened."""
    return await asyncio.to_thread(
        change_category, request.app.state.engine, _ledger(request), request.app.state.store, settings,
        user, case_id, body.category,
    )  # fmt: skip


def change_hold(
    engine: Engine,
    ledger: Ledger,
    store: EvidenceStore,
    user: User,
    evidence_id: str,
    reason: str,
    place: bool,
) -> HoldOut:
    why = retention.check_reason(reason)
    with write_scope(engine) as session:
        ev = svc.get_evidence(session=session, user=user, evidence_id=evidence_id)
        case_svc.get_case_for_write(session=session, user=user, case_id=ev.case_id)
        retention.hold_refusal(ev, place=place)
        # The store first, inside the row's transaction: the row says "held" only once the store holds.
        try:
            set_legal_hold(
                store.client, bucket=store.bucket, key=ev.object_key, version_id=ev.version_id, on=place
            )
        except (S3Error, urllib3.exceptions.HTTPError, OSError) as exc:  # 503 when the store is down
            raise store.explain(exc) from exc
        entry = retention.hold_changed(session=session, ev=ev, user=user, reason=why, placed=place)
        out = HoldOut(id=ev.id, legal_hold=ev.legal_hold, retain_until=ev.retain_until)
    ledger.append([entry])
    return out


@router.post("/evidence/{evidence_id}/legal-hold", response_model=HoldOut, dependencies=json_body)
async def place_hold(evidence_id: str, body: HoldIn, user: HoldKeeper, request: Request) -> HoldOut:
    """Place an S3 object-lock legal hold on the file's exact object version (prosecutor, admin):
    nobody can delete it, even after its retention, until the hold is released. 409 if already held."""
    return await asyncio.to_thread(
        change_hold, request.app.state.engine, _ledger(request), request.app.state.store, user, evidence_id,
        body.reason, True,
    )  # fmt: skip


@router.post("/evidence/{evidence_id}/legal-hold/release", response_model=HoldOut, dependencies=json_body)
async def release_hold(evidence_id: str, body: HoldIn, user: HoldKeeper, request: Request) -> HoldOut:
    """Release the legal hold (prosecutor, admin), with a reason. 409 if none is on the file."""
    return await asyncio.to_thread(
        change_hold, request.app.state.engine, _ledger(request), request.app.state.store, user, evidence_id,
        body.reason, False,
    )  # fmt: skip
