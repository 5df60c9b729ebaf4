"""Resumable owner uploads: tus 1.0 (core, creation, termination) at `/consent/{token}/uploads`.

For big files over a phone's network: a dropped connection or a reloaded page resumes from the last
byte custody holds (HEAD), not from the start. The bytes take the same road as the streamed PUT
(storage/pipeline.py: sniffed, limited, hashed, one S3 multipart upload), and the same refusals
happen before the object exists: too big at creation (413), not a video at the first bytes (415),
a hash other than the one announced at the last byte (422). Where an upload stands between
connections, and why it is kept that way, is in custody/services/tus.py.

Protocol notes: `Upload-Length` is required (no deferred length); `Upload-Metadata` carries
`filename` (required), `filetype` and `sha256` (64 hex digits), base64 as tus says; the last PATCH
answers, besides `Upload-Offset`, `X-Custody-File-Id` and `X-Content-SHA256` of the stored file.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request, Response
from sqlalchemy.engine import Engine

from api.deps import SettingsDep, get_engine
from api.routes.consent import SHA256_RE, _open, _record, _why_aborted, retention_for
from custody import logs
from custody.errors import (
    BadRequest,
    Conflict,
    CustodyError,
    PayloadTooLarge,
    Unprocessable,
    UnsupportedMediaType,
)
from custody.media import check_filename
from custody.models import TusUpload, Upload, UploadState, new_id
from custody.services import tus as svc
from custody.services import uploads
from custody.settings import Settings
from custody.timeutil import utcnow
from storage.evidence import EvidenceStore, MultipartWriter, object_key
from storage.pipeline import Pipeline, ResumableSha256, apump

router = APIRouter(tags=["consent"])
EngineDep = Annotated[Engine, Depends(get_engine)]
TUS_VERSION = "1.0.0"
TUS_HEADERS = {"Tus-Resumable": TUS_VERSION, "Cache-Control": "no-store"}


def _tus_headers(**more: str) -> dict[str, str]:
    return {**TUS_HEADERS, **more}


#: Every tus request but OPTIONS names the protocol version it speaks.
TusResumable = Annotated[
    str | None,
    Header(description="The tus version the client speaks: 1.0.0", json_schema_extra={"enum": [TUS_VERSION]}),
]


def _check_version(got: str | None) -> None:
    if got != TUS_VERSION:
        raise CustodyError(
            f"Send Tus-Resumable: {TUS_VERSION} (this server speaks tus {TUS_VERSION} only).",
            code="tus_version",
            status=412,
        )


def _lease_s(settings: Settings) -> float:
    """How long a connection holds an upload without a checkpoint (each 16 MiB part renews it)."""
    return max(30.0, 6 * settings.upload_heartbeat_s)


def parse_metadata(raw: str | None) -> dict[str, str]:
    """`Upload-Metadata`: comma-separated `key base64value` pairs (a key alone has an empty value)."""
    found: dict[str, str] = {}
    for item in (raw or "").split(","):
        item = item.strip()
        if not item:
            continue
        key, _, value = item.partition(" ")
        try:
            found[key] = base64.b64decode(value.strip(), validate=True).decode() if value.strip() else ""
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise BadRequest(f"Upload-Metadata {key!r} is not base64 text.", code="invalid_metadata") from exc
    return found


@router.options("/consent/{token}/uploads", status_code=204, response_class=Response)
async def tus_options(token: str, settings: SettingsDep) -> Response:
    """What this tus server speaks: version 1.0.0, creation and termination, the size limit."""
    return Response(
        status_code=204,
        headers={
            "Tus-Resumable": TUS_VERSION,
            "Tus-Version": TUS_VERSION,
            "Tus-Extension": "creation,termination",
            "Tus-Max-Size": str(settings.max_file_bytes),
        },
    )


@router.post("/consent/{token}/uploads", status_code=201, response_class=Response)
async def tus_create(
    token: str,
    request: Request,
    engine: EngineDep,
    settings: SettingsDep,
    upload_length: Annotated[int, Header(ge=0, description="The file's size in bytes")],
    upload_metadata: Annotated[str | None, Header()] = None,
    tus_resumable: TusResumable = None,
) -> Response:
    """Start a resumable upload of one file (`Upload-Length`, `Upload-Metadata` with `filename`,
    optional `filetype` and `sha256`). Too big: 413 now; nothing is stored until the last byte."""
    req, token_id, _, _ = await asyncio.to_thread(_open, engine, token)
    _check_version(tus_resumable)
    logs.bind(request_id=req.id, case_id=req.case_id)
    refusal = uploads.takes_files(req)
    if refusal is not None:
        raise Conflict(refusal)
    if upload_length == 0:
        raise BadRequest("The file is empty; choose the video file again.", code="empty_file")
    limit = settings.max_file_bytes
    if upload_length > limit:
        raise PayloadTooLarge(f"The file is {upload_length} bytes; the limit is {limit} bytes.")
    store: EvidenceStore = request.app.state.store
    store.check_room(upload_length)
    meta = parse_metadata(upload_metadata)
    filename = meta.get("filename", "")
    problem = check_filename(filename)
    if problem:
        raise Unprocessable(
            f"File name refused: {problem}. Rename the file and try again.", code="invalid_filename"
        )
    expected = meta.get("sha256", "").strip().lower()
    if expected and not SHA256_RE.match(expected):
        raise BadRequest("The sha256 metadata must be 64 hex characters.", code="invalid_sha256")
    evidence_id = new_id()
    keep = await asyncio.to_thread(retention_for, engine, settings, req.case_id)
    upload = Upload(
        id=evidence_id, request_id=req.id, filename=filename, upload_id="", content_type="", actor=token_id,
        object_key=object_key(case_id=req.case_id, request_id=req.id, evidence_id=evidence_id),
        state=UploadState.streaming, retain_until=keep.until, retention_days=keep.days,
    )  # fmt: skip
    row = TusUpload(
        id=evidence_id,
        length=upload_length,
        expected_sha256=expected,
        declared_type=meta.get("filetype", "")[:100],
        hash_state=ResumableSha256().state(),
        expires_at=utcnow() + timedelta(seconds=settings.tus_expiry_s),
    )
    await asyncio.to_thread(svc.create, engine=engine, upload=upload, tus=row)
    return Response(
        status_code=201,
        headers=_tus_headers(Location=f"/consent/{token}/uploads/{evidence_id}", **{"Upload-Offset": "0"}),
    )


@router.head("/consent/{token}/uploads/{upload_id}", response_class=Response)
async def tus_head(
    token: str, upload_id: str, engine: EngineDep, tus_resumable: TusResumable = None
) -> Response:
    """Where the upload stands: `Upload-Offset` is the last byte custody holds; resume from there."""
    req, _, _, _ = await asyncio.to_thread(_open, engine, token)
    _check_version(tus_resumable)
    at = await asyncio.to_thread(svc.status, engine=engine, request_id=req.id, upload_id=upload_id)
    offset = at.length if at.state in (UploadState.recorded, UploadState.completing) else at.offset
    return Response(
        status_code=200,
        headers=_tus_headers(**{"Upload-Offset": str(offset), "Upload-Length": str(at.length)}),
    )


@router.patch("/consent/{token}/uploads/{upload_id}", status_code=204, response_class=Response)
async def tus_patch(
    token: str,
    upload_id: str,
    request: Request,
    engine: EngineDep,
    settings: SettingsDep,
    upload_offset: Annotated[int, Header(ge=0, description="Where these bytes start in the file")],
    tus_resumable: TusResumable = None,
) -> Response:
    """Append the body's bytes (`Content-Type: application/offset+octet-stream`) at `Upload-Offset`
    (409 if custody holds another offset). The last byte makes
    the file evidence (the same `file_received` entry as the PUT) or refuses it, nothing kept."""
    req, _, _, _ = await asyncio.to_thread(_open, engine, token)
    _check_version(tus_resumable)
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/offset+octet-stream":
        raise UnsupportedMediaType("Send the bytes as application/offset+octet-stream.")
    logs.bind(request_id=req.id, case_id=req.case_id)
    store: EvidenceStore = request.app.state.store
    lease, lease_s = new_id(), _lease_s(settings)
    at = await asyncio.to_thread(
        svc.acquire, engine=engine, request_id=req.id, upload_id=upload_id, offset=upload_offset,
        lease=lease, lease_s=lease_s, expiry_s=settings.tus_expiry_s,
    )  # fmt: skip
    hasher = ResumableSha256(at.hash_state)
    pipe = Pipeline.resume(
        store.client, store.bucket, at.object_key, limit=at.length, content_type=at.content_type or None,
        upload_id=at.s3_upload_id, parts=at.parts, tail=at.tail, hasher=hasher,
        expected_sha256=at.expected_sha256 or None, retain_until=at.retain_until,
    )  # fmt: skip
    pipe.name, pipe.declared = at.filename, at.declared_type or "application/octet-stream"

    def save(*, release: bool, offset: int, tail: bytes, s3_upload_id: str | None = None) -> None:
        svc.checkpoint(
            engine=engine, upload_id=upload_id, lease=lease, lease_s=lease_s, offset=offset, parts=pipe.parts,
            tail=tail, hash_state=hasher.state(), s3_upload_id=s3_upload_id,
            content_type=pipe.content_type if s3_upload_id else None, release=release,
        )  # fmt: skip

    def on_open(writer: MultipartWriter) -> None:  # nothing shipped yet: what was held still is
        save(release=False, offset=at.offset, tail=at.tail, s3_upload_id=writer.upload_id)

    def on_part(_size: int) -> None:  # a part is in S3: held = the parts (the rest is in memory only)
        save(release=False, offset=pipe.shipped, tail=b"")

    def keep() -> None:  # this connection ends: held = the parts + the tail, kept in the database
        save(release=True, offset=pipe.size, tail=bytes(pipe.buffer))

    try:
        await apump(pipe, request.stream(), on_open=on_open, on_part=on_part, at_end=False)
        if pipe.size < at.length:
            await asyncio.to_thread(keep)
            return Response(status_code=204, headers=_tus_headers(**{"Upload-Offset": str(pipe.size)}))
        if pipe.writer is None:
            await asyncio.to_thread(pipe.open, on_open)
        last = await asyncio.to_thread(pipe.finish)
        if last is not None:
            await asyncio.to_thread(pipe.ship, last, hashed=True)
        await asyncio.to_thread(
            uploads.completing, engine=engine, upload_id=upload_id, size=pipe.size, sha256=pipe.digest
        )
    except BaseException as exc:
        if isinstance(exc, CustodyError) and exc.code != "upload_locked":
            # A refusal (413 beyond Upload-Length, 415 not a video, 422 hash, 410 the request ended
            # meanwhile): end the upload before its object exists, nothing kept.
            await _end(engine, pipe, upload_id, exc)
        elif not pipe.broken and not isinstance(exc, CustodyError):
            # The connection dropped (or the database or store failed between parts): keep what
            # arrived, so the client resumes from here.
            with contextlib.suppress(Exception):
                rest = pipe.flushable()
                if rest is not None:
                    await asyncio.to_thread(pipe.ship, rest)
                await asyncio.to_thread(keep)
        else:
            # A part upload failed, or another connection took over: the last checkpoint stands.
            with contextlib.suppress(Exception):
                await asyncio.to_thread(svc.release, engine=engine, upload_id=upload_id, lease=lease)
        raise store.explain(exc) from exc
    try:
        stored = await asyncio.to_thread(pipe.complete)
    except Exception as exc:  # the object may or may not exist now: the sweeper settles it
        raise store.explain(exc) from exc
    ev = await _record(request, upload_id, stored.version_id)
    await asyncio.to_thread(svc.finished, engine=engine, upload_id=upload_id, length=at.length)
    return Response(
        status_code=204,
        headers=_tus_headers(
            **{"Upload-Offset": str(at.length), "X-Custody-File-Id": ev.id, "X-Content-SHA256": ev.sha256},
        ),
    )


async def _end(engine: Engine, pipe: Pipeline, upload_id: str, exc: BaseException) -> None:
    with contextlib.suppress(Exception):  # the sweeper aborts what this could not
        await asyncio.to_thread(pipe.abort)
    with contextlib.suppress(Exception):
        await asyncio.to_thread(uploads.aborted, engine=engine, upload_id=upload_id, detail=_why_aborted(exc))
        await asyncio.to_thread(svc.discard, engine=engine, upload_id=upload_id)


@router.delete("/consent/{token}/uploads/{upload_id}", status_code=204, response_class=Response)
async def tus_terminate(
    token: str, upload_id: str, request: Request, engine: EngineDep, tus_resumable: TusResumable = None
) -> Response:
    """Withdraw an unfinished upload: its multipart upload is aborted, nothing is kept."""
    req, _, _, _ = await asyncio.to_thread(_open, engine, token)
    _check_version(tus_resumable)
    at = await asyncio.to_thread(svc.for_termination, engine=engine, request_id=req.id, upload_id=upload_id)
    store: EvidenceStore = request.app.state.store
    if at.s3_upload_id:
        writer = MultipartWriter.resume(store.client, store.bucket, at.object_key, at.s3_upload_id, [])
        await asyncio.to_thread(writer.abort)
    await asyncio.to_thread(
        uploads.aborted, engine=engine, upload_id=upload_id, detail="withdrawn by the owner; nothing was kept"
    )
    await asyncio.to_thread(svc.discard, engine=engine, upload_id=upload_id)
    return Response(status_code=204, headers=_tus_headers())
