"""Administrators' pages: staff users, agencies, and the camera registry with its owners (where
self-registered integrated cameras are approved)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlmodel import Session, col, select

from activities import disposition
from api.deps import SessionDep
from api.temporal import temporal_client
from api.web.render import page, redirect
from api.web.session import StaffSession, check_csrf, checked_form
from custody import basis, recorder
from custody.errors import Conflict, CustodyError, Forbidden
from custody.ledger.entries import Component, EventType, Outcome
from custody.models import Camera, Case, Evidence, Owner, Role, User, WebSession
from custody.services import audit, registry, retention
from custody.services import users as user_svc

router = APIRouter(include_in_schema=False, prefix="/console/admin")
log = logging.getLogger("custody.console")


def _admin(user: User) -> None:
    if user.role != "admin":
        raise Forbidden("These pages are for administrators.")


async def _audit(
    request: Request,
    session: Session,
    by: User,
    type: EventType,
    detail: str,
    *,
    agency: str | None = None,
    outcome: Outcome = Outcome.success,
) -> None:
    """A privileged action on the record (CJIS 5.4.1.1), once its change is committed (a refused one
    rolled back): SQLite's one writer is then free for the ledger."""
    if outcome is Outcome.success:
        session.commit()
    else:
        session.rollback()
    await asyncio.to_thread(
        audit.record,
        request.app.state.ledger,
        type,
        actor=by.id,
        agency=agency or by.agency,
        component=Component.console,
        outcome=outcome,
        detail=detail,
    )


def _users_page(
    request: Request, session: Session, staff: tuple[User, Any], status: int = 200, **extra: Any
) -> Response:
    user, web = staff
    return page(
        request,
        "web/admin_users.html",
        status=status,
        user=user,
        web=web,
        users=user_svc.list_users(session=session, actor=staff[0]),
        agencies=[
            a for a in user_svc.list_agencies(session=session) if user_svc.administers(staff[0], a.code)
        ],
        roles=list(Role.__members__),
        notice=request.query_params.get("notice"),
        **extra,
    )


@router.get("/users")
def users_page(request: Request, session: SessionDep, staff: StaffSession) -> Response:
    _admin(staff[0])
    return _users_page(request, session, staff)


@router.post("/users")
async def create_user(request: Request, session: SessionDep, staff: StaffSession) -> Response:
    _admin(staff[0])
    form = await checked_form(request, staff[1])
    form_agency = form.get("agency", "")
    try:
        user_svc.check_administers(staff[0], form_agency)
        created = user_svc.create_user(
            session=session,
            username=form.get("username", ""),
            password=form.get("password", ""),
            role=form.get("role", ""),
            agency=form_agency,
            full_name=form.get("full_name", ""),
            title=form.get("title", ""),
        )
    except CustodyError as exc:
        form.pop("password", None)
        await _audit(
            request, session, staff[0], EventType.user_created, f"refused: {exc.code}",
            outcome=Outcome.failure,
        )  # fmt: skip
        return _users_page(request, session, staff, status=exc.status, error=exc.message, form=form)
    await _audit(
        request, session, staff[0], EventType.user_created,
        f"user {created.id} as {created.role} of {created.agency}", agency=created.agency,
    )  # fmt: skip
    return redirect("/console/admin/users?notice=created")


@router.post("/users/{user_id}/active")
async def set_active(user_id: str, request: Request, session: SessionDep, staff: StaffSession) -> Response:
    _admin(staff[0])
    form = await checked_form(request, staff[1])
    active = form.get("active") == "true"
    changed = user_svc.set_active(session=session, user_id=user_id, active=active, by=staff[0])
    await _audit(
        request, session, staff[0], EventType.user_disabled,
        f"user {changed.id} {'enabled again' if active else 'disabled'}", agency=changed.agency,
    )  # fmt: skip
    return redirect("/console/admin/users?notice=updated")


@router.post("/users/{user_id}/role")
async def set_role(user_id: str, request: Request, session: SessionDep, staff: StaffSession) -> Response:
    """Change a user's role (a permission change, on the record)."""
    _admin(staff[0])
    form = await checked_form(request, staff[1])
    try:
        changed, before = user_svc.set_role(
            session=session, user_id=user_id, role=form.get("role", ""), by=staff[0]
        )
    except CustodyError as exc:
        await _audit(
            request, session, staff[0], EventType.role_changed, f"user {user_id}: refused: {exc.code}",
            outcome=Outcome.failure,
        )  # fmt: skip
        return _users_page(request, session, staff, status=exc.status, error=exc.message)
    await _audit(
        request, session, staff[0], EventType.role_changed,
        f"user {changed.id} from {before} to {changed.role}", agency=changed.agency,
    )  # fmt: skip
    return redirect("/console/admin/users?notice=updated")


def _agencies_page(
    request: Request, session: Session, staff: tuple[User, Any], status: int = 200, **extra: Any
) -> Response:
    user, web = staff
    return page(
        request,
        "web/admin_agencies.html",
        status=status,
        user=user,
        web=web,
        agencies=user_svc.list_agencies(session=session),
        notice=request.query_params.get("notice"),
        **extra,
    )


@router.get("/agencies")
def agencies_page(request: Request, session: SessionDep, staff: StaffSession) -> Response:
    _admin(staff[0])
    return _agencies_page(request, session, staff)


