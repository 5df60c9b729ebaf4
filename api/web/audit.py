"""The auditor's pages: the latest signed checkpoint, the log's growth, consistency between any two
checkpoints (RFC 9162 §2.1.4), entries searchable by case, and the export for offline checks."""

from __future__ import annotations

import base64
import json
import shutil
import tempfile
import zipfile
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from sqlmodel import Session
from starlette.background import BackgroundTask

from api.deps import SessionDep
from api.web.render import page
from api.web.session import StaffSession
from custody import localtime
from custody.errors import Forbidden, Unprocessable
from custody.ledger.entries import Component, EventType
from custody.ledger.merkle import ProofError, verify_consistency
from custody.ledger.note import NoteError, open_checkpoint_any
from custody.ledger.store import Ledger, LedgerRangeError
from custody.localtime import LocalTimeError
from custody.models import User
from custody.services import audit
from custody.services.people import resolve_actors

router = APIRouter(include_in_schema=False)
AUDITORS = ("auditor", "admin")
CHART_W, CHART_H, PAD = 640, 200, 36
PAGE = 100  # entries per page
CSV_MAX = 100_000  # rows in one CSV export; narrow the filter for more
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


class _Filters:
    """The auditor's filter form: event types, user, outcome, a time range in the program's zone."""

    def __init__(
        self, session: Session, tz: ZoneInfo, types: list[str], who: str, outcome: str, since: str, until: str
    ) -> None:
        self.types = list(audit.types_known(types))
        self.who, self.since_text, self.until_text = who.strip(), since.strip(), until.strip()
        self.outcome = outcome if outcome in ("success", "failure") else ""
        self.error = ""
        since_at = until_at = None
        try:
            since_at, until_at = audit.time_range(self.since_text, self.until_text, tz)
        except LocalTimeError as exc:
            self.error = exc.message
        self.flt = audit.AuditFilter(
            types=tuple(self.types),
            actors=audit.actors_for(session, self.who),
            outcome=self.outcome or None,
            since=since_at,
            until=until_at,
        )

    def query_string(self) -> str:
        pairs = [("type", t) for t in self.types] + [
            (k, v) for k, v in (("user", self.who), ("outcome", self.outcome), ("from", self.since_text),
                                ("to", self.until_text)) if v
        ]  # fmt: skip
        return urlencode(pairs)


def _filters(
    request: Request,
    session: Session,
    types: list[str],
    who: str,
    outcome: str,
    since: str,
    until: str,
) -> _Filters:
    return _Filters(session, request.app.state.settings.tz, types, who, outcome, since, until)


Types = Annotated[list[str], Query(alias="type", max_length=40)]
Text = Query(default="", max_length=200)


@router.get("/console/ledger/entries")
def entries_page(
    request: Request,
    session: SessionDep,
    staff: StaffSession,
    case_id: str = Query(default="", max_length=36),
    start: int | None = Query(default=None, ge=0),
    before: int | None = Query(default=None, ge=1),
    types: Types = [],  # noqa: B006 (FastAPI copies defaults)
    who: str = Query(default="", alias="user", max_length=200),
    outcome: str = Query(default="", max_length=16),
    since: str = Query(default="", alias="from", max_length=40),
    until: str = Query(default="", alias="to", max_length=40),
) -> Response:
    """The log, newest first: a case's entries, or the audit trail filtered by event type, user,
    outcome and time (typed and shown in the program's zone), or a page of the newest entries. Every
    query is itself recorded (`ledger_queried`), after it was read."""
    user, web = staff
    _auditor(user)
    ledger = _ledger(request)
    size = ledger.size()
    case_id = case_id.strip()
    f = _filters(request, session, types, who, outcome, since, until)
    filtered = not f.flt.empty and not f.error
    older = None
    page_start = None
    if case_id:
        entries = [(i, json.loads(data)) for i, data in ledger.entries_for(case_id=case_id)[-500:]]
        what = f"case {case_id}"
    elif filtered:
        flt = replace(f.flt, before=before)
        found = audit.query(ledger.engine, flt, limit=PAGE + 1)
        older = found[PAGE - 1][0] if len(found) > PAGE else None
        entries = found[:PAGE]
        what = audit.describe(flt)
    else:
        page_start = max(0, size - PAGE) if start is None else min(start, max(0, size - 1))
        entries = [(i, json.loads(data)) for i, data in ledger.entries(page_start, page_start + PAGE)]
        what = f"entries start={page_start} end={page_start + PAGE}"
    parties = resolve_actors(session=session, actors={e["actor"] for _, e in entries})
    session.rollback()  # end the read before the ledger writes (SQLite's one writer)
    audit.record_query(ledger, user, component=Component.console, what=what)
    tz = request.app.state.settings.tz
    if not filtered and not case_id:
        entries = list(reversed(entries))
    return page(
        request,
        "web/ledger_entries.html",
        user=user,
        web=web,
        entries=entries,
        parties=parties,
        size=size,
        case_id=case_id,
        start=page_start,
        f=f,
        filtered=filtered,
        older=older,
        audit_types=[str(t) for t in audit.AUDIT_TYPES],
        other_types=sorted(set(EventType.__members__) - {str(t) for t in audit.AUDIT_TYPES}),
        zone=localtime.zone_label(tz),
    )


@router.get("/console/ledger/entries.csv")
def entries_csv(
    request: Request,
    session: SessionDep,
    staff: StaffSession,
    types: Types = [],  # noqa: B006 (FastAPI copies defaults)
    who: str = Query(default="", alias="user", max_length=200),
    outcome: str = Query(default="", max_length=16),
    since: str = Query(default="", alias="from", max_length=40),
    until: str = Query(default="", alias="to", max_length=40),
) -> Response:
    """The filtered audit trail as CSV (times in the program's zone, named, and in UTC), newest first,
    at most CSV_MAX rows. The export is itself recorded (`ledger_exported`)."""
    user, _ = staff
    _auditor(user)
    f = _filters(request, session, types, who, outcome, since, until)
    if f.error:
        raise Unprocessable(f.error)
    ledger = _ledger(request)
    rows = audit.query(ledger.engine, f.flt, limit=CSV_MAX)
    names = {
        a: p.short() for a, p in resolve_actors(session=session, actors={e["actor"] for _, e in rows}).items()
    }
    session.rollback()  # end the read before the ledger writes (SQLite's one writer)
    audit.record(
        ledger,
        EventType.ledger_exported,
        actor=user.id,
        agency=user.agency,
        component=Component.console,
        detail=f"csv of {len(rows)} entries: {audit.describe(f.flt)}",
    )
    body = audit.to_csv(rows, request.app.state.settings.tz, names)
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": 'attachment; filename="custody-audit.csv"',
            "Cache-Control": "no-store",
        },
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
        audit.record(
            ledger,
            EventType.ledger_exported,
            actor=staff[0].id,
            agency=staff[0].agency,
            component=Component.console,
            detail=f"tree_size={checkpoint.tree_size} as a zip",
        )
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
