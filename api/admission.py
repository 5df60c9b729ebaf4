"""Admission control: at most `limit` requests use the database-backed thread pool at once; the
rest wait on the event loop (cheap) for at most `wait_s`, then get 503 with Retry-After.

Why: a synchronous route holds a thread-pool slot and, from its first query until its session
closes, a database connection, and FastAPI moves a request between pool threads several times
(dependencies, the route, response validation). With more requests in flight than connections,
requests holding a connection wait for a thread while requests holding threads wait for a
connection: throughput collapses to the pool timeout (before this, 200 readers got 3 reads a second,
40 answers 500 and 160 no answer within a minute). Admitting no more requests than the pool can
serve keeps every admitted request moving, and makes an overload a quick, honest 503.

The limit is small (CUSTODY_API_CONCURRENCY, 8): the routes are CPU-bound Python, and more threads
only contend for the interpreter lock. Streams and long renders pass uncounted (an evidence
download, a custody report or bundle, /health): they hold a connection only for short steps of
their own. Owners' uploads are counted on their own (CUSTODY_UPLOAD_CONCURRENCY, 16): a 100 MiB
upload must not take a read's place, and each holds up to two 16 MiB parts in memory (50 at once
took the API to 1.4 GB).
"""

from __future__ import annotations

import asyncio
import json
import logging

from starlette.types import ASGIApp, Receive, Scope, Send

log = logging.getLogger("custody.api")

BUSY = (
    "custody is answering as many requests as it can right now; nothing was changed. "
    "Try again in a few seconds."
)
BUSY_UPLOADS = (
    "Many files are arriving right now, so yours was not taken; nothing was kept. Try again in a "
    "minute: your consent and the files already sent are safe."
)


def kind(method: str, path: str) -> str:
    """`upload` (an owner's file: counted on its own), `free` (streams and renders that must not
    take a read's place, /health, /health/live, /health/ready and /metrics: probes and scrapes must
    answer while requests queue), or `request` (everything else)."""
    if path in ("/health", "/health/live", "/health/ready", "/metrics") or path.startswith("/static/"):
        return "free"
    if method in ("PUT", "PATCH") and path.startswith("/consent/"):  # PATCH: a resumable upload's bytes
        return "upload"
    if method == "GET" and path.endswith(("/custody-report.pdf", "/custody-bundle.json")):
        return "free"  # seconds of rendering in threads of their own; limited per user instead
    if method == "GET" and path.startswith("/evidence/") and path.endswith("/download"):
        return "free"
    return "request"


class Admission:
    """Requests: at most `limit` at once, each waiting at most `wait_s`. Owners' uploads: at most
    `uploads` at once, each waiting at most `upload_wait_s`."""

    def __init__(
        self, app: ASGIApp, *, limit: int, wait_s: float, uploads: int = 16, upload_wait_s: float = 30
    ) -> None:
        self.app = app
        self.sizes = {"request": max(1, limit), "upload": max(1, uploads)}
        self.waits = {"request": wait_s, "upload": upload_wait_s}
        self._slots: dict[str, asyncio.Semaphore] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        what = kind(scope["method"], scope["path"]) if scope["type"] == "http" else "free"
        if what == "free":
            await self.app(scope, receive, send)
            return
        if what not in self._slots:  # made on the server's event loop
            self._slots[what] = asyncio.Semaphore(self.sizes[what])
        slots, wait_s = self._slots[what], self.waits[what]
        try:
            await asyncio.wait_for(slots.acquire(), wait_s)
        except TimeoutError:
            log.warning("busy: %s %s refused after %.1f s waiting", scope["method"], scope["path"], wait_s)
            await _busy(send, wait_s, BUSY_UPLOADS if what == "upload" else BUSY)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            slots.release()


async def _busy(send: Send, wait_s: float, message: str) -> None:
    body = json.dumps({"error": {"code": "busy", "message": message}}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"retry-after", str(max(1, round(wait_s))).encode()),
    ]
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": body})
