"""Residents' and businesses' own pages: sign up, confirm the address, sign in with an emailed link,
register and edit cameras with a map pin, see every request made to them, and leave the program.

Phone first: owners mostly arrive here from an email on their phone."""

from __future__ import annotations

import asyncio
import logging
import smtplib
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlmodel import Session
from temporalio.client import WorkflowUpdateFailedError
from temporalio.service import RPCError

from activities.email import EmailInput, SmtpConfig, build_message, send_message
from api.deps import SessionDep, SettingsDep
from api.temporal import cancel_for_withdrawal, temporal_client
from api.web.render import page, redirect
from api.web.session import (
    RESIDENT_COOKIE,
    ResidentSession,
    check_csrf,
    check_form_token,
    checked_form,
    clear_cookie,
    form_fields,
    form_token,
    keep_form_cookie,
    signed_in,
    signed_out,
)
from custody.errors import CustodyError, ServiceUnavailable, Unprocessable
from custody.models import Owner, WebSession
from custody.services import requests as req_svc
from custody.services import residents as res
from custody.services import websessions
from custody.settings import Settings

router = APIRouter(include_in_schema=False, prefix="/resident")
log = logging.getLogger("custody.resident")


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _limits(settings: Settings) -> res.Throttle:
    return res.Throttle(
        settings.signup_max_per_email, settings.signup_max_per_client, settings.signup_window_s
    )


async def _send(settings: Settings, mail: res.Mail) -> None:
    """Email a confirmation or sign-in link. A mail server that is down is a 503 and the whole
    sign-up rolls back, so the person can simply try again."""
    link = f"{settings.base_url}/resident/link/{mail.token}"
    if mail.purpose == res.CONFIRM:
        subject = "Confirm your camera registration"
        text = (
            f"Hello {mail.name},\n\nthank you for joining the community camera program. Confirm that this "
            f"is your email address to register your cameras:\n\n{link}\n\nThe link works once and expires "
            f"in {settings.signup_link_ttl_s // 3600} hours. If you did not sign up, ignore this email: "
            "nothing is registered until the link is used.\n"
        )
    else:
        subject = "Your sign-in link for the camera program"
        text = (
            f"Hello {mail.name},\n\nuse this link to sign in and see your cameras and footage requests:\n\n"
            f"{link}\n\nThe link works once and expires in {settings.login_link_ttl_s // 60} minutes. If you "
            "did not ask for it, ignore this email.\n"
        )
    msg = build_message(
        EmailInput(idempotency_key=f"resident-{mail.token[:16]}", to=mail.to, subject=subject, text=text),
        settings.smtp_from,
    )
    try:
        await asyncio.to_thread(
            send_message,
            SmtpConfig.from_settings(settings),
            msg,
        )
    except (OSError, smtplib.SMTPException) as exc:
        # The person gets "try again"; the operator's log says what is wrong (a refused password or an
        # untrusted certificate names the setting to fix).
        log.warning("resident %s email not sent: %s: %s", mail.purpose, type(exc).__name__, exc)
        raise ServiceUnavailable(
            "We could not send the email just now (the mail server is not answering). Try again in a "
            "minute; the link you then get is the one that works."
        ) from exc


# --- sign-up, links, sign-in ------------------------------------------------------------------


@router.get("/signup")
def signup_page(request: Request, settings: SettingsDep) -> Response:
    form_token(request)
    return keep_form_cookie(
        request, page(request, "web/resident/signup.html", terms=settings.terms_version, form={}), settings
    )


