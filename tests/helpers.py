"""Small helpers shared by the API tests."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterable
from pathlib import Path

from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy.engine import Engine

from custody.db import session_scope
from custody.services.users import create_user
from custody.settings import Settings


def make_user(engine: Engine, role: str, agency: str = "MPD") -> tuple[str, str]:
    username = f"{role[:4]}-{uuid.uuid4().hex[:10]}"
    password = uuid.uuid4().hex
    with session_scope(engine) as session:
        create_user(
            session=session,
            username=username,
            password=password,
            role=role,
            agency=agency,
            full_name=f"{role.capitalize()} {username[-4:].upper()}",  # people are read by name
            title={"investigator": "Detective", "prosecutor": "Assistant US Attorney"}.get(role, ""),
        )
    return username, password


def login(api: TestClient, username: str, password: str) -> dict[str, str]:
    resp = api.post("/auth/token", data={"username": username, "password": password})
    assert resp.status_code == 200, resp.text
    return {"Authorization": f"Bearer {resp.json()['access_token']}"}


def staff_headers(api: TestClient, role: str, agency: str = "MPD") -> dict[str, str]:
    engine: Engine = api.app.state.engine  # type: ignore[attr-defined]
    return login(api, *make_user(engine, role, agency))


def unique_email() -> str:
    return f"owner-{uuid.uuid4().hex[:12]}@example.org"


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that gives a child process (worker, CLI) exactly these settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CUSTODY_")}
    for name in settings.model_fields_set | {"home", "mode"}:
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        elif isinstance(value, list):
            value = ",".join(str(v) for v in value)
        env[f"CUSTODY_{name.upper()}"] = str(value)
    return env


#: What a leaked secret looks like in a log line, whatever its value: a consent or sign-in link's
#: token (secrets.token_urlsafe(32): 43 characters) or a JWT.
LEAK_PATTERNS = (
    re.compile(r"/(?:consent|resident/link)/[A-Za-z0-9_-]{20,}"),
    re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+"),
)


def secrets_in_logs(folder: Path, known: Iterable[str] = ()) -> list[str]:
    """Every line of every file under `folder` (a stack home's logs/) that holds one of the `known`
    secret values (passwords, keys, tokens handed out) or anything shaped like a token or JWT,
    as "file: line". Empty when the logs are clean."""
    values = [k for k in known if k and len(k) >= 8]
    found: list[str] = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        for line in path.read_text(errors="replace").splitlines():
            if any(v in line for v in values) or any(p.search(line) for p in LEAK_PATTERNS):
                found.append(f"{path.name}: {line[:300]}")
    return found
