"""Owners, cameras and radius search through the real API, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from fastapi.testclient import TestClient

from custody.db import alembic_config, create_db_engine
from custody.geo import haversine_m
from tests.conftest import _create_pg_database, _drop_pg_database
from tests.helpers import staff_headers, unique_email

CENTRE = (38.8990, -77.0280)


def _owner(api: TestClient, headers: dict[str, str]) -> str:
    body = {"name": "Ann Owner", "email": unique_email(), "phone": "+1 202 555 0100"}
    resp = api.post("/owners", json=body, headers=headers)
    assert resp.status_code == 201, resp.text
    return str(resp.json()["id"])


def _camera(
    api: TestClient, headers: dict[str, str], owner: str, lat: float, lon: float, **extra: object
) -> str:
    body = {"owner_id": owner, "label": "front door", "lat": lat, "lon": lon, "kind": "registered", **extra}
    resp = api.post("/cameras", json=body, headers=headers)
    assert resp.status_code == 201, resp.text
    return str(resp.json()["id"])


def _count(api: TestClient, table: str) -> int:
    with api.app.state.engine.connect() as conn:  # type: ignore[attr-defined]
        return int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())


def test_register_search_update_deactivate(api: TestClient) -> None:
    h = staff_headers(api, "investigator")
    owner = _owner(api, h)
    lat0, lon0 = 38.95, -77.10  # an area no other test uses
    near = _camera(api, h, owner, lat0 + 0.001, lon0)  # ~111 m north
    nearer = _camera(api, h, owner, lat0, lon0 + 0.0005)  # ~43 m east
    far = _camera(api, h, owner, lat0 + 0.02, lon0)  # ~2.2 km
    integrated = _camera(
        api, h, owner, lat0 - 0.002, lon0, kind="integrated", pull_url="http://127.0.0.1:9/feed"
    )

    resp = api.get("/cameras/search", params={"lat": lat0, "lon": lon0, "radius_m": 500}, headers=h)
    assert resp.status_code == 200
    hits = resp.json()
    assert [c["id"] for c in hits] == [nearer, near, integrated]
    assert far not in {c["id"] for c in hits}
    for c in hits:
        assert c["distance_m"] == pytest.approx(haversine_m(lat0, lon0, c["lat"], c["lon"]))
        assert set(c) == {"id", "label", "kind", "lat", "lon", "distance_m"}
    assert hits[2]["kind"] == "integrated"

    moved = api.patch(f"/cameras/{near}", json={"lat": lat0 + 0.03, "label": "moved"}, headers=h)
    assert moved.status_code == 200 and moved.json()["label"] == "moved"
    gone = api.post(f"/cameras/{nearer}/deactivate", headers=h)
    assert gone.status_code == 200 and gone.json()["active"] is False
    hits = api.get("/cameras/search", params={"lat": lat0, "lon": lon0, "radius_m": 500}, headers=h).json()
    assert [c["id"] for c in hits] == [integrated]
    # The deactivated camera stays on record.
    assert api.get(f"/cameras/{nearer}", headers=h).json()["active"] is False
    listed = api.get("/cameras", params={"owner_id": owner, "include_inactive": True}, headers=h).json()
    assert {c["id"] for c in listed} == {near, nearer, far, integrated}


def test_prosecutor_and_auditor_cannot_register(api: TestClient) -> None:
    admin = staff_headers(api, "admin")
    owner = _owner(api, admin)
    for role in ("prosecutor", "auditor"):
        h = staff_headers(api, role)
        body = {"owner_id": owner, "label": "x", "lat": 1, "lon": 1, "kind": "registered"}
        resp = api.post("/cameras", json=body, headers=h)
        assert resp.status_code == 403
        assert resp.json()["error"]["code"] == "forbidden"
        assert api.post("/owners", json={"name": "x", "email": unique_email()}, headers=h).status_code == 403


def test_bad_input_is_refused_and_stores_nothing(api: TestClient) -> None:
    h = staff_headers(api, "investigator")
    owner = _owner(api, h)
    cams, owners = _count(api, "cameras"), _count(api, "owners")
    ok = {"owner_id": owner, "label": "door", "lat": 38.9, "lon": -77.0, "kind": "registered"}
    cases: list[tuple[str, dict[str, object], int, str]] = [
        ("lat out of range", {**ok, "lat": 91}, 422, "validation_error"),
        ("lon out of range", {**ok, "lon": -181}, 422, "validation_error"),
        ("unknown owner", {**ok, "owner_id": "00000000-0000-0000-0000-000000000000"}, 404, "unknown_owner"),
        ("unknown field", {**ok, "colour": "red"}, 422, "validation_error"),
        ("bad kind", {**ok, "kind": "hidden"}, 422, "validation_error"),
        ("integrated without pull_url", {**ok, "kind": "integrated"}, 422, "validation_error"),
        ("missing field", {k: v for k, v in ok.items() if k != "lat"}, 422, "validation_error"),
        ("a boolean for a number", {**ok, "lon": True}, 422, "validation_error"),
        ("a string for a number", {**ok, "lat": "38.9"}, 422, "validation_error"),
        ("pull_url not http", {**ok, "pull_url": "file:///etc/passwd"}, 422, "validation_error"),
        ("label only spaces", {**ok, "label": "   "}, 422, "validation_error"),
    ]
    for name, body, status, code in cases:
        resp = api.post("/cameras", json=body, headers=h)
        assert resp.status_code == status, (name, resp.text)
        assert resp.json()["error"]["code"] == code, name
        assert resp.json()["error"]["message"], name

    malformed = api.post(
        "/cameras", content=b'{"owner_id": ', headers={**h, "Content-Type": "application/json"}
    )
    assert malformed.status_code == 400 and malformed.json()["error"]["code"] == "malformed_json"
    wrong_type = api.post("/cameras", content=b"owner_id=x", headers={**h, "Content-Type": "text/plain"})
    assert wrong_type.status_code == 415 and wrong_type.json()["error"]["code"] == "unsupported_media_type"

    email = unique_email()
    assert api.post("/owners", json={"name": "A", "email": email}, headers=h).status_code == 201
    dup = api.post("/owners", json={"name": "B", "email": email.upper()}, headers=h)
    assert dup.status_code == 409 and dup.json()["error"]["code"] == "conflict"
    bad_email = api.post("/owners", json={"name": "C", "email": "not-an-email"}, headers=h)
    assert bad_email.status_code == 422

    assert _count(api, "cameras") == cams
    assert _count(api, "owners") == owners + 1  # only the one good owner


def test_search_scope_limits(api: TestClient) -> None:
    h = staff_headers(api, "investigator")
    max_r = api.app.state.settings.max_radius_m  # type: ignore[attr-defined]
    for params in (
        {"lat": 38.9, "lon": -77, "radius_m": -5},
        {"lat": 38.9, "lon": -77, "radius_m": 0},
        {"lat": 38.9, "lon": -77, "radius_m": max_r + 1},
        {"lat": 95, "lon": -77, "radius_m": 100},
        {"lat": 38.9, "lon": 200, "radius_m": 100},
    ):
        resp = api.get("/cameras/search", params=params, headers=h)
        assert resp.status_code == 422, params
        assert "error" in resp.json()
    missing = api.get("/cameras/search", params={"lat": 38.9}, headers=h)
    assert missing.status_code == 422 and missing.json()["error"]["code"] == "validation_error"


def test_unknown_ids_are_404(api: TestClient) -> None:
    h = staff_headers(api, "admin")
    assert api.get("/cameras/nope", headers=h).status_code == 404
    assert api.get("/owners/nope", headers=h).json()["error"]["code"] == "not_found"


def test_the_registry_is_scoped_per_agency(api: TestClient) -> None:
    """An agency changes only the cameras it registered and sees only its owners' contact details;
    a program administrator (home agency admin) does both for all; every agency searches all."""
    mpd = staff_headers(api, "investigator", "MPD")
    owner = _owner(api, mpd)
    lat0, lon0 = 38.97, -77.12  # an area no other test uses
    cam = _camera(api, mpd, owner, lat0, lon0)
    for role in ("investigator", "admin"):
        other = staff_headers(api, role, "FBI")
        renamed = api.patch(f"/cameras/{cam}", json={"label": "renamed by FBI"}, headers=other)
        assert renamed.status_code == 403, renamed.text
        assert "MPD" in renamed.json()["error"]["message"]
        assert api.post(f"/cameras/{cam}/deactivate", headers=other).status_code == 403
        assert api.get(f"/owners/{owner}", headers=other).status_code == 404
        listed = api.get("/owners", params={"limit": 1000}, headers=other).json()
        assert owner not in {o["id"] for o in listed}
        assert all(o["email"] != "" for o in listed)
        # Cameras stay readable and searchable program-wide, without the owner's contact details.
        seen = api.get(f"/cameras/{cam}", headers=other)
        assert seen.status_code == 200 and not {"name", "email", "phone"} & set(seen.json())
        hits = api.get("/cameras/search", params={"lat": lat0, "lon": lon0, "radius_m": 50}, headers=other)
        assert [h["id"] for h in hits.json()] == [cam]
        # Nor can another agency hang a camera on an owner it does not see.
        body = {"owner_id": owner, "label": "x", "lat": lat0, "lon": lon0, "kind": "registered"}
        assert api.post("/cameras", json=body, headers=other).status_code == 404
    assert api.get(f"/cameras/{cam}", headers=mpd).json()["label"] == "front door"
    assert api.get(f"/cameras/{cam}", headers=mpd).json()["active"] is True

    # The registering agency's own staff, and a program administrator, may.
    mpd2 = staff_headers(api, "investigator", "MPD")
    assert api.patch(f"/cameras/{cam}", json={"label": "gate"}, headers=mpd2).status_code == 200
    assert api.get(f"/owners/{owner}", headers=mpd2).json()["email"].endswith("@example.org")
    fbi = staff_headers(api, "investigator", "FBI")
    fbi_owner = _owner(api, fbi)
    fbi_cam = _camera(api, fbi, fbi_owner, lat0 + 0.001, lon0)
    assert api.patch(f"/cameras/{fbi_cam}", json={"label": "FBI's own"}, headers=fbi).status_code == 200
    assert api.get(f"/owners/{fbi_owner}", headers=mpd).status_code == 404
    program_admin = staff_headers(api, "admin", "MPD")
    assert api.get(f"/owners/{fbi_owner}", headers=program_admin).status_code == 200
    assert api.post(f"/cameras/{fbi_cam}/deactivate", headers=program_admin).status_code == 200


def test_registry_agency_is_backfilled_from_the_creating_user(db_url: str, tmp_path: Path) -> None:
    """Migration 0007 gives rows made before it the agency of the staff user who created them;
    self-registered owners and their cameras belong to the home agency. On a database of its own."""
    if db_url.startswith("sqlite"):
        url, name = f"sqlite:///{tmp_path / 'backfill.db'}", None
    else:
        name, url = _create_pg_database()
    engine = create_db_engine(url)
    try:
        cfg = alembic_config(url)
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "0005")
            uid, oid, sid, cid, scid = (str(uuid.uuid4()) for _ in range(5))
            t = "2026-01-01 00:00:00+00:00"
            conn.execute(
                sa.text(
                    "INSERT INTO users (id, username, password_hash, role, agency, active, created_at, "
                    "full_name, title) VALUES (:id, 'bf', 'x', 'investigator', 'FBI', true, :t, '', '')"
                ),
                {"id": uid, "t": t},
            )
            for owner, by in ((oid, uid), (sid, None)):
                conn.execute(
                    sa.text(
                        "INSERT INTO owners (id, name, email, registration_consent_at, created_at, "
                        "created_by, terms_version) VALUES (:id, 'n', :e, :t, :t, :by, 'x')"
                    ),
                    {"id": owner, "e": f"{owner}@example.org", "t": t, "by": by},
                )
            for cam, owner in ((cid, oid), (scid, sid)):  # the FBI user approved both
                conn.execute(
                    sa.text(
                        "INSERT INTO cameras (id, owner_id, label, lat, lon, lat_cell, kind, active, "
                        "created_at, updated_at, view_description, approved_by) VALUES (:id, :o, 'l', 1, 1, "
                        "1000, 'registered', true, :t, :t, '', :by)"
                    ),
                    {"id": cam, "o": owner, "t": t, "by": uid},
                )
            command.upgrade(cfg, "head")
            rows = conn.execute(
                sa.text("SELECT id, agency FROM owners UNION ALL SELECT id, agency FROM cameras")
            )
            agency = {r[0]: r[1] for r in rows}
        assert agency == {oid: "FBI", sid: "MPD", cid: "FBI", scid: "MPD"}
    finally:
        engine.dispose()
        if name is not None:
            _drop_pg_database(name)
