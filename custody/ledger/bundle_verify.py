"""Offline verification of one footage file against a custody bundle (docs/bundle.md), in numbered
steps. Imports only the pure ledger modules: it runs with the file, the bundle and nothing else.

  Step 1  Read the bundle (custody-bundle/2; custody-bundle/1 still verifies, with less proven).
  Step 2  The file's SHA-256 is one of the bundle's evidence hashes.
  Step 3  The checkpoint's signature verifies under the bundle's key and, when given, under the key
          the user trusts (C2SP signed note, Ed25519).
  Step 4  Every entry hashes to its leaf (RFC 9162 §2.1.1) and its inclusion proof leads to the
          checkpoint's root (§2.1.3.2); the file's hash appears in the case's custody events.
  Step 5  What the bundle states about the file (name, size, type, camera, request, case, requested
          window, received and verified times) equals what the signed entries record: the
          `file_received` and `file_verified` entries of the file and the `request_created` entry of
          its request. Only facts that pass here are reported as proven; everything else the bundle
          says is reported as "stated by the bundle, not proven".
  Step 6  The file's basis: its `file_received` entry names `basis_index`, the ledger index of the
          entry that allows custody to hold it; the bundle carries that entry (among the case's
          entries or in `basis_entries`, with its inclusion proof), it is the right type (the
          request's `consent_given`, or the camera's `camera_approved` with kind integrated), and
          the bundle's `basis` for the file says the same. Files recorded before bases were
          bound are reported with a warning.
  Step 7  (optional) A newer signed checkpoint is consistent with the bundle's (§2.1.4.2), given the
          consistency proof from GET /ledger/proofs/consistency: the log only grew since.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from custody.ledger.merkle import ProofError, leaf_hash, verify_consistency, verify_inclusion
from custody.ledger.note import NoteError, Verifier, open_checkpoint, parse_verifier

BUNDLE_FORMAT = "custody-bundle/2"
FORMATS = ("custody-bundle/1", BUNDLE_FORMAT)


class BundleVerificationError(Exception):
    def __init__(self, step: int, message: str) -> None:
        super().__init__(f"step {step}: {message}")
        self.step = step
        self.message = message


class FactMismatch(BundleVerificationError):
    """A fact the bundle states differs from what the signed log records for it."""

    def __init__(self, field: str, stated: object, logged: object, where: str) -> None:
        super().__init__(
            5, f"the bundle says {field} is {stated!r} but the signed log records {logged!r} ({where})"
        )
        self.field, self.stated, self.logged = field, stated, logged


@dataclass
class BundleReport:
    sha256: str
    evidence_id: str
    case_id: str
    tree_size: int
    entries_checked: int
    steps: list[str] = field(default_factory=list)
    #: (what, value) pairs the signed log binds and that equal the bundle's statement
    proven: list[tuple[str, str]] = field(default_factory=list)
    #: (what, value) pairs only the bundle states
    stated: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


#: Facts of an evidence item and where the log binds them: (bundle key, entry type, entry field)
BOUND_FACTS: tuple[tuple[str, str, str], ...] = (
    ("filename", "file_received", "facts.filename"),
    ("size", "file_received", "facts.size"),
    ("content_type", "file_received", "facts.content_type"),
    ("camera_id", "file_received", "facts.camera_id"),
    ("request_id", "file_received", "request_id"),
    ("received_at", "file_received", "at"),
    ("verified_at", "file_verified", "at"),
    ("camera_id", "request_created", "facts.camera_id"),
    ("camera_label", "request_created", "facts.camera_label"),
    ("window_start", "request_created", "facts.window_start"),
    ("window_end", "request_created", "facts.window_end"),
)
LABELS = {
    "filename": "file name",
    "size": "size (bytes)",
    "content_type": "type",
    "camera_id": "camera id",
    "camera_label": "camera label",
    "request_id": "request",
    "received_at": "received (UTC)",
    "verified_at": "verified (UTC)",
    "window_start": "requested window from (UTC)",
    "window_end": "requested window until (UTC)",
}


def _field(entry: dict[str, Any], path: str) -> Any:
    value: Any = entry
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _stated(value: Any) -> str:
    return "not stated" if value is None else str(value)


TIME_FACTS = frozenset({"received_at", "verified_at", "window_start", "window_end"})


def _same(key: str, stated: Any, logged: Any) -> bool:
    """Equal facts; times are equal as instants (RFC 3339 allows one instant several spellings)."""
    if key in TIME_FACTS and isinstance(stated, str) and isinstance(logged, str):
        try:
            return datetime.fromisoformat(stated.replace("Z", "+00:00")) == datetime.fromisoformat(
                logged.replace("Z", "+00:00")
            )
        except ValueError:
            return False
    return bool(stated == logged)


def check_facts(
    evidence: dict[str, Any], entries: list[tuple[int, dict[str, Any]]]
) -> tuple[list[tuple[str, str]], list[str]]:
    """Step 5, pure: compare an evidence item's stated facts with the signed entries that bind them.

    Returns the proven (label, value) pairs and the keys that the log does not bind (old entries
    without facts). Raises FactMismatch naming the first field whose statement differs."""
    by_type: dict[str, tuple[int, dict[str, Any]]] = {}
    for index, entry in entries:
        if entry.get("evidence_id") == evidence["id"] and entry["type"] in ("file_received", "file_verified"):
            by_type.setdefault(entry["type"], (index, entry))
    received = by_type.get("file_received")
    if received is not None and received[1].get("request_id"):
        for index, entry in entries:
            if entry["type"] == "request_created" and entry.get("request_id") == received[1]["request_id"]:
                by_type.setdefault("request_created", (index, entry))
                break
    proven: dict[str, str] = {}
    unbound: list[str] = []
    for key, etype, path in BOUND_FACTS:
        found = by_type.get(etype)
        logged = _field(found[1], path) if found else None
        stated = evidence.get(key)
        if logged is None:
            if key not in proven and key not in unbound:
                unbound.append(key)
            continue
        if not _same(key, stated, logged):
            raise FactMismatch(key, stated, logged, f"{etype} entry #{found[0]}" if found else etype)
        proven[key] = str(logged)
        if key in unbound:
            unbound.remove(key)
    return [(LABELS[k], v) for k, v in proven.items()], unbound


class BasisMismatch(BundleVerificationError):
    """The file's basis is missing from the bundle, of the wrong kind, or stated otherwise."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(6, f"{field}: {message}")
        self.field = field


