"""Tables of the domain (SQLModel). Schema changes go through Alembic migrations in `migrations/`.

Why SQLModel: one class is both the table and a typed object the services return. API input/output
shapes live in `api/schemas.py`, so what is stored and what is exposed can differ.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from custody.agencies import HOME_AGENCY
from custody.timeutil import UtcDateTime, utcnow


def new_id() -> str:
    return str(uuid.uuid4())


class Role(StrEnum):
    investigator = "investigator"
    prosecutor = "prosecutor"
    auditor = "auditor"
    admin = "admin"


class CameraKind(StrEnum):
    registered = "registered"  # owner is asked for footage, consents per request
    integrated = "integrated"  # business opted in fully: footage is pulled without owner action


class Agency(SQLModel, table=True):
    __tablename__ = "agencies"

    code: str = Field(primary_key=True, max_length=32)
    name: str = Field(max_length=200)


class User(SQLModel, table=True):
    __tablename__ = "users"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    username: str = Field(max_length=64, sa_column_kwargs={"unique": True}, index=False)
    password_hash: str = Field(max_length=255)
    role: str = Field(max_length=16)
    agency: str = Field(foreign_key="agencies.code", max_length=32)
    active: bool = Field(default=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    #: How people read this user (console, reports); empty for users made before names existed.
    full_name: str = Field(default="", max_length=200)
    #: Job title, printed under the custodian's name on a report's certification ("Detective").
    title: str = Field(default="", max_length=100)

    @property
    def display_name(self) -> str:
        return self.full_name or self.username


class LoginFailure(SQLModel, table=True):
    """One failed login. Counted per username and per client address to throttle guessing."""

    __tablename__ = "login_failures"
    __table_args__ = (
        sa.Index("ix_login_failures_username_at", "username", "at"),
        sa.Index("ix_login_failures_client_at", "client", "at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=64)
    client: str = Field(max_length=64)
    at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class Owner(SQLModel, table=True):
    """A resident or business that registered cameras with the program."""

    __tablename__ = "owners"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    name: str = Field(max_length=200)
    email: str = Field(max_length=254, sa_column_kwargs={"unique": True})
    phone: str | None = Field(default=None, max_length=32)
    registration_consent_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    created_by: str | None = Field(default=None, max_length=36)  # staff user; None when self-registered
    business_name: str | None = Field(default=None, max_length=200)
    #: The program terms the owner accepted (registration_consent_at says when). Staff-registered
    #: owners accepted them on paper: "staff-recorded".
    terms_version: str = Field(default="staff-recorded", max_length=32)
    #: When the owner proved the email address is theirs. Until then nothing of theirs is searchable.
    confirmed_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    #: When the owner left the program: every camera left search at that moment.
    withdrawn_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    #: The agency whose staff registered the owner: only its staff (and program administrators) see
    #: the owner's contact details. Self-registered owners belong to the program's home agency.
    #: (No foreign key: SQLite cannot add one to a table with rows; the value is a user's agency.)
    agency: str = Field(default=HOME_AGENCY, max_length=32, index=True)


class Camera(SQLModel, table=True):
    """A registered or integrated camera. `lat_cell` feeds the (lat_cell, lon) search index."""

    __tablename__ = "cameras"
    __table_args__ = (sa.Index("ix_cameras_cell_lon", "lat_cell", "lon"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    owner_id: str = Field(foreign_key="owners.id", max_length=36, index=True)
    label: str = Field(max_length=200)
    lat: float
    lon: float
    lat_cell: int
    kind: str = Field(max_length=16)
    pull_url: str | None = Field(default=None, max_length=2048)
    active: bool = Field(default=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    view_description: str = Field(default="", max_length=500)  # what the camera sees
    #: Recorder clock minus true time, in seconds, when the owner knows it (a clock 90 s fast: 90).
    clock_offset_s: int | None = Field(default=None)
    #: Integrated cameras are pulled without the owner only once staff approved them; until then an
    #: alert asks the owner like any registered camera. Staff-registered cameras are approved at once.
    approved_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    approved_by: str | None = Field(default=None, max_length=36)
    #: The agency that registered the camera: only it (and program administrators) may change or
    #: deactivate it. Every agency may search it and ask it for footage.
    agency: str = Field(default=HOME_AGENCY, max_length=32)


class LedgerEntry(SQLModel, table=True):
    """One custody event, exactly as hashed (RFC 8785 bytes). Append-only: PostgreSQL refuses UPDATE
    and DELETE on this table with a trigger (migration 0002)."""

    __tablename__ = "ledger_entries"

    idx: int = Field(primary_key=True, sa_type=sa.BigInteger, sa_column_kwargs={"autoincrement": False})
    idempotency_key: str = Field(max_length=200, sa_column_kwargs={"unique": True})
    entry: str = Field(sa_type=sa.Text)
    leaf_hash: bytes = Field(sa_type=sa.LargeBinary(32))
    border: bytes = Field(sa_type=sa.LargeBinary)
    type: str = Field(max_length=32)
    case_id: str | None = Field(default=None, max_length=36, index=True)
    request_id: str | None = Field(default=None, max_length=36, index=True)
    evidence_id: str | None = Field(default=None, max_length=36, index=True)
    #: The entry's `at` (the time it was appended), indexed for the auditor's time-range filter.
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime, index=True)
    #: Copies of the entry's `actor` and `outcome` (migration 0010 backfilled them from the stored
    #: entries), indexed for the auditor's filters. The hashed entry stays the record.
    actor: str | None = Field(default=None, max_length=200)
    outcome: str | None = Field(default=None, max_length=16)

    #: The auditor's filters (custody/services/audit.py) read newest first: each index ends in idx, so
    #: "this type (or user, or outcome), newest 100" walks one index backwards and stops.
    __table_args__ = (
        sa.Index("ix_ledger_entries_type_idx", "type", "idx"),
        sa.Index("ix_ledger_entries_type_created_at", "type", "created_at"),  # a type within a time range
        sa.Index("ix_ledger_entries_actor_idx", "actor", "idx"),
        sa.Index("ix_ledger_entries_outcome_idx", "outcome", "idx"),
    )


class LedgerNode(SQLModel, table=True):
    """The hash of one complete subtree: (level, idx) covers leaves [idx * 2**level, (idx+1) * 2**level).
    Every complete subtree is kept, so appends are O(log n) and proofs never rebuild the tree."""

    __tablename__ = "ledger_nodes"

    level: int = Field(primary_key=True, sa_type=sa.SmallInteger, sa_column_kwargs={"autoincrement": False})
    idx: int = Field(primary_key=True, sa_type=sa.BigInteger, sa_column_kwargs={"autoincrement": False})
    hash: bytes = Field(sa_type=sa.LargeBinary(32))


class LedgerCheckpoint(SQLModel, table=True):
    """Every signed checkpoint ever issued, so an auditor can ask for consistency between any two."""

    __tablename__ = "ledger_checkpoints"

    tree_size: int = Field(primary_key=True, sa_type=sa.BigInteger, sa_column_kwargs={"autoincrement": False})
    root: bytes = Field(sa_type=sa.LargeBinary(32))
    note: str = Field(sa_type=sa.Text)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class RequestStatus(StrEnum):
    requested = "requested"  # created; the notice (or the pull) is on its way
    notified = "notified"
    consented = "consented"
    declined = "declined"
    expired = "expired"
    cancelled = "cancelled"
    uploaded = "uploaded"
    verified = "verified"
    rejected = "rejected"
    attached = "attached"
    failed = "failed"


TERMINAL_STATUSES = frozenset(
    {RequestStatus.declined, RequestStatus.expired, RequestStatus.cancelled, RequestStatus.rejected,
     RequestStatus.attached, RequestStatus.failed}
)  # fmt: skip


class Case(SQLModel, table=True):
    __tablename__ = "cases"
    __table_args__ = (sa.Index("ux_cases_agency_cad_number", "agency", "cad_number", unique=True),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    title: str = Field(max_length=200)
    description: str = Field(default="", sa_type=sa.Text)
    agency: str = Field(foreign_key="agencies.code", max_length=32, index=True)
    created_by: str = Field(max_length=36)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    #: The crime center's incident number when the case was opened by `POST /incidents`: unique per
    #: agency, so the same CAD incident sent again finds this case instead of opening a second one.
    cad_number: str | None = Field(default=None, max_length=64)
    #: What the CAD system said of the incident (migration 0010), kept apart from the free-text
    #: description so the console can offer the investigator the alert it suggests (a draft):
    #: where, when, what, and which integration sent it.
    cad_type: str | None = Field(default=None, max_length=100)
    cad_lat: float | None = None
    cad_lon: float | None = None
    cad_occurred_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    cad_integration_id: str | None = Field(default=None, max_length=36)
    #: What kind of case (e.g. "homicide"): picks its evidence's retention class
    #: (CUSTODY_RETENTION_CLASSES); none keeps the default retention.
    category: str | None = Field(default=None, max_length=64)

    @property
    def reference(self) -> str:
        """A short reference people can quote on the phone ("MPD-3F2A91C0"); the id stays the key."""
        return f"{self.agency}-{self.id[:8].upper()}"


class Incident(SQLModel, table=True):
    """One alert: where, how far, which time window of footage."""

    __tablename__ = "incidents"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    case_id: str = Field(foreign_key="cases.id", max_length=36, index=True)
    lat: float
    lon: float
    radius_m: float
    window_start: datetime = Field(sa_type=UtcDateTime)
    window_end: datetime = Field(sa_type=UtcDateTime)
    description: str = Field(default="", sa_type=sa.Text)
    created_by: str = Field(max_length=36)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    #: The outbox mark: when the workflow service took the incident's workflow (null: not yet; the
    #: worker's relay starts it). See migration 0006.
    dispatched_at: datetime | None = Field(default=None, sa_type=UtcDateTime, index=True)


class FootageRequest(SQLModel, table=True):
    """One camera asked for one window of footage. Its life runs in a Temporal workflow whose id is
    derived from this row's id; this row mirrors the status for queries."""

    __tablename__ = "footage_requests"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    case_id: str = Field(foreign_key="cases.id", max_length=36, index=True)
    incident_id: str = Field(foreign_key="incidents.id", max_length=36, index=True)
    camera_id: str = Field(foreign_key="cameras.id", max_length=36, index=True)
    kind: str = Field(max_length=16)
    status: str = Field(max_length=16, default=RequestStatus.requested)
    window_start: datetime = Field(sa_type=UtcDateTime)
    window_end: datetime = Field(sa_type=UtcDateTime)
    expires_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    files_complete: bool = Field(default=False)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class ConsentToken(SQLModel, table=True):
    """A consent link's token, stored only as its SHA-256. Each notice and reminder carries a fresh
    one; every token of a request works until the request ends or expires."""

    __tablename__ = "consent_tokens"

    token_hash: str = Field(primary_key=True, max_length=64)
    token_id: str = Field(max_length=32)  # public name of the token, the ledger's actor for the owner
    request_id: str = Field(foreign_key="footage_requests.id", max_length=36, index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class RequestEvent(SQLModel, table=True):
    """The history of a request as investigators see it (status changes and reminders)."""

    __tablename__ = "request_events"
    __table_args__ = (sa.UniqueConstraint("request_id", "key", name="uq_request_events_key"),)

    id: int | None = Field(default=None, primary_key=True)
    request_id: str = Field(foreign_key="footage_requests.id", max_length=36, index=True)
    key: str = Field(max_length=100)  # idempotency: one row per step even when retried
    at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    status: str = Field(max_length=16)
    detail: str = Field(default="", max_length=500)


class Evidence(SQLModel, table=True):
    """One stored footage file. Bytes live in the WORM bucket under a key built from ids."""

    __tablename__ = "evidence"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    request_id: str = Field(foreign_key="footage_requests.id", max_length=36, index=True)
    case_id: str = Field(foreign_key="cases.id", max_length=36, index=True)
    camera_id: str = Field(foreign_key="cameras.id", max_length=36)
    filename: str = Field(max_length=255)
    object_key: str = Field(max_length=300)
    version_id: str | None = Field(default=None, max_length=200)
    size: int = Field(sa_type=sa.BigInteger)
    sha256: str = Field(max_length=64)
    content_type: str = Field(max_length=100)
    status: str = Field(max_length=16, default="received")  # received | verified | rejected | attached
    received_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    verified_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    attached_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    detail: str = Field(default="", max_length=500)
    #: The working copy (custody/workcopy.py): a browser-playable H.264/AAC MP4 made from the master,
    #: under its own key; state "made" | "not_made" (detail says why) | None (not tried yet).
    working_copy_key: str | None = Field(default=None, max_length=320)
    working_copy_sha256: str | None = Field(default=None, max_length=64)
    working_copy_size: int | None = Field(default=None, sa_type=sa.BigInteger)
    working_copy_content_type: str | None = Field(default=None, max_length=100)
    working_copy_state: str | None = Field(default=None, max_length=16)
    working_copy_detail: str = Field(default="", max_length=500)
    #: ffprobe's container facts of the master; recorded_at is the recorder's stated creation time.
    duration_s: float | None = Field(default=None)
    video_codec: str | None = Field(default=None, max_length=32)
    audio_codec: str | None = Field(default=None, max_length=32)
    recorded_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    #: The COMPLIANCE retain-until date set on this exact object version (custody/retention.py).
    retain_until: datetime | None = Field(default=None, sa_type=UtcDateTime)
    #: The retention class's days `retain_until` was set with (the longest it has had).
    retention_days: int | None = Field(default=None)
    #: An S3 object-lock legal hold is on this version (placed by a prosecutor or admin).
    legal_hold: bool = Field(default=False)
    #: None, then `pending` (past retention, not on hold: awaiting an admin), `approved` (the worker
    #: deletes the version), and the row's status becomes `disposed` once the bytes are gone.
    disposition: str | None = Field(default=None, max_length=16)
    disposition_by: str | None = Field(default=None, max_length=36)
    #: What allows custody to hold this file (custody/basis.py): `consent` (the owner's
    #: `consent_given` entry) or `integration_agreement` (the camera's `camera_approved` entry),
    #: and that entry's ledger index. Every path that records evidence sets both.
    basis_type: str | None = Field(default=None, max_length=32)
    basis_ledger_index: int | None = Field(default=None, sa_type=sa.BigInteger)

    @property
    def basis(self) -> dict[str, str | int] | None:
        """`{type, ledger_index}` of the basis, or None (rows recorded before bases were)."""
        if self.basis_type is None or self.basis_ledger_index is None:
            return None
        return {"type": self.basis_type, "ledger_index": self.basis_ledger_index}


class UploadState(StrEnum):
    streaming = "streaming"  # bytes are arriving; the S3 multipart upload is open
    completing = "completing"  # every byte arrived and was hashed; the object is being completed
    recorded = "recorded"  # an evidence row and its `file_received` entry exist
    aborted = "aborted"  # stopped before the object existed: nothing was kept


LIVE_UPLOAD_STATES = frozenset({UploadState.streaming, UploadState.completing})


class Upload(SQLModel, table=True):
    """An owner's file from the moment its multipart upload exists until it is evidence or nothing.

    Why: the bytes go to a WORM bucket before the database hears of them, so a row written first is
    what lets a crash, a full pool or a cancel never leave an object without custody. The sweeper
    (activities/maintenance.py) finishes or aborts uploads whose heartbeat stopped."""

    __tablename__ = "uploads"

    id: str = Field(primary_key=True, max_length=36)  # the evidence id the file will have
    request_id: str = Field(foreign_key="footage_requests.id", max_length=36, index=True)
    filename: str = Field(max_length=255)
    object_key: str = Field(max_length=300)
    upload_id: str = Field(max_length=300)
    content_type: str = Field(max_length=100)
    actor: str = Field(max_length=64)
    state: str = Field(max_length=16, index=True)
    size: int = Field(default=0, sa_type=sa.BigInteger)
    sha256: str = Field(default="", max_length=64)
    version_id: str | None = Field(default=None, max_length=200)
    started_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    heartbeat_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    detail: str = Field(default="", max_length=500)
    #: The retain-until the multipart upload was created with (the object gets it as it completes).
    retain_until: datetime | None = Field(default=None, sa_type=UtcDateTime)
    retention_days: int | None = Field(default=None)


class SentEmail(SQLModel, table=True):
    """What was mailed, keyed by the step that mailed it: a retried activity sends nothing twice."""

    __tablename__ = "sent_emails"

    key: str = Field(primary_key=True, max_length=150)
    request_id: str = Field(max_length=36, index=True)
    message_id: str = Field(max_length=300)
    sent_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class OwnerToken(SQLModel, table=True):
    """A single-use emailed link for a resident: confirm the address, or sign in. Stored as a hash."""

    __tablename__ = "owner_tokens"

    token_hash: str = Field(primary_key=True, max_length=64)
    owner_id: str = Field(foreign_key="owners.id", max_length=36, index=True)
    purpose: str = Field(max_length=16)  # confirm | login
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    expires_at: datetime = Field(sa_type=UtcDateTime)
    used_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class SignupAttempt(SQLModel, table=True):
    """One sign-up or sign-in-link request, counted per address and per client to throttle abuse."""

    __tablename__ = "signup_attempts"
    __table_args__ = (
        sa.Index("ix_signup_attempts_email_at", "email", "at"),
        sa.Index("ix_signup_attempts_client_at", "client", "at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=254)
    client: str = Field(max_length=64)
    at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class RateEvent(SQLModel, table=True):
    """One use of a rate-limited action (such as generating a custody report) by one subject, counted
    in a sliding window. In the database, not in memory, so every API process counts the same uses."""

    __tablename__ = "rate_events"
    __table_args__ = (sa.Index("ix_rate_events_action_subject_at", "action", "subject", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    action: str = Field(max_length=32)
    subject: str = Field(max_length=64)
    at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class CaseShare(SQLModel, table=True):
    """Read-only access to a case for another agency (or one user of it) until `expires_at`, unless
    revoked first. Granting and revoking are ledger events; the row is never deleted."""

    __tablename__ = "case_shares"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    case_id: str = Field(foreign_key="cases.id", max_length=36, index=True)
    agency: str = Field(foreign_key="agencies.code", max_length=32, index=True)
    user_id: str | None = Field(default=None, foreign_key="users.id", max_length=36)
    reason: str = Field(default="", max_length=500)
    created_by: str = Field(max_length=36)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    expires_at: datetime = Field(sa_type=UtcDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    revoked_by: str | None = Field(default=None, max_length=36)


class WebSession(SQLModel, table=True):
    """A browser session of the web console (staff) or of a resident. The cookie holds a random
    token; only its hash is stored, with the session's CSRF token, so logging out ends it at once."""

    __tablename__ = "web_sessions"

    token_hash: str = Field(primary_key=True, max_length=64)
    kind: str = Field(max_length=16)  # staff | resident
    subject_id: str = Field(max_length=36, index=True)  # users.id or owners.id
    csrf: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    expires_at: datetime = Field(sa_type=UtcDateTime)


class Integration(SQLModel, table=True):
    """A CAD/RTCC system allowed to post incidents for one agency (`custody integrations create`).

    The secret is stored as issued, not hashed: verifying an HMAC needs the key itself, and the
    project has no key-management service to encrypt it under (a key beside the database would add
    nothing). Whoever can read this table can sign incidents for the agency; the table is only ever
    read to verify a signature and the secret is never logged or put in a ledger entry."""

    __tablename__ = "integrations"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    name: str = Field(max_length=200)
    agency: str = Field(foreign_key="agencies.code", max_length=32, index=True)
    secret: str = Field(max_length=128)
    disabled: bool = False
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class IncidentSignature(SQLModel, table=True):
    """A signature already accepted (or refused after a valid HMAC) within the 300 s window. In the
    database, so a request replayed against another API replica is refused there too; rows older
    than the window are deleted as new ones arrive."""

    __tablename__ = "incident_signatures"

    signature: str = Field(primary_key=True, max_length=64)
    integration_id: str = Field(max_length=36)
    seen_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime, index=True)


class TusUpload(SQLModel, table=True):
    """A resumable (tus 1.0) owner upload's checkpoint, beside its `Upload` row (same id).

    Why in the database: any API replica may get the next PATCH. `offset` is the last byte custody
    holds durably: the bytes of `parts` (in the S3 multipart upload) plus `tail` (under 5 MiB, too
    short for an S3 part, kept here until more bytes arrive). `hash_state` is the SHA-256 state of
    the parts' bytes (storage/pipeline.py ResumableSha256). A PATCH holds `lease` until `lease_until`
    so two connections never write one upload at once."""

    __tablename__ = "tus_uploads"

    id: str = Field(primary_key=True, foreign_key="uploads.id", max_length=36)
    length: int = Field(sa_type=sa.BigInteger)
    offset: int = Field(default=0, sa_type=sa.BigInteger)
    expected_sha256: str = Field(default="", max_length=64)
    declared_type: str = Field(default="", max_length=100)
    parts: str = Field(default="[]", sa_type=sa.Text)  # JSON [[number, etag, size], ...]
    tail: bytes = Field(default=b"", sa_type=sa.LargeBinary)
    hash_state: bytes = Field(default=b"", sa_type=sa.LargeBinary)
    lease: str = Field(default="", max_length=36)
    lease_until: datetime | None = Field(default=None, sa_type=UtcDateTime)
    expires_at: datetime = Field(sa_type=UtcDateTime, index=True)
