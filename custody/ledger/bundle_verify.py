"""Offline verification of one footage file against a custody bundle (docs/bundle.md), in numbered
steps. Imports only the pure ledger modules: it runs with the file, the bundle and nothing else.

  Step 1  Read the bundle (format custody-bundle/1).
  Step 2  The file's SHA-256 is one of the bundle's evidence hashes.
  Step 3  The checkpoint's signature verifies under the bundle's key and, when given, under the key
          the user trusts (C2SP signed note, Ed25519).
  Step 4  Every entry hashes to its leaf (RFC 9162 §2.1.1) and its inclusion proof leads to the
          checkpoint's root (§2.1.3.2); the file's hash appears in the case's custody events.
  Step 5  (optional) A newer signed checkpoint is consistent with the bundle's (§2.1.4.2), given the
          consistency proof from GET /ledger/proofs/consistency: the log only grew since.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from custody.ledger.merkle import ProofError, leaf_hash, verify_consistency, verify_inclusion
from custody.ledger.note import NoteError, Verifier, open_checkpoint, parse_verifier

BUNDLE_FORMAT = "custody-bundle/1"


class BundleVerificationError(Exception):
    def __init__(self, step: int, message: str) -> None:
        super().__init__(f"step {step}: {message}")
        self.step = step
        self.message = message


@dataclass
class BundleReport:
    sha256: str
    evidence_id: str
    case_id: str
    tree_size: int
    entries_checked: int
    steps: list[str] = field(default_factory=list)


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
    if bundle.get("format") != BUNDLE_FORMAT:
        raise BundleVerificationError(1, f"not a {BUNDLE_FORMAT} bundle (format {bundle.get('format')!r})")
    steps = [f"1. read the bundle of case {bundle['case']['id']}"]

    # Step 2
    digest = sha256_file(file, progress)
    matches = [e for e in bundle["evidence"] if e["sha256"] == digest]
    if not matches:
        raise BundleVerificationError(
            2, f"the file's SHA-256 {digest} is not among this case's evidence hashes"
        )
    evidence = matches[0]
    steps.append(f"2. the file's SHA-256 {digest} is evidence {evidence['id']} ({evidence['filename']})")

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
        mentions += entry.get("sha256") == digest
    if mentions == 0:
        raise BundleVerificationError(4, f"no custody event in the signed log records SHA-256 {digest}")
    steps.append(
        f"4. {len(ledger['entries'])} custody events are in the signed log; {mentions} record this file"
    )

    # Step 5
    if newer_checkpoint is not None:
        try:
            newer = open_checkpoint(newer_checkpoint, trusted or bundle_key, origin=ledger["origin"])
        except NoteError as exc:
            raise BundleVerificationError(
                5, f"the newer checkpoint's signature does not verify: {exc}"
            ) from exc
        given = consistency_proof or {}
        if newer.size != checkpoint.size and (given.get("first"), given.get("second")) != (
            checkpoint.size,
            newer.size,
        ):
            raise BundleVerificationError(
                5,
                f"the consistency proof must be from size {checkpoint.size} to {newer.size} "
                f"(GET /ledger/proofs/consistency?first={checkpoint.size}&second={newer.size})",
            )
        try:
            hashes = [base64.b64decode(h, validate=True) for h in given.get("hashes", [])]
            verify_consistency(checkpoint.size, newer.size, checkpoint.root, newer.root, hashes)
        except (ProofError, binascii.Error) as exc:
            raise BundleVerificationError(
                5, f"the newer checkpoint is not consistent with the bundle's: {exc}"
            ) from exc
        steps.append(f"5. the newer checkpoint of {newer.size} entries is consistent with the bundle's")
    return BundleReport(
        digest, evidence["id"], bundle["case"]["id"], checkpoint.size, len(ledger["entries"]), steps
    )
