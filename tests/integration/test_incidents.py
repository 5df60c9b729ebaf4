"""Incidents from a crime center's CAD system: signed requests open (or find) the agency's case for
the CAD number; bad, stale, replayed or unknown signatures are 401; every intake is in the ledger;
the CLI prints an integration's id and secret once."""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from custody.db import session_scope
from custody.ledger.store import Ledger
from custody.services.incidents import create_integration
from custody.settings import Settings
from tests.conftest import Stack, migrated
from tests.helpers import settings_env, staff_headers

pytestmark = pytest.mark.stack
ROOT = Path(__file__).resolve().parents[2]


def _integration(api: TestClient, agency: str = "MPD") -> tuple[str, str]:
    with session_scope(api.app.state.engine) as session:  # type: ignore[attr-defined]
        integration, secret = create_integration(session=session, name="MPD CAD", agency=agency)
    return integration.id, secret


def _body(cad_number: str, occurred_at: str = "2026-11-28T09:15:00-05:00") -> bytes:
    incident = {
        "cad_number": cad_number,
        "type": "robbery",
        "lat": 38.8977,
        "lon": -77.0365,
        "occurred_at": occurred_at,
        "description": "Two suspects on foot, northbound.",
    }
    return json.dumps(incident).encode()


def _headers(integration_id: str, secret: str, body: bytes, t: int | None = None) -> dict[str, str]:
    t = int(time.time()) if t is None else t
    sig = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return {
        "X-Custody-Integration": integration_id,
        "X-Custody-Signature": f"t={t},v1={sig}",
        "Content-Type": "application/json",
    }


def _last_entry(api: TestClient) -> dict[str, object]:
    ledger: Ledger = api.app.state.ledger  # type: ignore[attr-defined]
    size = ledger.size()
    [(_, raw)] = ledger.entries(size - 1, size)
    entry: dict[str, object] = json.loads(raw)
    return entry


def test_signed_incident_opens_one_case_per_cad_number(api: TestClient) -> None:
    iid, secret = _integration(api)
    cad = f"CAD-{uuid.uuid4().hex[:8]}"
    body = _body(cad)
    signed = _headers(iid, secret, body)
    first = api.post("/incidents", content=body, headers=signed)
    assert first.status_code == 202, first.text
    assert first.json()["status"] == "draft" and first.json().get("alert_id") is None
    case_id = first.json()["case_id"]
    entry = _last_entry(api)
    assert entry["type"] == "incident_received" and entry["case_id"] == case_id
    assert entry["facts"] == {
        "integration": iid,
        "cad_number": cad,
        "outcome": "accepted: case opened (draft)",
    }
    assert secret not in json.dumps(entry)

    case = api.get(f"/cases/{case_id}", headers=staff_headers(api, "investigator"))
    assert case.status_code == 200, case.text
    assert case.json()["cad_number"] == cad
    assert case.json()["title"] == f"CAD {cad}: robbery"

    # The same CAD number again (freshly signed): the same case, no second one.
    again_body = _body(cad)
    again = api.post(
        "/incidents", content=again_body, headers=_headers(iid, secret, again_body, int(time.time()) + 1)
    )
    assert again.status_code == 202, again.text
    assert again.json()["case_id"] == case_id

    # Replaying the first request exactly: refused, and recorded as refused.
    replay = api.post("/incidents", content=body, headers=signed)
    assert replay.status_code == 401, replay.text
    assert replay.json()["error"]["code"] == "replayed_signature"
    refused = _last_entry(api)
    assert refused["type"] == "incident_received"
    assert str(refused["detail"]).startswith("refused (replayed_signature)")
    assert signed["X-Custody-Signature"].split("v1=")[1] not in json.dumps(refused)


def test_bad_stale_and_unknown_signatures_are_401(api: TestClient) -> None:
    iid, secret = _integration(api)
    body = _body(f"CAD-{uuid.uuid4().hex[:8]}")

    wrong = api.post("/incidents", content=body, headers=_headers(iid, "not-the-secret", body))
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "bad_signature"

    tampered = api.post("/incidents", content=body + b" ", headers=_headers(iid, secret, body))
    assert tampered.status_code == 401 and tampered.json()["error"]["code"] == "bad_signature"

    stale = api.post("/incidents", content=body, headers=_headers(iid, secret, body, int(time.time()) - 301))
    assert stale.status_code == 401 and stale.json()["error"]["code"] == "stale_signature"

    unknown = api.post("/incidents", content=body, headers=_headers(str(uuid.uuid4()), secret, body))
    assert unknown.status_code == 401 and unknown.json()["error"]["code"] == "unknown_integration"
    assert _last_entry(api)["type"] == "incident_received"


def test_send_policy_starts_the_alert_once(settings: Settings) -> None:
    from api.app import create_app

    send = settings.model_copy(
        update={"incident_policy": "send", "task_queue": f"intake-{uuid.uuid4().hex[:8]}"}
    )
    with TestClient(create_app(send)) as api:
        iid, secret = _integration(api)
        occurred = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
        body = _body(f"CAD-{uuid.uuid4().hex[:8]}", occurred.isoformat())
        resp = api.post("/incidents", content=body, headers=_headers(iid, secret, body))
        assert resp.status_code == 202, resp.text
        assert resp.json()["status"] == "sent" and resp.json()["alert_id"]
        case_id = resp.json()["case_id"]
        [alert] = api.get(f"/cases/{case_id}/alerts", headers=staff_headers(api, "investigator")).json()
        assert alert["id"] == resp.json()["alert_id"]
        assert (
            alert["radius_m"] == 150 and alert["created_by"] == iid and alert["created_by_name"] == "MPD CAD"
        )
        start, end = (datetime.fromisoformat(alert[k]) for k in ("window_start", "window_end"))
        assert (start, end) == (occurred - timedelta(seconds=900), occurred + timedelta(seconds=900))

        # The same CAD number again: the same case and alert, no second alert.
        again = api.post(
            "/incidents", content=body, headers=_headers(iid, secret, body, int(time.time()) + 1)
        )
        assert again.json() == resp.json()
        assert (
            len(api.get(f"/cases/{case_id}/alerts", headers=staff_headers(api, "investigator")).json()) == 1
        )


def test_cli_prints_id_and_secret_once(stack: Stack, tmp_path: Path) -> None:
    settings: Settings = stack.settings(database_url=migrated(f"sqlite:///{tmp_path / 'custody.db'}"))
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", "integrations", "create", "MPD CAD", "--agency", "MPD"],
        env=settings_env(settings),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    lines = dict(line.split(": ", 1) for line in done.stdout.strip().splitlines())
    uuid.UUID(lines["id"])
    assert len(lines["secret"]) == 64 and done.stdout.count(lines["secret"]) == 1
    assert lines["secret"] not in done.stderr
    assert "not shown again" in done.stderr