#: A basis type, the event its entry is and how the report names it.
BASIS_KINDS = {
    "consent": ("consent_given", "owner's consent"),
    "integration_agreement": ("camera_approved", "owner's integration agreement"),
}


def check_basis(
    evidence: dict[str, Any],
    entries: list[tuple[int, dict[str, Any]]],
    basis_entries: list[tuple[int, dict[str, Any]]],
) -> tuple[str, str] | None:
    """Step 6, pure: the file's chain includes its basis entry, of the right type, for its request
    or camera. `entries` are the case's proven entries, `basis_entries` the other proven ones.

    Returns the proven ("basis", description) pair, or None when the file's `file_received` entry
    binds no basis (written before bases were). Raises BasisMismatch naming the field."""
    received = next(
        (e for _, e in entries if e["type"] == "file_received" and e.get("evidence_id") == evidence["id"]),
        None,
    )
    bound = _field(received, "facts.basis_index") if received is not None else None
    stated = evidence.get("basis") or {}
    if bound is None:
        if stated:
            raise BasisMismatch(
                "basis", f"the bundle names a basis but the signed log binds none for {evidence['id']}"
            )
        return None
    assert received is not None
    if stated.get("ledger_index") != bound:
        raise BasisMismatch(
            "basis.ledger_index",
            f"the bundle says {stated.get('ledger_index')!r} but the signed file_received entry binds "
            f"basis_index {bound!r}",
        )
    kind = BASIS_KINDS.get(str(stated.get("type")))
    if kind is None:
        raise BasisMismatch("basis.type", f"{stated.get('type')!r} is not a basis type")
    found = next((e for i, e in [*entries, *basis_entries] if i == bound), None)
    if found is None:
        raise BasisMismatch(
            "basis_index", f"the bundle leaves out the basis entry #{bound} of evidence {evidence['id']}"
        )
    event, words = kind
    if found["type"] != event:
        raise BasisMismatch(
            "basis.type", f"entry #{bound} is {found['type']}, not the {event} a {stated['type']} basis is"
        )
    facts = found.get("facts") or {}
    if event == "consent_given" and found.get("request_id") != received.get("request_id"):
        raise BasisMismatch(
            "basis_index", f"consent entry #{bound} is for request {found.get('request_id')}, not this file's"
        )
    if event == "camera_approved" and (
        facts.get("kind") != "integrated" or facts.get("camera_id") != _field(received, "facts.camera_id")
    ):
        raise BasisMismatch(
            "basis_index", f"agreement entry #{bound} is not the integrated agreement of this file's camera"
        )
    terms = facts.get("terms_version")
    return (
        "basis",
        f"{words}, terms {terms}, ledger entry {bound}" if terms else f"{words}, ledger entry {bound}",
    )


