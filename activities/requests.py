"""Activities of the footage-request workflows: thin, idempotent side effects.

They are synchronous (the worker runs them in a thread pool, where heartbeats work) and each takes
one dataclass and is safe to run twice: history rows, ledger entries and sent mail are
keyed by the step, so a retry after a crash finds the first run's work and does nothing more.
Video bytes never pass through Temporal: only ids and object keys do.
"""

from __future__ import annotations

import html
import smtplib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from minio import Minio
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.email import EmailInput, SmtpConfig, build_message, send_message
from custody import basis, localtime, recorder
from custody.db import session_scope
from custody.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from custody.ledger.entries import CustodyEvent, EventType, consent_facts, file_facts
from custody.ledger.store import Ledger
from custody.mail import MailAuthError, MailTlsError
from custody.models import (
    TERMINAL_STATUSES,
    Agency,
    Camera,
    Case,
    Evidence,
    FootageRequest,
    Owner,
    RequestStatus,
    SentEmail,
    new_id,
)
from custody.services import requests as svc
from custody.services import retention, uploads
from custody.services.cases import agency_of
from custody.settings import Settings
from custody.timeutil import utcnow
from storage.evidence import StoredObject, hash_object, object_key
from storage.pipeline import Pipeline, pump

# --- inputs and outputs -----------------------------------------------------------------------


@dataclass(frozen=True)
class IncidentRef:
    incident_id: str


@dataclass(frozen=True)
class RequestRef:
    request_id: str
    kind: str
    case_id: str


@dataclass(frozen=True)
class NoticeInput:
    request_id: str
    expires_at: str  # RFC 3339, computed by the workflow from workflow.now()
    number: int = 0  # 0 = first notice, 1.. = reminders


@dataclass(frozen=True)
class StepInput:
    request_id: str
    key: str  # the step's idempotency key within the request
    status: str | None  # new status, or None for a history note only
    event: str | None  # ledger event type, or None
    detail: str = ""
    actor: str = "custody-workflow"


@dataclass(frozen=True)
class RequestInputRef:
    request_id: str


@dataclass(frozen=True)
class VerifyResult:
    verified: int
    rejected: int


# --- the activities ---------------------------------------------------------------------------


def _mail_trouble(exc: Exception) -> str:
    """Why a notice is stuck, for the investigator reading the request's history (details in the log)."""
    if isinstance(exc, MailAuthError):
        return "the mail server refused custody's user name or password: an administrator must fix them"
    if isinstance(exc, MailTlsError):
        return "the secure connection to the mail server failed: an administrator must check its certificate"
    return f"the mail server is not answering: {type(exc).__name__}"


