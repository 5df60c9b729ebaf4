"""Who may do what, as a generated matrix: every case, request, evidence, report, share, alert and
registry route, for every staff role, from every relation an agency can have to the data (its own;
another agency's; shared with it; shared but expired; shared but revoked), asserting the exact
status. The data (a case whose request has attached evidence, through the real worker and consent
flow) is built once per module; one client asks everything.

Expected answers, in words:
- Reading a case and all that hangs off it: own agency and a live share 200; anyone else 404 (a
  case's existence does not leak).
- Changing it (alerts, cancel, shares): only the own agency's investigators and admins; a share is
  read-only (403); prosecutors and auditors never (403); anyone else 404.
- Registry: every agency's investigators and admins read and search cameras; only the registering
  agency (MPD here, also the program's home agency) changes them or sees its owners (others 404 for
  the owner, 403 for a change); prosecutors and auditors 403.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from api.app import create_app
from custody.db import session_scope
from custody.models import Role
from custody.services.users import create_user
from custody.settings import Settings
from tests.conftest import Stack
from tests.flow import link_in, messages_to, running_worker, video_bytes, wait_for
from tests.helpers import unique_email

ROLES = tuple(Role.__members__)  # investigator, prosecutor, auditor, admin
#: relation -> the agency whose staff have it. MPD owns the data (and is the program's home agency).
RELATIONS = {"own": "MPD", "other": "ATF", "shared": "FBI", "expired": "USMS", "revoked": "USCP"}
WRITERS = {"investigator", "admin"}


@dataclass
class World:
    client: TestClient
    tokens: dict[tuple[str, str], dict[str, str]]  # (role, relation) -> headers
    case_id: str
    request_id: str
    evidence_id: str
    revoked_share_id: str
    owner_id: str
    camera_id: str
    spare_camera_id: str
    lat: float
    lon: float


def _issue(client: TestClient, role: str, agency: str) -> dict[str, str]:
    """A staff user and a token for them (issued directly: logging in is tested elsewhere)."""
    app: Any = client.app
    with session_scope(app.state.engine) as session:
        user = create_user(
            session=session,
            username=f"m-{role[:3]}-{agency.lower()}-{uuid.uuid4().hex[:6]}",
            password=uuid.uuid4().hex,
            role=role,
            agency=agency,
        )
        token, _ = app.state.tokens.issue(user_id=user.id, role=user.role, agency=user.agency)
    return {"Authorization": f"Bearer {token}"}


def _ok(resp: httpx.Response, status: int = 200) -> Any:
    assert resp.status_code == status, resp.text
    return resp.json()


@pytest.fixture(scope="module")
def world(stack: Stack, db_url: str) -> Iterator[World]:
    settings: Settings = stack.settings(
        database_url=db_url,
        task_queue=f"matrix-{uuid.uuid4().hex[:8]}",
        consent_ttl_s=600,
        reminders_s=[3600],
        public_url="http://testserver",
    )
    with running_worker(settings), TestClient(create_app(settings)) as client:
        tokens = {(r, rel): _issue(client, r, agency) for r in ROLES for rel, agency in RELATIONS.items()}
        mpd = tokens[("investigator", "own")]
        lat, lon = 20.0 + random.random() * 5, 60.0 + random.random() * 5  # nobody else's cameras here
        email = unique_email()
        owner = _ok(client.post("/owners", json={"name": "Mo Owner", "email": email}, headers=mpd), 201)["id"]
        camera = {"owner_id": owner, "label": "Yard", "lat": lat, "lon": lon, "kind": "registered"}
        cam = _ok(client.post("/cameras", json=camera, headers=mpd), 201)["id"]
        spare = {**camera, "lat": lat + 0.5, "label": "Spare"}
        spare_cam = _ok(client.post("/cameras", json=spare, headers=mpd), 201)["id"]
        case = _ok(client.post("/cases", json={"title": "Matrix burglary"}, headers=mpd), 201)["id"]
        end = datetime.now(UTC) - timedelta(minutes=5)
        alert = {
            "lat": lat,
            "lon": lon,
            "radius_m": 20,
            "window_start": (end - timedelta(minutes=10)).isoformat(),
            "window_end": end.isoformat(),
        }
        (req,) = _ok(client.post(f"/cases/{case}/alerts", json=alert, headers=mpd), 202)["requests"]
        token = link_in(wait_for("the notice", lambda: messages_to(settings.home / "mail", email))[0])
        token = token.rsplit("/", 1)[1]
        _ok(client.post(f"/consent/{token}/decision", json={"decision": "consent"}))
        _ok(client.put(f"/consent/{token}/files/yard.mp4", content=video_bytes(100_000)), 201)
        _ok(client.post(f"/consent/{token}/complete"), 202)
        wait_for(
            "attached",
            lambda: client.get(f"/requests/{req['id']}", headers=mpd).json()["status"] == "attached",
            timeout=90,
            interval=0.2,
        )
        (evidence,) = _ok(client.get(f"/cases/{case}/evidence", headers=mpd))

        def share(agency: str) -> str:
            body = {"agency": agency, "expires_at": (datetime.now(UTC) + timedelta(days=1)).isoformat()}
            return str(_ok(client.post(f"/cases/{case}/shares", json=body, headers=mpd), 201)["id"])

        share(RELATIONS["shared"])
        expired = share(RELATIONS["expired"])
        with client.app.state.engine.begin() as conn:  # type: ignore[attr-defined]
            # A share cannot be made in the past through the API: this one ran out an hour ago.
            conn.execute(
                sa.text("UPDATE case_shares SET expires_at = :t WHERE id = :id"),
                {"t": datetime.now(UTC) - timedelta(hours=1), "id": expired},
            )
        revoked = share(RELATIONS["revoked"])
        _ok(client.post(f"/cases/{case}/shares/{revoked}/revoke", headers=mpd))
        yield World(client, tokens, case, req["id"], evidence["id"], revoked, owner, cam, spare_cam, lat, lon)


# --- the expected answers ---------------------------------------------------------------------

Expect = Callable[[str, str], int]


def case_read(ok: int = 200) -> Expect:
    def expect(role: str, relation: str) -> int:
        return ok if relation in ("own", "shared") else 404

    return expect


def case_write(ok: int) -> Expect:
    def expect(role: str, relation: str) -> int:
        if role not in WRITERS:
            return 403
        return {"own": ok, "shared": 403}.get(relation, 404)

    return expect


def registry_read(role: str, relation: str) -> int:
    return 200 if role in WRITERS else 403


def registry_mpd_only(ok: int = 200, other: int = 403) -> Expect:
    def expect(role: str, relation: str) -> int:
        if role not in WRITERS:
            return 403
        return ok if relation == "own" else other

    return expect


def approve(role: str, relation: str) -> int:
    if role != "admin":
        return 403
    return 409 if relation == "own" else 403  # the program admin may; a registered camera needs none


def hold_keeper(ok: int) -> Expect:
    """Legal holds: prosecutors and admins of the owning agency; a share is read-only."""

    def expect(role: str, relation: str) -> int:
        if role not in ("prosecutor", "admin"):
            return 403
        return {"own": ok, "shared": 403}.get(relation, 404)

    return expect


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    expect: Expect
    body: Callable[[World], Any] | None = None


def _alert_body(w: World) -> dict[str, Any]:
    end = datetime.now(UTC) - timedelta(minutes=1)
    return {  # a spot with no cameras: the alert is recorded, nothing is asked
        "lat": -w.lat,
        "lon": -w.lon,
        "radius_m": 10,
        "window_start": (end - timedelta(minutes=5)).isoformat(),
        "window_end": end.isoformat(),
    }


def _share_body(w: World) -> dict[str, Any]:
    return {"agency": "HSEMA", "expires_at": (datetime.now(UTC) + timedelta(days=1)).isoformat()}


ROUTES = (
    Route("GET", "/cases/{case}", case_read()),
    Route("GET", "/cases/{case}/requests", case_read()),
    Route("GET", "/cases/{case}/alerts", case_read()),
    Route("GET", "/cases/{case}/evidence", case_read()),
    Route("GET", "/requests/{request}", case_read()),
    Route("GET", "/evidence/{evidence}", case_read()),
    Route("GET", "/evidence/{evidence}/download", case_read()),
    # The file is no real video, so it has no working copy (409, made or not yet): who gets 404 matters.
    Route("GET", "/evidence/{evidence}/working-copy", case_read(409)),
    Route("GET", "/cases/{case}/custody-bundle.json", case_read()),
    Route("GET", "/cases/{case}/custody-report.pdf", case_read()),
    Route("POST", "/cases/{case}/alerts", case_write(202), _alert_body),
    Route("POST", "/requests/{request}/cancel", case_write(409)),  # attached: nothing left to cancel
    Route("GET", "/cases/{case}/shares", case_write(200)),
    Route("POST", "/cases/{case}/shares", case_write(201), _share_body),
    Route("POST", "/cases/{case}/shares/{revoked_share}/revoke", case_write(409)),  # revoked already
    Route("PATCH", "/cases/{case}", case_write(200), lambda w: {"category": "burglary"}),
    # No hold is on the file: releasing one is a conflict for those who may.
    Route(
        "POST", "/evidence/{evidence}/legal-hold/release", hold_keeper(409), lambda w: {"reason": "matrix"}
    ),
    Route("GET", "/owners/{owner}", registry_mpd_only(other=404)),
    Route("GET", "/cameras/{camera}", registry_read),
    Route("GET", "/cameras", registry_read),
    Route("GET", "/cameras/search?lat={lat}&lon={lon}&radius_m=50", registry_read),
    Route("PATCH", "/cameras/{camera}", registry_mpd_only(), lambda w: {"label": "Yard gate"}),
    Route("POST", "/cameras/{spare_camera}/deactivate", registry_mpd_only()),
    Route("POST", "/cameras/{camera}/approve", approve),
    Route(
        "POST",
        "/cameras",
        registry_mpd_only(201, other=404),  # on an owner only MPD sees
        lambda w: {
            "owner_id": w.owner_id,
            "label": "Extra",
            "lat": -w.lat,
            "lon": w.lon,
            "kind": "registered",
        },
    ),
)


def _url(route: Route, w: World) -> str:
    return route.path.format(
        case=w.case_id,
        request=w.request_id,
        evidence=w.evidence_id,
        revoked_share=w.revoked_share_id,
        owner=w.owner_id,
        camera=w.camera_id,
        spare_camera=w.spare_camera_id,
        lat=w.lat,
        lon=w.lon,
    )


def test_route_role_agency_matrix(world: World) -> None:
    wrong: list[str] = []
    cells = 0
    for route in ROUTES:
        url = _url(route, world)
        for role in ROLES:
            for relation in RELATIONS:
                want = route.expect(role, relation)
                kwargs: dict[str, Any] = {"headers": world.tokens[(role, relation)]}
                if route.body is not None:
                    kwargs["json"] = route.body(world)
                resp = world.client.request(route.method, url, **kwargs)
                cells += 1
                if resp.status_code != want:
                    wrong.append(
                        f"{route.method} {route.path} {role}/{relation}: {resp.status_code} != {want}"
                    )
                elif want >= 400:
                    assert resp.json()["error"]["message"], (route.path, role, relation)
    print(f"access matrix: {len(ROUTES)} routes x {len(ROLES)} roles x {len(RELATIONS)} relations = {cells}")
    assert not wrong, "\n".join(wrong)


def test_contact_details_stay_with_the_registering_agency(world: World) -> None:
    """Owner listings: MPD's staff see the owner; other agencies' staff do not, not even their admins."""
    for relation in RELATIONS:
        for role in WRITERS:
            owners = world.client.get(
                "/owners", params={"limit": 1000}, headers=world.tokens[(role, relation)]
            )
            ids = {o["id"] for o in owners.json()}
            assert (world.owner_id in ids) == (relation == "own"), (role, relation)
    hits = world.client.get(
        "/cameras/search",
        params={"lat": world.lat, "lon": world.lon, "radius_m": 50},
        headers=world.tokens[("investigator", "other")],
    ).json()
    assert [h["id"] for h in hits] == [world.camera_id]  # alerts still reach every agency's camera
