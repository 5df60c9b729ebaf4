"""Retention classes, legal hold and disposition through the real stack (API over HTTP, worker,
Temporal schedule, SeaweedFS object lock), on SQLite and PostgreSQL. A retention "day" is one second
here (CUSTODY_RETENTION_DAY_S=1), so a file's retention passes while the test runs; the store itself
refuses the early delete and the delete under legal hold. Also: declined and expired requests keep
no bytes, even after part of a file had arrived."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import re
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from minio import Minio
from minio.error import S3Error

from activities import disposition
from custody.db import engine_for
from custody.ledger.service import ledger_for
from custody.settings import Settings
from devstack.procs import free_port
from storage.evidence import PART_SIZE, open_multiparts
from tests.conftest import Stack
from tests.flow import link_in, live_server, messages_to, running_worker, video_bytes, wait_for
from tests.helpers import make_user
from tests.web import bearer, console_session, spot
from workflows.client import connect_temporal


@pytest.fixture(scope="module")
def ret_settings(stack: Stack, db_url: str) -> Settings:
    return stack.settings(
        database_url=db_url,
        task_queue=f"retention-{uuid.uuid4().hex[:8]}",
        consent_ttl_s=5,
        reminders_s=[3600],
        max_file_bytes=PART_SIZE + 4_000_000,
        retention_day_s=1,  # a retention "day" is one second
        evidence_retention_days=2,
        retention_classes={"homicide": 5},
        disposition_interval_s=3600,  # rounds are started by the test and by the admin's approval
    )


@pytest.fixture(scope="module")
def site(ret_settings: Settings) -> Iterator[str]:
    with running_worker(ret_settings), live_server(ret_settings, free_port()) as url:
        yield url


def _user(settings: Settings, role: str) -> tuple[str, str]:
    engine = engine_for(settings)
    try:
        return make_user(engine, role)
    finally:
        engine.dispose()


def _token(settings: Settings, email: str) -> str:
    mail = wait_for(f"mail to {email}", lambda: messages_to(settings.home / "mail", email), timeout=60)
    return link_in(mail[0]).rsplit("/consent/", 1)[1]


def _objects(s3: Minio, prefix: str) -> list[Any]:
    return list(s3.list_objects("evidence", prefix=prefix, recursive=True, include_version=True))


def _round(settings: Settings) -> dict[str, int]:
    """One disposition round by the worker (the workflow its schedule starts), awaited."""

    async def run() -> dict[str, int]:
        client = await connect_temporal(settings)
        await client.get_schedule_handle(disposition.schedule_id(settings)).describe()  # the worker made it
        result = await client.execute_workflow(
            disposition.WORKFLOW_NAME, id=f"test-round-{uuid.uuid4().hex[:8]}", task_queue=settings.task_queue
        )
        return dict(result)

    return asyncio.run(run())


def _types(settings: Settings, case_id: str) -> list[dict[str, Any]]:
    engine = engine_for(settings)
    try:
        return [json.loads(data) for _, data in ledger_for(settings, engine).entries_for(case_id=case_id)]
    finally:
        engine.dispose()


def test_retention_hold_and_disposition_through_the_store(
    site: str, ret_settings: Settings, stack: Stack
) -> None:
    s3 = stack.servers.s3_client()  # the store's root credentials: even they cannot delete early
    investigator = bearer(site, *_user(ret_settings, "investigator"))
    prosecutor = bearer(site, *_user(ret_settings, "prosecutor"))
    admin_name, admin_password = _user(ret_settings, "admin")
    owner = httpx.Client(base_url=site, timeout=60)

    lat, lon = spot()
    emails = {}
    cameras = {}
    for name, dlat in (("kept", 0.0), ("expires", 0.0003), ("declines", -0.0003)):
        emails[name] = f"owner-{uuid.uuid4().hex[:10]}@example.org"
        oid = investigator.post("/owners", json={"name": "Sam Owner", "email": emails[name]}).json()["id"]
        cam = investigator.post(
            "/cameras",
            json={
                "owner_id": oid,
                "label": f"{name} cam",
                "lat": lat + dlat,
                "lon": lon,
                "kind": "registered",
            },
        )
        assert cam.status_code == 201, cam.text
        cameras[cam.json()["id"]] = name
    case = investigator.post("/cases", json={"title": "Shooting on 5th", "category": "assault"})
    assert case.status_code == 201 and case.json()["category"] == "assault", case.text
    case_id = case.json()["id"]
    end = datetime.now(UTC).replace(microsecond=0)
    alert = investigator.post(
        f"/cases/{case_id}/alerts",
        json={"lat": lat, "lon": lon, "radius_m": 100, "description": "x",
              "window_start": end.replace(hour=0).isoformat(), "window_end": end.isoformat()},
    )  # fmt: skip
    assert alert.status_code == 202, alert.text
    reqs = {cameras[r["camera_id"]]: r["id"] for r in alert.json()["requests"]}
    tokens = {name: _token(ret_settings, emails[name]) for name in reqs}

    # Declined: nothing can be sent, nothing is stored.
    assert (
        owner.post(f"/consent/{tokens['declines']}/decision", json={"decision": "decline"}).status_code == 200
    )
    refused = owner.put(f"/consent/{tokens['declines']}/files/a.mp4", content=video_bytes(50_000))
    assert refused.status_code in (409, 410), refused.text

    # Expires while a file is half sent (one 16 MiB part already in the store's multipart upload).
    assert (
        owner.post(f"/consent/{tokens['expires']}/decision", json={"decision": "consent"}).status_code == 200
    )
    partial: dict[str, Any] = {}

    def half_then_rest() -> Iterator[bytes]:
        big = video_bytes(PART_SIZE + 1_000_000, seed=3)
        yield big[: PART_SIZE + 500_000]
        wait_for(
            "the request to expire",
            lambda: investigator.get(f"/requests/{reqs['expires']}").json()["status"] == "expired",
            timeout=30,
        )
        partial["multiparts"] = [
            m for m in open_multiparts(s3, bucket="evidence") if reqs["expires"] in m.key
        ]
        yield big[PART_SIZE + 500_000 :]

    def send_partial() -> None:
        partial["response"] = owner.put(
            f"/consent/{tokens['expires']}/files/big.mp4", content=half_then_rest()
        )

    sender = threading.Thread(target=send_partial)
    sender.start()

    # Kept: stored with its class's COMPLIANCE retention on the exact version.
    assert owner.post(f"/consent/{tokens['kept']}/decision", json={"decision": "consent"}).status_code == 200
    data = video_bytes(300_000, seed=11)
    put = owner.put(f"/consent/{tokens['kept']}/files/gate.mp4", content=data)
    assert put.status_code == 201, put.text
    evidence_id = put.json()["file_id"]
    (ev,) = [e for e in investigator.get(f"/cases/{case_id}/evidence").json() if e["id"] == evidence_id]
    assert ev["legal_hold"] is False and ev["retain_until"]
    (obj,) = _objects(s3, f"cases/{case_id}/requests/{reqs['kept']}/")
    stored = s3.get_object_retention("evidence", obj.object_name, version_id=obj.version_id)
    assert stored is not None and stored.mode == "COMPLIANCE"
    assert stored.retain_until_date == datetime.fromisoformat(ev["retain_until"])
    with pytest.raises(S3Error) as early:  # the store itself refuses, whoever asks
        s3.remove_object("evidence", obj.object_name, version_id=obj.version_id)
    assert early.value.code == "AccessDenied", early.value
    assert owner.post(f"/consent/{tokens['kept']}/complete").status_code == 202

    # A longer class extends the retention (the store's and the row's); a shorter one never shortens.
    patched = investigator.patch(f"/cases/{case_id}", json={"category": "Homicide"})
    assert patched.status_code == 200 and patched.json()["category"] == "homicide", patched.text
    extended = investigator.get(f"/evidence/{evidence_id}").json()["retain_until"]
    assert datetime.fromisoformat(extended) > datetime.fromisoformat(ev["retain_until"])
    again = s3.get_object_retention("evidence", obj.object_name, version_id=obj.version_id)
    assert again is not None and again.retain_until_date == datetime.fromisoformat(extended)
    console, csrf = console_session(site, admin_name, admin_password)  # the case page's form, as admin
    cleared = console.post(f"/console/cases/{case_id}/category", data={"csrf_token": csrf, "category": ""})
    assert cleared.status_code == 303, cleared.text
    assert investigator.get(f"/cases/{case_id}").json()["category"] is None
    assert investigator.get(f"/evidence/{evidence_id}").json()["retain_until"] == extended

    # Legal hold: prosecutor or admin only, with a reason; twice is a conflict.
    hold_url = f"/evidence/{evidence_id}/legal-hold"
    assert investigator.post(hold_url, json={"reason": "x"}).status_code == 403
    placed = prosecutor.post(hold_url, json={"reason": "preservation letter 2026-114"})
    assert placed.status_code == 200 and placed.json()["legal_hold"] is True, placed.text
    twice = prosecutor.post(hold_url, json={"reason": "again"})
    assert twice.status_code == 409 and "already" in twice.json()["error"]["message"]
    assert s3.is_object_legal_hold_enabled("evidence", obj.object_name, version_id=obj.version_id)
    assert investigator.get(f"/evidence/{evidence_id}").json()["legal_hold"] is True

    # The report shows each file's retention and hold.
    from pypdf import PdfReader

    report = prosecutor.get(f"/cases/{case_id}/custody-report.pdf")
    assert report.status_code == 200, report.text
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(report.content)).pages)
    assert "Retained until" in text and "COMPLIANCE" in text and "on: it cannot be deleted" in text
    bundle = prosecutor.get(f"/cases/{case_id}/custody-bundle.json").json()
    (item,) = [e for e in bundle["evidence"] if e["id"] == evidence_id]
    assert item["legal_hold"] is True and item["retain_until"]

    # The expired request kept no bytes: the half-sent file was refused and its multipart aborted.
    sender.join(40)
    assert partial["response"].status_code == 410, partial["response"].text
    assert len(partial["multiparts"]) == 1, "a part had arrived before the request expired"
    assert _objects(s3, f"cases/{case_id}/requests/{reqs['expires']}/") == []
    assert not [m for m in open_multiparts(s3, bucket="evidence") if reqs["expires"] in m.key]
    assert _objects(s3, f"cases/{case_id}/requests/{reqs['declines']}/") == []

    # Past retention but on hold: not proposed, and the store still refuses the delete.
    until = datetime.fromisoformat(extended)
    time.sleep(max(0.0, (until - datetime.now(UTC)).total_seconds()) + 0.5)
    assert _round(ret_settings)["marked"] == 0
    with pytest.raises(S3Error) as held:
        s3.remove_object("evidence", obj.object_name, version_id=obj.version_id)
    assert held.value.code == "AccessDenied", held.value

    # An admin releases it from the case page (the same rules as the API); a second release is refused.
    case_page = console.get(f"/console/cases/{case_id}")
    assert "legal hold</span>" in case_page.text and "Release hold" in case_page.text
    released = console.post(
        f"/console/evidence/{evidence_id}/legal-hold",
        data={"csrf_token": csrf, "place": "0", "reason": "case closed"},
    )
    assert released.status_code == 303, released.text
    none = prosecutor.post(f"/evidence/{evidence_id}/legal-hold/release", json={"reason": "again"})
    assert none.status_code == 409 and "No legal hold" in none.json()["error"]["message"]
    assert not s3.is_object_legal_hold_enabled("evidence", obj.object_name, version_id=obj.version_id)
    assert _round(ret_settings)["marked"] == 1

    # The admin approves in the console; the worker deletes the version; the row and the hash stay.
    listing = console.get("/console/admin/disposition")
    assert listing.status_code == 200 and "gate.mp4" in listing.text, listing.text
    assert re.search(rf'action="/console/admin/disposition/{evidence_id}/approve"', listing.text)
    forged = console.post(f"/console/admin/disposition/{evidence_id}/approve", data={"csrf_token": "x"})
    assert forged.status_code == 403
    ok = console.post(f"/console/admin/disposition/{evidence_id}/approve", data={"csrf_token": csrf})
    assert ok.status_code == 303, ok.text
    wait_for(
        "disposed",
        lambda: investigator.get(f"/evidence/{evidence_id}").json()["status"] == "disposed",
        timeout=30,
    )
    assert _objects(s3, f"cases/{case_id}/requests/{reqs['kept']}/") == []
    entries = _types(ret_settings, case_id)
    mine = [e for e in entries if e.get("evidence_id") == evidence_id]
    kinds = [e["type"] for e in mine]
    for kind in ("retention_set", "retention_extended", "legal_hold_placed", "legal_hold_released",
                 "evidence_disposed"):  # fmt: skip
        assert kind in kinds, kind
    disposed = next(e for e in mine if e["type"] == "evidence_disposed")
    assert disposed["sha256"] == hashlib.sha256(data).hexdigest()
    assert (
        next(e for e in mine if e["type"] == "legal_hold_placed")["detail"] == "preservation letter 2026-114"
    )
    assert next(e for e in mine if e["type"] == "retention_set")["facts"]["retain_until"]
    assert not [e for e in entries if e.get("request_id") in (reqs["expires"], reqs["declines"])
                and e["type"] == "file_received"]  # fmt: skip
