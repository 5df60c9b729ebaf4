"""Footage requests end to end through the real stack: API, worker, Temporal, SeaweedFS, SMTP, and
the database (SQLite and PostgreSQL). Durations are shrunk through settings."""

from __future__ import annotations

import hashlib
import http.server
import io
import itertools
import json
import re
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from api.app import create_app
from custody.settings import Settings
from devstack.procs import free_port
from tests.conftest import Stack
from tests.flow import link_in, messages_to, request_status, running_worker, video_bytes, wait_for
from tests.helpers import staff_headers, unique_email

_area = itertools.count()


@pytest.fixture(scope="module")
def flow_settings(stack: Stack, db_url: str) -> Settings:
    return stack.settings(
        database_url=db_url,
        task_queue=f"flow-{uuid.uuid4().hex[:8]}",
        consent_ttl_s=60,
        reminders_s=[3600],
        max_file_bytes=3_000_000,
        public_url="http://testserver",
    )


@pytest.fixture(scope="module")
def flow(flow_settings: Settings) -> Iterator[TestClient]:
    with running_worker(flow_settings), TestClient(create_app(flow_settings)) as client:
        yield client


@pytest.fixture(scope="module")
def camera_server() -> Iterator[str]:
    """An integrated camera's pull endpoint: serves the window's footage as an MP4."""
    payload = video_bytes(300_000, seed=7)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.startswith("/feed"):
                self.send_response(200)
                self.send_header("Content-Type", "video/mp4")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            else:
                self.send_response(404)
                self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _spot() -> tuple[float, float]:
    """A fresh spot for each test, far from the others' cameras."""
    n = next(_area)
    return 38.5 + 0.05 * (n % 10), -77.5 + 0.05 * (n // 10)


def _camera(
    api: TestClient,
    h: dict[str, str],
    lat: float,
    lon: float,
    kind: str = "registered",
    pull_url: str | None = None,
) -> tuple[str, str]:
    email = unique_email()
    owner = api.post("/owners", json={"name": "Pat Owner", "email": email}, headers=h).json()["id"]
    body: dict[str, Any] = {"owner_id": owner, "label": "Porch camera", "lat": lat, "lon": lon, "kind": kind}
    if pull_url:
        body["pull_url"] = pull_url
    resp = api.post("/cameras", json=body, headers=h)
    assert resp.status_code == 201, resp.text
    return resp.json()["id"], email


def _window(minutes: int = 30) -> dict[str, str]:
    end = datetime.now(UTC) - timedelta(minutes=5)
    return {"window_start": (end - timedelta(minutes=minutes)).isoformat(), "window_end": end.isoformat()}


def _alert(api: TestClient, h: dict[str, str], lat: float, lon: float, radius: float = 300) -> dict[str, Any]:
    case = api.post("/cases", json={"title": "Robbery at the corner store"}, headers=h)
    assert case.status_code == 201, case.text
    resp = api.post(
        f"/cases/{case.json()['id']}/alerts",
        json={"lat": lat, "lon": lon, "radius_m": radius, "description": "robbery", **_window()},
        headers=h,
    )
    assert resp.status_code == 202, resp.text
    return {"case_id": case.json()["id"], **resp.json()}


def _token_for(settings: Settings, email: str, nth: int = 0) -> str:
    msgs = wait_for(f"mail to {email}", lambda: messages_to(settings.home / "mail", email), timeout=60)
    return link_in(msgs[nth]).rsplit("/consent/", 1)[1]


def _notified(api: TestClient, settings: Settings) -> tuple[dict[str, str], dict[str, Any], str, str]:
    """One registered camera at a fresh spot, asked in a new case and notified: the investigator's
    headers, the alert, the request id and the owner's token from the real email."""
    h = staff_headers(api, "investigator")
    lat, lon = _spot()
    _, email = _camera(api, h, lat, lon)
    alert = _alert(api, h, lat, lon)
    req_id = alert["requests"][0]["id"]
    wait_for("notified", lambda: request_status(api, h, req_id) == "notified")
    return h, alert, req_id, _token_for(settings, email)


def _ledger_types(api: TestClient, case_id: str) -> list[str]:
    ledger = api.app.state.ledger  # type: ignore[attr-defined]
    return [json.loads(data)["type"] for _, data in ledger.entries_for(case_id=case_id)]


def test_consent_upload_verify_attach_and_integrated_pull(
    flow: TestClient, flow_settings: Settings, camera_server: str
) -> None:
    h = staff_headers(flow, "investigator")
    lat, lon = _spot()
    cam, email = _camera(flow, h, lat + 0.001, lon)
    integrated, _ = _camera(flow, h, lat - 0.001, lon, kind="integrated", pull_url=f"{camera_server}/feed")
    _far, far_email = _camera(flow, h, lat + 0.02, lon)
    alert = _alert(flow, h, lat, lon)
    by_camera = {r["camera_id"]: r for r in alert["requests"]}
    assert set(by_camera) == {cam, integrated}, "only the cameras in range are asked"
    req_id, pull_id = by_camera[cam]["id"], by_camera[integrated]["id"]

    wait_for("notified", lambda: request_status(flow, h, req_id) == "notified")
    token = _token_for(flow_settings, email)
    facts = flow.get(f"/consent/{token}", headers={"Accept": "application/json"}).json()
    assert facts["request_id"] == req_id and facts["status"] == "notified"
    assert "video/mp4" in facts["accepted_types"] and facts["max_file_bytes"] == flow_settings.max_file_bytes
    page = flow.get(f"/consent/{token}")
    assert page.status_code == 200 and "Porch camera" in page.text
    assert '<script src="/static/consent.js">' in page.text

    assert flow.post(f"/consent/{token}/decision", json={"decision": "consent"}).json() == {
        "status": "consented"
    }
    # The same answer again (a retry after a lost response, a double tap) has the same outcome; the
    # other answer is refused.
    again = flow.post(f"/consent/{token}/decision", json={"decision": "consent"})
    assert again.status_code == 200 and again.json() == {"status": "consented"}, again.text
    other = flow.post(f"/consent/{token}/decision", json={"decision": "decline"})
    assert other.status_code == 409 and "already answered" in other.json()["error"]["message"], other.text
    data = video_bytes(1_500_000)
    digest = hashlib.sha256(data).hexdigest()
    up = flow.put(
        f"/consent/{token}/files/front door 21-40.mp4",
        content=data,
        headers={"Content-Type": "video/mp4", "X-Content-SHA256": digest},
    )
    assert up.status_code == 201, up.text
    assert up.json()["sha256"] == digest and up.json()["size"] == len(data)
    assert flow.post(f"/consent/{token}/complete").status_code == 202

    wait_for("attached", lambda: request_status(flow, h, req_id) == "attached")
    wait_for("integrated attached", lambda: request_status(flow, h, pull_id) == "attached")
    detail = flow.get(f"/requests/{req_id}", headers=h).json()
    assert [x["status"] for x in detail["history"]] == [
        "requested",
        "notified",
        "consented",
        "uploaded",
        "verified",
        "attached",
    ]
    evidence = flow.get(f"/cases/{alert['case_id']}/evidence", headers=h).json()
    assert {e["request_id"] for e in evidence} == {req_id, pull_id}
    mine = next(e for e in evidence if e["request_id"] == req_id)
    assert (mine["sha256"], mine["size"], mine["status"]) == (digest, len(data), "attached")
    assert mine["verified_at"] and mine["content_type"] == "video/mp4"
    download = flow.get(f"/evidence/{mine['id']}/download", headers=h)
    assert download.status_code == 200 and download.content == data
    assert download.headers["X-Content-SHA256"] == digest

    types = _ledger_types(flow, alert["case_id"])
    for expected in (
        "request_created",
        "owner_notified",
        "consent_given",
        "file_received",
        "file_verified",
        "evidence_attached",
        "evidence_downloaded",
    ):
        assert expected in types, expected
    assert types.count("file_received") == 2 and types.count("evidence_attached") == 2
    assert messages_to(flow_settings.home / "mail", far_email) == [], "the camera out of range was not asked"
    assert len(messages_to(flow_settings.home / "mail", email)) == 1, "one notice, no duplicates"
    # The case's report holds every hash and every custody event (owner upload and integrated pull).
    from pypdf import PdfReader

    prosecutor = staff_headers(flow, "prosecutor")
    bundle = flow.get(f"/cases/{alert['case_id']}/custody-bundle.json", headers=prosecutor).json()
    report = flow.get(f"/cases/{alert['case_id']}/custody-report.pdf", headers=prosecutor)
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(report.content)).pages).replace("\n", "")
    for ev in evidence:
        assert ev["sha256"] in text, "every hash whole, on one line"
    for item in bundle["ledger"]["entries"]:  # each event with its ledger index (the proof table)
        words = json.loads(item["entry"])["type"].replace("_", " ")
        assert f"{item['index']}{words}" in text, (item["index"], words)
    # The request has ended: its link is closed.
    assert flow.get(f"/consent/{token}", headers={"Accept": "application/json"}).status_code == 410


