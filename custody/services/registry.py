"""The camera registry: owners, their cameras, and the radius search.

Who may do what: every agency of the program may search and read cameras (an alert asks any
registered camera, whoever registered it). Only the agency that registered a camera may change or
deactivate it, and only staff of the agency that registered an owner see the owner's name, email
and phone; a program administrator (an admin of the home agency, which runs the program and its
self sign-up) may do both for everyone. To anyone else an owner is 'not found'.

Search uses the (lat_cell, lon) index (see custody.geo): per latitude band one index range on
longitude, then an exact great-circle filter. It never scans the whole table.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from custody import netpolicy
from custody.agencies import HOME_AGENCY
from custody.errors import Conflict, Forbidden, NotFound, Unprocessable
from custody.geo import EARTH_RADIUS_M, bounding_box, haversine_m, lat_cell, validate_point
from custody.models import Camera, CameraKind, Owner, Role, User
from custody.timeutil import utcnow

# Patterns shared with the API's schema (api/schemas.py states them in the OpenAPI document), written
# so that Python, the schema validator and JSON Schema read them alike: no control characters.
_C = r"\s\x00-\x1f\x7f"
EMAIL_PATTERN = rf"^[^@{_C}]{{1,64}}@[^@{_C}]+\.[^@{_C}]+$"
#: Digits, spaces, + ( ) . / -; starting with + , a digit or "(", ending with a digit or ")".
PHONE_PATTERN = r"^\+?[0-9(][0-9 ()./-]{3,30}[0-9)]$"
PULL_URL_PATTERN = rf"^https?://[^{_C}]+$"
EMAIL_RE = re.compile(EMAIL_PATTERN)
PHONE_RE = re.compile(PHONE_PATTERN)
PULL_URL_RE = re.compile(PULL_URL_PATTERN)


def check_email(email: str) -> str:
    email = email.strip()
    if not EMAIL_RE.fullmatch(email) or len(email) > 254:
        raise Unprocessable(f"{email!r} is not an email address; give one the owner reads.")
    local, domain = email.rsplit("@", 1)
    return f"{local}@{domain.lower()}"


def check_phone(phone: str) -> None:
    if not PHONE_RE.fullmatch(phone.strip()):
        raise Unprocessable(f"{phone!r} is not a phone number; use digits, spaces, +, -, ( and ).")


# --- who may do what --------------------------------------------------------------------------


def is_program_admin(user: User) -> bool:
    """An admin of the home agency: runs the program, approves self-registered cameras, sees all."""
    return user.role == Role.admin and user.agency == HOME_AGENCY


def sees_owner(user: User, owner: Owner) -> bool:
    """Whether `user` may read this owner's name, email and phone."""
    return is_program_admin(user) or owner.agency == user.agency


def may_edit(user: User, camera: Camera) -> bool:
    """Whether `user` may change, deactivate or approve this camera."""
    return is_program_admin(user) or camera.agency == user.agency


def _check_edit(user: User, camera: Camera) -> None:
    if not may_edit(user, camera):
        raise Forbidden(
            f"Camera {camera.id} was registered by {camera.agency}; only {camera.agency} or a program "
            f"administrator ({HOME_AGENCY} admin) may change it. Ask them."
        )


def create_owner(
    *,
    session: Session,
    name: str,
    email: str,
    phone: str | None,
    created_by: str | None,
    agency: str = HOME_AGENCY,
) -> Owner:
    """An owner registered by staff of `agency` (self sign-up: the program's home agency)."""
    name = name.strip()
    if not name:
        raise Unprocessable("The owner's name is empty; give the name the owner registered with.")
    email = check_email(email)
    if phone is not None:
        check_phone(phone)
    if session.exec(select(Owner).where(sa.func.lower(Owner.email) == email.lower())).first():
        raise Conflict(f"An owner with email {email} is registered already; add cameras to that owner.")
    if len(name) > 200:
        raise Unprocessable("Keep the name to 200 characters.")
    owner = Owner(
        name=name,
        email=email,
        phone=phone.strip() if phone else None,
        created_by=created_by,
        agency=agency,
        confirmed_at=utcnow(),  # staff registered them in person; self sign-up clears this
    )
    session.add(owner)
    try:
        session.flush()
    except IntegrityError as exc:  # a concurrent registration of the same address won the race
        session.rollback()
        raise Conflict(f"An owner with email {email} is registered already.") from exc
    return owner


def get_owner(*, session: Session, user: User, owner_id: str) -> Owner:
    """The owner if `user` may see their contact details; otherwise, as when there is none, 404."""
    owner = session.get(Owner, owner_id)
    if owner is None or not sees_owner(user, owner):
        raise NotFound(
            f"No owner {owner_id} registered by your agency; register the owner first with POST /owners."
        )
    return owner


