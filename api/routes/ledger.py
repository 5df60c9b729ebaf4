"""The ledger for auditors: signed checkpoints, the public key, entries and RFC 9162 proofs."""

from __future__ import annotations

import base64
import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import PlainTextResponse

from api.deps import CurrentUser, require_roles
from api.params import MAX_INDEX, LedgerIndex, TreeSize, TreeSizePath
from custody.errors import NotFound, Unprocessable
from custody.ledger.entries import Component
from custody.ledger.store import Ledger, LedgerRangeError, SignedCheckpoint
from custody.models import User
from custody.services import audit
from custody.timeutil import rfc3339

router = APIRouter(tags=["ledger"], prefix="/ledger")
Auditor = Annotated[User, Depends(require_roles("auditor", "admin"))]
MAX_PAGE = 1000


def get_ledger(request: Request) -> Ledger:
    ledger: Ledger = request.app.state.ledger
    return ledger


LedgerDep = Annotated[Ledger, Depends(get_ledger)]


def _b64(items: list[bytes]) -> list[str]:
    return [base64.b64encode(h).decode() for h in items]


@router.get("/checkpoint", response_class=PlainTextResponse)
def checkpoint(_: CurrentUser, ledger: LedgerDep) -> PlainTextResponse:
    """The newest signed checkpoint (a C2SP signed note), signed now if the log grew since."""
    cp = ledger.sign_checkpoint()
    assert cp is not None
    return PlainTextResponse(cp.note)


@router.get("/public-key", response_class=PlainTextResponse)
def public_key(_: CurrentUser, ledger: LedgerDep) -> PlainTextResponse:
    """The verifier key: `<name>+<key id hex>+<base64(0x01 ‖ Ed25519 public key)>`."""
    return PlainTextResponse(ledger.verifier.encode() + "\n")


@router.get("/public-keys")
def public_keys(_: CurrentUser, ledger: LedgerDep) -> list[dict[str, Any]]:
    """Every verifier key the log's checkpoints may be signed by, the current one first, then the
    previous ones (CUSTODY_LEDGER_PREVIOUS_KEYS) newest first. For each, the first and last checkpoint
    it signed in this log, where it signed any: `since` is when the key started signing. After a
    rotation, an auditor verifies old checkpoints with the old key and new ones with the new key
    (`custody ledger verify --public-key OLD --public-key NEW`); obtain the keys from a channel you
    trust, and compare fingerprints."""

    def signed(cp: SignedCheckpoint | None) -> dict[str, Any] | None:
        return None if cp is None else {"tree_size": cp.tree_size, "at": rfc3339(cp.created_at)}

    return [
        {
            "key": v.encode(),
            "key_id": v.key_id.hex(),
            "fingerprint": v.fingerprint(),
            "current": i == 0,
            "since": rfc3339(first.created_at) if first else None,
            "first_signed": signed(first),
            "last_signed": signed(last),
        }
        for i, (v, first, last) in enumerate(ledger.key_history())
    ]


@router.get("/checkpoints")
def checkpoints(_: Auditor, ledger: LedgerDep) -> list[dict[str, Any]]:
    """Every checkpoint ever signed, oldest first."""
    return [
        {
            "tree_size": c.tree_size,
            "root": base64.b64encode(c.root).decode(),
            "created_at": rfc3339(c.created_at),
        }
        for c in ledger.checkpoints()
    ]


@router.get("/checkpoints/{tree_size}", response_class=PlainTextResponse)
def checkpoint_at(tree_size: TreeSizePath, _: Auditor, ledger: LedgerDep) -> PlainTextResponse:
    cp = ledger.checkpoint_at(tree_size)
    if cp is None:
        raise NotFound(f"No checkpoint was signed at tree size {tree_size}; see GET /ledger/checkpoints.")
    return PlainTextResponse(cp.note)


@router.get("/entries")
def entries(
    user: Auditor,
    ledger: LedgerDep,
    start: LedgerIndex = 0,
    end: Annotated[
        int | None, Query(ge=1, le=MAX_INDEX, description=f"exclusive; after start, at most start+{MAX_PAGE}")
    ] = None,
) -> list[dict[str, Any]]:
    end = start + 100 if end is None else end
    if end <= start:
        raise Unprocessable(f"end ({end}) must be greater than start ({start}).")
    if end - start > MAX_PAGE:
        raise Unprocessable(f"Ask for at most {MAX_PAGE} entries at a time (start={start}, end={end}).")
    rows = [{"index": i, "entry": json.loads(data)} for i, data in ledger.entries(start, end)]
    # Reading the audit log is itself on the record: one `ledger_queried` entry per query, after
    # the rows were read (it is never among the entries it describes).
    audit.record_query(ledger, user, component=Component.api, what=f"entries start={start} end={end}")
    return rows


@router.get("/proofs/inclusion")
def inclusion(
    _: Auditor,
    ledger: LedgerDep,
    index: LedgerIndex,
    tree_size: Annotated[
        int, Query(ge=1, le=MAX_INDEX, description="more than index, at most the log's size")
    ],
) -> dict[str, Any]:
    try:
        hashes = ledger.inclusion_proof(index, tree_size)
    except LedgerRangeError as exc:
        raise Unprocessable(f"{exc}; ask within the log's size (see GET /ledger/checkpoint).") from exc
    return {"index": index, "tree_size": tree_size, "hashes": _b64(hashes)}


@router.get("/proofs/consistency")
def consistency(
    _: Auditor,
    ledger: LedgerDep,
    first: TreeSize,
    second: Annotated[int, Query(ge=1, le=MAX_INDEX, description="at least first, at most the log's size")],
) -> dict[str, Any]:
    try:
        hashes = ledger.consistency_proof(first, second)
    except LedgerRangeError as exc:
        raise Unprocessable(f"{exc}; ask within the log's size (see GET /ledger/checkpoint).") from exc
    return {"first": first, "second": second, "hashes": _b64(hashes)}
