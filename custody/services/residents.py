"""Residents and businesses who join the camera program themselves.

Sign-up asks for a name, an email address and a phone number and records which terms were accepted
and when. Nothing of an account is searchable until its email address is confirmed through a
single-use, expiring link; later sign-ins are emailed links of the same kind (no passwords to
forget or leak). Sign-up and sign-in links are throttled per address and per client.

Why no account enumeration: a sign-up with an address that is already registered, or a sign-in for
an unknown one, answers exactly like any other; only the mailbox's owner learns which it was.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, col, select

from custody.errors import Forbidden, Gone, NotFound, TooManyRequests, Unprocessable
from custody.geo import lat_cell, validate_point
from custody.models import (
    TERMINAL_STATUSES,
    Camera,
    CameraKind,
    Evidence,
    FootageRequest,
    Owner,
    OwnerToken,
    RequestStatus,
    SignupAttempt,
)
from custody.netpolicy import Network
from custody.services.registry import (
    check_camera_fields,
    check_email,
    check_phone,
    check_pull_url,
    create_owner,
)
from custody.timeutil import rfc3339, utcnow

CONFIRM = "confirm"
LOGIN = "login"
CLOCK_OFFSET_LIMIT_S = 7 * 86400
#: Statuses in which a registered camera's request waits on its owner (to answer, or to upload).
OWNER_TURN = (RequestStatus.requested, RequestStatus.notified, RequestStatus.consented)


@dataclass(frozen=True, slots=True)
class Throttle:
    max_per_email: int
    max_per_client: int
    window_s: int


@dataclass(frozen=True, slots=True)
class Mail:
    """A link to email to a resident: what it is for, to whom, and the raw token to put in it."""

    purpose: str  # confirm | login
    to: str
    name: str
    token: str


def _hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def _count(session: Session, column: str, value: str, since: datetime) -> int:
    t = SignupAttempt.__table__.c  # type: ignore[attr-defined]
    stmt = sa.select(sa.func.count()).select_from(SignupAttempt).where(t[column] == value, t.at >= since)
    return int(session.execute(stmt).scalar_one())


def throttle(*, session: Session, email: str, client: str, limits: Throttle) -> None:
    """Count this attempt; refuse (429) beyond the limits per address and per client address."""
    since = utcnow() - timedelta(seconds=limits.window_s)
    key = email.strip().lower()[:254]
    if (
        _count(session, "email", key, since) >= limits.max_per_email
        or _count(session, "client", client[:64], since) >= limits.max_per_client
    ):
        raise TooManyRequests(
            "Too many sign-up or sign-in requests from here or for this address; "
            f"wait {limits.window_s // 60} minutes and try again.",
            retry_after_s=limits.window_s,
        )
    session.add(SignupAttempt(email=key, client=client[:64]))
    # Attempts older than the window count for nothing: keep the table small.
    session.execute(sa.delete(SignupAttempt).where(col(SignupAttempt.at) < since))
    session.flush()


def issue_link(*, session: Session, owner: Owner, purpose: str, ttl_s: int) -> Mail:
    raw = secrets.token_urlsafe(32)
    session.add(
        OwnerToken(
            token_hash=_hash(raw),
            owner_id=owner.id,
            purpose=purpose,
            expires_at=utcnow() + timedelta(seconds=ttl_s),
        )
    )
    session.flush()
    return Mail(purpose=purpose, to=owner.email, name=owner.name, token=raw)


def _by_email(session: Session, email: str) -> Owner | None:
    return session.exec(select(Owner).where(sa.func.lower(Owner.email) == email.lower())).first()


def sign_up(
    *,
    session: Session,
    name: str,
    email: str,
    phone: str,
    business_name: str | None,
    accepted_terms: bool,
    terms_version: str,
    link_ttl_s: int,
) -> Mail | None:
    """A new, unconfirmed account and its confirmation link. For an address already registered, a
    sign-in link instead (or nothing, for an owner who withdrew): see the module's docstring."""
    if not accepted_terms:
        raise Unprocessable("Read and accept the program terms to register.")
    if not phone.strip():
        raise Unprocessable("Give a phone number the program can call you on about footage.")
    email = check_email(email)
    check_phone(phone)
    existing = _by_email(session, email)
    if existing is not None and existing.withdrawn_at is not None:
        # Rejoining: a fresh acceptance of the terms and a fresh confirmation; old cameras stay removed.
        existing.name, existing.phone = name.strip()[:200] or existing.name, phone.strip()
        existing.withdrawn_at, existing.confirmed_at = None, None
        existing.terms_version, existing.registration_consent_at = terms_version, utcnow()
        session.add(existing)
        session.flush()
        return issue_link(session=session, owner=existing, purpose=CONFIRM, ttl_s=link_ttl_s)
    if existing is not None:
        purpose = LOGIN if existing.confirmed_at else CONFIRM
        return issue_link(session=session, owner=existing, purpose=purpose, ttl_s=link_ttl_s)
    owner = create_owner(session=session, name=name, email=email, phone=phone, created_by=None)
    owner.business_name = (business_name or "").strip()[:200] or None
    owner.terms_version = terms_version
    owner.registration_consent_at = utcnow()
    owner.confirmed_at = None
    session.add(owner)
    session.flush()
    return issue_link(session=session, owner=owner, purpose=CONFIRM, ttl_s=link_ttl_s)


