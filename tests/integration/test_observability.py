"""Observability over the real processes: `python -m api.serve` and `python -m worker` with JSON logs
and metrics on, one owner's consent flow through them, then what an operator sees: JSON log lines
with request, case, request and workflow ids and no secret; `/metrics` by route template with upload
bytes and the ledger's figures; the worker's Prometheus endpoint with the Temporal SDK's metrics
and custody's. And `/health/live` and `/health/ready` when the database or SMTP is down.

One stack per module (SQLite: none of this depends on the database engine).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from custody import logs
from custody.db import engine_for
from custody.redact import RedactSecrets
from custody.settings import Settings
from devstack.procs import free_port
from tests.conftest import Stack, migrated
from tests.flow import link_in, messages_to, video_bytes, wait_for
from tests.helpers import make_user, secrets_in_logs, settings_env, unique_email

pytestmark = pytest.mark.stack

METRICS_TOKEN = "scrape-" + uuid.uuid4().hex


@dataclass
class Run:
    settings: Settings
    url: str
    worker_metrics: str
    api_log: Path
    worker_log: Path
    request_id: str
    case_id: str
    http_request_id: str
    token: str
    jwt: str


def _start(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def run(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    folder = tmp_path_factory.mktemp("observe")
    port, metrics_port = free_port(), free_port()
    settings = stack.settings(
        database_url=migrated(f"sqlite:///{folder / 'custody.db'}"),  # only `custody migrate` migrates
        task_queue=f"obs-{uuid.uuid4().hex[:8]}",
        public_url=f"http://127.0.0.1:{port}",
        consent_ttl_s=600,
        reminders_s=[3600],
        log_format="json",
        metrics_token=METRICS_TOKEN,
        worker_metrics_port=metrics_port,
        ledger_checkpoint_interval_s=1,
    )
    env = settings_env(settings)
    api_log, worker_log = folder / "api.log", folder / "worker.log"
    procs = [_start([sys.executable, "-m", "api.serve", "--port", str(port)], env, api_log)]
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for("the API", lambda: _answers(f"{url}/health/live"), timeout=60, interval=0.2)
        procs.append(_start([sys.executable, "-m", "worker"], env, worker_log))
        wait_for("the worker", lambda: "worker ready" in worker_log.read_text(), timeout=60, interval=0.2)
        yield _flow(settings, url, f"http://127.0.0.1:{metrics_port}/metrics", api_log, worker_log)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()


def _flow(settings: Settings, url: str, worker_metrics: str, api_log: Path, worker_log: Path) -> Run:
    """One owner asked, consenting and uploading; the request reaches `attached`."""
    engine = engine_for(settings)
    username, password = make_user(engine, "investigator")
    engine.dispose()
    c = httpx.Client(base_url=url, timeout=60)
    jwt = c.post("/auth/token", data={"username": username, "password": password}).json()["access_token"]
    h = {"Authorization": f"Bearer {jwt}"}
    email = unique_email()
    owner = c.post("/owners", json={"name": "Pat Owner", "email": email}, headers=h).json()["id"]
    camera = {"owner_id": owner, "label": "Porch camera", "lat": 38.2, "lon": -76.9, "kind": "registered"}
    assert c.post("/cameras", json=camera, headers=h).status_code == 201
    case_id = c.post("/cases", json={"title": "Observed case"}, headers=h).json()["id"]
    end = datetime.now(UTC) - timedelta(minutes=5)
    alert = {
        "lat": 38.2, "lon": -76.9, "radius_m": 100, "description": "robbery",
        "window_start": (end - timedelta(minutes=30)).isoformat(), "window_end": end.isoformat(),
    }  # fmt: skip
    resp = c.post(f"/cases/{case_id}/alerts", json=alert, headers=h)
    assert resp.status_code == 202, resp.text
    request_id = resp.json()["requests"][0]["id"]
    msgs = wait_for("the notice", lambda: messages_to(settings.home / "mail", email), timeout=60)
    token = link_in(msgs[0]).rsplit("/consent/", 1)[1]
    assert c.post(f"/consent/{token}/decision", json={"decision": "consent"}).status_code == 200
    data = video_bytes(300_000)
    http_request_id = f"upload-{uuid.uuid4().hex}"
    up = c.put(
        f"/consent/{token}/files/porch.mp4",
        content=data,
        headers={
            "Content-Type": "video/mp4",
            "X-Content-SHA256": hashlib.sha256(data).hexdigest(),
            "X-Request-ID": http_request_id,
        },
    )
    assert up.status_code == 201, up.text
    assert up.headers["x-request-id"] == http_request_id  # a well-formed incoming id is kept
    assert c.post(f"/consent/{token}/complete").status_code == 202
    wait_for(
        "attached",
        lambda: c.get(f"/requests/{request_id}", headers=h).json()["status"] == "attached",
        timeout=60,
    )
    return Run(settings, url, worker_metrics, api_log, worker_log, request_id, case_id, http_request_id,
               token, jwt)  # fmt: skip


def _json_lines(path: Path) -> list[dict[str, Any]]:
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    return [json.loads(line) for line in lines]  # every line is JSON, or this fails


def test_json_logs_carry_the_ids_and_no_secret(run: Run) -> None:
    api = _json_lines(run.api_log)
    for line in api:
        assert {"time", "level", "logger", "message"} <= set(line)
        assert datetime.fromisoformat(line["time"]).utcoffset() is not None  # RFC 3339 with an offset
    access = [x for x in api if x["logger"] == "uvicorn.access"]
    assert access and all(x.get("http_request_id") for x in access)
    upload = [x for x in access if x.get("method") == "PUT"]
    assert len(upload) == 1
    assert upload[0]["http_request_id"] == run.http_request_id and upload[0]["status"] == 201
    assert upload[0]["path"] == "/consent/[redacted]/files/porch.mp4"
    assert upload[0]["request_id"] == run.request_id and upload[0]["case_id"] == run.case_id
    # Generated ids are distinct per request.
    assert len({x["http_request_id"] for x in access}) == len(access)

    worker = _json_lines(run.worker_log)
    verified = [x for x in worker if x["message"].startswith("activity verify_files done")]
    assert verified, [x["message"] for x in worker][-20:]
    assert verified[0]["request_id"] == run.request_id
    assert verified[0]["activity"] == "verify_files"
    assert verified[0]["workflow_id"] and run.request_id in verified[0]["workflow_id"]

    known = [run.token, run.jwt, METRICS_TOKEN]
    assert secrets_in_logs(run.api_log.parent, known) == []
    assert "@example.org" not in run.api_log.read_text() + run.worker_log.read_text()  # no owner email


def test_metrics_by_route_template_with_uploads_and_the_ledger(run: Run) -> None:
    assert httpx.get(f"{run.url}/metrics").status_code == 401
    assert httpx.get(f"{run.url}/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    resp = httpx.get(f"{run.url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/plain")
    text = resp.text
    assert 'custody_http_requests_total{method="GET",route="/requests/{request_id}",status="200"}' in text
    assert 'route="/consent/{token}/files/{filename}"' in text
    assert run.request_id not in text and run.token not in text  # templates, never raw paths
    stored = _sample(text, 'custody_upload_bytes_total{outcome="stored"}')
    assert stored >= 300_000
    assert _sample(text, "custody_upload_rate_bytes_per_second_count") >= 1
    assert _sample(text, "custody_ledger_tree_size") > 0
    wait_for("a checkpoint", lambda: "custody_ledger_checkpoint_age_seconds " in _scrape(run), timeout=10)
    assert 0 <= _sample(_scrape(run), "custody_ledger_checkpoint_age_seconds") < 600


def test_the_worker_serves_temporal_and_custody_metrics(run: Run) -> None:
    text = httpx.get(run.worker_metrics, timeout=10).text
    assert "temporal_" in text  # the SDK's own: polls, task latencies, activity outcomes
    assert "temporal_activity_execution_latency" in text
    assert 'outcome="sent"' in text and "custody_notices_total" in text
    assert "custody_verification_seconds_count" in text


def _scrape(run: Run) -> str:
    return httpx.get(f"{run.url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}).text


def _sample(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    raise AssertionError(f"{name} not in the metrics")


# --- health --------------------------------------------------------------------------------------


def test_ready_is_503_naming_the_database_when_it_is_unreachable_and_live_stays_200(
    stack: Stack,
) -> None:
    dead = free_port()  # a PostgreSQL server that is not there
    settings = stack.settings(database_url=f"postgresql+psycopg://postgres@127.0.0.1:{dead}/custody")
    client = TestClient(create_app(settings))  # no lifespan: it would migrate the missing database
    ready = client.get("/health/ready")
    assert ready.status_code == 503
    body = ready.json()
    assert body["status"] == "unavailable"
    assert body["components"]["db"] == {"ok": False, "detail": "not answering"}
    assert body["components"]["temporal"]["ok"] and body["components"]["s3"]["ok"]
    assert client.get("/health").json() == body
    assert client.get("/health/live").json() == {"status": "ok"}
    assert client.get("/health/live").status_code == 200
    assert str(dead) not in ready.text and "psycopg" not in ready.text.lower()  # no exception text


def test_smtp_down_degrades_but_stays_ready(stack: Stack, tmp_path: Path) -> None:
    settings = stack.settings(database_url=f"sqlite:///{tmp_path / 'custody.db'}", smtp_port=free_port())
    client = TestClient(create_app(settings))
    ready = client.get("/health/ready")
    assert ready.status_code == 200
    body = ready.json()
    assert body["status"] == "degraded"
    assert body["components"]["smtp"] == {"ok": False, "detail": "not answering"}
    assert all(body["components"][c]["ok"] for c in ("db", "temporal", "s3"))
    assert str(settings.smtp_port) not in ready.text  # no host or port: a fixed reason
    # A malformed incoming X-Request-ID (a forged log line) is replaced by a generated one.
    forged = client.get("/health/live", headers={"X-Request-ID": 'x" level=ERROR msg="forged'})
    assert re.fullmatch(r"[0-9a-f]{32}", forged.headers["x-request-id"])
    assert ready.headers["x-request-id"] != forged.headers["x-request-id"]


# --- the formatter on its own ----------------------------------------------------------------------

TOKEN = "6GFgi-5KR43F5ILc0ub33QNMzZyw1i69zc8G70oYbNQ"
JWT = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ1c2VyIn0.c2lnbmF0dXJlLXZhbHVl"


def test_json_lines_are_redacted_and_carry_the_bound_ids() -> None:
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "GET", f"/consent/{TOKEN}?token=abc", "1.1", 200), None,
    )  # fmt: skip
    try:
        raise ValueError(f"bad link /consent/{TOKEN} with Bearer {JWT}")
    except ValueError:
        record.exc_info = sys.exc_info()
    assert RedactSecrets().filter(record)
    with logs.bound(http_request_id="abc12345", case_id="c-1", request_id="r-1"):
        line = json.loads(logs.JsonFormatter().format(record))
    assert TOKEN not in json.dumps(line) and JWT not in json.dumps(line) and "abc&" not in json.dumps(line)
    assert line["path"] == "/consent/[redacted]?token=[redacted]" and line["status"] == 200
    assert (line["http_request_id"], line["case_id"], line["request_id"]) == ("abc12345", "c-1", "r-1")
    assert "ValueError" in line["exception"]
    # A record that bypassed the filter is still cleaned by the formatter itself.
    raw = logging.LogRecord("custody", logging.WARNING, __file__, 1, "link %s", (f"/consent/{TOKEN}",), None)
    assert TOKEN not in logs.JsonFormatter().format(raw)
    assert "http_request_id" not in json.loads(logs.JsonFormatter().format(raw))  # unbound again
