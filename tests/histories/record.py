"""Records the workflow histories that tests/histories/test_replay.py replays: one real run of every
path a footage request takes, through the API, the real worker and the embedded Temporal, SeaweedFS
and SMTP servers (the session's `stack`), on a throwaway SQLite database.

Run it after every release that changes workflow code (docs/operations.md, "Changing workflow code"):

    make histories            # or: .venv/bin/python -m tests.histories.record

It takes about a minute and rewrites the files named below (tests/histories/<scenario>.json); commit
them with the release. The file
name (its stem) is the workflow id the replay test gives each history; the content is Temporal's
own history JSON (what `temporal workflow show --output json` prints).

What the histories hold: ids (random), the agency code, durations, the synthetic owners' consent-token
public ids and staff user ids (random), step details as they appear in a request's history (the
investigator's cancel reasons here are made up), and the sent notices' Message-IDs. No email address,
name, token secret or key: the workflows are given ids only (see activities/requests.py), and
`_check_clean` below refuses to write a history holding any of this run's secrets or owners'
addresses. Failure stack traces and worker identities (pid@host) are blanked: replay never reads them.
"""

from __future__ import annotations

import asyncio
import hashlib
import http.server
import json
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from temporalio.client import Client

from api.app import create_app
from custody.settings import Settings
from devstack.procs import free_port
from tests.conftest import Stack
from tests.flow import request_status, running_worker, video_bytes, wait_for
from tests.helpers import staff_headers
from tests.integration.test_footage_requests import _alert, _camera, _spot, _token_for
from tests.integration.test_pulls_and_cancel import HangingRecorder
from workflows.requests import incident_workflow_id, request_workflow_id

HERE = Path(__file__).parent


@pytest.fixture(scope="session")
def db_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One engine is enough: histories do not depend on the database."""
    return f"sqlite:///{tmp_path_factory.mktemp('histories') / 'custody.db'}"


@pytest.fixture(scope="module")
def recorder() -> Iterator[str]:
    """An integrated camera's recorder: /ok serves an MP4, anything else answers HTTP 500."""
    payload = video_bytes(300_000, seed=3)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            ok = self.path.startswith("/ok")
            self.send_response(200 if ok else 500)
            self.send_header("Content-Type", "video/mp4")
            self.send_header("Content-Length", str(len(payload) if ok else 0))
            self.end_headers()
            if ok:
                self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _notified(api: TestClient, settings: Settings, h: dict[str, str]) -> tuple[str, str, str]:
    """A registered camera at a fresh spot asked in a new alert: (request id, its token, owner email)."""
    lat, lon = _spot()
    _, email = _camera(api, h, lat, lon)
    alert = _alert(api, h, lat, lon)
    req_id = alert["requests"][0]["id"]
    wait_for("notified", lambda: request_status(api, h, req_id) in ("notified", "expired"))
    return req_id, _token_for(settings, email), email


def _decide(api: TestClient, token: str, decision: str) -> None:
    resp = api.post(f"/consent/{token}/decision", json={"decision": decision})
    assert resp.status_code == 200, resp.text