def sha256_file(
    path: Path, progress: Callable[[int], None] | None = None, chunk: int = 4 * 1024 * 1024
) -> str:
    h = hashlib.sha256()
    with path.open("rb", buffering=0) as fh:
        buf = bytearray(chunk)
        view = memoryview(buf)
        while n := fh.readinto(buf):
            h.update(view[:n])
            if progress is not None:
                progress(n)
    return h.hexdigest()


def verify_file(
    file: Path,
    bundle_path: Path,
    *,
    trusted: Verifier | None = None,
    progress: Callable[[int], None] | None = None,
    newer_checkpoint: str | None = None,
    consistency_proof: dict[str, Any] | None = None,
) -> BundleReport:
    # Step 1
    try:
        bundle: dict[str, Any] = json.loads(bundle_path.read_text())
    except (OSError, ValueError) as exc:
        raise BundleVerificationError(1, f"cannot read the bundle {bundle_path}: {exc}") from exc
    if bundle.get("format") not in FORMATS:
        raise BundleVerificationError(
            1, f"not a custody bundle this version reads (format {bundle.get('format')!r}; reads {FORMATS})"
        )
    steps = [f"1. read the bundle ({bundle['format']})"]
    warnings = []
    if bundle["format"] != BUNDLE_FORMAT:
        warnings.append(
            f"{bundle['format']} is an older format: its entries may not bind the file name, camera or "
            "window, so those are shown as stated by the bundle, not proven (docs/bundle.md)."
        )

    # Step 2
    digest = sha256_file(file, progress)
    matches = [e for e in bundle["evidence"] if e["sha256"] == digest]
    if not matches:
        raise BundleVerificationError(
            2, f"the file's SHA-256 {digest} is not among this case's evidence hashes"
        )
    evidence = matches[0]
    steps.append(f"2. the file's SHA-256 {digest} is the hash of evidence {evidence['id']}")

    # Step 3
    ledger = bundle["ledger"]
    try:
        bundle_key = parse_verifier(ledger["public_key"])
        checkpoint = open_checkpoint(ledger["checkpoint"], bundle_key, origin=ledger["origin"])
        if trusted is not None:
            open_checkpoint(ledger["checkpoint"], trusted, origin=ledger["origin"])
    except NoteError as exc:
        raise BundleVerificationError(3, f"the checkpoint's signature does not verify: {exc}") from exc
    steps.append(
        f"3. checkpoint of {checkpoint.size} entries signed by {bundle_key.name}+{bundle_key.key_id.hex()}"
        + (
            " (the key you trust)"
            if trusted is not None
            else " (the bundle's own key; pass --public-key to pin it)"
        )
    )

    # Step 4
    mentions = 0
    parsed: list[tuple[int, dict[str, Any]]] = []
    for item in ledger["entries"]:
        data = item["entry"].encode()
        try:
            proof = [base64.b64decode(h, validate=True) for h in item["inclusion_proof"]]
            verify_inclusion(item["index"], checkpoint.size, leaf_hash(data), proof, checkpoint.root)
        except (ProofError, binascii.Error, ValueError) as exc:
            raise BundleVerificationError(
                4, f"entry {item['index']} is not in the signed log: {exc}"
            ) from exc
        entry = json.loads(data)
        if entry.get("case_id") != bundle["case"]["id"]:
            raise BundleVerificationError(4, f"entry {item['index']} belongs to another case")
        if entry.get("evidence_id") == evidence["id"] and entry.get("sha256") not in (None, digest):
            raise BundleVerificationError(
                4, f"entry {item['index']} records SHA-256 {entry['sha256']} for this evidence, not {digest}"
            )
        parsed.append((item["index"], entry))
        mentions += entry.get("sha256") == digest
    if mentions == 0:
        raise BundleVerificationError(4, f"no custody event in the signed log records SHA-256 {digest}")
    steps.append(
        f"4. {len(ledger['entries'])} custody events are in the signed log; {mentions} record this file"
    )

    # Step 5
    if bundle["format"] == BUNDLE_FORMAT and not any(
        e["type"] == "file_received" and e.get("evidence_id") == evidence["id"] for _, e in parsed
    ):
        raise BundleVerificationError(
            5, f"the bundle leaves out the signed entry that records the arrival of evidence {evidence['id']}"
        )
    proven, unbound = check_facts(evidence, parsed)
    if unbound:
        warnings.append(
            "the signed log does not bind "
            + ", ".join(LABELS[k] for k in unbound)
            + " for this file (entries written before custody-bundle/2): shown as stated, not proven."
        )
    proven = [
        ("SHA-256", digest),
        ("evidence id", evidence["id"]),
        ("case id", bundle["case"]["id"]),
        *proven,
    ]
    stated = [(LABELS[k], str(evidence.get(k))) for k in unbound]
    stated += [
        ("case title", str(bundle["case"].get("title"))),
        ("camera kind", _stated(evidence.get("camera_kind"))),
        ("recorder clock offset (owner's statement, s)", _stated(evidence.get("camera_clock_offset_s"))),
        ("evidence status", str(evidence.get("status"))),
        ("retained until (COMPLIANCE)", _stated(evidence.get("retain_until"))),
        ("legal hold", "on" if evidence.get("legal_hold") else "none"),
        ("bundle generated", f"{bundle.get('generated_at')} by {bundle.get('generated_by')}"),
    ]
    steps.append(f"5. {len(proven)} facts about this file equal what the signed log records")

    # Step 6
    basis_parsed: list[tuple[int, dict[str, Any]]] = []
    for item in ledger.get("basis_entries", []):
        data = item["entry"].encode()
        try:
            proof = [base64.b64decode(h, validate=True) for h in item["inclusion_proof"]]
            verify_inclusion(item["index"], checkpoint.size, leaf_hash(data), proof, checkpoint.root)
        except (ProofError, binascii.Error, ValueError) as exc:
            raise BasisMismatch(
                "basis_entries", f"entry {item['index']} is not in the signed log: {exc}"
            ) from exc
        basis_parsed.append((item["index"], json.loads(data)))
    basis = check_basis(evidence, parsed, basis_parsed)
    if basis is None:
        warnings.append(
            "the signed log binds no basis (consent or integration agreement) for this file "
            "(recorded before custody bound bases)."
        )
        steps.append("6. no basis is bound for this file (recorded before bases were)")
    else:
        proven.append(basis)
        steps.append(f"6. the file's basis is in the signed log: {basis[1]}")

    # Step 7
    if newer_checkpoint is not None:
        try:
            newer = open_checkpoint(newer_checkpoint, trusted or bundle_key, origin=ledger["origin"])
        except NoteError as exc:
            raise BundleVerificationError(
                7, f"the newer checkpoint's signature does not verify: {exc}"
            ) from exc
        given = consistency_proof or {}
        if newer.size != checkpoint.size and (given.get("first"), given.get("second")) != (
            checkpoint.size,
            newer.size,
        ):
            raise BundleVerificationError(
                7,
                f"the consistency proof must be from size {checkpoint.size} to {newer.size} "
                f"(GET /ledger/proofs/consistency?first={checkpoint.size}&second={newer.size})",
            )
        try:
            hashes = [base64.b64decode(h, validate=True) for h in given.get("hashes", [])]
            verify_consistency(checkpoint.size, newer.size, checkpoint.root, newer.root, hashes)
        except (ProofError, binascii.Error) as exc:
            raise BundleVerificationError(
                7, f"the newer checkpoint is not consistent with the bundle's: {exc}"
            ) from exc
        steps.append(f"7. the newer checkpoint of {newer.size} entries is consistent with the bundle's")
    return BundleReport(
        digest,
        evidence["id"],
        bundle["case"]["id"],
        checkpoint.size,
        len(ledger["entries"]),
        steps,
        proven=proven,
        stated=stated,
        warnings=warnings,
    )
