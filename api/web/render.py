"""Rendering of the HTML pages: one Jinja2 environment (autoescaping on), shared page context, and
HTML error pages for browser routes."""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from jinja2 import pass_context
from sqlmodel import Session

from custody import localtime
from custody.models import Owner, User, WebSession

log = logging.getLogger("custody.web")
TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
templates = Jinja2Templates(directory=str(TEMPLATES))
HTML_PREFIXES = ("/console", "/resident", "/login", "/logout")

NAV: dict[str, list[tuple[str, str]]] = {
    "investigator": [("/console/cases", "Cases")],
    "prosecutor": [("/console/cases", "Cases")],
    "auditor": [
        ("/console/ledger", "Ledger"),
        ("/console/ledger/entries", "Entries"),
        ("/console/cases", "Cases"),
    ],
    "admin": [
        ("/console/admin/users", "Users"),
        ("/console/admin/agencies", "Agencies"),
        ("/console/admin/cameras", "Cameras"),
        ("/console/admin/disposition", "Disposition"),
        ("/console/cases", "Cases"),
        ("/console/ledger", "Ledger"),
    ],
}


def _tz(ctx: Any) -> ZoneInfo:
    tz: ZoneInfo = ctx["request"].app.state.settings.tz
    return tz


def _moment(value: datetime | str) -> datetime:
    """A datetime, or an RFC 3339 string as ledger entries hold times."""
    return value if isinstance(value, datetime) else datetime.fromisoformat(value.replace("Z", "+00:00"))


@pass_context
def when(ctx: Any, value: datetime | str | None) -> str:
    """A moment in the program's zone, named: "Fri 27 Nov 2026, 21:25 EST" (never the browser's)."""
    return "—" if not value else localtime.when(_moment(value), _tz(ctx))


@pass_context
def when_utc(ctx: Any, value: datetime | str | None) -> str:
    """Where evidence is concerned: local with UTC beside it, to the second."""
    return "—" if not value else localtime.with_utc(_moment(value), _tz(ctx))


@pass_context
def window(ctx: Any, start: datetime, end: datetime) -> str:
    """A footage window: "Fri 27 Nov 2026, 21:25-21:55 EST"."""
    return localtime.window(start, end, _tz(ctx))


def plural(count: int, one: str, many: str | None = None) -> str:
    """ "1 camera", "2 cameras" (never "1 cameras")."""
    return f"{count:,} {one if count == 1 else (many or one + 's')}"


templates.env.filters["when"] = when
templates.env.filters["when_utc"] = when_utc
templates.env.filters["short"] = lambda value: str(value)[:8]
templates.env.globals["window"] = window
templates.env.globals["plural"] = plural


def is_html_path(path: str) -> bool:
    return path.startswith(HTML_PREFIXES) and not path.endswith((".json", ".pdf", ".zip"))


def page(
    request: Request,
    template: str,
    *,
    status: int = 200,
    user: User | None = None,
    owner: Owner | None = None,
    web: WebSession | None = None,
    **context: Any,
) -> HTMLResponse:
    settings = request.app.state.settings
    ctx: dict[str, Any] = {
        "user": user,
        "owner": owner,
        "csrf": web.csrf if web else getattr(request.state, "form_token", ""),
        "nav": NAV.get(user.role, []) if user else [],
        "path": request.url.path,
        "zone": localtime.zone_label(settings.tz),
        "map": {
            "tiles": settings.map_tile_url,
            "attribution": settings.map_attribution,
            "center": list(settings.map_center),
        },
        **context,
    }
    response = templates.TemplateResponse(request, template, ctx, status_code=status)
    response.headers["Cache-Control"] = "no-store"
    return response


def redirect(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303)


def error_page(request: Request, status: int, code: str, message: str) -> Response:
    """An error as a page, with the signed-in person's header when there is one (best effort: an
    error page must render even when the database is what failed)."""
    who: dict[str, Any] = {}
    try:
        who = _who(request)
    except Exception:  # the page is more useful without the header than not at all
        log.warning("error page without its header: the session could not be read", exc_info=True)
    return page(request, "web/error.html", status=status, code=code, message=message, **who)


def _who(request: Request) -> dict[str, Any]:
    from api.web.session import resident_of, staff_of

    with Session(request.app.state.engine) as session:
        if staff := staff_of(request, session):
            return {"user": staff[0], "web": staff[1]}
        if resident := resident_of(request, session):
            return {"owner": resident[0], "web": resident[1]}
    return {}
