"""Integrated pulls end, and any open request can be cancelled: through the real stack (API, worker,
Temporal, SeaweedFS, SMTP, both databases), against recorders that refuse, fail, or hang."""

from __future__ import annotations

import http.server
import json
import socket
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from custody.settings import Settings
from devstack.procs import free_port
from tests.conftest import Stack
from tests.flow import messages_to, plain_text, request_status, running_worker, wait_for
from tests.helpers import staff_headers
from tests.integration.test_footage_requests import _alert, _camera, _spot, _token_for

MAX_TRIES = 3


@pytest.fixture(scope="module")
def pull_settings(stack: Stack, db_url: str) -> Settings:
    return stack.settings(
        database_url=db_url,
        task_queue=f"pulls-{uuid.uuid4().hex[:8]}",
        consent_ttl_s=120,
        reminders_s=[3600],
        public_url="http://testserver",
        pull_max_attempts=MAX_TRIES,
        pull_retry_interval_s=0.2,
        pull_timeout_s=3,
        time_zone="America/Chicago",
    )


@pytest.fixture(scope="module")
def api(pull_settings: Settings) -> Iterator[TestClient]:
    with running_worker(pull_settings), TestClient(create_app(pull_settings)) as client:
        yield client


@pytest.fixture(scope="module")
def failing_recorder() -> Iterator[str]:
    """A recorder that answers every pull with HTTP 500."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(500)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/feed"
    server.shutdown()


class HangingRecorder:
    """Accepts connections and never answers; `accepted` is set once a pull has connected."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.accepted = threading.Event()
        self.conns: list[socket.socket] = []
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/feed"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            self.accepted.set()

    def close(self) -> None:
        self.sock.close()
        for conn in self.conns:
            conn.close()


def _history(api: TestClient, h: dict[str, str], req_id: str) -> list[dict[str, Any]]:
    resp = api.get(f"/requests/{req_id}", headers=h)
    assert resp.status_code == 200, resp.text
    history: list[dict[str, Any]] = resp.json()["history"]
    return history


def _entries(api: TestClient, case_id: str) -> list[dict[str, Any]]:
    ledger = api.app.state.ledger  # type: ignore[attr-defined]
    return [json.loads(data) for _, data in ledger.entries_for(case_id=case_id)]


def _integrated_request(api: TestClient, h: dict[str, str], pull_url: str) -> tuple[str, str]:
    lat, lon = _spot()
    _camera(api, h, lat, lon, kind="integrated", pull_url=pull_url)
    alert = _alert(api, h, lat, lon)
    return alert["case_id"], alert["requests"][0]["id"]


def test_an_unreachable_recorder_ends_failed_with_its_reason(api: TestClient) -> None:
    h = staff_headers(api, "investigator")
    closed_port = free_port()  # nothing listens there: connection refused
    case_id, req_id = _integrated_request(api, h, f"http://127.0.0.1:{closed_port}/feed")
    wait_for("failed", lambda: request_status(api, h, req_id) == "failed", timeout=60)
    details = [e["detail"] for e in _history(api, h, req_id)]
    final = details[-1]
    assert final.startswith(f"pull failed after {MAX_TRIES} tries"), details
    assert "connection refused" in final, final
    tries = [d for d in details if d.startswith("try ")]
    assert len(tries) == MAX_TRIES and f"try 1 of {MAX_TRIES}" in tries[0], details
    failed = [e for e in _entries(api, case_id) if e["type"] == "request_failed"]
    assert len(failed) == 1 and "connection refused" in failed[0]["detail"]
    # Ended: nothing left to cancel.
    again = api.post(f"/requests/{req_id}/cancel", headers=h, json={"reason": "too late"})
    assert again.status_code == 409 and "already ended" in again.json()["error"]["message"]


def test_a_recorder_answering_500_fails_naming_the_status(api: TestClient, failing_recorder: str) -> None:
    h = staff_headers(api, "investigator")
    _case_id, req_id = _integrated_request(api, h, failing_recorder)
    wait_for("failed", lambda: request_status(api, h, req_id) == "failed", timeout=60)
    final = _history(api, h, req_id)[-1]["detail"]
    assert "HTTP 500" in final and f"after {MAX_TRIES} tries" in final, final


