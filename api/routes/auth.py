"""POST /auth/token (OAuth2 password form) and GET /auth/me."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request

from api.deps import CurrentUser, SessionDep, SettingsDep, TokensDep
from api.schemas import AgencyOut, MeOut, TokenOut
from custody.services.users import authenticate, list_agencies

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
    client = request.client.host if request.client else "unknown"
    user = authenticate(
        session=session,
        username=username,
        password=password,
        client=client,
        max_failures=settings.login_max_failures,
        window_s=settings.login_window_s,
    )
    token, ttl = tokens.issue(user_id=user.id, role=user.role, agency=user.agency)
    return TokenOut(access_token=token, expires_in=ttl)


@router.get("/auth/me", response_model=MeOut)
def me(user: CurrentUser) -> MeOut:
    return MeOut.model_validate(user)


@router.get("/agencies", response_model=list[AgencyOut])
def agencies(_: CurrentUser, session: SessionDep) -> list[AgencyOut]:
    return [AgencyOut.model_validate(a) for a in list_agencies(session=session)]