def test_two_taps_on_consent_at_once(flow: TestClient, flow_settings: Settings) -> None:
    """Two consent answers in flight together (a double tap, a retry while the first is still being
    recorded): the workflow takes the first and answers both with its outcome."""
    _h, alert, _req_id, token = _notified(flow, flow_settings)
    answers: list[Any] = []

    def tap() -> None:
        r = flow.post(f"/consent/{token}/decision", json={"decision": "consent"})
        answers.append((r.status_code, r.json()))

    taps = [threading.Thread(target=tap) for _ in range(2)]
    for t in taps:
        t.start()
    for t in taps:
        t.join(60)
    assert answers == [(200, {"status": "consented"})] * 2, answers
    assert _ledger_types(flow, alert["case_id"]).count("consent_given") == 1


def test_decline_and_a_second_decision(flow: TestClient, flow_settings: Settings) -> None:
    h, alert, req_id, token = _notified(flow, flow_settings)
    bad = flow.post(f"/consent/{token}/decision", json={"decision": "maybe"})
    assert bad.status_code == 422
    assert flow.post(f"/consent/{token}/decision", json={"decision": "decline"}).json() == {
        "status": "declined"
    }
    again = flow.post(f"/consent/{token}/decision", json={"decision": "consent"})
    assert again.status_code == 410 and again.json()["error"]["code"] == "gone", again.text
    assert request_status(flow, h, req_id) == "declined"
    assert "consent_declined" in _ledger_types(flow, alert["case_id"])


