"""Times as people read and type them: in the program's zone (`CUSTODY_TIME_ZONE`), with its name.

Why: investigators, owners and courts read wall-clock times where the camera is. A window shown in UTC
invites a wrong conversion, and a wrong conversion asks owners for the wrong footage. Data keeps
aware UTC datetimes (RFC 3339 on the wire); only what a person reads or types passes through here.

One format everywhere:
  a moment        "Fri 27 Nov 2026, 21:25 EST"
  a window        "Fri 27 Nov 2026, 21:25-21:55 EST"
                  "Sat 31 Oct 2026, 23:50 EDT - Sun 1 Nov 2026, 00:20 EST" (across a date or a zone change)
  with UTC beside "Fri 27 Nov 2026, 21:25:13 EST (02:25:13 UTC, Sat 28 Nov)" (evidence timelines)

Typed local times are checked against daylight-saving changes: a time that never happened (the
hour skipped in spring) is refused with the reason, and a time that happened twice (the hour repeated
in autumn) is refused unless the person says which one (the zone abbreviation, e.g. EDT or EST).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class LocalTimeError(ValueError):
    """A typed local time that cannot be turned into one instant. `message` says why and what to do."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NonexistentLocalTime(LocalTimeError):
    """The wall-clock time was skipped (clocks moved forward)."""


class AmbiguousLocalTime(LocalTimeError):
    """The wall-clock time happened twice (clocks moved back); `choices` are (abbreviation, instant)."""

    def __init__(self, message: str, choices: tuple[tuple[str, datetime], ...]) -> None:
        super().__init__(message)
        self.choices = choices


@lru_cache(maxsize=32)
def zone(name: str) -> ZoneInfo:
    """The IANA zone `name`; ValueError naming the setting when it is unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(
            f"CUSTODY_TIME_ZONE {name!r} is not an IANA time zone name (such as America/New_York)"
        ) from exc


def abbreviation(moment: datetime, tz: ZoneInfo) -> str:
    """The zone's abbreviation at `moment` ("EST", "EDT"); numeric zones read "UTC+04"."""
    return _abbr(moment.astimezone(tz), tz)


# English names, fixed: strftime's %a/%b follow the process locale and are slow on long pages.
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _day(local: datetime) -> str:
    return f"{_DAYS[local.weekday()]} {local.day} {_MONTHS[local.month - 1]} {local.year}"


def _clock(local: datetime, seconds: bool) -> str:
    if seconds:
        return f"{local.hour:02d}:{local.minute:02d}:{local.second:02d}"
    return f"{local.hour:02d}:{local.minute:02d}"


def _abbr(local: datetime, tz: ZoneInfo) -> str:
    """The abbreviation of an already converted time (see abbreviation)."""
    abbr = local.tzname() or tz.key
    return "UTC" + abbr if abbr[:1] in "+-" else abbr


def when(moment: datetime, tz: ZoneInfo, *, seconds: bool = False) -> str:
    """A moment for people: "Fri 27 Nov 2026, 21:25 EST"."""
    local = moment.astimezone(tz)
    return f"{_day(local)}, {_clock(local, seconds)} {_abbr(local, tz)}"


def window(start: datetime, end: datetime, tz: ZoneInfo, *, seconds: bool = False) -> str:
    """A footage window: "Fri 27 Nov 2026, 21:25-21:55 EST"; both ends in full when the date or the
    zone abbreviation differs between them (a window across midnight or a daylight-saving change)."""
    a, b = start.astimezone(tz), end.astimezone(tz)
    abbr_a, abbr_b = _abbr(a, tz), _abbr(b, tz)
    if a.date() == b.date() and abbr_a == abbr_b:
        return f"{_day(a)}, {_clock(a, seconds)}-{_clock(b, seconds)} {abbr_a}"
    return f"{when(start, tz, seconds=seconds)} - {when(end, tz, seconds=seconds)}"


def with_utc(moment: datetime, tz: ZoneInfo, *, seconds: bool = True) -> str:
    """Local time with UTC beside it, for evidence timelines:
    "Fri 27 Nov 2026, 21:25:13 EST (02:25:13 UTC, Sat 28 Nov)"."""
    return f"{when(moment, tz, seconds=seconds)} ({utc_beside(moment, tz, seconds=seconds)})"