def test_a_hanging_recorder_can_be_cancelled_with_a_reason(api: TestClient) -> None:
    h = staff_headers(api, "investigator")
    recorder = HangingRecorder()
    try:
        case_id, req_id = _integrated_request(api, h, recorder.url)
        assert recorder.accepted.wait(30), "the pull never reached the recorder"
        resp = api.post(f"/requests/{req_id}/cancel", headers=h, json={"reason": "suspect identified"})
        assert resp.status_code == 200 and resp.json()["status"] == "cancelled", resp.text
    finally:
        recorder.close()
    assert request_status(api, h, req_id) == "cancelled"
    assert "suspect identified" in _history(api, h, req_id)[-1]["detail"]
    cancelled = [e for e in _entries(api, case_id) if e["type"] == "request_cancelled"]
    assert len(cancelled) == 1 and "suspect identified" in cancelled[0]["detail"]
    assert api.get(f"/cases/{case_id}/evidence", headers=h).json() == []
    assert api.post(f"/requests/{req_id}/cancel", headers=h).status_code == 409


def test_a_cancelled_owner_is_told_nothing_more_is_needed(api: TestClient, pull_settings: Settings) -> None:
    h = staff_headers(api, "investigator")
    lat, lon = _spot()
    _cam, email = _camera(api, h, lat, lon)
    alert = _alert(api, h, lat, lon)
    req_id = alert["requests"][0]["id"]
    wait_for("notified", lambda: request_status(api, h, req_id) == "notified")
    token = _token_for(pull_settings, email)
    resp = api.post(f"/requests/{req_id}/cancel", headers=h, json={"reason": "wrong address"})
    assert resp.status_code == 200 and resp.json()["status"] == "cancelled"

    def cancel_notice() -> Any:
        found = [
            m for m in messages_to(pull_settings.home / "mail", email) if "No longer needed" in m["Subject"]
        ]
        return found

    notices = wait_for("the cancellation notice", cancel_notice)
    assert len(notices) == 1
    text = plain_text(notices[0])
    assert "You do not need to do anything" in text and "wrong address" not in text
    assert " CST" in text or " CDT" in text, text  # the program's zone (America/Chicago), named
    assert api.get(f"/consent/{token}", headers={"Accept": "application/json"}).status_code == 410
    assert "wrong address" in _history(api, h, req_id)[-1]["detail"]


def test_past_alerts_are_listed_for_the_case(api: TestClient) -> None:
    h = staff_headers(api, "investigator")
    lat, lon = _spot()
    _camera(api, h, lat, lon)
    first = _alert(api, h, lat, lon, radius=250)
    case_id = first["case_id"]
    second = api.post(
        f"/cases/{case_id}/alerts",
        json={
            "lat": lat + 0.025,  # between the spots of other tests: no camera there
            "lon": lon,
            "radius_m": 100,
            "window_start": "2026-11-27T21:25:00-05:00",
            "window_end": "2026-11-27T21:55:00-05:00",
            "description": "second look",
        },
        headers=h,
    )
    assert second.status_code == 202, second.text
    alerts = api.get(f"/cases/{case_id}/alerts", headers=h)
    assert alerts.status_code == 200, alerts.text
    listed = alerts.json()
    assert [a["id"] for a in listed] == [second.json()["incident_id"], first["incident_id"]]
    newest, oldest = listed
    assert newest["cameras_asked"] == 0 and oldest["cameras_asked"] == 1
    assert newest["radius_m"] == 100 and newest["description"] == "second look"
    assert newest["window_start"].startswith("2026-11-28T02:25:00")
    assert newest["created_by_name"] and newest["created_by"]
    other = staff_headers(api, "investigator", agency="MTPD")
    assert api.get(f"/cases/{case_id}/alerts", headers=other).status_code == 404