def test_investigator_cancels(flow: TestClient, flow_settings: Settings) -> None:
    h, _alert, req_id, token = _notified(flow, flow_settings)
    resp = flow.post(f"/requests/{req_id}/cancel", headers=h)
    assert resp.status_code == 200 and resp.json()["status"] == "cancelled"
    assert flow.post(f"/requests/{req_id}/cancel", headers=h).status_code == 409
    assert flow.get(f"/consent/{token}", headers={"Accept": "application/json"}).status_code == 410
    other_agency = staff_headers(flow, "investigator", agency="MTPD")
    assert flow.get(f"/requests/{req_id}", headers=other_agency).status_code == 404


def test_bad_uploads_are_refused_and_store_nothing(flow: TestClient, flow_settings: Settings) -> None:
    h, _alert, req_id, token = _notified(flow, flow_settings)
    video = video_bytes(50_000)

    early = flow.put(f"/consent/{token}/files/a.mp4", content=video, headers={"Content-Type": "video/mp4"})
    assert early.status_code == 409, "no upload before consent"
    assert flow.post(f"/consent/{token}/decision", json={"decision": "consent"}).status_code == 200

    cases: list[tuple[str, bytes, dict[str, str], int, str]] = [
        ("empty.mp4", b"", {}, 400, "empty_file"),
        ("notes.mp4", b"just some text, not a video" * 40, {}, 415, "unsupported_media_type"),
        ("clip.mp4", video, {"Content-Type": "image/png"}, 415, "unsupported_media_type"),
        ("big.mp4", video_bytes(flow_settings.max_file_bytes + 1), {}, 413, "payload_too_large"),
        ("clip.mp4", video, {"X-Content-SHA256": "0" * 64}, 422, "sha256_mismatch"),
        ("clip.mp4", video, {"X-Content-SHA256": "xyz"}, 400, "invalid_sha256"),
        ("...", video, {}, 422, "invalid_filename"),
        (".hidden.mp4", video, {}, 422, "invalid_filename"),
        ("a" * 300 + ".mp4", video, {}, 422, "invalid_filename"),
        ("bad%09name.mp4", video, {}, 422, "invalid_filename"),
    ]
    for name, body, headers, status, code in cases:
        resp = flow.put(
            f"/consent/{token}/files/{name}", content=body, headers={"Content-Type": "video/mp4", **headers}
        )
        assert resp.status_code == status, (name, headers, resp.text)
        assert resp.json()["error"]["code"] == code, name
    traversal = flow.put(f"/consent/{token}/files/..%2F..%2Fetc%2Fpasswd", content=video)
    assert traversal.status_code in (404, 422)
    with flow.app.state.engine.connect() as conn:  # type: ignore[attr-defined]
        stored = conn.execute(
            sa.text("SELECT count(*) FROM evidence WHERE request_id = :r"), {"r": req_id}
        ).scalar()
    assert stored == 0, "a refused file left a record"
    assert flow.post(f"/consent/{token}/complete").status_code == 422, "nothing to complete yet"

    ok = flow.put(f"/consent/{token}/files/clip.mp4", content=video, headers={"Content-Type": "video/mp4"})
    assert ok.status_code == 201
    assert flow.post(f"/consent/{token}/complete").status_code == 202
    late = flow.put(f"/consent/{token}/files/late.mp4", content=video, headers={"Content-Type": "video/mp4"})
    assert late.status_code in (409, 410), "no upload after complete"
    wait_for("attached", lambda: request_status(flow, h, req_id) == "attached")

    assert flow.get("/consent/not-a-real-token", headers={"Accept": "application/json"}).status_code == 403
    forged = flow.post("/consent/" + "A" * 43 + "/decision", json={"decision": "consent"})
    assert forged.status_code == 403