def sign_in_link(*, session: Session, email: str, link_ttl_s: int) -> Mail | None:
    """A sign-in link for a registered address (a confirmation link while unconfirmed); None else."""
    try:
        email = check_email(email)
    except Unprocessable:
        return None
    owner = _by_email(session, email)
    if owner is None or owner.withdrawn_at is not None:
        return None
    purpose = LOGIN if owner.confirmed_at else CONFIRM
    return issue_link(session=session, owner=owner, purpose=purpose, ttl_s=link_ttl_s)


def _token(session: Session, raw: str) -> OwnerToken:
    if not raw or len(raw) > 200:
        raise Forbidden("This link is not valid. Ask for a new one on the sign-in page.")
    token = session.get(OwnerToken, _hash(raw))
    if token is None:
        raise Forbidden("This link is not valid. Ask for a new one on the sign-in page.")
    if token.used_at is not None:
        raise Gone("This link was already used. Ask for a new sign-in link if you need one.")
    if utcnow() >= token.expires_at:
        raise Gone(
            f"This link expired at {rfc3339(token.expires_at)}. Ask for a new one on the sign-in page."
        )
    return token


def peek_link(*, session: Session, raw: str) -> tuple[OwnerToken, Owner]:
    """The link's token and owner, without using it (the page that asks the person to confirm)."""
    token = _token(session, raw)
    owner = session.get(Owner, token.owner_id)
    if owner is None or owner.withdrawn_at is not None:
        raise Gone("This account left the program; sign up again to rejoin.")
    return token, owner


def use_link(*, session: Session, raw: str) -> Owner:
    """Spend a link (once): confirms the address if it was a confirmation link. Returns the owner."""
    token, owner = peek_link(session=session, raw=raw)
    now = utcnow()
    spent = session.execute(  # at most one of two concurrent uses wins
        sa.update(OwnerToken)
        .where(col(OwnerToken.token_hash) == token.token_hash, col(OwnerToken.used_at).is_(None))
        .values(used_at=now)
    )
    if spent.rowcount != 1:  # type: ignore[attr-defined]
        raise Gone("This link was already used. Ask for a new sign-in link if you need one.")
    if token.purpose == CONFIRM and owner.confirmed_at is None:
        owner.confirmed_at = now
        session.add(owner)
    session.flush()
    return owner


def active_owner(*, session: Session, owner_id: str) -> Owner:
    owner = session.get(Owner, owner_id)
    if owner is None or owner.withdrawn_at is not None:
        raise NotFound("This account is no longer in the program.")
    return owner


# --- cameras ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CameraForm:
    label: str
    lat: float
    lon: float
    view_description: str
    clock_offset_s: int | None
    kind: str
    pull_url: str | None


def _check_form(owner: Owner, form: CameraForm) -> None:
    if not form.label.strip():
        raise Unprocessable("Give the camera a label, such as 'Front door' or 'Loading bay'.")
    if len(form.label.strip()) > 200:
        raise Unprocessable("Keep the camera's label to 200 characters.")
    if len(form.view_description) > 500:
        raise Unprocessable("Keep what the camera sees to 500 characters.")
    problem = validate_point(form.lat, form.lon)
    if problem:
        raise Unprocessable(problem)
    if form.clock_offset_s is not None and abs(form.clock_offset_s) > CLOCK_OFFSET_LIMIT_S:
        raise Unprocessable("The clock offset is more than a week; check the recorder's clock and try again.")
    check_camera_fields(form.kind, form.pull_url)
    if form.kind == CameraKind.integrated and not owner.business_name:
        raise Unprocessable(
            "Integrated access is for businesses: add your business name to your account first, "
            "or register the camera as 'registered' (you are asked each time)."
        )


def add_camera(
    *, session: Session, owner: Owner, form: CameraForm, pull_networks: Sequence[Network]
) -> Camera:
    """A camera of a confirmed owner. Integrated cameras wait for staff approval before any pull
    (until then they are asked like registered cameras)."""
    if owner.confirmed_at is None:
        raise Forbidden("Confirm your email address first; the link is in the email we sent you.")
    if owner.withdrawn_at is not None:
        raise Forbidden("This account left the program; sign up again to register cameras.")
    _check_form(owner, form)
    if form.kind == CameraKind.integrated:
        check_pull_url(form.pull_url, pull_networks)
    camera = Camera(
        owner_id=owner.id,
        label=form.label.strip(),
        lat=form.lat,
        lon=form.lon,
        lat_cell=lat_cell(form.lat),
        kind=form.kind,
        pull_url=form.pull_url if form.kind == CameraKind.integrated else None,
        view_description=form.view_description.strip(),
        clock_offset_s=form.clock_offset_s,
    )
    session.add(camera)
    session.flush()
    return camera


