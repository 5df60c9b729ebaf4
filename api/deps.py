"""Dependencies shared by the routes, as `Annotated` aliases (SessionDep, CurrentUser, ...)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.engine import Engine
from sqlmodel import Session

from custody.errors import CustodyError, Forbidden, Unauthenticated, Unprocessable
from custody.models import User
from custody.security import TokenService
from custody.services.users import get_user
from custody.settings import Settings


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


def get_session(engine: Annotated[Engine, Depends(get_engine)]) -> Iterator[Session]:
    """One transaction per request: committed when the route returns, rolled back on any error,
    so a rejected request leaves nothing half-written."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


SettingsDep = Annotated[Settings, Depends(get_settings)]
# scope="function": the transaction commits before the response is sent, so a client that reads an
# id from a 201 can use it in its very next request.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]

_bearer = HTTPBearer(auto_error=False)


def get_tokens(request: Request) -> TokenService:
    tokens: TokenService = request.app.state.tokens
    return tokens


TokensDep = Annotated[TokenService, Depends(get_tokens)]


def get_current_user(
    session: SessionDep,
    tokens: TokensDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> User:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthenticated(
            "This route needs `Authorization: Bearer <token>`; get one at POST /auth/token."
        )
    claims = tokens.verify(credentials.credentials)
    try:
        user = get_user(session=session, user_id=claims.sub)
    except CustodyError as exc:
        raise Unauthenticated("The token's user no longer exists; log in again.") from exc
    if not user.active:
        raise Unauthenticated("This account is disabled; ask an administrator.")
    if user.role != claims.role or user.agency != claims.agency:
        raise Unauthenticated("Your role or agency changed since this token was issued; log in again.")
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]


def require_roles(*roles: str) -> Callable[[User], User]:
    def _check(user: CurrentUser) -> User:
        if user.role not in roles:
            raise Forbidden(f"Your role ({user.role}) may not do this; it needs one of: {', '.join(roles)}.")
        return user

    return _check


def require_json(request: Request) -> None:
    """Refuse bodies that are not JSON with 415 before anything is parsed or stored."""
    if request.method in ("POST", "PUT", "PATCH"):
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != "application/json" and not ctype.endswith("+json"):
            raise CustodyError(
                f"Send the body as JSON with `Content-Type: application/json` (got {ctype or 'none'!r}).",
                code="unsupported_media_type",
                status=415,
            )


def strict_query(request: Request) -> None:
    """Refuse query parameters the route does not take, or one given twice, with 422: a typo (or
    `?limt=5`) is an error, not a silent default, as unknown body fields are."""
    from fastapi.routing import APIRoute

    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    known: set[str] = set()
    pending = [route.dependant]
    while pending:
        dependant = pending.pop()
        known |= {p.alias for p in dependant.query_params}
        pending.extend(dependant.dependencies)
    keys = [k for k, _ in request.query_params.multi_items()]
    unknown = sorted({k for k in keys if k not in known})
    if unknown:
        takes = ", ".join(sorted(known)) or "none"
        raise Unprocessable(
            f"Unknown query parameter(s): {', '.join(map(repr, unknown[:5]))}; this route takes: {takes}.",
            code="validation_error",
        )
    repeated = sorted({k for k in keys if keys.count(k) > 1})
    if repeated:
        raise Unprocessable(f"Give {', '.join(map(repr, repeated))} once.", code="validation_error")


StaffWriter = Annotated[User, Depends(require_roles("admin", "investigator"))]
AdminOnly = Annotated[User, Depends(require_roles("admin"))]
