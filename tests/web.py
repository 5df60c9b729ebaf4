"""Helpers for the browser and console tests: a live site with a worker, a cookie-session HTTP
client, a case with verified evidence made through the real consent flow, and screenshots."""

from __future__ import annotations

import hashlib
import os
import random
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from email.message import Message
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Page, ViewportSize

from custody.settings import Settings
from tests.flow import link_in, messages_to, video_bytes, wait_for

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DESKTOP: ViewportSize = {"width": 1280, "height": 900}
PHONE: ViewportSize = {"width": 390, "height": 844}


def spot() -> tuple[float, float]:
    """A fresh point far from every other test's cameras."""
    return 40.0 + random.random() * 5, -100.0 + random.random() * 10


UNNAMED_CONTROLS = """() => Array.from(document.querySelectorAll(
    'input:not([type=hidden]), select, textarea, button, a[href]')).filter(el => {
      const box = el.getBoundingClientRect();
      if (!box.width && !box.height) return false;
      const named = (el.labels && el.labels.length) || el.getAttribute('aria-label')
        || el.getAttribute('aria-labelledby') || (el.tagName !== 'INPUT' && el.textContent.trim());
      return !named;
    }).map(el => el.outerHTML.slice(0, 160))"""


def shot(page: Page, folder: Path, name: str) -> None:
    """The page as it is now, at desktop and at phone width; checks that it fits the phone and that
    every visible control has a name a screen reader can read."""
    unnamed = page.evaluate(UNNAMED_CONTROLS)
    assert not unnamed, f"{name}: controls without an accessible name: {unnamed}"
    folder.mkdir(parents=True, exist_ok=True)
    size = page.viewport_size or DESKTOP
    page.set_viewport_size(DESKTOP)
    page.screenshot(path=str(folder / f"{name}-desktop.png"), full_page=True)
    page.set_viewport_size(PHONE)
    page.wait_for_timeout(150)
    page.screenshot(path=str(folder / f"{name}-phone.png"), full_page=True)
    overflow = page.evaluate("document.documentElement.scrollWidth")
    assert overflow <= PHONE["width"], f"{name} is {overflow}px wide at phone width"
    page.set_viewport_size(size)


def sign_in(page: Page, url: str, username: str, password: str) -> None:
    page.goto(f"{url}/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/console/"))


def resident_link_in(message: Message) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            text = part.get_payload(decode=True).decode()  # type: ignore[union-attr]
            match = re.search(r"https?://\S+/resident/link/\S+", text)
            if match:
                return match.group(0)
    raise AssertionError("no resident link in the message")


def local_minutes(value: datetime, tz: tzinfo) -> str:
    """A datetime-local input's value: the console's forms take the program's local time."""
    return value.astimezone(tz).strftime("%Y-%m-%dT%H:%M")


def console_session(url: str, username: str, password: str) -> tuple[httpx.Client, str]:
    """An HTTP client signed in to the console through the real login form, and its CSRF token."""
    client = httpx.Client(base_url=url, timeout=30, follow_redirects=False)
    form = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token, form.text
    resp = client.post(
        "/login", data={"username": username, "password": password, "csrf_token": token.group(1), "next": ""}
    )
    assert resp.status_code == 303, resp.text
    page = client.get("/console/cases")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert csrf, page.text
    return client, csrf.group(1)


def bearer(url: str, username: str, password: str) -> httpx.Client:
    client = httpx.Client(base_url=url, timeout=60)
    resp = client.post("/auth/token", data={"username": username, "password": password})
    assert resp.status_code == 200, resp.text
    client.headers["Authorization"] = f"Bearer {resp.json()['access_token']}"
    return client


def ask(
    investigator: httpx.Client, lat: float, lon: float, *, title: str, radius_m: float
) -> tuple[str, str]:
    """A new case whose alert asks the one camera near (lat, lon) for the last half hour but five
    minutes: the case id and the request id."""
    case = investigator.post("/cases", json={"title": title}).json()["id"]
    end = datetime.now(UTC) - timedelta(minutes=5)
    alert = investigator.post(
        f"/cases/{case}/alerts",
        json={
            "lat": lat,
            "lon": lon,
            "radius_m": radius_m,
            "description": "x",
            "window_start": (end - timedelta(minutes=30)).isoformat(),
            "window_end": end.isoformat(),
        },
    )
    assert alert.status_code == 202, alert.text
    (request,) = alert.json()["requests"]
    return case, request["id"]


@dataclass
class EvidenceCase:
    case_id: str
    request_id: str
    evidence_id: str
    sha256: str
    client: httpx.Client  # the investigator's API client


def case_with_evidence(
    url: str, settings: Settings, investigator: httpx.Client, title: str = ""
) -> EvidenceCase:
    """A case whose one registered camera consented, uploaded and got its file attached, all through
    the real API, workflow and email."""
    lat, lon = spot()
    email = f"owner-{uuid.uuid4().hex[:10]}@example.org"
    owner = investigator.post("/owners", json={"name": "Sam Owner", "email": email}).json()["id"]
    cam = investigator.post(
        "/cameras",
        json={"owner_id": owner, "label": "Side gate", "lat": lat, "lon": lon, "kind": "registered"},
    )
    assert cam.status_code == 201, cam.text
    case, req = ask(investigator, lat, lon, title=title or f"Burglary {uuid.uuid4().hex[:6]}", radius_m=50)
    link = link_in(wait_for("the notice", lambda: messages_to(settings.home / "mail", email))[0])
    token = link.rsplit("/", 1)[1]
    owner_client = httpx.Client(base_url=url, timeout=60)
    assert owner_client.post(f"/consent/{token}/decision", json={"decision": "consent"}).status_code == 200
    body = video_bytes(300_000, seed=random.randrange(200))
    put = owner_client.put(f"/consent/{token}/files/gate.mp4", content=body)
    assert put.status_code == 201, put.text
    assert owner_client.post(f"/consent/{token}/complete").status_code == 202
    wait_for(
        "attached", lambda: investigator.get(f"/requests/{req}").json()["status"] == "attached", timeout=90
    )
    ev = investigator.get(f"/cases/{case}/evidence").json()[0]
    assert ev["sha256"] == hashlib.sha256(body).hexdigest()
    return EvidenceCase(case, req, ev["id"], ev["sha256"], investigator)


def screenshot_dir(tmp_root: Path) -> Path:
    """Where screenshots go: $CUSTODY_SCREENSHOTS, or the test run's temporary folder."""
    return Path(os.environ.get("CUSTODY_SCREENSHOTS") or tmp_root / "screenshots")


def ledger_types(ledger: Any, case_id: str) -> list[tuple[str, str]]:
    import json

    return [
        (json.loads(data)["type"], json.loads(data).get("detail", ""))
        for _, data in ledger.entries_for(case_id=case_id)
    ]