def list_owners(*, session: Session, user: User, limit: int, offset: int) -> list[Owner]:
    """The owners `user` may see: their agency's, or everyone's for a program administrator."""
    stmt = select(Owner)
    if not is_program_admin(user):
        stmt = stmt.where(col(Owner.agency) == user.agency)
    stmt = stmt.order_by(col(Owner.created_at), col(Owner.id)).offset(offset).limit(limit)
    return list(session.exec(stmt).all())


def _check_point(lat: float, lon: float) -> None:
    problem = validate_point(lat, lon)
    if problem:
        raise Unprocessable(problem)


def check_camera_fields(kind: str, pull_url: str | None) -> None:
    if kind not in CameraKind.__members__:
        raise Unprocessable(f"kind must be 'registered' or 'integrated', got {kind!r}.")
    if pull_url is not None and not PULL_URL_RE.fullmatch(pull_url):
        raise Unprocessable("The recorder address (pull_url) must start with http:// or https://.")
    if kind == CameraKind.integrated and not pull_url:
        raise Unprocessable(
            "An integrated camera needs the recorder address (pull_url) that custody fetches footage from."
        )


def check_pull_url(pull_url: str | None, pull_networks: Sequence[netpolicy.Network]) -> None:
    """Refuse (422) a recorder address custody would not pull from: not http(s), a host that does not
    resolve, or one resolving into a private, loopback or link-local network that
    CUSTODY_PULL_ALLOWED_NETWORKS does not list. The pull checks again (DNS may change meanwhile)."""
    if pull_url is None:
        return
    try:
        netpolicy.check_url(pull_url, pull_networks)
    except netpolicy.PullRefused as exc:
        reason = exc.reason[:1].upper() + exc.reason[1:]
        raise Unprocessable(f"{reason}.", code="pull_url_refused") from exc


def create_camera(
    *,
    session: Session,
    user: User,
    owner_id: str,
    label: str,
    lat: float,
    lon: float,
    kind: str,
    pull_url: str | None,
    pull_networks: Sequence[netpolicy.Network],
) -> Camera:
    """A camera registered by `user`'s agency, for an owner that agency registered (or any owner,
    for a program administrator). An owner `user` may not see is 404, as if there were none."""
    label = label.strip()
    if not label:
        raise Unprocessable("The camera label is empty; describe where it is or what it sees.")
    _check_point(lat, lon)
    check_camera_fields(kind, pull_url)
    check_pull_url(pull_url, pull_networks)
    owner = session.get(Owner, owner_id)
    if owner is None or not sees_owner(user, owner):
        raise NotFound(
            f"No owner {owner_id} registered by your agency; register the owner first with POST /owners.",
            code="unknown_owner",
        )
    camera = Camera(
        owner_id=owner_id,
        agency=user.agency,
        label=label,
        lat=lat,
        lon=lon,
        lat_cell=lat_cell(lat),
        kind=kind,
        pull_url=pull_url,
        approved_at=utcnow(),  # registered by staff: approved as it is created
        approved_by=user.id,
    )
    session.add(camera)
    session.flush()
    return camera


def get_camera(*, session: Session, camera_id: str) -> Camera:
    camera = session.get(Camera, camera_id)
    if camera is None:
        raise NotFound(f"No camera {camera_id}.")
    return camera


def list_cameras(
    *, session: Session, owner_id: str | None, include_inactive: bool, limit: int, offset: int
) -> list[Camera]:
    stmt = select(Camera)
    if owner_id is not None:
        stmt = stmt.where(Camera.owner_id == owner_id)
    if not include_inactive:
        stmt = stmt.where(col(Camera.active).is_(True))
    stmt = stmt.order_by(col(Camera.created_at), col(Camera.id)).offset(offset).limit(limit)
    return list(session.exec(stmt).all())


def update_camera(
    *,
    session: Session,
    user: User,
    camera_id: str,
    label: str | None = None,
    lat: float | None = None,
    lon: float | None = None,
    kind: str | None = None,
    pull_networks: Sequence[netpolicy.Network],
    pull_url: str | None = None,
    clear_pull_url: bool = False,
) -> Camera:
    camera = get_camera(session=session, camera_id=camera_id)
    _check_edit(user, camera)
    new_lat = camera.lat if lat is None else lat
    new_lon = camera.lon if lon is None else lon
    new_kind = camera.kind if kind is None else kind
    new_pull = None if clear_pull_url else (pull_url if pull_url is not None else camera.pull_url)
    _check_point(new_lat, new_lon)
    check_camera_fields(new_kind, new_pull)
    if new_pull != camera.pull_url:  # an unchanged address is checked at each pull, not at each edit
        check_pull_url(new_pull, pull_networks)
    if label is not None:
        if not label.strip():
            raise Unprocessable("The camera label is empty; describe where it is or what it sees.")
        camera.label = label.strip()
    camera.lat, camera.lon, camera.lat_cell = new_lat, new_lon, lat_cell(new_lat)
    camera.kind, camera.pull_url = new_kind, new_pull
    camera.updated_at = utcnow()
    session.add(camera)
    session.flush()
    return camera


