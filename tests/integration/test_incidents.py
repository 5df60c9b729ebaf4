"""Incidents from a crime center's CAD system: signed requests open (or find) the agency's case for
the CAD number; bad, stale, replayed or unknown signatures are 401; every intake is in the ledger;
the CLI prints an integration's id and secret once."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import re
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from pypdf import PdfReader
from sqlmodel import col, select

from custody import localtime
from custody.db import create_db_engine, session_scope
from custody.ledger.store import Ledger
from custody.models import LedgerEntry
from custody.services.incidents import create_integration, disable_integration
from custody.settings import Settings
from tests.conftest import Stack, migrated
from tests.helpers import make_user, settings_env, staff_headers
from tests.integration.conftest import Site
from tests.web import bearer, console_session, local_minutes, spot

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

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "cli.main", "integrations", *args],
            env=settings_env(settings),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )

    listed = cli("list")
    assert listed.returncode == 0 and lines["id"] in listed.stdout and "active" in listed.stdout
    assert lines["secret"] not in listed.stdout + listed.stderr
    disabled = cli("disable", lines["id"])
    assert disabled.returncode == 0 and "disabled" in disabled.stdout, disabled.stderr
    twice = cli("disable", lines["id"])
    assert twice.returncode == 1 and "already disabled" in twice.stderr
    assert "disabled" in cli("list").stdout
    assert settings.database_url
    with session_scope(create_db_engine(settings.database_url)) as session:
        rows = session.exec(select(LedgerEntry.entry).order_by(col(LedgerEntry.idx))).all()
    audited = [json.loads(r) for r in rows if "integration_" in r]
    assert [(e["type"], e["component"], e["outcome"]) for e in audited] == [
        ("integration_created", "cli", "success"),
        ("integration_disabled", "cli", "success"),
    ]
    assert all(lines["secret"] not in r for r in rows)


def test_a_draft_is_confirmed_in_the_console_and_a_disabled_integration_is_refused(web: Site) -> None:
    """Policy draft: the case waits, marked on the case list, its alert form filled in from the
    incident (place, the incident radius, the window around its time) for an investigator to send.
    Disabling the integration (a leaked secret) refuses its next incident with `disabled`."""
    with session_scope(web.engine) as session:
        integration, secret = create_integration(session=session, name="RTCC feed", agency="MPD")
        iid = integration.id
    user = make_user(web.engine, "investigator")
    api = bearer(web.url, *user)
    lat, lon = spot()
    owner = api.post("/owners", json={"name": "Ada", "email": f"ada-{uuid.uuid4().hex[:8]}@example.org"})
    api.post(
        "/cameras",
        json={"owner_id": owner.json()["id"], "label": "Porch", "lat": lat, "lon": lon, "kind": "registered"},
    )
    cad = f"CAD-{uuid.uuid4().hex[:8]}"
    occurred = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
    incident = {
        "cad_number": cad,
        "type": "burglary",
        "lat": lat,
        "lon": lon,
        "occurred_at": occurred.isoformat(),
        "description": "Rear door forced.",
    }
    body = json.dumps(incident).encode()
    posted = httpx.post(f"{web.url}/incidents", content=body, headers=_headers(iid, secret, body))
    assert posted.status_code == 202 and posted.json()["status"] == "draft", posted.text
    case_id = posted.json()["case_id"]

    client, csrf = console_session(web.url, *user)

    def listed() -> str:  # the case's title cell on the case list
        listing = client.get("/console/cases").text
        cell = listing[listing.index(f"/console/cases/{case_id}") :]
        return cell[: cell.index("</td>")]

    assert "draft alert to confirm" in listed()
    page = client.get(f"/console/cases/{case_id}").text
    assert 'id="cad-draft"' in page and cad in page and "RTCC feed (incident feed)" in page
    # The incident's time is shown in the program's zone, named; never as UTC text in the description.
    assert localtime.when(occurred, web.settings.tz) in page and occurred.isoformat() not in page
    assert "Confirm the draft alert" in page
    form = {
        name: re.search(rf'id="{name}" name="{name}"[^>]* value="([^"]*)"', page).group(1)  # type: ignore[union-attr]
        for name in ("lat", "lon", "radius_m", "window_start", "window_end")
    }
    tz = web.settings.tz
    assert (float(form["lat"]), float(form["lon"])) == (round(lat, 6), round(lon, 6))
    assert form["radius_m"] == f"{web.settings.incident_radius_m:g}"
    assert form["window_start"] == local_minutes(occurred - timedelta(seconds=900), tz)
    assert form["window_end"] == local_minutes(occurred + timedelta(seconds=900), tz)
    sent = client.post(
        f"/console/cases/{case_id}/alerts",
        data={**form, "description": f"CAD {cad}: burglary", "csrf_token": csrf},
    )
    assert sent.status_code == 303 and "notice=alert-1" in sent.headers["location"], sent.text
    assert 'id="cad-draft"' not in client.get(f"/console/cases/{case_id}").text
    assert "draft alert to confirm" not in listed()
    [alert] = api.get(f"/cases/{case_id}/alerts").json()
    assert alert["radius_m"] == web.settings.incident_radius_m and alert["cameras_asked"] == 1

    prosecutor = bearer(web.url, *make_user(web.engine, "prosecutor"))
    assert prosecutor.get(f"/cases/{case_id}/custody-bundle.json").json()["case"]["cad_number"] == cad
    pdf = PdfReader(io.BytesIO(prosecutor.get(f"/cases/{case_id}/custody-report.pdf").content))
    assert f"CAD incident {cad}" in " ".join(pdf.pages[0].extract_text().split())

    with session_scope(web.engine) as session:
        disable_integration(session=session, integration_id=iid)
    again = json.dumps({**incident, "cad_number": f"{cad}-2"}).encode()
    refused = httpx.post(f"{web.url}/incidents", content=again, headers=_headers(iid, secret, again))
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "disabled", refused.text
