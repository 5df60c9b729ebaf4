"""An integrated camera's recorder, as custody reaches it: what its failures mean in plain words, and a
bounded test pull an admin runs before approving the camera.

Why here: the pull activity and the admin's test pull must describe a failure the same way
("connection refused", "HTTP 503", "not a video"), and investigators read those words in a request's
history. Whether a failure is worth another try is decided here too: a refused connection or a 5xx may
pass, a 404 or a file that is not a video will not.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx

from custody.media import SNIFF_BYTES, size_words, sniff_video
from custody.timeutil import rfc3339, utcnow


class RecorderFailure(Exception):
    """A pull that did not deliver. `reason` is for people; `retryable` says whether to try again."""

    def __init__(self, reason: str, retryable: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable


def describe_http_error(exc: httpx.HTTPError, *, timeout_s: float) -> RecorderFailure:
    """An httpx error as the reason people read (all transport failures may pass: retryable)."""
    text = str(exc)
    if isinstance(exc, httpx.ConnectTimeout):
        return RecorderFailure(f"the recorder could not be reached (no answer within {timeout_s:g} s)", True)
    if isinstance(exc, httpx.TimeoutException):
        return RecorderFailure(f"the recorder stopped answering (nothing for {timeout_s:g} s)", True)
    if isinstance(exc, httpx.ConnectError):
        lowered = text.lower()
        if "refused" in lowered:
            why = "connection refused"
        elif "name or service not known" in lowered or "nodename nor servname" in lowered:
            why = "its host name does not resolve"
        elif "unreachable" in lowered:
            why = "network unreachable"
        else:
            why = "could not connect"
        return RecorderFailure(f"the recorder could not be reached ({why})", True)
    if isinstance(exc, (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)):
        return RecorderFailure("the connection to the recorder broke off before the file was complete", True)
    return RecorderFailure(f"the recorder could not be read ({type(exc).__name__})", True)


def describe_status(status: int) -> RecorderFailure:
    """A non-200 answer. 5xx, 408 and 429 may pass; any other status will not."""
    retryable = status >= 500 or status in (408, 429)
    hint = {
        401: " (it refused custody's access)",
        403: " (it refused custody's access)",
        404: " (no recording at that address for the window)",
    }.get(status, "")
    return RecorderFailure(f"the recorder answered HTTP {status}{hint}", retryable)


NOT_A_VIDEO = RecorderFailure("the recorder did not send a video file", False)
EMPTY = RecorderFailure("the recorder sent an empty file", False)


def too_large(limit_bytes: int) -> RecorderFailure:
    return RecorderFailure(f"the recording is larger than the {size_words(limit_bytes)} limit", False)


def window_params(start: datetime, end: datetime) -> dict[str, str]:
    """The query a recorder is asked with: the footage window in RFC 3339 UTC."""
    return {"start": rfc3339(start), "end": rfc3339(end)}


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    message: str  # plain words for the admin
    content_type: str | None = None


def test_pull(url: str, *, timeout_s: float = 5.0, max_bytes: int = 64 * 1024) -> ProbeResult:
    """Ask the recorder for the last minute of footage and read at most `max_bytes`: enough to see that
    it answers and sends a video. No redirects are followed; nothing is stored."""
    end = utcnow()
    try:
        with httpx.stream(
            "GET",
            url,
            params=window_params(end - timedelta(minutes=1), end),
            timeout=timeout_s,
            follow_redirects=False,
        ) as resp:
            if resp.status_code != 200:
                return ProbeResult(False, describe_status(resp.status_code).reason)
            head = b""
            for chunk in resp.iter_bytes(4096):
                head += chunk
                if len(head) >= max(SNIFF_BYTES, 1) or len(head) >= max_bytes:
                    break
    except httpx.HTTPError as exc:
        return ProbeResult(False, describe_http_error(exc, timeout_s=timeout_s).reason)
    if not head:
        return ProbeResult(False, EMPTY.reason)
    sniffed = sniff_video(head[:SNIFF_BYTES])
    if sniffed is None:
        return ProbeResult(False, NOT_A_VIDEO.reason)
    return ProbeResult(True, "the recorder answered and sends video", sniffed)
