"""The camera registry: owners, their cameras, and the radius search.

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
from custody.errors import Conflict, NotFound, Unprocessable
from custody.geo import EARTH_RADIUS_M, bounding_box, haversine_m, lat_cell, validate_point
from custody.models import Camera, CameraKind, Owner
from custody.timeutil import utcnow

EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
PHONE_RE = re.compile(r"^\+?[0-9 ()./-]{5,32}$")


def check_email(email: str) -> str:
    email = email.strip()
    if not EMAIL_RE.match(email) or len(email) > 254:
        raise Unprocessable(f"{email!r} is not an email address; give one the owner reads.")
    local, domain = email.rsplit("@", 1)
    return f"{local}@{domain.lower()}"


def check_phone(phone: str) -> None:
    if not PHONE_RE.match(phone.strip()):
        raise Unprocessable(f"{phone!r} is not a phone number; use digits, spaces, +, -, ( and ).")


def create_owner(
    *, session: Session, name: str, email: str, phone: str | None, created_by: str | None
) -> Owner:
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
        confirmed_at=utcnow(),  # staff registered them in person; self sign-up clears this
    )
    session.add(owner)
    try:
        session.flush()
    except IntegrityError as exc:  # a concurrent registration of the same address won the race
        session.rollback()
        raise Conflict(f"An owner with email {email} is registered already.") from exc
    return owner


def get_owner(*, session: Session, owner_id: str) -> Owner:
    owner = session.get(Owner, owner_id)
    if owner is None:
        raise NotFound(f"No owner {owner_id}; register the owner first with POST /owners.")
    return owner


def list_owners(*, session: Session, limit: int, offset: int) -> list[Owner]:
    stmt = select(Owner).order_by(col(Owner.created_at), col(Owner.id)).offset(offset).limit(limit)
    return list(session.exec(stmt).all())


def _check_point(lat: float, lon: float) -> None:
    problem = validate_point(lat, lon)
    if problem:
        raise Unprocessable(problem)


def check_camera_fields(kind: str, pull_url: str | None) -> None:
    if kind not in CameraKind.__members__:
        raise Unprocessable(f"kind must be 'registered' or 'integrated', got {kind!r}.")
    if pull_url is not None and not re.match(r"^https?://[^\s]+$", pull_url):
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
    owner_id: str,
    label: str,
    lat: float,
    lon: float,
    kind: str,
    pull_url: str | None,
    pull_networks: Sequence[netpolicy.Network],
    approved_by: str | None = None,
) -> Camera:
    label = label.strip()
    if not label:
        raise Unprocessable("The camera label is empty; describe where it is or what it sees.")
    _check_point(lat, lon)
    check_camera_fields(kind, pull_url)
    check_pull_url(pull_url, pull_networks)
    if session.get(Owner, owner_id) is None:
        raise Unprocessable(
            f"No owner {owner_id}; register the owner first with POST /owners.", code="unknown_owner"
        )
    camera = Camera(
        owner_id=owner_id,
        label=label,
        lat=lat,
        lon=lon,
        lat_cell=lat_cell(lat),
        kind=kind,
        pull_url=pull_url,
        approved_at=utcnow(),  # registered by staff: approved as it is created
        approved_by=approved_by,
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


def deactivate_camera(*, session: Session, camera_id: str) -> Camera:
    """Take a camera out of search. The row stays: past requests and evidence refer to it."""
    camera = get_camera(session=session, camera_id=camera_id)
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


def approve_camera(*, session: Session, camera_id: str, approved_by: str) -> Camera:
    """Staff approve an integrated camera's pull source: from now on alerts pull it directly."""
    camera = get_camera(session=session, camera_id=camera_id)
    if camera.kind != CameraKind.integrated:
        raise Conflict("Only integrated cameras need approval; registered cameras are asked each time.")
    if not camera.active:
        raise Conflict("This camera was removed from the program; it cannot be approved.")
    if camera.approved_at is None:
        camera.approved_at = utcnow()
        camera.approved_by = approved_by
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
