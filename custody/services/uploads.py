"""An owner's upload from its first byte to evidence (or to nothing kept), in short transactions.

Why a row before the bytes: the evidence bucket is WORM, so an object that completes there can never
be taken back. Each upload is written down (`Upload`, state `streaming`) as soon as its multipart
upload exists and before it can complete, so whatever fails afterwards (the database, the API
process, a cancel arriving mid-stream) the row names the object and ends it one of two ways:

- `recorded`: an evidence row and its `file_received` ledger entry exist. A file that arrives
  after its request stopped taking files (cancelled, expired) is still recorded, as `rejected`,
  with a `file_rejected` entry: it is kept under retention and never attached.
- `aborted`: the multipart upload was aborted before the object existed; nothing was kept.

Requests and uploads are read under a write lock (`custody.db.write_scope` and FOR UPDATE on the
request row) so a file's state always agrees with its request's: `complete` waits for live uploads
(it refuses with 409 while one streams) and a request's end rejects files it never verified
(`reject_unverified`, called by the workflow's status step).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from custody import basis
from custody.db import write_scope
from custody.errors import Conflict, Gone
from custody.ledger.entries import CustodyEvent, EventType, file_facts
from custody.ledger.store import Ledger
from custody.models import (
    LIVE_UPLOAD_STATES,
    Evidence,
    FootageRequest,
    RequestStatus,
    TusUpload,
    Upload,
    UploadState,
)
from custody.services import retention
from custody.services.cases import agency_of
from custody.services.requests import load_request
from custody.timeutil import utcnow

CANCELLED_MID_UPLOAD = (
    "This request was {status} while your file was arriving, so it was not kept. Nothing more is "
    "needed from you."
)


def lock_request(session: Session, request_id: str) -> FootageRequest:
    """The request row, locked until the transaction ends (FOR UPDATE; SQLite: the write lock)."""
    req = session.exec(
        select(FootageRequest).where(FootageRequest.id == request_id).with_for_update()
    ).first()
    if req is None:
        return load_request(session=session, request_id=request_id)  # raises NotFound
    return req


def takes_files(req: FootageRequest) -> str | None:
    """Why this request takes no more files, or None when it does."""
    if req.status != RequestStatus.consented:
        return f"Files can be sent only after consenting; this request is {req.status}."
    if req.files_complete:
        return "You already sent every file for this request; nothing more is needed."
    return None


def begin(*, engine: Engine, upload: Upload) -> None:
    """Write the upload down (state `streaming`) if its request still takes files; else refuse."""
    with write_scope(engine) as session:
        req = lock_request(session, upload.request_id)
        refusal = takes_files(req)
        if refusal is not None:
            raise Conflict(refusal)
        upload.state = UploadState.streaming
        upload.started_at = upload.heartbeat_at = utcnow()
        session.add(upload)


def heartbeat(*, engine: Engine, upload_id: str) -> None:
    with write_scope(engine) as session:
        row = session.get(Upload, upload_id)
        if row is not None and row.state in LIVE_UPLOAD_STATES:
            row.heartbeat_at = utcnow()
            session.add(row)


def completing(*, engine: Engine, upload_id: str, size: int, sha256: str) -> None:
    """Every byte arrived and hashed: mark the upload `completing` (its object is about to exist), or
    raise Gone when its request stopped taking files meanwhile (the caller aborts: nothing kept)."""
    with write_scope(engine) as session:
        row = session.get(Upload, upload_id)
        if row is None or row.state != UploadState.streaming:
            raise Conflict("This upload is no longer open; send the file again.")
        req = lock_request(session, row.request_id)
        if req.status != RequestStatus.consented or req.files_complete:
            row.state = UploadState.aborted
            row.detail = f"the request was {req.status} while the file arrived; nothing was kept"
            session.add(row)
            session.commit()
            raise Gone(CANCELLED_MID_UPLOAD.format(status=req.status))
        row.state, row.size, row.sha256 = UploadState.completing, size, sha256
        row.heartbeat_at = utcnow()
        session.add(row)


def aborted(*, engine: Engine, upload_id: str, detail: str) -> None:
    with write_scope(engine) as session:
        row = session.get(Upload, upload_id)
        if row is not None and row.state in LIVE_UPLOAD_STATES:
            row.state, row.detail = UploadState.aborted, detail[:500]
            session.add(row)


def record(*, engine: Engine, ledger: Ledger, upload_id: str, version_id: str | None) -> Evidence:
    """The object exists: make it evidence and write its ledger entries. Idempotent (the API's retry
    and the sweeper may both run it): the evidence row and the entries are keyed by the upload.
    The file's basis is its request's `consent_given` entry: without one, NoBasis (nothing recorded)."""
    with write_scope(engine) as session:
        row = session.get(Upload, upload_id)
        if row is None:
            raise Conflict(f"No upload {upload_id}.")
        request_id = row.request_id
    consent = basis.of_consent(ledger, request_id)
    with write_scope(engine) as session:
        row = session.get(Upload, upload_id)
        if row is None:
            raise Conflict(f"No upload {upload_id}.")
        ev = session.get(Evidence, upload_id)
        req = lock_request(session, row.request_id)
        agency = agency_of(session=session, case_id=req.case_id)
        if ev is None:
            refusal = takes_files(req)
            ev = Evidence(
                id=row.id,
                request_id=req.id,
                case_id=req.case_id,
                camera_id=req.camera_id,
                filename=row.filename,
                object_key=row.object_key,
                version_id=version_id if version_id is not None else row.version_id,
                size=row.size,
                sha256=row.sha256,
                content_type=row.content_type,
                retain_until=row.retain_until,
                retention_days=row.retention_days,
                status="received" if refusal is None else "rejected",
                detail="" if refusal is None else (
                    f"arrived after the request was {req.status}; kept under retention, never attached"
                ),
            )  # fmt: skip
            basis.assign(ev, consent)
            session.add(ev)
        row.version_id = ev.version_id
        session.add(row)
        actor, camera_id = row.actor, req.camera_id
    events = [
        (
            f"{ev.id}:received",
            CustodyEvent(
                EventType.file_received,
                actor=actor,
                agency=agency,
                case_id=ev.case_id,
                request_id=ev.request_id,
                evidence_id=ev.id,
                sha256=ev.sha256,
                detail=f"{ev.size} bytes, {ev.content_type}, uploaded by the owner",
                facts=file_facts(
                    filename=ev.filename,
                    size=ev.size,
                    content_type=ev.content_type,
                    camera_id=camera_id,
                    basis_index=basis.require(ev).ledger_index,
                ),
            ),
        )
    ]
    if ev.retain_until is not None:
        events.append(retention.retention_set_event(ev, agency))
    if ev.status == "rejected":
        events.append(_rejected_event(ev, agency))
    ledger.append(events)
    with write_scope(engine) as session:
        row = session.get(Upload, upload_id)
        if row is not None and row.state != UploadState.recorded:
            row.state = UploadState.recorded
            session.add(row)
    return ev


def _rejected_event(ev: Evidence, agency: str) -> tuple[str, CustodyEvent]:
    return (
        f"{ev.id}:rejected",
        CustodyEvent(
            EventType.file_rejected,
            actor="custody-workflow",
            agency=agency,
            case_id=ev.case_id,
            request_id=ev.request_id,
            evidence_id=ev.id,
            sha256=ev.sha256,
            detail=ev.detail,
        ),
    )


def reject_unverified(*, engine: Engine, ledger: Ledger, request_id: str) -> int:
    """A request that ended without attaching (cancelled, expired) keeps no file in `received`:
    each becomes `rejected` with a reason and a `file_rejected` entry. Idempotent. Returns how many."""
    with write_scope(engine) as session:
        req = lock_request(session, request_id)
        agency = agency_of(session=session, case_id=req.case_id)
        rows = list(
            session.exec(
                select(Evidence).where(Evidence.request_id == request_id, Evidence.status == "received")
            ).all()
        )
        for ev in rows:
            ev.status = "rejected"
            ev.detail = f"never verified or attached: the request was {req.status}"
            session.add(ev)
        rejected = [_rejected_event(ev, agency) for ev in rows]
    if rejected:
        ledger.append(rejected)
    return len(rejected)


def live(*, session: Session, request_id: str, stale_s: float) -> list[Upload]:
    """Uploads of a request still arriving (heard from within `stale_s`)."""
    since = utcnow() - timedelta(seconds=stale_s)
    stmt = select(Upload).where(
        Upload.request_id == request_id,
        col(Upload.state).in_([str(s) for s in LIVE_UPLOAD_STATES]),
        col(Upload.heartbeat_at) >= since,
    )
    return list(session.exec(stmt).all())


def stale(*, session: Session, before: datetime, limit: int = 100) -> list[Upload]:
    """Uploads not heard from since `before`: their API died or lost the database (the sweeper's work)."""
    # A resumable upload between connections is quiet, not dead: stale only once it expired, or its
    # request stopped taking files (cancelled, expired, Done pressed): then it keeps no bytes.
    resumable = (
        select(TusUpload.id)
        .join(Upload, col(Upload.id) == col(TusUpload.id))
        .join(FootageRequest, col(FootageRequest.id) == col(Upload.request_id))
        .where(
            col(TusUpload.expires_at) > utcnow(),
            col(FootageRequest.status) == str(RequestStatus.consented),
            col(FootageRequest.files_complete).is_(False),
        )
    )
    stmt = (
        select(Upload)
        .where(col(Upload.state).in_([str(s) for s in LIVE_UPLOAD_STATES]), col(Upload.heartbeat_at) < before)
        .where(~(col(Upload.id).in_(resumable) & (col(Upload.state) == str(UploadState.streaming))))
        .order_by(col(Upload.heartbeat_at))
        .limit(limit)
    )
    return list(session.exec(stmt).all())


def open_upload_ids(*, session: Session) -> set[str]:
    """S3 multipart upload ids of uploads still streaming (the sweeper must not abort these)."""
    stmt = select(Upload.upload_id).where(col(Upload.state).in_([str(s) for s in LIVE_UPLOAD_STATES]))
    return set(session.exec(stmt).all())


def complete_refusal(*, session: Session, request_id: str, stale_s: float) -> str | None:
    """`complete` waits for files still arriving: the owner presses Done after the last one lands."""
    arriving = live(session=session, request_id=request_id, stale_s=stale_s)
    if arriving:
        names = ", ".join(sorted(u.filename for u in arriving))
        return f"A file is still arriving ({names}); wait until it finishes, then press Done again."
    return None


def cancel_refusal(*, session: Session, request_id: str, stale_s: float) -> str | None:
    """A cancel waits only for a file being stored this very moment (seconds); files still streaming
    are refused when they finish (`completing` raises Gone), so a slow upload never blocks a cancel."""
    storing = [
        u
        for u in live(session=session, request_id=request_id, stale_s=stale_s)
        if u.state == UploadState.completing
    ]
    if storing:
        return "An owner's file is being stored right now; try the cancel again in a few seconds."
    return None
