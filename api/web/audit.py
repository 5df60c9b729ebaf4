"""The auditor's pages: the latest signed checkpoint, the log's growth, consistency between any two
checkpoints (RFC 9162 §2.1.4), entries searchable by case, and the export for offline checks."""

from __future__ import annotations

import base64
import json
import shutil
import tempfile
import zipfile
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.background import BackgroundTask

from api.deps import SessionDep
from api.web.render import page
from api.web.session import StaffSession
from custody.errors import Forbidden, Unprocessable
from custody.ledger.merkle import ProofError, verify_consistency
from custody.ledger.note import NoteError, open_checkpoint_any
from custody.ledger.store import Ledger, LedgerRangeError
from custody.models import User
from custody.services.people import resolve_actors

router = APIRouter(include_in_schema=False)
AUDITORS = ("auditor", "admin")
CHART_W, CHART_H, PAD = 640, 200, 36
RECENT = 200  # checkpoints listed; any other size can be typed into the consistency form


def _auditor(user: User) -> None:
    if user.role not in AUDITORS:
        raise Forbidden("The ledger pages are for auditors and administrators.")


def _ledger(request: Request) -> Ledger:
    ledger: Ledger = request.app.state.ledger
    return ledger


def _chart(points: list[tuple[int, datetime]]) -> dict[str, Any]:
    """An SVG polyline of tree size over time, drawn by the template."""
    if not points:
        return {"points": "", "dots": []}
    t0, t1 = points[0][1].timestamp(), points[-1][1].timestamp()
    top = max(size for size, _ in points) or 1
    span = (t1 - t0) or 1.0

    def xy(size: int, at: datetime) -> tuple[float, float]:
        x = PAD + (at.timestamp() - t0) / span * (CHART_W - 2 * PAD) if len(points) > 1 else CHART_W / 2
        y = CHART_H - PAD - size / top * (CHART_H - 2 * PAD)
        return round(x, 1), round(y, 1)

    coords = [xy(size, at) for size, at in points]
    return {
        "points": " ".join(f"{x},{y}" for x, y in coords),
        "dots": coords[-30:],
        "top": top,
        "first": points[0][1],
        "last": points[-1][1],
    }


def _consistency(ledger: Ledger, first: int, second: int) -> dict[str, Any]:
    """Check that the log at `second` extends the log at `first`, as an auditor would offline:
    1. both checkpoints open under the ledger's public key (C2SP signed note);
    2. the consistency proof between their sizes comes from the log (RFC 9162 §2.1.4.1);
    3. the proof leads from the first root to the second (RFC 9162 §2.1.4.2)."""
    steps: list[tuple[bool, str]] = []
    result: dict[str, Any] = {"first": first, "second": second, "steps": steps, "ok": False}
    if first > second:
        first, second = second, first
        result.update(first=first, second=second)
    a, b = ledger.checkpoint_at(first), ledger.checkpoint_at(second)
    if a is None or b is None:
        missing = first if a is None else second
        steps.append((False, f"No checkpoint was signed at tree size {missing}; pick sizes from the list."))
        return result
    try:
        # Either may be signed by a key used before a rotation (GET /ledger/public-keys).
        ca, ka = open_checkpoint_any(a.note, ledger.verifiers)
        cb, kb = open_checkpoint_any(b.note, ledger.verifiers)
    except NoteError as exc:
        steps.append((False, f"A checkpoint's signature does not verify under the ledger's keys: {exc}"))
        return result
    if ka == kb:
        steps.append((True, f"Both checkpoints are signed by {ka.name} (key {ka.key_id.hex()})."))
    else:
        steps.append(
            (True, f"Checkpoint {first} is signed by key {ka.key_id.hex()} and checkpoint {second} by key "
             f"{kb.key_id.hex()}: the signing key was rotated between them (both are published).")
        )  # fmt: skip
    if first == 0:
        steps.append((True, "The empty log (size 0) is a prefix of every log: nothing to prove."))
        result["ok"] = True
        return result
    try:
        proof = ledger.consistency_proof(first, second)
    except LedgerRangeError as exc:
        steps.append((False, f"The log could not produce a proof: {exc}"))
        return result
    result["hashes"] = [h.hex() for h in proof]
    steps.append(
        (True, f"The log gave a consistency proof of {len(proof)} hash{'' if len(proof) == 1 else 'es'}.")
    )
    try:
        verify_consistency(first, second, ca.root, cb.root, proof)
    except ProofError as exc:
        steps.append((False, f"The proof does not hold: {exc}"))
        return result
    steps.append(
        (True, f"The tree of {second} entries contains the tree of {first} unchanged (RFC 9162 §2.1.4.2).")
    )
    result["ok"] = True
    return result


