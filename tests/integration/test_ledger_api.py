"""Ledger routes (auditors), and the CLI's export and verify-by-URL against a real HTTP server."""

from __future__ import annotations

import base64
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient

from custody.ledger.entries import CustodyEvent, EventType, canonical
from custody.ledger.merkle import leaf_hash, verify_consistency, verify_inclusion
from custody.ledger.note import open_checkpoint, parse_verifier
from custody.ledger.store import Ledger
from custody.settings import Settings
from devstack.procs import free_port
from tests.helpers import settings_env, staff_headers


def _ledger(api: TestClient) -> Ledger:
    ledger: Ledger = api.app.state.ledger  # type: ignore[attr-defined]
    return ledger


def _grow(api: TestClient, n: int) -> None:
    _ledger(api).append(
        [
            (f"api-{uuid.uuid4()}", CustodyEvent(EventType.evidence_viewed, actor="u", agency="MPD"))
            for _ in range(n)
        ]
    )


def test_checkpoint_and_key_for_any_staff_entries_and_proofs_for_auditors(api: TestClient) -> None:
    _grow(api, 12)
    prosecutor = staff_headers(api, "prosecutor")
    auditor = staff_headers(api, "auditor")
    resp = api.get("/ledger/checkpoint", headers=prosecutor)
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/plain")
    key = api.get("/ledger/public-key", headers=prosecutor).text
    verifier = parse_verifier(key)
    first = open_checkpoint(resp.text, verifier)
    assert api.get("/ledger/checkpoint").status_code == 401
    assert api.get("/ledger/entries", headers=prosecutor).status_code == 403
    assert api.get("/ledger/proofs/inclusion?index=0&tree_size=1", headers=prosecutor).status_code == 403

    entries = api.get(f"/ledger/entries?start=0&end={first.size}", headers=auditor).json()
    assert [e["index"] for e in entries] == list(range(first.size))
    leaves = [leaf_hash(canonical(e["entry"])) for e in entries]
    for index in (0, first.size // 2, first.size - 1):
        proof = api.get(
            f"/ledger/proofs/inclusion?index={index}&tree_size={first.size}", headers=auditor
        ).json()
        assert proof["index"] == index and proof["tree_size"] == first.size
        hashes = [base64.b64decode(h) for h in proof["hashes"]]
        verify_inclusion(index, first.size, leaves[index], hashes, first.root)

    _grow(api, 5)
    second = open_checkpoint(api.get("/ledger/checkpoint", headers=auditor).text, verifier)
    assert second.size > first.size
    sizes = [c["tree_size"] for c in api.get("/ledger/checkpoints", headers=auditor).json()]
    assert first.size in sizes and second.size in sizes
    cons = api.get(
        f"/ledger/proofs/consistency?first={first.size}&second={second.size}", headers=auditor
    ).json()
    verify_consistency(
        first.size, second.size, first.root, second.root, [base64.b64decode(h) for h in cons["hashes"]]
    )


def test_bad_ledger_queries_are_4xx(api: TestClient) -> None:
    auditor = staff_headers(api, "auditor")
    size = _ledger(api).size()
    for url in (
        f"/ledger/proofs/inclusion?index={size}&tree_size={size + 10}",
        "/ledger/proofs/inclusion?index=5&tree_size=3",
        f"/ledger/proofs/consistency?first=3&second={size + 99}",
        "/ledger/proofs/consistency?first=5&second=2",
        "/ledger/entries?start=10&end=5",
        "/ledger/entries?start=0&end=5000",
        "/ledger/proofs/inclusion?index=-1&tree_size=3",
    ):
        resp = api.get(url, headers=auditor)
        assert resp.status_code == 422, (url, resp.text)
        assert resp.json()["error"]["message"]
    assert api.get("/ledger/checkpoints/999999999", headers=auditor).status_code == 404


@pytest.fixture
def live_api(settings: Settings) -> Iterator[str]:
    """The API served over real HTTP by uvicorn in a thread, configured as `python -m api.serve`."""
    from api.app import create_app
    from api.serve import server_config

    port = free_port()
    server = uvicorn.Server(
        server_config(create_app(settings), settings, host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            if httpx.get(f"{url}/docs", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    yield url
    server.should_exit = True
    thread.join(timeout=10)


def test_cli_export_then_verify_and_verify_by_url(
    api: TestClient, live_api: str, settings: Settings, tmp_path: Path
) -> None:
    _grow(api, 3)
    env = settings_env(settings)
    key = _ledger(api).verifier.encode()
    out = tmp_path / "export"
    exported = subprocess.run(
        [sys.executable, "-m", "cli.main", "ledger", "export", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert exported.returncode == 0, exported.stderr
    assert (out / "entries.jsonl").exists() and (out / "public-key.txt").read_text().strip() == key
    local = subprocess.run(
        [sys.executable, "-m", "cli.main", "ledger", "verify", str(out), "--public-key", key],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert local.returncode == 0, local.stdout + local.stderr

    token = staff_headers(api, "auditor")["Authorization"].split()[1]
    remote = subprocess.run(
        [
            sys.executable,
            "-m",
            "cli.main",
            "ledger",
            "verify",
            live_api,
            "--public-key",
            key,
            "--token",
            token,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert remote.returncode == 0, remote.stdout + remote.stderr
    assert "INTACT" in remote.stdout


def test_a_created_owner_is_usable_by_the_next_request(api: TestClient, live_api: str) -> None:
    """Over real HTTP, the commit happens before the 201 is sent (no read-after-write race)."""
    headers = staff_headers(api, "investigator")
    with httpx.Client(base_url=live_api, headers=headers, timeout=10) as client:
        for i in range(40):
            owner = client.post(
                "/owners", json={"name": f"O{i}", "email": f"race-{uuid.uuid4().hex}@example.org"}
            )
            assert owner.status_code == 201
            camera = {
                "owner_id": owner.json()["id"],
                "label": "c",
                "lat": 10.0,
                "lon": 10.0,
                "kind": "registered",
            }
            made = client.post("/cameras", json=camera)
            assert made.status_code == 201, made.text


def test_public_keys_lists_the_current_key_first_with_since_when(api: TestClient) -> None:
    _grow(api, 2)
    headers = staff_headers(api, "prosecutor")
    api.get("/ledger/checkpoint", headers=headers)
    current = api.get("/ledger/public-key", headers=headers).text.strip()
    keys = api.get("/ledger/public-keys", headers=headers).json()
    assert keys[0]["key"] == current and keys[0]["current"] is True
    assert keys[0]["key_id"] == parse_verifier(current).key_id.hex()
    assert keys[0]["since"] is not None and keys[0]["first_signed"]["tree_size"] >= 0
    assert keys[0]["last_signed"]["tree_size"] >= keys[0]["first_signed"]["tree_size"]
    assert [k["current"] for k in keys[1:]] == [False] * (len(keys) - 1)
    assert api.get("/ledger/public-keys").status_code == 401