def test_alert_scope_limits(flow: TestClient, flow_settings: Settings) -> None:
    h = staff_headers(flow, "investigator")
    case = flow.post("/cases", json={"title": "Scope"}, headers=h).json()["id"]
    now = datetime.now(UTC)
    good = {"lat": 38.9, "lon": -77.0, "radius_m": 100, "description": "x", **_window()}
    bad = [
        {**good, "radius_m": flow_settings.max_radius_m + 1},
        {**good, "radius_m": -1},
        {
            **good,
            "window_start": (now - timedelta(days=3)).isoformat(),
            "window_end": (now - timedelta(hours=1)).isoformat(),
        },
        {**good, "window_end": (now + timedelta(hours=1)).isoformat()},
        {**good, "window_start": good["window_end"], "window_end": good["window_start"]},
        {**good, "lat": 123},
    ]
    for body in bad:
        resp = flow.post(f"/cases/{case}/alerts", json=body, headers=h)
        assert resp.status_code == 422, (body, resp.text)
        assert resp.json()["error"]["message"]
    prosecutor = staff_headers(flow, "prosecutor")
    assert flow.post(f"/cases/{case}/alerts", json=good, headers=prosecutor).status_code == 403
    assert (
        flow.post(
            f"/cases/{case}/alerts", json=good, headers=staff_headers(flow, "investigator", "USPP")
        ).status_code
        == 404
    )


