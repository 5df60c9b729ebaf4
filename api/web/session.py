"""Cookie sessions and CSRF protection for the HTML pages.

Cookies are HttpOnly and Secure whenever the public URL is https (settings). The staff session is
SameSite=Strict: a link from another site must not be able to make a signed-in investigator's
browser download evidence (each download is a custody event in their name). Residents' sessions
are SameSite=Lax so that the link in their email opens their page; nothing they GET changes state. Every
form of a signed-in page carries the session's CSRF token (synchronizer-token pattern); forms shown
before sign-in (login, sign-up, sign-in links) use a double-submit cookie instead.
"""

from __future__ import annotations

import secrets
from typing import Annotated, Literal
from urllib.parse import quote

from fastapi import Depends, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session

from api.deps import SessionDep
from custody.errors import CustodyError, Forbidden, Unauthenticated
from custody.models import Owner, User, WebSession
from custody.services import websessions
from custody.services.residents import active_owner
from custody.settings import Settings

STAFF_COOKIE = "custody_session"
RESIDENT_COOKIE = "custody_resident"
FORM_COOKIE = "custody_form"  # double-submit token for forms shown before sign-in
CSRF_FIELD = "csrf_token"


class LoginRequired(Unauthenticated):
    """No live session: HTML pages answer with a redirect to the sign-in page."""

    def __init__(self, login_path: str, next_path: str) -> None:
        super().__init__("Sign in to continue; your session ended or was never started.")
        self.location = f"{login_path}?next={quote(next_path, safe='/')}"


class CsrfFailed(Forbidden):
    def __init__(self) -> None:
        super().__init__(
            "This form expired or did not come from this site (CSRF check failed). "
            "Go back, reload the page and submit it again.",
            code="csrf_failed",
        )


def set_cookie(
    response: Response,
    name: str,
    value: str,
    settings: Settings,
    max_age: int,
    samesite: Literal["lax", "strict"] = "lax",
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        httponly=True,
        secure=settings.secure_cookies,
        samesite=samesite,
        path="/",
    )


def clear_cookie(response: Response, name: str, settings: Settings) -> None:
    response.delete_cookie(name, path="/", secure=settings.secure_cookies, httponly=True, samesite="lax")


def staff_of(request: Request, session: Session) -> tuple[User, WebSession] | None:
    """The active staff user this browser is signed in as, with the session; None when not."""
    row = websessions.load(session=session, raw=request.cookies.get(STAFF_COOKIE), kind=websessions.STAFF)
    user = session.get(User, row.subject_id) if row else None
    if row is None or user is None or not user.active:
        return None
    return user, row


def resident_of(request: Request, session: Session) -> tuple[Owner, WebSession] | None:
    """The owner (still in the program) this browser is signed in as, with the session; or None."""
    row = websessions.load(
        session=session, raw=request.cookies.get(RESIDENT_COOKIE), kind=websessions.RESIDENT
    )
    if row is None:
        return None
    try:
        return active_owner(session=session, owner_id=row.subject_id), row
    except CustodyError:
        return None


def _staff_session(request: Request, session: SessionDep) -> tuple[User, WebSession]:
    found = staff_of(request, session)
    if found is None:
        raise LoginRequired("/login", request.url.path)
    return found


def _resident_session(request: Request, session: SessionDep) -> tuple[Owner, WebSession]:
    found = resident_of(request, session)
    if found is None:
        raise LoginRequired("/resident/signin", request.url.path)
    return found


StaffSession = Annotated[tuple[User, WebSession], Depends(_staff_session)]
ResidentSession = Annotated[tuple[Owner, WebSession], Depends(_resident_session)]


async def form_fields(request: Request) -> dict[str, str]:
    """The posted form's text fields, trimmed (file fields are ignored)."""
    form = await request.form()
    return {k: v.strip() for k, v in form.items() if isinstance(v, str)}


async def check_csrf(request: Request, row: WebSession) -> None:
    form = await request.form()
    submitted = form.get(CSRF_FIELD)
    if not websessions.csrf_ok(row, submitted if isinstance(submitted, str) else None):
        raise CsrfFailed()


async def checked_form(request: Request, row: WebSession) -> dict[str, str]:
    """The posted form's fields, once its CSRF token matched the session's."""
    await check_csrf(request, row)
    return await form_fields(request)


def form_token(request: Request) -> str:
    """The double-submit token for a pre-sign-in form (reusing the browser's cookie if it has one)."""
    existing = request.cookies.get(FORM_COOKIE)
    token = existing if existing and 20 <= len(existing) <= 100 else secrets.token_urlsafe(24)
    request.state.form_token = token
    return token


def keep_form_cookie(request: Request, response: Response, settings: Settings) -> Response:
    token = getattr(request.state, "form_token", None)
    if token and request.cookies.get(FORM_COOKIE) != token:
        set_cookie(response, FORM_COOKIE, token, settings, max_age=86400)
    return response


async def check_form_token(request: Request) -> None:
    form = await request.form()
    submitted = form.get(CSRF_FIELD)
    cookie = request.cookies.get(FORM_COOKIE)
    if not (
        isinstance(submitted, str) and cookie and secrets.compare_digest(submitted.encode(), cookie.encode())
    ):
        raise CsrfFailed()


def safe_next(value: str | None, default: str) -> str:
    """Only same-site paths: an open redirect would let a phishing link pass as ours."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return default


#: Per kind of session: its cookie and SameSite mode (see the module docstring).
COOKIES: dict[str, tuple[str, Literal["lax", "strict"]]] = {
    websessions.STAFF: (STAFF_COOKIE, "strict"),
    websessions.RESIDENT: (RESIDENT_COOKIE, "lax"),
}


def signed_in(*, session: Session, settings: Settings, kind: str, subject_id: str, location: str) -> Response:
    """Start a session and send the browser on to `location` with its cookie."""
    raw, _ = websessions.start(
        session=session, kind=kind, subject_id=subject_id, ttl_s=settings.session_ttl_s
    )
    name, samesite = COOKIES[kind]
    response = RedirectResponse(location, status_code=303)
    set_cookie(response, name, raw, settings, max_age=settings.session_ttl_s, samesite=samesite)
    return response


async def signed_out(
    request: Request, *, session: Session, settings: Settings, kind: str, row: WebSession, location: str
) -> Response:
    """End this browser's session (a CSRF-checked form) and clear its cookie."""
    await check_csrf(request, row)
    name, _ = COOKIES[kind]
    websessions.end(session=session, raw=request.cookies.get(name))
    response = RedirectResponse(location, status_code=303)
    clear_cookie(response, name, settings)
    return response
