"""Helpers for full-stack footage-request tests: a worker thread, mail reading, test videos."""

from __future__ import annotations

import asyncio
import email
import mailbox
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from email.message import Message
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from activities.maintenance import run_maintenance
from custody.db import engine_for
from custody.ledger.service import ledger_for
from custody.settings import Settings
from storage.s3 import make_client
from worker import ACTIVITY_THREADS, build_worker
from workflows.client import connect_temporal


@contextmanager
def running_worker(settings: Settings) -> Iterator[None]:
    """The real worker (workflows and activities) on its own event loop in a thread."""
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    ready = threading.Event()
    errors: list[BaseException] = []

    async def main() -> None:
        client = await connect_temporal(settings)
        engine = engine_for(settings, threads=ACTIVITY_THREADS)
        s3 = make_client(settings)
        worker = build_worker(client, settings, engine, s3)
        housekeeping = asyncio.create_task(
            run_maintenance(client, settings, engine, ledger_for(settings, engine), s3, stop)
        )
        async with worker:
            ready.set()
            await stop.wait()
        await housekeeping
        engine.dispose()

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(main())
        except BaseException as exc:  # surfaced to the test below
            errors.append(exc)
            ready.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    ready.wait(60)
    if errors:
        raise errors[0]
    try:
        yield
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(30)


def video_bytes(size: int = 200_000, seed: int = 0) -> bytes:
    """A file that starts like an MP4 (ftyp box), with deterministic filler."""
    head = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"
    body = bytes((i * 31 + seed) % 251 for i in range(4096))
    out = bytearray(head)
    while len(out) < size:
        out += body
    return bytes(out[:size])


def messages_to(maildir: Path, address: str) -> list[Message]:
    box = mailbox.Maildir(str(maildir), create=False)
    found = [email.message_from_bytes(box.get_bytes(k)) for k in box.iterkeys()]
    return sorted((m for m in found if m["To"] == address), key=lambda m: m["Date"] or "")


def plain_text(message: Message) -> str:
    """The text/plain part of a message, decoded."""
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            return part.get_payload(decode=True).decode()  # type: ignore[union-attr]
    raise AssertionError("no text/plain part in the message")


def link_in(message: Message) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            text = part.get_payload(decode=True).decode()  # type: ignore[union-attr]
            match = re.search(r"https?://\S+/consent/\S+", text)
            if match:
                return match.group(0)
    raise AssertionError("no consent link in the message")


def wait_for(what: str, check: Callable[[], Any], timeout: float = 60, interval: float = 0.3) -> Any:
    started = time.monotonic()
    deadline = started + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            if os.environ.get("CUSTODY_TEST_TIMINGS"):
                print(f"waited {time.monotonic() - started:5.1f} s for {what}", flush=True)
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}; last value: {last!r}")


def request_status(api: TestClient, headers: dict[str, str], request_id: str) -> str:
    resp = api.get(f"/requests/{request_id}", headers=headers)
    assert resp.status_code == 200, resp.text
    return str(resp.json()["status"])


@contextmanager
def live_server(settings: Settings, port: int, *, log_level: str = "warning") -> Iterator[str]:
    """The API over real HTTP (uvicorn in a thread, configured as `python -m api.serve` configures
    it: trusted proxies, header deadline, log redaction), for browsers and HTTP clients."""
    import httpx
    import uvicorn

    from api.app import create_app
    from api.serve import server_config

    server = uvicorn.Server(
        server_config(create_app(settings), settings, host="127.0.0.1", port=port, log_level=log_level)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    wait_for("the API", lambda: _answers(httpx, f"{url}/docs"), timeout=30, interval=0.1)
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(15)


def _answers(httpx: Any, url: str) -> bool:
    try:
        return bool(httpx.get(url, timeout=1).status_code == 200)
    except httpx.HTTPError:
        return False