class RequestActivities:
    def __init__(self, settings: Settings, engine: Engine, ledger: Ledger, s3: Minio) -> None:
        self.settings = settings
        self.engine = engine
        self.ledger = ledger
        self.s3 = s3
        # CUSTODY_SMTP_TIMEOUT_S is validated below the activity's start-to-close timeout.
        self.smtp = SmtpConfig.from_settings(settings)

    @activity.defn(name="list_incident_requests")
    def list_incident_requests(self, ref: IncidentRef) -> list[RequestRef]:
        with session_scope(self.engine) as session:
            rows = session.exec(
                select(FootageRequest).where(FootageRequest.incident_id == ref.incident_id)
            ).all()
            return [RequestRef(r.id, r.kind, r.case_id) for r in rows]

    @activity.defn(name="record_step")
    def record_step(self, step: StepInput) -> bool:
        """Change a request's status (or add a history note) and append its ledger event, once.

        `consent_given` is appended before the request becomes `consented` and binds the terms version
        and the consent link's id: files can arrive only once it exists, and each names it as its
        basis (custody/basis.py)."""
        if step.event == EventType.consent_given:
            self._record_consent(step)
        with session_scope(self.engine) as session:
            req = svc.load_request(session=session, request_id=step.request_id)
            if step.status is None:
                changed = svc.note(
                    session=session, request_id=step.request_id, key=step.key, detail=step.detail
                )
            else:
                changed = svc.transition(
                    session=session,
                    request_id=step.request_id,
                    status=step.status,
                    key=step.key,
                    detail=step.detail,
                )
            agency = agency_of(session=session, case_id=req.case_id)
            case_id, camera_id = req.case_id, req.camera_id
        if step.event is not None and step.event != EventType.consent_given:
            self.ledger.record(
                CustodyEvent(
                    EventType(step.event),
                    actor=step.actor,
                    agency=agency,
                    case_id=case_id,
                    request_id=step.request_id,
                    detail=step.detail or f"camera {camera_id}",
                ),
                idempotency_key=f"{step.request_id}:{step.key}",
            )
        if step.status in (RequestStatus.cancelled, RequestStatus.expired):
            # A request that ends unattached keeps no file waiting in `received` (one may have
            # landed as it ended): each is rejected with its reason and ledger entry.
            uploads.reject_unverified(engine=self.engine, ledger=self.ledger, request_id=step.request_id)
        return changed

    def _record_consent(self, step: StepInput) -> None:
        with session_scope(self.engine) as session:
            req = svc.load_request(session=session, request_id=step.request_id)
            agency = agency_of(session=session, case_id=req.case_id)
            case_id, camera_id = req.case_id, req.camera_id
        self.ledger.record(
            CustodyEvent(
                EventType.consent_given,
                actor=step.actor,
                agency=agency,
                case_id=case_id,
                request_id=step.request_id,
                detail=step.detail or f"camera {camera_id}",
                # The owner's link id is the actor: the consent token's public id, never the token.
                facts=consent_facts(terms_version=self.settings.consent_terms_version, link_id=step.actor),
            ),
            idempotency_key=f"{step.request_id}:{step.key}",
        )

    @activity.defn(name="send_notice")
    def send_notice(self, notice: NoticeInput) -> str:
        """Email the owner a consent link (a fresh token) once per notice number; record what was sent."""
        key = f"{notice.request_id}:notice:{notice.number}"
        # Three short transactions, none held across the SMTP send: a stalled mail server must not
        # hold the database's write lock. The token is committed before its link is mailed, so a
        # link that went out always works; a crash between the send and its record resends (a
        # second working link), which is the one duplicate left, and only on a crash.
        with session_scope(self.engine) as session:
            sent = session.get(SentEmail, key)
            if sent is not None:
                return sent.message_id
            to = _addressee(session, notice.request_id)
            if to is None:
                raise ApplicationError(
                    f"request {notice.request_id} has no camera, owner or case", non_retryable=True
                )
            raw, _token_id = svc.issue_token(
                session=session, request_id=to.req.id, expires_at=datetime.fromisoformat(notice.expires_at)
            )
            msg_in = _notice_email(
                settings=self.settings,
                key=key,
                to=to,
                expires_at=to.req.expires_at or datetime.fromisoformat(notice.expires_at),
                link=f"{self.settings.base_url}/consent/{raw}",
                reminder=notice.number,
            )
            request_id = to.req.id
        try:
            return self._send_once(key, request_id, msg_in)
        except (OSError, smtplib.SMTPException) as exc:
            if activity.in_activity() and activity.info().attempt >= 3:
                # Visible to the investigator: the owner has not been asked yet, and why.
                with session_scope(self.engine) as session:
                    svc.note(
                        session=session,
                        request_id=request_id,
                        key=f"notice-{notice.number}-delayed",
                        detail=f"the email to the owner could not be sent yet ({_mail_trouble(exc)}); "
                        "custody keeps trying until the request expires",
                    )
            raise

    @activity.defn(name="send_cancel_notice")
    def send_cancel_notice(self, ref: RequestInputRef) -> str:
        """Tell an owner who was asked that nothing more is needed, once. Owners who were never
        emailed (no first notice) or who left the program get nothing."""
        key = f"{ref.request_id}:cancelled"
        with session_scope(self.engine) as session:
            sent = session.get(SentEmail, key)
            if sent is not None:
                return sent.message_id
            if session.get(SentEmail, f"{ref.request_id}:notice:0") is None:
                return ""
            to = _addressee(session, ref.request_id)
            if to is None or to.owner.withdrawn_at is not None:
                return ""
            msg_in = cancel_email(settings=self.settings, key=key, to=to)
            request_id = to.req.id
        return self._send_once(key, request_id, msg_in)

    def _send_once(self, key: str, request_id: str, msg_in: EmailInput) -> str:
        """Send with no transaction open, then record the send under `key`: a retried activity finds it."""
        msg = build_message(msg_in, self.smtp.sender)
        send_message(self.smtp, msg)
        with session_scope(self.engine) as session:
            if session.get(SentEmail, key) is None:
                session.add(SentEmail(key=key, request_id=request_id, message_id=str(msg["Message-ID"])))
        return str(msg["Message-ID"])

    @activity.defn(name="verify_files")
    def verify_files(self, ref: RequestInputRef) -> VerifyResult:
        """Re-read every received file from storage; its SHA-256 must equal the hash taken while it
        streamed in. A mismatch rejects the file (and records it); it is never attached."""
        request_id = ref.request_id
        with session_scope(self.engine) as session:
            files = svc.evidence_of_request(session=session, request_id=request_id)
            req = svc.load_request(session=session, request_id=request_id)
            agency = agency_of(session=session, case_id=req.case_id)
        verified = rejected = 0
        for ev in files:
            if ev.status in ("verified", "attached"):
                verified += 1
                continue
            if ev.status == "rejected":
                rejected += 1
                continue
            activity.heartbeat(ev.id)
            try:
                digest, size = hash_object(
                    self.s3,
                    bucket=self.settings.s3_bucket,
                    key=ev.object_key,
                    version_id=ev.version_id,
                    progress=_heartbeat,
                )
                ok = digest == ev.sha256 and size == ev.size
                detail = (
                    ""
                    if ok
                    else f"stored object hashes to {digest} ({size} bytes), not {ev.sha256} ({ev.size})"
                )
            except Exception as exc:  # a missing or unreadable object is a rejection, not a retry loop
                if "NoSuchKey" not in str(exc) and "NoSuchVersion" not in str(exc):
                    raise
                ok, detail = False, f"stored object is missing: {exc}"
            with session_scope(self.engine) as session:
                row = session.get(Evidence, ev.id)
                assert row is not None
                row.status = "verified" if ok else "rejected"
                row.verified_at = utcnow() if ok else None
                row.detail = detail[:500]
                session.add(row)
            self.ledger.record(
                CustodyEvent(
                    EventType.file_verified if ok else EventType.file_rejected,
                    actor="custody-verifier",
                    agency=agency,
                    case_id=ev.case_id,
                    request_id=request_id,
                    evidence_id=ev.id,
                    sha256=ev.sha256,
                    detail=detail or f"SHA-256 re-read from storage matches ({ev.size} bytes)",
                ),
                idempotency_key=f"{ev.id}:verify",
            )
            verified, rejected = verified + ok, rejected + (not ok)
        return VerifyResult(verified, rejected)

    @activity.defn(name="attach_evidence")
    def attach_evidence(self, ref: RequestInputRef) -> int:
        request_id = ref.request_id
        attached = []
        with session_scope(self.engine) as session:
            req = svc.load_request(session=session, request_id=request_id)
            agency = agency_of(session=session, case_id=req.case_id)
            for ev in svc.evidence_of_request(session=session, request_id=request_id):
                if ev.status == "verified":
                    basis.require(ev)  # never attached without the owner's consent or agreement
                    ev.status, ev.attached_at = "attached", utcnow()
                    session.add(ev)
                if ev.status == "attached":
                    attached.append((ev.id, ev.case_id, ev.sha256))
        for ev_id, case_id, sha in attached:
            self.ledger.record(
                CustodyEvent(
                    EventType.evidence_attached,
                    actor="custody-workflow",
                    agency=agency,
                    case_id=case_id,
                    request_id=request_id,
                    evidence_id=ev_id,
                    sha256=sha,
                    detail="attached to the case",
                ),
                idempotency_key=f"{ev_id}:attach",
            )
        return len(attached)

    @activity.defn(name="pull_integrated")
    def pull_integrated(self, ref: RequestInputRef) -> int:
        """Fetch an integrated camera's footage for the window from its pull URL into storage.

        A failed try is noted in the request's history ("try 2 of 5 failed: ...") so the investigator
        sees it while retries go on; the failure is raised as an ApplicationError whose message is the
        plain reason (custody/recorder.py) and which is non-retryable when another try cannot help.
        """
        request_id = ref.request_id
        with session_scope(self.engine) as session:
            req = svc.load_request(session=session, request_id=request_id)
            existing = svc.evidence_of_request(session=session, request_id=request_id)
            camera = session.get(Camera, req.camera_id)
            agency = agency_of(session=session, case_id=req.case_id)
            case_id, window = req.case_id, (req.window_start, req.window_end)
            keep = retention.for_case(session=session, settings=self.settings, case_id=case_id)
        if existing:
            return len(existing)
        if camera is None or not camera.pull_url:
            raise ApplicationError(f"camera of request {request_id} has no pull URL", non_retryable=True)
        try:
            agreement = basis.of_agreement(
                self.ledger, camera, terms_version=self.settings.consent_terms_version
            )
        except basis.NoBasis as exc:
            raise ApplicationError(exc.message, type="no_basis", non_retryable=True) from exc
        evidence_id = new_id()
        key = object_key(case_id=case_id, request_id=request_id, evidence_id=evidence_id)
        try:
            # Checked against CUSTODY_PULL_ALLOWED_NETWORKS again now (DNS may have changed since the
            # camera was registered) and connected to the checked address only: custody/recorder.py.
            with recorder.open_pull(
                camera.pull_url,
                start=window[0],
                end=window[1],
                allowed=self.settings.pull_networks,
                timeout_s=float(self.settings.pull_timeout_s),
                limit_bytes=self.settings.max_file_bytes,
                max_duration_s=self.settings.pull_max_duration_s,
            ) as chunks:
                stored, content_type = self._stream_to_store(key, chunks, request_id, keep.until)
        except recorder.RecorderFailure as failure:
            self._note_failed_try(request_id, failure)
            raise ApplicationError(
                failure.reason, type="recorder", non_retryable=not failure.retryable
            ) from failure
        filename = f"integrated-{camera.id[:8]}.video"
        with session_scope(self.engine) as session:
            req = svc.load_request(session=session, request_id=request_id)
            ev = svc.add_evidence(
                session=session,
                req=req,
                evidence_id=evidence_id,
                filename=filename,
                object_key=stored.key,
                version_id=stored.version_id,
                size=stored.size,
                sha256=stored.sha256,
                content_type=content_type,
                basis=agreement,
            )
            ev.retain_until, ev.retention_days = keep.until, keep.days
            session.add(ev)
            retention_entry = retention.retention_set_event(ev, agency)
        self.ledger.record(
            CustodyEvent(
                EventType.file_received,
                actor=f"camera:{camera.id}",
                agency=agency,
                case_id=case_id,
                request_id=request_id,
                evidence_id=evidence_id,
                sha256=stored.sha256,
                detail=f"pulled {stored.size} bytes from the integrated camera",
                facts=file_facts(
                    filename=filename,
                    size=stored.size,
                    content_type=content_type,
                    camera_id=camera.id,
                    basis_index=agreement.ledger_index,
                ),
            ),
            idempotency_key=f"{evidence_id}:received",
        )
        self.ledger.append([retention_entry])
        return 1

    def _note_failed_try(self, request_id: str, failure: recorder.RecorderFailure) -> None:
        """One history note per failed try, keyed by the attempt (a retried note is not doubled)."""
        info = activity.info()
        limit = info.retry_policy.maximum_attempts if info.retry_policy else 0
        of = f" of {limit}" if limit else ""
        then = "; trying again" if failure.retryable and info.attempt != limit else ""
        with session_scope(self.engine) as session:
            if svc.load_request(session=session, request_id=request_id).status in TERMINAL_STATUSES:
                return  # cancelled while this try hung: the history ends with the cancellation
            svc.note(
                session=session,
                request_id=request_id,
                key=f"pull-try-{info.attempt}",
                detail=f"try {info.attempt}{of} to pull from the recorder failed: {failure.reason}{then}",
            )

    def _stream_to_store(
        self, key: str, chunks: Iterator[bytes], request_id: str, retain_until: datetime
    ) -> tuple[StoredObject, str]:
        """Stream bytes into a new evidence object (storage/pipeline.py, as the owner's uploads do);
        abort (nothing stored) on any failure, and when the request was cancelled meanwhile (a
        cancelled request keeps no bytes)."""
        pipe = Pipeline(
            self.s3,
            self.settings.s3_bucket,
            key,
            limit=self.settings.max_file_bytes,
            retain_until=retain_until,
        )

        def before_complete() -> None:
            with session_scope(self.engine) as session:
                status = svc.load_request(session=session, request_id=request_id).status
            if status in TERMINAL_STATUSES or activity.is_cancelled():
                raise ApplicationError(
                    f"the request ended ({status}) while the footage arrived; nothing was kept",
                    non_retryable=True,
                )

        try:
            stored = pump(pipe, chunks, on_part=activity.heartbeat, before_complete=before_complete)
        except PayloadTooLarge as exc:
            raise recorder.too_large(self.settings.max_file_bytes) from exc
        except UnsupportedMediaType as exc:
            raise recorder.NOT_A_VIDEO from exc
        except BadRequest as exc:
            raise recorder.EMPTY from exc
        return stored, pipe.content_type or ""


