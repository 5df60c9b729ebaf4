"""The custody bundle: everything needed to check a case's custody record offline (docs/bundle.md).

Pure assembly from what the ledger and the database hold; no I/O of its own.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

from custody.ledger.store import Ledger, SignedCheckpoint
from custody.models import Case, Evidence
from custody.timeutil import rfc3339, utcnow

#: Format 2 (docs/bundle.md): the log binds each file's name, size, type and camera (file_received
#: facts) and each request's camera and window (request_created facts); evidence items state the
#: requested window, and their received/verified times are those the log recorded.
BUNDLE_FORMAT = "custody-bundle/2"


@dataclass(frozen=True)
class BundleFacts:
    case: Case
    evidence: list[Evidence]
    cameras: dict[str, dict[str, Any]]  # camera id -> {label, kind, clock_offset_s}
    generated_by: str
    requests: list[dict[str, Any]] = field(default_factory=list)  # {id, camera_id, status, owner}


def build_bundle(ledger: Ledger, facts: BundleFacts) -> tuple[dict[str, Any], SignedCheckpoint]:
    """Sign (or reuse) a checkpoint covering every entry of the case, then attach an inclusion proof
    under it to each entry."""
    checkpoint = ledger.sign_checkpoint() or ledger.latest_checkpoint()
    assert checkpoint is not None
    entries = [(i, data) for i, data in ledger.entries_for(case_id=facts.case.id) if i < checkpoint.tree_size]
    logged: dict[tuple[str, str], str] = {}  # (evidence id, event type) -> when the log recorded it
    asked: dict[str, dict[str, Any]] = {}  # request id -> the camera and window its request recorded
    copies: dict[str, dict[str, Any]] = {}  # evidence id -> its working_copy_created entry's facts
    for index, data in entries:
        entry = json.loads(data)
        if entry["type"] == "working_copy_created" and entry.get("evidence_id"):
            copies.setdefault(entry["evidence_id"], {**(entry.get("facts") or {}), "ledger_index": index})
        if entry.get("evidence_id") and entry["type"] in ("file_received", "file_verified"):
            logged.setdefault((entry["evidence_id"], entry["type"]), entry["at"])
        if entry["type"] == "request_created" and entry.get("facts") and entry.get("request_id"):
            asked.setdefault(entry["request_id"], entry["facts"])
    windows = {r["id"]: (r.get("window_start"), r.get("window_end")) for r in facts.requests}

    def item(index: int, data: bytes) -> dict[str, Any]:
        proof = ledger.inclusion_proof(index, checkpoint.tree_size)
        return {
            "index": index,
            "entry": data.decode(),
            "inclusion_proof": [base64.b64encode(h).decode() for h in proof],
        }

    items = [item(index, data) for index, data in entries]
    # Bases outside the case (an integrated camera's camera_approved entry has no case): carried
    # beside the case's entries with their own inclusion proofs, so verify can check each file's.
    in_case = {index for index, _ in entries}
    outside = sorted(
        {
            ev.basis_ledger_index
            for ev in facts.evidence
            if ev.basis_ledger_index is not None
            and ev.basis_ledger_index not in in_case
            and ev.basis_ledger_index < checkpoint.tree_size
        }
    )
    basis_items = []
    for index in outside:
        found = ledger.entry_at(index)
        if found is not None:
            basis_items.append(item(index, found))
    bundle = {
        "format": BUNDLE_FORMAT,
        "generated_at": rfc3339(utcnow()),
        "generated_by": facts.generated_by,
        "case": {
            "id": facts.case.id,
            "title": facts.case.title,
            "agency": facts.case.agency,
            "created_at": rfc3339(facts.case.created_at),
            # The crime center's incident number, when the case came from its feed (POST /incidents);
            # the case's `incident_received` entries bind it.
            "cad_number": facts.case.cad_number,
        },
        "requests": facts.requests,
        "evidence": [
            {
                "id": ev.id,
                "request_id": ev.request_id,
                "camera_id": ev.camera_id,
                # The label the camera had when it was asked, as logged: a camera renamed since
                # must not make an honest bundle fail.
                "camera_label": asked.get(ev.request_id, {}).get("camera_label")
                or facts.cameras.get(ev.camera_id, {}).get("label"),
                "camera_kind": facts.cameras.get(ev.camera_id, {}).get("kind"),
                # recorder clock minus true time as the owner registered it (None: unknown)
                "camera_clock_offset_s": facts.cameras.get(ev.camera_id, {}).get("clock_offset_s"),
                "filename": ev.filename,
                "content_type": ev.content_type,
                "size": ev.size,
                "sha256": ev.sha256,
                "status": ev.status,
                "window_start": asked.get(ev.request_id, {}).get("window_start")
                or windows.get(ev.request_id, (None, None))[0],
                "window_end": asked.get(ev.request_id, {}).get("window_end")
                or windows.get(ev.request_id, (None, None))[1],
                # As the log recorded them (file_received / file_verified), so verify can prove them.
                "received_at": logged.get((ev.id, "file_received"), rfc3339(ev.received_at)),
                "verified_at": logged.get((ev.id, "file_verified"))
                or (rfc3339(ev.verified_at) if ev.verified_at else None),
                **_working_copy(ev, copies.get(ev.id, {})),
                # The object version's COMPLIANCE retention and legal hold (retention_set /
                # retention_extended / legal_hold_* entries record each change).
                "retain_until": rfc3339(ev.retain_until) if ev.retain_until else None,
                "legal_hold": ev.legal_hold,
                # What allows custody to hold the file (custody/basis.py): its file_received entry
                # binds the index as facts.basis_index; the entry is among the bundle's entries.
                "basis": ev.basis,
            }
            for ev in facts.evidence
        ],
        "ledger": {
            "origin": ledger.origin,
            "public_key": ledger.verifier.encode(),
            "checkpoint": checkpoint.note,
            "tree_size": checkpoint.tree_size,
            "entries": items,
            "basis_entries": basis_items,
        },
    }
    return bundle, checkpoint


def _working_copy(ev: Evidence, logged: dict[str, Any]) -> dict[str, Any]:
    """The master's container facts (ffprobe) and its working copy: the file ffmpeg made for playing,
    with the ffmpeg version and arguments its `working_copy_created` entry (at `ledger_index`) binds.
    The evidence's `sha256` is always the master's: the owner's file, unchanged."""
    made = ev.working_copy_state == "made"
    return {
        "master": True,
        "duration_s": ev.duration_s,
        "video_codec": ev.video_codec,
        "audio_codec": ev.audio_codec,
        "recorded_at": rfc3339(ev.recorded_at) if ev.recorded_at else None,
        "working_copy": {
            "sha256": ev.working_copy_sha256,
            "size": ev.working_copy_size,
            "content_type": ev.working_copy_content_type,
            "ffmpeg_version": logged.get("ffmpeg_version"),
            "arguments": logged.get("arguments"),
            "ledger_index": logged.get("ledger_index"),
        }
        if made
        else None,
        "working_copy_state": ev.working_copy_state,
        "working_copy_detail": ev.working_copy_detail if ev.working_copy_state == "not_made" else "",
        "working_copy_ffmpeg_version": logged.get("ffmpeg_version"),
    }
