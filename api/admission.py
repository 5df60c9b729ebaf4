"""Admission control: at most `limit` requests use the database-backed thread pool at once; the
rest wait on the event loop (cheap) for at most `wait_s`, then get 503 with Retry-After.

Why: a synchronous route holds a thread-pool slot and, from its first query until its session
closes, a database connection, and FastAPI moves a request between pool threads several times
(dependencies, the route, response validation). With more requests in flight than connections,
requests holding a connection wait for a thread while requests holding threads wait for a
connection: throughput collapses to the pool timeout and every answer is a 503 (a load test with
200 readers a second saw the API idle with all 40 connections taken). Admitting no more requests
than the pool can serve keeps every admitted request moving, and makes an overload a quick, honest
503 instead of a slow one.

Streams and long renders are let through uncounted (an owner's upload, an evidence download, a
custody report or bundle, /health): they hold a connection only for short steps of their own, and a
100 MiB upload must not take a read's place. The limit is small (CUSTODY_API_CONCURRENCY, 8): the
routes are CPU-bound Python, and more threads than that only contend for the interpreter lock (the
read ceiling at 200 clients fell from ~175 to ~70 reads/s with 30 threads on two cores).
"""

from __future__ import annotations

import asyncio
import json
import logging

from starlette.types import ASGIApp, Receive, Scope, Send

log = logging.getLogger("custody.api")


def exempt(method: str, path: str) -> bool:
    """Requests that are streams (or must answer when everything else is busy)."""
    if path == "/health" or path.startswith("/static/"):
        return True
    if method == "PUT" and path.startswith("/consent/"):
        return True  # an owner's upload: its database steps are short and its own
    if method == "GET" and path.endswith(("/custody-report.pdf", "/custody-bundle.json")):
        return True  # seconds of rendering in threads of their own; limited per user instead
    return method == "GET" and path.startswith("/evidence/") and path.endswith("/download")


class Admission:
    def __init__(self, app: ASGIApp, *, limit: int, wait_s: float) -> None:
        self.app, self.limit, self.wait_s = app, max(1, limit), wait_s
        self._slots: asyncio.Semaphore | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or exempt(scope["method"], scope["path"]):
            await self.app(scope, receive, send)
            return
        if self._slots is None:  # made on the server's event loop
            self._slots = asyncio.Semaphore(self.limit)
        try:
            await asyncio.wait_for(self._slots.acquire(), self.wait_s)
        except TimeoutError:
            log.warning(
                "busy: %s %s refused after %.1f s in the queue", scope["method"], scope["path"], self.wait_s
            )
            await _busy(send, self.wait_s)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            self._slots.release()


async def _busy(send: Send, wait_s: float) -> None:
    body = json.dumps(
        {
            "error": {
                "code": "busy",
                "message": "custody is answering as many requests as it can right now; nothing was changed. "
                "Try again in a few seconds.",
            }
        }
    ).encode()
    retry = str(max(1, round(wait_s)))
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"retry-after", retry.encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
