"""Owners and cameras of the community camera program (staff routes)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from sqlmodel import Session

from api.deps import AdminOnly, SessionDep, SettingsDep, StaffWriter, require_json
from api.params import Id, Limit, Offset
from api.schemas import CameraHitOut, CameraIn, CameraOut, CameraPatch, OwnerIn, OwnerOut
from custody import basis
from custody.ledger.entries import Component
from custody.models import Camera
from custody.services import registry

router = APIRouter(tags=["registry"])
json_body = [Depends(require_json)]


@router.post("/owners", status_code=201, response_model=OwnerOut, dependencies=json_body)
def create_owner(body: OwnerIn, user: StaffWriter, session: SessionDep) -> OwnerOut:
    owner = registry.create_owner(
        session=session,
        name=body.name,
        email=body.email,
        phone=body.phone,
        created_by=user.id,
        agency=user.agency,
    )
    return OwnerOut.model_validate(owner)


@router.get("/owners", response_model=list[OwnerOut])
def list_owners(
    user: StaffWriter, session: SessionDep, limit: Limit = 100, offset: Offset = 0
) -> list[OwnerOut]:
    """The owners your agency registered (a program administrator: every owner)."""
    owners = registry.list_owners(session=session, user=user, limit=limit, offset=offset)
    return [OwnerOut.model_validate(o) for o in owners]


@router.get("/owners/{owner_id}", response_model=OwnerOut)
def get_owner(owner_id: Id, user: StaffWriter, session: SessionDep) -> OwnerOut:
    """An owner your agency registered; any other owner is 404."""
    return OwnerOut.model_validate(registry.get_owner(session=session, user=user, owner_id=owner_id))


@router.post("/cameras", status_code=201, response_model=CameraOut, dependencies=json_body)
def create_camera(
    body: CameraIn, user: StaffWriter, session: SessionDep, settings: SettingsDep, request: Request
) -> CameraOut:
    """A camera of an owner your agency registered (404 for any other owner). An integrated camera
    staff register is approved at once: its owner's integration agreement is recorded
    (`camera_approved`, the basis of the footage pulled from it)."""
    camera = registry.create_camera(
        session=session,
        user=user,
        owner_id=body.owner_id,
        label=body.label,
        lat=body.lat,
        lon=body.lon,
        kind=body.kind,
        pull_url=body.pull_url,
        pull_networks=settings.pull_networks,
    )
    out = CameraOut.model_validate(camera)
    _record_agreement(request, session, camera)
    return out


@router.post("/cameras/{camera_id}/approve", response_model=CameraOut)
def approve_camera(camera_id: Id, user: AdminOnly, session: SessionDep, request: Request) -> CameraOut:
    """Approve a self-registered integrated camera: alerts pull it from then on. Self-registered
    cameras are the program's: a program administrator approves them. The approval records the
    owner's integration agreement (`camera_approved`), the basis of the footage pulled from it."""
    camera = registry.approve_camera(session=session, user=user, camera_id=camera_id)
    out = CameraOut.model_validate(camera)
    _record_agreement(request, session, camera)
    return out


def _record_agreement(request: Request, session: Session, camera: Camera) -> None:
    """Committed first (SQLite's one writer must be free for the ledger); idempotent."""
    session.commit()
    settings = request.app.state.settings
    basis.record_agreement(
        request.app.state.ledger,
        camera,
        terms_version=settings.consent_terms_version,
        component=Component.api,
    )


@router.get("/cameras/search", response_model=list[CameraHitOut])
def search_cameras(
    _: StaffWriter,
    session: SessionDep,
    settings: SettingsDep,
    lat: Annotated[float, Query(ge=-90, le=90, description="Latitude of the centre, WGS84")],
    lon: Annotated[float, Query(ge=-180, le=180, description="Longitude of the centre, WGS84")],
    radius_m: Annotated[float, Query(gt=0, description="Radius in metres, at most CUSTODY_MAX_RADIUS_M")],
    limit: Annotated[int, Query(ge=1, le=10000)] = 1000,
) -> list[CameraHitOut]:
    """Active cameras in range, nearest first: every agency's (any agency may ask any camera)."""
    hits = registry.search_cameras(
        session=session, lat=lat, lon=lon, radius_m=radius_m, max_radius_m=settings.max_radius_m, limit=limit
    )
    return [CameraHitOut.model_validate(h) for h in hits]


@router.get("/cameras", response_model=list[CameraOut])
def list_cameras(
    _: StaffWriter,
    session: SessionDep,
    owner_id: Annotated[str | None, Query(max_length=36)] = None,
    include_inactive: bool = False,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[CameraOut]:
    cams = registry.list_cameras(
        session=session, owner_id=owner_id, include_inactive=include_inactive, limit=limit, offset=offset
    )
    return [CameraOut.model_validate(c) for c in cams]


@router.get("/cameras/{camera_id}", response_model=CameraOut)
def get_camera(camera_id: Id, _: StaffWriter, session: SessionDep) -> CameraOut:
    return CameraOut.model_validate(registry.get_camera(session=session, camera_id=camera_id))


@router.patch("/cameras/{camera_id}", response_model=CameraOut, dependencies=json_body)
def update_camera(
    camera_id: Id, body: CameraPatch, user: StaffWriter, session: SessionDep, settings: SettingsDep
) -> CameraOut:
    """Change a camera your agency registered (another agency's camera: 403)."""
    given = body.model_fields_set
    camera = registry.update_camera(
        session=session,
        user=user,
        camera_id=camera_id,
        label=body.label,
        lat=body.lat,
        lon=body.lon,
        kind=body.kind,
        pull_url=body.pull_url,
        pull_networks=settings.pull_networks,
        clear_pull_url="pull_url" in given and body.pull_url is None,
    )
    return CameraOut.model_validate(camera)


@router.post("/cameras/{camera_id}/deactivate", response_model=CameraOut)
def deactivate_camera(camera_id: Id, user: StaffWriter, session: SessionDep) -> CameraOut:
    """Take a camera your agency registered out of search (another agency's camera: 403)."""
    camera = registry.deactivate_camera(session=session, user=user, camera_id=camera_id)
    return CameraOut.model_validate(camera)