def test_reminders_then_expiry(flow: TestClient, flow_settings: Settings) -> None:
    """A separate API instance with a 6 s consent window and reminders at 2 s and 4 s."""
    short = flow_settings.model_copy(update={"consent_ttl_s": 6, "reminders_s": [2, 4]})
    with TestClient(create_app(short)) as api:
        h = staff_headers(api, "investigator")
        lat, lon = _spot()
        _, email = _camera(api, h, lat, lon)
        alert = _alert(api, h, lat, lon)
        req_id = alert["requests"][0]["id"]
        wait_for("expired", lambda: request_status(api, h, req_id) == "expired", timeout=60)
        history = api.get(f"/requests/{req_id}", headers=h).json()["history"]
        assert [x["status"] for x in history] == ["requested", "notified", "notified", "notified", "expired"]
        assert sum("reminder" in x["detail"] for x in history) == 2
        mails = messages_to(short.home / "mail", email)
        assert len(mails) == 3 and " ".join(mails[1]["Subject"].split()).startswith("Reminder")
        token = link_in(mails[0]).rsplit("/consent/", 1)[1]
        assert api.get(f"/consent/{token}", headers={"Accept": "application/json"}).status_code == 410
        types = _ledger_types(api, alert["case_id"])
        assert types.count("reminder_sent") == 2 and "request_expired" in types


def _verify_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli.main", "verify", *args], capture_output=True, text=True, timeout=120
    )


