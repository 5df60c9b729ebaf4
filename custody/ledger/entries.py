"""Custody events as ledger entries: JSON objects canonicalised with RFC 8785 (JCS) before hashing.

Why RFC 8785: the bytes that are hashed must be reproducible by anyone from the object alone, in any
language; JCS fixes key order, number form and string escaping. The `rfc8785` package does it.

Every entry carries `prev`, the leaf hash of the entry before it. The Merkle root under the signed
checkpoint is what proves integrity; `prev` lets a verifier name the *first* index that was changed,
removed, inserted or moved, instead of only saying that the root differs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import rfc8785

ENTRY_VERSION = 1
#: Entries that carry `facts` (what a custody bundle's reader is told about a file or a request, bound
#: by the log so `custody verify` can prove it) are version 2; entries without facts stay version 1.
FACTS_VERSION = 2
GENESIS_PREV = "0" * 64


class EventType(StrEnum):
    request_created = "request_created"
    owner_notified = "owner_notified"
    reminder_sent = "reminder_sent"
    consent_given = "consent_given"
    consent_declined = "consent_declined"
    request_expired = "request_expired"
    request_cancelled = "request_cancelled"
    request_failed = "request_failed"
    file_received = "file_received"
    file_verified = "file_verified"
    file_rejected = "file_rejected"
    evidence_attached = "evidence_attached"
    evidence_viewed = "evidence_viewed"
    evidence_downloaded = "evidence_downloaded"
    report_generated = "report_generated"
    bundle_generated = "bundle_generated"
    case_shared = "case_shared"
    case_viewed = "case_viewed"  # through a share: another agency read the case
    share_revoked = "share_revoked"
    checkpoint_signed = "checkpoint_signed"
    ledger_key_changed = "ledger_key_changed"  # a new checkpoint signing key took over (key rotation)
    incident_received = "incident_received"  # POST /incidents, accepted or refused (facts say which)
    working_copy_created = "working_copy_created"  # made (sha256 = the copy's) or not made (detail: why)
    retention_set = "retention_set"  # COMPLIANCE retain-until set on a stored object version (facts)
    retention_extended = "retention_extended"  # the case's category moved to a longer class
    legal_hold_placed = "legal_hold_placed"  # S3 legal hold on the version; the reason in detail
    legal_hold_released = "legal_hold_released"
    evidence_disposed = "evidence_disposed"  # the version deleted after retention; the hash stays here
    # The audit trail (CJIS Security Policy 5.4.1.1): every one carries `component` and `outcome`.
    sign_in = "sign_in"  # a staff sign-in attempt; detail says success or failure
    sign_out = "sign_out"
    token_issued = "token_issued"  # noqa: S105  (an API token was handed out: its jti, never the token)
    password_changed = "password_changed"  # noqa: S105
    user_created = "user_created"
    user_disabled = "user_disabled"  # outcome success; detail says "disabled" or "enabled again"
    role_changed = "role_changed"
    agency_added = "agency_added"
    camera_approved = "camera_approved"  # an integrated camera's agreement approved (facts: the basis)
    ledger_exported = "ledger_exported"
    integration_created = "integration_created"  # a CAD/RTCC system may post incidents (never its secret)
    integration_disabled = "integration_disabled"  # its incidents are refused from now on
    ledger_queried = "ledger_queried"  # one entry per query of the ledger, never one per entry read


class Component(StrEnum):
    """Which part of custody saw the event (the audit record's "component")."""

    api = "api"
    console = "console"
    cli = "cli"
    worker = "worker"


class Outcome(StrEnum):
    success = "success"
    failure = "failure"


@dataclass(frozen=True, slots=True)
class CustodyEvent:
    """What happened, to what, by whom. `actor` is a user id or an owner-token id, never a raw token."""

    type: EventType
    actor: str
    agency: str | None = None
    case_id: str | None = None
    request_id: str | None = None
    evidence_id: str | None = None
    sha256: str | None = None
    detail: str = ""
    #: Facts the log binds (docs/ledger.md): on request_created the camera and the requested window,
    #: on file_received the file's name, size and type. Never personal data (no owner name, address,
    #: email or phone; no case title).
    facts: dict[str, str | int] | None = None
    #: Where it happened and whether it succeeded (the audit trail). Optional: entries written before
    #: they existed, and entries that do not set them, hash exactly as before.
    component: str | None = None
    outcome: str | None = None


def entry_object(event: CustodyEvent, *, at: datetime, prev: str) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "v": FACTS_VERSION if event.facts else ENTRY_VERSION,
        "type": str(event.type),
        "at": at.isoformat().replace("+00:00", "Z"),
        "actor": event.actor,
        "prev": prev,
    }
    for key in ("agency", "case_id", "request_id", "evidence_id", "sha256", "component", "outcome"):
        value = getattr(event, key)
        if value is not None:
            obj[key] = value
    if event.detail:
        obj["detail"] = event.detail
    if event.facts:
        obj["facts"] = dict(event.facts)
    return obj


def request_facts(
    *, camera_id: str, camera_label: str, camera_kind: str, window_start: datetime, window_end: datetime
) -> dict[str, str | int]:
    """What `request_created` binds: which camera was asked, for which window (RFC 3339 UTC)."""
    return {
        "camera_id": camera_id,
        "camera_label": camera_label,
        "camera_kind": camera_kind,
        "window_start": _utc(window_start),
        "window_end": _utc(window_end),
    }


def file_facts(
    *, filename: str, size: int, content_type: str, camera_id: str, basis_index: int | None = None
) -> dict[str, str | int]:
    """What `file_received` binds: the file as it arrived, and the ledger index of its basis (the
    `consent_given` or `camera_approved` entry that allows custody to hold it: custody/basis.py)."""
    facts: dict[str, str | int] = {
        "filename": filename, "size": size, "content_type": content_type, "camera_id": camera_id
    }  # fmt: skip
    if basis_index is not None:
        facts["basis_index"] = basis_index
    return facts


def consent_facts(*, terms_version: str, link_id: str) -> dict[str, str | int]:
    """What `consent_given` binds: the terms version the owner accepted and the consent link's id
    (the token's public id, never the token)."""
    return {"terms_version": terms_version, "link_id": link_id}


def agreement_facts(*, camera_id: str, terms_version: str) -> dict[str, str | int]:
    """What an integrated camera's `camera_approved` binds: the owner's integration agreement."""
    return {"kind": "integrated", "camera_id": camera_id, "terms_version": terms_version}


def _utc(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def canonical(obj: Any) -> bytes:
    """RFC 8785 bytes of a JSON value."""
    out: bytes = rfc8785.dumps(obj)
    return out
