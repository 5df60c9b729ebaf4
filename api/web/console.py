"""The staff console: sign-in, cases, alerts with a map, requests with live status, evidence,
reports and sharing. Routes parse the form, authorize and call the same services (and the same
route functions) as the JSON API, so the browser and the API cannot drift apart."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from sqlmodel import Session, col, select

from api.deps import SessionDep, SettingsDep
from api.routes import cases as case_routes
from api.routes import reports as report_routes
from api.routes import retention as retention_routes
from api.routes.shares import record_share_event
from api.schemas import AlertIn
from api.temporal import cancel_request as temporal_cancel
from api.web.render import page, redirect
from api.web.session import (
    StaffSession,
    check_csrf,
    check_form_token,
    checked_form,
    form_fields,
    form_token,
    keep_form_cookie,
    safe_next,
    signed_in,
    signed_out,
)
from custody import localtime
from custody.cancellation import can_cancel
from custody.db import session_scope
from custody.errors import CustodyError, Forbidden, Unprocessable
from custody.ledger.entries import Component, EventType
from custody.models import Camera, CaseShare, Evidence, User
from custody.services import audit, registry, websessions
from custody.services import cases as case_svc
from custody.services import incidents as incident_svc
from custody.services import requests as svc
from custody.services import workcopy as copy_svc
from custody.services.retention import HOLD_ROLES, days_for
from custody.services.users import list_agencies
from custody.timeutil import rfc3339

router = APIRouter(include_in_schema=False)
WRITERS = ("investigator", "admin")
HOME = {
    "investigator": "/console/cases",
    "prosecutor": "/console/cases",
    "auditor": "/console/ledger",
    "admin": "/console/admin/users",
}


def _writer(user: User, what: str) -> None:
    if user.role not in WRITERS:
        raise Forbidden(f"Only investigators and administrators {what}.")


# --- sign-in ----------------------------------------------------------------------------------


@router.get("/")
def root() -> Response:
    return redirect("/console")


@router.get("/login")
def login_page(request: Request, settings: SettingsDep, next: str = "/console") -> Response:
    form_token(request)
    return keep_form_cookie(
        request, page(request, "web/login.html", next=safe_next(next, "/console")), settings
    )


@router.post("/login")
async def login(request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    await check_form_token(request)
    form = await form_fields(request)
    form_token(request)
    next_path = safe_next(form.get("next"), "/console")
    try:
        user = await asyncio.to_thread(  # argon2, the database and the ledger, off the event loop
            audit.sign_in,
            session=session,
            ledger=request.app.state.ledger,
            key=audit.username_key(settings.secret("ledger_signing_key")),
            component=Component.console,
            username=form.get("username", ""),
            password=form.get("password", ""),
            client=request.client.host if request.client else "unknown",
            max_failures=settings.login_max_failures,
            window_s=settings.login_window_s,
        )
    except CustodyError as exc:
        return page(
            request,
            "web/login.html",
            status=exc.status,
            error=exc.message,
            next=next_path,
            username=form.get("username", ""),
        )
    location = next_path if next_path != "/console" else HOME.get(user.role, "/console/cases")
    return signed_in(
        session=session, settings=settings, kind=websessions.STAFF, subject_id=user.id, location=location
    )


@router.post("/logout")
async def logout(
    request: Request, session: SessionDep, settings: SettingsDep, staff: StaffSession
) -> Response:
    response = await signed_out(
        request, session=session, settings=settings, kind=websessions.STAFF, row=staff[1], location="/login"
    )
    session.commit()  # the session has ended before the record says so (and SQLite's writer is free)
    user = staff[0]
    await asyncio.to_thread(
        audit.record,
        request.app.state.ledger,
        EventType.sign_out,
        actor=user.id,
        agency=user.agency,
        component=Component.console,
    )
    return response


@router.get("/console")
def console_home(staff: StaffSession) -> Response:
    return redirect(HOME.get(staff[0].role, "/console/cases"))


# --- cases ------------------------------------------------------------------------------------


def _cases_page(
    request: Request, session: Session, staff: tuple[User, Any], status: int = 200, **extra: Any
) -> Response:
    user, web = staff
    cases = case_svc.list_cases(session=session, user=user, limit=500, offset=0)
    shared_ids = {c.id for c in cases if c.agency != user.agency}
    drafts = incident_svc.draft_case_ids(session=session, cases=cases)
    return page(
        request,
        "web/cases.html",
        status=status,
        user=user,
        web=web,
        cases=cases,
        shared_ids=shared_ids,
        drafts=drafts,
        can_write=user.role in WRITERS,
        **extra,
    )


@router.get("/console/cases")
def cases_page(request: Request, session: SessionDep, staff: StaffSession) -> Response:
    return _cases_page(request, session, staff)


@router.post("/console/cases")
async def create_case(request: Request, session: SessionDep, staff: StaffSession) -> Response:
    user, web = staff
    form = await checked_form(request, web)
    try:
        _writer(user, "open cases")
        if len(form.get("description", "")) > 10_000:
            raise Unprocessable("Keep the description to 10,000 characters.")
        case = case_svc.create_case(
            session=session, user=user, title=form.get("title", ""), description=form.get("description", "")
        )
    except CustodyError as exc:
        return _cases_page(request, session, staff, status=exc.status, error=exc.message, form=form)
    return redirect(f"/console/cases/{case.id}?notice=created")


def _case_page(
    request: Request,
    session: Session,
    staff: tuple[User, Any],
    case_id: str,
    status: int = 200,
    viewed: bool = False,
    **extra: Any,
) -> Response:
    """The case page; `viewed` when this is a reading of the case (not a form shown again), which
    through a share is a custody event."""
    user, web = staff
    access = case_svc.case_access(session=session, user=user, case_id=case_id)
    if viewed:
        case_routes.record_share_view(case_routes._ledger(request), user, access, "case page viewed")
    case = access.case
    reqs = svc.list_requests(session=session, case=case)
    evidence = svc.list_evidence(session=session, case=case)
    wanted = [r.camera_id for r in reqs] + [e.camera_id for e in evidence]
    cameras = {c.id: c for c in session.exec(select(Camera).where(col(Camera.id).in_(wanted)))}
    can_write = access.share is None and user.role in WRITERS
    shares: list[CaseShare] = []
    share_users: dict[str, str] = {}
    if can_write:
        shares = case_svc.list_shares(session=session, user=user, case_id=case.id)
        ids = [s.user_id for s in shares if s.user_id]
        share_users = {u.id: u.username for u in session.exec(select(User).where(col(User.id).in_(ids)))}
    tz = request.app.state.settings.tz
    now = datetime.now(UTC).replace(microsecond=0)
    alerts = svc.list_alerts(session=session, case=case)
    last = alerts[0] if alerts else None
    centre = (last.lat, last.lon) if last else tuple(request.app.state.settings.map_center)
    defaults = {
        "lat": f"{centre[0]:.6f}",
        "lon": f"{centre[1]:.6f}",
        "radius_m": "150",
        # The form takes the program's local time (the label names the zone).
        "window_start": localtime.input_value(now - timedelta(hours=1), tz),
        "window_end": localtime.input_value(now, tz),
        "share_expires": localtime.input_value(now + timedelta(days=14), tz),
    }
    draft = incident_svc.draft_alert(case=case, settings=request.app.state.settings, has_alerts=bool(alerts))
    if draft is not None:
        # A CAD incident's case with no alert yet: the form holds the alert the incident suggests,
        # for the investigator to check and send (CUSTODY_INCIDENT_POLICY=draft).
        defaults.update(
            lat=f"{draft.lat:.6f}",
            lon=f"{draft.lon:.6f}",
            radius_m=f"{draft.radius_m:g}",
            window_start=localtime.input_value(draft.window_start, tz),
            window_end=localtime.input_value(draft.window_end, tz),
            description=draft.description,
        )
    return page(
        request,
        "web/case.html",
        status=status,
        user=user,
        web=web,
        case=case,
        share=access.share,
        requests=reqs,
        cameras=cameras,
        alerts=alerts,
        alert_numbers={a.id: len(alerts) - i for i, a in enumerate(alerts)},
        end_reasons=svc.end_reasons(session=session, requests=reqs),
        agency_name=next(
            (a.name for a in list_agencies(session=session) if a.code == case.agency), case.agency
        ),
        evidence=evidence,
        time_flags={e.id: copy_svc.flag_of(session=session, ev=e, tz=tz) for e in evidence},
        can_hold=access.share is None and user.role in HOLD_ROLES,
        categories=sorted(request.app.state.settings.retention_classes),
        retention_days=days_for(request.app.state.settings, case.category),
        can_write=can_write,
        shares=shares,
        share_users=share_users,
        share_state=case_svc.share_state,
        agencies=[a for a in list_agencies(session=session) if a.code != case.agency],
        max_radius=request.app.state.settings.max_radius_m,
        defaults=defaults,
        draft=draft,
        cad_source=incident_svc.integration_name(session=session, integration_id=case.cad_integration_id),
        notice=request.query_params.get("notice"),
        **extra,
    )


@router.get("/console/cases/{case_id}")
def case_page(case_id: str, request: Request, session: SessionDep, staff: StaffSession) -> Response:
    return _case_page(request, session, staff, case_id, viewed=True)


@router.get("/console/cases/{case_id}/requests.json")
def case_status(
    case_id: str, session: SessionDep, settings: SettingsDep, staff: StaffSession
) -> JSONResponse:
    """What the case page polls for live status: every request and every evidence file."""
    case = case_svc.get_case(session=session, user=staff[0], case_id=case_id)
    evidence = svc.list_evidence(session=session, case=case)
    labels = svc.camera_labels(session=session, camera_ids={e.camera_id for e in evidence})
    return JSONResponse(
        {
            "requests": [
                {
                    "id": r.id,
                    "status": r.status,
                    "updated_at": rfc3339(r.updated_at),
                    "updated": localtime.when(r.updated_at, settings.tz),
                }
                for r in svc.list_requests(session=session, case=case)
            ],
            "evidence": [
                {
                    "id": e.id,
                    "filename": e.filename,
                    "size": e.size,
                    "sha256": e.sha256,
                    "status": e.status,
                    "received_at": rfc3339(e.received_at),
                    "received": localtime.when(e.received_at, settings.tz),
                    "request_id": e.request_id,
                    "camera_label": labels.get(e.camera_id, "camera " + e.camera_id[:8]),
                    "basis": _basis_words(e),
                }
                for e in evidence
            ],
        },
        headers={"Cache-Control": "no-store"},
    )


class RepeatedTime(Unprocessable):
    """A typed time that happened twice (clocks moved back): the form asks which one."""

    def __init__(self, message: str, name: str, choices: list[str]) -> None:
        super().__init__(message)
        self.name, self.choices = name, choices


def _local(form: dict[str, str], name: str, label: str, tz: ZoneInfo) -> datetime:
    """A datetime-local field, typed in the program's zone, as an aware instant. The hour skipped in
    spring is refused with the reason; the hour repeated in autumn needs `<name>_zone` (EDT or EST),
    which the form offers once the time turns out to be ambiguous."""
    value = form.get(name, "")
    if not value:
        raise Unprocessable(f"{label} is empty; give a date and time ({tz.key}).")
    try:
        return localtime.parse_local(value, tz, prefer=form.get(f"{name}_zone") or None)
    except localtime.AmbiguousLocalTime as exc:
        raise RepeatedTime(f"{label}: {exc.message}", name, [a for a, _ in exc.choices]) from exc
    except localtime.LocalTimeError as exc:
        raise Unprocessable(f"{label}: {exc.message}") from exc


def _number(value: str, field: str) -> float:
    try:
        return float(value)
    except ValueError as exc:
        raise Unprocessable(f"{field} {value!r} is not a number.") from exc


@router.post("/console/cases/{case_id}/alerts")
async def post_alert(
    case_id: str, request: Request, session: SessionDep, settings: SettingsDep, staff: StaffSession
) -> Response:
    user, web = staff
    form = await checked_form(request, web)
    try:
        _writer(user, "send alerts")
        try:
            body = AlertIn(
                lat=_number(form.get("lat", ""), "Latitude"),
                lon=_number(form.get("lon", ""), "Longitude"),
                radius_m=_number(form.get("radius_m", ""), "Radius"),
                window_start=_local(form, "window_start", "Footage from", settings.tz),
                window_end=_local(form, "window_end", "Footage until", settings.tz),
                description=form.get("description", ""),
            )
        except ValidationError as exc:
            raise Unprocessable(
                "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            ) from exc
        sent = await case_routes.start_alert(request, settings, user, case_id, body)
    except CustodyError as exc:
        session.rollback()
        choices = {exc.name: exc.choices} if isinstance(exc, RepeatedTime) else {}
        return _case_page(
            request,
            session,
            staff,
            case_id,
            status=exc.status,
            alert_error=exc.message,
            alert_form=form,
            zone_choices=choices,
        )
    kind = "queued" if sent.queued else "alert"
    return redirect(f"/console/cases/{case_id}?notice={kind}-{len(sent.requests)}#requests")


@router.get("/console/cameras.json")
def cameras_near(
    session: SessionDep,
    settings: SettingsDep,
    staff: StaffSession,
    lat: float = Query(ge=-90, le=90),
    lon: float = Query(ge=-180, le=180),
) -> JSONResponse:
    """Active cameras around a point, for the alert map to show which ones an alert would ask."""
    _writer(staff[0], "see the camera map")
    reach = settings.max_radius_m * 3
    hits = registry.search_cameras(
        session=session, lat=lat, lon=lon, radius_m=reach, max_radius_m=reach, limit=2000
    )
    return JSONResponse(
        [
            {
                "id": h.id,
                "label": h.label,
                "kind": h.kind if h.approved else "registered",
                "lat": h.lat,
                "lon": h.lon,
            }
            for h in hits
        ]
    )


# --- requests ---------------------------------------------------------------------------------


@router.get("/console/requests/{request_id}")
def request_page(request_id: str, request: Request, session: SessionDep, staff: StaffSession) -> Response:
    user, web = staff
    req = svc.get_request(session=session, user=user, request_id=request_id)
    access = case_svc.case_access(session=session, user=user, case_id=req.case_id)
    return page(
        request,
        "web/request.html",
        user=user,
        web=web,
        req=req,
        case=access.case,
        camera=session.get(Camera, req.camera_id),
        history=svc.history(session=session, request_id=req.id),
        evidence=svc.evidence_of_request(session=session, request_id=req.id),
        can_cancel=access.share is None
        and user.role in WRITERS
        and can_cancel(kind=req.kind, status=req.status, files_complete=req.files_complete),
        confirm_cancel=request.query_params.get("confirm") == "cancel",
        notice=request.query_params.get("notice"),
        error=None,
    )


@router.post("/console/requests/{request_id}/cancel")
async def cancel_request(
    request_id: str, request: Request, session: SessionDep, staff: StaffSession
) -> Response:
    user, web = staff
    form = await checked_form(request, web)
    _writer(user, "cancel requests")
    req = svc.get_request(session=session, user=user, request_id=request_id)
    case_svc.get_case_for_write(session=session, user=user, case_id=req.case_id)
    await temporal_cancel(request, req, actor=user.id, reason=form.get("reason", "")[:500])
    return redirect(f"/console/requests/{request_id}?notice=cancelled")


# --- evidence and reports -----------------------------------------------------------------------


@router.post("/console/cases/{case_id}/category")
async def set_category(case_id: str, request: Request, staff: StaffSession) -> Response:
    """The case's category (its retention class), as PATCH /cases/{id} sets it."""
    user, web = staff
    form = await checked_form(request, web)
    _writer(user, "change a case's category")
    state = request.app.state
    await asyncio.to_thread(
        retention_routes.change_category, state.engine, state.ledger, state.store, state.settings, user,
        case_id, form.get("category", "")[:64] or None,
    )  # fmt: skip
    return redirect(f"/console/cases/{case_id}?notice=category")