def test_custody_bundle_proves_the_file_offline(
    flow: TestClient, flow_settings: Settings, tmp_path: Path
) -> None:
    h, alert, req_id, token = _notified(flow, flow_settings)
    flow.post(f"/consent/{token}/decision", json={"decision": "consent"})
    data = video_bytes(700_000, seed=3)
    assert flow.put(f"/consent/{token}/files/clip.mp4", content=data).status_code == 201
    flow.post(f"/consent/{token}/complete")
    wait_for("attached", lambda: request_status(flow, h, req_id) == "attached")

    # The owner renames the camera afterwards: the bundle states the label the log recorded.
    cam_id = flow.get(f"/requests/{req_id}", headers=h).json()["camera_id"]
    renamed = flow.patch(f"/cameras/{cam_id}", json={"label": "Renamed porch"}, headers=h)
    assert renamed.status_code == 200, renamed.text
    prosecutor = staff_headers(flow, "prosecutor")
    resp = flow.get(f"/cases/{alert['case_id']}/custody-bundle.json", headers=prosecutor)
    assert resp.status_code == 200, resp.text
    bundle = resp.json()
    assert (
        bundle["format"] == "custody-bundle/2"
        and bundle["evidence"][0]["sha256"] == hashlib.sha256(data).hexdigest()
    )
    assert (
        flow.get(
            f"/cases/{alert['case_id']}/custody-bundle.json", headers=staff_headers(flow, "prosecutor", "FBI")
        ).status_code
        == 404
    )
    clip, bpath = tmp_path / "clip.mp4", tmp_path / "bundle.json"
    clip.write_bytes(data)
    bpath.write_text(json.dumps(bundle))
    key = bundle["ledger"]["public_key"]
    ok = _verify_cli(str(clip), "--bundle", str(bpath), "--public-key", key)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "PROVEN" in ok.stdout
    proven, stated = ok.stdout.split("stated by the bundle, not proven")
    ev0 = bundle["evidence"][0]
    for value in (
        "clip.mp4",
        "Porch camera",
        req_id,
        alert["case_id"],
        ev0["window_start"],
        ev0["received_at"],
    ):
        assert value in proven, (value, ok.stdout)
    assert "Robbery at the corner store" in stated and "Robbery at the corner store" not in proven

    def fails(step: int, file: Path, b: dict[str, Any], *extra: str) -> str:
        p = tmp_path / f"b{uuid.uuid4().hex[:6]}.json"
        p.write_text(json.dumps(b))
        out = _verify_cli(str(file), "--bundle", str(p), *extra)
        assert out.returncode == 1, out.stdout + out.stderr
        assert f"step {step}" in out.stdout, out.stdout
        return out.stdout

    # Every fact shown as proven is bound by the signed log: an edited one fails, naming the field.
    renamed = json.loads(json.dumps(bundle))
    renamed["evidence"][0]["filename"] = "front-door-2140.mp4"
    out = fails(5, clip, renamed, "--public-key", key)
    assert "filename is 'front-door-2140.mp4'" in out and "'clip.mp4'" in out, out
    from custody.ledger.bundle_verify import FactMismatch, verify_file

    edits: dict[str, Any] = {
        "size": ev0["size"] + 1,
        "content_type": "video/quicktime",
        "camera_id": str(uuid.uuid4()),
        "camera_label": "Back yard",
        "request_id": str(uuid.uuid4()),
        "window_start": "2026-01-01T00:00:00Z",
        "window_end": "2026-01-01T00:30:00Z",
        "received_at": "2026-01-01T00:00:00Z",
        "verified_at": "2026-01-01T00:00:00Z",
    }
    for key_name, value in edits.items():
        tampered = json.loads(json.dumps(bundle))
        tampered["evidence"][0][key_name] = value
        (tmp_path / "tampered.json").write_text(json.dumps(tampered))
        with pytest.raises(FactMismatch) as info:
            verify_file(clip, tmp_path / "tampered.json")
        assert info.value.field == key_name and info.value.stated == value, key_name
    moved = json.loads(json.dumps(bundle))
    moved["case"]["id"] = str(uuid.uuid4())
    fails(4, clip, moved)
    # What the log does not bind may be edited without failing, and is never shown as proven.
    retitled = json.loads(json.dumps(bundle))
    retitled["case"]["title"] = "Edited title"
    retitled["evidence"][0]["camera_clock_offset_s"] = 999
    (tmp_path / "retitled.json").write_text(json.dumps(retitled))
    out_ok = _verify_cli(str(clip), "--bundle", str(tmp_path / "retitled.json"), "--public-key", key)
    assert out_ok.returncode == 0, out_ok.stdout
    assert "Edited title" in out_ok.stdout.split("stated by the bundle, not proven")[1]
    # A bundle in the old format still verifies, saying that it proves less.
    old = json.loads(json.dumps(bundle))
    old["format"] = "custody-bundle/1"
    (tmp_path / "old.json").write_text(json.dumps(old))
    out_old = _verify_cli(str(clip), "--bundle", str(tmp_path / "old.json"), "--public-key", key)
    assert out_old.returncode == 0 and "older format" in out_old.stdout, out_old.stdout

    changed = tmp_path / "changed.mp4"
    changed.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    fails(2, changed, bundle)
    edited = json.loads(json.dumps(bundle))
    edited["ledger"]["entries"][0]["entry"] = edited["ledger"]["entries"][0]["entry"].replace("MPD", "FBI")
    fails(4, clip, edited)
    short = json.loads(json.dumps(bundle))
    victim = next(e for e in short["ledger"]["entries"] if e["inclusion_proof"])
    victim["inclusion_proof"].pop()
    fails(4, clip, short)
    import base64 as b64
    import os as _os

    from custody.ledger.note import Signer

    other = Signer.from_seed("custody.local/ledger", b64.b64encode(_os.urandom(32)).decode())
    fails(3, clip, bundle, "--public-key", other.verifier.encode())
    other_case = flow.post("/cases", json={"title": "Another case"}, headers=h).json()["id"]
    foreign = flow.get(f"/cases/{other_case}/custody-bundle.json", headers=prosecutor).json()
    fails(2, clip, foreign)
    assert "bundle_generated" in _ledger_types(flow, alert["case_id"])

    # A newer checkpoint with its consistency proof: the log only grew since the bundle.
    auditor = staff_headers(flow, "auditor")
    newer = flow.get("/ledger/checkpoint", headers=auditor).text
    first, second = bundle["ledger"]["tree_size"], int(newer.split("\n")[1])
    proof = flow.get(f"/ledger/proofs/consistency?first={first}&second={second}", headers=auditor).json()
    (tmp_path / "newer.txt").write_text(newer)
    (tmp_path / "proof.json").write_text(json.dumps(proof))
    grown = _verify_cli(
        str(clip),
        "--bundle",
        str(bpath),
        "--public-key",
        key,
        "--checkpoint",
        str(tmp_path / "newer.txt"),
        "--consistency-proof",
        str(tmp_path / "proof.json"),
    )
    assert grown.returncode == 0 and "7. the newer checkpoint" in grown.stdout, grown.stdout + grown.stderr
    proof["hashes"] = proof["hashes"][:-1] or ["AAAA"]
    (tmp_path / "bad-proof.json").write_text(json.dumps(proof))
    fails(
        7,
        clip,
        bundle,
        "--checkpoint",
        str(tmp_path / "newer.txt"),
        "--consistency-proof",
        str(tmp_path / "bad-proof.json"),
    )

    # The PDF states the bundle's facts: every hash and every custody event with its ledger index.
    pdf = flow.get(f"/cases/{alert['case_id']}/custody-report.pdf", headers=prosecutor)
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    (tmp_path / "report.pdf").write_bytes(pdf.content)
    from pypdf import PdfReader

    reader = PdfReader(tmp_path / "report.pdf")
    text = "\n".join(page.extract_text() for page in reader.pages).replace("\n", "")
    words = " ".join("\n".join(page.extract_text() for page in reader.pages).split())
    pages = len(reader.pages)
    assert f"page {pages} of {pages}" in text and alert["case_id"] in text
    for ev in bundle["evidence"]:
        assert ev["sha256"] in words, "every hash whole, on one line"
    # The cover's count is the number listed (the PDF's own bundle has a few more events than ours).
    counted = re.search(r"Custody events listed (\d+) \(ledger entries of this case", words)
    assert counted is not None and int(counted.group(1)) > len(bundle["ledger"]["entries"])
    assert f"All {counted.group(1)} ledger entries of this case" in words
    # Names, not ids: the investigator, the camera, the owner (one party), the prosecutor.
    assert "Investigator " in words and "(investigator, MPD)" in words
    # The owner is one party, named; the camera by the label it had when asked (renamed since).
    assert "Pat Owner (owner of “" in words and "Porch camera" in words
    assert "How to check this report" in words and "custody verify FILE --bundle" in words
    assert "penalty of perjury" in words and "28 U.S.C. § 1746" in words and "Assistant US Attorney" in words
    assert "self-signed" in words and "\\," not in words