@router.get("/console/ledger")
def ledger_page(
    request: Request,
    staff: StaffSession,
    first: int | None = Query(default=None, ge=0),
    second: int | None = Query(default=None, ge=0),
) -> Response:
    user, web = staff
    _auditor(user)
    ledger = _ledger(request)
    latest = ledger.sign_checkpoint() or ledger.latest_checkpoint()
    total, growth = ledger.growth(200)
    check = _consistency(ledger, first, second) if first is not None and second is not None else None
    recent = ledger.recent_checkpoints(RECENT)
    roots = {c.tree_size: root_hex(c.note) for c in recent}
    if latest is not None:
        roots[latest.tree_size] = root_hex(latest.note)
    return page(
        request,
        "web/ledger.html",
        user=user,
        web=web,
        latest=latest,
        checkpoints=recent,
        total=total,
        chart=_chart(growth),
        size=(CHART_W, CHART_H, PAD),
        check=check,
        public_key=ledger.verifier.encode(),
        first=first,
        second=second,
        roots=roots,
    )


def root_hex(note: str) -> str:
    """A checkpoint's root hash in hex, as `custody ledger verify` prints it (the note holds base64)."""
    return base64.b64decode(note.split("\n")[2]).hex()


@router.get("/console/ledger/consistency.json")
def consistency_json(
    request: Request,
    staff: StaffSession,
    first: int = Query(ge=1),
    second: int = Query(ge=1),
) -> JSONResponse:
    """The consistency proof as GET /ledger/proofs/consistency gives it, to keep beside the two
    checkpoints (`custody verify --checkpoint NEWER --consistency-proof THIS`)."""
    _auditor(staff[0])
    try:
        proof = _ledger(request).consistency_proof(first, second)
    except LedgerRangeError as exc:
        raise Unprocessable(f"{exc}; pick two tree sizes of the log.") from exc
    return JSONResponse(
        {"first": first, "second": second, "hashes": [base64.b64encode(h).decode() for h in proof]},
        headers={"Content-Disposition": f'attachment; filename="consistency-{first}-{second}.json"'},
    )


@router.get("/console/ledger/entries")
def entries_page(
    request: Request,
    session: SessionDep,
    staff: StaffSession,
    case_id: str = Query(default="", max_length=36),
    start: int | None = Query(default=None, ge=0),
) -> Response:
    user, web = staff
    _auditor(user)
    ledger = _ledger(request)
    size = ledger.size()
    case_id = case_id.strip()
    if case_id:
        rows = ledger.entries_for(case_id=case_id)[-500:]
        page_start = None
    else:
        page_start = max(0, size - 100) if start is None else min(start, max(0, size - 1))
        rows = ledger.entries(page_start, page_start + 100)
    entries = [(i, json.loads(data)) for i, data in rows]
    parties = resolve_actors(session=session, actors={e["actor"] for _, e in entries})
    return page(
        request,
        "web/ledger_entries.html",
        user=user,
        web=web,
        entries=list(reversed(entries)),
        parties=parties,
        size=size,
        case_id=case_id,
        start=page_start,
    )


@router.get("/console/ledger/export.zip")
def export_zip(request: Request, staff: StaffSession) -> Response:
    """The same files as `custody ledger export`, zipped: verify them with `custody ledger verify`.
    Built in a temporary folder on disk and streamed, so a large ledger does not sit in memory."""
    _auditor(staff[0])
    ledger = _ledger(request)
    tmp = Path(tempfile.mkdtemp(prefix="custody-export-"))
    try:
        checkpoint = ledger.export(tmp / "export")
        archive = tmp / "ledger.zip"
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
            for path in sorted((tmp / "export").rglob("*")):
                if path.is_file():
                    zf.write(path, f"ledger-{checkpoint.tree_size}/{path.relative_to(tmp / 'export')}")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return FileResponse(
        archive,
        media_type="application/zip",
        filename=f"custody-ledger-{checkpoint.tree_size}.zip",
        background=BackgroundTask(shutil.rmtree, tmp, ignore_errors=True),
    )
