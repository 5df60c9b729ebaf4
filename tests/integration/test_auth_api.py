"""Staff login and token checks through the real API, on SQLite and PostgreSQL."""

from __future__ import annotations

import time
import uuid

from fastapi.testclient import TestClient
from jose import jwt

from custody.settings import Settings
from tests.helpers import login, make_user


def _engine(api: TestClient):  # type: ignore[no-untyped-def]
    return api.app.state.engine  # type: ignore[attr-defined]


def test_login_issues_a_jwt_with_the_contract_claims(api: TestClient, settings: Settings) -> None:
    username, password = make_user(_engine(api), "prosecutor", "USCP")
    resp = api.post("/auth/token", data={"username": username, "password": password})
    assert resp.status_code == 200
    body = resp.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == settings.jwt_ttl_s
    claims = jwt.get_unverified_claims(body["access_token"])
    assert {"sub", "role", "agency", "exp", "iat", "aud", "iss", "jti"} <= set(claims)
    assert (claims["role"], claims["agency"]) == ("prosecutor", "USCP")
    me = api.get("/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200 and me.json()["username"] == username


def test_wrong_password_is_401_with_the_error_shape(api: TestClient) -> None:
    username, _ = make_user(_engine(api), "auditor")
    resp = api.post("/auth/token", data={"username": username, "password": "not-the-password"})
    assert resp.status_code == 401
    assert resp.json()["error"]["code"] == "unauthenticated"


def test_repeated_failures_are_throttled(api: TestClient, settings: Settings) -> None:
    username, password = make_user(_engine(api), "investigator")
    for _ in range(settings.login_max_failures):
        assert api.post("/auth/token", data={"username": username, "password": "guess"}).status_code == 401
    resp = api.post("/auth/token", data={"username": username, "password": password})
    assert resp.status_code == 429
    assert resp.json()["error"]["code"] == "too_many_requests"
    assert int(resp.headers["Retry-After"]) == settings.login_window_s


def test_staff_routes_need_a_token(api: TestClient) -> None:
    resp = api.get("/cameras")
    assert resp.status_code == 401
    assert resp.headers["WWW-Authenticate"] == "Bearer"
    assert api.get("/cameras", headers={"Authorization": "Bearer not.a.token"}).status_code == 401


def test_forged_and_stale_tokens_are_401(api: TestClient, settings: Settings) -> None:
    username, password = make_user(_engine(api), "admin")
    good = login(api, username, password)["Authorization"].split()[1]
    claims = jwt.get_unverified_claims(good)
    key = settings.secret("jwt_key")
    now = int(time.time())
    variants = {
        "expired": jwt.encode({**claims, "exp": now - 5}, key, algorithm="ES256"),
        "wrong audience": jwt.encode({**claims, "aud": "elsewhere"}, key, algorithm="ES256"),
        "tampered": good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB"),
        "alg none": jwt.encode(claims, "", algorithm="HS256").split(".")[0].replace("HS256", "none") + ".x.",
        "unknown user": jwt.encode({**claims, "sub": str(uuid.uuid4())}, key, algorithm="ES256"),
    }
    for name, token in variants.items():
        resp = api.get("/auth/me", headers={"Authorization": f"Bearer {token}"})
        assert resp.status_code == 401, name
        assert resp.json()["error"]["code"] == "unauthenticated", name
