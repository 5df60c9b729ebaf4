"""The owner's consent link: a page for people, JSON for scripts, decisions and streamed uploads.

The token in the path is the owner's only credential, scoped to one request; it is checked on every
call (unknown: 403; request ended or expired: 410).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import JSONResponse
from fastapi.templating import Jinja2Templates
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from api import temporal
from api.deps import SettingsDep, get_engine, require_json
from api.schemas import DecisionIn, FileOut
from custody import localtime, logs
from custody.db import session_scope, write_scope
from custody.errors import (
    BadRequest,
    Conflict,
    CustodyError,
    PayloadTooLarge,
    ServiceUnavailable,
    Unprocessable,
    UnsupportedMediaType,
)
from custody.ledger.store import Ledger
from custody.media import (
    ACCEPTED_TYPES,
    SNIFF_BYTES,
    check_filename,
    declared_matches,
    size_words,
    sniff_video,
)
from custody.models import (
    Agency,
    Camera,
    Case,
    Evidence,
    FootageRequest,
    RequestStatus,
    Upload,
    UploadState,
    new_id,
)
from custody.services import requests as svc
from custody.services import retention, uploads
from custody.settings import Settings
from custody.timeutil import rfc3339
from storage.evidence import EvidenceStore, MultipartWriter, object_key
from workflows.requests import ActorInput, DecisionInput

router = APIRouter(tags=["consent"])
templates = Jinja2Templates(directory=str(Path(__file__).resolve().parent.parent / "templates"))
EngineDep = Annotated[Engine, Depends(get_engine)]
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


def _open(engine: Engine, token: str) -> tuple[FootageRequest, str, Case, Camera | None]:
    req, token_id, case, camera, _ = _open_named(engine, token)
    return req, token_id, case, camera


def _open_named(engine: Engine, token: str) -> tuple[FootageRequest, str, Case, Camera | None, str]:
    """The token's request, case and camera, and the asking agency's full name."""
    with Session(engine, expire_on_commit=False) as session:
        req, token_id = svc.request_for_token(session=session, raw=token)
        case = session.get(Case, req.case_id)
        camera = session.get(Camera, req.camera_id)
        assert case is not None
        agency = session.get(Agency, case.agency)
        return req, token_id, case, camera, agency.name if agency else case.agency


def _ledger(request: Request) -> Ledger:
    ledger: Ledger = request.app.state.ledger
    return ledger


@router.get("/consent/{token}", response_model=None)
async def consent_page(token: str, request: Request, engine: EngineDep, settings: SettingsDep) -> Any:
    """The request in plain words (HTML for a phone), or JSON with `Accept: application/json`."""
    wants_json = "application/json" in request.headers.get("accept", "")
    try:
        req, _, case, camera, agency_name = await asyncio.to_thread(_open_named, engine, token)
    except CustodyError as exc:
        if wants_json:
            raise
        return templates.TemplateResponse(
            request, "consent_closed.html", {"message": exc.message}, status_code=exc.status
        )
    facts = {
        "request_id": req.id,
        "case_title": None,  # case titles can hold investigative detail: not shown to owners
        "agency": case.agency,
        "window_start": rfc3339(req.window_start),
        "window_end": rfc3339(req.window_end),
        "status": req.status,
        "expires_at": rfc3339(req.expires_at) if req.expires_at else None,
        "max_file_bytes": settings.max_file_bytes,
        "accepted_types": sorted(ACCEPTED_TYPES),
        "files_complete": req.files_complete,
        "terms_version": settings.consent_terms_version,
    }
    if wants_json:
        return JSONResponse(facts)
    tz = settings.tz
    shown = {
        "agency_name": agency_name,
        "program": settings.program_name,
        "reference": case.reference,
        "window": localtime.window(req.window_start, req.window_end, tz),
        "expires": localtime.when(req.expires_at, tz) if req.expires_at else None,
        "max_size": size_words(settings.max_file_bytes),
        "site": settings.base_url,
        "terms_version": settings.consent_terms_version,
    }
    return templates.TemplateResponse(
        request,
        "consent.html",
        {"facts": facts, "shown": shown, "camera_label": camera.label if camera else "", "req": req},
    )


#: The status an answer leads to: the same answer sent again finds it and gets the same reply.
SAME_ANSWER = {"consent": RequestStatus.consented, "decline": RequestStatus.declined}


@router.post("/consent/{token}/decision", dependencies=[Depends(require_json)])
async def decide(token: str, body: DecisionIn, request: Request, engine: EngineDep) -> dict[str, str]:
    req, token_id, _, _ = await asyncio.to_thread(_open, engine, token)
    logs.bind(request_id=req.id, case_id=req.case_id)  # the owner's request, in the log (ids only)
    if req.status == SAME_ANSWER[body.decision]:  # sent again after it was recorded: same outcome
        return {"status": str(req.status)}
    if req.status not in (RequestStatus.requested, RequestStatus.notified):
        raise Conflict(f"This request was already answered ({req.status}).")
    status = await temporal.decide(request, req.id, DecisionInput(body.decision, token_id))
    return {"status": status}


@router.put("/consent/{token}/files/{filename}", status_code=201, response_model=FileOut)
async def upload(
    token: str,
    filename: str,
    request: Request,
    engine: EngineDep,
    settings: SettingsDep,
    x_content_sha256: Annotated[str | None, Header()] = None,
    # Set by the HTTP client, not by people: not a parameter of the document.
    content_length: Annotated[int | None, Header(include_in_schema=False)] = None,
) -> FileOut:
    """Stream one file into the evidence store, hashing it on the way. Nothing is stored unless the
    whole file arrives, is a video, fits the limit, and matches `X-Content-SHA256` when given."""
    req, token_id, _, _ = await asyncio.to_thread(_open, engine, token)
    logs.bind(request_id=req.id, case_id=req.case_id)  # the owner's request, in the log (ids only)
    refusal = uploads.takes_files(req)
    if refusal is not None:
        raise Conflict(refusal)
    problem = check_filename(filename)
    if problem:
        raise Unprocessable(
            f"File name refused: {problem}. Rename the file and try again.", code="invalid_filename"
        )
    expected = x_content_sha256.strip().lower() if x_content_sha256 else None
    if expected is not None and not SHA256_RE.match(expected):
        raise BadRequest("X-Content-SHA256 must be 64 lowercase hex characters.", code="invalid_sha256")
    limit = settings.max_file_bytes
    if content_length is not None and content_length > limit:
        raise PayloadTooLarge(f"The file is {content_length} bytes; the limit is {limit} bytes.")
    store: EvidenceStore = request.app.state.store
    if content_length is not None:
        store.check_room(content_length)
    declared = request.headers.get("content-type", "application/octet-stream")

    evidence_id = new_id()
    key = object_key(case_id=req.case_id, request_id=req.id, evidence_id=evidence_id)
    writer: MultipartWriter | None = None
    head = bytearray()
    pending: asyncio.Task[None] | None = None
    loop = asyncio.get_running_loop()
    beat_at = loop.time()

    async def open_writer() -> MultipartWriter:
        found = sniff_video(bytes(head[:SNIFF_BYTES]))
        if found is None:
            raise UnsupportedMediaType(
                f"{filename} is not a video file this program accepts ({', '.join(sorted(ACCEPTED_TYPES))})."
            )
        if not declared_matches(declared, found):
            raise UnsupportedMediaType(f"The file was sent as {declared!r} but its content is {found}.")
        keep = await asyncio.to_thread(_retention, engine, settings, req.case_id)
        opened = await asyncio.to_thread(MultipartWriter, store.client, store.bucket, key, found, keep.until)
        row = Upload(
            id=evidence_id, request_id=req.id, filename=filename, object_key=key,
            upload_id=opened.upload_id, content_type=found, actor=token_id, state=UploadState.streaming,
            retain_until=keep.until, retention_days=keep.days,
        )  # fmt: skip
        try:
            await asyncio.to_thread(uploads.begin, engine=engine, upload=row)
        except BaseException:
            await asyncio.to_thread(opened.abort)
            raise
        return opened

    async def ship(part: bytes) -> None:
        nonlocal pending, beat_at
        if pending is not None:
            await pending
        assert writer is not None
        pending = asyncio.create_task(asyncio.to_thread(writer.upload_part, part))
        if loop.time() - beat_at >= settings.upload_heartbeat_s:
            beat_at = loop.time()
            await asyncio.to_thread(uploads.heartbeat, engine=engine, upload_id=evidence_id)

    try:
        async for chunk in request.stream():
            if not chunk:
                continue
            if writer is None:
                head += chunk
                if len(head) > limit:
                    raise PayloadTooLarge(f"The file is larger than the limit of {limit} bytes.")
                if len(head) < SNIFF_BYTES:
                    continue
                writer = await open_writer()
                chunk, head = bytes(head), bytearray()
            part = writer.add(chunk)
            if writer.size > limit:
                raise PayloadTooLarge(f"The file is larger than the limit of {limit} bytes.")
            if part is not None:
                await ship(part)
        if writer is None:
            if not head:
                raise BadRequest("The file is empty; choose the video file again.", code="empty_file")
            writer = await open_writer()
            writer.add(bytes(head))
        digest = writer.hasher.hexdigest()
        if expected is not None and digest != expected:
            raise Unprocessable(
                f"The file arrived with SHA-256 {digest}, not {expected} as announced; it was not stored. "
                "Send it again.",
                code="sha256_mismatch",
            )
        rest = writer.take_rest()
        if rest is not None:
            await ship(rest)
        if pending is not None:
            await pending
        await asyncio.to_thread(
            uploads.completing, engine=engine, upload_id=evidence_id, size=writer.size, sha256=digest
        )
    except BaseException as exc:
        if pending is not None:
            pending.cancel()
        if writer is not None:
            with contextlib.suppress(Exception):  # the sweeper aborts what this could not
                await asyncio.to_thread(writer.abort)
                await asyncio.to_thread(
                    uploads.aborted, engine=engine, upload_id=evidence_id, detail=_why_aborted(exc)
                )
        raise store.explain(exc) from exc
    try:
        stored = await asyncio.to_thread(writer.complete)
    except Exception as exc:  # the object may or may not exist now: the sweeper settles it
        raise store.explain(exc) from exc
    ev = await _record(request, evidence_id, stored.version_id)
    return FileOut(file_id=ev.id, sha256=ev.sha256, size=ev.size)


def _retention(engine: Engine, settings: Settings, case_id: str) -> retention.Retain:
    with session_scope(engine) as session:
        return retention.for_case(session=session, settings=settings, case_id=case_id)


def _why_aborted(exc: BaseException) -> str:
    if isinstance(exc, CustodyError):
        return f"refused: {exc.message}"
    return f"the upload stopped before the whole file arrived ({type(exc).__name__}); nothing was kept"


async def _record(request: Request, evidence_id: str, version_id: str | None) -> Evidence:
    """Make the stored object evidence, trying a few times over ~10 s (a busy database); if that still
    fails the object is safe and named by its upload row, and the worker's sweeper records it."""
    engine: Engine = request.app.state.engine
    delay = 0.5
    for attempt in range(4):
        try:
            return await asyncio.to_thread(
                uploads.record,
                engine=engine,
                ledger=_ledger(request),
                upload_id=evidence_id,
                version_id=version_id,
            )
        except (SQLAlchemyError, OSError):
            if attempt == 3:
                break
            await asyncio.sleep(delay)
            delay *= 2
    raise ServiceUnavailable(
        "Your file arrived and is stored safely, but custody could not finish recording it yet; it "
        "will within a few minutes. You do not need to send it again.",
        retry_after_s=60,
        code="recording_delayed",
    )


