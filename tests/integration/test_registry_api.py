"""Owners, cameras and radius search through the real API, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from custody.geo import haversine_m
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
        ("lat out of range", {**ok, "lat": 91}, 422, "unprocessable"),
        ("lon out of range", {**ok, "lon": -181}, 422, "unprocessable"),
        ("unknown owner", {**ok, "owner_id": "00000000-0000-0000-0000-000000000000"}, 422, "unknown_owner"),
        ("unknown field", {**ok, "colour": "red"}, 422, "validation_error"),
        ("bad kind", {**ok, "kind": "hidden"}, 422, "validation_error"),
        ("integrated without pull_url", {**ok, "kind": "integrated"}, 422, "unprocessable"),
        ("missing field", {k: v for k, v in ok.items() if k != "lat"}, 422, "validation_error"),
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
