"""Working copies, the pure parts: ffprobe's facts, the ffmpeg command, the time flag, byte ranges."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from custody.errors import CustodyError
from custody.workcopy import (
    byte_range,
    encode_command,
    parse_probe,
    recorded_arguments,
    stderr_tail,
    time_flag,
    working_key,
)

NY = ZoneInfo("America/New_York")
START = datetime(2026, 11, 27, 21, 0, tzinfo=UTC)
END = START + timedelta(minutes=30)


def test_probe_facts_from_ffprobe_json() -> None:
    out = json.dumps(
        {
            "streams": [
                {
                    "codec_type": "video",
                    "codec_name": "hevc",
                    "tags": {"creation_time": "2020-01-01T00:00:00Z"},
                },
                {"codec_type": "audio", "codec_name": "pcm_s16le"},
            ],
            "format": {"duration": "12.3456", "tags": {"creation_time": "2026-11-27T21:10:00.000000Z"}},
        }
    )
    probe = parse_probe(out)
    assert (probe.duration_s, probe.video_codec, probe.audio_codec) == (12.346, "hevc", "pcm_s16le")
    assert probe.recorded_at == datetime(2026, 11, 27, 21, 10, tzinfo=UTC), "the container's tag first"
    bare = parse_probe(
        json.dumps({"streams": [{"codec_type": "video", "codec_name": "mjpeg"}], "format": {}})
    )
    assert (bare.duration_s, bare.audio_codec, bare.recorded_at) == (None, None, None)
    naive = parse_probe(json.dumps({"format": {"tags": {"creation_time": "2026-11-27 21:10:00"}}}))
    assert naive.recorded_at == datetime(2026, 11, 27, 21, 10, tzinfo=UTC), "no zone: UTC, as MP4 says"
    assert parse_probe(json.dumps({"format": {"tags": {"creation_time": "yesterday"}}})).recorded_at is None


def test_the_command_and_what_the_ledger_states() -> None:
    cmd = encode_command("ffmpeg", "/t/master", "/t/working.mp4", has_audio=False)
    assert cmd[cmd.index("-i") + 1] == "/t/master" and cmd[-1] == "/t/working.mp4"
    joined = " ".join(cmd)
    assert "-c:v libx264 -preset veryfast" in joined and "-an" in joined and "-c:a" not in joined
    assert "-movflags +faststart" in joined
    with_audio = " ".join(encode_command("ffmpeg", "m", "w", has_audio=True))
    assert "-map 0:a:0" in with_audio and "-c:a aac" in with_audio and "-an" not in with_audio
    assert recorded_arguments(True).startswith("-i MASTER -map 0:v:0 -map 0:a:0 -c:v libx264")
    assert working_key("cases/c/requests/r/e") == "cases/c/requests/r/e/working.mp4"
    assert stderr_tail(b"x" * 1000 + b"\n  moov atom not found\n").endswith("moov atom not found")
    assert stderr_tail(b"") == "no message"


def test_a_time_inside_the_window_after_the_clock_offset_is_not_flagged() -> None:
    # The recorder runs 90 s fast: it stated 21:31:00, which was 21:29:30 true time, inside the window.
    stated = END + timedelta(seconds=60)
    args = {"duration_s": 0.0, "window_start": START, "window_end": END, "tz": NY}
    assert time_flag(recorded_at=stated, clock_offset_s=90, **args) is None  # type: ignore[arg-type]
    flag = time_flag(recorded_at=stated, clock_offset_s=None, **args)  # type: ignore[arg-type]
    assert flag and "1 min after the requested window" in flag and "no clock offset stated" in flag
    assert "EST" in flag, "times people read are in the program's zone, named"
    assert time_flag(recorded_at=None, clock_offset_s=90, **args) is None  # type: ignore[arg-type]


def test_a_recording_that_starts_before_the_window_but_runs_into_it_is_not_flagged() -> None:
    early = START - timedelta(minutes=10)
    common = {"clock_offset_s": 0, "window_start": START, "window_end": END, "tz": NY}
    assert time_flag(recorded_at=early, duration_s=900, **common) is None  # type: ignore[arg-type]
    flag = time_flag(recorded_at=early, duration_s=60, **common)  # type: ignore[arg-type]
    assert flag and "9 min before the requested window" in flag
    days = time_flag(recorded_at=START - timedelta(days=3), duration_s=60, **common)  # type: ignore[arg-type]
    assert days and "2 d 23 h before" in days


def test_byte_ranges() -> None:
    assert byte_range(None, 1000) is None
    assert byte_range("bytes=0-99", 1000) == (0, 99)
    assert byte_range("bytes=900-", 1000) == (900, 999)
    assert byte_range("bytes=990-5000", 1000) == (990, 999)
    assert byte_range("bytes=-10", 1000) == (990, 999)
    assert byte_range("bytes=0-1,5-6", 1000) is None, "several ranges: the whole file (RFC 9110 allows it)"
    assert byte_range("items=0-1", 1000) is None
    assert byte_range("bytes=a-b", 1000) is None
    for bad in ("bytes=1000-", "bytes=5-2"):
        with pytest.raises(CustodyError) as err:
            byte_range(bad, 1000)
        assert err.value.status == 416


def test_a_tool_that_runs_too_long_is_stopped_and_the_copy_not_made() -> None:
    import time

    from activities.workcopy import NotMade, _run

    started = time.monotonic()
    with pytest.raises(NotMade, match=r"sleep ran longer than 0\.2 s"):
        _run(["sleep", "10"], 0.2)
    assert time.monotonic() - started < 2
    assert _run(["true"], 5).returncode == 0