def deactivate_camera(*, session: Session, user: User, camera_id: str) -> Camera:
    """Take a camera out of search. The row stays: past requests and evidence refer to it."""
    camera = get_camera(session=session, camera_id=camera_id)
    _check_edit(user, camera)
    if camera.active:
        camera.active = False
        camera.updated_at = utcnow()
        session.add(camera)
        session.flush()
    return camera


@dataclass(frozen=True, slots=True)
class CameraHit:
    id: str
    owner_id: str
    label: str
    kind: str
    lat: float
    lon: float
    pull_url: str | None
    distance_m: float
    approved: bool = True  # False: an integrated camera staff have not approved yet (asked, not pulled)


def search_cameras(
    *,
    session: Session,
    lat: float,
    lon: float,
    radius_m: float,
    max_radius_m: float,
    limit: int | None = None,
) -> list[CameraHit]:
    """Active cameras within `radius_m` metres of (lat, lon), nearest first."""
    _check_point(lat, lon)
    if not radius_m > 0:
        raise Unprocessable(f"The radius (radius_m) must be more than 0 m, not {radius_m:g}.")
    if radius_m > max_radius_m:
        raise Unprocessable(
            f"The radius (radius_m) of {radius_m:g} m is above the program's limit of {max_radius_m:g} m; "
            "ask a narrower area."
        )
    box = bounding_box(lat, lon, radius_m)
    t = Camera.__table__.c  # type: ignore[attr-defined]
    distance = _sql_haversine_m(t.lat, t.lon, lat, lon).label("distance_m")
    inner = (
        sa.select(
            t.id,
            t.owner_id,
            t.label,
            t.kind,
            t.lat,
            t.lon,
            t.pull_url,
            distance,
            t.approved_at.is_not(None).label("approved"),
        )
        .where(
            t.lat_cell.in_(box.cells()),
            t.lon.between(box.min_lon, box.max_lon),
            t.lat.between(box.min_lat, box.max_lat),
            t.active.is_(True),
        )
        .subquery()
    )
    stmt = (
        sa.select(inner)
        .where(inner.c.distance_m <= radius_m)
        .order_by(inner.c.distance_m, inner.c.id)
        .limit(limit)
    )
    return [CameraHit(*row) for row in session.execute(stmt)]


def approve_camera(*, session: Session, user: User, camera_id: str) -> Camera:
    """Staff approve an integrated camera's pull source: from now on alerts pull it directly.
    Self-registered cameras belong to the program: its administrators approve them."""
    camera = get_camera(session=session, camera_id=camera_id)
    _check_edit(user, camera)
    if camera.kind != CameraKind.integrated:
        raise Conflict("Only integrated cameras need approval; registered cameras are asked each time.")
    if not camera.active:
        raise Conflict("This camera was removed from the program; it cannot be approved.")
    if camera.approved_at is None:
        camera.approved_at = utcnow()
        camera.approved_by = user.id
        session.add(camera)
        session.flush()
    return camera


def _sql_haversine_m(
    lat_col: sa.ColumnElement[float], lon_col: sa.ColumnElement[float], lat: float, lon: float
) -> sa.ColumnElement[float]:
    """The haversine distance in SQL, so the database filters and orders the box's rows itself.

    Same formula as custody.geo.haversine_m. Both engines have sin/cos/asin/sqrt/radians (SQLite's
    math functions; custody.db registers them where a SQLite build lacks them)."""
    f = sa.func
    p1 = math.radians(lat)
    dp = (f.radians(lat_col) - p1) / 2
    dl = (f.radians(lon_col) - math.radians(lon)) / 2
    a = f.sin(dp) * f.sin(dp) + math.cos(p1) * f.cos(f.radians(lat_col)) * f.sin(dl) * f.sin(dl)
    return 2 * EARTH_RADIUS_M * f.asin(f.sqrt(a))


def naive_search_cameras(*, session: Session, lat: float, lon: float, radius_m: float) -> list[CameraHit]:
    """Full scan with the same exact filter: the anchor the benchmark compares the index against."""
    t = Camera.__table__.c  # type: ignore[attr-defined]
    stmt = sa.select(t.id, t.owner_id, t.label, t.kind, t.lat, t.lon, t.pull_url).where(t.active.is_(True))
    hits = []
    for row in session.execute(stmt):
        d = haversine_m(lat, lon, row.lat, row.lon)
        if d <= radius_m:
            hits.append(
                CameraHit(row.id, row.owner_id, row.label, row.kind, row.lat, row.lon, row.pull_url, d)
            )
    hits.sort(key=lambda h: (h.distance_m, h.id))
    return hits