@dataclass(frozen=True)
class Addressee:
    """The owner a request's email goes to, and what the email names: camera, case, agency."""

    req: FootageRequest
    camera: Camera
    owner: Owner
    case: Case
    agency_name: str


def _addressee(session: Session, request_id: str) -> Addressee | None:
    req = svc.load_request(session=session, request_id=request_id)
    camera = session.get(Camera, req.camera_id)
    owner = session.get(Owner, camera.owner_id) if camera else None
    case = session.get(Case, req.case_id)
    if camera is None or owner is None or case is None:
        return None
    agency = session.get(Agency, case.agency)
    return Addressee(req, camera, owner, case, agency.name if agency else case.agency)


def _heartbeat(done: int) -> None:
    activity.heartbeat(done)


def cancel_email(*, settings: Settings, key: str, to: Addressee) -> EmailInput:
    """The owner's "nothing more is needed" message. The investigator's reason is not sent: it may
    say things about the case the owner need not know."""
    owner_name, camera_label, agency_name = to.owner.name, to.camera.label, to.agency_name
    case_reference = to.case.reference
    when = localtime.window(to.req.window_start, to.req.window_end, settings.tz)
    subject = f"No longer needed: camera footage for {agency_name} (case {case_reference})"
    text = (
        f"Hello {owner_name},\n\n"
        f'{agency_name} no longer needs the recording of your camera "{camera_label}" from {when} '
        f"(case {case_reference}).\n\n"
        "You do not need to do anything. The link in the earlier message no longer works. "
        f"Thank you for taking part in the {settings.program_name}.\n"
    )
    e = html.escape
    body = (
        f"<p>Hello {e(owner_name)},</p>"
        f"<p><strong>{e(agency_name)}</strong> no longer needs the recording of your camera "
        f"<strong>&ldquo;{e(camera_label)}&rdquo;</strong> from <strong>{e(when)}</strong> "
        f"(case {e(case_reference)}).</p>"
        "<p>You do not need to do anything. The link in the earlier message no longer works.</p>"
        f"<p style='color:#555'>Thank you for taking part in the {e(settings.program_name)}.</p>"
    )
    return EmailInput(
        idempotency_key=key.replace(":", "."), to=to.owner.email, subject=subject, text=text, html=body
    )


