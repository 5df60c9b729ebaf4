"""What a staff account cannot make custody do, however it tries: reach an internal address through an
integrated camera's pull URL (and read its answer in a history), or grow the ledger without bound by
asking for custody reports in a loop. Through the real stack (API, worker, Temporal), both databases,
with the default policy: no private network allowed."""

from __future__ import annotations

import http.server
import json
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from api.app import create_app
from custody.db import session_scope
from custody.geo import lat_cell
from custody.models import Camera, CameraKind
from custody.settings import Settings
from custody.timeutil import utcnow
from devstack.procs import free_port
from tests.conftest import Stack
from tests.flow import request_status, running_worker, wait_for
from tests.helpers import login, make_user, staff_headers, unique_email
from tests.integration.test_footage_requests import _alert, _spot

REPORTS_PER_MIN = 3
SECRET = "internal-service-body-7f3a"


@pytest.fixture(scope="module")
def strict_settings(stack: Stack, db_url: str) -> Settings:
    return stack.settings(
        database_url=db_url,
        task_queue=f"abuse-{uuid.uuid4().hex[:8]}",
        pull_allowed_networks="",  # the default outside dev mode: no private network
        pull_max_attempts=3,
        pull_retry_interval_s=0.2,
        pull_timeout_s=3,
        report_rate_per_min=REPORTS_PER_MIN,
    )


@pytest.fixture(scope="module")
def api(strict_settings: Settings) -> Iterator[TestClient]:
    with running_worker(strict_settings), TestClient(create_app(strict_settings)) as client:
        yield client


class InternalService:
    """Stands for something on the internal network: answers 404 with a body, counts every request."""

    def __init__(self) -> None:
        hits: list[str] = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                hits.append(self.path)
                body = SECRET.encode()
                self.send_response(404)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.hits = hits
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def internal() -> Iterator[InternalService]:
    service = InternalService()
    yield service
    service.server.shutdown()


def _owner(api: TestClient, h: dict[str, str]) -> str:
    resp = api.post("/owners", json={"name": "Pat Owner", "email": unique_email()}, headers=h)
    assert resp.status_code == 201, resp.text
    owner_id: str = resp.json()["id"]
    return owner_id


def test_internal_pull_urls_are_refused_when_a_camera_is_registered_or_edited(
    api: TestClient, internal: InternalService
) -> None:
    h = staff_headers(api, "investigator")
    owner = _owner(api, h)
    lat, lon = _spot()
    base = {"owner_id": owner, "label": "Loading dock", "lat": lat, "lon": lon, "kind": "integrated"}
    for url in [
        f"http://127.0.0.1:{internal.port}/feed",
        f"http://localhost:{internal.port}/feed",
        f"http://2130706433:{internal.port}/",
        f"http://[::ffff:127.0.0.1]:{internal.port}/",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/",
    ]:
        resp = api.post("/cameras", json={**base, "pull_url": url}, headers=h)
        assert resp.status_code == 422, (url, resp.text)
        error = resp.json()["error"]
        assert error["code"] == "pull_url_refused", error
        if "four decimal numbers" not in error["message"]:
            assert "not allowed" in error["message"], error
            assert "CUSTODY_PULL_ALLOWED_NETWORKS" in error["message"], error
    # A camera registered without a pull URL cannot be turned into one either.
    cam = api.post("/cameras", json={**base, "kind": "registered"}, headers=h)
    assert cam.status_code == 201, cam.text
    edit = api.patch(
        f"/cameras/{cam.json()['id']}",
        json={"kind": "integrated", "pull_url": f"http://127.0.0.1:{internal.port}/feed"},
        headers=h,
    )
    assert edit.status_code == 422 and edit.json()["error"]["code"] == "pull_url_refused", edit.text
    assert internal.hits == []  # nothing was ever contacted


def test_a_pull_url_that_got_past_registration_is_refused_at_pull_time_without_echoing(
    api: TestClient, internal: InternalService
) -> None:
    """Say the camera was registered when its name resolved elsewhere, or before the policy: the pull
    checks again, never connects, and the history says why without any answer from inside."""
    h = staff_headers(api, "investigator")
    owner = _owner(api, h)
    lat, lon = _spot()
    engine: Engine = api.app.state.engine  # type: ignore[attr-defined]
    with session_scope(engine) as s:
        cam = Camera(
            owner_id=owner,
            label="Back office NVR",
            lat=lat,
            lon=lon,
            lat_cell=lat_cell(lat),
            kind=CameraKind.integrated,
            pull_url=f"http://127.0.0.1:{internal.port}/feed",
            approved_at=utcnow(),
        )
        s.add(cam)
    alert = _alert(api, h, lat, lon, radius=50)
    (req,) = alert["requests"]
    wait_for("failed", lambda: request_status(api, h, req["id"]) == "failed", timeout=60)
    history = api.get(f"/requests/{req['id']}", headers=h).json()["history"]
    details = [e["detail"] for e in history]
    final = details[-1]
    assert "not allowed" in final and "loopback" in final, details
    tries = [d for d in details if d.startswith("try ")]
    assert len(tries) == 1, details  # refused is final: no retries against the address
    ledger = api.app.state.ledger  # type: ignore[attr-defined]
    entries = [json.loads(data) for _, data in ledger.entries_for(case_id=alert["case_id"])]
    failed = [e for e in entries if e["type"] == "request_failed"]
    assert len(failed) == 1 and "not allowed" in failed[0]["detail"], failed
    everything = json.dumps([details, entries])
    assert "HTTP" not in everything and SECRET not in everything
    assert internal.hits == []


def test_reports_and_bundles_are_limited_per_user_and_a_refused_one_records_nothing(
    api: TestClient,
) -> None:
    h = staff_headers(api, "investigator")
    case_id = api.post("/cases", json={"title": "Limit test"}, headers=h).json()["id"]
    ledger = api.app.state.ledger  # type: ignore[attr-defined]

    def produced() -> int:
        types = [json.loads(data)["type"] for _, data in ledger.entries_for(case_id=case_id)]
        return sum(t in ("bundle_generated", "report_generated") for t in types)

    for _ in range(REPORTS_PER_MIN):
        assert api.get(f"/cases/{case_id}/custody-bundle.json", headers=h).status_code == 200
    assert produced() == REPORTS_PER_MIN
    for path in ("custody-bundle.json", "custody-report.pdf"):
        refused = api.get(f"/cases/{case_id}/{path}", headers=h)
        assert refused.status_code == 429, refused.text
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        error = refused.json()["error"]
        assert error["code"] == "too_many_requests" and "try again in" in error["message"], error
    assert produced() == REPORTS_PER_MIN  # the refused requests appended nothing
    # The limit is per user: a colleague is not held up.
    other = login(api, *make_user(api.app.state.engine, "investigator"))  # type: ignore[attr-defined]
    assert api.get(f"/cases/{case_id}/custody-bundle.json", headers=other).status_code == 200
    assert produced() == REPORTS_PER_MIN + 1
