"""The API as an attacker meets it over real HTTP (served exactly as `python -m api.serve` serves it):
security headers on every kind of answer, no secret in its log after a whole consent flow, forwarded
headers believed only from configured proxies, and deadlines on slow headers and bodies.

One live site (SQLite only: none of this depends on the database) with the real worker, its log
captured at INFO (access log on) into a file.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from api.app import create_app
from custody.models import LoginFailure
from custody.settings import Settings
from devstack.procs import free_port
from tests.conftest import Stack, migrated
from tests.flow import link_in, live_server, messages_to, running_worker, video_bytes, wait_for
from tests.helpers import make_user, secrets_in_logs
from tests.web import ask, bearer, spot

pytestmark = pytest.mark.stack

TIMEOUT_S = 2.0


@dataclass
class Site:
    url: str
    port: int
    settings: Settings
    log: Path


@pytest.fixture(scope="module")
def site(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    folder = tmp_path_factory.mktemp("hardening")
    port = free_port()
    settings = stack.settings(
        database_url=migrated(f"sqlite:///{folder / 'custody.db'}"),
        task_queue=f"hard-{uuid.uuid4().hex[:8]}",
        consent_ttl_s=600,
        reminders_s=[3600],
        public_url=f"http://127.0.0.1:{port}",
        login_max_failures=2,  # 8 per client address
        header_read_timeout_s=TIMEOUT_S,
        body_read_timeout_s=TIMEOUT_S,
    )
    log = folder / "logs" / "api.log"
    log.parent.mkdir()
    handler = logging.FileHandler(log)  # no filter of its own: redaction must happen at the source
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    loggers = [logging.getLogger(), logging.getLogger("uvicorn.access"), logging.getLogger("uvicorn.error")]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        with running_worker(settings), live_server(settings, port, log_level="info") as url:
            yield Site(url, port, settings, log)
    finally:
        for logger in loggers:
            logger.removeHandler(handler)
        handler.close()


@dataclass
class Flow:
    token: str  # the owner's consent token
    investigator: httpx.Client
    jwt: str
    password: str
    evidence_id: str
    consent_page: httpx.Response  # while the owner could still answer


@pytest.fixture(scope="module")
def flow(site: Site) -> Flow:
    """A whole consent flow: notice, consent page, decision, upload, complete, attached."""
    username, password = make_user(_engine(site), "investigator")
    inv = bearer(site.url, username, password)
    lat, lon = spot()
    email = f"owner-{uuid.uuid4().hex[:10]}@example.org"
    owner = inv.post("/owners", json={"name": "Pat Owner", "email": email}).json()["id"]
    cam = inv.post(
        "/cameras", json={"owner_id": owner, "label": "Porch", "lat": lat, "lon": lon, "kind": "registered"}
    )
    assert cam.status_code == 201, cam.text
    case, req = ask(inv, lat, lon, title="Hardening", radius_m=50)
    link = link_in(wait_for("the notice", lambda: messages_to(site.settings.home / "mail", email))[0])
    token = link.rsplit("/", 1)[1]
    owner_client = httpx.Client(base_url=site.url, timeout=60)
    page = owner_client.get(f"/consent/{token}")
    assert page.status_code == 200 and "Will you share this footage?" in page.text
    assert owner_client.post(f"/consent/{token}/decision", json={"decision": "consent"}).status_code == 200
    body = video_bytes(200_000)
    put = owner_client.put(f"/consent/{token}/files/porch.mp4", content=body)
    assert put.status_code == 201, put.text
    assert owner_client.post(f"/consent/{token}/complete").status_code == 202
    wait_for("attached", lambda: inv.get(f"/requests/{req}").json()["status"] == "attached", timeout=90)
    (evidence,) = inv.get(f"/cases/{case}/evidence").json()
    assert evidence["sha256"] == hashlib.sha256(body).hexdigest()
    jwt = str(inv.headers["Authorization"]).split()[1]
    return Flow(token, inv, jwt, password, evidence["id"], page)


def _engine(site: Site):  # type: ignore[no-untyped-def]
    from custody.db import create_db_engine

    return create_db_engine(site.settings.db_url)


# --- security headers ----------------------------------------------------------------------------


def _is_page(resp: httpx.Response) -> None:
    csp = resp.headers.get("content-security-policy", "")
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp.split("script-src", 1)[1].split(";")[0]
    assert "frame-ancestors 'none'" in csp, csp
    assert resp.headers.get("x-frame-options") == "DENY"
    assert resp.headers.get("referrer-policy") == "same-origin"
    # No inline script left in the page itself (JSON data blocks are not run).
    for tag in re.findall(r"<script\b[^>]*>", resp.text):
        assert "src=" in tag or 'type="application/json"' in tag, tag
    assert not re.search(r"<style\b|\sstyle=|\son[a-z]+=", resp.text), resp.text[:500]


def test_every_kind_of_answer_has_nosniff_and_pages_have_csp_and_frame_denial(site: Site, flow: Flow) -> None:
    url, inv = site.url, flow.investigator
    plain = httpx.Client(base_url=url, timeout=30)
    answers = {
        "json": inv.get("/cases"),
        "health": plain.get("/health"),
        "download": inv.get(f"/evidence/{flow.evidence_id}/download"),
        "404 json": plain.get("/no-such-route"),
        "422 json": inv.get("/cases", params={"limit": "many"}),
        "401 json": plain.get("/cases"),
        "static": plain.get("/static/consent.js"),
        "openapi": plain.get("/openapi.json"),
        "consent page": flow.consent_page,
        "consent page once answered": plain.get(f"/consent/{flow.token}"),
        "consent page of an unknown link": plain.get(f"/consent/{secrets.token_urlsafe(32)}"),
        "console sign-in": plain.get("/login"),
        "resident sign-up": plain.get("/resident/signup"),
        "console 404 page": plain.get("/console/no-such-page"),
        "docs": plain.get("/docs"),
        "redoc": plain.get("/redoc"),
    }
    expected = {
        "404 json": 404,
        "422 json": 422,
        "401 json": 401,
        "console 404 page": 404,
        "consent page once answered": 410,
        "consent page of an unknown link": 403,
    }
    for name, resp in answers.items():
        want = expected.get(name, 200)
        assert resp.status_code == want, (name, resp.status_code, resp.text[:300])
        assert resp.headers.get("x-content-type-options") == "nosniff", name
        assert "strict-transport-security" not in resp.headers, name  # plain http here
        if "text/html" in resp.headers.get("content-type", ""):
            _is_page(resp)
        else:
            assert name not in ("consent page", "console sign-in", "resident sign-up", "docs", "redoc")
    for name in ("consent page once answered", "consent page of an unknown link", "console 404 page"):
        assert "text/html" in answers[name].headers["content-type"], name
    assert answers["download"].content[:12] == video_bytes(12)
    # Redoc styles itself with generated style elements: inline styles there only, never inline script.
    redoc_csp = answers["redoc"].headers["content-security-policy"]
    assert "style-src 'self' 'unsafe-inline'" in redoc_csp
    assert "style-src 'self';" in answers["docs"].headers["content-security-policy"]


def test_hsts_when_the_public_url_is_https_and_headers_on_unhandled_errors(
    stack: Stack, tmp_path: Path
) -> None:
    settings = stack.settings(
        database_url=migrated(f"sqlite:///{tmp_path / 'custody.db'}"),
        public_url="https://custody.example.org",
    )
    app = create_app(settings)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("a bug")  # answered 500 by Starlette outside the user middleware

    with TestClient(app, raise_server_exceptions=False) as client:
        for path in ("/health", "/static/consent.css", "/no-such-route", "/login", "/boom"):
            resp = client.get(path)
            assert resp.headers.get("strict-transport-security", "").startswith("max-age="), path
            assert resp.headers["x-content-type-options"] == "nosniff", path
        assert client.get("/boom").status_code == 500


# --- no secret in the log --------------------------------------------------------------------------


def test_the_log_of_a_whole_consent_flow_holds_no_token_password_or_jwt(site: Site, flow: Flow) -> None:
    plain = httpx.Client(base_url=site.url, timeout=30)
    sign_in_token = secrets.token_urlsafe(32)
    assert plain.get(f"/resident/link/{sign_in_token}").status_code == 403  # unknown link
    # Refused (422: /health takes no query), but logged all the same: with the value redacted.
    assert plain.get("/health", params={"token": "query-secret-value"}).status_code == 422
    time.sleep(0.3)  # the access log line is written after the answer
    text = site.log.read_text()
    # The access log was on and saw the flow, with the token's place shown as redacted.
    assert re.search(r'"GET /consent/\[redacted\] HTTP/1\.1" 200', text), text[-2000:]
    assert '"PUT /consent/[redacted]/files/porch.mp4 HTTP/1.1" 201' in text
    assert "/resident/link/[redacted]" in text and "?token=[redacted]" in text
    known = [flow.token, sign_in_token, flow.jwt, flow.password, "query-secret-value"]
    assert secrets_in_logs(site.log.parent, known) == []


# --- forwarded headers -------------------------------------------------------------------------------


def _fail_logins(url: str, n: int, tag: str) -> list[int]:
    statuses = []
    with httpx.Client(base_url=url, timeout=30) as client:
        for i in range(n):
            resp = client.post(
                "/auth/token",
                data={"username": f"nobody-{tag}-{i}", "password": "wrong"},
                headers={"X-Forwarded-For": f"10.{i}.{i}.{i}", "X-Real-IP": f"10.{i}.0.1"},
            )
            statuses.append(resp.status_code)
    return statuses


def test_a_rotating_x_forwarded_for_does_not_escape_the_per_address_login_limit(site: Site) -> None:
    # 2 failures per username, 8 per address: eight different usernames from "eight addresses".
    statuses = _fail_logins(site.url, 10, "rot")
    assert statuses[:8] == [401] * 8 and statuses[8:] == [429, 429], statuses
    with Session(_engine(site)) as session:
        rows = session.exec(select(LoginFailure).where(LoginFailure.username.startswith("nobody-rot-")))
        clients = {f.client for f in rows.all()}
    assert clients == {"127.0.0.1"}, clients


def test_forwarded_for_is_believed_from_a_configured_proxy(site: Site) -> None:
    port = free_port()
    trusting = site.settings.model_copy(update={"trusted_proxies": ["127.0.0.0/8"]})
    with live_server(trusting, port) as url:
        resp = httpx.post(
            f"{url}/auth/token",
            data={"username": "nobody-proxied", "password": "wrong"},
            headers={"X-Forwarded-For": "203.0.113.7"},
        )
        assert resp.status_code == 401
    with Session(_engine(site)) as session:
        failure = session.exec(select(LoginFailure).where(LoginFailure.username == "nobody-proxied")).one()
    assert failure.client == "203.0.113.7"


# --- slow headers and bodies ---------------------------------------------------------------------------


def _answer(sock: socket.socket, within_s: float) -> bytes:
    """Everything the server sends until it closes the connection (socket.timeout if it does not)."""
    sock.settimeout(within_s)
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def test_slow_headers_and_stalled_bodies_are_answered_408_and_closed(site: Site) -> None:
    host, port = "127.0.0.1", site.port
    started = time.monotonic()
    silent = socket.create_connection((host, port))
    slow_head = socket.create_connection((host, port))
    slow_head.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n")  # never the blank line
    stalled = socket.create_connection((host, port))
    stalled.sendall(
        b"POST /auth/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        b"Content-Length: 100\r\n\r\nusername=a"  # then nothing
    )
    huge = socket.create_connection((host, port))
    huge.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n" + b"X-Filler: " + b"a" * 70_000 + b"\r\n")
    limit = TIMEOUT_S + 4  # the deadline plus room for a busy machine

    data = _answer(huge, limit)
    assert data.startswith(b"HTTP/1.1 431 ") and b"headers_too_large" in data, data[:200]
    data = _answer(stalled, limit)
    assert data.startswith(b"HTTP/1.1 408 "), data[:300]
    assert b"body_timeout" in data and b"x-content-type-options: nosniff" in data.lower()
    data = _answer(slow_head, limit)
    assert data.startswith(b"HTTP/1.1 408 ") and b"header_timeout" in data, data[:300]
    data = _answer(silent, limit)
    assert data == b""  # closed, nothing to answer
    took = time.monotonic() - started
    assert TIMEOUT_S * 0.9 <= took <= limit, f"answered after {took:.1f} s, not at the {TIMEOUT_S} s deadline"
    for sock in (silent, slow_head, stalled, huge):
        sock.close()
    # A well-behaved client is not affected.
    assert httpx.get(f"{site.url}/health", timeout=10).status_code == 200