def utc_beside(moment: datetime, tz: ZoneInfo, *, seconds: bool = True) -> str:
    """The UTC part of with_utc: "02:25:13 UTC, Sat 28 Nov"; the UTC date is named only when it
    differs from the local one."""
    local, utc = moment.astimezone(tz), moment.astimezone(UTC)
    part = f"{_clock(utc, seconds)} UTC"
    if utc.date() != local.date():
        part += f", {_DAYS[utc.weekday()]} {utc.day} {_MONTHS[utc.month - 1]}"
    return part


def utc_label(moment: datetime, *, seconds: bool = True) -> str:
    """UTC alone, same shape: "Sat 28 Nov 2026, 02:25:13 UTC"."""
    utc = moment.astimezone(UTC)
    return f"{_day(utc)}, {_clock(utc, seconds)} UTC"


def zone_label(tz: ZoneInfo, at: datetime | None = None) -> str:
    """How a form names the zone it takes: "America/New_York (EST)"."""
    at = at or datetime.now(UTC)
    return f"{tz.key} ({abbreviation(at, tz)})"


def input_value(moment: datetime, tz: ZoneInfo) -> str:
    """The value of an <input type="datetime-local"> showing `moment` in the program's zone."""
    return f"{moment.astimezone(tz):%Y-%m-%dT%H:%M}"


def parse_local(text: str, tz: ZoneInfo, *, prefer: str | None = None) -> datetime:
    """A typed local date and time ("2026-11-27T21:25" or "2026-11-27 21:25[:ss]") in zone `tz` as an
    aware UTC datetime.

    `prefer` is a zone abbreviation ("EDT"/"EST") that picks one of the two instants of a repeated
    wall-clock time. Raises NonexistentLocalTime for a skipped time and AmbiguousLocalTime (with both
    choices) for a repeated one when `prefer` does not pick one; LocalTimeError for anything else.
    """
    raw = text.strip().replace(" ", "T", 1)
    try:
        naive = datetime.fromisoformat(raw)
    except ValueError as exc:
        raise LocalTimeError(
            f"{text!r} is not a date and time; type it as YYYY-MM-DD HH:MM (in {tz.key})"
        ) from exc
    if naive.tzinfo is not None:
        return naive.astimezone(UTC)
    return resolve_local(naive, tz, prefer=prefer)


def resolve_local(naive: datetime, tz: ZoneInfo, *, prefer: str | None = None) -> datetime:
    """A naive wall-clock time in `tz` as an aware UTC instant (see parse_local)."""
    first = naive.replace(tzinfo=tz, fold=0)
    second = naive.replace(tzinfo=tz, fold=1)
    if first.utcoffset() == second.utcoffset():
        return first.astimezone(UTC)
    shown = f"{naive:%H:%M} on {_day(naive)}"
    # A skipped time does not survive the round trip through UTC.
    if first.astimezone(UTC).astimezone(tz).replace(tzinfo=None) != naive:
        # In a gap zoneinfo gives fold=0 the offset before the change and fold=1 the one after.
        raise NonexistentLocalTime(
            f"{shown} did not happen in {tz.key}: clocks moved forward from {first.tzname()} to "
            f"{second.tzname()} that night. Type a time before or after the skipped hour."
        )
    choices = tuple((abbreviation(m.astimezone(UTC), tz), m.astimezone(UTC)) for m in (first, second))
    if prefer is not None:
        for abbr, instant in choices:
            if abbr.upper() == prefer.strip().upper():
                return instant
    options = " or ".join(f"{naive:%H:%M} {abbr} ({i:%H:%M} UTC)" for abbr, i in choices)
    raise AmbiguousLocalTime(
        f"{shown} happened twice in {tz.key} (clocks moved back): {options}. Say which one.", choices
    )


def local_day_bounds(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The UTC instants at which local day `day` starts and ends (23, 24 or 25 hours apart)."""
    start = resolve_local(datetime.combine(day, time()), tz, prefer=None)
    end = resolve_local(datetime.combine(day + timedelta(days=1), time()), tz, prefer=None)
    return start, end
