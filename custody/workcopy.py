"""Working copies: the owner's file stays the master exhibit; ffmpeg makes a browser-playable copy.

Why a copy at all: owners' recorders write whatever container and codec their maker chose (AVI with
MJPEG, HEVC in MOV, ...); a browser plays H.264/AAC in MP4. The master is never changed; the copy
has its own SHA-256 and the ledger names the master's hash and the exact ffmpeg version and
arguments that made it, so anyone can make the same copy from the master and compare.

What ffprobe says about the container (duration, codecs, the recorder's stated creation time) is
kept with the evidence; a stated time outside the requested window (after the camera's clock offset
as its owner stated it) is flagged to the investigator. The container's time is the recorder's
statement, not a proof: the flag says so.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from custody import localtime

WORKING_CONTENT_TYPE = "video/mp4"
WORKING_SUFFIX = "/working.mp4"
#: The encoding, exactly as passed to ffmpeg between the input and the output (recorded in the ledger).
VIDEO_ARGS = ("-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p")
AUDIO_ARGS = ("-c:a", "aac")
CONTAINER_ARGS = ("-movflags", "+faststart")


@dataclass(frozen=True, slots=True)
class Probe:
    """ffprobe's container facts; any of them may be missing from a file."""

    duration_s: float | None
    video_codec: str | None
    audio_codec: str | None
    recorded_at: datetime | None  # the container's creation_time tag: the recorder's clock


def working_key(master_key: str) -> str:
    return master_key + WORKING_SUFFIX


def _tag_time(tags: dict[str, Any]) -> datetime | None:
    for name in ("creation_time", "com.apple.quicktime.creationdate", "date"):
        raw = tags.get(name)
        if not isinstance(raw, str) or not raw.strip():
            continue
        text = raw.strip().replace("Z", "+00:00")
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            continue
        # A container time without a zone is UTC by the QuickTime/MP4 convention (ffmpeg writes it so).
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return None


def parse_probe(output: str | bytes) -> Probe:
    """The facts from `ffprobe -print_format json -show_format -show_streams` output."""
    data = json.loads(output or "{}")
    fmt = data.get("format") or {}
    streams = data.get("streams") or []
    video = next((s for s in streams if s.get("codec_type") == "video"), None)
    audio = next((s for s in streams if s.get("codec_type") == "audio"), None)
    duration: float | None = None
    try:
        duration = round(float(fmt["duration"]), 3)
    except (KeyError, TypeError, ValueError):
        duration = None
    recorded = _tag_time(fmt.get("tags") or {})
    if recorded is None:
        for stream in streams:
            recorded = _tag_time(stream.get("tags") or {})
            if recorded is not None:
                break
    return Probe(
        duration_s=duration,
        video_codec=(video or {}).get("codec_name"),
        audio_codec=(audio or {}).get("codec_name"),
        recorded_at=recorded,
    )


def probe_command(ffprobe: str, path: str) -> list[str]:
    return [ffprobe, "-v", "error", "-print_format", "json", "-show_format", "-show_streams", path]


def encode_arguments(has_audio: bool) -> list[str]:
    """What goes between `-i <master>` and the output file: the recorded, reproducible part."""
    return [*VIDEO_ARGS, *(AUDIO_ARGS if has_audio else ("-an",)), *CONTAINER_ARGS]


def encode_command(ffmpeg: str, source: str, target: str, has_audio: bool) -> list[str]:
    return [
        ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", source,
        "-map", "0:v:0", *(["-map", "0:a:0"] if has_audio else []),
        *encode_arguments(has_audio), "-f", "mp4", target,
    ]  # fmt: skip


def recorded_arguments(has_audio: bool) -> str:
    """The ffmpeg arguments as the ledger states them (file names replaced by placeholders)."""
    maps = "-map 0:v:0" + (" -map 0:a:0" if has_audio else "")
    return f"-i MASTER {maps} " + " ".join(encode_arguments(has_audio)) + " -f mp4 WORKING.mp4"


def stderr_tail(stderr: bytes | str, limit: int = 300) -> str:
    text = stderr.decode(errors="replace") if isinstance(stderr, bytes) else stderr
    text = " ".join(text.split())
    return text[-limit:] if text else "no message"


def _span(seconds: float) -> str:
    seconds = abs(int(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{days} d"] if days else []
    if hours:
        parts.append(f"{hours} h")
    if minutes and not days:
        parts.append(f"{minutes} min")
    if not parts:
        parts.append(f"{secs} s")
    return " ".join(parts)


def time_flag(
    *,
    recorded_at: datetime | None,
    duration_s: float | None,
    clock_offset_s: int | None,
    window_start: datetime,
    window_end: datetime,
    tz: ZoneInfo,
) -> str | None:
    """A sentence for the investigator when the recording's stated time does not meet the requested
    window, or None. The recorder's clock runs `clock_offset_s` ahead of true time (the owner's
    statement), so true start = stated start - offset; the recording spans its duration from there."""
    if recorded_at is None:
        return None
    offset = clock_offset_s or 0
    start = recorded_at - timedelta(seconds=offset)
    end = start + timedelta(seconds=duration_s or 0)
    if end >= window_start and start <= window_end:
        return None
    side = "before" if end < window_start else "after"
    gap = (window_start - end) if side == "before" else (start - window_end)
    offset_words = (
        f" after the camera's stated clock offset of {offset:+d} s"
        if offset
        else " (no clock offset stated for the camera)"
    )
    return (
        f"The file says it was recorded at {localtime.when(start, tz, seconds=True)}{offset_words}, "
        f"{_span(gap.total_seconds())} {side} the requested window "
        f"({localtime.window(window_start, window_end, tz)}). The time is the recorder's statement, "
        "not a proof: check the footage."
    )


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The one byte range (first, last inclusive) a `Range: bytes=...` header asks of `size` bytes, or
    None for the whole file (no header, or a form this server ignores, as RFC 9110 allows).
    Unsatisfiable ranges raise a 416."""
    from custody.errors import CustodyError

    if not header or not header.strip().lower().startswith("bytes=") or "," in header:
        return None
    spec = header.strip()[6:].strip()
    first_s, _, last_s = spec.partition("-")
    try:
        if first_s == "":
            suffix = int(last_s)
            if suffix <= 0:
                raise ValueError
            first, last = max(0, size - suffix), size - 1
        else:
            first = int(first_s)
            last = int(last_s) if last_s else size - 1
    except ValueError:
        return None
    last = min(last, size - 1)
    if first < 0 or first > last or first >= size:
        raise CustodyError(
            f"The range {spec} is outside the file's {size} bytes.",
            code="range_not_satisfiable",
            status=416,
        )
    return first, last
