"""POST /auth/token (OAuth2 password form) and GET /auth/me."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request

from api.deps import CurrentUser, SessionDep, SettingsDep, TokensDep
from api.schemas import AgencyOut, MeOut, TokenOut
from custody.ledger.entries import Component, EventType
from custody.services import audit
from custody.services.users import list_agencies

router = APIRouter(tags=["auth"])


@router.post("/auth/token", response_model=TokenOut)
def login(
    username: Annotated[str, Form(min_length=1, max_length=64)],
    password: Annotated[str, Form(min_length=1, max_length=1024)],
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    tokens: TokensDep,
) -> TokenOut:
    """A password sign-in; the attempt and the token handed out are audit events (never the password
    or the token itself: the token's id, `jti`)."""
    client = request.client.host if request.client else "unknown"
    ledger = request.app.state.ledger
    user = audit.sign_in(
        session=session,
        ledger=ledger,
        key=audit.username_key(settings.secret("ledger_signing_key")),
        component=Component.api,
        username=username,
        password=password,
        client=client,
        max_failures=settings.login_max_failures,
        window_s=settings.login_window_s,
    )
    token, ttl = tokens.issue(user_id=user.id, role=user.role, agency=user.agency)
    audit.record(
        ledger,
        EventType.token_issued,
        actor=user.id,
        agency=user.agency,
        component=Component.api,
        detail=f"access token jti={audit.token_id(token)} for {ttl} s",
    )
    return TokenOut(access_token=token, expires_in=ttl)


@router.get("/auth/me", response_model=MeOut)
def me(user: CurrentUser) -> MeOut:
    return MeOut.model_validate(user)


@router.get("/agencies", response_model=list[AgencyOut])
def agencies(_: CurrentUser, session: SessionDep) -> list[AgencyOut]:
    return [AgencyOut.model_validate(a) for a in list_agencies(session=session)]
