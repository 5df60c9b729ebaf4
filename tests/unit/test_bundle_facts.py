"""Step 5 of `custody verify` as a pure function: a bundle's stated facts against the entries that
bind them (custody/ledger/bundle_verify.check_facts)."""

from __future__ import annotations

from typing import Any

import pytest

from custody.ledger.bundle_verify import FactMismatch, check_facts

EVIDENCE: dict[str, Any] = {
    "id": "ev-1",
    "request_id": "rq-1",
    "camera_id": "cam-1",
    "camera_label": "Front door",
    "filename": "front-door.mp4",
    "size": 1234,
    "content_type": "video/mp4",
    "window_start": "2026-11-28T02:25:00Z",
    "window_end": "2026-11-28T02:55:00Z",
    "received_at": "2026-11-28T03:00:00.5Z",
    "verified_at": "2026-11-28T03:00:02Z",
}
CREATED = {
    "type": "request_created",
    "request_id": "rq-1",
    "at": "2026-11-28T02:59:00Z",
    "facts": {
        "camera_id": "cam-1",
        "camera_label": "Front door",
        "camera_kind": "registered",
        "window_start": "2026-11-28T02:25:00Z",
        "window_end": "2026-11-28T02:55:00Z",
    },
}
RECEIVED = {
    "type": "file_received",
    "request_id": "rq-1",
    "evidence_id": "ev-1",
    "at": "2026-11-28T03:00:00.5Z",
    "facts": {"filename": "front-door.mp4", "size": 1234, "content_type": "video/mp4", "camera_id": "cam-1"},
}
VERIFIED = {
    "type": "file_verified",
    "request_id": "rq-1",
    "evidence_id": "ev-1",
    "at": "2026-11-28T03:00:02Z",
}


def test_every_stated_fact_bound_by_the_log_is_proven() -> None:
    proven, unbound = check_facts(EVIDENCE, [(1, CREATED), (2, RECEIVED), (3, VERIFIED)])
    assert unbound == []
    shown = dict(proven)
    assert shown["file name"] == "front-door.mp4" and shown["camera label"] == "Front door"
    assert shown["requested window from (UTC)"] == "2026-11-28T02:25:00Z"
    assert shown["verified (UTC)"] == "2026-11-28T03:00:02Z"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("filename", "other.mp4"),
        ("size", 1),
        ("camera_label", "Back yard"),
        ("camera_id", "cam-2"),
        ("request_id", "rq-2"),
        ("window_end", "2026-11-28T03:55:00Z"),
        ("received_at", "2026-11-28T03:00:00Z"),
    ],
)
def test_an_edited_fact_fails_naming_it(field: str, value: object) -> None:
    with pytest.raises(FactMismatch) as info:
        check_facts({**EVIDENCE, field: value}, [(1, CREATED), (2, RECEIVED), (3, VERIFIED)])
    assert info.value.field == field and info.value.stated == value and info.value.step == 5


def test_old_entries_without_facts_leave_names_unproven() -> None:
    old_created = {k: v for k, v in CREATED.items() if k != "facts"}
    old_received = {k: v for k, v in RECEIVED.items() if k != "facts"}
    proven, unbound = check_facts(EVIDENCE, [(1, old_created), (2, old_received), (3, VERIFIED)])
    assert {"filename", "size", "camera_label", "window_start", "window_end"} <= set(unbound)
    assert "file name" not in dict(proven) and dict(proven)["request"] == "rq-1"
