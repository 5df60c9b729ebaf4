"""Every error leaves the API as `{"error": {"code", "message"}}` (the contract's shape)."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from custody.errors import CustodyError, ServiceUnavailable, TooManyRequests, Unauthenticated

log = logging.getLogger("custody.api")
BUSY = ServiceUnavailable(
    "custody's database is busy or unreachable; nothing was changed. Try again in a few seconds.",
    retry_after_s=5,
    code="database_unavailable",
)


def error_body(code: str, message: str) -> dict[str, dict[str, str]]:
    return {"error": {"code": code, "message": message}}


def _describe(errors: list[dict[str, object]]) -> tuple[str, str]:
    if any(e.get("type") == "json_invalid" for e in errors):
        return "malformed_json", "The request body is not valid JSON; send a JSON object."
    parts = []
    for e in errors[:5]:
        loc = ".".join(str(p) for p in e.get("loc", ()) if p not in ("body", "query", "path"))  # type: ignore[attr-defined]
        if e.get("type") == "extra_forbidden":
            parts.append(f"unknown field {loc!r}")
        else:
            parts.append(f"{loc or 'body'}: {e.get('msg')}")
    return "validation_error", "Invalid request: " + "; ".join(parts) + "."


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(CustodyError)
    async def _custody(request: Request, exc: CustodyError) -> Response:
        from api.web.render import error_page, is_html_path, redirect
        from api.web.session import LoginRequired

        if is_html_path(request.url.path):
            if isinstance(exc, LoginRequired):
                return redirect(exc.location)
            page = error_page(request, exc.status, exc.code, exc.message)
            if isinstance(exc, TooManyRequests):
                page.headers["Retry-After"] = str(exc.retry_after_s)
            return page
        headers: dict[str, str] = {}
        if isinstance(exc, Unauthenticated):
            headers["WWW-Authenticate"] = "Bearer"
        if isinstance(exc, TooManyRequests | ServiceUnavailable):
            headers["Retry-After"] = str(exc.retry_after_s)
        return JSONResponse(error_body(exc.code, exc.message), status_code=exc.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        code, message = _describe(list(exc.errors()))
        if code != "malformed_json":
            from api.web.render import error_page, is_html_path

            if is_html_path(request.url.path):
                return error_page(request, 422, code, message)
        return JSONResponse(error_body(code, message), status_code=400 if code == "malformed_json" else 422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        codes = {404: "not_found", 405: "method_not_allowed", 401: "unauthenticated", 403: "forbidden"}
        code = codes.get(exc.status_code, "http_error")
        message = str(exc.detail) if exc.detail else code
        if exc.status_code == 404 and message == "Not Found":
            message = "No such route; see /docs for the API."
            from api.web.render import error_page, is_html_path

            if is_html_path(request.url.path):
                return error_page(request, 404, code, "There is no such page. Check the address.")
        return JSONResponse(error_body(code, message), status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(sa_exc.TimeoutError)
    async def _pool_exhausted(request: Request, exc: sa_exc.TimeoutError) -> Response:
        # Every database connection of this process is busy: say so now, change nothing.
        log.warning("database pool exhausted on %s %s", request.method, request.url.path)
        return await _custody(request, BUSY)

    @app.exception_handler(sa_exc.OperationalError)
    async def _db_down(request: Request, exc: sa_exc.OperationalError) -> Response:
        log.warning("database unavailable on %s %s: %s", request.method, request.url.path, exc.orig)
        return await _custody(request, BUSY)

    @app.exception_handler(ClientDisconnect)
    async def _gone(request: Request, exc: ClientDisconnect) -> Response:
        """The client hung up, or its body stopped arriving (api/bodytimeout.py answered 408 and hung
        up for it): nobody reads this answer, and it is not a fault of custody's to log as one."""
        log.info("the client went away during %s %s", request.method, request.url.path)
        return JSONResponse(
            error_body(
                "client_disconnected", "The connection closed before the request arrived; send it again."
            ),
            status_code=400,
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        from api.web.render import error_page, is_html_path

        if is_html_path(request.url.path):
            return error_page(
                request,
                500,
                "internal_error",
                "custody could not finish this; it was logged. Try again in a minute.",
            )
        return JSONResponse(
            error_body("internal_error", "custody failed to handle this request; it was logged. Try again."),
            status_code=500,
        )
