"""Strict input: numbers range-checked before SQL, no booleans taken for numbers, plausible dates,
and the rules stated in the OpenAPI document. Every refusal is a 422 that names the field."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.helpers import staff_headers, unique_email


@pytest.fixture(scope="module")
def investigator(api: TestClient) -> dict[str, str]:
    return staff_headers(api, "investigator")


def _refused(resp: Any, *words: str) -> None:
    assert resp.status_code == 422, resp.text
    error = resp.json()["error"]
    assert error["code"] == "validation_error", error
    for word in words:
        assert word in error["message"], error


@pytest.mark.parametrize("path", ["/owners", "/cases", "/cameras"])
@pytest.mark.parametrize("offset", [2**70, 2**63, -1])
def test_offsets_out_of_range_are_refused_before_sql(
    api: TestClient, investigator: dict[str, str], path: str, offset: int
) -> None:
    _refused(api.get(path, params={"offset": offset}, headers=investigator), "offset")


@pytest.mark.parametrize("path", ["/owners", "/cases", "/cameras"])
def test_limits_out_of_range_are_refused(api: TestClient, investigator: dict[str, str], path: str) -> None:
    for limit in (0, -1, 1001, 2**70):
        _refused(api.get(path, params={"limit": limit}, headers=investigator), "limit")
    assert api.get(path, params={"offset": 10**9, "limit": 1000}, headers=investigator).json() == []


def test_ledger_indexes_beyond_64_bits_are_refused(api: TestClient) -> None:
    auditor = staff_headers(api, "auditor")
    _refused(api.get("/ledger/entries", params={"start": 2**70}, headers=auditor), "start")
    _refused(api.get("/ledger/proofs/inclusion", params={"index": 0, "tree_size": 2**70}, headers=auditor))
    _refused(api.get(f"/ledger/checkpoints/{2**70}", headers=auditor), "tree_size")


def _window(end: datetime, minutes: int = 30) -> dict[str, str]:
    return {"window_start": (end - timedelta(minutes=minutes)).isoformat(), "window_end": end.isoformat()}


def test_booleans_and_strings_are_not_numbers(api: TestClient, investigator: dict[str, str]) -> None:
    owner = api.post("/owners", json={"name": "Lee", "email": unique_email()}, headers=investigator)
    camera = {
        "owner_id": owner.json()["id"],
        "label": "porch",
        "lat": 38.9,
        "lon": -77.0,
        "kind": "registered",
    }
    _refused(api.post("/cameras", json={**camera, "lon": True}, headers=investigator), "lon")
    _refused(api.post("/cameras", json={**camera, "lat": "38.9"}, headers=investigator), "lat")
    case = api.post("/cases", json={"title": "Strict numbers"}, headers=investigator).json()["id"]
    alert = {"lat": 10.0, "lon": 10.0, "radius_m": 50, **_window(datetime.now(UTC) - timedelta(hours=1))}
    _refused(api.post(f"/cases/{case}/alerts", json={**alert, "radius_m": True}, headers=investigator))
    _refused(api.post(f"/cases/{case}/alerts", json={**alert, "lat": False}, headers=investigator))
    cam = api.post("/cameras", json=camera, headers=investigator).json()["id"]
    _refused(api.patch(f"/cameras/{cam}", json={"lat": True}, headers=investigator), "lat")
    assert api.get(f"/cameras/{cam}", headers=investigator).json()["lat"] == 38.9


def test_dates_must_be_plausible(api: TestClient, investigator: dict[str, str]) -> None:
    case = api.post("/cases", json={"title": "Old footage"}, headers=investigator).json()["id"]
    base = {"lat": 10.0, "lon": 10.0, "radius_m": 50}
    ancient = api.post(
        f"/cases/{case}/alerts",
        json={**base, **_window(datetime(1, 1, 1, 1, tzinfo=UTC))},
        headers=investigator,
    )
    _refused(ancient, "window_start", "1990")
    ahead = datetime.now(UTC) + timedelta(days=400)
    _refused(
        api.post(f"/cases/{case}/alerts", json={**base, **_window(ahead)}, headers=investigator), "ahead"
    )
    assert api.get(f"/cases/{case}/alerts", headers=investigator).json() == []


def test_the_schema_states_the_rules(api: TestClient) -> None:
    """What the server checks is in the document, so a client (or schemathesis) can trust it."""
    doc = api.get("/openapi.json").json()
    schemas = doc["components"]["schemas"]
    alert = schemas["AlertIn"]["properties"]
    assert (alert["lat"]["minimum"], alert["lat"]["maximum"]) == (-90, 90)
    assert (alert["lon"]["minimum"], alert["lon"]["maximum"]) == (-180, 180)
    max_radius = api.app.state.settings.max_radius_m  # type: ignore[attr-defined]
    assert alert["radius_m"]["exclusiveMinimum"] == 0 and alert["radius_m"]["maximum"] == max_radius
    assert "pattern" in schemas["OwnerIn"]["properties"]["email"]
    search = {p["name"]: p["schema"] for p in doc["paths"]["/cameras/search"]["get"]["parameters"]}
    assert search["radius_m"]["maximum"] == max_radius and search["lat"]["maximum"] == 90
    for path in ("/owners", "/cases", "/cameras"):
        params = {p["name"]: p["schema"] for p in doc["paths"][path]["get"]["parameters"]}
        assert params["offset"]["minimum"] == 0 and params["offset"]["maximum"] <= 2**62
    too_far = api.get(
        "/cameras/search",
        params={"lat": 1, "lon": 1, "radius_m": max_radius + 1},
        headers=staff_headers(api, "investigator"),
    )
    assert too_far.status_code == 422


def test_unknown_or_repeated_query_parameters_are_refused(
    api: TestClient, investigator: dict[str, str]
) -> None:
    """A typo in a query (`limt`) is an error, as an unknown body field is, not a silent default."""
    _refused(api.get("/cases", params={"limt": 5}, headers=investigator), "limt", "limit")
    _refused(api.get("/cameras?owner_id=a&owner_id=b", headers=investigator), "owner_id")
    assert api.get("/cases", params={"limit": 5}, headers=investigator).status_code == 200
