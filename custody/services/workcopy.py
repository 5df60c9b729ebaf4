"""An evidence item's working copy and container facts, as the API, the console and reports show them."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session

from custody import workcopy
from custody.errors import Conflict
from custody.models import Camera, Evidence, FootageRequest


def flag_of(*, session: Session, ev: Evidence, tz: ZoneInfo) -> str | None:
    """The time flag of `ev` (custody/workcopy.py), from its request's window and its camera's offset."""
    if ev.recorded_at is None:
        return None
    req = session.get(FootageRequest, ev.request_id)
    camera = session.get(Camera, ev.camera_id)
    if req is None:
        return None
    return workcopy.time_flag(
        recorded_at=ev.recorded_at,
        duration_s=ev.duration_s,
        clock_offset_s=camera.clock_offset_s if camera else None,
        window_start=req.window_start,
        window_end=req.window_end,
        tz=tz,
    )


def working_copy_of(ev: Evidence) -> dict[str, Any] | None:
    if ev.working_copy_state != "made" or ev.working_copy_sha256 is None:
        return None
    return {
        "sha256": ev.working_copy_sha256,
        "size": ev.working_copy_size,
        "content_type": ev.working_copy_content_type or workcopy.WORKING_CONTENT_TYPE,
    }


def facts(*, session: Session, ev: Evidence, tz: ZoneInfo) -> dict[str, Any]:
    """The fields GET /evidence/{id} adds to the evidence's record."""
    return {
        "working_copy": working_copy_of(ev),
        "working_copy_state": ev.working_copy_state,
        "working_copy_detail": ev.working_copy_detail if ev.working_copy_state == "not_made" else "",
        "duration_s": ev.duration_s,
        "video_codec": ev.video_codec,
        "audio_codec": ev.audio_codec,
        "recorded_at": ev.recorded_at,
        "time_flag": flag_of(session=session, ev=ev, tz=tz),
    }


def require_working_copy(ev: Evidence) -> str:
    """The working copy's key, or a 409 saying why there is none."""
    if ev.working_copy_state == "made" and ev.working_copy_key:
        return ev.working_copy_key
    if ev.working_copy_state == "not_made":
        raise Conflict(f"This file has no working copy ({ev.working_copy_detail}); download the master.")
    raise Conflict("The working copy of this file is not made yet; try again in a moment.")
