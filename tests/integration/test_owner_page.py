"""The owner's consent page in a real browser (Debian Chromium driven by Playwright), at phone width,
following the link from a real email received by the SMTP server."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.sync_api import Browser, expect

from custody.settings import Settings
from devstack.procs import free_port
from tests.conftest import Stack
from tests.flow import link_in, live_server, messages_to, running_worker, video_bytes, wait_for
from tests.helpers import make_user
from tests.integration.conftest import needs_chromium
from tests.web import PHONE, screenshot_dir, shot

pytestmark = needs_chromium


@pytest.fixture(scope="module")
def site(stack: Stack, db_url: str) -> Iterator[tuple[str, Settings]]:
    port = free_port()
    settings = stack.settings(
        database_url=db_url,
        task_queue=f"web-{uuid.uuid4().hex[:8]}",
        consent_ttl_s=300,
        reminders_s=[3600],
        public_url=f"http://127.0.0.1:{port}",
        time_zone="America/Denver",  # not the default zone: owners read the program's, named
    )
    with running_worker(settings), live_server(settings, port) as url:
        yield url, settings


WINDOW_END = datetime(2026, 11, 27, 21, 55, tzinfo=ZoneInfo("America/Denver"))


def _request(url: str, settings: Settings, lat: float) -> tuple[httpx.Client, str, str]:
    """An investigator asks one registered camera: the client, the request id, the owner's email."""
    from custody.db import create_db_engine

    username, password = make_user(create_db_engine(settings.db_url), "investigator")
    client = httpx.Client(base_url=url, timeout=30)
    token = client.post("/auth/token", data={"username": username, "password": password}).json()[
        "access_token"
    ]
    client.headers["Authorization"] = f"Bearer {token}"
    email = f"owner-{uuid.uuid4().hex[:8]}@example.org"
    owner = client.post("/owners", json={"name": "Dana Resident", "email": email}).json()["id"]
    client.post(
        "/cameras",
        json={"owner_id": owner, "label": "Front porch", "lat": lat, "lon": -76.9, "kind": "registered"},
    )
    case = client.post("/cases", json={"title": "Package theft"}).json()["id"]
    end = WINDOW_END
    alert = client.post(
        f"/cases/{case}/alerts",
        json={
            "lat": lat,
            "lon": -76.9,
            "radius_m": 50,
            "description": "theft",
            "window_start": (end - timedelta(minutes=20)).isoformat(),
            "window_end": end.isoformat(),
        },
    )
    assert alert.status_code == 202, alert.text
    return client, alert.json()["requests"][0]["id"], email


def _status(client: httpx.Client, request_id: str) -> str:
    return str(client.get(f"/requests/{request_id}").json()["status"])


def test_owner_consents_and_uploads_on_a_phone(
    site: tuple[str, Settings], chromium: Browser, tmp_path: Path
) -> None:
    url, settings = site
    client, request_id, email = _request(url, settings, 36.101 + uuid.uuid4().int % 1000 / 100000)
    mail = wait_for("the notice", lambda: messages_to(settings.home / "mail", email))
    link = link_in(mail[0])
    assert link.startswith(url)
    clip = tmp_path / "porch 21-40.mp4"
    clip.write_bytes(video_bytes(2_500_000))

    page = chromium.new_page(viewport=PHONE)
    refused: list[str] = []  # what the page's Content-Security-Policy blocked: must be nothing
    page.on("console", lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None)
    answer = page.goto(link)
    assert answer is not None and "frame-ancestors 'none'" in answer.headers["content-security-policy"]
    expect(
        page.get_by_role("heading", name="Metropolitan Police Department asks for footage")
    ).to_be_visible()
    # The styles load from /static under the CSP (the brand-coloured button).
    expect(page.get_by_role("button", name="Yes, I consent")).to_have_css(
        "background-color", "rgb(11, 79, 138)"
    )
    expect(page.get_by_text("Front porch")).to_be_visible()
    # The window in the program's zone, named, rendered by the server (not the browser's zone).
    expect(page.locator("#window")).to_have_text("Fri 27 Nov 2026, 21:35-21:55 MST")
    expect(page.locator("#reference")).to_have_text(re.compile(r"^MPD-[0-9A-F]{8}$"))
    expect(page.get_by_text(f"This page is served from {url}")).to_be_visible()
    shot(page, screenshot_dir(tmp_path) / "owner", "consent-page")
    page.get_by_role("button", name="Yes, I consent").click()
    expect(page.get_by_role("heading", name="Upload the video")).to_be_visible()
    assert _status(client, request_id) == "consented"
    page.locator("#files").set_input_files(str(clip))
    expect(page.get_by_text("Received. Fingerprint")).to_be_visible(timeout=30_000)
    assert page.locator("progress").evaluate("p => p.value") == 100
    page.get_by_role("button", name="I have sent every file").click()
    expect(page.get_by_role("heading", name="your footage was received")).to_be_visible()
    page.screenshot(path=str(tmp_path / "done-phone.png"), full_page=True)
    # The page fits a phone: nothing wider than the screen.
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert refused == []
    page.close()
    wait_for("attached", lambda: _status(client, request_id) == "attached", timeout=60)


def test_owner_declines(site: tuple[str, Settings], chromium: Browser) -> None:
    url, settings = site
    client, request_id, email = _request(url, settings, 36.201 + uuid.uuid4().int % 1000 / 100000)
    link = link_in(wait_for("the notice", lambda: messages_to(settings.home / "mail", email))[0])
    page = chromium.new_page(viewport=PHONE)
    page.goto(link)
    page.get_by_role("button", name="No, I decline").click()
    # Declining is final, so the page asks once more; going back changes nothing.
    expect(page.get_by_role("heading", name="Decline this request?")).to_be_visible()
    page.get_by_role("button", name="Go back").click()
    assert _status(client, request_id) == "notified"
    page.get_by_role("button", name="No, I decline").click()
    page.get_by_role("button", name="Yes, decline").click()
    expect(page.get_by_role("heading", name="You declined this request")).to_be_visible()
    assert _status(client, request_id) == "declined"
    page.reload()
    expect(page.get_by_role("heading", name="This link no longer works")).to_be_visible()
    page.close()
