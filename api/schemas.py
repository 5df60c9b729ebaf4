"""Request and response shapes. Requests forbid unknown fields: a typo is an error, not a silent drop."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    field_serializer,
    model_validator,
)

from custody.retention import CATEGORY_PATTERN
from custody.services.registry import EMAIL_PATTERN, PHONE_PATTERN, PULL_URL_PATTERN
from custody.timeutil import rfc3339

# The rules below are stated in the OpenAPI document (minimum, maximum, pattern, length), so what
# the document allows the server accepts and what it refuses the server refuses: a client, or a
# fuzzer, can trust the schema. Rules the document cannot state (one field against another, or
# against stored state) are said in the field's description.

#: One line of text for people: no control characters, and not only spaces.
LINE = r"^[^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f][^\x00-\x1f\x7f]*$"
#: Free text: line breaks and tabs allowed, other control characters (NUL among them) not.
TEXT = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"
#: A JSON number: an integer or a decimal, never `true`/`false` or a string (no coercion).
Latitude = Annotated[float, Strict(), Field(ge=-90, le=90, allow_inf_nan=False, description="WGS84 degrees")]
Longitude = Annotated[
    float, Strict(), Field(ge=-180, le=180, allow_inf_nan=False, description="WGS84 degrees")
]
RadiusM = Annotated[
    float,
    Strict(),
    Field(gt=0, allow_inf_nan=False, description="Metres, more than 0 and at most CUSTODY_MAX_RADIUS_M"),
]
#: Plausible times: custody holds footage of this century's cameras, not of year 0001 or 9999.
EARLIEST = datetime(1990, 1, 1, tzinfo=UTC)
LATEST_AHEAD = timedelta(days=1)


def plausible_time(value: datetime) -> datetime:
    """Refuse a time before 1990 or more than a day ahead: a typo or a fuzzer, never footage."""
    if value.tzinfo is None:
        return value  # the services refuse naive times with their own reason
    if value < EARLIEST:
        raise ValueError(f"{value.isoformat()} is before 1990; give the real date (RFC 3339)")
    if value > datetime.now(UTC) + LATEST_AHEAD:
        raise ValueError(f"{value.isoformat()} is more than a day ahead; give the real date (RFC 3339)")
    return value


PlausibleTime = Annotated[
    datetime,
    AfterValidator(plausible_time),
    Field(description="RFC 3339 with an offset, from 1990-01-01 to a day from now"),
]


class StrictIn(BaseModel):
    """A request body: unknown fields are refused (a typo is an error, not a silent drop)."""

    model_config = ConfigDict(extra="forbid")


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    @field_serializer("*", when_used="json")
    def _times(self, value: object) -> object:
        return rfc3339(value) if isinstance(value, datetime) else value


class TokenOut(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 (the OAuth2 token type, not a secret)
    expires_in: int


class MeOut(Out):
    id: str
    username: str
    role: str
    agency: str


class AgencyOut(Out):
    code: str
    name: str


class OwnerIn(StrictIn):
    name: str = Field(min_length=1, max_length=200, pattern=LINE)
    email: str = Field(min_length=5, max_length=254, pattern=EMAIL_PATTERN)
    phone: str | None = Field(default=None, max_length=32, pattern=PHONE_PATTERN)


class OwnerOut(Out):
    id: str
    name: str
    email: str
    phone: str | None
    registration_consent_at: datetime
    created_at: datetime


PullUrl = Annotated[
    str,
    Field(
        min_length=8,
        max_length=2048,
        pattern=PULL_URL_PATTERN,
        description="The recorder's http(s) address custody fetches footage from; integrated cameras "
        "need it. Its host must resolve to public addresses only, unless CUSTODY_PULL_ALLOWED_NETWORKS "
        "lists the network (else 422 pull_url_refused)",
    ),
]


class CameraIn(StrictIn):
    """An integrated camera needs its recorder's address (pull_url); the schema says so too."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "if": {"properties": {"kind": {"const": "integrated"}}, "required": ["kind"]},
            "then": {"required": ["pull_url"], "properties": {"pull_url": {"type": "string"}}},
        },
    )

    owner_id: str = Field(min_length=1, max_length=36, description="An owner your agency registered")
    label: str = Field(min_length=1, max_length=200, pattern=LINE)
    lat: Latitude
    lon: Longitude
    kind: Literal["registered", "integrated"]
    pull_url: PullUrl | None = None

    @model_validator(mode="after")
    def _integrated_needs_pull_url(self) -> CameraIn:
        if self.kind == "integrated" and not self.pull_url:
            raise ValueError(
                "an integrated camera needs the recorder address (pull_url) that custody fetches footage from"
            )
        return self