def test_every_file_names_its_basis_and_verify_checks_it(
    flow: TestClient, flow_settings: Settings, camera_server: str, tmp_path: Path
) -> None:
    """Consent you can prove (issue 14, part 3): the owner's file rests on the request's
    `consent_given` entry (terms version, link id), the pulled file on the integrated camera's
    `camera_approved` entry; GET /evidence, the bundle, `custody verify` and the report say so."""
    from custody.ledger.bundle_verify import BasisMismatch, verify_file

    h = staff_headers(flow, "investigator")
    lat, lon = _spot()
    cam, email = _camera(flow, h, lat + 0.001, lon)
    integrated, _ = _camera(flow, h, lat - 0.001, lon, kind="integrated", pull_url=f"{camera_server}/feed")
    alert = _alert(flow, h, lat, lon)
    by_camera = {r["camera_id"]: r["id"] for r in alert["requests"]}
    req_id, pull_id = by_camera[cam], by_camera[integrated]
    wait_for("notified", lambda: request_status(flow, h, req_id) == "notified")
    token = _token_for(flow_settings, email)
    page = flow.get(f"/consent/{token}")
    assert f'<strong id="terms-version">{flow_settings.consent_terms_version}</strong>' in page.text
    flow.post(f"/consent/{token}/decision", json={"decision": "consent"})
    data = video_bytes(400_000, seed=11)
    assert flow.put(f"/consent/{token}/files/door.mp4", content=data).status_code == 201
    flow.post(f"/consent/{token}/complete")
    wait_for("attached", lambda: request_status(flow, h, req_id) == "attached")
    wait_for("pulled", lambda: request_status(flow, h, pull_id) == "attached")

    ledger = flow.app.state.ledger  # type: ignore[attr-defined]
    entries = {i: json.loads(d) for i, d in ledger.entries_for(case_id=alert["case_id"])}
    consent = next(i for i, e in entries.items() if e["type"] == "consent_given")
    assert entries[consent]["facts"] == {
        "terms_version": flow_settings.consent_terms_version,
        "link_id": entries[consent]["actor"],
    }
    assert token not in json.dumps(entries[consent])  # the link's id, never the token
    evidence = {e["request_id"]: e for e in flow.get(f"/cases/{alert['case_id']}/evidence", headers=h).json()}
    mine = flow.get(f"/evidence/{evidence[req_id]['id']}", headers=h).json()
    pulled = flow.get(f"/evidence/{evidence[pull_id]['id']}", headers=h).json()
    assert mine["basis"] == {"type": "consent", "ledger_index": consent}
    assert pulled["basis"]["type"] == "integration_agreement"
    agreement = json.loads(ledger.entry_at(pulled["basis"]["ledger_index"]))
    assert agreement["type"] == "camera_approved" and "case_id" not in agreement
    assert agreement["facts"] == {
        "kind": "integrated",
        "camera_id": integrated,
        "terms_version": flow_settings.consent_terms_version,
    }
    received = {e["evidence_id"]: e for e in entries.values() if e["type"] == "file_received"}
    assert received[mine["id"]]["facts"]["basis_index"] == consent
    assert received[pulled["id"]]["facts"]["basis_index"] == pulled["basis"]["ledger_index"]

    # The bundle carries both bases; verify proves each file's, and fails when it is left out or moved.
    prosecutor = staff_headers(flow, "prosecutor")
    bundle = flow.get(f"/cases/{alert['case_id']}/custody-bundle.json", headers=prosecutor).json()
    assert [b["index"] for b in bundle["ledger"]["basis_entries"]] == [pulled["basis"]["ledger_index"]]
    clip, pulled_clip, bpath = tmp_path / "door.mp4", tmp_path / "pulled.mp4", tmp_path / "bundle.json"
    clip.write_bytes(data)
    pulled_clip.write_bytes(flow.get(f"/evidence/{pulled['id']}/download", headers=h).content)
    bpath.write_text(json.dumps(bundle))
    terms = flow_settings.consent_terms_version
    ok = _verify_cli(str(clip), "--bundle", str(bpath), "--public-key", bundle["ledger"]["public_key"])
    assert ok.returncode == 0 and "6. the file's basis is in the signed log" in ok.stdout, (
        ok.stdout + ok.stderr
    )
    assert f"owner's consent, terms {terms}, ledger entry {consent}" in ok.stdout
    report = verify_file(pulled_clip, bpath)
    assert dict(report.proven)["basis"].startswith(f"owner's integration agreement, terms {terms}")

    def tampered(change: Any) -> Path:
        copy = json.loads(json.dumps(bundle))
        change(copy)
        path = tmp_path / f"t{uuid.uuid4().hex[:6]}.json"
        path.write_text(json.dumps(copy))
        return path

    no_consent = tampered(
        lambda b: b["ledger"].update(entries=[x for x in b["ledger"]["entries"] if x["index"] != consent])
    )
    out = _verify_cli(str(clip), "--bundle", str(no_consent))
    assert out.returncode == 1 and "step 6" in out.stdout and "basis_index" in out.stdout, out.stdout
    with pytest.raises(BasisMismatch) as info:
        verify_file(pulled_clip, tampered(lambda b: b["ledger"].update(basis_entries=[])))
    assert info.value.field == "basis_index"
    moved = tampered(
        lambda b: [e.update(basis={"type": "consent", "ledger_index": 0}) for e in b["evidence"]]
    )
    with pytest.raises(BasisMismatch) as info:
        verify_file(clip, moved)
    assert info.value.field == "basis.ledger_index"
    edited = tampered(
        lambda b: b["ledger"]["basis_entries"][0].update(
            entry=b["ledger"]["basis_entries"][0]["entry"].replace(terms, "1999-01")
        )
    )
    with pytest.raises(BasisMismatch) as info:  # an edited agreement is no longer in the signed log
        verify_file(pulled_clip, edited)
    assert info.value.field == "basis_entries"

    from pypdf import PdfReader

    pdf = flow.get(f"/cases/{alert['case_id']}/custody-report.pdf", headers=prosecutor)
    assert pdf.status_code == 200, pdf.text
    words = " ".join("\n".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.content)).pages).split())
    assert f"Owner's consent, terms {terms}, ledger entry {consent}" in words, words
    assert f"Owner's integration agreement, terms {terms}" in words
