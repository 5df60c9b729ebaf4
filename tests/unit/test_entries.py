"""Ledger entry versions, and the purity of the offline verifier."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from custody.ledger.entries import (
    CustodyEvent,
    EventType,
    canonical,
    entry_object,
    file_facts,
    request_facts,
)

AT = datetime(2026, 11, 28, 2, 25, 13, tzinfo=UTC)


def test_an_entry_without_facts_keeps_the_version_1_bytes() -> None:
    event = CustodyEvent(EventType.consent_given, actor="t1", agency="MPD", case_id="c", request_id="r")
    data = canonical(entry_object(event, at=AT, prev="0" * 64))
    assert data == (
        b'{"actor":"t1","agency":"MPD","at":"2026-11-28T02:25:13Z","case_id":"c","prev":"'
        + b"0" * 64
        + b'","request_id":"r","type":"consent_given","v":1}'
    )


def test_facts_make_a_version_2_entry_with_times_in_utc() -> None:
    eastern = datetime(2026, 11, 27, 21, 25, tzinfo=ZoneInfo("America/New_York"))
    asked = CustodyEvent(
        EventType.request_created,
        actor="u",
        case_id="c",
        request_id="r",
        facts=request_facts(
            camera_id="cam",
            camera_label="Front door",
            camera_kind="registered",
            window_start=eastern,
            window_end=eastern + timedelta(minutes=30),
        ),
    )
    obj = json.loads(canonical(entry_object(asked, at=AT, prev="0" * 64)))
    assert obj["v"] == 2 and obj["facts"] == {
        "camera_id": "cam",
        "camera_label": "Front door",
        "camera_kind": "registered",
        "window_start": "2026-11-28T02:25:00Z",
        "window_end": "2026-11-28T02:55:00Z",
    }
    received = CustodyEvent(
        EventType.file_received,
        actor="t",
        facts=file_facts(filename="front door.mp4", size=12, content_type="video/mp4", camera_id="cam"),
    )
    got = json.loads(canonical(entry_object(received, at=AT, prev="0" * 64)))
    assert got["v"] == 2 and got["facts"]["filename"] == "front door.mp4" and got["facts"]["size"] == 12


def test_the_offline_verifier_loads_no_database_web_or_workflow_code() -> None:
    code = (
        "import sys, custody.ledger.bundle_verify, custody.ledger.verify\n"
        "bad = sorted({m.split('.')[0] for m in sys.modules} & "
        "{'sqlalchemy', 'sqlmodel', 'api', 'workflows', 'activities', 'temporalio', 'fastapi'})\n"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", out.stdout
