"""The owner's consent link: a page for people, JSON for scripts, decisions and streamed uploads.

The token in the path is the owner's only credential, scoped to one request; it is checked on every
call (unknown: 403; request ended or expired: 410).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator
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
)
from custody.ledger.store import Ledger
from custody.media import (
    ACCEPTED_TYPES,
    check_filename,
    size_words,
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
from storage.evidence import EvidenceStore, MultipartWriter, StoredObject, object_key
from storage.pipeline import Pipeline, apump
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
    keep = await asyncio.to_thread(retention_for, engine, settings, req.case_id)
    pipe = Pipeline(
        store.client,
        store.bucket,
        key,
        limit=limit,
        name=filename,
        declared=declared,
        expected_sha256=expected,
        retain_until=keep.until,
    )
    stored = await stream_file(
        request,
        pipe,
        request.stream(),
        upload=Upload(
            id=evidence_id, request_id=req.id, filename=filename, object_key=key, upload_id="",
            content_type="", actor=token_id, state=UploadState.streaming,
            retain_until=keep.until, retention_days=keep.days,
        ),
    )  # fmt: skip
    ev = await _record(request, evidence_id, stored.version_id)
    return FileOut(file_id=ev.id, sha256=ev.sha256, size=ev.size)


async def stream_file(
    request: Request, pipe: Pipeline, stream: AsyncIterator[bytes], *, upload: Upload
) -> StoredObject:
    """The whole file from one stream into the store: the Upload row is written when its multipart
    upload opens (custody/services/uploads.py), heartbeats while parts ship, and ends `completing`
    just before the object is made, or `aborted` with the multipart upload on any refusal."""
    engine: Engine = request.app.state.engine
    settings = request.app.state.settings
    store: EvidenceStore = request.app.state.store
    beat = _Heartbeat(engine, upload.id, settings.upload_heartbeat_s)

    def on_open(writer: MultipartWriter) -> None:
        upload.upload_id, upload.content_type = writer.upload_id, pipe.content_type or ""
        uploads.begin(engine=engine, upload=upload)

    try:
        await apump(pipe, stream, on_open=on_open, on_part=beat)
        await asyncio.to_thread(
            uploads.completing, engine=engine, upload_id=upload.id, size=pipe.size, sha256=pipe.digest
        )
    except BaseException as exc:
        if pipe.writer is not None:
            with contextlib.suppress(Exception):  # the sweeper aborts what this could not
                await asyncio.to_thread(pipe.abort)
                await asyncio.to_thread(
                    uploads.aborted, engine=engine, upload_id=upload.id, detail=_why_aborted(exc)
                )
        raise store.explain(exc) from exc
    try:
        return await asyncio.to_thread(pipe.complete)
    except Exception as exc:  # the object may or may not exist now: the sweeper settles it
        raise store.explain(exc) from exc


class _Heartbeat:
    """Called after each part (in a thread): the Upload row's heartbeat, at most every `every_s`."""

    def __init__(self, engine: Engine, upload_id: str, every_s: float) -> None:
        self.engine, self.upload_id, self.every_s = engine, upload_id, every_s
        self.at = time.monotonic()

    def __call__(self, _size: int) -> None:
        if time.monotonic() - self.at >= self.every_s:
            self.at = time.monotonic()
            uploads.heartbeat(engine=self.engine, upload_id=self.upload_id)


def retention_for(engine: Engine, settings: Settings, case_id: str) -> retention.Retain:
    """The retention class a new object of this case is created with (custody/retention.py)."""
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