@router.post("/console/evidence/{evidence_id}/legal-hold")
async def legal_hold(evidence_id: str, request: Request, staff: StaffSession) -> Response:
    """Place (`place=1`) or release a legal hold with a reason, as the JSON API does (prosecutors
    and administrators of the case's agency)."""
    user, web = staff
    form = await checked_form(request, web)
    if user.role not in HOLD_ROLES:
        raise Forbidden("Only prosecutors and administrators place or release legal holds.")
    place = form.get("place") == "1"
    state = request.app.state
    out = await asyncio.to_thread(
        retention_routes.change_hold, state.engine, state.ledger, state.store, user, evidence_id,
        form.get("reason", "")[:500], place,
    )  # fmt: skip
    with session_scope(state.engine) as session:
        case_id = svc.get_evidence(session=session, user=user, evidence_id=out.id).case_id
    return redirect(f"/console/cases/{case_id}?notice={'held' if place else 'released'}#evidence")


@router.get("/console/evidence/{evidence_id}/download")
def download(evidence_id: str, request: Request, session: SessionDep, staff: StaffSession) -> Response:
    return case_routes.download_evidence(evidence_id, staff[0], session, request)


@router.get("/console/evidence/{evidence_id}/working-copy")
def play_working_copy(
    evidence_id: str, request: Request, session: SessionDep, staff: StaffSession
) -> Response:
    return case_routes.working_copy(evidence_id, staff[0], session, request)


