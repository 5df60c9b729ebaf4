"""Fixtures of the browser and console tests: one live site (API over HTTP plus the real worker)
and one Chromium per module."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright
from sqlalchemy.engine import Engine

from custody.db import create_db_engine
from custody.settings import Settings
from devstack.procs import free_port
from tests.conftest import Stack
from tests.flow import live_server, running_worker
from tests.web import ARGS, CHROMIUM, screenshot_dir

needs_chromium = pytest.mark.skipif(
    shutil.which("chromium") is None, reason="Debian chromium is not installed"
)


class Site:
    def __init__(self, url: str, settings: Settings, shots: Path) -> None:
        self.url = url
        self.settings = settings
        self.engine: Engine = create_db_engine(settings.db_url)
        self.shots = shots


@pytest.fixture(scope="module")
def web(stack: Stack, db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    port = free_port()
    settings = stack.settings(
        database_url=db_url,
        task_queue=f"web-{uuid.uuid4().hex[:8]}",
        consent_ttl_s=600,
        reminders_s=[3600],
        public_url=f"http://127.0.0.1:{port}",
        ledger_checkpoint_interval_s=1,
        # Every test signs up from 127.0.0.1 into one database per session: the per-client limit is
        # tested at the service (test_residents), the per-address limit over HTTP.
        signup_max_per_client=10_000,
        # Not the default zone: every time people read or type is in this one, named.
        time_zone="America/Los_Angeles",
        pull_max_attempts=2,  # integrated pulls that cannot succeed end within seconds
        pull_retry_interval_s=0.2,
        pull_timeout_s=3,
    )
    shots = screenshot_dir(tmp_path_factory.mktemp("web")) / db_url.split(":", 1)[0].split("+")[0]
    with running_worker(settings), live_server(settings, port) as url:
        site = Site(url, settings, shots)
        yield site
        site.engine.dispose()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield browser
        browser.close()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The browser stories (test_console.py) run on SQLite, the embedded default `make run` uses,
    not twice: what they drive is the console's pages, whose services and queries are tested on
    both engines through the API and tests/integration/test_console_security.py. Skipped (with the
    reason) before any fixture starts, to keep the suite under 15 minutes on 2 cores."""
    skip = pytest.mark.skip(
        reason="browser stories run on SQLite (make run's engine); their services run on both engines"
    )
    for item in items:
        if item.nodeid.startswith("tests/integration/test_console.py::") and "[postgresql]" in item.nodeid:
            item.add_marker(skip)
