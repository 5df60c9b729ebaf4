"""The native master and its working copy, end to end: real videos made with ffmpeg's lavfi sources go
through the real consent flow (API, worker, Temporal, SeaweedFS, SMTP, SQLite and PostgreSQL); the
worker makes H.264/AAC MP4 copies with Debian's ffmpeg; the API serves them with Range; the console
plays them; a corrupt file stays attached as the master with its copy marked not made."""

from __future__ import annotations

import hashlib
import io
import json
import re
import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from activities.workcopy import WorkingCopiesInput, WorkingCopyActivities
from api.app import create_app
from custody.db import engine_for, session_scope
from custody.models import Camera
from custody.settings import Settings
from custody.workcopy import working_key
from storage.s3 import make_client
from tests.conftest import Stack
from tests.flow import link_in, messages_to, request_status, running_worker, video_bytes, wait_for
from tests.helpers import make_user, staff_headers, unique_email


@pytest.fixture(scope="module")
def wc_settings(stack: Stack, db_url: str) -> Settings:
    return stack.settings(
        database_url=db_url,
        task_queue=f"workcopy-{uuid.uuid4().hex[:8]}",
        consent_ttl_s=120,
        reminders_s=[3600],
        max_file_bytes=3_000_000,
        public_url="http://testserver",
    )


@pytest.fixture(scope="module")
def wc(wc_settings: Settings) -> Iterator[TestClient]:
    with running_worker(wc_settings), TestClient(create_app(wc_settings)) as client:
        yield client


def lavfi(path: Path, *args: str) -> bytes:
    """A 2 s, 160x120 test clip made by ffmpeg from its built-in sources."""
    video = ["-f", "lavfi", "-i", "testsrc=size=160x120:rate=10:duration=2"]
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", *video, *args, str(path)], check=True, timeout=30
    )
    return path.read_bytes()