def owned_camera(*, session: Session, owner: Owner, camera_id: str) -> Camera:
    camera = session.get(Camera, camera_id)
    if camera is None or camera.owner_id != owner.id or not camera.active:
        raise NotFound(f"You have no camera {camera_id}.")
    return camera


def edit_camera(
    *, session: Session, owner: Owner, camera_id: str, form: CameraForm, pull_networks: Sequence[Network]
) -> Camera:
    camera = owned_camera(session=session, owner=owner, camera_id=camera_id)
    _check_form(owner, form)
    pull_url = form.pull_url if form.kind == CameraKind.integrated else None
    if pull_url != camera.pull_url:
        check_pull_url(pull_url, pull_networks)
    if form.kind != camera.kind or pull_url != camera.pull_url:
        camera.approved_at, camera.approved_by = None, None  # a new pull source needs a new approval
    camera.label, camera.lat, camera.lon = form.label.strip(), form.lat, form.lon
    camera.lat_cell = lat_cell(form.lat)
    camera.kind, camera.pull_url = form.kind, pull_url
    camera.view_description = form.view_description.strip()
    camera.clock_offset_s = form.clock_offset_s
    camera.updated_at = utcnow()
    session.add(camera)
    session.flush()
    return camera


def remove_camera(*, session: Session, owner: Owner, camera_id: str) -> Camera:
    """Out of search at once. The row stays: past requests and evidence refer to it."""
    camera = owned_camera(session=session, owner=owner, camera_id=camera_id)
    camera.active = False
    camera.updated_at = utcnow()
    session.add(camera)
    session.flush()
    return camera


def cameras_of(*, session: Session, owner: Owner) -> list[Camera]:
    stmt = (
        select(Camera)
        .where(Camera.owner_id == owner.id, col(Camera.active).is_(True))
        .order_by(col(Camera.created_at), col(Camera.id))
    )
    return list(session.exec(stmt).all())


def withdraw(*, session: Session, owner: Owner) -> list[FootageRequest]:
    """Leave the program: every camera leaves search now. Returns the owner's requests still
    waiting on them, for the caller to cancel. Evidence already given stays under retention."""
    now = utcnow()
    owner.withdrawn_at = now
    session.add(owner)
    session.execute(
        sa.update(Camera).where(col(Camera.owner_id) == owner.id).values(active=False, updated_at=now)
    )
    session.flush()
    stmt = (
        select(FootageRequest)
        .join(Camera, col(Camera.id) == col(FootageRequest.camera_id))
        .where(
            Camera.owner_id == owner.id,
            col(FootageRequest.status).in_([str(s) for s in OWNER_TURN]),
            col(FootageRequest.files_complete).is_(False),
            FootageRequest.kind == CameraKind.registered,
        )
    )
    return list(session.exec(stmt).all())


@dataclass(frozen=True, slots=True)
class OwnerRequest:
    """One footage request as its owner sees it: no case details, only what was asked and the outcome."""

    id: str
    camera_label: str
    status: str
    window_start: datetime
    window_end: datetime
    asked_at: datetime
    files: int
    ended: bool
    waiting: bool  # the owner can still answer or upload


def requests_of(*, session: Session, owner: Owner) -> list[OwnerRequest]:
    """Every footage request ever made to this owner's cameras, newest first."""
    stmt = (
        select(FootageRequest, Camera.label)
        .join(Camera, col(Camera.id) == col(FootageRequest.camera_id))
        .where(Camera.owner_id == owner.id)
        .order_by(col(FootageRequest.created_at).desc())
    )
    rows = session.exec(stmt).all()
    counts = sa.select(col(Evidence.request_id), sa.func.count()).where(
        col(Evidence.request_id).in_([req.id for req, _ in rows])
    )
    files = {rid: int(n) for rid, n in session.execute(counts.group_by(col(Evidence.request_id)))}
    return [
        OwnerRequest(
            id=req.id,
            camera_label=label,
            status=req.status,
            window_start=req.window_start,
            window_end=req.window_end,
            asked_at=req.created_at,
            files=files.get(req.id, 0),
            ended=req.status in TERMINAL_STATUSES,
            waiting=_waits_on_owner(req) and req.expires_at is not None,
        )
        for req, label in rows
    ]


def _waits_on_owner(req: FootageRequest) -> bool:
    """A registered camera's request the owner can still answer or upload to."""
    return req.status in OWNER_TURN and not req.files_complete and req.kind == CameraKind.registered


def answerable_request(*, session: Session, owner: Owner, request_id: str) -> FootageRequest:
    """One of the owner's requests that still waits on them (to answer, or to finish uploading)."""
    req = session.get(FootageRequest, request_id)
    camera = session.get(Camera, req.camera_id) if req else None
    if req is None or camera is None or camera.owner_id != owner.id:
        raise NotFound(f"No footage request {request_id} was made to you.")
    if not _waits_on_owner(req):
        raise Gone(f"This request has ended or needs nothing more from you ({req.status}).")
    if req.expires_at is None:
        raise Gone("This request's notice is still on its way; use the link in its email when it arrives.")
    return req
