"""Security headers on every response the app gives, errors and static files included.

- `X-Content-Type-Options: nosniff` everywhere: a JSON answer, an evidence download or an uploaded
  file's name echoed in an error is never run as a page or script because a browser guessed its type.
- HTML pages (the console, the resident pages, the owner's consent page, error pages, the API docs)
  get a Content-Security-Policy with no inline script (scripts and styles only from /static), no
  framing (`frame-ancestors 'none'` and `X-Frame-Options: DENY`) and `Referrer-Policy: same-origin`
  (the consent page's address holds the owner's token: it must never travel to another site).
- `Strict-Transport-Security` when custody's public URL is https.

Why a plain ASGI middleware wrapped around the whole app (api/app.py) rather than an `http`
middleware: Starlette answers unhandled errors (500) outside the user middleware stack, and those
answers need the headers too.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HSTS = "max-age=31536000; includeSubDomains"


def content_security_policy(tile_url: str) -> str:
    """The pages' policy: everything from this site only; map tiles also from the tile host."""
    tiles = ""
    if tile_url:
        parts = urlsplit(tile_url.replace("{s}", "a"))
        host = parts.netloc.replace("a.", "*.", 1) if "{s}" in tile_url else parts.netloc
        tiles = f" {parts.scheme}://{host}"
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; "
        f"img-src 'self' data:{tiles}; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; "
        "base-uri 'none'; object-src 'none'"
    )


class SecurityHeaders:
    def __init__(self, app: ASGIApp, *, csp: str, hsts: bool) -> None:
        self.app = app
        self.csp = csp
        self.hsts = hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                if headers.get("content-type", "").startswith("text/html") or scope["path"].startswith(
                    "/static/"
                ):
                    # A route may set its own, stricter or (the API docs) wider, policy.
                    headers.setdefault("Content-Security-Policy", self.csp)
                    headers.setdefault("X-Frame-Options", "DENY")
                    headers.setdefault("Referrer-Policy", "same-origin")
                if self.hsts:
                    headers.setdefault("Strict-Transport-Security", HSTS)
            await send(message)

        await self.app(scope, receive, send_with_headers)
