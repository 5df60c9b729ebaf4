"""What the API tells its operators: a request id on every answer and log line, and Prometheus
metrics of each request (the `/metrics` route is api/routes/metrics.py).

`Observe` is the outermost ASGI layer, so the id and the timing cover everything inside (admission
waits, the body deadline, 500s). It

- takes the request id from an incoming `X-Request-ID` when it is well formed (a proxy's or a
  client's id ties their logs to ours), else makes one; binds it for the log (custody/logs.py) and
  returns it in the `X-Request-ID` response header;
- counts the request and its latency by *route template* (`/cases/{case_id}/evidence`), never the
  raw path: ids and consent tokens stay out of metric labels (and label sets stay bounded);
- for owners' uploads (`PUT /consent/{token}/files/{filename}`) counts the body bytes received and
  the upload's duration and rate.

Route ids (`case_id`, `request_id`) are bound for the log by `bind_path_ids`, an app-wide dependency:
the middleware runs before routing and cannot see them.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

from fastapi import Request
from prometheus_client import Counter, Histogram, disable_created_metrics
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from custody import logs

#: An incoming X-Request-ID is kept only when it looks like an id: no spaces, quotes or control
#: characters to forge log lines with, and short.
REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{7,127}")
UPLOAD_ROUTE = "/consent/{token}/files/{filename}"
UNMATCHED = "<unmatched>"  # 404s: one label value however many paths are probed

# No `*_created` series beside every counter and histogram: half the lines, no use here.
disable_created_metrics()  # type: ignore[no-untyped-call]

HTTP_REQUESTS = Counter(
    "custody_http_requests",
    "HTTP requests answered, by route template, method and status",
    ["route", "method", "status"],
)
HTTP_LATENCY = Histogram(
    "custody_http_request_duration_seconds",
    "Time from a request's arrival to the end of its answer, by route template and method",
    ["route", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
UPLOAD_BYTES = Counter(
    "custody_upload_bytes",
    "Bytes of owners' uploads received (outcome stored: answered 201; refused: any other answer)",
    ["outcome"],
)
UPLOAD_DURATION = Histogram(
    "custody_upload_duration_seconds",
    "Duration of one owner's upload, first byte of the request to the answer",
    ["outcome"],
    buckets=(0.1, 0.5, 1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200),
)
UPLOAD_RATE = Histogram(
    "custody_upload_rate_bytes_per_second",
    "Rate of each stored upload (its bytes over its duration)",
    buckets=(1e4, 1e5, 2.5e5, 5e5, 1e6, 2.5e6, 5e6, 1e7, 2.5e7, 5e7, 1e8),
)


def route_template(scope: Scope) -> str:
    """The matched route's path template (after the inner app ran: Starlette's router records it
    in the scope), or UNMATCHED."""
    route = scope.get("route")
    path: object = getattr(route, "path", None)
    return path if isinstance(path, str) and path else UNMATCHED


def request_id_from(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            text = bytes(value).decode("latin-1").strip()
            if REQUEST_ID.fullmatch(text):
                return text
            break
    return uuid.uuid4().hex


class Observe:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = request_id_from(scope)
        tokens = logs.bind(http_request_id=rid)
        started = time.perf_counter()
        status = 500  # when the app raises before answering, Starlette answers 500
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
            return message

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"]
                message = {**message, "headers": [*headers, (b"x-request-id", rid.encode("latin-1"))]}
            await send(message)

        try:
            await self.app(scope, counting_receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            _record(scope, status, elapsed, received)
            logs.unbind(tokens)


def _record(scope: Scope, status: int, elapsed: float, received: int) -> None:
    route, method = route_template(scope), scope["method"]
    HTTP_REQUESTS.labels(route, method, str(status)).inc()
    HTTP_LATENCY.labels(route, method).observe(elapsed)
    if route == UPLOAD_ROUTE and method == "PUT":
        outcome = "stored" if status == 201 else "refused"
        UPLOAD_BYTES.labels(outcome).inc(received)
        UPLOAD_DURATION.labels(outcome).observe(elapsed)
        if outcome == "stored" and elapsed > 0:
            UPLOAD_RATE.observe(received / elapsed)


async def bind_path_ids(request: Request) -> None:
    """App-wide dependency: the route's `case_id` / `request_id` into the log context. Async on
    purpose: a sync dependency runs in a worker thread, whose context would not reach the route."""
    params: dict[str, Any] = request.path_params
    logs.bind(case_id=params.get("case_id"), request_id=params.get("request_id"))