@router.post("/signup")
async def signup(request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    form = await _anonymous_form(request)

    def make(s: Session) -> res.Mail | None:
        return res.sign_up(
            session=s,
            name=form.get("name", ""),
            email=form.get("email", ""),
            phone=form.get("phone", ""),
            business_name=form.get("business_name") or None,
            accepted_terms=form.get("accept_terms") == "yes",
            terms_version=settings.terms_version,
            link_ttl_s=settings.signup_link_ttl_s,
        )

    try:
        await _throttled_mail(request, session, settings, form.get("email", ""), make)
    except CustodyError as exc:
        session.rollback()
        return page(
            request,
            "web/resident/signup.html",
            status=exc.status,
            error=exc.message,
            form=form,
            terms=settings.terms_version,
        )
    return page(request, "web/resident/check_email.html", email=form.get("email", ""), purpose="signup")


async def _anonymous_form(request: Request) -> dict[str, str]:
    """A form posted before sign-in: its double-submit token checked, a token ready for a re-render."""
    await check_form_token(request)
    form = await form_fields(request)
    form_token(request)
    return form


async def _throttled_mail(
    request: Request,
    session: Session,
    settings: Settings,
    email: str,
    make: Callable[[Session], res.Mail | None],
) -> None:
    """Count the attempt (kept even if the rest fails), then make the link (committed: no database
    transaction is held while the mail server is talked to), then send it, if any. A send that fails
    leaves an unused link behind; asking again issues a fresh one."""

    def prepare() -> res.Mail | None:
        res.throttle(session=session, email=email, client=_client(request), limits=_limits(settings))
        session.commit()
        made = make(session)
        session.commit()
        return made

    mail = await asyncio.to_thread(prepare)
    if mail is not None:
        await _send(settings, mail)


@router.get("/signin")
def signin_page(request: Request, settings: SettingsDep) -> Response:
    form_token(request)
    return keep_form_cookie(request, page(request, "web/resident/signin.html", form={}), settings)


@router.post("/signin")
async def signin(request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    form = await _anonymous_form(request)

    def make(s: Session) -> res.Mail | None:
        return res.sign_in_link(session=s, email=form.get("email", ""), link_ttl_s=settings.login_link_ttl_s)

    try:
        await _throttled_mail(request, session, settings, form.get("email", ""), make)
    except CustodyError as exc:
        session.rollback()
        return page(request, "web/resident/signin.html", status=exc.status, error=exc.message, form=form)
    return page(request, "web/resident/check_email.html", email=form.get("email", ""), purpose="signin")


@router.get("/link/{token}")
def link_page(token: str, request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    """Shows a button rather than acting on GET: mail scanners that open links must not spend them."""
    link, owner = res.peek_link(session=session, raw=token)
    form_token(request)
    return keep_form_cookie(
        request,
        page(request, "web/resident/link.html", token=token, purpose=link.purpose, name=owner.name),
        settings,
    )


@router.post("/link/{token}")
async def use_link(token: str, request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    await check_form_token(request)
    owner = res.use_link(session=session, raw=token)
    return signed_in(
        session=session,
        settings=settings,
        kind=websessions.RESIDENT,
        subject_id=owner.id,
        location="/resident?notice=welcome",
    )


@router.post("/signout")
async def signout(
    request: Request, session: SessionDep, settings: SettingsDep, resident: ResidentSession
) -> Response:
    return await signed_out(
        request,
        session=session,
        settings=settings,
        kind=websessions.RESIDENT,
        row=resident[1],
        location="/resident/signin?notice=signed-out",
    )


# --- home, cameras ----------------------------------------------------------------------------


@router.get("")
def home(request: Request, session: SessionDep, settings: SettingsDep, resident: ResidentSession) -> Response:
    return _home_page(request, session, settings, resident, notice=request.query_params.get("notice"))


def _home_page(
    request: Request,
    session: Session,
    settings: Settings,
    resident: tuple[Owner, WebSession],
    status: int = 200,
    **extra: Any,
) -> Response:
    owner, web = resident
    return page(
        request,
        "web/resident/home.html",
        status=status,
        owner=owner,
        web=web,
        cameras=res.cameras_of(session=session, owner=owner),
        requests=res.requests_of(session=session, owner=owner),
        retention_days=settings.evidence_retention_days,
        **extra,
    )


def _camera_form(form: dict[str, str]) -> res.CameraForm:
    def number(key: str, what: str) -> float:
        try:
            return float(form.get(key, ""))
        except ValueError as exc:
            raise Unprocessable(
                f"{what} is missing or not a number: place the pin on the map or type it."
            ) from exc

    offset = form.get("clock_offset_s", "")
    try:
        clock = int(offset) if offset else None
    except ValueError as exc:
        raise Unprocessable("The clock offset is a whole number of seconds, such as 90 or -30.") from exc
    return res.CameraForm(
        label=form.get("label", ""),
        lat=number("lat", "Latitude"),
        lon=number("lon", "Longitude"),
        view_description=form.get("view_description", ""),
        clock_offset_s=clock,
        kind=form.get("kind", "registered"),
        pull_url=form.get("pull_url") or None,
    )


def _camera_page(
    request: Request,
    owner: Owner,
    web: WebSession,
    *,
    form: dict[str, Any],
    camera_id: str | None,
    status: int = 200,
    error: str | None = None,
) -> Response:
    return page(
        request,
        "web/resident/camera.html",
        status=status,
        owner=owner,
        web=web,
        form=form,
        camera_id=camera_id,
        error=error,
    )


@router.get("/cameras/new")
def new_camera(request: Request, resident: ResidentSession) -> Response:
    owner, web = resident
    return _camera_page(request, owner, web, form={"kind": "registered"}, camera_id=None)


@router.post("/cameras")
async def add_camera(
    request: Request, session: SessionDep, settings: SettingsDep, resident: ResidentSession
) -> Response:
    owner, web = resident
    form = await checked_form(request, web)
    try:
        # In a thread: checking an integrated camera's address resolves its host name (custody/netpolicy.py).
        await asyncio.to_thread(
            res.add_camera,
            session=session,
            owner=owner,
            form=_camera_form(form),
            pull_networks=settings.pull_networks,
        )
    except CustodyError as exc:
        return _camera_page(
            request, owner, web, form=form, camera_id=None, status=exc.status, error=exc.message
        )
    return redirect("/resident?notice=camera-added")


@router.get("/cameras/{camera_id}")
def edit_camera_page(
    camera_id: str, request: Request, session: SessionDep, resident: ResidentSession
) -> Response:
    owner, web = resident
    cam = res.owned_camera(session=session, owner=owner, camera_id=camera_id)
    form = {
        "label": cam.label,
        "lat": f"{cam.lat:.6f}",
        "lon": f"{cam.lon:.6f}",
        "view_description": cam.view_description,
        "clock_offset_s": "" if cam.clock_offset_s is None else str(cam.clock_offset_s),
        "kind": cam.kind,
        "pull_url": cam.pull_url or "",
        "approved": cam.approved_at is not None,
    }
    return _camera_page(request, owner, web, form=form, camera_id=cam.id)


@router.post("/cameras/{camera_id}")
async def edit_camera(
    camera_id: str, request: Request, session: SessionDep, settings: SettingsDep, resident: ResidentSession
) -> Response:
    owner, web = resident
    form = await checked_form(request, web)
    try:
        await asyncio.to_thread(
            res.edit_camera,
            session=session,
            owner=owner,
            camera_id=camera_id,
            form=_camera_form(form),
            pull_networks=settings.pull_networks,
        )
    except CustodyError as exc:
        return _camera_page(
            request, owner, web, form=form, camera_id=camera_id, status=exc.status, error=exc.message
        )
    return redirect("/resident?notice=camera-saved")


@router.post("/cameras/{camera_id}/remove")
async def remove_camera(
    camera_id: str, request: Request, session: SessionDep, resident: ResidentSession
) -> Response:
    owner, web = resident
    await check_csrf(request, web)
    res.remove_camera(session=session, owner=owner, camera_id=camera_id)
    return redirect("/resident?notice=camera-removed")


@router.post("/business")
async def business(request: Request, session: SessionDep, resident: ResidentSession) -> Response:
    owner, web = resident
    form = await checked_form(request, web)
    name = form.get("business_name", "")[:200]
    owner.business_name = name or None
    session.add(owner)
    return redirect("/resident?notice=business-saved")


@router.post("/requests/{request_id}/answer")
async def answer(
    request_id: str, request: Request, session: SessionDep, resident: ResidentSession
) -> Response:
    """A signed-in owner answers an open request from their page: a fresh consent link for it (the
    emailed ones keep working), opened at once."""
    owner, web = resident
    await check_csrf(request, web)
    req = res.answerable_request(session=session, owner=owner, request_id=request_id)
    assert req.expires_at is not None
    raw, _ = req_svc.issue_token(session=session, request_id=req.id, expires_at=req.expires_at)
    return redirect(f"/consent/{raw}")


# --- leaving ----------------------------------------------------------------------------------


async def _cancel_waiting(request: Request, session: Session, owner: Owner) -> int:
    """Cancel the requests still waiting on a withdrawing owner. The cameras are already out of
    search; a request that ended meanwhile is left as it is."""
    waiting = res.withdraw(session=session, owner=owner)
    session.commit()
    if not waiting:
        return 0
    try:
        client = await temporal_client(request)
    except Exception:  # Temporal unreachable: the owner has left anyway; unanswered requests expire
        log.exception("could not reach Temporal to cancel %d request(s) of a withdrawing owner", len(waiting))
        return 0
    cancelled = 0
    for req in waiting:
        try:
            await cancel_for_withdrawal(client, req.id, owner.id)
            cancelled += 1
        except (WorkflowUpdateFailedError, RPCError) as exc:
            log.info("request %s was not cancelled on withdrawal: %s", req.id, exc)
    return cancelled


@router.post("/withdraw")
async def withdraw(
    request: Request, session: SessionDep, settings: SettingsDep, resident: ResidentSession
) -> Response:
    owner, web = resident
    form = await checked_form(request, web)
    if form.get("confirm") != "yes":
        return _home_page(
            request,
            session,
            settings,
            resident,
            status=422,
            notice=None,
            withdraw_error="Tick the box to confirm that you want to leave the program.",
        )
    cancelled = await _cancel_waiting(request, session, owner)
    websessions.end_all(session=session, subject_id=owner.id)
    response = page(
        request,
        "web/resident/withdrawn.html",
        cancelled=cancelled,
        retention_days=settings.evidence_retention_days,
    )
    clear_cookie(response, RESIDENT_COOKIE, settings)
    return response
