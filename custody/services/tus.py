"""Resumable owner uploads (tus 1.0): the durable checkpoint every API replica reads and writes.

An upload is two rows with one id: the `Upload` every owner's file has (custody/services/uploads.py:
`streaming` until it is evidence or aborted; the sweeper's view) and a `TusUpload` holding where the
upload stands:

- `offset`: the last byte custody holds durably = bytes in the S3 multipart upload's parts + the
  `tail` kept in this row. It is what HEAD answers, so a client resumes exactly there.
- `parts`: (number, ETag, size) of every part in S3. Parts are 16 MiB while a connection lasts;
  when a connection ends (finished or cut) the rest becomes one more part if S3 takes it as a middle
  part (>= 5 MiB), otherwise it is kept here as `tail` (under 5 MiB) until the next PATCH.
- `hash_state`: the SHA-256 state of the parts' bytes (storage/pipeline.py ResumableSha256), so the
  hash of the whole file is known before the object is made and a mismatch is refused with nothing
  kept, whichever replica gets the last byte.

Why not a local spool file or a temporary object: a spool is on one replica's disk (another replica
cannot resume from it, and a replaced container loses it); the evidence bucket is WORM, so a
temporary object there could not be deleted. A tail under 5 MiB per upload in the database is
small, shared and transactional with the offset that names it.

A PATCH holds a lease (`lease`, `lease_until`, renewed at each checkpoint): a second connection
for the same upload gets 423 (tus clients retry) until the first one has written its checkpoint,
and every checkpoint is compare-and-set on the lease, so a connection that lost it writes nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session

from custody.db import write_scope
from custody.errors import Conflict, Gone, NotFound
from custody.models import TusUpload, Upload, UploadState
from custody.services.uploads import lock_request, takes_files
from custody.timeutil import utcnow

Parts = list[tuple[int, str, int]]


@dataclass(frozen=True)
class Checkpoint:
    """What a PATCH starts from (a copy: no session attached)."""

    upload_id: str  # custody's id (= the evidence id it will have)
    request_id: str
    filename: str
    object_key: str
    s3_upload_id: str
    content_type: str
    state: str
    length: int
    offset: int
    expected_sha256: str
    declared_type: str
    parts: Parts
    tail: bytes
    hash_state: bytes
    #: The COMPLIANCE retain-until the object is created with (decided when the upload began).
    retain_until: datetime | None = None


def create(*, engine: Engine, upload: Upload, tus: TusUpload) -> None:
    """Write a new upload down (`streaming`, no bytes yet) if its request still takes files."""
    with write_scope(engine) as session:
        req = lock_request(session, upload.request_id)
        refusal = takes_files(req)
        if refusal is not None:
            raise Conflict(refusal)
        upload.state = UploadState.streaming
        upload.started_at = upload.heartbeat_at = utcnow()
        session.add(upload)
        session.flush()
        session.add(tus)


def _rows(session: Session, request_id: str, upload_id: str) -> tuple[Upload, TusUpload]:
    up = session.get(Upload, upload_id)
    tus = session.get(TusUpload, upload_id)
    if up is None or tus is None or up.request_id != request_id:
        raise NotFound("No such upload for this link.")
    return up, tus


def _copy(up: Upload, tus: TusUpload) -> Checkpoint:
    return Checkpoint(
        upload_id=up.id, request_id=up.request_id, filename=up.filename, object_key=up.object_key,
        s3_upload_id=up.upload_id, content_type=up.content_type, state=up.state, length=tus.length,
        offset=tus.offset, expected_sha256=tus.expected_sha256, declared_type=tus.declared_type,
        parts=[(int(n), str(e), int(s)) for n, e, s in json.loads(tus.parts)], tail=bytes(tus.tail),
        hash_state=bytes(tus.hash_state), retain_until=up.retain_until,
    )  # fmt: skip


def status(*, engine: Engine, request_id: str, upload_id: str) -> Checkpoint:
    """Where an upload stands (HEAD). An aborted upload is gone (410): the client starts again."""
    with Session(engine) as session:
        up, tus = _rows(session, request_id, upload_id)
        if up.state == UploadState.aborted:
            raise Gone(f"This upload ended without keeping anything ({up.detail or 'aborted'}).")
        return _copy(up, tus)


def acquire(
    *,
    engine: Engine,
    request_id: str,
    upload_id: str,
    offset: int,
    lease: str,
    lease_s: float,
    expiry_s: float,
) -> Checkpoint:
    """Take the upload for one PATCH at `offset` (409 if custody holds another offset, 423 while
    another connection holds it, 410 once it ended)."""
    now = utcnow()
    with write_scope(engine) as session:
        up, tus = _rows(session, request_id, upload_id)
        if up.state == UploadState.aborted:
            raise Gone(f"This upload ended without keeping anything ({up.detail or 'aborted'}).")
        if up.state != UploadState.streaming:
            raise Conflict("This upload is complete; nothing more is needed.", code="upload_complete")
        if tus.lease and tus.lease_until is not None and tus.lease_until > now:
            raise Conflict(
                "Another connection is sending this file right now; try again in a few seconds.",
                code="upload_locked",
                status=423,
            )
        if offset != tus.offset:
            raise Conflict(
                f"Custody holds {tus.offset} bytes of this file, not {offset}; resume from {tus.offset}.",
                code="offset_mismatch",
            )
        tus.lease, tus.lease_until = lease, now + timedelta(seconds=lease_s)
        tus.expires_at = now + timedelta(seconds=expiry_s)
        up.heartbeat_at = now
        session.add(tus)
        session.add(up)
        return _copy(up, tus)


def checkpoint(
    *,
    engine: Engine,
    upload_id: str,
    lease: str,
    lease_s: float,
    offset: int,
    parts: Parts,
    tail: bytes,
    hash_state: bytes,
    s3_upload_id: str | None = None,
    content_type: str | None = None,
    release: bool = False,
) -> None:
    """Write down what custody now holds durably, if this connection still holds the lease."""
    now = utcnow()
    with write_scope(engine) as session:
        tus = session.get(TusUpload, upload_id)
        up = session.get(Upload, upload_id)
        if tus is None or up is None or tus.lease != lease:
            raise Conflict("Another connection took this upload over; resume it again.", code="upload_locked")
        tus.offset, tus.parts, tus.tail, tus.hash_state = offset, json.dumps(parts), tail, hash_state
        if release:
            tus.lease, tus.lease_until = "", None
        else:
            tus.lease_until = now + timedelta(seconds=lease_s)
        if s3_upload_id is not None:
            up.upload_id = s3_upload_id
        if content_type is not None:
            up.content_type = content_type
        up.heartbeat_at = now
        session.add(tus)
        session.add(up)


def release(*, engine: Engine, upload_id: str, lease: str) -> None:
    with write_scope(engine) as session:
        tus = session.get(TusUpload, upload_id)
        if tus is not None and tus.lease == lease:
            tus.lease, tus.lease_until = "", None
            session.add(tus)


def finished(*, engine: Engine, upload_id: str, length: int) -> None:
    """The object exists and is evidence: the checkpoint keeps no bytes any more."""
    with write_scope(engine) as session:
        tus = session.get(TusUpload, upload_id)
        if tus is not None:
            tus.offset, tus.tail, tus.hash_state, tus.lease, tus.lease_until = length, b"", b"", "", None
            session.add(tus)


def for_termination(*, engine: Engine, request_id: str, upload_id: str) -> Checkpoint:
    """The upload to end (DELETE): 423 while a connection holds it, 409 once it is evidence."""
    now = utcnow()
    with write_scope(engine) as session:
        up, tus = _rows(session, request_id, upload_id)
        if up.state == UploadState.aborted:
            raise Gone("This upload already ended; nothing was kept.")
        if up.state != UploadState.streaming:
            raise Conflict("This file is already stored as evidence; it cannot be withdrawn here.")
        if tus.lease and tus.lease_until is not None and tus.lease_until > now:
            raise Conflict(
                "This file is being sent right now; try again in a few seconds.",
                code="upload_locked",
                status=423,
            )
        return _copy(up, tus)


def discard(*, engine: Engine, upload_id: str) -> None:
    """An ended upload (refused, withdrawn, expired) keeps no bytes in its checkpoint either."""
    with write_scope(engine) as session:
        tus = session.get(TusUpload, upload_id)
        if tus is not None:
            tus.tail, tus.hash_state, tus.lease, tus.lease_until = b"", b"", "", None
            session.add(tus)