def _notice_email(
    *,
    settings: Settings,
    key: str,
    to: Addressee,
    expires_at: datetime,
    link: str,
    reminder: int,
) -> EmailInput:
    """The consent request as the owner receives it: who asks (the agency's full name), which window
    of which camera in the program's time zone, until when, and how to check it is genuine."""
    owner_name, camera_label, agency_name = to.owner.name, to.camera.label, to.agency_name
    case_reference = to.case.reference
    when = localtime.window(to.req.window_start, to.req.window_end, settings.tz)
    until = localtime.when(expires_at, settings.tz)
    subject = ("Reminder: " if reminder else "") + f"Request for camera footage from {agency_name}"
    text = (
        f"Hello {owner_name},\n\n"
        f'{agency_name} is investigating an incident near your camera "{camera_label}" and asks whether '
        f"you will share its recording from {when}.\n\n"
        "Sharing is your choice. Open this link to consent and upload the video, or to decline:\n\n"
        f"{link}\n\n"
        f"The link works until {until}. Nobody will ask again for this request after you decline.\n\n"
        f"Case reference: {case_reference}. If you are unsure this message is genuine, do not use the "
        f"link: call {agency_name} and quote the reference.\n\n"
        f"This message was sent by the {settings.program_name}. Do not reply; the link is the only "
        "way to answer, and it works for this one request only.\n"
    )
    e = html.escape
    body = (
        f"<p>Hello {e(owner_name)},</p>"
        f"<p><strong>{e(agency_name)}</strong> is investigating an incident near your camera "
        f"<strong>&ldquo;{e(camera_label)}&rdquo;</strong> and asks whether you will share its recording "
        "from "
        f"<strong>{e(when)}</strong>.</p>"
        f'<p>Sharing is your choice. <a href="{e(link)}">Open the request</a> to consent and upload the '
        "video, or to decline.</p>"
        f"<p>The link works until <strong>{e(until)}</strong>.</p>"
        f"<p>Case reference: <strong>{e(case_reference)}</strong>. If you are unsure this message is "
        f"genuine, do not use the link: call {e(agency_name)} and quote the reference.</p>"
        f"<p style='color:#555'>Sent by the {e(settings.program_name)}. "
        "The link works for this one request only.</p>"
    )
    return EmailInput(
        idempotency_key=key.replace(":", "."), to=to.owner.email, subject=subject, text=text, html=body
    )