class CameraPatch(StrictIn):
    label: str | None = Field(default=None, min_length=1, max_length=200, pattern=LINE)
    lat: Latitude | None = None
    lon: Longitude | None = None
    kind: Literal["registered", "integrated"] | None = None
    pull_url: PullUrl | None = None


class CameraOut(Out):
    id: str
    owner_id: str
    label: str
    lat: float
    lon: float
    kind: str
    pull_url: str | None
    active: bool
    created_at: datetime
    updated_at: datetime
    view_description: str = ""
    clock_offset_s: int | None = None
    approved_at: datetime | None = None


class CameraHitOut(Out):
    id: str
    label: str
    kind: str
    lat: float
    lon: float
    distance_m: float


class ComponentHealth(BaseModel):
    ok: bool
    detail: str


class HealthOut(BaseModel):
    """ok: all up (200); degraded: only SMTP down (200); unavailable: the database, Temporal or S3
    down (503). A component down has `ok` false and a fixed short reason as `detail`."""

    status: Literal["ok", "degraded", "unavailable"]
    components: dict[str, ComponentHealth]


class LiveOut(BaseModel):
    status: Literal["ok"]


class CaseIn(StrictIn):
    title: str = Field(min_length=1, max_length=200, pattern=LINE)
    description: str = Field(default="", max_length=10_000, pattern=TEXT)
    category: str | None = Field(
        default=None,
        max_length=64,
        pattern=CATEGORY_PATTERN,
        description="Picks the retention class, e.g. 'homicide' (CUSTODY_RETENTION_CLASSES; any case)",
    )


class CaseCategoryIn(StrictIn):
    """A case's new category: its evidence's retention is extended to the class's (never shortened)."""

    category: str | None = Field(
        max_length=64, pattern=CATEGORY_PATTERN, description="e.g. 'homicide'; null: none (the default class)"
    )


class HoldIn(StrictIn):
    reason: str = Field(
        min_length=1, max_length=500, pattern=LINE, description="Why, as recorded in the ledger"
    )


class HoldOut(Out):
    id: str
    legal_hold: bool
    retain_until: datetime | None


class CaseOut(Out):
    id: str
    title: str
    description: str
    agency: str
    created_by: str
    created_at: datetime
    cad_number: str | None = Field(default=None, description="The CAD incident it was opened from, if any")
    category: str | None = Field(default=None, description="Its retention class's category, if any")


class IncidentIn(StrictIn):
    """An incident from a crime center's CAD/RTCC system (`POST /incidents`)."""

    cad_number: str = Field(min_length=1, max_length=64, pattern=LINE, description="The CAD incident number")
    type: str = Field(min_length=1, max_length=100, pattern=LINE, description="e.g. 'robbery'")
    lat: Latitude
    lon: Longitude
    occurred_at: Annotated[AwareDatetime, AfterValidator(plausible_time)] = Field(
        description="RFC 3339 with an offset"
    )
    description: str = Field(default="", max_length=4000, pattern=TEXT)


class IncidentOut(BaseModel):
    case_id: str
    alert_id: str | None = None
    status: Literal["draft", "sent"]