@router.post("/consent/{token}/complete", status_code=202)
async def complete(token: str, request: Request, engine: EngineDep) -> dict[str, str]:
    """The owner has sent every file: verification and attachment follow."""

    stale_s: float = request.app.state.settings.upload_stale_s

    def mark() -> tuple[FootageRequest, str]:
        # Under the write lock with the request row locked: an upload cannot start or land between
        # the check that none is arriving and the mark (custody/services/uploads.py).
        with write_scope(engine) as session:
            req, token_id = svc.request_for_token(session=session, raw=token)
            req = uploads.lock_request(session, req.id)
            refusal = uploads.complete_refusal(session=session, request_id=req.id, stale_s=stale_s)
            if refusal is not None:
                raise Conflict(refusal, code="upload_in_progress")
            svc.mark_files_complete(session=session, req=req)
            return req, token_id

    def unmark() -> None:
        with write_scope(engine) as session:
            row = uploads.lock_request(session, req.id)
            if row.status == RequestStatus.consented:
                row.files_complete = False
                session.add(row)

    req, token_id = await asyncio.to_thread(mark)
    logs.bind(request_id=req.id, case_id=req.case_id)
    try:
        status = await temporal.complete(request, req.id, ActorInput(token_id))
    except CustodyError:
        await asyncio.to_thread(unmark)  # the workflow refused or is down: the owner may try again
        raise
    return {"status": status}