@router.get("/console/cases/{case_id}/custody-report.pdf")
async def report_pdf(case_id: str, request: Request, session: SessionDep, staff: StaffSession) -> Response:
    return await report_routes.custody_report(case_id, staff[0], session, request)


@router.get("/console/cases/{case_id}/custody-bundle.json")
async def report_bundle(case_id: str, request: Request, session: SessionDep, staff: StaffSession) -> Response:
    return await report_routes.custody_bundle(case_id, staff[0], session, request)


# --- sharing ----------------------------------------------------------------------------------


@router.post("/console/cases/{case_id}/shares")
async def share(
    case_id: str, request: Request, session: SessionDep, settings: SettingsDep, staff: StaffSession
) -> Response:
    user, web = staff
    form = await checked_form(request, web)
    try:
        _writer(user, "share cases")
        expires = _local(form, "expires_at", "Share until", settings.tz)
        new = case_svc.new_share(
            session=session,
            user=user,
            case_id=case_id,
            agency=form.get("agency", ""),
            username=form.get("username") or None,
            expires_at=expires,
            reason=form.get("reason", ""),
            max_days=settings.share_max_days,
        )
        name = (form.get("username") or "").lower() or None
        await record_share_event(
            request, user, new, EventType.case_shared, case_svc.describe_share(new, name)
        )
        session.add(new)
        session.flush()
    except CustodyError as exc:
        return _case_page(
            request, session, staff, case_id, status=exc.status, share_error=exc.message, share_form=form
        )
    return redirect(f"/console/cases/{case_id}?notice=shared#sharing")


@router.post("/console/cases/{case_id}/shares/{share_id}/revoke")
async def revoke(
    case_id: str, share_id: str, request: Request, session: SessionDep, staff: StaffSession
) -> Response:
    user, web = staff
    await check_csrf(request, web)
    _writer(user, "revoke shares")
    found = case_svc.revocable_share(session=session, user=user, case_id=case_id, share_id=share_id)
    await record_share_event(
        request, user, found, EventType.share_revoked, f"share {found.id} with {found.agency} revoked"
    )
    case_svc.mark_revoked(session=session, user=user, share=found)
    return redirect(f"/console/cases/{case_id}?notice=revoked#sharing")


def _basis_words(e: Evidence) -> str:
    """The file's basis as the case page says it (custody/basis.py), or "" when none is recorded."""
    if e.basis_type is None:
        return ""
    kind = "owner's consent" if e.basis_type == "consent" else "integration agreement"
    return f"basis: {kind}, ledger entry {e.basis_ledger_index}"
