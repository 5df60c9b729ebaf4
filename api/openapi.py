"""The API's OpenAPI document as clients meet the API: the real error shape on every route, the 4xx each
route can give, and the real content types of the report, bundle, download and checkpoint routes;
plus /docs and /redoc served from vendored assets (no third-party host: they work offline and leak
nothing about who reads them).

Why derived and not written by hand per route: the statuses follow from what a route depends on
(a staff token gives 401/403, a path id 404, a JSON body 400/415/422), so deriving them keeps the
document true as routes change; the few route-specific ones (409, 410, 413, 429) are listed here.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string", "description": "snake_case, stable: what went wrong"},
                "message": {"type": "string", "description": "what happened and what to do, for people"},
            },
        }
    },
    "example": {"error": {"code": "not_found", "message": "No such case."}},
}
WHY = {
    400: "Malformed request (e.g. the body is not valid JSON)",
    401: "No valid bearer token (get one at POST /auth/token)",
    403: "Your role, agency or link may not do this",
    404: "No such object, or not visible to you",
    409: "Conflicts with the object's state (e.g. already answered or ended)",
    410: "The consent link's request has ended or expired",
    413: "The file is larger than the limit",
    416: "The byte range asked for is outside the file",
    415: "Wrong content type (JSON bodies need application/json; uploads must be video)",
    422: "A value is out of range or inconsistent; the message names it",
    412: "Resumable uploads: send Tus-Resumable: 1.0.0",
    423: "Resumable uploads: another connection is sending this file; retry in a few seconds",
    429: "Too many attempts; wait (Retry-After) and try again",
    503: "A service custody depends on is not reachable; try again shortly",
}
#: Statuses a route gives beyond what its dependencies imply: (method, path) -> statuses.
EXTRA: dict[tuple[str, str], set[int]] = {
    ("POST", "/auth/token"): {401, 429},
    ("POST", "/owners"): {409},
    ("POST", "/cameras"): {404},  # the owner is not one your agency registered
    ("POST", "/cases/{case_id}/alerts"): {503},
    ("POST", "/requests/{request_id}/cancel"): {409, 503},
    ("POST", "/cases/{case_id}/shares"): {409},
    ("POST", "/cases/{case_id}/shares/{share_id}/revoke"): {409},
    ("POST", "/cameras/{camera_id}/approve"): {409},
    ("GET", "/evidence/{evidence_id}/download"): {409},
    ("GET", "/evidence/{evidence_id}/working-copy"): {409, 416},
    ("PATCH", "/cases/{case_id}"): {503},  # the store did not answer: the category stays as it was
    ("POST", "/evidence/{evidence_id}/legal-hold"): {409, 503},
    ("POST", "/evidence/{evidence_id}/legal-hold/release"): {409, 503},
    ("GET", "/consent/{token}"): {403, 404, 410},
    ("POST", "/consent/{token}/decision"): {403, 404, 409, 410, 503},
    ("PUT", "/consent/{token}/files/{filename}"): {400, 403, 404, 409, 410, 413, 415, 422},
    ("POST", "/consent/{token}/complete"): {403, 404, 409, 410, 503},
    ("POST", "/consent/{token}/uploads"): {400, 403, 404, 409, 410, 412, 413, 422, 507},
    ("HEAD", "/consent/{token}/uploads/{upload_id}"): {403, 404, 410, 412},
    ("PATCH", "/consent/{token}/uploads/{upload_id}"): {400, 403, 404, 409, 410, 412, 413, 415, 422, 423},
    ("DELETE", "/consent/{token}/uploads/{upload_id}"): {403, 404, 409, 410, 412, 423},
    ("GET", "/ledger/checkpoints/{tree_size}"): {404},
    ("GET", "/cases/{case_id}/custody-report.pdf"): {429},
    ("GET", "/cases/{case_id}/custody-bundle.json"): {429},
    ("GET", "/health/live"): {422},  # only for a query string (the JSON API refuses them all)
}
#: Routes that answer people's browsers with a page, errors included (JSON when asked for it).
HTML_TOO = {("GET", "/consent/{token}")}
#: Routes whose JSON body may be left out entirely (no 415 for a missing content type).
OPTIONAL_BODY = {("POST", "/requests/{request_id}/cancel")}
CONTENT: dict[tuple[str, str], dict[str, Any]] = {
    ("GET", "/cases/{case_id}/custody-report.pdf"): {
        "description": "The signed (PAdES) chain-of-custody report",
        "content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}},
        "headers": {"Content-Disposition": {"schema": {"type": "string"}}},
    },
    ("GET", "/cases/{case_id}/custody-bundle.json"): {
        "description": "Everything needed to verify the case offline (docs/bundle.md, custody-bundle/2)",
        "content": {"application/json": {"schema": {"type": "object"}}},
        "headers": {"Content-Disposition": {"schema": {"type": "string"}}},
    },
    ("GET", "/evidence/{evidence_id}/download"): {
        "description": "The file's bytes as received (video/*)",
        "content": {
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            "video/*": {"schema": {"type": "string", "format": "binary"}},
        },
        "headers": {
            "X-Content-SHA256": {"schema": {"type": "string"}, "description": "hex SHA-256 of the file"},
            "Content-Disposition": {"schema": {"type": "string"}},
        },
    },
    ("GET", "/evidence/{evidence_id}/working-copy"): {
        "description": "The working copy (H.264/AAC MP4 made from the master); 206 for a Range",
        "content": {"video/mp4": {"schema": {"type": "string", "format": "binary"}}},
        "headers": {
            "X-Content-SHA256": {"schema": {"type": "string"}, "description": "hex SHA-256 of the copy"},
            "Accept-Ranges": {"schema": {"type": "string"}},
            "Content-Range": {"schema": {"type": "string"}},
        },
    },
    ("GET", "/consent/{token}"): {
        "description": "The request in plain words: a page for people, JSON with `Accept: application/json`",
        "content": {
            "text/html": {"schema": {"type": "string"}},
            "application/json": {"schema": {"type": "object"}},
        },
    },
    ("GET", "/ledger/checkpoint"): {
        "description": "The latest checkpoint as a C2SP signed note",
        "content": {"text/plain": {"schema": {"type": "string"}}},
    },
    ("GET", "/ledger/public-key"): {
        "description": "The verifier key (note verifier-key form)",
        "content": {"text/plain": {"schema": {"type": "string"}}},
    },
}


def _statuses(method: str, path: str, op: dict[str, Any]) -> set[int]:
    """The error statuses an operation can give, from what the document says it takes."""
    found: set[int] = set()
    params = op.get("parameters", [])
    if op.get("security"):  # a staff bearer token
        found |= {401, 403}
    if any(p.get("in") == "path" for p in params):
        found.add(404)
    body = op.get("requestBody")
    if params or body:
        found.add(422)
    if body is not None:
        found.add(400)
        if "application/json" in body.get("content", {}) and (method.upper(), path) not in OPTIONAL_BODY:
            found.add(415)
    return found | EXTRA.get((method.upper(), path), set())


def build_openapi(app: FastAPI) -> dict[str, Any]:
    """The default document, with the real error shape and statuses on every operation."""
    if app.openapi_schema:
        return app.openapi_schema
    doc = get_openapi(
        title=app.title, version=app.version, summary=app.summary, routes=app.routes, description=DESCRIPTION
    )
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    _state_setting_limits(doc, app)
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    schemas["Error"] = ERROR_SCHEMA
    ref = {"$ref": "#/components/schemas/Error"}
    retry = {"headers": {"Retry-After": {"schema": {"type": "integer"}}}}
    for path, operations in doc["paths"].items():
        for method, op in operations.items():
            responses = op.setdefault("responses", {})
            for status in sorted(_statuses(method, path, op)):
                responses[str(status)] = {
                    "description": WHY.get(status, "Error"),
                    "content": {"application/json": {"schema": ref}},
                    **(retry if status == 429 else {}),
                }
            for status, body in responses.items():
                if status.startswith(("4", "5")):
                    body["content"] = {"application/json": {"schema": ref}}
                    if (method.upper(), path) in HTML_TOO:
                        body["content"]["text/html"] = {"schema": {"type": "string"}}
            special = CONTENT.get((method.upper(), path))
            if special is not None:
                ok = next(s for s in responses if s.startswith("2"))
                responses[ok] = special
    app.openapi_schema = doc
    return doc


def _state_setting_limits(doc: dict[str, Any], app: FastAPI) -> None:
    """Limits that are settings (the largest radius) are stated in the document too, as this
    deployment has them, so the schema refuses what the server refuses."""
    settings = getattr(app.state, "settings", None)
    if settings is None:
        return
    radius = {"maximum": settings.max_radius_m}
    alert = doc.get("components", {}).get("schemas", {}).get("AlertIn", {})
    if "radius_m" in alert.get("properties", {}):
        alert["properties"]["radius_m"].update(radius)
    search = doc["paths"].get("/cameras/search", {}).get("get", {})
    for param in search.get("parameters", []):
        if param.get("name") == "radius_m":
            param["schema"].update(radius)


DESCRIPTION = (
    "Every error is "
    '`{"error": {"code": "<snake_case>", "message": "<what happened and what to do>"}}`; times are '
    "RFC 3339 with an offset (a time without one is refused with 422). Staff routes need "
    "`Authorization: Bearer <token>` from `POST /auth/token`; owners use their consent link only."
)


#: Swagger UI without FastAPI's inline start-up script (the pages' CSP forbids inline script): the
#: same settings live in /static/swagger-init.js.
SWAGGER_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>custody API</title>
<link rel="icon" href="/static/favicon.svg">
<link rel="stylesheet" href="/static/vendor/swagger-ui/swagger-ui.css">
</head>
<body>
<div id="swagger-ui" data-openapi-url="/openapi.json"></div>
<script src="/static/vendor/swagger-ui/swagger-ui-bundle.js"></script>
<script src="/static/swagger-init.js"></script>
</body>
</html>
"""
REDOC_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>custody API</title>
<link rel="icon" href="/static/favicon.svg">
<link rel="stylesheet" href="/static/redoc-page.css">
</head>
<body>
<redoc spec-url="/openapi.json"></redoc>
<script src="/static/vendor/redoc/redoc.standalone.js"></script>
</body>
</html>
"""
REDOC_CSP = (
    "default-src 'self'; script-src 'self' blob:; worker-src 'self' blob:; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)


def install_docs(app: FastAPI) -> None:
    """/docs (Swagger UI) and /redoc from /static/vendor: no CDN, no third-party fonts."""

    def openapi() -> dict[str, Any]:
        return build_openapi(app)

    app.openapi = openapi  # type: ignore[method-assign]

    @app.get("/docs", include_in_schema=False)
    def swagger() -> HTMLResponse:
        return HTMLResponse(SWAGGER_PAGE)

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        # Redoc styles itself with generated <style> elements (styled-components): inline styles are
        # allowed on this page only. Inline script is not, here or anywhere.
        return HTMLResponse(REDOC_PAGE, headers={"Content-Security-Policy": REDOC_CSP})