def _probe(data: bytes, tmp: Path) -> dict[str, Any]:
    f = tmp / f"probe-{uuid.uuid4().hex[:6]}.mp4"
    f.write_bytes(data)
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-print_format", "json", "-show_streams", str(f)],
        capture_output=True,
        check=True,
    )
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def test_masters_stay_working_copies_play_and_times_are_checked(
    wc: TestClient, wc_settings: Settings, tmp_path: Path
) -> None:
    h = staff_headers(wc, "investigator")
    lat, lon = 41.2 + (uuid.uuid4().int % 1000) / 1e4, -71.3
    email = unique_email()
    owner = wc.post("/owners", json={"name": "Robin Owner", "email": email}, headers=h).json()["id"]
    cam = wc.post(
        "/cameras",
        json={"owner_id": owner, "label": "Shop door", "lat": lat, "lon": lon, "kind": "registered"},
        headers=h,
    ).json()["id"]
    offset = 3600  # the recorder's clock runs an hour fast (the owner's statement)
    with session_scope(engine_for(wc_settings)) as session:
        camera = session.get(Camera, cam)
        assert camera is not None
        camera.clock_offset_s = offset
        session.add(camera)
    case = wc.post("/cases", json={"title": "Break-in"}, headers=h).json()["id"]
    end = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    start = end - timedelta(minutes=30)
    alert = wc.post(
        f"/cases/{case}/alerts",
        json={
            "lat": lat,
            "lon": lon,
            "radius_m": 50,
            "description": "x",
            "window_start": start.isoformat(),
            "window_end": end.isoformat(),
        },
        headers=h,
    )
    assert alert.status_code == 202, alert.text
    (req,) = alert.json()["requests"]
    stamp = "%Y-%m-%dT%H:%M:%SZ"
    in_window = (start + timedelta(minutes=10, seconds=offset)).strftime(stamp)  # recorder's clock
    files = {
        # MP4 with sound (MPEG-4 part 2 video, AAC): transcoded to H.264, sound kept.
        "door.mp4": lavfi(
            tmp_path / "a.mp4",
            *("-f", "lavfi", "-i", "sine=duration=2", "-c:v", "mpeg4", "-c:a", "aac", "-shortest"),
            *("-metadata", f"creation_time={in_window}"),
        ),
        # QuickTime, no sound, stated time two days before the window: flagged.
        "yard.mov": lavfi(
            tmp_path / "b.mov",
            *("-c:v", "mjpeg", "-metadata", f"creation_time={(start - timedelta(days=2)).strftime(stamp)}"),
        ),
        "hall.avi": lavfi(tmp_path / "c.avi", "-c:v", "mjpeg"),  # AVI, no stated time
        "broken.mp4": video_bytes(60_000, seed=3),  # sniffs as MP4, ffmpeg cannot read it
    }
    types = {"mp4": "video/mp4", "mov": "video/quicktime", "avi": "video/x-msvideo"}

    wait_for("notified", lambda: request_status(wc, h, req["id"]) == "notified")
    msgs = wait_for("the notice", lambda: messages_to(wc_settings.home / "mail", email))
    token = link_in(msgs[0]).rsplit("/consent/", 1)[1]
    assert wc.post(f"/consent/{token}/decision", json={"decision": "consent"}).status_code == 200
    for name, data in files.items():
        up = wc.put(
            f"/consent/{token}/files/{name}",
            content=data,
            headers={"Content-Type": types[name.rsplit(".", 1)[1]]},
        )
        assert up.status_code == 201, (name, up.text)  # custody/media.py lets each through
    assert wc.post(f"/consent/{token}/complete").status_code == 202
    wait_for("attached", lambda: request_status(wc, h, req["id"]) == "attached")

    listed = {e["filename"]: e for e in wc.get(f"/cases/{case}/evidence", headers=h).json()}
    assert set(listed) == set(files)

    def detail(name: str) -> dict[str, Any]:
        resp = wc.get(f"/evidence/{listed[name]['id']}", headers=h)
        assert resp.status_code == 200, resp.text
        return resp.json()  # type: ignore[no-any-return]

    wait_for(
        "working copies",
        lambda: all(detail(n)["working_copy_state"] is not None for n in files),
        timeout=60,
    )
    got = {n: detail(n) for n in files}
    s3 = make_client(wc_settings)
    for name in ("door.mp4", "yard.mov", "hall.avi"):
        ev = got[name]
        assert ev["status"] == "attached" and ev["working_copy_state"] == "made", ev
        assert ev["sha256"] == hashlib.sha256(files[name]).hexdigest(), "the master is the owner's file"
        copy = ev["working_copy"]
        assert copy["content_type"] == "video/mp4" and copy["sha256"] != ev["sha256"]
        key = working_key(f"cases/{case}/requests/{req['id']}/{ev['id']}")
        stored = s3.get_object(wc_settings.s3_bucket, key)
        data = stored.read()
        stored.close()
        stored.release_conn()
        assert hashlib.sha256(data).hexdigest() == copy["sha256"] and len(data) == copy["size"]
        streams = {s["codec_type"]: s["codec_name"] for s in _probe(data, tmp_path)["streams"]}
        assert streams.get("video") == "h264"
        assert streams.get("audio") == ("aac" if name == "door.mp4" else None)
        assert 1.5 <= ev["duration_s"] <= 2.5
        master = wc.get(f"/evidence/{ev['id']}/download", headers=h)  # unchanged beside its copy
        assert master.status_code == 200 and master.content == files[name], name
    assert (got["door.mp4"]["video_codec"], got["door.mp4"]["audio_codec"]) == ("mpeg4", "aac")
    assert (got["yard.mov"]["video_codec"], got["yard.mov"]["audio_codec"]) == ("mjpeg", None)
    # The stated times, after the camera's clock offset: inside the window, no flag; two days before: flag.
    assert got["door.mp4"]["recorded_at"].startswith(in_window[:16]) and got["door.mp4"]["time_flag"] is None
    flag = got["yard.mov"]["time_flag"]
    assert flag and "2 d" in flag and "before the requested window" in flag and "+3600 s" in flag
    assert got["hall.avi"]["recorded_at"] is None and got["hall.avi"]["time_flag"] is None
    broken = got["broken.mp4"]
    assert broken["status"] == "attached", "a file ffmpeg cannot read stays attached as the master"
    assert broken["working_copy"] is None and broken["working_copy_state"] == "not_made"
    assert broken["working_copy_detail"].startswith("not made: ffprobe could not read the file")

    # The working copy plays with Range; only a playback's first request is a custody event.
    door = listed["door.mp4"]["id"]
    whole = wc.get(f"/evidence/{door}/working-copy", headers=h)
    assert whole.status_code == 200 and whole.headers["accept-ranges"] == "bytes"
    assert hashlib.sha256(whole.content).hexdigest() == got["door.mp4"]["working_copy"]["sha256"]
    first = wc.get(f"/evidence/{door}/working-copy", headers={**h, "Range": "bytes=0-99"})
    assert first.status_code == 206 and first.content == whole.content[:100]
    assert first.headers["content-range"] == f"bytes 0-99/{len(whole.content)}"
    rest = wc.get(f"/evidence/{door}/working-copy", headers={**h, "Range": "bytes=100-"})
    assert rest.status_code == 206 and rest.content == whole.content[100:]
    assert (
        wc.get(f"/evidence/{door}/working-copy", headers={**h, "Range": "bytes=-10"}).content
        == (whole.content[-10:])
    )
    past = wc.get(f"/evidence/{door}/working-copy", headers={**h, "Range": f"bytes={len(whole.content)}-"})
    assert past.status_code == 416 and past.json()["error"]["code"] == "range_not_satisfiable"
    none = wc.get(f"/evidence/{listed['broken.mp4']['id']}/working-copy", headers=h)
    assert none.status_code == 409 and "download the master" in none.json()["error"]["message"]

    ledger = wc.app.state.ledger  # type: ignore[attr-defined]
    entries = [json.loads(d) for _, d in ledger.entries_for(case_id=case)]
    # Run again (a retried activity, a replayed workflow): nothing is made or recorded twice.
    again = WorkingCopyActivities(wc_settings, wc.app.state.engine, ledger, s3)  # type: ignore[attr-defined]
    assert again.make_working_copies(WorkingCopiesInput(req["id"])) == 3
    assert len(ledger.entries_for(case_id=case)) == len(entries)
    assert detail("door.mp4")["working_copy"] == got["door.mp4"]["working_copy"]
    entries = [json.loads(d) for _, d in ledger.entries_for(case_id=case)]
    played = [e for e in entries if e["type"] == "evidence_viewed" and e["detail"] == "working copy played"]
    assert len(played) == 2, "the plain GET and the range from byte 0; not the later pieces"
    # (detail() above recorded "record viewed" entries, not plays)
    created = {e["evidence_id"]: e for e in entries if e["type"] == "working_copy_created"}
    assert len(created) == 4, "one entry per file, made or not"
    door_entry = created[door]
    assert door_entry["sha256"] == got["door.mp4"]["working_copy"]["sha256"]
    assert door_entry["facts"]["master_sha256"] == got["door.mp4"]["sha256"]
    assert door_entry["facts"]["ffmpeg_version"].startswith("ffmpeg version ")
    assert "-c:v libx264 -preset veryfast" in door_entry["facts"]["arguments"]
    assert "-c:a aac" in door_entry["facts"]["arguments"]
    assert "-an" in created[listed["yard.mov"]["id"]]["facts"]["arguments"]
    broken_entry = created[listed["broken.mp4"]["id"]]
    assert broken_entry["detail"].startswith("not made: ") and "sha256" not in broken_entry

    # The console plays the copy beside the master's download, and shows the time flag.
    user, password = make_user(wc.app.state.engine, "investigator")  # type: ignore[attr-defined]
    form = wc.get("/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert csrf
    signed = wc.post(
        "/login",
        data={"username": user, "password": password, "csrf_token": csrf.group(1), "next": ""},
        follow_redirects=False,
    )
    assert signed.status_code == 303, signed.text
    page = wc.get(f"/console/cases/{case}")
    assert page.status_code == 200
    player = f'<video controls preload="none" playsinline src="/console/evidence/{door}/working-copy"'
    assert player in page.text
    assert re.search(r"master \(the owner(&#39;|&#x27;|')s file, unchanged\)", page.text)
    assert "Time check:" in page.text and "before the requested window" in page.text
    assert "No working copy: ffprobe could not read the file" in page.text
    played_page = wc.get(f"/console/evidence/{door}/working-copy", headers={"Range": "bytes=0-1"})
    assert played_page.status_code == 206 and played_page.content == whole.content[:2]

    # The report and the bundle say which file is the master, and name the copy and its ffmpeg.
    from pypdf import PdfReader

    prosecutor = staff_headers(wc, "prosecutor")
    bundle = wc.get(f"/cases/{case}/custody-bundle.json", headers=prosecutor).json()
    b_door = next(e for e in bundle["evidence"] if e["id"] == door)
    assert b_door["working_copy"]["sha256"] == got["door.mp4"]["working_copy"]["sha256"]
    assert b_door["working_copy"]["ffmpeg_version"] == door_entry["facts"]["ffmpeg_version"]
    assert b_door["video_codec"] == "mpeg4" and b_door["master"] is True
    report = wc.get(f"/cases/{case}/custody-report.pdf", headers=prosecutor)
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(report.content)).pages).replace("\n", "")
    assert got["door.mp4"]["working_copy"]["sha256"] in text
    assert "SHA-256 (master)" in text and "Working copy" in text and "not made:" in text
    assert "made from the master by ffmpeg version" in text, text[text.find("Working copy") :][:600]
