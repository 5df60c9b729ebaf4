"""An integrated camera's recorder, as custody reaches it: what its failures mean in plain words, and a
bounded test pull an admin runs before approving the camera.

Why here: the pull activity and the admin's test pull must describe a failure the same way
("connection refused", "HTTP 503", "not a video"), and investigators read those words in a request's
history. Whether a failure is worth another try is decided here too: a refused connection or a 5xx may
pass, a 404 or a file that is not a video will not.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx

from custody import netpolicy
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
    if 300 <= status < 400:
        hint = " (a redirect: custody follows none; give the recorder's final address)"
    return RecorderFailure(f"the recorder answered HTTP {status}{hint}", retryable)


NOT_A_VIDEO = RecorderFailure("the recorder did not send a video file", False)
EMPTY = RecorderFailure("the recorder sent an empty file", False)


def too_large(limit_bytes: int) -> RecorderFailure:
    return RecorderFailure(f"the recording is larger than the {size_words(limit_bytes)} limit", False)


def window_params(start: datetime, end: datetime) -> dict[str, str]:
    """The query a recorder is asked with: the footage window in RFC 3339 UTC."""
    return {"start": rfc3339(start), "end": rfc3339(end)}


def too_slow(max_duration_s: float) -> RecorderFailure:
    return RecorderFailure(
        f"the recorder sent too slowly: the pull was stopped after {max_duration_s:g} s", False
    )


def _bounded(
    chunks: Iterator[bytes], *, limit_bytes: int | None, deadline: float | None, max_duration_s: float
) -> Iterator[bytes]:
    """The body's chunks, cut off with a plain reason past the size limit or the whole-pull deadline
    (the per-read timeout alone lets a recorder drip one byte a minute for ever)."""
    total = 0
    for chunk in chunks:
        total += len(chunk)
        if limit_bytes is not None and total > limit_bytes:
            raise too_large(limit_bytes)
        if deadline is not None and time.monotonic() > deadline:
            raise too_slow(max_duration_s)
        yield chunk


@contextmanager
def open_pull(
    url: str,
    *,
    start: datetime,
    end: datetime,
    allowed: Sequence[netpolicy.Network],
    timeout_s: float,
    limit_bytes: int | None = None,
    max_duration_s: float | None = None,
    chunk_bytes: int = 1024 * 1024,
    resolve: netpolicy.Resolver = netpolicy.system_resolver,
    trust: ssl.SSLContext | None = None,
) -> Iterator[Iterator[bytes]]:
    """Ask the recorder at `url` for the window and yield the body's chunks; any failure is a
    RecorderFailure in plain words.

    The URL is checked by custody.netpolicy first, and the connection goes to the address that check
    approved (the host name is sent as the Host header and as the TLS server name, so virtual hosts
    and certificates are checked against the name as usual; `trust` replaces the system's CAs, for
    tests): a name resolving elsewhere a second time is never connected to.
    No redirect is followed, no proxy from the environment is used (its address would not be ours to
    check), and a refused address is never contacted, so nothing it would answer reaches a history.
    """
    try:
        target = netpolicy.check_url(url, allowed, resolve=resolve)
    except netpolicy.PullRefused as exc:
        raise RecorderFailure(exc.reason, exc.retryable) from exc
    extensions = {"sni_hostname": target.sni_hostname} if target.sni_hostname else {}
    deadline = None if max_duration_s is None else time.monotonic() + max_duration_s
    try:
        with httpx.Client(
            timeout=timeout_s, follow_redirects=False, trust_env=False, verify=trust or True
        ) as client:
            request = client.build_request(
                "GET",
                # The window is added to the address's own query (a channel number stays).
                target.pinned_url.copy_merge_params(window_params(start, end)),
                headers={"Host": target.host_header},
                extensions=extensions,
            )
            resp = client.send(request, stream=True)
            try:
                if resp.status_code != 200:
                    raise describe_status(resp.status_code)
                declared = resp.headers.get("content-length", "")
                if limit_bytes is not None and declared.isdigit() and int(declared) > limit_bytes:
                    raise too_large(limit_bytes)
                yield _bounded(
                    resp.iter_bytes(chunk_bytes),
                    limit_bytes=limit_bytes,
                    deadline=deadline,
                    max_duration_s=max_duration_s or 0,
                )
            finally:
                resp.close()
    except httpx.HTTPError as exc:
        raise describe_http_error(exc, timeout_s=timeout_s) from exc


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    message: str  # plain words for the admin
    content_type: str | None = None


def test_pull(
    url: str,
    *,
    allowed: Sequence[netpolicy.Network],
    timeout_s: float = 5.0,
    max_bytes: int = 64 * 1024,
) -> ProbeResult:
    """Ask the recorder for the last minute of footage and read at most `max_bytes`: enough to see that
    it answers and sends a video. The same address policy as a pull; nothing is stored."""
    end = utcnow()
    head = b""
    try:
        with open_pull(
            url,
            start=end - timedelta(minutes=1),
            end=end,
            allowed=allowed,
            timeout_s=timeout_s,
            max_duration_s=timeout_s * 2,
            chunk_bytes=4096,
        ) as chunks:
            for chunk in chunks:
                head += chunk
                if len(head) >= max(SNIFF_BYTES, 1) or len(head) >= max_bytes:
                    break
    except RecorderFailure as failure:
        return ProbeResult(False, failure.reason)
    if not head:
        return ProbeResult(False, EMPTY.reason)
    sniffed = sniff_video(head[:SNIFF_BYTES])
    if sniffed is None:
        return ProbeResult(False, NOT_A_VIDEO.reason)
    return ProbeResult(True, "the recorder answered and sends video", sniffed)
