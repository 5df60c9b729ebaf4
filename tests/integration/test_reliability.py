"""Nothing is lost when processes die: kill -9 the worker while a request waits for consent and
while its file is being verified, and restart the Temporal server mid-run. Every request still
finishes, with no duplicate email, ledger entry or evidence row."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import uuid
from collections import Counter

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from api.app import create_app
from custody.settings import Settings
from tests.conftest import Stack
from tests.flow import link_in, messages_to, request_status, video_bytes, wait_for
from tests.helpers import settings_env, staff_headers, unique_email


class WorkerProcess:
    def __init__(self, settings: Settings) -> None:
        self.env = settings_env(settings)
        self.log = settings.home / "logs" / f"worker-{settings.task_queue}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "worker"], env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        wait_for(
            "worker ready",
            lambda: "worker ready" in self.log.read_text(errors="replace").split("WORKER-START")[-1],
        )

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        with self.log.open("a") as log:
            log.write("\nWORKER-START\n")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()


@pytest.fixture
def rel_settings(stack: Stack, db_url: str) -> Settings:
    return stack.settings(
        database_url=db_url,
        task_queue=f"rel-{uuid.uuid4().hex[:8]}",
        consent_ttl_s=300,
        reminders_s=[3600],
        activity_heartbeat_s=2,
        public_url="http://testserver",
        ledger_checkpoint_interval_s=5,
    )


def _setup_request(api: TestClient, settings: Settings, lat: float) -> tuple[dict[str, str], str, str, str]:
    h = staff_headers(api, "investigator")
    email = unique_email()
    owner = api.post("/owners", json={"name": "R", "email": email}, headers=h).json()["id"]
    body = {"owner_id": owner, "label": "Gate", "lat": lat, "lon": -76.4, "kind": "registered"}
    assert api.post("/cameras", json=body, headers=h).status_code == 201
    case = api.post("/cases", json={"title": "Reliability"}, headers=h).json()["id"]
    from tests.integration.test_footage_requests import _window

    alert = api.post(
        f"/cases/{case}/alerts", json={"lat": lat, "lon": -76.4, "radius_m": 100, **_window()}, headers=h
    )
    assert alert.status_code == 202, alert.text
    return h, case, alert.json()["requests"][0]["id"], email


def _consent_and_upload(api: TestClient, settings: Settings, email: str, size: int) -> None:
    msgs = wait_for("notice", lambda: messages_to(settings.home / "mail", email))
    token = link_in(msgs[0]).rsplit("/consent/", 1)[1]
    assert api.post(f"/consent/{token}/decision", json={"decision": "consent"}).status_code == 200
    up = api.put(
        f"/consent/{token}/files/clip.mp4", content=video_bytes(size), headers={"Content-Type": "video/mp4"}
    )
    assert up.status_code == 201, up.text
    assert api.post(f"/consent/{token}/complete").status_code == 202


def _ledger_counts(api: TestClient, case_id: str) -> Counter[str]:
    ledger = api.app.state.ledger  # type: ignore[attr-defined]
    return Counter(json.loads(data)["type"] for _, data in ledger.entries_for(case_id=case_id))


def test_worker_killed_twice_and_temporal_restarted(
    stack: Stack, rel_settings: Settings, db_url: str
) -> None:
    if db_url.startswith("sqlite"):
        # What this kills and restarts is the worker and Temporal, not the database: its 33 s run on
        # the production engine only, for the suite's 15 minutes (the database's faults are in
        # tests/faults, on both engines).
        pytest.skip("worker and Temporal restarts: run on PostgreSQL, the production engine")
    worker = WorkerProcess(rel_settings)
    try:
        worker.start()
        with TestClient(create_app(rel_settings)) as api:
            # 1. Kill -9 while the request waits for consent.
            h, case, req_id, email = _setup_request(
                api, rel_settings, 37.11 + (hash(rel_settings.task_queue) % 100) / 1000
            )
            wait_for("notified", lambda: request_status(api, h, req_id) == "notified")
            worker.kill9()
            worker.start()
            # 2. Kill -9 while the file is being verified (40 MB takes a moment to re-read).
            _consent_and_upload(api, rel_settings, email, size=40_000_000)
            worker.kill9()
            worker.start()
            wait_for(
                "attached after two crashes", lambda: request_status(api, h, req_id) == "attached", timeout=90
            )
            assert len(messages_to(rel_settings.home / "mail", email)) == 1, "one notice, no duplicate email"
            counts = _ledger_counts(api, case)
            for kind in (
                "request_created",
                "owner_notified",
                "consent_given",
                "file_received",
                "file_verified",
                "evidence_attached",
            ):
                assert counts[kind] == 1, (kind, counts)
            with api.app.state.engine.connect() as conn:  # type: ignore[attr-defined]
                rows = conn.execute(
                    sa.text("SELECT count(*) FROM evidence WHERE request_id = :r"), {"r": req_id}
                )
                assert rows.scalar() == 1, "one evidence row"

            # 3. Restart the Temporal server (same database file) while a request waits.
            h, case, req_id, email = _setup_request(
                api, rel_settings, 37.31 + (hash(rel_settings.task_queue) % 100) / 1000
            )
            wait_for("notified", lambda: request_status(api, h, req_id) == "notified")
            stack.restart_temporal()
            _consent_and_upload(api, rel_settings, email, size=300_000)
            wait_for(
                "attached after a server restart",
                lambda: request_status(api, h, req_id) == "attached",
                timeout=90,
            )
            counts = _ledger_counts(api, case)
            assert counts["evidence_attached"] == 1 and counts["owner_notified"] == 1
    finally:
        worker.stop()