class ShareIn(StrictIn):
    agency: str = Field(min_length=1, max_length=32, pattern=LINE, description="Another agency's code")
    username: str | None = Field(
        default=None, min_length=1, max_length=64, pattern=LINE, description="Only this user of the agency"
    )
    expires_at: datetime = Field(
        description="RFC 3339 with an offset; in the future, at most CUSTODY_SHARE_MAX_DAYS days ahead"
    )
    reason: str = Field(default="", max_length=500, pattern=TEXT)


class ShareOut(Out):
    id: str
    case_id: str
    agency: str
    user_id: str | None
    reason: str
    created_by: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    state: str


class AlertIn(StrictIn):
    lat: Latitude
    lon: Longitude
    radius_m: RadiusM
    window_start: PlausibleTime
    window_end: Annotated[
        PlausibleTime,
        Field(
            description="RFC 3339 with an offset: after window_start, not in the future, and at most "
            "CUSTODY_MAX_WINDOW_S after window_start"
        ),
    ]
    description: str = Field(default="", max_length=5000, pattern=TEXT)


class CancelIn(StrictIn):
    reason: str = Field(default="", max_length=500, pattern=TEXT)


class AlertListItem(Out):
    id: str
    lat: float
    lon: float
    radius_m: float
    window_start: datetime
    window_end: datetime
    description: str
    created_at: datetime
    created_by: str
    created_by_name: str
    cameras_asked: int


class RequestBrief(Out):
    id: str
    camera_id: str
    status: str


class AlertOut(BaseModel):
    incident_id: str
    requests: list[RequestBrief]
    queued: bool = Field(
        False,
        description="The workflow service was not answering: the requests are recorded and start "
        "as soon as it is back. Nothing needs to be sent again.",
    )


class RequestListItem(Out):
    id: str
    camera_id: str
    kind: str
    status: str
    updated_at: datetime


class HistoryItem(Out):
    at: datetime
    status: str
    detail: str


class RequestOut(Out):
    id: str
    case_id: str
    incident_id: str
    camera_id: str
    kind: str
    status: str
    window_start: datetime
    window_end: datetime
    expires_at: datetime | None
    created_at: datetime
    updated_at: datetime
    history: list[HistoryItem]


class BasisOut(Out):
    type: Literal["consent", "integration_agreement"] = Field(
        description="consent: the owner's consent_given entry; integration_agreement: the camera's "
        "camera_approved entry"
    )
    ledger_index: int = Field(description="The basis entry's index in the ledger")


class EvidenceOut(Out):
    id: str
    request_id: str
    camera_id: str
    filename: str
    size: int
    sha256: str
    content_type: str
    received_at: datetime
    verified_at: datetime | None
    status: str
    retain_until: datetime | None = Field(
        default=None, description="COMPLIANCE retention of the object version: no deletion before it"
    )
    legal_hold: bool = Field(default=False, description="An S3 legal hold is on the object version")
    basis: BasisOut | None = Field(
        default=None, description="What allows custody to hold the file: a ledger entry (custody/basis.py)"
    )


class WorkingCopyOut(Out):
    """The browser-playable copy ffmpeg made of the master (GET /evidence/{id}/working-copy)."""

    sha256: str
    size: int
    content_type: str


class EvidenceDetailOut(EvidenceOut):
    """One evidence item (GET /evidence/{id}): the master's record, its working copy and what
    ffprobe says of the master's container."""

    working_copy: WorkingCopyOut | None = Field(
        None, description="null until made, or when ffmpeg could not read the master"
    )
    working_copy_state: Literal["made", "not_made"] | None = Field(
        None, description="null: not tried yet (it follows attachment)"
    )
    working_copy_detail: str = Field("", description="why a working copy was not made")
    duration_s: float | None = None
    video_codec: str | None = None
    audio_codec: str | None = None
    recorded_at: datetime | None = Field(
        None, description="the container's creation time: the recorder's clock, as stated in the file"
    )
    time_flag: str | None = Field(
        None,
        description="set when the stated recording time (after the camera's clock offset) falls "
        "outside the requested window",
    )


class DecisionIn(StrictIn):
    decision: Literal["consent", "decline"]


class FileOut(BaseModel):
    file_id: str
    sha256: str
    size: int
