"""Times as people read and type them (custody/localtime.py), in the default zone and in others,
across both daylight-saving edges."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from custody.localtime import (
    AmbiguousLocalTime,
    LocalTimeError,
    NonexistentLocalTime,
    input_value,
    local_day_bounds,
    parse_local,
    when,
    window,
    with_utc,
    zone,
)

NY = zone("America/New_York")
LA = zone("America/Los_Angeles")


def test_a_winter_evening_in_washington_reads_local_with_its_zone() -> None:
    start = datetime(2026, 11, 28, 2, 25, tzinfo=UTC)
    assert when(start, NY) == "Fri 27 Nov 2026, 21:25 EST"
    assert window(start, start + timedelta(minutes=30), NY) == "Fri 27 Nov 2026, 21:25-21:55 EST"
    assert with_utc(start, NY) == "Fri 27 Nov 2026, 21:25:00 EST (02:25:00 UTC, Sat 28 Nov)"
    assert input_value(start, NY) == "2026-11-27T21:25"


def test_another_program_zone_shows_its_own_wall_clock() -> None:
    start = datetime(2026, 11, 28, 2, 25, tzinfo=UTC)
    assert when(start, LA) == "Fri 27 Nov 2026, 18:25 PST"
    assert parse_local("2026-11-27 18:25", LA) == start
    assert when(start, zone("Asia/Dubai")).endswith("06:25 UTC+04")


def test_window_across_midnight_names_both_days() -> None:
    start = datetime(2026, 11, 28, 4, 50, tzinfo=UTC)  # 23:50 EST
    assert window(start, start + timedelta(minutes=20), NY) == (
        "Fri 27 Nov 2026, 23:50 EST - Sat 28 Nov 2026, 00:10 EST"
    )


def test_the_repeated_hour_in_november_must_be_chosen() -> None:
    with pytest.raises(AmbiguousLocalTime) as info:
        parse_local("2026-11-01T01:30", NY)
    assert "happened twice" in info.value.message
    assert [abbr for abbr, _ in info.value.choices] == ["EDT", "EST"]
    assert parse_local("2026-11-01T01:30", NY, prefer="EDT") == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)
    assert parse_local("2026-11-01T01:30", NY, prefer="est") == datetime(2026, 11, 1, 6, 30, tzinfo=UTC)
    # A window inside the repeated hour shows both abbreviations, so no one reads it as 10 minutes.
    shown = window(datetime(2026, 11, 1, 5, 50, tzinfo=UTC), datetime(2026, 11, 1, 6, 10, tzinfo=UTC), NY)
    assert shown == "Sun 1 Nov 2026, 01:50 EDT - Sun 1 Nov 2026, 01:10 EST"


def test_the_missing_hour_in_march_is_refused_with_the_reason() -> None:
    with pytest.raises(NonexistentLocalTime) as info:
        parse_local("2026-03-08 02:30", NY)
    assert "did not happen" in info.value.message and "EST to EDT" in info.value.message
    assert parse_local("2026-03-08 03:30", NY) == datetime(2026, 3, 8, 7, 30, tzinfo=UTC)
    assert local_day_bounds(date(2026, 3, 8), NY)[1] - local_day_bounds(date(2026, 3, 8), NY)[0] == (
        timedelta(hours=23)
    )


def test_nonsense_and_unknown_zones_are_refused() -> None:
    with pytest.raises(LocalTimeError, match="YYYY-MM-DD HH:MM"):
        parse_local("yesterday evening", NY)
    with pytest.raises(ValueError, match="CUSTODY_TIME_ZONE"):
        zone("Mars/Olympus_Mons")


def test_an_explicit_offset_is_taken_as_given() -> None:
    assert parse_local("2026-11-27T21:25-05:00", LA) == datetime(2026, 11, 28, 2, 25, tzinfo=UTC)