def test_record_histories(stack: Stack, db_url: str, recorder: str) -> None:
    common: dict[str, Any] = {
        "database_url": db_url,
        "task_queue": f"histories-{uuid.uuid4().hex[:8]}",
        "public_url": "http://testserver",
        "pull_max_attempts": 2,
        "pull_retry_interval_s": 0.2,
        "pull_timeout_s": 3,
    }
    # Two APIs on one worker: the consent window and reminders are the alert's (the API's settings).
    week = stack.settings(**common, consent_ttl_s=600, reminders_s=[300])
    brief = stack.settings(**common, consent_ttl_s=12, reminders_s=[3, 6])
    ids: dict[str, str] = {}  # file stem -> workflow id
    emails: list[str] = []
    tokens: list[str] = []
    with running_worker(week):
        with TestClient(create_app(week)) as api:
            h = staff_headers(api, "investigator")

            # The incident fan-out: a registered camera (consent, upload, complete, attach) and two
            # integrated ones (a pull that succeeds, one whose recorder fails).
            lat, lon = _spot()
            _, email = _camera(api, h, lat + 0.001, lon)
            good, _ = _camera(api, h, lat - 0.001, lon, kind="integrated", pull_url=f"{recorder}/ok")
            bad, _ = _camera(api, h, lat, lon + 0.001, kind="integrated", pull_url=f"{recorder}/fail")
            alert = _alert(api, h, lat, lon)
            by_camera = {r["camera_id"]: r["id"] for r in alert["requests"]}
            ids["incident-fanout"] = incident_workflow_id(alert["incident_id"])
            ids["pull-success"] = request_workflow_id(by_camera.pop(good))
            ids["pull-failure"] = request_workflow_id(by_camera.pop(bad))
            (req_id,) = by_camera.values()
            ids["footage-consent-upload-attach"] = request_workflow_id(req_id)
            wait_for("notified", lambda: request_status(api, h, req_id) == "notified")
            token = _token_for(week, email)
            emails.append(email)
            tokens.append(token)
            _decide(api, token, "consent")
            data = video_bytes(400_000)
            up = api.put(
                f"/consent/{token}/files/porch.mp4",
                content=data,
                headers={"Content-Type": "video/mp4", "X-Content-SHA256": hashlib.sha256(data).hexdigest()},
            )
            assert up.status_code == 201, up.text
            assert api.post(f"/consent/{token}/complete").status_code == 202

            req_id, token, email = _notified(api, week, h)
            ids["footage-decline"] = request_workflow_id(req_id)
            emails.append(email)
            tokens.append(token)
            _decide(api, token, "decline")

            req_id, token, email = _notified(api, week, h)
            ids["footage-cancel"] = request_workflow_id(req_id)
            emails.append(email)
            tokens.append(token)
            resp = api.post(f"/requests/{req_id}/cancel", headers=h, json={"reason": "wrong address"})
            assert resp.status_code == 200, resp.text

            hanging = HangingRecorder()
            try:
                lat, lon = _spot()
                _camera(api, h, lat, lon, kind="integrated", pull_url=hanging.url)
                req_id = _alert(api, h, lat, lon)["requests"][0]["id"]
                ids["pull-cancel"] = request_workflow_id(req_id)
                assert hanging.accepted.wait(30), "the pull never reached the recorder"
                why = {"reason": "suspect identified"}
                resp = api.post(f"/requests/{req_id}/cancel", headers=h, json=why)
                assert resp.status_code == 200, resp.text
            finally:
                hanging.close()

        with TestClient(create_app(brief)) as api:
            h = staff_headers(api, "investigator")
            # Nobody answers: both reminders, then expiry. And consent given but no file sent.
            silent, token, email = _notified(api, brief, h)
            emails.append(email)
            tokens.append(token)
            consenting, token, email = _notified(api, brief, h)
            emails.append(email)
            tokens.append(token)
            _decide(api, token, "consent")
            ids["footage-expiry-after-reminders"] = request_workflow_id(silent)
            ids["footage-consent-then-expiry"] = request_workflow_id(consenting)

        histories = asyncio.run(_fetch(week, ids))
    # Every line of every generated key (a PEM's base64 lines too), the owners' addresses and tokens.
    keys = [line for v in _strings(stack.secrets) for line in v.splitlines() if len(line) >= 16]
    secrets = [*emails, *tokens, *keys]
    for stem, text in histories.items():
        _check_clean(stem, text, secrets)
    # Overwrites this release's files only: a previous release's, renamed, are kept until its workflows
    # have ended (docs/operations.md); a scenario removed from here leaves its file to delete by hand.
    for stem, text in histories.items():
        (HERE / f"{stem}.json").write_text(text + "\n")
    print(f"\nwrote {len(histories)} histories to {HERE}", file=sys.stderr)


def _strings(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)


async def _fetch(settings: Settings, ids: dict[str, str]) -> dict[str, str]:
    """Each workflow's history once it has ended, as indented JSON."""
    client = await Client.connect(settings.temporal_address, namespace=settings.temporal_namespace)
    out: dict[str, str] = {}
    for stem, wid in ids.items():
        handle = client.get_workflow_handle(wid)
        await asyncio.wait_for(handle.result(), timeout=120)
        history = await handle.fetch_history()
        out[stem] = json.dumps(_scrubbed(json.loads(history.to_json())), indent=1)
    return out


def _scrubbed(value: Any) -> Any:
    """The history without what replay never reads and that only describes this machine: failures'
    stack traces (file paths of this checkout and virtualenv) and workers' identities (pid@host)."""
    if isinstance(value, dict):
        return {
            k: "" if k == "stackTrace" else "recorder" if k == "identity" else _scrubbed(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_scrubbed(v) for v in value]
    return value


def _check_clean(stem: str, text: str, secrets: list[str]) -> None:
    for value in secrets:
        assert value not in text, f"history {stem} holds a secret or an owner's address; not written"


if __name__ == "__main__":
    raise SystemExit(pytest.main(["-q", "-p", "no:cacheprovider", __file__, *sys.argv[1:]]))