@router.post("/agencies")
async def create_agency(request: Request, session: SessionDep, staff: StaffSession) -> Response:
    _admin(staff[0])
    form = await checked_form(request, staff[1])
    try:
        user_svc.check_runs_program(staff[0])
        agency = user_svc.create_agency(session=session, code=form.get("code", ""), name=form.get("name", ""))
    except CustodyError as exc:
        await _audit(
            request,
            session,
            staff[0],
            EventType.agency_added,
            f"refused: {exc.code}",
            outcome=Outcome.failure,
        )
        return _agencies_page(request, session, staff, status=exc.status, error=exc.message, form=form)
    await _audit(
        request, session, staff[0], EventType.agency_added, f"agency {agency.code}", agency=agency.code
    )
    return redirect("/console/admin/agencies?notice=created")


@router.get("/cameras")
def cameras_page(request: Request, session: SessionDep, staff: StaffSession, q: str = "") -> Response:
    return _cameras_page(request, session, staff, q)


def _cameras_page(
    request: Request,
    session: SessionDep,
    staff: tuple[User, WebSession],
    q: str = "",
    probe: tuple[str, recorder.ProbeResult] | None = None,
) -> Response:
    user, web = staff
    _admin(user)
    stmt = select(Camera, Owner).join(Owner, col(Owner.id) == col(Camera.owner_id))
    if not registry.is_program_admin(user):  # owners' contact details stay with their agency
        stmt = stmt.where(col(Owner.agency) == user.agency)
    q = q.strip()[:100]
    if q:
        like = f"%{q.lower()}%"
        stmt = stmt.where(
            col(Camera.label).ilike(like) | col(Owner.name).ilike(like) | col(Owner.email).ilike(like)
        )
    rows = session.exec(
        stmt.order_by(col(Camera.active).desc(), col(Camera.created_at).desc()).limit(500)
    ).all()
    return page(
        request,
        "web/admin_cameras.html",
        user=user,
        web=web,
        rows=rows,
        q=q,
        probe=probe,
        notice=request.query_params.get("notice"),
    )


@router.post("/cameras/{camera_id}/test-pull")
async def test_pull(camera_id: str, request: Request, session: SessionDep, staff: StaffSession) -> Response:
    """Before approving an integrated camera, ask its recorder for the last minute once (bounded in
    time and bytes, nothing stored) and show the answer in plain words."""
    _admin(staff[0])
    await check_csrf(request, staff[1])
    camera = registry.get_camera(session=session, camera_id=camera_id)
    if not registry.may_edit(staff[0], camera):
        raise Forbidden(f"This camera was registered by {camera.agency}; only they test or approve it.")
    if not camera.pull_url:
        result = recorder.ProbeResult(False, "this camera has no recorder address")
    else:
        allowed = request.app.state.settings.pull_networks
        result = await asyncio.to_thread(recorder.test_pull, camera.pull_url, allowed=allowed)
    return _cameras_page(request, session, staff, camera.label, probe=(camera.id, result))


@router.post("/cameras/{camera_id}/approve")
async def approve(camera_id: str, request: Request, session: SessionDep, staff: StaffSession) -> Response:
    _admin(staff[0])
    await check_csrf(request, staff[1])
    camera = registry.approve_camera(session=session, user=staff[0], camera_id=camera_id)
    session.commit()  # SQLite's one writer must be free for the ledger
    settings = request.app.state.settings
    await asyncio.to_thread(
        basis.record_agreement,
        request.app.state.ledger,
        camera,
        terms_version=settings.consent_terms_version,
        component=Component.console,
    )
    return redirect("/console/admin/cameras?notice=approved")


# --- disposition of evidence past its retention (activities/disposition.py) -----------------------


def _disposable(session: Session, user: User) -> list[tuple[Evidence, Case]]:
    """Evidence awaiting disposition that this administrator may approve (an agency's administrator:
    its own cases; the program's: all)."""
    found = retention.pending(session=session)
    cases = {c.id: c for c in session.exec(select(Case).where(col(Case.id).in_({e.case_id for e in found})))}
    return [
        (e, cases[e.case_id])
        for e in found
        if e.case_id in cases and (registry.is_program_admin(user) or cases[e.case_id].agency == user.agency)
    ]


@router.get("/disposition")
def disposition_page(request: Request, session: SessionDep, staff: StaffSession) -> Response:
    user, web = staff
    _admin(user)
    return page(
        request,
        "web/admin_disposition.html",
        user=user,
        web=web,
        rows=_disposable(session, user),
        notice=request.query_params.get("notice"),
    )


@router.post("/disposition/{evidence_id}/approve")
async def approve_disposition(
    evidence_id: str, request: Request, session: SessionDep, staff: StaffSession
) -> Response:
    """Approve deleting this file's object version; the worker's next round deletes it (started now)."""
    _admin(staff[0])
    await check_csrf(request, staff[1])
    if evidence_id not in {e.id for e, _ in _disposable(session, staff[0])}:
        raise Conflict("This file is not awaiting disposition for your agency.")
    retention.approve(session=session, user=staff[0], evidence_id=evidence_id)
    session.commit()
    try:  # the worker deletes it now instead of at the next interval; if not, it will then
        client = await temporal_client(request)
        await disposition.run_now(client, request.app.state.settings)
    except Exception as exc:
        log.warning("disposition round not started now (the schedule will): %s", exc)
    return redirect("/console/admin/disposition?notice=approved")
