"""Request and response shapes. Requests forbid unknown fields: a typo is an error, not a silent drop."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_serializer

from custody.timeutil import rfc3339


class Strict(BaseModel):
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


class OwnerIn(Strict):
    name: str = Field(min_length=1, max_length=200)
    email: str = Field(min_length=3, max_length=254)
    phone: str | None = Field(default=None, max_length=32)


class OwnerOut(Out):
    id: str
    name: str
    email: str
    phone: str | None
    registration_consent_at: datetime
    created_at: datetime


class CameraIn(Strict):
    owner_id: str = Field(max_length=36)
    label: str = Field(min_length=1, max_length=200)
    lat: float
    lon: float
    kind: Literal["registered", "integrated"]
    pull_url: str | None = Field(default=None, max_length=2048)


class CameraPatch(Strict):
    label: str | None = Field(default=None, min_length=1, max_length=200)
    lat: float | None = None
    lon: float | None = None
    kind: Literal["registered", "integrated"] | None = None
    pull_url: str | None = Field(default=None, max_length=2048)


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
    status: Literal["ok", "degraded"]
    components: dict[str, ComponentHealth]


class CaseIn(Strict):
    title: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=10_000)


class CaseOut(Out):
    id: str
    title: str
    description: str
    agency: str
    created_by: str
    created_at: datetime


class ShareIn(Strict):
    agency: str = Field(min_length=1, max_length=32)
    username: str | None = Field(default=None, max_length=64, description="Only this user of the agency")
    expires_at: datetime
    reason: str = Field(default="", max_length=500)


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


class AlertIn(Strict):
    lat: float
    lon: float
    radius_m: float
    window_start: datetime
    window_end: datetime
    description: str = Field(default="", max_length=5000)


class CancelIn(Strict):
    reason: str = Field(default="", max_length=500)


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


class DecisionIn(Strict):
    decision: Literal["consent", "decline"]


class FileOut(BaseModel):
    file_id: str
    sha256: str
    size: int
